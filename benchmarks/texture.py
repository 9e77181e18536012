"""Texture signal (faceguard/vision/texture.py): calibration on the project's own material, and
its cost next to one embedding.

Genuine captures: every face of the shared clip and the main face of every LFW dev photo.
Attacks: the publication's two examples (a print and a screen: REAL attack photos), and two
SYNTHETIC sets made here from LFW photos (every ``--every``-th): prints held up to the camera
(benchmarks/photo_attack.py) and screen replays (benchmarks/screen_attack.py: sub-pixel grid,
tone, bezel, glare), a phone held up and a monitor filling the picture. Synthetic numbers say what the signal does on renderings, not on real
phones and prints.

The threshold is the score below which ``--reject`` (5 %) of the judged genuine frames fall.
Cost: ms per face of the texture networks (both crops, both networks) against one embedding
as the door computes it (flip-averaged: the chip and its mirror), in alternating rounds on the
same faces; the median over rounds. Measured on a shared 2-core machine under other load: the
ratio is the number to read, not the milliseconds.

    python benchmarks/texture.py [--out benchmarks/results/texture.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from faceguard.access.track import IouTracker
from faceguard.camera import FrameSource
from faceguard.vision.image import load_image
from faceguard.vision.main_face import main_face
from faceguard.vision.pipeline import FacePipeline
from faceguard.vision.texture import TextureReading, TextureScorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_attack import render  # noqa: E402
from screen_attack import screen_frame  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
CLIP = SHARED / "data" / "video" / "short_hamilton_clip.mp4"
LFW = SHARED / "data" / "lfw_dev_fold1" / "images"
EXAMPLES = SHARED / "models" / "silent-face"


def read_main(pipeline: FacePipeline, scorer: TextureScorer, rgb: np.ndarray) -> TextureReading | None:
    face = main_face(pipeline.detect(rgb), rgb.shape)
    return None if face is None else scorer.read(rgb, [face.box])[0]


def clip_readings(pipeline: FacePipeline, scorer: TextureScorer) -> tuple[list, dict[int, list]]:
    """Every face of every clip frame, and the judged scores per face track."""
    readings, tracks, tracker = [], {}, IouTracker()
    with FrameSource(str(CLIP)) as src:
        for frame in iter(src.read, None):
            faces = pipeline.detect(frame.rgb)
            got = scorer.read(frame.rgb, [f.box for f in faces])
            for tid, r in zip(tracker.update([f.box for f in faces]), got, strict=True):
                readings.append(r)
                if r.score is not None:
                    tracks.setdefault(tid, []).append(r.score)
    return readings, tracks


def attack_frames(photos: list[Path], seed: int):
    """(kind, RGB frame): per photo two synthetic prints, two phones held up (bezel in view)
    and two monitors close up (bezel out of view, a faint sub-pixel grid)."""
    rng = np.random.default_rng(seed)
    for path in photos:
        rgb = load_image(path)
        for _ in range(2):
            yield "print (synthetic)", render(rgb, rng.uniform(-25, 25), rng.uniform(-15, 15),
                                              rng.uniform(-8, 8), rng.uniform(0.22, 0.32))
            yield "phone screen (synthetic)", screen_frame(rgb, rng, face_frac=rng.uniform(0.5, 0.75))
            yield "monitor close up (synthetic)", screen_frame(
                rgb, rng, face_frac=rng.uniform(1.0, 1.3), grid=(0.05, 0.2))


def summarise(readings: list[TextureReading | None], threshold: float, below_means: str) -> dict:
    judged = [r.score for r in readings if r is not None and r.score is not None]
    abstained = sum(1 for r in readings if r is not None and r.score is None)
    below = sum(s < threshold for s in judged)
    return {"faces": len(readings), "no_face_found": sum(r is None for r in readings),
            "abstained": abstained, "judged": len(judged), below_means: below,
            f"{below_means}_rate": round(below / len(judged), 4) if judged else None,
            "median_score": round(float(np.median(judged)), 4) if judged else None}


def cost(pipeline: FacePipeline, scorer: TextureScorer, rounds: int, reps: int) -> dict:
    """ms per face, texture vs one (flip-averaged) embedding, alternating rounds on clip faces."""
    samples = []
    with FrameSource(str(CLIP)) as src:
        for frame in iter(src.read, None):
            faces = [f for f in pipeline.detect(frame.rgb) if scorer.read(frame.rgb, [f.box])[0].score is not None]
            if faces:
                samples.append((frame.rgb, faces[0].box, pipeline.align(frame.rgb, faces[0])))
    samples = samples[:: max(1, len(samples) // reps)][:reps]
    texture_ms, embed_ms = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for rgb, box, _ in samples:
            scorer.live_scores(rgb, [box])
        t1 = time.perf_counter()
        for _, _, chip in samples:
            pipeline.embedder.embed(chip[None])
        t2 = time.perf_counter()
        texture_ms.append((t1 - t0) * 1000 / len(samples))
        embed_ms.append((t2 - t1) * 1000 / len(samples))
    ratios = [t / e for t, e in zip(texture_ms, embed_ms, strict=True)]
    return {"rounds": rounds, "faces_per_round": len(samples),
            "texture_ms_per_face_median": round(float(np.median(texture_ms)), 2),
            "embedding_ms_per_face_median": round(float(np.median(embed_ms)), 2),
            "ratio_median": round(float(np.median(ratios)), 3),
            "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "embedding": "the door's: flip-averaged (chip + mirror in one batch)"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "texture.json")
    ap.add_argument("--reject", type=float, default=0.05, help="genuine frames to reject")
    ap.add_argument("--every", type=int, default=5, help="every n-th LFW photo becomes attacks")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pipeline, scorer = FacePipeline.load("cpu"), TextureScorer.load("cpu")

    clip, tracks = clip_readings(pipeline, scorer)
    photos = sorted(LFW.glob("*/*.jpg"))
    lfw = [read_main(pipeline, scorer, load_image(p)) for p in photos]
    genuine = [r.score for r in clip + lfw if r is not None and r.score is not None]
    threshold = round(float(np.quantile(genuine, args.reject)), 3)

    attacks: dict[str, list] = {"published examples F1 (print), F2 (screen)": [
        read_main(pipeline, scorer, load_image(EXAMPLES / f"sample_image_{n}.jpg")) for n in ("F1", "F2")]}
    for kind, rgb in attack_frames(photos[:: args.every], args.seed):
        attacks.setdefault(kind, []).append(read_main(pipeline, scorer, rgb))

    visits = {tid: float(np.mean(s)) for tid, s in tracks.items() if len(s) >= 3}
    result = {
        "threshold": threshold, "reject_target": args.reject,
        "genuine": {"shared clip (every face, every frame)": summarise(clip, threshold, "rejected"),
                    "LFW dev photos (main face)": summarise(lfw, threshold, "rejected"),
                    "pooled": {"judged": len(genuine),
                               "rejected_rate": round(float(np.mean(np.asarray(genuine) < threshold)), 4)},
                    "shared clip tracks (mean of >= 3 judged frames)": {
                        "tracks": len(visits), "rejected": sum(v < threshold for v in visits.values()),
                        "means": sorted(round(v, 3) for v in visits.values())}},
        "attacks": {k: summarise(v, threshold, "caught") for k, v in attacks.items()},
        "cost": cost(pipeline, scorer, args.rounds, args.reps),
        "note": "synthetic attacks are renderings (benchmarks/photo_attack.py, screen_attack.py), "
                "not real prints or screens; measured on a shared 2-core CPU under load",
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
