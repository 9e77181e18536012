"""The texture signal over one visit: does this face, frame after frame, look like a live face
or like a screen or a print? (The per-frame score: faceguard/vision/texture.py.)

One frame's score says little: the networks' errors follow image quality, and a single frame
of a real person can score low. So the vote decides over the visit's frames: the mean of the
scores it got (frames the scorer abstained on are counted, not scored), and only once it has
``min_scores`` of them; before that it is "unsure". It is one signal among three (parallax,
follow-the-target, texture): the photo gate acts on ``verdict()`` ("screen" re-asks the
challenge and counts towards the retry bound, it never denies on its own), and every part of
it goes into the Decision's evidence.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

LIVE = "live"
SCREEN = "screen"       # a screen or a print: the frames look like a presentation attack
UNSURE = "unsure"       # too few judged frames yet
# Judged frames before the vote says anything: at 5 checked frames per second, under a second.
MIN_SCORES = 3
RECENT = 10             # the last scores kept for the evidence


@dataclass
class TextureVote:
    """The texture scores of one visit's frames (only those recognised as the person)."""

    threshold: float                    # a mean live score below it: "screen"
    min_scores: int = MIN_SCORES
    judged: int = 0
    abstained: int = 0
    total: float = 0.0
    lowest: float = math.inf
    first_t: float | None = None
    last_t: float | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT))

    def add(self, t: float, score: float | None) -> None:
        """One frame at time ``t`` (seconds): its live score in [0, 1], or None (abstained)."""
        if self.first_t is None:
            self.first_t = t
        self.last_t = t
        if score is None or not math.isfinite(score):
            self.abstained += 1
            return
        self.judged += 1
        self.total += float(score)
        self.lowest = min(self.lowest, float(score))
        self.recent.append(float(score))

    def mean(self) -> float | None:
        return self.total / self.judged if self.judged else None

    def verdict(self) -> str:
        """"live" | "screen" | "unsure" (fewer than ``min_scores`` judged frames)."""
        mean = self.mean()
        if mean is None or self.judged < self.min_scores:
            return UNSURE
        return LIVE if mean >= self.threshold else SCREEN

    def evidence(self) -> dict:
        """JSON-safe numbers for the Decision, the JSON line and the access log."""
        mean = self.mean()
        return {
            "verdict": self.verdict(),
            "mean": None if mean is None else round(mean, 4),
            "threshold": self.threshold,
            "judged": self.judged,
            "abstained": self.abstained,
            "min_scores": self.min_scores,
            "lowest": round(self.lowest, 4) if self.judged else None,
            "recent": [round(s, 4) for s in self.recent],
            "seconds": (round(self.last_t - self.first_t, 3)
                        if self.first_t is not None and self.last_t is not None else None),
        }
