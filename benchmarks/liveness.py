"""Photo check (faceguard/access/liveness.py): how much a real head and a waved photo move,
at the frame rates a door PC manages (30, 10 and 5 processed frames per second).

Every frame of the shared clip (real people) and of the enrolment portrait rendered as a
hand-held print (benchmarks/photo_attack.py, four waves) is detected once. A slower door sees
every 3rd (10 fps) or 6th (5 fps) of those frames; each starting frame (phase) is run. Two views:
* per face track as a door at that rate tracks it (IouTracker over the frames it sees): the
  largest ``MotionCheck.motion()`` reached and whether it passes the bar;
* per real track found at 30 fps, its frames resampled: the value at 10 and 5 fps against the
  30 fps value (median and range over the phases).
Prints tables and writes JSON.

    python benchmarks/liveness.py [--out benchmarks/results/liveness.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from faceguard.access.liveness import MIN_EYE_DISTANCE_PX, MIN_SAMPLES, MotionCheck
from faceguard.access.track import IouTracker
from faceguard.camera import FrameSource
from faceguard.settings import DEFAULT_MIN_MOTION
from faceguard.vision.image import load_image
from faceguard.vision.pipeline import FacePipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_attack import ATTACKS, waved  # noqa: E402

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
RATES = {30: 1, 10: 3, 5: 6}          # processed frames per second: every n-th source frame
MIN_TRACK_FRAMES = 20                 # (at 30 fps) shorter tracks are passers-by


def detected(pipeline: FacePipeline, frames: list[tuple[float, np.ndarray]]) -> list[tuple[float, list]]:
    """(time, [(box, landmarks), ...]) per frame."""
    return [(t, [(f.box, f.landmarks) for f in pipeline.detect(rgb)]) for t, rgb in frames]


def tracks(frames: list[tuple[float, list]]) -> dict[int, list[tuple[float, np.ndarray]]]:
    """(time, landmarks) per face track, as an IouTracker over these frames finds them."""
    tracker, out = IouTracker(), {}
    for t, faces in frames:
        for tid, (_, lm) in zip(tracker.update([b for b, _ in faces], t), faces, strict=True):
            out.setdefault(tid, []).append((t, lm))
    return out


def best_motion(samples: list[tuple[float, np.ndarray]]) -> tuple[float, float | None, int]:
    """The largest motion reached, the time it first reached the bar (None: never), and the
    frames near enough to measure."""
    check, best, passed, measured = MotionCheck(), 0.0, None, 0
    for t, lm in samples:
        measured += check.add(t, lm)
        best = max(best, check.motion())
        if passed is None and best >= DEFAULT_MIN_MOTION:
            passed = t
    return best, passed, measured


def near(samples: list) -> bool:
    """Whether a track shows enough frames near enough to the camera to be measured at all."""
    return sum(np.linalg.norm(lm[1] - lm[0]) >= MIN_EYE_DISTANCE_PX for _, lm in samples) >= MIN_TRACK_FRAMES


def as_seen(frames: list, rate: int) -> dict:
    """Tracks as a door at ``rate`` fps finds them, over every phase: the tracks with at least
    1 s of frames near enough to measure, and how many pass (the tracker judges its IoU floor
    on the frames' times, so the clip's gesturing singer stays one track at 5 fps too)."""
    step, rows = RATES[rate], []
    for phase in range(step):
        for tid, samples in tracks(frames[phase::step]).items():
            best, passed, measured = best_motion(samples)
            if measured >= max(MIN_SAMPLES, rate):
                rows.append({"phase": phase, "track": tid, "frames": len(samples), "measured": measured,
                             "max_motion": round(best, 3),
                             "passes_at_s": None if passed is None else round(passed, 2)})
    return {"tracks": len(rows), "passing": sum(r["passes_at_s"] is not None for r in rows),
            "max_motion": round(max((r["max_motion"] for r in rows), default=0.0), 3),
            "min_motion": round(min((r["max_motion"] for r in rows), default=0.0), 3), "rows": rows}


def resampled(samples: list) -> dict:
    """One 30 fps track's best motion at each rate (median and range over the phases)."""
    out = {}
    for rate, step in RATES.items():
        values = [best_motion(samples[phase::step])[0] for phase in range(step)]
        out[rate] = {"median": round(float(np.median(values)), 3), "min": round(min(values), 3),
                     "max": round(max(values), 3)}
    for rate in (10, 5):
        out[rate]["vs_30fps"] = round(out[rate]["median"] / out[30]["median"] - 1, 3) if out[30]["median"] else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "liveness.json")
    args = ap.parse_args()
    pipeline = FacePipeline.load("cpu")
    with FrameSource(str(VIDEO / "short_hamilton_clip.mp4")) as src:
        clip = detected(pipeline, [(f.t, f.rgb) for f in iter(src.read, None)])
    photo = load_image(VIDEO / "lin-manuel-miranda.png")
    prints = {}
    for yaw, pitch, distance in ATTACKS:
        frames = waved(photo, 180, yaw=yaw, pitch=pitch, distance_m=distance)
        prints[f"±{yaw}° yaw ±{pitch}° pitch {distance} m"] = detected(
            pipeline, [(i / 30.0, f) for i, f in enumerate(frames)])

    print(f"bar: motion ≥ {DEFAULT_MIN_MOTION}\n")
    print("real tracks of the clip (found at 30 fps), each resampled; median [range] over the phases")
    real = {}
    for tid, samples in tracks(clip).items():
        if near(samples):
            real[tid] = r = resampled(samples)
            print(f"  track {tid:<3} " + "  ".join(
                f"{rate} fps {r[rate]['median']:.3f} [{r[rate]['min']:.2f}-{r[rate]['max']:.2f}]"
                + (f" ({r[rate]['vs_30fps']:+.0%})" if rate != 30 else "") for rate in RATES))
    print("\nprints, resampled likewise")
    photos = {}
    for label, frames in prints.items():
        (samples,) = [s for s in tracks(frames).values() if len(s) >= MIN_TRACK_FRAMES]
        photos[label] = r = resampled(samples)
        print(f"  {label:<28} " + "  ".join(
            f"{rate} fps {r[rate]['median']:.3f} [{r[rate]['min']:.2f}-{r[rate]['max']:.2f}]" for rate in RATES))
    print("\nas a door at each rate tracks them (every phase): tracks measured, passing, motion range")
    door = {}
    for rate in RATES:
        door[rate] = {"real": as_seen(clip, rate),
                      "photos": [as_seen(frames, rate) for frames in prints.values()]}
        d = door[rate]
        print(f"  {rate:>2} fps  real {d['real']['passing']}/{d['real']['tracks']} pass "
              f"(motion {d['real']['min_motion']:.2f}-{d['real']['max_motion']:.2f}); prints "
              f"{sum(p['passing'] for p in d['photos'])}/{sum(p['tracks'] for p in d['photos'])} pass "
              f"(highest {max(p['max_motion'] for p in d['photos']):.3f})")
    summary = {
        "bar": DEFAULT_MIN_MOTION,
        "real_tracks_near": len(real),
        "real_lowest_motion_any_rate_phase": min(r[rate]["min"] for r in real.values() for rate in RATES),
        "real_worst_median_vs_30fps": max((abs(r[rate]["vs_30fps"]) for r in real.values() for rate in (10, 5)),
                                          default=None),
        "photo_highest_motion_any_rate_phase": max(r[rate]["max"] for r in photos.values() for rate in RATES),
        "photos_passing_any_rate": sum(p["passing"] for d in door.values() for p in d["photos"]),
        "real_near_tracks_passing_every_rate_phase": sum(
            all(r[rate]["min"] >= DEFAULT_MIN_MOTION for rate in RATES) for r in real.values()),
    }
    print("\n" + json.dumps(summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "real_resampled": real, "photos_resampled": photos,
                                    "door": door}, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
