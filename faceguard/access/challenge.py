"""Challenge–response: the door asks for one head movement chosen at random per visit ("turn
your head LEFT"), and the face must make it, after the instruction appeared, within a time limit.

A printed photo cannot turn (the parallax test, liveness.py, catches it anyway); a video of the
employee replayed on a phone shows a real head, but one that moves when the recording moved,
not when and where the door asks. The head pose comes from the five landmarks the detector
already finds (`liveness.nose_position`: the nose in the eyes-and-mouth square; u follows yaw,
v pitch), so no extra model runs.

Rules of one challenge, from the moment it is shown (t0):
* the head's pose at t0 is the baseline (median of the last few frames);
* before t0 + MIN_REACTION_S no human can have reacted: a movement of more than half the asked
  amount by then is a recording that was already moving: failed ("too early");
* the first movement of at least TURN in any direction decides: the asked one passes, another
  fails ("wrong way");
* nothing by t0 + limit_s fails ("too late").
Directions are the person's own: LEFT = their left, which in the camera's (unmirrored) image
moves the nose to the image's right (u grows).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from faceguard.access.liveness import MIN_EYE_DISTANCE_PX, nose_position

DIRECTIONS = ("LEFT", "RIGHT")
ALL_DIRECTIONS = ("LEFT", "RIGHT", "UP")
# The pose axis and sign each direction moves. UP: the nose rises towards the eye line (v falls).
_AXIS = {"LEFT": (0, 1.0), "RIGHT": (0, -1.0), "UP": (1, -1.0)}
# How far the nose must move in the square (u: about 10° of yaw; v: about 10° of pitch, which
# moves it less), and the least human reaction time to a prompt.
TURN = {0: 0.2, 1: 0.12}
MIN_REACTION_S = 0.25
LIMIT_S = 3.0
BASELINE_FRAMES = 3


@dataclass
class Challenge:
    direction: str
    shown_at: float
    baseline: np.ndarray | None = None
    outcome: str | None = None        # None while open; passed | too early | wrong way | too late
    answered_at: float | None = None
    moved: float = 0.0                # the largest movement in the asked direction, pose units

    def to_dict(self) -> dict:
        return {"direction": self.direction, "shown_at": round(self.shown_at, 3),
                "outcome": self.outcome, "moved": round(self.moved, 3),
                "answered_after_s": None if self.answered_at is None
                else round(self.answered_at - self.shown_at, 3)}


@dataclass
class ChallengeRun:
    """One visit's challenges on one tracked face: one pass lets the face through (a new
    challenge is asked after each failure); ``max_failures`` failures end it DENIED."""

    rng: random.Random
    directions: tuple[str, ...] = DIRECTIONS
    max_failures: int = 1
    limit_s: float = LIMIT_S
    done: list[Challenge] = field(default_factory=list)
    current: Challenge | None = None
    _recent: deque = field(default_factory=lambda: deque(maxlen=BASELINE_FRAMES))

    @property
    def failures(self) -> int:
        return sum(c.outcome != "passed" for c in self.done)

    @property
    def passed(self) -> bool:
        return bool(self.done) and self.done[-1].outcome == "passed"   # nothing is asked after one

    @property
    def failed(self) -> bool:
        return self.failures >= self.max_failures

    def start(self, t: float) -> None:
        """The face is recognised: show the first challenge now."""
        if self.current is None and not self.done:
            self._open(t)

    @property
    def started(self) -> bool:
        return self.current is not None or bool(self.done)

    def observe(self, t: float, landmarks: np.ndarray) -> Challenge | None:
        """One frame of the face (before and after the start); returns the challenge this frame
        decided, if any. The next challenge opens at once while neither passed nor failed."""
        lm = np.asarray(landmarks, np.float64)
        if np.linalg.norm(lm[1] - lm[0]) < MIN_EYE_DISTANCE_PX:
            return None                    # too far away to measure: wait for the person
        self._recent.append(nose_position(lm))
        c = self.current
        if c is None:
            return None
        pose = np.median(np.array(self._recent), axis=0)
        if c.baseline is None:
            c.baseline = pose
        if not self._judge(c, t, pose):
            return None
        c.answered_at = t
        self.done.append(c)
        self.current = None
        if not (self.passed or self.failed):
            self._open(t)
        return c

    def _open(self, t: float) -> None:
        baseline = np.median(np.array(self._recent), axis=0) if self._recent else None
        self.current = Challenge(self.rng.choice(self.directions), t, baseline)

    def _judge(self, c: Challenge, t: float, pose: np.ndarray) -> bool:
        axis, sign = _AXIS[c.direction]
        delta = pose - c.baseline
        along = float(sign * delta[axis])
        c.moved = max(c.moved, along)
        elapsed = t - c.shown_at
        # Movement against the asked one: the other way on the same axis, or a large move on
        # the other axis (a small nod while turning is normal).
        other = 1 - axis
        against = max(-along / TURN[axis], abs(float(delta[other])) / (2 * TURN[other]))
        if elapsed < MIN_REACTION_S:
            if max(abs(along) / TURN[axis], against) >= 0.5:
                c.outcome = "too early"
                return True
            return False
        if along >= TURN[axis]:
            c.outcome = "passed"
            return True
        if against >= 1.0:
            c.outcome = "wrong way"
            return True
        if elapsed > self.limit_s:
            c.outcome = "too late"
            return True
        return False

    def summary(self) -> str:
        """For the reason sentence: e.g. "asked LEFT: passed after 0.62 s"."""
        parts = []
        for c in self.done:
            after = "" if c.answered_at is None else f" after {c.answered_at - c.shown_at:.2f} s"
            parts.append(f"asked {c.direction}: {c.outcome}{after} (moved {c.moved:+.2f})")
        return "; ".join(parts)
