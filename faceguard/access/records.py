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
    PIN = "PIN"           # not final: the face needs a second factor (issue 21); no name shown


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
    PIN = "pin"                    # waiting for the PIN (or badge) on the keypad; no name shown


def as_box(box: Sequence[float] | np.ndarray) -> tuple[float, float, float, float]:
    """[x1, y1, x2, y2] (any sequence or array) as four plain floats."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2, y2)


GRANTED = Verdict.GRANTED
DENIED = Verdict.DENIED
PIN = Verdict.PIN
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
    # The texture signal's vote over the visit (access.texture_vote.TextureVote.evidence);
    # None when it did not run.
    texture: dict | None = None
    # The face zone of the visit (issue 21): "at-once" | "grey" | "stranger", its score (fused
    # embedding to the person's nearest vector) and the zone thresholds; None without zones.
    zone: str | None = None
    zone_score: float | None = None
    strict: float | None = None
    normal: float | None = None
    factor: str | None = None           # "pin" | "badge": the second factor that decided

    @property
    def identity_hidden(self) -> bool:
        """Whether the printed decision must not name the matched person: a PIN request, and
        a denial after a PIN or in the grey zone (a stranger must not learn whom they resemble)."""
        return self.kind == PIN or (self.kind == DENIED and (self.factor is not None or self.zone == "grey"))
    # The person's failed photo checks (attempts.Standing.to_dict: state ok | wait | suspended,
    # failures, seconds left) on a DENIED by the photo check; None when not part of this decision.
    attempts: dict | None = None

    @property
    def attack_suspected(self) -> bool:
        return self.reason.startswith("attack suspected")

    def evidence(self) -> dict:
        """The photo check's and the zone's numbers, for the access log ({} when neither ran)."""
        out: dict = {}
        if self.motion is not None:
            out.update(motion=self.motion, min_motion=self.min_motion)
        if self.challenges is not None:
            out["challenges"] = list(self.challenges)
        if self.texture is not None:
            out["texture"] = dict(self.texture)
        if self.zone is not None:
            out.update(zone=self.zone, zone_score=self.zone_score, strict=self.strict, normal=self.normal)
        if self.factor is not None:
            out["factor"] = self.factor
        if self.attempts is not None:
            out["attempts"] = self.attempts
        return out

    def to_dict(self) -> dict:
        """JSON-ready (inf becomes None); the photo check's evidence only when it ran. A PIN
        request is only {"decision": "PIN", "track_id", "time"}; see ``identity_hidden``."""
        if self.kind == PIN:
            return {"decision": "PIN", "track_id": self.track_id, "time": self.time}
        if self.identity_hidden:
            out = {"time": self.time, "decision": str(self.kind), "mode": self.mode, "person_id": None,
                   "name": None, "distance": None, "threshold": self.threshold,
                   "frames_used": self.frames_used, "reason": self.reason, "track_id": self.track_id,
                   "box": list(self.box)}
            if self.factor is not None:
                out["factor"] = self.factor
            return out
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
