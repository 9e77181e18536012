"""How fast the engine runs on this machine: embedding time per face, whole-frame time.

Used by `faceguard bench` (a user checking their PC or GPU) and benchmarks/engine.py. A
network's speed does not depend on what the chips show, so embedding is timed on the chips
given (real faces when there are some, else a fixed noise pattern); frame times need real frames.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from faceguard.vision.pipeline import FacePipeline


def noise_chips(n: int, size: int, seed: int = 0) -> np.ndarray:
    """n uint8 RGB size×size chips of noise: stand-ins for timing only."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def embed_ms_per_face(pipeline: FacePipeline, chips: np.ndarray, batch: int, runs: int) -> float:
    """Median over `runs` of the time to embed one batch, per face (ms), after a warm-up run.
    With flip averaging each face costs two network passes; that is included."""
    x = np.resize(chips, (batch, *chips.shape[1:])) if len(chips) < batch else chips[:batch]
    pipeline.embed_chips(x)  # warm-up: onnxruntime plans its memory on the first run
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        pipeline.embed_chips(x)
        times.append((time.perf_counter() - t0) * 1000 / len(x))
    return statistics.median(times)


def frame_ms(process: Callable[[np.ndarray], int], frames: Sequence[np.ndarray],
             faces: int | None = 1) -> list[float]:
    """Times (ms) of `process(frame)` (which returns the number of faces found), kept for the
    frames with exactly `faces` faces (None: all)."""
    times = []
    for rgb in frames:
        t0 = time.perf_counter()
        n = process(rgb)
        dt = (time.perf_counter() - t0) * 1000
        if faces is None or n == faces:
            times.append(dt)
    return times
