"""Training data: folder-per-person image sets → aligned chips, P×K batches, augmentation.

Chips are aligned by the app's own code (FacePipeline.detect, then the similarity warp of
faceguard.vision.align onto the network's landmark template), so a fine-tuned network sees
exactly the crops it will see at the door. Aligned chips are cached as PNG files, keyed by the
source file and the template, because MTCNN on a CPU is slower than one training epoch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import platformdirs

from faceguard.atomic import write_bytes_atomic
from faceguard.errors import FaceGuardError, ImageError
from faceguard.tools.evaluate import centre_face
from faceguard.vision.align import align_face
from faceguard.vision.image import IMAGE_SUFFIXES, load_image
from faceguard.vision.main_face import main_face
from faceguard.vision.pipeline import FacePipeline

log = logging.getLogger(__name__)

# Landmarks (eyes, nose, mouth corners; image-left first) of FaceNet's 160-px crops, for
# facenet-pytorch's weights. They were trained on MTCNN boxes with a 44-px margin at 182 px,
# centre-cropped to 160 (the box then spans 11..149). The mean landmark position inside the
# MTCNN box was measured with FaceGuard's detector on 147 LFW fold-1 faces and mapped there.
FACENET_TEMPLATE_160 = np.array(
    [[52.5, 64.9], [113.8, 64.0], [83.9, 91.5], [57.5, 116.1], [110.5, 115.4]], np.float32)


@dataclass
class ChipSet:
    chips: np.ndarray   # [M, S, S, 3] uint8 RGB, aligned
    labels: np.ndarray  # [M] int64, index into names
    names: list[str]    # identity names
    paths: list[Path]   # source image of each chip

    def __len__(self) -> int:
        return len(self.labels)


def person_root(data: Path) -> Path:
    """The folder holding one sub-folder per person (LFW-style sets keep them in images/)."""
    data = Path(data)
    if not data.is_dir():
        raise FaceGuardError(f"The training data folder {data} does not exist.")
    return data / "images" if (data / "images").is_dir() else data


def scan_identities(data: Path, min_images: int = 2) -> dict[str, list[Path]]:
    """{person: sorted image paths} for every sub-folder with at least `min_images` images."""
    root = person_root(data)
    people = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if len(images) >= min_images:
            people[folder.name] = images
    if len(people) < 2:
        raise FaceGuardError(
            f"{root} needs at least two person folders with {min_images} or more photos each "
            f"(found {len(people)}); put each person's photos in a folder named after them.")
    return people


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("FaceGuard", appauthor=False)) / "chips"


class ChipAligner:
    """Detects the face nearest the image centre and warps it onto `template` (cached)."""

    def __init__(self, pipeline: FacePipeline, template: np.ndarray, size: int,
                 cache_dir: Path | None = None):
        self.pipeline = pipeline
        self.template = np.asarray(template, np.float32).reshape(5, 2)
        self.size = int(size)
        key = hashlib.sha1(self.template.tobytes()).hexdigest()[:10]
        self.cache = Path(cache_dir or default_cache_dir()) / f"{self.size}-{key}"
        self.cache.mkdir(parents=True, exist_ok=True)

    def _cache_file(self, path: Path) -> Path:
        st = path.stat()
        ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()
        return self.cache / (hashlib.sha1(ident).hexdigest()[:20] + ".png")

    def chip(self, path: Path, centre_fallback: bool = False) -> np.ndarray | None:
        """uint8 [S, S, 3] RGB chip, or None when no face is found (unless `centre_fallback`:
        then the template laid over the image centre, as the evaluation code does)."""
        path = Path(path)
        cached = self._cache_file(path)
        if cached.is_file():
            bgr = cv2.imread(str(cached), cv2.IMREAD_COLOR)
            if bgr is not None and bgr.shape[:2] == (self.size, self.size):
                return bgr[:, :, ::-1].copy()
        rgb = load_image(path)
        face = main_face(self.pipeline.detect(rgb), rgb.shape)
        if face is None:
            if not centre_fallback:
                return None
            face = centre_face(rgb.shape, self.template, self.size)
        chip = align_face(rgb, face.landmarks, self.template, self.size)
        ok, png = cv2.imencode(".png", np.ascontiguousarray(chip[:, :, ::-1]))
        if ok:  # atomic: a killed run never leaves a half-written chip; unencodable: no cache
            write_bytes_atomic(cached, png.tobytes(), 0o644)
        return chip


def load_chipset(people: dict[str, list[Path]], aligner: ChipAligner,
                 max_per_person: int | None = None) -> ChipSet:
    """Align every listed image; a person left with fewer than 2 chips is dropped."""
    chips, labels, names, paths = [], [], [], []
    for name, images in people.items():
        got = []
        for path in images[:max_per_person]:
            try:
                chip = aligner.chip(path)
            except ImageError as exc:
                log.warning("skipping %s: %s", path, exc)
                continue
            if chip is None:
                log.info("no face found in %s; skipped", path)
                continue
            got.append((chip, path))
        if len(got) < 2:
            continue
        for chip, path in got:
            chips.append(chip)
            labels.append(len(names))
            paths.append(path)
        names.append(name)
    if len(names) < 2:
        raise FaceGuardError("Fewer than two people have two or more photos with a detectable face.")
    return ChipSet(np.stack(chips), np.asarray(labels, np.int64), names, paths)


class PKSampler:
    """Batches of P people × K images each (K drawn without replacement when a person has at
    least K images, else with). One epoch has about as many images as the set."""

    def __init__(self, labels: np.ndarray, p: int, k: int, seed: int = 0):
        self.labels = np.asarray(labels)
        self.by_person = [np.flatnonzero(self.labels == i) for i in np.unique(self.labels)]
        if len(self.by_person) < 2:
            raise FaceGuardError("A triplet batch needs at least two people.")
        self.p = min(p, len(self.by_person))
        self.k = k
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return max(1, len(self.labels) // (self.p * self.k))

    def __iter__(self) -> Iterator[np.ndarray]:
        for _ in range(len(self)):
            people = self.rng.choice(len(self.by_person), self.p, replace=False)
            idx = [self.rng.choice(self.by_person[i], self.k, replace=len(self.by_person[i]) < self.k)
                   for i in people]
            yield np.concatenate(idx)


def augment(chip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light augmentation: mirror, brightness/contrast/saturation jitter, ±6° / ±5 % / ±3 %
    affine. Kept small because the chips are already aligned the way the app aligns them."""
    out = chip[:, ::-1] if rng.random() < 0.5 else chip
    s = out.shape[0]
    angle, scale = rng.uniform(-6, 6), rng.uniform(0.95, 1.05)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), angle, scale)
    m[:, 2] += rng.uniform(-0.03, 0.03, 2) * s
    out = cv2.warpAffine(np.ascontiguousarray(out), m, (s, s), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT101).astype(np.float32)
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * rng.uniform(0.8, 1.2)                       # saturation
    out = (out - out.mean()) * rng.uniform(0.8, 1.2) + out.mean()           # contrast
    out = out + rng.uniform(-20, 20)                                        # brightness
    return np.clip(out, 0, 255).astype(np.uint8)


def to_tensor(chips: np.ndarray):
    """uint8 [N, S, S, 3] → float32 torch [N, 3, S, S] in 0..255 (the nets normalise)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.asarray(chips).transpose(0, 3, 1, 2),
                                                 dtype=np.float32))
