"""Follow the target: the door moves a dot along a random path drawn for this visit, and the
head must follow it. A recording cannot know the path; a person can follow it with a human lag.

The path (``TargetPath``) starts at the centre of the marker and makes 2 or 3 straight moves,
each one of the 8 compass directions and each at a right angle to the one before (never
straight on, never back: a clip that turns one way and back, or keeps turning, cannot follow
the second move). Each move takes 0.5-0.7 s with a smooth start and stop. Everything is drawn
from the gate's random generator, so a seed reproduces a run.

The head's pose comes from the five landmarks (``liveness.nose_position``), turned into the
marker's frame as the person sees the screen: x grows to their right (the nose moves to the
image's left, u falls), y downwards (the nose drops from the eye line, v grows). Pitch moves
the nose less than yaw, so v is scaled up by ``PITCH_GAIN``.

Judging (``agreement``) is done on TIMESTAMPS, never on frame counts: the head's samples are
interpolated onto a fixed 20 Hz grid, velocities are taken over a 0.2 s baseline (the same
for every frame rate), and for every human lag from 0.15 to 0.7 s the target's velocity
profile is compared with the head's: the score is the correlation of the two 2-D velocity
profiles, and every move must also be made the right way (the head's displacement over the
lagged move within 55° of the target's) and far enough (``MIN_STEP``). A lag that meets all
three passes the path. The path is decided once the window has passed (move time + the
largest lag), or earlier as soon as a lag passes; fidgets only make the path fail, and the
visit then gets a second (and a third) path (``ChallengeRun``). Too few pose samples per second in the
window (a slow PC) is its own outcome, ``too slow``: never a pass.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from faceguard.access.liveness import MIN_EYE_DISTANCE_PX, nose_position

# Compass directions as the person sees the screen (x right, y down), 45° apart.
DIRECTIONS = ("RIGHT", "DOWN-RIGHT", "DOWN", "DOWN-LEFT", "LEFT", "UP-LEFT", "UP", "UP-RIGHT")
VECTORS = {name: np.array([math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)])
           for k, name in enumerate(DIRECTIONS)}
HOLD = "HOLD"               # the dot stops between moves
VECTORS[HOLD] = np.zeros(2)
PITCH_GAIN = 1.6            # the nose moves about 0.2 for 10° of yaw, 0.12 for 10° of pitch
MOVES = (2, 3)
MOVE_S = (0.45, 0.65)
HOLD_S = (0.25, 0.45)       # a stop of random length between moves: a head that never stops
                            # (a clip circling or swaying) cannot match it
MAX_HOLD_DRIFT = 0.45       # during a stop the head moves at most this part of its mean move
MAX_REACH = 1.5             # the path stays within this distance of the centre (marker units)
LAG_S = (0.15, 0.7)         # a human's lag behind a moving target
GRID_S = 0.05               # the fixed time grid the samples are interpolated onto
BASELINE_S = 0.2            # velocities over this span: the same at 5 and at 30 frames/s
MIN_SCORE = 0.7             # the least velocity correlation of a followed path
MIN_COS = math.cos(math.radians(55))   # each move made the right way
MIN_STEP = 0.06             # each move at least this far (pose units, about 3° of yaw)
MIN_RATE = 4.0              # pose samples per second the window needs; fewer: "too slow"
MAX_GAP_S = 0.45            # and no hole longer than this in the samples
HISTORY_S = 6.0


def _ease(x: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile 0 → 1: a smooth start and stop, as eyes and heads move."""
    x = np.clip(x, 0.0, 1.0)
    return x ** 3 * (10 - 15 * x + 6 * x * x)


