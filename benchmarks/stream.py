"""Frame time of the door's camera stream, new way against the previous one in alternating rounds.

Used by benchmarks/engine.py. The shared clip is played frame after frame (as a camera delivers
it, letterboxed to 640×480) through:

* ``previous``: every frame searched whole (MTCNN from 40 px faces up) and embedded with the
  flip pass: what FaceGuard did before track-guided detection (`FacePipeline.process(rgb)`);
* ``door``: what the door check runs now: one GuidedDetector for the stream (the settings'
  full-search interval and smallest face) and the settings' embedding.

Rounds alternate which goes first, so a machine busy with something else slows both alike; the
frame time is the median over the rounds' per-frame times, on the frames where the full search
finds exactly one face (the same frames for both).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from faceguard.access.track import iou_matrix
from faceguard.settings import Settings
from faceguard.vision.pipeline import FacePipeline


def _play(process: Callable[[np.ndarray], list], frames: list[np.ndarray]) -> tuple[list[float], list[list]]:
    times, found = [], []
    for rgb in frames:
        t0 = time.perf_counter()
        results = process(rgb)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(results)
    return times, found


def door_process(pipeline: FacePipeline, settings: Settings,
                 kinds: list[str]) -> tuple[Callable[[np.ndarray], list], Counter]:
    """The door's per-frame work for a fresh stream (appending each frame's kind, full |
    guided | none, to ``kinds``), and the guide's count of frame kinds."""
    guide = pipeline.guided(settings.full_detect_every, settings.min_face_px)

    def process(rgb: np.ndarray) -> list:
        results = pipeline.process(rgb, guide=guide)
        kinds.append(guide.last_kind)
        return results
    return process, guide.counts


def _on(box: np.ndarray, results: list) -> bool:
    boxes = np.array([r.box for r in results], np.float64).reshape(-1, 4)
    return bool(len(boxes)) and float(iou_matrix(box, boxes).max()) > 0.3


def late_first_detections(full: list[list], door: list[list], min_face: float, cap: int = 30,
                          stays: int = 5) -> list[int]:
    """For each face that appears (found by the full search, at least ``min_face`` px wide,
    with no face of the previous frame's full search on it, and found again on the next
    ``stays`` frames: a face, not the detector's flicker), how many frames later the door's
    stream first had it."""
    delays = []
    for i in range(1, len(full) - stays):
        for r in full[i]:
            box = np.asarray(r.box, np.float64)[None]
            if box[0, 2] - box[0, 0] < min_face or _on(box, full[i - 1]):
                continue
            if not all(_on(box, full[k]) for k in range(i + 1, i + 1 + stays)):
                continue
            for k in range(i, min(len(full), i + cap)):
                if _on(box, door[k]):
                    delays.append(k - i)
                    break
            else:
                delays.append(cap)
    return delays


def compare(previous: FacePipeline, door: FacePipeline, settings: Settings,
            frames: list[np.ndarray], rounds: int) -> dict:
    prev_times: list[list[float]] = []
    door_times: list[list[float]] = []
    kinds: Counter = Counter()
    full_found: list[list] = []
    door_found: list[list] = []
    for r in range(rounds):
        order = ("previous", "door") if r % 2 == 0 else ("door", "previous")
        for which in order:
            if which == "previous":
                times, full_found = _play(previous.process, frames)
                prev_times.append(times)
            else:
                frame_kinds: list[str] = []
                process, counts = door_process(door, settings, frame_kinds)
                times, door_found = _play(process, frames)
                door_times.append(times)
                kinds = counts
    one_face = [i for i, f in enumerate(full_found) if len(f) == 1]

    def median_of(runs: list[list[float]], idx: list[int]) -> float:
        return statistics.median(statistics.median(run[i] for i in idx) for run in runs)

    every = list(range(len(frames)))
    by_kind = {k: [i for i in one_face if frame_kinds[i] == k] for k in ("full", "region", "guided")}
    delays = late_first_detections(full_found, door_found, settings.min_face_px)
    return {
        "frames": len(frames), "frames_with_one_face": len(one_face), "rounds": rounds,
        "previous_frame_ms_one_face": median_of(prev_times, one_face),
        "door_frame_ms_one_face": median_of(door_times, one_face),
        "previous_frame_ms_mean_all": statistics.median(statistics.mean(t) for t in prev_times),
        "door_frame_ms_mean_all": statistics.median(statistics.mean(t) for t in door_times),
        "previous_frame_ms_median_all": median_of(prev_times, every),
        "door_frame_ms_median_all": median_of(door_times, every),
        "door_frame_kinds": dict(kinds),
        # per kind of frame (every round plays the same kinds: nothing in guiding depends on time)
        **{f"door_frame_ms_one_face_{k}": median_of(door_times, idx) for k, idx in by_kind.items() if idx},
        **{f"previous_frame_ms_one_face_on_door_{k}_frames": median_of(prev_times, idx)
           for k, idx in by_kind.items() if idx},
        "faces_appearing": len(delays),
        "late_first_detection_frames_max": max(delays, default=0),
        "late_first_detection_frames_mean": statistics.mean(delays) if delays else 0.0,
        "door_settings": {"full_detect_every": settings.full_detect_every,
                          "min_face_px": settings.min_face_px},
    }
