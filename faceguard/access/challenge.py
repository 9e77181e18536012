"""Follow the target: the door moves a dot along a random path drawn for this visit, and the
head must follow it. A recording cannot know the path; a person can follow it with a human lag.

The path (``TargetPath``) starts where the dot is and makes 2 or 3 straight moves among the 8
compass directions, each at a right angle to the one before, 0.45-0.65 s each with a smooth
start and stop, and a stop of random length between moves. While the visit is undecided the
dot goes on with a next path (after a stop, at a right angle again), up to ``MAX_PATHS``. All
drawn from the gate's random generator: a seed reproduces a run.

The head's pose comes from the five landmarks (``liveness.nose_position``), in the marker's
frame as the person sees the screen: x to their right, y down; v scaled by ``PITCH_GAIN``.

Judging (``evidence``) uses TIMESTAMPS only: the poses are interpolated onto a fixed 20 Hz grid,
velocities are taken over 0.2 s, and the evidence is judged at fixed check times (every
``CHECK_S`` from the first path), the same at 5 or 30 frames/s. A fidget is as fast as the
following itself, so one path proves little: the evidence is ACCUMULATED over the visit's paths
(from any one of them on: a person who looked away is judged on the paths after) at one common
human lag (0.15-0.7 s, the best): the correlation ``score`` of the head's 2-D velocity with the
dot's, and the dot motion it covers (``moves``, of 1 marker unit). A follower's score stays
near 0.5 with such fidget while a recording's wanders around 0 with a spread of about
0.4/√moves, so the visit passes once ``z = score × √moves ≥ MIN_Z`` over ``MIN_MOVES``, the
head moving the right way (``gain``), and z beats by ``RIVAL_MARGIN`` the best z of the same
path turned by 90/180/270° or mirrored (``RIVALS``: as likely a draw, so a head that does not
see the path matches them as well; this is what stops a clip that turns the way of the first
move, which its mirror image shares, and a head circling; the quarter turns are also tried at
lags up to ``RIVAL_LAG_S``, as a slow circle matches the turned path a quarter-turn later).
From the visit's 5th path on the bar is ``LATE_MIN_Z``: each check is one more chance for a head
that does not see the path to cross it. A path whose window (its end + the largest lag) is over
without a pass is "continued", the last one "not followed". Too few pose samples per second (a
slow PC) is its own outcome, ``too slow``.
Measured: benchmarks/challenge.py, README "Photo check".
"""

from __future__ import annotations

import math
import random
from collections import deque
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
MAX_REACH = 1.5             # the path stays within this distance of the centre (marker units)
LAG_S = (0.15, 0.7)         # a human's lag behind a moving target
GRID_S = 0.05               # the fixed time grid the samples are interpolated onto
BASELINE_S = 0.2            # velocities over this span: the same at 5 and at 30 frames/s
CHECK_S = 0.25              # the evidence is judged at these fixed steps from the first path
MIN_Z = 1.1                 # pass: score × √moves at least this ...
MIN_MOVES = 1.3             # ... over at least this much dot motion (moves of 1 marker unit:
                            # the weighted first move and one more) ...
RIVAL_MARGIN = 0.3          # ... and by this much more than the path turned or mirrored (RIVALS)
MIN_GAIN = 0.1              # ... and the head moved this far per marker unit, the right way
FIRST_WEIGHT = 0.6          # the first move of a visit (a clip turning the right way matches it)
MIN_RATE = 4.0              # pose samples per second a path's window needs; fewer: "too slow"
MAX_GAP_S = 0.45            # and no hole longer than this in the samples
RIVAL_LAG_S = 1.5           # the quarter-turned rivals are also tried at lags beyond a human's,
                            # up to this: a head circling slowly (3-4 s a turn) matches the path
                            # turned a quarter a quarter-turn later (5 of 40 such visits passed)
MAX_PATHS = 6               # paths a visit shows at most (about 13 s: the 12 s photo check ends
                            # most visits first); 4 paths in 8 s left 28-34 % of the heaviest
                            # fidgeters out
LATE_PATHS = 4              # from the 5th path of a visit on, the bar is ...
LATE_MIN_Z = 1.25           # ... this: each check is a chance for a recording to cross the bar
                            # (1.1 all along let the direction-matching replay in 4 of 50 times)