@dataclass(frozen=True)
class TargetPath:
    """Where the dot is: at ``points[0]`` (the centre) at ``shown_at``, then moving to each next
    point in ``durations[i]`` seconds. Points in marker units (the first move is 1 long)."""

    shown_at: float
    directions: tuple[str, ...]
    points: tuple[tuple[float, float], ...]
    durations: tuple[float, ...]

    @property
    def length_s(self) -> float:
        return float(sum(self.durations))

    @property
    def ends_at(self) -> float:
        return self.shown_at + self.length_s

    def _starts(self) -> np.ndarray:
        return self.shown_at + np.concatenate([[0.0], np.cumsum(self.durations)])

    def position(self, t: float | np.ndarray) -> np.ndarray:
        """The dot's (x, y) at time(s) ``t``: shape (2,) or (len(t), 2)."""
        tt = np.atleast_1d(np.asarray(t, np.float64))
        pts = np.array(self.points)
        starts = self._starts()
        k = np.clip(np.searchsorted(starts, tt, side="right") - 1, 0, len(self.durations) - 1)
        s = _ease((tt - starts[k]) / np.array(self.durations)[k])
        out = pts[k] + (pts[k + 1] - pts[k]) * s[:, None]
        return out[0] if np.ndim(t) == 0 else out

    def move_at(self, t: float) -> str | None:
        """The direction of the move under way at ``t`` (HOLD during a stop); None once over."""
        if t >= self.ends_at:
            return None
        k = int(np.clip(np.searchsorted(self._starts(), t, side="right") - 1, 0, len(self.durations) - 1))
        return self.directions[k]

    def to_dict(self) -> dict:
        return {"directions": list(self.directions), "shown_at": round(self.shown_at, 3),
                "points": [[round(x, 3), round(y, 3)] for x, y in self.points],
                "durations": [round(d, 3) for d in self.durations]}


def draw_path(rng: random.Random, t0: float, origin: tuple[float, float] = (0.0, 0.0)) -> TargetPath:
    """A random path shown from ``t0``: 2-3 moves at right angles with a stop of random length
    between them, within ``MAX_REACH`` of the centre. A second path starts where the first
    ended, so the dot never jumps."""
    while True:
        k = rng.randrange(len(DIRECTIONS))
        names = [DIRECTIONS[k]]
        for _ in range(rng.choice(MOVES) - 1):
            k = (k + rng.choice((-2, 2))) % len(DIRECTIONS)
            names.append(DIRECTIONS[k])
        pts = np.cumsum([np.array(origin, np.float64)] + [VECTORS[n] for n in names], axis=0)
        if np.max(np.linalg.norm(pts, axis=1)) <= MAX_REACH:
            break
    segments, points, durations = [], [pts[0]], []
    for k, name in enumerate(names):
        if k:
            segments.append(HOLD)
            points.append(pts[k])
            durations.append(rng.uniform(*HOLD_S))
        segments.append(name)
        points.append(pts[k + 1])
        durations.append(rng.uniform(*MOVE_S))
    return TargetPath(t0, tuple(segments), tuple((float(x), float(y)) for x, y in points), tuple(durations))


def head_point(landmarks: np.ndarray) -> np.ndarray:
    """The head's pose in the marker's frame (x to the person's right, y down), pose units."""
    u, v = nose_position(landmarks)
    return np.array([-u, PITCH_GAIN * v])


@dataclass(frozen=True)
class Agreement:
    """How well the head followed one path (the best lag), and whether it counts."""

    score: float                # velocity correlation at ``lag_s`` (-1 … 1)
    lag_s: float
    moves_ok: tuple[bool, ...]  # per move: the right way and far enough
    steps: tuple[float, ...]    # per move: how far the head went along it (pose units)
    samples: int                # pose samples in the window
    rate: float                 # samples per second in the window
    max_gap_s: float
    passed: bool
    complete: bool              # every lag could be judged (the window is over)

    @property
    def too_slow(self) -> bool:
        return self.rate < MIN_RATE or self.max_gap_s > MAX_GAP_S


def _velocity(pos_at: Callable[[np.ndarray], np.ndarray], grid: np.ndarray) -> np.ndarray:
    half = BASELINE_S / 2
    return (pos_at(grid + half) - pos_at(grid - half)) / BASELINE_S


