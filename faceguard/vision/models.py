"""The model manifest: which ONNX files make up FaceGuard's detector and embedders.

models/manifest.json is written by `faceguard/train/convert.py` (and `faceguard export`) and
read here. Every file is checked against its SHA-256 before onnxruntime sees it, so a corrupt
or swapped file is named in a clear error instead of producing wrong distances.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from faceguard import paths
from faceguard.errors import ModelError

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class EmbedderSpec:
    """How to feed one embedding network and how to read its output."""

    id: str
    file: Path
    input_size: int                 # square chip side in pixels
    mean: tuple[float, float, float]  # subtracted from RGB pixels (0..255) before the net
    std: tuple[float, float, float]   # then divided by this
    landmark_template: np.ndarray   # [5, 2] chip pixels: eyes, nose, mouth corners (image-left first)
    embedding_size: int
    default_threshold: float        # squared L2 between unit embeddings, in [0, 4]
    # (gallery size, threshold) pairs: the threshold that accepts ~1 % of strangers per frame
    # for a gallery of that many people (more people = more chances for a stranger to match).
    threshold_curve: tuple[tuple[int, float], ...] = ()
    # From this gallery size on, the runner-up margin rule scores better (0 = never), with its
    # own thresholds: a threshold only means something for the rule it was calibrated with.
    margin_from_gallery_size: int = 0
    margin_threshold_curve: tuple[tuple[int, float], ...] = ()
    # Per-VISIT zones (issue 21): within strict(n) a visit is let in at once (≤ 0.01 % of
    # stranger visits), within normal(n) it needs a PIN (≤ 1 %); n counts learned templates.
    visit_strict_curve: tuple[tuple[int, float], ...] = ()
    visit_normal_curve: tuple[tuple[int, float], ...] = ()

    def rule_for(self, gallery_size: int) -> str:
        """'margin' for galleries large enough for it to help, else 'distance'."""
        use_margin = self.margin_from_gallery_size and gallery_size >= self.margin_from_gallery_size
        return "margin" if use_margin and self.margin_threshold_curve else "distance"

    def threshold_for(self, gallery_size: int, rule: str = "distance") -> float:
        """The calibrated threshold for a gallery of this size (log-size interpolation)."""
        curve = {"margin": self.margin_threshold_curve, "visit-strict": self.visit_strict_curve,
                 "visit-normal": self.visit_normal_curve}.get(rule, self.threshold_curve)
        if not curve:
            return self.default_threshold
        n = max(1, int(gallery_size))
        if n <= curve[0][0]:
            return curve[0][1]
        for (n0, t0), (n1, t1) in zip(curve, curve[1:], strict=False):
            if n <= n1:
                w = (np.log(n) - np.log(n0)) / (np.log(n1) - np.log(n0))
                return float(t0 + w * (t1 - t0))
        return curve[-1][1]


@dataclass(frozen=True)
class DetectorSpec:
    id: str
    pnet: Path
    rnet: Path
    onet: Path


@dataclass(frozen=True)
class TextureNet:
    """One anti-spoofing network of the texture signal and the crop it was trained on."""

    file: Path
    scale: float                    # crop side = this × the (reshaped) face box


@dataclass(frozen=True)
class TextureSpec:
    """The passive texture signal (vision/texture.py): networks, how to crop, the threshold."""

    id: str
    nets: tuple[TextureNet, ...]
    input_size: int                 # square crop side fed to each network
    live_class: int                 # index of "live" in each network's softmax
    box_reshape: tuple[float, float, float]  # (width ×, height ×, centre down by × height)
    threshold: float                # fused live score below it: the frame looks like an attack


@dataclass(frozen=True)
class Manifest:
    root: Path
    detector: DetectorSpec
    embedders: dict[str, EmbedderSpec]
    default_embedder: str
    sha256: dict[str, str]
    texture: TextureSpec | None = None   # None: this models folder has no texture networks

    def embedder(self, model_id: str | None = None) -> EmbedderSpec:
        key = model_id or self.default_embedder
        if key not in self.embedders:
            raise ModelError(
                f"Unknown embedding model '{key}'; the manifest in {self.root} lists: "
                f"{', '.join(sorted(self.embedders))}."
            )
        return self.embedders[key]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _curve(points) -> tuple[tuple[int, float], ...]:
    return tuple((int(n), float(t)) for n, t in points)


def _texture_spec(raw: dict | None, root: Path) -> TextureSpec | None:
    if raw is None:
        return None
    reshape = raw["box_reshape"]
    return TextureSpec(
        id=str(raw["id"]),
        nets=tuple(TextureNet(root / n["file"], float(n["scale"])) for n in raw["networks"]),
        input_size=int(raw["input_size"]), live_class=int(raw["live_class"]),
        box_reshape=(float(reshape["width"]), float(reshape["height"]), float(reshape["down"])),
        threshold=float(raw["threshold"]))


def load_manifest(root: Path | None = None) -> Manifest:
    root = Path(root) if root else paths.models_dir()
    path = root / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        det = raw["detector"]
        detector = DetectorSpec(det["id"], root / det["pnet"], root / det["rnet"], root / det["onet"])
        embedders = {}
        for model_id, e in raw["embedders"].items():
            embedders[model_id] = EmbedderSpec(
                id=model_id,
                file=root / e["file"],
                input_size=int(e["input_size"]),
                mean=tuple(float(v) for v in e["mean"]),
                std=tuple(float(v) for v in e["std"]),
                landmark_template=np.asarray(e["landmark_template"], dtype=np.float32).reshape(5, 2),
                embedding_size=int(e["embedding_size"]),
                default_threshold=float(e["default_threshold"]),
                threshold_curve=_curve(e.get("threshold_curve", [])),
                margin_from_gallery_size=int(e.get("margin_rule", {}).get("from_gallery_size", 0)),
                margin_threshold_curve=_curve(e.get("margin_rule", {}).get("threshold_curve", [])),
                visit_strict_curve=_curve(e.get("visit_zones", {}).get("strict_curve", [])),
                visit_normal_curve=_curve(e.get("visit_zones", {}).get("normal_curve", [])),
            )
        return Manifest(root, detector, embedders, raw["default_embedder"], dict(raw["sha256"]),
                        _texture_spec(raw.get("texture"), root))
    except FileNotFoundError as exc:
        raise ModelError(f"The model manifest {path} is missing; reinstall FaceGuard.") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"The model manifest {path} is damaged ({exc}); reinstall FaceGuard.") from exc


@lru_cache(maxsize=32)
def _verified(path: Path, size: int, mtime: float, expected: str) -> bool:
    # Cached per (size, mtime) so that re-opening a pipeline does not re-hash 20 MB each time.
    return sha256_of(path) == expected


def verify_file(manifest: Manifest, path: Path) -> Path:
    """Return `path` when it exists and matches its recorded SHA-256, else raise ModelError."""
    name = Path(path).name
    expected = manifest.sha256.get(name)
    if expected is None:
        raise ModelError(f"The model file {name} is not listed in {manifest.root / MANIFEST_NAME}.")
    try:
        st = Path(path).stat()
    except FileNotFoundError as exc:
        raise ModelError(f"The model file {path} is missing; reinstall FaceGuard.") from exc
    if not _verified(Path(path), st.st_size, st.st_mtime, expected):
        raise ModelError(
            f"The model file {path} is corrupt or was changed (SHA-256 does not match the "
            "manifest); reinstall FaceGuard or rebuild the models with `faceguard/train/convert.py`."
        )
    return Path(path)
