"""The passive texture signal: does this face look like skin in front of the camera, or like a
screen or a print held up to it? One "live" score in [0, 1] per face, or None (abstained).

Two Silent-Face MiniFASNet networks (models/README.md: provenance, licence, calibration) each
see an 80×80 crop around the face box, at 2.7× and 4.0× the box, so they see the face's own
texture and what surrounds it (a phone's edge, a print's border, glare). The crops are made as
the networks were trained:
* their detector's box is about 9 % wider, 10 % shorter and 6 % (of its height) lower than
  MTCNN's, so MTCNN's box is reshaped that way first (manifest ``box_reshape``);
* a rectangle ``scale`` × that box around its centre, the scale reduced when the rectangle
  would be larger than the image, shifted (not clipped) back inside the image at its borders,
  then resized to 80×80 (so it keeps the box's aspect ratio before the resize, as in training);
* BGR channel order, raw 0..255 floats (no mean, no std), NCHW.
The live score is the mean of the two networks' softmax probability of class 1 ("live"); the
published use sums them, the mean keeps it in [0, 1].

Its errors follow image quality: dim and noisy, blurred or small faces of real people score as
attacks. So it abstains (None) on a face it cannot judge, by the enrolment gate's own measures
(vision/quality): a face smaller than ``MIN_TEXTURE_FACE_PX``, too dark, or blurred. A score is
evidence for a visit, never a verdict on one frame (access/texture_vote.py decides over frames).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceguard.errors import ModelError
from faceguard.vision.models import Manifest, TextureSpec, load_manifest, verify_file
from faceguard.vision.quality import MIN_BRIGHTNESS, MIN_SHARPNESS, face_region, luma, sharpness
from faceguard.vision.runtime import create_session

log = logging.getLogger(__name__)
Box = Sequence[float] | np.ndarray     # [x1, y1, x2, y2] in pixels

# Shorter side of the MTCNN box (pixels) below which the networks mistake real faces for
# attacks (the weights' README: below 80-100 px); the enrolment gate asks for 80 too.
MIN_TEXTURE_FACE_PX = 80.0


@dataclass(frozen=True)
class TextureReading:
    """One face's texture: ``score`` None when it abstained, and then ``why`` says why."""

    score: float | None
    why: str = ""                    # "" | "small" | "dark" | "blurred"

    def to_dict(self) -> dict:
        return {"score": self.score, "why": self.why}


def reshape_box(box: Box, reshape: tuple[float, float, float]) -> tuple[float, float, float, float]:
    """MTCNN's [x1, y1, x2, y2] as the networks' detector would have drawn it: (cx, cy, w, h)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    kw, kh, down = reshape
    return (x1 + x2) / 2, (y1 + y2) / 2 + down * h, w * kw, h * kh


def crop_rect(center_box: tuple[float, float, float, float], scale: float,
              width: int, height: int) -> tuple[int, int, int, int]:
    """Inclusive pixel rectangle (x1, y1, x2, y2): ``scale`` × the box around its centre, the
    scale capped so the rectangle fits the image, shifted back inside at the borders."""
    cx, cy, w, h = center_box
    w, h = max(w, 1.0), max(h, 1.0)
    scale = min(scale, (height - 1) / h, (width - 1) / w)
    new_w, new_h = w * scale, h * scale
    x1, y1 = cx - new_w / 2, cy - new_h / 2
    x2, y2 = cx + new_w / 2, cy + new_h / 2
    if x1 < 0:
        x2, x1 = x2 - x1, 0.0
    if y1 < 0:
        y2, y1 = y2 - y1, 0.0
    if x2 > width - 1:
        x1, x2 = x1 - (x2 - width + 1), float(width - 1)
    if y2 > height - 1:
        y1, y2 = y1 - (y2 - height + 1), float(height - 1)
    return int(x1), int(y1), int(x2), int(y2)


def texture_crop(rgb: np.ndarray, box: Box, scale: float, spec: TextureSpec) -> np.ndarray:
    """One network's input crop: [S, S, 3] uint8 **BGR** (the networks' channel order)."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = crop_rect(reshape_box(box, spec.box_reshape), scale, w, h)
    patch = rgb[max(0, y1):y2 + 1, max(0, x1):x2 + 1]
    patch = cv2.resize(patch, (spec.input_size, spec.input_size))
    return np.ascontiguousarray(patch[:, :, ::-1])


