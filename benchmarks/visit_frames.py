"""A multi-frame door visit made from one LFW photo (issue 21, the benchmark's second visit model).

The door fuses a visit's deciding frames: the mean of their embeddings, re-normalised
(gallery/recognise.fuse). LFW has one photo per moment, so a visit's frames are SIMULATED here
from that photo by what a webcam itself changes between consecutive frames of a face that holds
still: a small shift and scale (the head sways by a few pixels, the detector's box moves),
exposure and gamma (auto-exposure hunting), defocus blur, sensor noise and the stream's JPEG
compression. No pose or expression change, no flip: those a camera does not produce, and the
rule fuses the last few frames (settings window_frames, 5), which lie 0.017 apart on the shared
clip (median, consecutive frames). Each variant goes through the real detector, aligner and
embedder. These are synthetic frames and every result made from them says so.

    python benchmarks/visit_frames.py --out /tmp/dev_frames.npz   # 587 photos x 5 frames, ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from faceguard.tools.evaluate import centre_face, load_image, main_face, read_tsv  # noqa: E402

DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "lfw_dev_fold1"
FRAMES = 5          # the door's window_frames


def camera_frame(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One frame a webcam could give of the still face in ``rgb`` (uint8 RGB)."""
    h, w = rgb.shape[:2]
    scale = rng.uniform(0.96, 1.04)
    dx, dy = rng.uniform(-0.015, 0.015, 2) * (w, h)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, scale)
    m[:, 2] += (dx, dy)
    out = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    x = out.astype(np.float32) / 255.0
    x = np.clip(x * rng.uniform(0.85, 1.15), 0, 1) ** rng.uniform(0.9, 1.1)       # exposure, gamma
    sigma = rng.uniform(0.0, 1.0)                                                   # defocus
    if sigma > 0.3:
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = x * 255.0 + rng.normal(0.0, rng.uniform(1.0, 4.0), x.shape)                # sensor noise
    out = np.clip(x, 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 91))])
    return cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED) if ok else out


def embed_frames(pipeline, root: Path, rel_paths: list[str], frames: int, seed: int) -> np.ndarray:
    """[N, frames, D] embeddings: each photo's simulated frames through the real pipeline (the
    face nearest the centre; the centre crop where none is found, as embed_files does)."""
    rng = np.random.default_rng(seed)
    spec = pipeline.embedder.spec
    out = np.zeros((len(rel_paths), frames, spec.embedding_size), np.float32)
    for i, rel in enumerate(rel_paths):
        rgb = load_image(Path(root) / rel)
        chips = []
        for _ in range(frames):
            frame = camera_frame(rgb, rng)
            face = main_face(pipeline.detect(frame), frame.shape)
            if face is None:
                face = centre_face(frame.shape, spec.landmark_template, spec.input_size)
            chips.append(pipeline.align(frame, face))
        out[i] = pipeline.embed_chips(np.stack(chips))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help=".npz with paths and frames [N, K, D]")
    ap.add_argument("--frames", type=int, default=FRAMES)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from faceguard.vision.pipeline import FacePipeline

    files = [r["path"] for r in read_tsv(DEV / "labels.tsv", ("path", "identity"))]
    emb = embed_frames(FacePipeline.load(provider="cpu"), DEV, files, args.frames, args.seed)
    np.savez(args.out, paths=np.array(files, dtype=str), frames=emb)
    print(f"{len(files)} photos x {args.frames} simulated camera frames written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
