"""Per-face decision state shared by the identify and verify rules and the photo gate.

A ``FaceTrack`` holds what one tracked face has shown so far: its recent votes, its stranger
frames, its photo-check evidence and, once decided, the status it settled on. It belongs to ONE
face: when the face on a track stops being the face it was decided for, the Decider starts a
fresh FaceTrack (see decide.py), so nothing here ever lends one face's frames to another.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field, replace

import numpy as np

from faceguard.access.challenge import ChallengeRun
from faceguard.access.liveness import MotionCheck
from faceguard.access.records import TrackState, TrackStatus
from faceguard.access.texture_vote import TextureVote


@dataclass
class Vote:
    """One frame's match of one face."""

    person: Hashable | None             # accepted person, None = stranger frame
    label: str | None                   # nearest entry's name (or id), for explanations
    distance: float
    score: float
    claimed: bool = False               # verify: the distance is to the claimed person


@dataclass
class PhotoWait:
    """A face recognised (N of M) that has not yet moved like a head: what to say if it never does."""

    since: float
    label: str
    person: Hashable
    name: str | None
    distance: float
    threshold: float
    mode: str


@dataclass
class PhotoEvidence:
    """Photo check: motion measured only on frames recognised as ``person``, so a stranger's
    face swapped in for a moment cannot lend a photo its movement."""

    person: Hashable | None = None
    motion: MotionCheck = field(default_factory=MotionCheck)
    best: float = 0.0                   # the most that person's face has moved like a head
    wait: PhotoWait | None = None       # recognised, waiting for the photo check
    challenge: ChallengeRun | None = None   # this visit's challenges (when they are on)


@dataclass
class FaceTrack:
    window: deque
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    landmarks: np.ndarray | None = None  # this frame's
    embedding: np.ndarray | None = None  # this frame's
    stranger: list[Vote] = field(default_factory=list)   # every stranger frame of the track
    settled: TrackStatus | None = None   # set once the track made (or skipped) its decision
    photo: PhotoEvidence = field(default_factory=PhotoEvidence)
    mismatches: int = 0                  # frames in a row that are not the settled person
    # The texture signal over this visit's recognised frames (None: not computed, e.g. the
    # photo check is off). The photo gate reads ``verdict()``.
    texture: TextureVote | None = None
    # (vote's person, embedding) of the last frames: a visit's deciding frames are fused (issue 21)
    frames: deque = field(default_factory=lambda: deque(maxlen=60))


class StatusBoard:
    """The statuses of this frame, one per visible face, in the order the faces came."""

    def __init__(self) -> None:
        self.statuses: list[TrackStatus] = []
        # Within ``next_face``: whether the current face has a status already. A face's rules
        # may say two things in one frame (the photo gate's denial, then the PIN asked instead):
        # the last one is what the face shows, so the window gets exactly one per face.
        self._shown: bool | None = None

    def clear(self) -> None:
        self.statuses, self._shown = [], None

    def next_face(self) -> None:
        """What is shown from now on is about the next face."""
        self._shown = False

    def show(self, status: TrackStatus, box: tuple, distance: float = math.inf) -> None:
        self._put(replace(status, box=box, distance=distance))

    def say(self, tid: int, box: tuple, state: TrackState, text: str, distance: float,
            person_id: Hashable | None = None, name: str | None = None) -> None:
        self._put(TrackStatus(tid, box, state, text, person_id, name, distance))

    def _put(self, status: TrackStatus) -> None:
        if self._shown:
            self.statuses[-1] = status
        else:
            self.statuses.append(status)
        if self._shown is not None:
            self._shown = True
