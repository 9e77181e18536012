"""Track-guided detection for a camera stream: the whole MTCNN cascade only now and then.

A door's faces are large, few, and move little from one frame to the next, yet the full
detector (the P-Net pyramid over the whole picture) is most of a frame's cost. So, per stream:

* every ``full_every``-th frame, and on the first, the whole picture is searched;
* on the frames between, O-Net alone looks where each followed face is expected (the caller's
  track predictions and the faces of the previous frame): ``MtcnnDetector.refine``;
* where O-Net no longer sees a followed face (turned, moved fast, a poor starting box), the
  whole cascade searches the region around it; a face not found there either has left;
* where the picture changed since the last full search, away from the people being followed
  (their faces and the ``BODY_SIDE`` face widths to each side that their arms reach: someone
  stepping in), the whole cascade searches the changed regions only (a cheap test on
  a small grey thumbnail finds them); when they cover much of the picture (a camera cut, the
  lights), the whole picture is searched at once.

A new face away from the people followed is thus found on the frame it changes the picture;
one that steps in right beside them, at the latest on the next full search: within
``full_every`` frames.

Why regions, not a full search on any change: a followed person's own arms and shoulders move
beyond their face (a wave, a hand to the door handle) and changed the picture on 159 of the
shared clip's 275 frames, each then searched whole; a new face can only be where the picture
changed, so searching there finds it as early at a fraction of the cost. Why not around the
followed people: their gestures alone would start such a search on most frames.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import combinations

import cv2
import numpy as np

from faceguard.vision.detect import Face, MtcnnDetector, nms

# The whole picture is searched at least every this many frames (at 30 fps: 1/6 s).
FULL_EVERY = 5
# The change test's thumbnail is the grey picture shrunk by this factor: each of its pixels
# averages 8 x 8 camera pixels, which evens out sensor and compression noise.
THUMB_SHRINK = 8
# A thumbnail pixel that moved by more than this many grey levels since the last full search,
# away from every followed face, is a change worth a full search. (A camera's noise on 8 x 8
# averages is a few levels; a face or a hand stepping into a region shifts it by tens.)
CHANGE_LEVEL = 20
# ... and it takes this many such pixels (one is often a compression blip).
CHANGE_PIXELS = 2
# A changed region is searched with this margin around it, in sizes of the smallest face: a
# face only partly changed (its edge against a background of its own brightness) lies inside.
REGION_MARGIN = 1.0
# Changed regions (margins included) covering more than this share of the picture are searched
# as the whole picture: one pyramid is cheaper than many overlapping crops.
REGION_SHARE_FULL = 0.4
# A followed person's own shoulders and arms reach this many face widths to each side of their
# face: changes there are no reason to search (a wave, a shrug). On the shared clip the singer's
# gestures within 1 face width started a region search on 159 of 275 frames, within 3 on 33
# (with the door's 60 px smallest face; a new face that close is found by the next full search
# instead: at most FULL_EVERY - 1 frames later; measured on the clip: 1 frame at most).
BODY_SIDE = 3.0
# Guided faces that overlap this much (intersection over the smaller box) are one face found
# from two hints (a track's prediction and the previous frame's box).
_SAME_FACE = 0.5


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """Small grey int16 picture for the change test."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    size = (max(1, w // THUMB_SHRINK), max(1, h // THUMB_SHRINK))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.int16)


def followed_region(shape: tuple[int, int], boxes: Sequence[np.ndarray]) -> np.ndarray:
    """Thumbnail mask [h, w] of where followed people are: each face box widened by
    ``BODY_SIDE`` times its width on both sides, from half its height above it down to the
    bottom of the picture (the person's shoulders and arms move with them and are no reason to
    search)."""
    mask = np.zeros(shape, bool)
    for box in boxes:
        x1, y1, x2, y2 = (float(v) / THUMB_SHRINK for v in box)
        w, h = x2 - x1, y2 - y1
        xa, xb = int(max(0, np.floor(x1 - BODY_SIDE * w))), int(max(0, np.ceil(x2 + BODY_SIDE * w)))
        ya = int(max(0, np.floor(y1 - h / 2)))
        mask[ya:, xa:xb] = True
    return mask


