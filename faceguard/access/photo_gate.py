"""The photo gate: a recognised face must also prove it is a live head before the door opens.

Two tests, both from the landmarks the detector already finds:
* parallax (liveness.py): the face must move like a head, not like a flat picture;
* follow the target (challenge.py, when on): a dot moves along a random path drawn for this
  visit and the head must follow it, judged on timestamps. A replayed video cannot know the
  path; the evidence accumulates over the visit's paths, so a fidget costs time, not the visit.
A texture signal (``track.texture``, when present: ``verdict()`` "live" | "screen" | "unsure",
``evidence()``) is evidence inside the gate: a "screen" verdict on a followed path asks for a
new path and counts as a failed attempt; it never denies on its own.

Failures count per PERSON (attempts.py): the 2nd within 5 minutes means a wait, the 3rd
suspends face entry ("attack suspected"); a suspended person gets a DENIED that says a second
factor or the manager is needed. Too few pose samples per second (a slow PC) DENIES with
"this PC is too slow for the photo check right now", never grants on the face alone, and is
not held against the person.

The identify and verify rules call ``measure`` on every frame recognised as the person, and
``check`` once the person is recognised (N of M) and on every frame while waiting.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Hashable

from faceguard.access.attempts import Attempts, Standing
from faceguard.access.challenge import MAX_PATHS, ChallengeRun
from faceguard.access.liveness import MotionCheck
from faceguard.access.records import DENIED, Decision, TrackState, TrackStatus
from faceguard.access.track_state import FaceTrack, PhotoEvidence, PhotoWait, StatusBoard

log = logging.getLogger(__name__)

TOO_SLOW = "this PC is too slow for the photo check right now"


class PhotoGate:
    def __init__(self, enabled: bool, min_motion: float, timeout_s: float, board: StatusBoard, *,
                 challenge: bool = False, seed: int | None = None, challenge_failures: int = MAX_PATHS,
                 attempts: Attempts | None = None):
        self.enabled = enabled
        self.min_motion = min_motion
        self.timeout_s = timeout_s
        self.board = board
        self.challenge = enabled and challenge
        self.challenge_failures = challenge_failures
        self.attempts = attempts or Attempts()
        # Unpredictable in use; a seed makes a run reproducible (tests, benchmarks).
        self.rng = random.SystemRandom() if seed is None else random.Random(seed)

    def measure(self, track: FaceTrack, t: float, person: Hashable) -> None:
        """A frame recognised as ``person``: add its landmarks to that person's record."""
        if not self.enabled or track.landmarks is None:
            return
        if track.photo.person != person:
            track.photo = PhotoEvidence(person, MotionCheck())
            if self.challenge:
                track.photo.challenge = ChallengeRun(self.rng, max_failures=self.challenge_failures)
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
        (shown, no decision yet). A Decision: DENIED (failed, too slow, suspended)."""
        if not self.enabled:
            return None
        if track.photo.wait is None:
            standing = self.attempts.standing(recognised.person, t)
            if standing.state == "suspended":
                return self._denied(t, tid, track, recognised, self._suspended(recognised, standing, t),
                                    standing)
            if standing.state == "wait":
                text = f"{recognised.label}: please wait {standing.until - t:.0f} s, then try again"
                status = TrackStatus(tid, track.box, TrackState.TURN_HEAD, text, recognised.person,
                                     recognised.name)
                self.board.show(status, track.box, recognised.distance)
                return status
            track.photo.wait = recognised
        w = track.photo.wait
        run = track.photo.challenge
        if run is not None:
            run.start(t)
            run.judge(t)
        if self.passed(track):
            doubt = None if run is None else self._screen(track)   # (no path to ask again: evidence only)
            if doubt is None:
                return None
            standing = self.attempts.failed(w.person, t)
            log.warning("%s: the texture signal says screen; a new path is asked (%s)", w.label, doubt)
            if standing.state == "suspended":
                if run is not None:
                    run.doubt("screen")
                return self._denied(t, tid, track, w, self._attack(w, standing, "the texture signal "
                                    "said screen"), standing)
            if run is not None:
                run.reask(t, "screen")
        if run is not None and run.too_slow:
            log.warning("%s: %s (%s)", w.label, TOO_SLOW, run.summary())
            return self._denied(t, tid, track, w, f"{w.label} recognised, but {TOO_SLOW} "
                                f"({run.summary()}); the door does not open on the face alone",
                                self.attempts.standing(w.person, t), shown=TOO_SLOW)
        if run is not None and run.failed:
            return self._failed(t, tid, track, w, f"{w.label} recognised, but the head did not follow "
                                                  f"the moving dot ({run.summary()}); a video?")
        if t - w.since >= self.timeout_s:      # (the default leaves time for two whole paths)
            why = (self.no_head_movement(track, self.timeout_s) if track.photo.best < self.min_motion
                   else f"within {self.timeout_s:.0f} s the head did not follow the moving dot "
                        f"({run.summary() if run is not None else ''}); a video?")
            return self._failed(t, tid, track, w, f"{w.label} recognised (median distance "
                                                  f"{w.distance:.2f} ≤ threshold {w.threshold:.2f}), but {why}")
        path = run.current.path if run is not None and run.current is not None else None
        asked = None if path is None else path.move_at(t)
        text = (f"{w.label}: follow the moving dot with your nose" if path is not None
                else f"{w.label}: turn your head a little")
        status = TrackStatus(tid, track.box, TrackState.TURN_HEAD, text, w.person, w.name,
                             direction=asked, target=path)
        self.board.show(status, track.box, w.distance)
        return status

    @staticmethod
    def _screen(track: FaceTrack) -> str | None:
        """The texture signal's doubt about a passed path, if it says "screen"."""
        texture = getattr(track, "texture", None)
        if texture is None or texture.verdict() != "screen":
            return None
        return str(texture.evidence())

    def left(self, t: float, track: FaceTrack) -> None:
        """The face left during its photo check, undecided, after the check could have let it in:
        a failed try of that person all the same (else walking away just before the DENIED and
        coming back would be a free new try, again and again)."""
        run, w = track.photo.challenge, track.photo.wait
        if (not self.enabled or w is None or run is None or track.settled is not None or run.passed
                or run.failed or not run.had_a_chance):
            return
        standing = self.attempts.failed(w.person, t)
        log.warning("%s left the camera during the photo check (%s): counted as a failed try, now %s",
                    w.label, run.summary(), standing.state)

    def _failed(self, t: float, tid: int, track: FaceTrack, w: PhotoWait, reason: str) -> Decision:
        """A failed photo check: counted against the person; the 3rd in a row suspends."""
        standing = self.attempts.failed(w.person, t)
        if standing.state == "suspended":
            reason = self._attack(w, standing, reason)
        elif standing.state == "wait":
            reason += f"; the {standing.failures}nd failure within {self.attempts.window_s / 60:.0f} min: " \
                      f"wait {self.attempts.wait_s:.0f} s before the next try"
        return self._denied(t, tid, track, w, reason, standing)

    def _attack(self, w: PhotoWait, standing: Standing, why: str) -> str:
        log.warning("attack suspected on %s's face entry: %s", w.label, why)
        return (f"attack suspected: {why}; the {standing.failures}rd failed photo check for {w.label} "
                f"within {self.attempts.window_s / 60:.0f} min, face entry suspended for "
                f"{self.attempts.suspend_s / 60:.0f} min: a second factor or the manager is needed")

    def _suspended(self, w: PhotoWait, standing: Standing, t: float) -> str:
        return (f"{w.label} recognised, but face entry is suspended for {(standing.until - t) / 60:.0f} more "
                f"min after repeated failed photo checks: a second factor or the manager is needed")

    def _denied(self, t: float, tid: int, track: FaceTrack, w: PhotoWait, reason: str,
                standing: Standing, shown: str = "photo check failed") -> Decision:
        if standing.state == "suspended":
            shown = "face entry suspended"
        track.settled = TrackStatus(tid, track.box, TrackState.DENIED, f"{w.label}: {shown}",
                                    w.person, w.name)
        self.board.show(track.settled, track.box, w.distance)
        evidence = self.evidence(track)
        evidence["attempts"] = standing.to_dict(t)
        return Decision(t, DENIED, w.person, w.name, w.distance, w.threshold, len(track.window), reason, tid,
                        track.box, mode=w.mode, **evidence)

    def evidence(self, track: FaceTrack | None) -> dict:
        """The Decision fields that carry the gate's numbers (None when it is off)."""
        if not self.enabled or track is None:
            return {}
        run = track.photo.challenge
        out: dict = {"motion": round(track.photo.best, 4), "min_motion": self.min_motion,
                     "challenges": None if run is None else tuple(c.to_dict() for c in run.done)}
        texture = getattr(track, "texture", None)
        if texture is not None:
            out["texture"] = {"verdict": texture.verdict(), **texture.evidence()}
        return out

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
