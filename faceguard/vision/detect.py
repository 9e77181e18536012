"""MTCNN face detection on onnxruntime, with numpy and OpenCV only (no torch).

The three nets are the ONNX files written by ``faceguard.train.mtcnn_export`` (facenet-pytorch's
MIT-licensed weights). Conventions the nets expect, and which this module applies:

* RGB channel order, NCHW float32, pixels normalised as ``(x - 127.5) / 128``.
* Images are fed as they are (rows = y, columns = x); the nets were exported so that no
  transposition is needed (see the exporter's docstring).
* Downscaling is anti-aliased like facenet-pytorch's area interpolation: exact 2:1 area
  (box) averages, then bilinear for the last < 2x step (see ``area_resize``; on LFW and the
  test video this detects the same faces as plain ``cv2.INTER_AREA``, at a fraction of the
  cost).
* Parts of a crop that fall outside the image are filled with black (0) before normalisation.

Coordinates are continuous pixel coordinates: pixel (i, j) covers [j, j + 1) x [i, i + 1), so a
box (x1, y1, x2, y2) has width x2 - x1. Returned boxes are not clipped to the image: a face cut
by the frame edge keeps its full estimated extent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# P-Net geometry: its output cell (i, j) sees the 12x12 window at (2 i, 2 j) of its input.
_PNET_CELL = 12
_PNET_STRIDE = 2
# NMS overlaps from the MTCNN paper / reference implementation.
_NMS_PER_SCALE = 0.5
_NMS_ACROSS_SCALES = 0.7
_NMS_RNET = 0.7
_NMS_ONET = 0.7


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # float32 [4]: x1, y1, x2, y2 in image pixels
    # float32 [5, 2]: (x, y) of image-left eye, image-right eye, nose, image-left mouth corner,
    # image-right mouth corner
    landmarks: np.ndarray
    score: float  # O-Net face probability


def _normalise(batch_hwc: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] RGB -> float32 [N, 3, H, W] scaled to about [-1, 1] as in training."""
    x = batch_hwc.astype(np.float32)
    x -= 127.5
    x *= 0.0078125
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def area_resize(
    src: np.ndarray, size: tuple[int, int], final: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """Anti-aliased downscale of a uint8 image to ``size`` (width, height), quickly.

    ``cv2.INTER_AREA`` at a non-integer ratio is slow (about 2.5 ms for a 640x480 frame, 50 us
    for a 100 px crop), but at exactly 2:1 it is a cheap 2x2 box average. So halve with it while
    the image is at least twice the target, then finish the remaining < 2x step with ``final``
    (bilinear by default: at such a mild ratio it barely aliases).
    """
    w, h = size
    while src.shape[1] >= 2 * w and src.shape[0] >= 2 * h:
        hh, hw = src.shape[0] // 2, src.shape[1] // 2
        # An odd last row/column is dropped so the ratio is exactly 2 (OpenCV's fast path).
        src = cv2.resize(src[: 2 * hh, : 2 * hw], (hw, hh), interpolation=cv2.INTER_AREA)
    if src.shape[1] == w and src.shape[0] == h:
        return src
    return cv2.resize(src, (w, h), interpolation=final)


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """Scales at which a face of ``min_face_size`` px (and larger ones) fills P-Net's 12 px cell.

    The first scale maps ``min_face_size`` to 12 px; each next one shrinks by ``factor`` until
    the image's short side would drop below 12 px. A larger ``min_face_size`` thus removes the
    most expensive (largest) levels.
    """
    scale = _PNET_CELL / float(min_face_size)
    short = min(height, width) * scale
    scales = []
    while short >= _PNET_CELL:
        scales.append(scale)
        scale *= factor
        short *= factor
    return scales


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    ``mode="min"`` divides the intersection by the smaller box's area (used after O-Net so that a
    small box lying inside a bigger face box is removed even though their IoU is low).
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    if mode == "union":
        # OpenCV's C++ greedy IoU NMS gives the same picks as the loop below, several times
        # faster on the hundreds of P-Net candidates a frame produces.
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]], axis=1)
        # NMSBoxes drops scores <= its (non-negative) score threshold; shifting the scores to
        # be >= 1 keeps their order and makes it drop none.
        ranked = (scores - scores.min() + 1.0).astype(np.float32)
        picked = cv2.dnn.NMSBoxes(xywh.astype(np.float32), ranked, 0.0, float(threshold))
        return np.asarray(picked, dtype=np.int64).reshape(-1)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        if mode == "min":
            denom = np.minimum(areas[i], areas[rest])
        else:
            denom = areas[i] + areas[rest] - inter
        overlap = inter / np.maximum(denom, 1e-9)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Shift each box edge by the net's offset, given as a fraction of the box width/height."""
    wh = np.concatenate([boxes[:, 2:4] - boxes[:, 0:2]] * 2, axis=1)
    return boxes + reg * wh


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (R-Net and O-Net take square crops)."""
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) * 0.5
    side = np.max(boxes[:, 2:4] - boxes[:, 0:2], axis=1, keepdims=True)
    return np.concatenate([centre - side * 0.5, centre + side * 0.5], axis=1)


def snap_to_pixels(boxes: np.ndarray) -> np.ndarray:
    """Integer square crop windows (at least 1 px) that match the boxes as closely as possible.

    Later stages express their outputs relative to the window actually cropped, so we keep these
    integer windows as the boxes from here on.
    """
    x1 = np.round(boxes[:, 0])
    y1 = np.round(boxes[:, 1])
    side = np.maximum(np.round(boxes[:, 2] - boxes[:, 0]), 1.0)
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1).astype(np.float32)


def crop_batch(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, size, size, 3] crops of integer-aligned ``boxes``; outside the image is black."""
    h, w = rgb.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    for k, (bx1, by1, bx2, by2) in enumerate(boxes.astype(np.int64)):
        # Part of the window that lies inside the image.
        ix1, iy1, ix2, iy2 = max(bx1, 0), max(by1, 0), min(bx2, w), min(by2, h)
        if ix2 <= ix1 or iy2 <= iy1:
            continue  # window entirely outside: stays black, the net will reject it
        if ix1 == bx1 and iy1 == by1 and ix2 == bx2 and iy2 == by2:
            patch = rgb[iy1:iy2, ix1:ix2]
        else:
            patch = np.zeros((by2 - by1, bx2 - bx1, 3), dtype=np.uint8)
            patch[iy1 - by1 : iy2 - by1, ix1 - bx1 : ix2 - bx1] = rgb[iy1:iy2, ix1:ix2]
        out[k] = area_resize(patch, (size, size))
    return out