class GuidedDetector:
    """Detection for ONE stream of frames (it remembers the last ones); not thread-safe."""

    def __init__(self, detector: MtcnnDetector, *, full_every: int = FULL_EVERY,
                 min_face_size: float | None = None, change_level: float = CHANGE_LEVEL):
        if full_every < 1:
            raise ValueError("full_every must be at least 1")
        self.detector = detector
        self.full_every = int(full_every)
        self.min_face_size = min_face_size      # None: the detector's own
        self.change_level = float(change_level)
        self._since_full: int | None = None     # frames since the last full search
        self._reference: np.ndarray | None = None   # thumbnail at the last full search
        self._reference_boxes: list[np.ndarray] = []
        self._last: list[np.ndarray] = []       # boxes found in the previous frame
        self.last_kind = ""                     # "full" | "guided" | "none": how this frame ran
        self.counts: Counter[str] = Counter()   # frames of each kind, for benchmarks

    def reset(self) -> None:
        """Forget the stream (a new camera, a jump in the video): the next frame is searched."""
        self._since_full, self._reference, self._reference_boxes, self._last = None, None, [], []

    def detect(self, rgb: np.ndarray, tracks: Sequence[np.ndarray] = ()) -> list[Face]:
        """Faces in this frame of the stream; ``tracks``: boxes [x1, y1, x2, y2] where the
        caller expects faces in it (its tracks' predictions), in this image's pixels."""
        thumb = thumbnail(rgb)
        hints = [np.asarray(b, np.float32).reshape(4) for b in tracks] + self._last
        regions = self._search_plan(thumb, hints, rgb.shape[:2])
        if regions is None:
            faces = self.detector.detect(rgb, self.min_face_size)
            self._since_full, self._reference = 0, thumb
            self._reference_boxes = [f.box for f in faces]
            self.last_kind = "full"
        else:
            assert self._since_full is not None
            faces = _one_per_face(self._guided(rgb, hints) + self._search_regions(rgb, regions))
            self._since_full += 1
            self.last_kind = "region" if regions else "guided" if hints else "none"
        self.counts[self.last_kind] += 1
        self._last = [f.box for f in faces]
        return faces

    @property
    def smallest_face(self) -> float:
        return float(self.min_face_size or self.detector.min_face_size)

    def _search_plan(self, thumb: np.ndarray, hints: list[np.ndarray],
                     shape: tuple[int, int]) -> list[np.ndarray] | None:
        """None: search the whole picture; else the regions [x1, y1, x2, y2] (image pixels)
        to search besides the hints: where the picture changed away from followed faces."""
        ref = self._reference
        if self._since_full is None or ref is None or ref.shape != thumb.shape:
            return None
        if self._since_full + 1 >= self.full_every:
            return None
        changed = np.abs(thumb - ref) > self.change_level
        changed &= ~followed_region(thumb.shape, hints + self._reference_boxes)
        if int(changed.sum()) < CHANGE_PIXELS:
            return []
        regions = changed_regions(changed, shape, REGION_MARGIN * self.smallest_face)
        covered = sum(float((r[2] - r[0]) * (r[3] - r[1])) for r in regions)
        return None if covered > REGION_SHARE_FULL * shape[0] * shape[1] else regions

    def _search_regions(self, rgb: np.ndarray, regions: list[np.ndarray]) -> list[Face]:
        """The whole cascade on each region, for faces of the door's smallest size up."""
        faces: list[Face] = []
        for x1, y1, x2, y2 in (r.astype(int) for r in regions):
            if x2 - x1 < self.smallest_face or y2 - y1 < self.smallest_face:
                continue
            shift = np.array([x1, y1], np.float32)
            faces += [Face(f.box + np.tile(shift, 2), f.landmarks + shift, f.score)
                      for f in self.detector.detect(rgb[y1:y2, x1:x2], self.min_face_size)]
        return faces

    def _guided(self, rgb: np.ndarray, hints: list[np.ndarray]) -> list[Face]:
        """O-Net where the hints are; a hint where it sees no face (turned, moved fast, a
        poor starting box) gets the whole cascade on the region around it."""
        if not hints:
            return []     # nothing followed (only a changed region can hold a new face)
        hints = _distinct(hints)
        found = self.detector.refine(rgb, np.stack(hints))
        faces = [f for f in found if f is not None]
        for hint, face in zip(hints, found, strict=True):
            if face is None:
                faces += self._search_around(rgb, hint)
        return faces

    def _search_around(self, rgb: np.ndarray, box: np.ndarray) -> list[Face]:
        """The whole cascade on the square of twice the box's size around its centre, for
        faces from half the box's size up."""
        h, w = rgb.shape[:2]
        side = float(max(box[2] - box[0], box[3] - box[1]))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x1, y1 = int(max(0, cx - side)), int(max(0, cy - side))
        x2, y2 = int(min(w, cx + side)), int(min(h, cy + side))
        smallest = max(side / 2, self.smallest_face)
        if x2 - x1 < smallest or y2 - y1 < smallest:
            return []
        found = self.detector.detect(rgb[y1:y2, x1:x2], smallest)
        shift = np.array([x1, y1], np.float32)
        return [Face(f.box + np.tile(shift, 2), f.landmarks + shift, f.score) for f in found]


def changed_regions(changed: np.ndarray, shape: tuple[int, int], margin: float) -> list[np.ndarray]:
    """Boxes [x1, y1, x2, y2] in image pixels (``shape``: its height and width) around the
    changed thumbnail pixels: each cluster's bounding box widened by ``margin`` px on every
    side, overlapping boxes merged into one."""
    grown = cv2.dilate(changed.astype(np.uint8), np.ones((3, 3), np.uint8))   # speckles: one cluster
    n, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    h, w = shape
    boxes = []
    for x, y, bw, bh, _ in stats[1:n]:
        box = np.array([x, y, x + bw, y + bh], np.float32) * THUMB_SHRINK + np.array([-1, -1, 1, 1]) * margin
        boxes.append(np.clip(box, 0, [w, h, w, h]).astype(np.float32))
    while True:   # merge any two that overlap into their bounding box, until none do
        for i, j in combinations(range(len(boxes)), 2):
            a, b = boxes[i], boxes[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                boxes[i] = np.concatenate([np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])])
                del boxes[j]
                break
        else:
            return boxes


def _one_per_face(faces: list[Face]) -> list[Face]:
    """One face where several searches found the same one (a hint's and a region's), the best
    score first."""
    if not faces:
        return []
    boxes = np.stack([f.box for f in faces])
    scores = np.array([f.score for f in faces], np.float32)
    return [faces[k] for k in nms(boxes, scores, _SAME_FACE, mode="min")]


def _distinct(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """The boxes less any that overlaps an earlier one by more than ``_SAME_FACE`` (IoU): a
    track's prediction and the previous frame's box of the same face are one hint."""
    kept: list[np.ndarray] = []
    for b in boxes:
        if all(_iou(b, k) <= _SAME_FACE for k in kept):
            kept.append(b)
    return kept


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