HISTORY_S = 16.0            # the poses kept: the longest visit's paths and lags


def _ease(x: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile 0 → 1: a smooth start and stop, as eyes and heads move."""
    x = np.clip(x, 0.0, 1.0)
    return x ** 3 * (10 - 15 * x + 6 * x * x)


@dataclass(frozen=True)
class TargetPath:
    """Where the dot is: at ``points[0]`` until ``shown_at``, then moving to each next point in
    ``durations[i]`` seconds. Points in marker units (a move is 1 long)."""

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

    @property
    def window_ends_at(self) -> float:
        """When the slowest human's answer to the last move is in."""
        return self.ends_at + LAG_S[1] + BASELINE_S / 2

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
        """The direction of the move under way at ``t`` (HOLD during a stop or before the
        start); None once over."""
        if t >= self.ends_at:
            return None
        if t < self.shown_at:
            return HOLD
        k = int(np.clip(np.searchsorted(self._starts(), t, side="right") - 1, 0, len(self.durations) - 1))
        return self.directions[k]

    def to_dict(self) -> dict:
        return {"directions": list(self.directions), "shown_at": round(self.shown_at, 3),
                "points": [[round(x, 3), round(y, 3)] for x, y in self.points],
                "durations": [round(d, 3) for d in self.durations]}


def draw_path(rng: random.Random, t0: float, origin: tuple[float, float] = (0.0, 0.0),
              after: str | None = None) -> TargetPath:
    """A random path shown from ``t0``: 2-3 moves at right angles with a stop of random length
    between them, within ``MAX_REACH`` of the centre. A next path starts where the last one
    ended (the dot never jumps) and turns at a right angle to its last move ``after``."""
    while True:
        if after is None:
            k = rng.randrange(len(DIRECTIONS))
        else:
            k = (DIRECTIONS.index(after) + rng.choice((-2, 2))) % len(DIRECTIONS)
        names = [DIRECTIONS[k]]
        for _ in range(rng.choice(MOVES) - 1):
            k = (k + rng.choice((-2, 2))) % len(DIRECTIONS)
            names.append(DIRECTIONS[k])
        pts = np.cumsum([np.array(origin, np.float64)] + [VECTORS[n] for n in names], axis=0)
        if np.max(np.linalg.norm(pts, axis=1)) <= MAX_REACH + 1e-9:
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


def _unit_move_energy() -> float:
    """The dot's squared grid velocity summed over one move of 1 marker unit (mean duration)."""
    move = TargetPath(0.0, ("RIGHT",), ((0.0, 0.0), (1.0, 0.0)), (sum(MOVE_S) / 2,))
    grid = np.arange(-BASELINE_S, move.ends_at + BASELINE_S, GRID_S)
    v = (move.position(grid + BASELINE_S / 2) - move.position(grid - BASELINE_S / 2)) / BASELINE_S
    return float(np.sum(v * v))


UNIT_MOVE = _unit_move_energy()
# The path turned by a quarter, a half and three quarters, and mirrored in the four axes of the
# square (the other members of its symmetry group): as likely a draw as the path itself.
RIVALS = tuple(np.array(m, np.float64) for m in (
    [[0, -1], [1, 0]], [[-1, 0], [0, -1]], [[0, 1], [-1, 0]],
    [[1, 0], [0, -1]], [[-1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1], [-1, 0]]))
QUARTER_TURNS = (0, 2)      # RIVALS' indices of the path turned by ±90°


@dataclass(frozen=True)
class Evidence:
    """How well the head followed the visit's paths so far, at the best common lag."""

    score: float                # velocity correlation (-1 … 1)
    lag_s: float
    moves: float                # dot motion covered, in moves of 1 marker unit (the first weighted)
    gain: float                 # head velocity per dot velocity along the dot (pose units/marker unit)
    z: float                    # score × √moves: what the bar MIN_Z is set on
    passed: bool
    paths: int = 1              # the visit's last paths it spans
    rival: float = 0.0          # the best z of the path turned by 90°/180°/270° or mirrored

    def to_dict(self) -> dict:
        return {"score": self.score, "lag_s": self.lag_s, "moves": self.moves, "gain": self.gain,
                "z": self.z, "over_paths": self.paths, "rival_z": self.rival}


def dot_position(paths: list[TargetPath], t: np.ndarray) -> np.ndarray:
    """Where the dot is at times ``t`` over consecutive paths (each starts where the last ended)."""
    out = np.repeat(np.array(paths[0].points[:1], np.float64), len(t), axis=0)
    for p in paths:
        later = t >= p.shown_at
        out[later] = p.position(t[later])
    return out


def evidence(paths: list[TargetPath], times: np.ndarray, points: np.ndarray, upto: float,
             first_weight: float = FIRST_WEIGHT, min_z: float = MIN_Z) -> Evidence | None:
    """Judge the head's samples (``times`` ascending, ``points`` from ``head_point``) against
    the dot over ``paths`` (consecutive, the first one opening the visit), using only what is
    known at ``upto``; None while not even the smallest lag has a grid point. Only timestamps
    count: any frame rate gives the same grid."""
    times, points = np.asarray(times, np.float64), np.asarray(points, np.float64).reshape(-1, 2)
    half = BASELINE_S / 2
    first = paths[0]
    grid = np.arange(first.shown_at, paths[-1].ends_at + 1e-9, GRID_S)
    dot_v = (dot_position(paths, grid + half) - dot_position(paths, grid - half)) / BASELINE_S
    weight = np.where(grid < first.shown_at + first.durations[0] + half, first_weight, 1.0)[:, None]
    if len(times) < 2:
        return None
    rows = []                   # per lag: (lag, cross-products head × dot (2×2), Σ|head|², Σ|dot|²)
    for lag in np.arange(LAG_S[0], RIVAL_LAG_S + 1e-9, GRID_S):
        at = grid + lag
        seen = (at + half <= min(upto, times[-1])) & (at - half >= times[0])
        if not seen.any():
            continue
        head_v = np.stack([np.interp(at[seen] + half, times, points[:, i])
                           - np.interp(at[seen] - half, times, points[:, i]) for i in (0, 1)], axis=1) / BASELINE_S
        dv, w = dot_v[seen], weight[seen]
        rows.append((float(lag), (w * head_v).T @ dv, float(np.sum(w * head_v ** 2)), float(np.sum(w * dv ** 2))))
    if not rows:
        return None

    def z_of(sxy: float, sxx: float, syy: float) -> tuple[float, float]:
        score = sxy / math.sqrt(sxx * syy) if sxx * syy > 1e-12 else 0.0
        return score, score * math.sqrt(syy / UNIT_MOVE)

    # The head's best match with the path turned or mirrored (same timing): a head that does not
    # see the path matches the true one no better than these (the path's draw is symmetric).
    rival = max(z_of(float(np.sum(m * cross)), sxx, syy)[1] for lag, cross, sxx, syy in rows
                for k, m in enumerate(RIVALS) if lag <= LAG_S[1] + 1e-9 or k in QUARTER_TURNS)
    best: Evidence | None = None
    for lag, cross, sxx, syy in rows:
        if lag > LAG_S[1] + 1e-9:
            continue            # (a rival's lag only)
        sxy = float(np.trace(cross))
        score, z = z_of(sxy, sxx, syy)
        moves = syy / UNIT_MOVE
        gain = sxy / syy if syy > 1e-12 else 0.0
        passed = moves >= MIN_MOVES and z >= min_z and gain >= MIN_GAIN and z >= rival + RIVAL_MARGIN
        here = Evidence(round(score, 4), round(lag, 3), round(moves, 3), round(gain, 4),
                        round(z, 4), passed, len(paths), round(rival, 4))
        if best is None or (here.passed, here.z) > (best.passed, best.z):
            best = here
    return best


def sampling(start: float, end: float, times: np.ndarray) -> tuple[int, float, float]:
    """(pose samples, samples per second, longest hole in s) between ``start`` and ``end``."""
    inside = times[(times >= start) & (times <= end)]
    span = np.concatenate([[start], inside, [end]])
    return len(inside), len(inside) / max(end - start, 1e-9), float(np.max(np.diff(span)))


def _slow(rate: float, gap: float) -> bool:
    return rate < MIN_RATE or gap > MAX_GAP_S


@dataclass
class PathTry:
    """One path shown to one face, and how the visit stood when it was decided."""

    path: TargetPath
    outcome: str | None = None        # None while open; passed | continued | not followed |
                                      # too slow | face not seen | screen
    decided_at: float | None = None
    result: Evidence | None = None    # the visit's evidence (all its paths so far) then
    samples: int = 0                  # pose samples in this path's window
    rate: float = 0.0
    max_gap_s: float = 0.0

    def to_dict(self) -> dict:
        out = {"path": self.path.to_dict(), "shown_at": round(self.path.shown_at, 3),
               "outcome": self.outcome,
               "answered_after_s": None if self.decided_at is None
               else round(self.decided_at - self.path.shown_at, 3)}
        if self.result is not None:
            out.update(self.result.to_dict(), samples=self.samples, samples_per_s=round(self.rate, 2),
                       max_gap_s=round(self.max_gap_s, 3))
        return out


@dataclass
class ChallengeRun:
    """One visit's paths on one tracked face. The dot goes from path to path (up to
    ``max_failures`` paths) while the evidence over all of them is judged; the visit passes
    once it clears the bar, and fails when the last path's window is over without that."""

    rng: random.Random
    max_failures: int = MAX_PATHS     # paths per ask (the name kept: a path not followed is a try)
    done: list[PathTry] = field(default_factory=list)
    current: PathTry | None = None    # the path the dot is on now
    ask: list[PathTry] = field(default_factory=list)   # this ask's paths: the evidence spans them
    _next_check: float = 0.0
    _failed: bool = False
    _times: deque = field(default_factory=deque)
    _points: deque = field(default_factory=deque)
    _frames: deque = field(default_factory=deque)     # every frame of the face, posed or not

    @property
    def failures(self) -> int:
        return sum(c.outcome in ("not followed", "face not seen", "too slow") for c in self.done)

    @property
    def passed(self) -> bool:
        return bool(self.done) and self.done[-1].outcome == "passed" and self.current is None

    @property
    def failed(self) -> bool:
        return self._failed or self.too_slow

    @property
    def too_slow(self) -> bool:
        return bool(self.done) and self.done[-1].outcome == "too slow"

    @property
    def started(self) -> bool:
        return self.current is not None or bool(self.done)

    @property
    def had_a_chance(self) -> bool:
        """Whether a check has judged enough of the dot's motion to have let the visit in: a
        visit left after that, undecided, was a try (before it, no head could have passed)."""
        return any(c.result is not None and c.result.moves >= MIN_MOVES for c in [*self.done, *self.ask])

    def start(self, t: float) -> None:
        """The face is recognised: show the first path now."""
        if not self.started:
            self._open(t)

    def doubt(self, why: str) -> None:
        """A passed visit that another signal doubts (the texture says "screen")."""
        if self.done and self.done[-1].outcome == "passed":
            self.done[-1].outcome = why

    def reask(self, t: float, why: str) -> None:
        """... and a new ask for it: new paths, the evidence from nothing."""
        self.doubt(why)
        if self.current is None and not self.failed:
            self.ask = []
            self._open(t)

    def observe(self, t: float, landmarks: np.ndarray) -> PathTry | None:
        """One frame of the face (before and after the start); returns the path this frame
        decided, if any."""
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
        """Judge the evidence at every check time now covered by pose samples, close the paths
        whose window is over, and move the dot on to a next path. Called on every frame of the
        face, including frames without a usable pose; returns the last path decided, if any."""
        if not self._frames or t > self._frames[-1]:
            self._frames.append(t)
            while t - self._frames[0] > HISTORY_S:
                self._frames.popleft()
        if self.current is None:
            return None
        times, points = np.array(self._times), np.array(self._points)
        decided = None
        while self._next_check <= t and len(times) and times[-1] >= self._next_check:
            decided = self._check(self._next_check, times, points) or decided
            self._next_check += CHECK_S
            if self.current is None:
                return decided
        for c in self.ask:       # windows the poses never covered (face lost, or no frames)
            if c.outcome is None and t >= c.path.window_ends_at + MAX_GAP_S and (
                    not len(times) or times[-1] < c.path.window_ends_at):
                decided = self._close(c, self._short_of_samples(c.path), t)
        if self.current is not None and t >= self.current.path.ends_at and len(self.ask) < self.max_failures:
            self._open(t)
        return decided

    def _check(self, at: float, times: np.ndarray, points: np.ndarray) -> PathTry | None:
        ev = self._evidence(times, points, at)
        for c in self.ask:
            if c.outcome is None:
                c.result = ev
                c.samples, c.rate, c.max_gap_s = sampling(c.path.shown_at, min(at, c.path.window_ends_at), times)
        if ev is not None and ev.passed and not _slow(*sampling(self.ask[0].path.shown_at, at, times)[1:]):
            # (a next path that no answer could be judged on yet had no part in it)
            self.ask = [c for c in self.ask if c.path.shown_at + LAG_S[0] + BASELINE_S / 2 < at]
            last = self.ask[-1]
            for c in self.ask[:-1]:
                if c.outcome is None:
                    self._close(c, "continued", at)
            return self._close(last, "passed", at)
        decided = None
        for c in self.ask:
            if c.outcome is None and at >= c.path.window_ends_at:
                outcome = (self._short_of_samples(c.path) if _slow(c.rate, c.max_gap_s)
                           else "not followed" if c is self.ask[-1] else "continued")
                decided = self._close(c, outcome, at)
        return decided

    def _evidence(self, times: np.ndarray, points: np.ndarray, at: float) -> Evidence | None:
        """The best evidence over this ask's paths from any one of them on: a person who looked
        away during a path is judged on the paths after it (the first move of the ask counts
        ``FIRST_WEIGHT`` only when the span starts there)."""
        paths = [c.path for c in self.ask if c.path.shown_at + LAG_S[0] + BASELINE_S / 2 < at]
        bar = MIN_Z if len(paths) <= LATE_PATHS else LATE_MIN_Z
        found = [evidence(paths[k:], times, points, at, FIRST_WEIGHT if k == 0 else 1.0, bar)
                 for k in range(len(paths))]
        return max((e for e in found if e is not None), key=lambda e: (e.passed, e.z), default=None)

    def _close(self, c: PathTry, outcome: str, t: float) -> PathTry:
        c.outcome, c.decided_at = outcome, t
        self.done.append(c)
        if outcome in ("passed", "too slow") or c is self.ask[-1]:    # the run is over
            self._failed = outcome not in ("passed", "too slow")
            self.current = None
        return c

    def _short_of_samples(self, path: TargetPath) -> str:
        """Too few poses in the window: "too slow" when the PC checked too few frames (not the
        person's doing), "face not seen" when frames came but the face was not measured in them."""
        frames = np.array(self._frames)
        _, rate, gap = sampling(path.shown_at, path.ends_at + LAG_S[1], frames)
        return "too slow" if _slow(rate, gap) else "face not seen"

    def _open(self, t: float) -> None:
        if self.ask:
            last = self.ask[-1].path
            moves = [d for d in last.directions if d != HOLD]
            shown = last.ends_at + self.rng.uniform(*HOLD_S)   # (a frame comes within the stop)
            path = draw_path(self.rng, shown, last.points[-1], after=moves[-1])
        else:
            origin = self.done[-1].path.points[-1] if self.done else (0.0, 0.0)
            path = draw_path(self.rng, t, origin)
            self._next_check = t + CHECK_S
        self.current = PathTry(path)
        self.ask.append(self.current)

    def summary(self) -> str:
        """For the reason sentence: e.g. "path LEFT→UP: passed (score 0.61 over 2.4 moves, ...)"."""
        parts = []
        for c in self.done:
            r = c.result
            nums = "" if r is None else (f" (score {r.score:.2f} over {r.moves:.1f} moves, z {r.z:.2f}, "
                                         f"lag {r.lag_s:.2f} s, {c.rate:.0f} samples/s)")
            parts.append(f"path {'→'.join(d for d in c.path.directions if d != HOLD)}: {c.outcome}{nums}")
        return "; ".join(parts)
