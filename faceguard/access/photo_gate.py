"""The photo gate: a recognised face must also prove it is a live head before the door opens.

Two tests, both from the landmarks the detector already finds:
* parallax (liveness.py): the face must move like a head, not like a flat picture;
* the challenge (challenge.py, when on): one head movement asked at random per visit ("turn
  your head LEFT"), made after the instruction appeared, within its time limit. A replayed
  video moves when the recording moved, not when and where the door asks.
The identify and verify rules call ``measure`` on every frame recognised as the person, and
``check`` once the person is recognised (N of M). Until both tests pass, ``check`` shows the
instruction; a failed challenge, or ``timeout_s`` without passing, DENIES with the person
named and the numbers measured.
"""

from __future__ import annotations

import random
from collections.abc import Hashable

from faceguard.access.challenge import DIRECTIONS, ChallengeRun
from faceguard.access.liveness import MotionCheck
from faceguard.access.records import DENIED, Decision, TrackState, TrackStatus
from faceguard.access.track_state import FaceTrack, PhotoEvidence, PhotoWait, StatusBoard


class PhotoGate:
    def __init__(self, enabled: bool, min_motion: float, timeout_s: float, board: StatusBoard, *,
                 challenge: bool = False, seed: int | None = None,
                 directions: tuple[str, ...] = DIRECTIONS, challenge_failures: int = 2):
        self.enabled = enabled
        self.min_motion = min_motion
        self.timeout_s = timeout_s
        self.board = board
        self.challenge = enabled and challenge
        self.directions = directions
        self.challenge_failures = challenge_failures
        # Unpredictable in use; a seed makes a run reproducible (tests, benchmarks).
        self.rng = random.SystemRandom() if seed is None else random.Random(seed)

    def measure(self, track: FaceTrack, t: float, person: Hashable) -> None:
        """A frame recognised as ``person``: add its landmarks to that person's record."""
        if not self.enabled or track.landmarks is None:
            return
        if track.photo.person != person:
            track.photo = PhotoEvidence(person, MotionCheck())
            if self.challenge:
                track.photo.challenge = ChallengeRun(self.rng, self.directions,
                                                     max_failures=self.challenge_failures)
        track.photo.motion.add(t, track.landmarks)
        track.photo.best = max(track.photo.best, track.photo.motion.motion())
        if track.photo.challenge is not None:
            track.photo.challenge.observe(t, track.landmarks)

    def passed(self, track: FaceTrack) -> bool:
        if not self.enabled:
            return True
        run = track.photo.challenge
        return track.photo.best >= self.min_motion and (run is None or run.passed)

    def check(self, t: float, tid: int, track: FaceTrack, recognised: PhotoWait
              ) -> TrackStatus | Decision | None:
        """None: the gate is off or passed. A TrackStatus: recognised, still waiting for the face
        (shown, no decision yet). A Decision: a challenge failed, or waited too long: DENIED."""
        if self.passed(track):
            return None
        if track.photo.wait is None:
            track.photo.wait = recognised
        w = track.photo.wait
        run = track.photo.challenge
        if run is not None:
            run.start(t)
        if run is not None and run.failed:
            return self._denied(t, tid, track, w, f"{w.label} recognised, but the head did not follow "
                                                  f"the door's request ({run.summary()}); a video?")
        if t - w.since >= self.timeout_s:
            return self._denied(t, tid, track, w, f"{w.label} recognised (median distance "
                                                  f"{w.distance:.2f} ≤ threshold {w.threshold:.2f}), "
                                                  f"but {self.no_head_movement(track, self.timeout_s)}")
        asked = run.current.direction if run is not None and run.current is not None else None
        text = f"{w.label}: turn your head {asked}" if asked else f"{w.label}: turn your head a little"
        status = TrackStatus(tid, track.box, TrackState.TURN_HEAD, text, w.person, w.name,
                             direction=asked)
        self.board.show(status, track.box, w.distance)
        return status

    def _denied(self, t: float, tid: int, track: FaceTrack, w: PhotoWait, reason: str) -> Decision:
        track.settled = TrackStatus(tid, track.box, TrackState.DENIED, f"{w.label}: photo check failed",
                                    w.person, w.name)
        self.board.show(track.settled, track.box, w.distance)
        return Decision(t, DENIED, w.person, w.name, w.distance, w.threshold, len(track.window), reason, tid,
                        track.box, mode=w.mode, **self.evidence(track))

    def evidence(self, track: FaceTrack | None) -> dict:
        """The Decision fields that carry the gate's numbers (None when it is off)."""
        if not self.enabled or track is None:
            return {}
        run = track.photo.challenge
        return {"motion": round(track.photo.best, 4), "min_motion": self.min_motion,
                "challenges": None if run is None else tuple(c.to_dict() for c in run.done)}

    def no_head_movement(self, track: FaceTrack, seconds: float, since: str = "") -> str:
        within = f"within {seconds:.0f} s {since}".rstrip()
        run = track.photo.challenge
        asked = f"; {run.summary()}" if run is not None and run.done else ""
        return (f"{within} the face did not move like a real head (photo check: motion "
                f"{track.photo.best:.2f} < {self.min_motion:.2f}{asked}); a photo or a screen?")

    def note(self, track: FaceTrack) -> str:
        """The reason's tail for a GRANTED that passed the gate."""
        if not self.enabled:
            return ""
        run = track.photo.challenge
        asked = f"; {run.summary()}" if run is not None else ""
        return f"; photo check: motion {track.photo.best:.2f} ≥ {self.min_motion:.2f}{asked}"