def agreement(path: TargetPath, times: np.ndarray, points: np.ndarray) -> Agreement | None:
    """Judge the head's samples (``times`` ascending, ``points`` from ``head_point``) against
    ``path`` over every lag the samples already cover; None while not even the smallest lag can
    be judged. Only timestamps count: any frame rate gives the same grid."""
    times, points = np.asarray(times, np.float64), np.asarray(points, np.float64).reshape(-1, 2)
    half = BASELINE_S / 2
    if len(times) < 2 or times[0] > path.shown_at + LAG_S[0] - half:
        return None
    lags = np.arange(LAG_S[0], LAG_S[1] + 1e-9, GRID_S)
    ready = [lag for lag in lags if times[-1] >= path.ends_at + lag + half]
    if not ready:
        return None
    grid = np.arange(path.shown_at, path.ends_at + 1e-9, GRID_S)
    target_v = _velocity(path.position, grid)

    def head_at(t: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(t, times, points[:, 0]), np.interp(t, times, points[:, 1])], axis=1)

    starts = path.shown_at + np.concatenate([[0.0], np.cumsum(path.durations)])
    moves = [VECTORS[n] for n in path.directions]
    best: tuple | None = None
    for lag in ready:
        head_v = _velocity(head_at, grid + lag)
        norm = math.sqrt(float(np.sum(target_v ** 2)) * float(np.sum(head_v ** 2)))
        score = float(np.sum(target_v * head_v)) / norm if norm > 1e-12 else 0.0
        ends = head_at(starts + lag)
        steps = [float(np.dot(ends[i + 1] - ends[i], m)) for i, m in enumerate(moves)]
        lengths = [float(np.linalg.norm(ends[i + 1] - ends[i])) for i in range(len(moves))]
        moved = [s for s, name in zip(steps, path.directions, strict=True) if name != HOLD]
        drift = MAX_HOLD_DRIFT * max(float(np.mean(moved)), MIN_STEP)
        ok = tuple(n <= drift if name == HOLD else (s >= MIN_STEP and s >= MIN_COS * n)
                   for s, n, name in zip(steps, lengths, path.directions, strict=True))

        passed = score >= MIN_SCORE and all(ok)
        key = (passed, score)
        if best is None or key > best[0]:
            best = (key, lag, ok, steps)
    assert best is not None
    (passed, score), lag, ok, steps = best
    end = path.ends_at + float(lag) + half
    inside = times[(times >= path.shown_at) & (times <= end)]
    span = np.concatenate([[path.shown_at], inside, [min(end, times[-1])]])
    rate = len(inside) / max(end - path.shown_at, 1e-9)
    result = Agreement(round(score, 4), round(float(lag), 3), ok, tuple(round(s, 4) for s in steps),
                       len(inside), round(rate, 2), round(float(np.max(np.diff(span))), 3), passed,
                       len(ready) == len(lags))
    return result


@dataclass
class PathTry:
    """One path shown to one face, and how it went."""

    path: TargetPath
    outcome: str | None = None        # None while open; passed | not followed | too slow | screen
    decided_at: float | None = None
    result: Agreement | None = None

    def to_dict(self) -> dict:
        r = self.result
        out = {"path": self.path.to_dict(), "shown_at": round(self.path.shown_at, 3),
               "outcome": self.outcome,
               "answered_after_s": None if self.decided_at is None
               else round(self.decided_at - self.path.shown_at, 3)}
        if r is not None:
            out.update(score=r.score, lag_s=r.lag_s, moves_ok=list(r.moves_ok), steps=list(r.steps),
                       samples=r.samples, samples_per_s=r.rate, max_gap_s=r.max_gap_s)
        return out


