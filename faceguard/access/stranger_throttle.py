"""Strangers' attempts are counted by their face, the way a matched person's are counted by
their id (attempts.py; docs/decision-rule.md, issue 20 item 3).

A face that matches nobody cannot be counted against a person, so the door keeps a small
in-memory list of the faces it recently DENIED as strangers: each one's embedding (the mean of
its stranger frames), when it was last seen, and its failures in an ``Attempts`` of its own
(the same rule as for people: the 2nd denied visit within 5 minutes means a wait, the 3rd means
the face is not checked again for the suspension time). A face is "the same stranger" when its
embedding lies within ``radius`` of a remembered one: the door's normal threshold (the distance
at which the door would call two faces one person), but never more than SAME_STRANGER_DISTANCE.

One visit, one attempt: while the face stays in view (it is seen again within
``RETURN_GAP_S``, e.g. its track was lost for a moment), a new track of it is the same visit,
not a new attempt, and makes no new event. Leaving the camera for longer and coming back is a
new attempt, counted.

Nothing about one face rests on another's result:
* two strangers whose embeddings lie farther apart than ``radius`` have separate counts;
* a face that is held back because it looks like a waiting stranger is held only when it lies
  nearer to that stranger's embedding than to the enrolled person it matches (an employee is
  never held back for a stranger who resembles them).
Times are the frames' timestamps (seconds), so the waits do not depend on the PC's speed. The
embeddings stay in memory only, for at most the counting window (or the suspension), and are
forgotten on ``reset``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from faceguard.access.attempts import (
    DEFAULT_SUSPEND_S,
    DEFAULT_WAIT_S,
    DEFAULT_WINDOW_S,
    Attempts,
    Standing,
)

# The most two embeddings may lie apart to be one stranger, whatever the threshold: one person's
# photos lie 0.04-0.09 apart (LFW dev-set staff, gallery vs probe), the same face in a video
# closer still; two different people can be as near as 0.145 (the shared clip: a face in the
# audience and the actor on stage). Erring towards "a new stranger" costs one more attempt
# before the wait; erring the other way would hold one stranger back for another's visits.
SAME_STRANGER_DISTANCE = 0.12
log = logging.getLogger(__name__)

# Seen again within this many seconds: the same visit (a track lost and found while the face
# stays in front of the camera). Longer away, e.g. stepping aside for 2 s, is a new attempt.
RETURN_GAP_S = 1.5
MAX_FACES = 500        # the oldest are forgotten first (a busy street in front of the camera)


@dataclass
class _Face:
    key: int
    embedding: np.ndarray
    last_seen: float
    returned: bool = False      # away for RETURN_GAP_S or more since its last counted attempt


class StrangerThrottle:
    def __init__(self, window_s: float = DEFAULT_WINDOW_S, wait_s: float = DEFAULT_WAIT_S,
                 suspend_s: float = DEFAULT_SUSPEND_S, return_gap_s: float = RETURN_GAP_S):
        self.attempts = Attempts(window_s, wait_s, suspend_s)
        self.return_gap_s = return_gap_s
        self._faces: list[_Face] = []
        self._next_key = 1
        self._logged: deque[int] = deque(maxlen=100)    # tracks whose hold was logged (ids are not reused)

    def reset(self) -> None:
        self._faces.clear()
        self.attempts.reset()

    def _nearest(self, embedding: np.ndarray | None, radius: float) -> tuple[_Face | None, float]:
        if embedding is None or not self._faces:
            return None, math.inf
        d = np.sum((np.stack([f.embedding for f in self._faces]) - embedding) ** 2, axis=1)
        k = int(np.argmin(d))
        return (self._faces[k], float(d[k])) if d[k] <= radius else (None, math.inf)

    def sighted(self, t: float, embedding: np.ndarray | None, radius: float) -> None:
        """A stranger frame at ``t``: refresh the remembered face it belongs to, if any."""
        face, _ = self._nearest(embedding, radius)
        if face is not None:
            face.returned = face.returned or t - face.last_seen >= self.return_gap_s
            face.last_seen = t

    def held(self, t: float, embedding: np.ndarray | None, radius: float,
             matched_distance: float = math.inf, track_id: int | None = None) -> Standing | None:
        """The standing of a remembered stranger that must wait (or is suspended) if this face is
        that stranger: within ``radius`` of it and nearer to it than ``matched_distance`` (to the
        enrolled person this frame matched, inf for a stranger frame); None: check the face.
        Logged once per track (``track_id``)."""
        face, d = self._nearest(embedding, radius)
        if face is None or d >= matched_distance:
            return None
        standing = self.attempts.standing(face.key, t)
        if standing.state == "ok":
            return None
        if track_id is not None and track_id not in self._logged:
            self._logged.append(track_id)
            log.info("track %d: a face denied %d times within %.0f min is back; held (%s) for %.0f s more",
                     track_id, standing.failures, self.attempts.window_s / 60, standing.state, standing.until - t)
        return standing

    def denied(self, t: float, embedding: np.ndarray | None, radius: float) -> Standing | None:
        """A face DENIED as a stranger at ``t`` (``embedding``: its visit's, e.g. the mean of its
        stranger frames). Counts one attempt and returns the face's standing after it; None when
        it is the same visit as the face's last counted attempt (no new event)."""
        self._forget(t)
        if embedding is None:
            return Standing("ok")          # nothing to recognise it by: every track is a visit
        face, _ = self._nearest(embedding, radius)
        if face is not None and not face.returned and t - face.last_seen < self.return_gap_s:
            face.last_seen = t
            return None
        if face is None:
            face = _Face(self._next_key, np.array(embedding, np.float32), t)
            self._next_key += 1
            self._faces.append(face)
        face.last_seen, face.returned = t, False
        return self.attempts.failed(face.key, t)

    def _forget(self, t: float) -> None:
        """Faces with nothing left to count (no failure in the window, no wait, no suspension),
        and the oldest beyond MAX_FACES."""
        keep = []
        for face in self._faces:
            standing = self.attempts.standing(face.key, t)
            if standing.state != "ok" or standing.failures or t - face.last_seen < self.return_gap_s:
                keep.append(face)
            else:
                self.attempts.forget(face.key)
        self._faces = keep[-MAX_FACES:]


def standing_note(standing: Standing, attempts: Attempts, what: str,
                  suspended: str = "this face is not checked again") -> str:
    """The reason's tail for a counted attempt (empty for the 1st): the wait or the suspension."""
    window = f"{attempts.window_s / 60:.0f} min"
    if standing.state == "wait":
        return f"; the {_nth(standing.failures)} {what} within {window}: wait {attempts.wait_s:.0f} s before the next try"
    if standing.state == "suspended":
        return (f"; the {_nth(standing.failures)} {what} within {window}: {suspended} "
                f"for {attempts.suspend_s / 60:.0f} min")
    return ""


def held_text(standing: Standing, t: float) -> str:
    """What the window shows on a face that must wait."""
    left = standing.until - t
    return (f"please wait {left:.0f} s, then try again" if standing.state == "wait"
            else f"too many tries: not checked for {left / 60:.0f} more min")


def _nth(n: int) -> str:
    return f"{n}{'st' if n == 1 else 'nd' if n == 2 else 'rd' if n == 3 else 'th'}"