def pnet_candidates(
    reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (image pixels), scores and offsets of P-Net cells above ``threshold``, one image."""
    face = prob[0, 1]
    ys, xs = np.nonzero(face >= threshold)
    if ys.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
    origin = np.stack([xs, ys], axis=1).astype(np.float32) * _PNET_STRIDE
    boxes = np.concatenate([origin, origin + _PNET_CELL], axis=1) / scale
    offsets = reg[0, :, ys, xs]  # advanced indexing puts the cell axis first: [K, 4]
    return boxes.astype(np.float32), face[ys, xs], offsets


class MtcnnDetector:
    """Three-stage MTCNN (P-Net proposals, R-Net refinement, O-Net boxes and landmarks)."""

    def __init__(
        self,
        pnet,
        rnet,
        onet,
        *,
        min_face_size: float = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
    ) -> None:
        if min_face_size <= 0:
            raise ValueError("min_face_size must be positive")
        if not 0.0 < scale_factor < 1.0:
            raise ValueError("scale_factor must be between 0 and 1")
        if len(thresholds) != 3:
            raise ValueError("thresholds needs one value per stage (P-Net, R-Net, O-Net)")
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self._inputs = {id(s): s.get_inputs()[0].name for s in (pnet, rnet, onet)}

    def _run(self, session, outputs: list[str], batch: np.ndarray) -> list[np.ndarray]:
        return session.run(outputs, {self._inputs[id(session)]: batch})

    def _scales(self, h: int, w: int, min_face_size: float) -> list[float]:
        """The pyramid for faces from ``min_face_size`` up. When that is larger than the
        detector's own, its pyramid without the levels only smaller faces need (the first one
        kept sees faces down to ``scale_factor`` x ``min_face_size``): the same levels, so a
        face above both sizes is found the same way either way."""
        if min_face_size <= self.min_face_size:
            return pyramid_scales(h, w, min_face_size, self.scale_factor)
        top = _PNET_CELL / (min_face_size * self.scale_factor)
        return [s for s in pyramid_scales(h, w, self.min_face_size, self.scale_factor) if s <= top]

    def _stage1(self, rgb: np.ndarray, min_face_size: float) -> np.ndarray:
        """P-Net over the image pyramid -> squared candidate boxes [K, 5] (box, score)."""
        h, w = rgb.shape[:2]
        all_boxes, all_scores = [], []
        level = rgb
        for scale in self._scales(h, w, min_face_size):
            size = (int(math.ceil(w * scale)), int(math.ceil(h * scale)))
            # Area-resample each level from the previous, already smaller one when it is at
            # least as large: far cheaper than going back to the full frame every time.
            source = level if level.shape[1] >= size[0] and level.shape[0] >= size[1] else rgb
            level = area_resize(source, size)
            reg, prob = self._run(self.pnet, ["reg", "prob"], _normalise(level[None]))
            boxes, scores, offsets = pnet_candidates(reg, prob, scale, self.thresholds[0])
            # Cells overlap heavily (stride 2, window 12): thin them per scale first so the
            # cross-scale NMS stays cheap.
            keep = nms(boxes, scores, _NMS_PER_SCALE)
            all_boxes.append(regress(boxes[keep], offsets[keep]))
            all_scores.append(scores[keep])
        if not all_boxes:
            return np.zeros((0, 5), np.float32)
        boxes = np.concatenate(all_boxes)
        scores = np.concatenate(all_scores)
        # facenet-pytorch suppresses across scales on the unregressed boxes; regressing first is
        # what the original MTCNN does and merges the same face found at two scales better.
        keep = nms(boxes, scores, _NMS_ACROSS_SCALES)
        return np.concatenate([square(boxes[keep]), scores[keep, None]], axis=1)

    def _stage2(self, rgb: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """R-Net on all candidates in one batch -> refined squared boxes [K, 5]."""
        boxes = snap_to_pixels(cand[:, :4])
        reg, prob = self._run(self.rnet, ["reg", "prob"], _normalise(crop_batch(rgb, boxes, 24)))
        scores = prob[:, 1]
        ok = scores > self.thresholds[1]
        boxes, scores, reg = boxes[ok], scores[ok], reg[ok]
        keep = nms(boxes, scores, _NMS_RNET)
        refined = square(regress(boxes[keep], reg[keep]))
        return np.concatenate([refined, scores[keep, None]], axis=1)

    def _onet(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """O-Net on square ``boxes`` [K, 4] in one batch -> regressed boxes [K, 4], landmarks
        [K, 5, 2] and face scores [K] (one per box, nothing dropped)."""
        boxes = snap_to_pixels(boxes)
        reg, marks, prob = self._run(
            self.onet, ["reg", "landmarks", "prob"], _normalise(crop_batch(rgb, boxes, 48))
        )
        # Landmarks are fractions of the crop that O-Net saw, so map them before regressing.
        side = (boxes[:, 2:3] - boxes[:, 0:1])[:, :, None]  # [K, 1, 1]; crops are square
        points = np.stack([marks[:, 0:5], marks[:, 5:10]], axis=2) * side + boxes[:, None, 0:2]
        return regress(boxes, reg), points, prob[:, 1]

    def _stage3(self, rgb: np.ndarray, cand: np.ndarray) -> list[Face]:
        """O-Net on all survivors in one batch -> final faces with landmarks."""
        final, points, scores = self._onet(rgb, cand[:, :4])
        ok = scores > self.thresholds[2]
        return _faces(final[ok], points[ok], scores[ok])

    def refine(self, rgb: np.ndarray, boxes: np.ndarray, passes: int = 2) -> list[Face | None]:
        """O-Net alone on where faces are expected (e.g. a track's predicted box): each box is
        squared and handed to O-Net, whose regressed box is squared and handed back ``passes``
        times, so a face that moved a fraction of its size is centred again. One result per
        box: the face there, or None when O-Net no longer sees one."""
        rgb = np.ascontiguousarray(rgb)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if not len(boxes):
            return []
        for _ in range(passes):
            final, points, scores = self._onet(rgb, square(boxes))
            boxes = final
        return [Face(final[k].astype(np.float32), points[k].astype(np.float32), float(scores[k]))
                if scores[k] > self.thresholds[2] else None for k in range(len(final))]

    def detect(self, rgb: np.ndarray, min_face_size: float | None = None) -> list[Face]:
        """Faces in a uint8 H x W x 3 RGB image, sorted by score, best first; none smaller than
        ``min_face_size`` px is searched for (None: the detector's own ``min_face_size``)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 RGB image, got shape {rgb.shape}")
        if rgb.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {rgb.dtype}")
        rgb = np.ascontiguousarray(rgb)
        cand = self._stage1(rgb, min_face_size or self.min_face_size)
        if len(cand):
            cand = self._stage2(rgb, cand)
        if not len(cand):
            return []
        return self._stage3(rgb, cand)


def _faces(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray) -> list[Face]:
    """One Face per box left after O-Net's NMS, best score first. ``mode="min"``: a small box
    lying inside a bigger face box goes even though their IoU is low."""
    keep = nms(boxes, scores, _NMS_ONET, mode="min")
    return [Face(box=boxes[k].astype(np.float32), landmarks=points[k].astype(np.float32),
                 score=float(scores[k])) for k in keep]
