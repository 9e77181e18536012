"""Photo check (faceguard/access/liveness.py): how much a real head and a waved photo move.

For every face track of the shared clip (real people) and for the enrolment portrait rendered
as a hand-held print (benchmarks/photo_attack.py), the largest `MotionCheck.motion()` the track
reaches, and for real faces the clip time at which it first passes the bar. Prints a table and
writes JSON.

    python benchmarks/liveness.py [--out benchmarks/results/liveness.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from faceguard.access.liveness import MIN_FRAMES, MotionCheck
from faceguard.access.track import IouTracker
from faceguard.camera import FrameSource
from faceguard.settings import DEFAULT_MIN_MOTION
from faceguard.vision.image import load_image
from faceguard.vision.pipeline import FacePipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_attack import ATTACKS, waved  # noqa: E402

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"


def tracks(pipeline: FacePipeline, frames: list[tuple[float, np.ndarray]], min_frames: int = 20) -> list[dict]:
    """Per face track: frames, frames near enough to measure, median face width, largest
    motion, first time over the bar."""
    tracker, checks, seen = IouTracker(), {}, {}
    for t, rgb in frames:
        faces = pipeline.detect(rgb)
        for tid, face in zip(tracker.update([f.box for f in faces]), faces, strict=True):
            check = checks.setdefault(tid, MotionCheck())
            s = seen.setdefault(tid, {"frames": 0, "measured": 0, "widths": [], "max_motion": 0.0,
                                      "passes_at_s": None})
            s["frames"] += 1
            s["measured"] += check.add(t, face.landmarks)
            s["widths"].append(float(face.box[2] - face.box[0]))
            motion = check.motion()
            s["max_motion"] = max(s["max_motion"], motion)
            if s["passes_at_s"] is None and motion >= DEFAULT_MIN_MOTION:
                s["passes_at_s"] = round(t, 2)
    return [{"track": tid, "frames": s["frames"], "measured": s["measured"],
             "face_px": round(float(np.median(s["widths"]))),
             "max_motion": round(s["max_motion"], 3), "passes_at_s": s["passes_at_s"]}
            for tid, s in seen.items() if s["frames"] >= min_frames]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "liveness.json")
    args = ap.parse_args()
    pipeline = FacePipeline.load("cpu")
    with FrameSource(str(VIDEO / "short_hamilton_clip.mp4")) as src:
        clip = [(f.t, f.rgb) for f in iter(src.read, None)]
    real = tracks(pipeline, clip)
    photo = load_image(VIDEO / "lin-manuel-miranda.png")
    attacks = []
    for yaw, pitch, distance in ATTACKS:
        frames = waved(photo, 180, yaw=yaw, pitch=pitch, distance_m=distance)
        for r in tracks(pipeline, [(i / 30.0, f) for i, f in enumerate(frames)]):
            attacks.append({"yaw": yaw, "pitch": pitch, "distance_m": distance, **r})
    print(f"bar: motion ≥ {DEFAULT_MIN_MOTION}")
    print(f"{'':<34}{'frames':>7}{'measured':>9}{'face px':>8}{'max motion':>11}{'passes at':>10}")
    rows = [(f"real, clip track {r['track']}", r) for r in real]
    rows += [(f"photo ±{r['yaw']}° yaw ±{r['pitch']}° pitch {r['distance_m']} m", r) for r in attacks]
    for label, r in rows:
        at = "never" if r["passes_at_s"] is None else f"{r['passes_at_s']:.2f} s"
        print(f"{label:<34}{r['frames']:>7}{r['measured']:>9}{r['face_px']:>8}{r['max_motion']:>11.3f}{at:>10}")
    # Real faces too far away to measure (MotionCheck skipped their frames) are left out.
    near = [r for r in real if r["measured"] >= MIN_FRAMES]
    summary = {"bar": DEFAULT_MIN_MOTION, "real_tracks_measured": len(near),
               "real_min_of_max_motion": min(r["max_motion"] for r in near),
               "photo_max_motion": max(r["max_motion"] for r in attacks),
               "photos_passing": sum(r["passes_at_s"] is not None for r in attacks),
               "real_tracks_passing": sum(r["passes_at_s"] is not None for r in near)}
    print(f"real tracks near enough to measure passing {summary['real_tracks_passing']}/{len(near)} (lowest max motion "
          f"{summary['real_min_of_max_motion']:.3f}); photos passing {summary['photos_passing']}/{len(attacks)} "
          f"(highest motion {summary['photo_max_motion']:.3f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "real": real, "photos": attacks}, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
