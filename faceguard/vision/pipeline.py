"""FacePipeline: an RGB image → one FaceResult per face (box, landmarks, chip, embedding).

The record flows one way: the detector fills box/landmarks/score, alignment adds the chip,
the embedder adds the unit embedding. All chips of one image are embedded in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceguard.vision.align import align_face
from faceguard.vision.detect import Face, MtcnnDetector
from faceguard.vision.embed import Embedder
from faceguard.vision.guided import FULL_EVERY, GuidedDetector
from faceguard.vision.image import shrink_to
from faceguard.vision.models import Manifest, load_manifest, verify_file
from faceguard.vision.runtime import create_session

# Detection runs on at most this many pixels on the long side.
DETECT_MAX_SIDE = 1280
# Smallest face searched for, in pixels of the detection image. A face at the door fills far
# more; smaller ones are too far away to recognise reliably, and each halving of this value
# roughly triples the detector's cost (measured: 20 px 76 ms, 40 px 41 ms per 640×360 frame).
MIN_DETECT_FACE_PX = 40


@dataclass(frozen=True)
class FaceResult:
    face: Face
    chip: np.ndarray       # [S, S, 3] uint8 RGB, aligned
    embedding: np.ndarray  # [D] float32, unit L2 norm
    # False: a flip pipeline's first, plain pass (``process(plain=True)``), not yet the mode
    # the gallery was enrolled in; ``with_flip`` completes it.
    complete: bool = True

    @property
    def box(self) -> np.ndarray:
        return self.face.box

    @property
    def landmarks(self) -> np.ndarray:
        return self.face.landmarks

    @property
    def score(self) -> float:
        return self.face.score


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Squared L2 distance between two unit embeddings, in [0, 4]."""
    d = np.asarray(a, np.float32) - np.asarray(b, np.float32)
    return float(np.dot(d, d))


class FacePipeline:
    def __init__(self, detector: MtcnnDetector, embedder: Embedder, manifest: Manifest):
        self.detector = detector
        self.embedder = embedder
        self.manifest = manifest

    @classmethod
    def load(
        cls,
        provider: str = "auto",
        *,
        model_id: str | None = None,
        flip: bool = True,
        models_dir: Path | None = None,
        threads: int | None = None,
        min_face_size: int = MIN_DETECT_FACE_PX,
    ) -> FacePipeline:
        """Open the detector and embedder listed in the manifest, hashes checked first."""
        manifest = load_manifest(models_dir)
        det = manifest.detector
        sessions = [create_session(verify_file(manifest, p), provider, threads)
                    for p in (det.pnet, det.rnet, det.onet)]
        spec = manifest.embedder(model_id)
        emb_session = create_session(verify_file(manifest, spec.file), provider, threads)
        return cls(MtcnnDetector(*sessions, min_face_size=min_face_size), Embedder(spec, emb_session, flip=flip), manifest)

    # -- facts about what runs -------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """The embedding id every stored vector is tagged with (network + flip mode)."""
        return self.embedder.id

    @property
    def default_threshold(self) -> float:
        return self.embedder.spec.default_threshold

    def threshold_for(self, gallery_size: int, override: float | None = None) -> float:
        """The plain-distance threshold: the user's setting when one is set (`override`), else
        the one calibrated for a gallery of this many people (1 % of strangers per frame)."""
        if override:
            return float(override)
        return self.embedder.spec.threshold_for(gallery_size)

    def scoring_for(self, gallery_size: int, override: float | None = None) -> tuple[str, float]:
        """(rule, threshold) for the door: the runner-up margin rule with its own calibrated
        threshold for large galleries, plain distance otherwise or when the user set one."""
        if override:
            return "distance", float(override)
        spec = self.embedder.spec
        rule = spec.rule_for(gallery_size)
        return rule, spec.threshold_for(gallery_size, rule)

    @property
    def provider(self) -> str:
        """'CUDA' or 'CPU': what actually runs the embedding network."""
        return self.embedder.provider

    @property
    def chip_size(self) -> int:
        return self.embedder.spec.input_size

    # -- the flow --------------------------------------------------------------------------
    def guided(self, full_every: int = FULL_EVERY, min_face_size: float | None = None) -> GuidedDetector:
        """Detection state for one camera stream (see vision/guided.py); pass it to
        ``process(..., guide=)`` frame after frame. ``min_face_size``: px of the frame."""
        return GuidedDetector(self.detector, full_every=full_every, min_face_size=min_face_size)

    def detect(self, rgb: np.ndarray, guide: GuidedDetector | None = None,
               tracks: Sequence[np.ndarray] = ()) -> list[Face]:
        """Faces in the image; with a ``guide``, as the next frame of its stream, looking
        first where ``tracks`` (boxes in this image's pixels) expect faces."""
        small = shrink_to(rgb, DETECT_MAX_SIDE)
        f = rgb.shape[1] / small.shape[1]
        if guide is None:
            faces = self.detector.detect(small)
        else:
            faces = guide.detect(small, [np.asarray(b, np.float32) / f for b in tracks])
        if small is rgb:
            return faces
        return [Face(face.box * f, face.landmarks * f, face.score) for face in faces]

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        spec = self.embedder.spec
        return align_face(rgb, face.landmarks, spec.landmark_template, spec.input_size)

    def process(self, rgb: np.ndarray, max_faces: int | None = None, *,
                guide: GuidedDetector | None = None,
                tracks: Sequence[np.ndarray] = (), plain: bool = False) -> list[FaceResult]:
        """Detect, align and embed every face (largest-score first, at most max_faces); a
        ``guide`` and ``tracks`` as in ``detect``. ``plain``: without the mirror pass for now
        (``with_flip`` adds it to the faces that need it)."""
        faces = self.detect(rgb, guide, tracks)[:max_faces]
        if not faces:
            return []
        chips = np.stack([self.align(rgb, f) for f in faces])
        flip = self.embedder.flip and not plain
        embeddings = self.embedder.embed(chips, flip)
        return [FaceResult(f, c, e, flip or not self.embedder.flip)
                for f, c, e in zip(faces, chips, embeddings, strict=True)]

    def with_flip(self, results: Sequence[FaceResult], which: Sequence[bool]) -> list[FaceResult]:
        """The results with the mirror pass added where ``which`` says and it is missing (one
        batch of the mirror images): the embedding this pipeline's gallery was enrolled with."""
        todo = [k for k, r in enumerate(results) if which[k] and not r.complete]
        out = list(results)
        if todo:
            embeddings = self.embedder.add_mirror(np.stack([results[k].chip for k in todo]),
                                                  np.stack([results[k].embedding for k in todo]))
            for k, e in zip(todo, embeddings, strict=True):
                out[k] = FaceResult(results[k].face, results[k].chip, e)
        return out

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        return self.embedder.embed(chips)