def abstain_reason(rgb: np.ndarray, box: Box) -> str:
    """Why this face cannot be judged ("" when it can): too small, too dark or blurred."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not math.isfinite(x1 + y1 + x2 + y2) or min(x2 - x1, y2 - y1) < MIN_TEXTURE_FACE_PX:
        return "small"
    region = face_region(luma(rgb), box)
    if region.size == 0:
        return "small"
    if float(region.mean()) < MIN_BRIGHTNESS:
        return "dark"
    if sharpness(region) < MIN_SHARPNESS:
        return "blurred"
    return ""


class TextureScorer:
    """The two networks of the manifest's ``texture`` entry, through onnxruntime."""

    def __init__(self, spec: TextureSpec, sessions: Sequence):
        self.spec = spec
        self.sessions = list(sessions)
        self._inputs = [s.get_inputs()[0].name for s in self.sessions]

    @classmethod
    def load(cls, provider: str = "auto", *, models_dir: Path | None = None,
             threads: int | None = None, manifest: Manifest | None = None) -> TextureScorer:
        """Open the texture networks listed in the manifest, hashes checked first."""
        manifest = manifest or load_manifest(models_dir)
        spec = manifest.texture
        if spec is None:
            raise ModelError(f"The models in {manifest.root} have no texture networks (the "
                             "photo check's screen and print signal); reinstall FaceGuard.")
        sessions = [create_session(verify_file(manifest, net.file), provider, threads)
                    for net in spec.nets]
        return cls(spec, sessions)

    @property
    def threshold(self) -> float:
        return self.spec.threshold

    def live_scores(self, rgb: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """The fused live score of every box, judged or not: [N] float in [0, 1]."""
        out = np.zeros(len(boxes), np.float64)
        if len(boxes) == 0:
            return out
        for net, session, name in zip(self.spec.nets, self.sessions, self._inputs, strict=True):
            crops = np.stack([texture_crop(rgb, b, net.scale, self.spec) for b in boxes])
            x = crops.transpose(0, 3, 1, 2).astype(np.float32)
            probs = session.run(None, {name: x})[0]
            out += probs[:, self.spec.live_class]
        return out / len(self.sessions)

    def read(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[TextureReading]:
        """One reading per box of this RGB frame; the networks run only on faces it can judge."""
        why = [abstain_reason(rgb, b) for b in boxes]
        judged = [b for b, w in zip(boxes, why, strict=True) if not w]
        scores = iter(self.live_scores(rgb, judged).tolist())
        return [TextureReading(None, w) if w else TextureReading(float(next(scores))) for w in why]

    def score(self, rgb: np.ndarray, box: Box) -> float | None:
        """One face's live score, or None when it abstains."""
        return self.read(rgb, [box])[0].score

    def scores(self, rgb: np.ndarray, boxes: Sequence[Box],
               wanted: Sequence[bool]) -> list[float | None]:
        """One live score per box where ``wanted`` (the door: faces being decided), None for
        the others and where it abstains; the networks run only on the wanted ones."""
        picked = [i for i, w in enumerate(wanted) if w]
        out: list[float | None] = [None] * len(boxes)
        for i, reading in zip(picked, self.read(rgb, [boxes[i] for i in picked]), strict=True):
            out[i] = reading.score
        return out


def scorer_for(pipeline) -> TextureScorer | None:
    """The texture networks of the pipeline's models folder, on the pipeline's provider; None
    (logged) when that folder has none, e.g. an exported model's folder made before them. A
    damaged file is a ModelError like any other model's."""
    manifest = pipeline.manifest
    if manifest.texture is None:
        log.warning("the models in %s have no texture networks: the photo check runs without "
                    "the screen and print signal", manifest.root)
        return None
    return TextureScorer.load("cpu" if pipeline.provider == "CPU" else "auto", manifest=manifest)
