"""The photo gate: a recognised face must also move like a head before the door opens.

The identify and verify rules call ``PhotoGate.measure`` on every frame recognised as the
person, and ``PhotoGate.check`` once the person is recognised (N of M). Until the face has moved
enough (faceguard/access/liveness.py), ``check`` shows "turn your head a little"; after
``timeout_s`` it DENIES with the person named and the motion measured.
"""

from __future__ import annotations

from collections.abc import Hashable

from faceguard.access.liveness import MotionCheck
from faceguard.access.records import DENIED, Decision, TrackState, TrackStatus
from faceguard.access.track_state import FaceTrack, PhotoEvidence, PhotoWait, StatusBoard


class PhotoGate:
    def __init__(self, enabled: bool, min_motion: float, timeout_s: float, board: StatusBoard):
        self.enabled = enabled
        self.min_motion = min_motion
        self.timeout_s = timeout_s
        self.board = board

    def measure(self, track: FaceTrack, t: float, person: Hashable) -> None:
        """A frame recognised as ``person``: add its landmarks to that person's motion record."""
        if not self.enabled:
            return
        if track.photo.person != person:
            track.photo = PhotoEvidence(person, MotionCheck())
        track.photo.motion.add(t, track.landmarks)
        track.photo.best = max(track.photo.best, track.photo.motion.motion())

    def passed(self, track: FaceTrack) -> bool:
        return not self.enabled or track.photo.best >= self.min_motion

    def check(self, t: float, tid: int, track: FaceTrack, recognised: PhotoWait
              ) -> TrackStatus | Decision | None:
        """None: the check is off or passed. A TrackStatus: recognised, still waiting for the face
        to move (shown, no decision yet). A Decision: waited too long, DENIED."""
        if self.passed(track):
            return None
        if track.photo.wait is None:
            track.photo.wait = recognised
        w = track.photo.wait
        if t - w.since < self.timeout_s:
            status = TrackStatus(tid, track.box, TrackState.TURN_HEAD, f"{w.label}: turn your head a little",
                                 w.person, w.name)
            self.board.show(status, track.box, w.distance)
            return status
        reason = (f"{w.label} recognised (median distance {w.distance:.2f} ≤ threshold {w.threshold:.2f}), "
                  f"but {self.no_head_movement(track, self.timeout_s)}")
        track.settled = TrackStatus(tid, track.box, TrackState.DENIED, f"{w.label}: photo check failed",
                                    w.person, w.name)
        self.board.show(track.settled, track.box, w.distance)
        return Decision(t, DENIED, w.person, w.name, w.distance, w.threshold, len(track.window), reason, tid,
                        track.box, mode=w.mode, **self.evidence(track))

    def evidence(self, track: FaceTrack) -> dict:
        """The Decision fields that carry the check's numbers (None when the check is off)."""
        if not self.enabled:
            return {"motion": None, "min_motion": None}
        return {"motion": round(track.photo.best, 4), "min_motion": self.min_motion}

    def no_head_movement(self, track: FaceTrack, seconds: float, since: str = "") -> str:
        within = f"within {seconds:.0f} s {since}".rstrip()
        return (f"{within} the face did not move like a real head (photo check: motion "
                f"{track.photo.best:.2f} < {self.min_motion:.2f}); a photo or a screen?")

    def note(self, track: FaceTrack) -> str:
        """The reason's tail for a GRANTED that passed the check."""
        if not self.enabled:
            return ""
        return f"; photo check: motion {track.photo.best:.2f} ≥ {self.min_motion:.2f}"
