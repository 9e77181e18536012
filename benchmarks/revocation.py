"""Revocation latency: how long a running door keeps letting in someone who was just removed.

The door runs on the shared clip (Lin-Manuel Miranda enrolled, let in again and again: photo
check off, no cool-down, the clip looping). At a random moment another connection to the
gallery (what `faceguard gallery remove` is) erases him. Measured per trial: the time from the
removal's commit to the door's first frame matched without him, and the grants after the commit
(must be 0). Prints a table and writes JSON.

    python benchmarks/revocation.py [--trials 10] [--out benchmarks/results/revocation.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"


def trial(pipeline, seed: int) -> dict:
    from faceguard.camera import FrameSource
    from faceguard.doorcheck import DoorCheck
    from faceguard.gallery.enrol import enrol
    from faceguard.gallery.store import Gallery
    from faceguard.settings import Settings
    from faceguard.vision.image import load_image

    with tempfile.TemporaryDirectory() as tmp:
        for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
            os.environ[var] = f"{tmp}/{var.lower()}"
        with Gallery.open() as gallery:
            enrol(gallery, pipeline, load_image(VIDEO / "lin-manuel-miranda.png"), "Lin-Manuel Miranda",
                  "E001", consent=True)
        remove_after = random.Random(seed).randint(20, 120)          # frames into the run
        with Gallery.open() as gallery, FrameSource(VIDEO / "short_hamilton_clip.mp4", loop=True) as src:
            check = DoorCheck(pipeline, gallery, Settings(photo_check=False, cooldown_s=0.0))
            removed_at = reloaded_at = None
            grants_before = grants_after = 0
            for i in range(remove_after + 60):
                if i == remove_after:
                    with Gallery.open() as other:                       # another process's view
                        other.remove("E001")
                    removed_at = time.perf_counter()
                report = check.process(src.read())
                if removed_at is not None and reloaded_at is None and len(check.matcher) == 0:
                    reloaded_at = time.perf_counter()
                granted = sum(d.kind == "GRANTED" for d in report.decisions)
                if removed_at is None:
                    grants_before += granted
                else:
                    grants_after += granted
            check.close()
    return {"seed": seed, "frames_before_removal": remove_after, "grants_before": grants_before,
            "grants_after": grants_after,
            "latency_ms": None if reloaded_at is None else round((reloaded_at - removed_at) * 1000, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "revocation.json")
    args = ap.parse_args()
    from faceguard.vision.pipeline import FacePipeline

    pipeline = FacePipeline.load("cpu")
    rows = [trial(pipeline, seed) for seed in range(args.trials)]
    for r in rows:
        print(f"trial {r['seed']}: removed after {r['frames_before_removal']} frames "
              f"({r['grants_before']} grants before); grants after removal: "
              f"{r['grants_after']}; the door matched without him {r['latency_ms']} ms later")
    latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    summary = {"trials": len(rows), "grants_after_removal": sum(r["grants_after"] for r in rows),
               "latency_ms_median": statistics.median(latencies) if latencies else None,
               "latency_ms_max": max(latencies) if latencies else None,
               "never_reloaded": sum(r["latency_ms"] is None for r in rows)}
    print(f"removal → door matches without him: median {summary['latency_ms_median']} ms, max "
          f"{summary['latency_ms_max']} ms; grants after removal: {summary['grants_after_removal']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "trials": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
