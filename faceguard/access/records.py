"""What the door decides and shows: verdicts, track states, and the records that carry them.

Both enums are text enums: they compare equal to their values ("GRANTED", "granted"), print as
them and go into JSON and SQLite as them, so the stable JSON shapes and the access log keep
their strings.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np


class _TextEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Verdict(_TextEnum):
    GRANTED = "GRANTED"
    DENIED = "DENIED"


class TrackState(_TextEnum):
    """What the window paints next to a face."""

    LOOKING = "looking"            # no decision under way (verify mode without a claim, ...)
    RECOGNISING = "recognising"    # an enrolled person seen, fewer than N of M frames yet
    STRANGER = "stranger"          # stranger frames counting up to K
    GRANTED = "granted"
    DENIED = "denied"
    COOLDOWN = "cooldown"          # this person was let in moments ago: same visit, no event
    VERIFYING = "verifying"        # verify mode: checking the claimed person
    TURN_HEAD = "turn_head"        # recognised, waiting for the photo check (move your head)
    NO_GALLERY = "no_gallery"      # nobody is enrolled: nothing to decide


def as_box(box: Sequence[float] | np.ndarray) -> tuple[float, float, float, float]:
    """[x1, y1, x2, y2] (any sequence or array) as four plain floats."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2, y2)


GRANTED = Verdict.GRANTED
DENIED = Verdict.DENIED
MODES = ("identify", "verify")


@dataclass(frozen=True)
class Decision:
    time: float
    kind: Verdict
    person_id: Hashable | None          # None for a stranger
    name: str | None
    distance: float                     # median over the frames used; inf when there was no one
    threshold: float
    frames_used: int
    reason: str                         # one sentence, with distance and threshold
    track_id: int
    box: tuple[float, float, float, float]
    mode: str = "identify"
    # Photo check evidence (None when the check is off): how far the face moved like a head,
    # and the bar it had to reach.
    motion: float | None = None
    min_motion: float | None = None
    # The challenges of this visit (challenge.Challenge.to_dict each: direction, outcome,
    # movement, times); None when the challenge is off.
    challenges: tuple[dict, ...] | None = None
    # The person's failed photo checks (attempts.Standing.to_dict: state ok | wait | suspended,
    # failures, seconds left) on a DENIED by the photo check; the texture signal's verdict and
    # numbers when it ran. None when not part of this decision.
    attempts: dict | None = None
    texture: dict | None = None

    @property
    def attack_suspected(self) -> bool:
        return self.reason.startswith("attack suspected")

    def evidence(self) -> dict:
        """The photo check's numbers, for the access log ({} when it did not run)."""
        out: dict = {}
        if self.motion is not None:
            out.update(motion=self.motion, min_motion=self.min_motion)
        if self.challenges is not None:
            out["challenges"] = list(self.challenges)
        if self.attempts is not None:
            out["attempts"] = self.attempts
        if self.texture is not None:
            out["texture"] = self.texture
        return out

    def to_dict(self) -> dict:
        """JSON-ready (inf becomes None); the photo check's evidence only when it ran."""
        out = {
            "time": self.time, "decision": str(self.kind), "mode": self.mode,
            "person_id": self.person_id, "name": self.name,
            "distance": self.distance if math.isfinite(self.distance) else None,
            "threshold": self.threshold, "frames_used": self.frames_used,
            "reason": self.reason, "track_id": self.track_id, "box": list(self.box),
        }
        out.update(self.evidence())
        return out


@dataclass(frozen=True)
class TrackStatus:
    """What the UI paints next to one face this frame."""

    track_id: int
    box: tuple[float, float, float, float]
    state: TrackState
    text: str                           # e.g. "recognising Ana 2/3"
    person_id: Hashable | None = None
    name: str | None = None
    distance: float = math.inf          # this frame's nearest distance
    direction: str | None = None        # TURN_HEAD with a challenge: the dot's move (challenge.DIRECTIONS)
    target: Any = None                  # ... and its path (challenge.TargetPath), for the marker