@dataclass
class ChallengeRun:
    """One visit's paths on one tracked face: one followed path lets the face through; after a
    path that was not followed a new one is shown, and ``max_failures`` of them end it."""

    rng: random.Random
    max_failures: int = 3
    done: list[PathTry] = field(default_factory=list)
    current: PathTry | None = None
    _times: deque = field(default_factory=deque)
    _points: deque = field(default_factory=deque)
    _frames: deque = field(default_factory=deque)     # every frame of the face, posed or not

    @property
    def failures(self) -> int:
        return sum(c.outcome not in ("passed", "screen") for c in self.done)

    @property
    def passed(self) -> bool:
        return bool(self.done) and self.done[-1].outcome == "passed" and self.current is None

    @property
    def failed(self) -> bool:
        return self.failures >= self.max_failures or self.too_slow

    @property
    def too_slow(self) -> bool:
        return bool(self.done) and self.done[-1].outcome == "too slow"

    @property
    def started(self) -> bool:
        return self.current is not None or bool(self.done)

    def start(self, t: float) -> None:
        """The face is recognised: show the first path now."""
        if not self.started:
            self._open(t)

    def doubt(self, why: str) -> None:
        """A passed path that another signal doubts (the texture says "screen")."""
        if self.done and self.done[-1].outcome == "passed":
            self.done[-1].outcome = why

    def reask(self, t: float, why: str) -> None:
        """... and a new path for it."""
        self.doubt(why)
        if self.current is None:
            self._open(t)

    def observe(self, t: float, landmarks: np.ndarray) -> PathTry | None:
        """One frame of the face (before and after the start); returns the path this frame
        decided, if any. The next path opens at once while neither passed nor failed."""
        lm = np.asarray(landmarks, np.float64)
        if np.linalg.norm(lm[1] - lm[0]) >= MIN_EYE_DISTANCE_PX:   # else too far to measure
            if not self._times or t > self._times[-1]:
                self._times.append(t)
                self._points.append(head_point(lm))
            while t - self._times[0] > HISTORY_S:
                self._times.popleft()
                self._points.popleft()
        return self.judge(t)

    def judge(self, t: float) -> PathTry | None:
        """Decide the open path if its window is over (or a lag already passed). Called on
        every frame of the face, including frames without a usable pose."""
        if not self._frames or t > self._frames[-1]:
            self._frames.append(t)
            while t - self._frames[0] > HISTORY_S:
                self._frames.popleft()
        c = self.current
        if c is None:
            return None
        r = agreement(c.path, np.array(self._times), np.array(self._points)) if self._times else None
        window_over = t >= c.path.ends_at + LAG_S[1] + BASELINE_S / 2 + MAX_GAP_S
        if r is not None:
            c.result = r
        if r is not None and r.passed and not r.too_slow:
            c.outcome = "passed"
        elif r is not None and r.complete:
            c.outcome = self._short_of_samples(c.path) if r.too_slow else "not followed"
        elif window_over:
            c.outcome = self._short_of_samples(c.path)   # the samples never covered the window
        else:
            return None
        c.decided_at = t
        self.done.append(c)
        self.current = None
        if not (self.passed or self.failed):
            self._open(t)
        return c

    def _short_of_samples(self, path: TargetPath) -> str:
        """Too few poses in the window: "too slow" when the PC checked too few frames (not the
        person's doing), "face not seen" when frames came but the face was not measured in them."""
        frames = np.array(self._frames)
        end = path.ends_at + LAG_S[1]
        inside = frames[(frames >= path.shown_at) & (frames <= end)]
        span = np.concatenate([[path.shown_at], inside, [end]])
        slow = len(inside) / (end - path.shown_at) < MIN_RATE or float(np.max(np.diff(span))) > MAX_GAP_S
        return "too slow" if slow else "face not seen"

    def _open(self, t: float) -> None:
        origin = self.done[-1].path.points[-1] if self.done else (0.0, 0.0)
        self.current = PathTry(draw_path(self.rng, t, origin))

    def summary(self) -> str:
        """For the reason sentence: e.g. "path LEFT→UP: passed (score 0.91, lag 0.35 s)"."""
        parts = []
        for c in self.done:
            r = c.result
            nums = "" if r is None else (f" (score {r.score:.2f}, lag {r.lag_s:.2f} s, "
                                         f"{r.rate:.0f} samples/s)")
            parts.append(f"path {'→'.join(c.path.directions)}: {c.outcome}{nums}")
        return "; ".join(parts)
