"""Frame time of the door's camera stream, new way against the previous one in alternating rounds.

Used by benchmarks/engine.py. The shared clip is played frame after frame (as a camera delivers
it, letterboxed to 640×480) through:

* ``previous``: every frame searched whole (MTCNN from 40 px faces up) and embedded with the
  flip pass: what FaceGuard did before track-guided detection (`FacePipeline.process(rgb)`);
* ``baseline`` (with ``--baseline REF``): the door as of git ``REF``: that commit's
  vision/guided.py GuidedDetector, the flip pass on every face;
* ``door``: what the door check runs now: one GuidedDetector for the stream (the settings'
  full-search interval and smallest face); embedded plain, the flip pass added where the face
  decides (access/lazy_flip.py). Without the door's tracks, "decides" is judged per frame: a
  face whose plain distance to the enrolled singer lies within the threshold plus the margin
  (an upper bound: at the door a visit's frames after its decision stay plain).

Rounds rotate which goes first, so a machine busy with something else slows all alike; the
frame time is the median over the rounds' per-frame times, on the frames where the full search
finds exactly one face (the same frames for all).
"""

from __future__ import annotations

import statistics
import subprocess
import time
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceguard.access.lazy_flip import FLIP_MARGIN
from faceguard.access.track import iou_matrix
from faceguard.settings import Settings
from faceguard.vision.guided import GuidedDetector
from faceguard.vision.pipeline import FacePipeline

REPO = Path(__file__).resolve().parent.parent


def _play(process: Callable[[np.ndarray], list], frames: list[np.ndarray]) -> tuple[list[float], list[list]]:
    times, found = [], []
    for rgb in frames:
        t0 = time.perf_counter()
        results = process(rgb)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(results)
    return times, found


def guided_detector_at(ref: str) -> type:
    """The GuidedDetector class as of git ``ref`` (its vision/guided.py, loaded beside today's;
    it imports only vision/detect, which it shares with today's)."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:faceguard/vision/guided.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"guided_at_{ref}")
    exec(compile(source, f"{ref}:faceguard/vision/guided.py", "exec"), module.__dict__)  # noqa: S102
    return module.GuidedDetector


def door_process(pipeline: FacePipeline, settings: Settings, kinds: list[str], *,
                 guided: type = GuidedDetector, enrolled: np.ndarray | None = None,
                 threshold: float = 0.0) -> tuple[Callable[[np.ndarray], list], Counter]:
    """The door's per-frame work for a fresh stream (appending each frame's kind, full |
    region | guided | none, to ``kinds``), and the guide's count of frame kinds. ``enrolled``:
    the gallery's vector; given, faces are embedded plain and get the flip pass where their
    distance lies within ``threshold`` + FLIP_MARGIN (the lazy door); None: flip everywhere."""
    guide = guided(pipeline.detector, full_every=settings.full_detect_every,
                   min_face_size=settings.min_face_px)

    def process(rgb: np.ndarray) -> list:
        results = pipeline.process(rgb, guide=guide, plain=enrolled is not None)
        if enrolled is not None and results:
            near = [float(np.sum((r.embedding - enrolled) ** 2)) <= threshold + FLIP_MARGIN
                    for r in results]
            results = pipeline.with_flip(results, near)
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
            frames: list[np.ndarray], rounds: int, *, baseline: str | None = None,
            enrolled: np.ndarray | None = None, threshold: float = 0.0, fps: float = 30.0) -> dict:
    """Rounds rotating previous, baseline (when a git ref is given) and door; see the module."""
    players: dict[str, Callable[[], tuple[Callable[[np.ndarray], list], Counter, list[str]]]] = {}

    def play_door(**kw) -> Callable[[], tuple[Callable[[np.ndarray], list], Counter, list[str]]]:
        def make():
            frame_kinds: list[str] = []
            process, counts = door_process(door, settings, frame_kinds, **kw)
            return process, counts, frame_kinds
        return make

    players["previous"] = lambda: (previous.process, Counter(), [])
    if baseline:
        players["baseline"] = play_door(guided=guided_detector_at(baseline))
    players["door"] = play_door(enrolled=enrolled, threshold=threshold)
    times: dict[str, list[list[float]]] = {name: [] for name in players}
    found: dict[str, list[list]] = {}
    kinds: dict[str, tuple[Counter, list[str]]] = {}
    names = list(players)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            process, counts, frame_kinds = players[name]()
            run_times, found[name] = _play(process, frames)
            times[name].append(run_times)
            kinds[name] = (counts, frame_kinds)
    one_face = [i for i, f in enumerate(found["previous"]) if len(f) == 1]

    def median_of(runs: list[list[float]], idx: list[int]) -> float:
        return statistics.median(statistics.median(run[i] for i in idx) for run in runs)

    every = list(range(len(frames)))
    out: dict = {"frames": len(frames), "frames_with_one_face": len(one_face), "rounds": rounds,
                 "baseline_ref": baseline}
    for name in names:
        out[f"{name}_frame_ms_one_face"] = median_of(times[name], one_face)
        out[f"{name}_frame_ms_mean_all"] = statistics.median(statistics.mean(t) for t in times[name])
        out[f"{name}_frame_ms_median_all"] = median_of(times[name], every)
        if name == "previous":
            continue
        counts, frame_kinds = kinds[name]
        out[f"{name}_frame_kinds"] = dict(counts)
        # per kind of frame (every round plays the same kinds: nothing in guiding depends on time)
        for k in ("full", "region", "guided"):
            idx = [i for i in one_face if frame_kinds[i] == k]
            if idx:
                out[f"{name}_frame_ms_one_face_{k}"] = median_of(times[name], idx)
        delays = late_first_detections(found["previous"], found[name], settings.min_face_px)
        out[f"{name}_faces_appearing"] = len(delays)
        out[f"{name}_late_first_detection_frames_max"] = max(delays, default=0)
        out[f"{name}_late_first_detection_ms_max"] = max(delays, default=0) * 1000.0 / fps
        out[f"{name}_late_first_detection_frames_mean"] = statistics.mean(delays) if delays else 0.0
    if baseline:
        out["door_over_baseline_one_face"] = out["door_frame_ms_one_face"] / out["baseline_frame_ms_one_face"]
    out["door_settings"] = {"full_detect_every": settings.full_detect_every,
                            "min_face_px": settings.min_face_px, "lazy_flip": enrolled is not None}
    return out
