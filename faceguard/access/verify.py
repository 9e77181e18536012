"""Verify mode: is the face in front of the camera the employee whose id was typed (or read from
a badge)? A small state machine per claim.

``claim(employee_id)`` binds to the largest face (the one nearest the camera); GRANTED when that
face is within the threshold of the claimed person's embedding in N of its last M frames, DENIED
after K frames that are not, or when no matching face turns up within ``claim_timeout_s``. The
frame loop passes ``Matcher.verify(embedding, claimed_id)`` results while a claim is open. When
the bound face leaves (or is replaced by another face: a new track), the claim starts over on
the next face, so no face's frames count for another.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Container, Hashable
from dataclasses import dataclass, field

from faceguard.access.photo_gate import PhotoGate
from faceguard.access.records import DENIED, GRANTED, PIN, Decision, TrackState
from faceguard.access.second_factor import SecondFactor, Visit, judge_visit, zone_fields
from faceguard.access.track_state import FaceTrack, PhotoWait, StatusBoard, Vote
from faceguard.gallery.match import MatchResult
from faceguard.gallery.recognise import VisitZones


@dataclass
class Claim:
    person_id: Hashable
    name: str | None
    since: float
    track_id: int | None = None
    window: deque = field(default_factory=deque)
    misses: list[Vote] = field(default_factory=list)
    threshold: float = math.nan         # the last threshold applied, for a timeout's record
    frames_seen: int = 0                # frames of any bound face, kept when a face leaves

    @property
    def label(self) -> str:
        return self.name or str(self.person_id)


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


class VerifyRule:
    def __init__(self, confirm_frames: int, window_frames: int, stranger_frames: int,
                 claim_timeout_s: float, photo: PhotoGate, board: StatusBoard):
        self.confirm_frames = confirm_frames
        self.window_frames = window_frames
        self.stranger_frames = stranger_frames
        self.claim_timeout_s = claim_timeout_s
        self.photo = photo
        self.board = board
        self.claim: Claim | None = None
        self.last_granted: dict[Hashable, float] = {}
        # Issue 21: the zones of a 1:1 comparison and the second factor (the Decider shares the
        # identify rule's, so back-off and answers are one per door); None = as before.
        self.zones: VisitZones | None = None
        self.require_pin = False
        self.factor: SecondFactor | None = None

    def open(self, person_id: Hashable, t: float, name: str | None) -> None:
        """A new claim replaces an open one."""
        self.claim = Claim(person_id, name, t, window=deque(maxlen=self.window_frames))

    def reset(self) -> None:
        self.claim = None
        self.last_granted.clear()

    def step(self, t: float, seen: list[tuple[int, FaceTrack, MatchResult, float]],
             tracks: dict[int, FaceTrack], live_tracks: Container[int]) -> Decision | None:
        """One frame: ``seen`` holds (track id, face, match, threshold) per face in view;
        ``tracks`` every face still tracked; ``live_tracks`` the tracker's current track ids."""
        claim = self.claim
        if claim is None:
            for tid, track, result, _ in seen:
                self.board.say(tid, track.box, TrackState.LOOKING, "waiting for an employee id",
                               result.distance)
            return None
        if claim.track_id is not None and claim.track_id not in live_tracks:
            claim.track_id = None                     # that face left; take the next one
            claim.window.clear()
            claim.misses.clear()
        if claim.track_id is None and seen:
            claim.track_id = max(seen, key=lambda s: _area(s[1].box))[0]
        decision = None
        for tid, track, result, threshold in seen:
            if tid != claim.track_id:
                self.board.say(tid, track.box, TrackState.LOOKING, "looking", result.distance)
                continue
            decision = self._bound_face(t, claim, tid, track, result, threshold) or decision
        if decision is None and t - claim.since > self.claim_timeout_s:
            bound = None if claim.track_id is None else tracks.get(claim.track_id)
            decision = self._timed_out(t, claim, bound)
        if decision is not None:
            self.claim = None
        return decision

    def _bound_face(self, t: float, claim: Claim, tid: int, track: FaceTrack, result: MatchResult,
                    threshold: float) -> Decision | None:
        claim.threshold = threshold
        is_claimed = result.index is not None and result.id == claim.person_id
        vote = Vote(claim.person_id if is_claimed and result.distance <= threshold else None,
                    None if result.index is None else result.label, result.distance,
                    result.score, claimed=is_claimed)
        claim.window.append(vote)
        claim.frames_seen += 1
        track.frames.append((vote.person, track.embedding))
        if vote.person is not None:
            self.photo.measure(track, t, vote.person)
        hits = [v for v in claim.window if v.person is not None]
        if vote.person is None and track.photo.wait is None:   # (a turning head may miss)
            claim.misses.append(vote)
        gate = None
        visit: Visit | None = None
        if len(hits) >= self.confirm_frames:
            distance = statistics.median(v.distance for v in hits)
            visit = judge_visit(self.zones, self.require_pin, claim.person_id,
                                list(track.frames)[-len(claim.window):])
            if visit is not None and visit.denied:
                return self._zone_denied(t, claim, visit, distance, threshold, tid, track, len(hits))
            gate = self.photo.check(t, tid, track, PhotoWait(t, claim.label, claim.person_id, claim.name,
                                                             distance, threshold, "verify"))
        elif track.photo.wait is not None:
            gate = self.photo.check(t, tid, track, track.photo.wait)
        if gate is not None:     # waiting for the photo check, or it failed: already shown
            return gate if isinstance(gate, Decision) else None
        if len(hits) >= self.confirm_frames and visit is not None and visit.needs and self.factor is not None:
            request = Decision(t, PIN, claim.person_id, claim.name or result.name, distance, threshold,
                               len(hits), f"a second factor is needed: {visit.needs}", tid, track.box,
                               mode="verify", **self.photo.evidence(track), **zone_fields(self.zones, visit))
            self.factor.ask(request, visit.fused)
            self.board.say(tid, track.box, TrackState.PIN, "enter your PIN", result.distance, claim.person_id)
            return request
        if len(hits) >= self.confirm_frames:
            reason = (f"{claim.label} verified in {len(hits)} of the last {len(claim.window)} frames "
                      f"(median distance {distance:.2f} ≤ threshold {threshold:.2f}){self.photo.note(track)}")
            decision = Decision(t, GRANTED, claim.person_id, claim.name or result.name, distance,
                                threshold, len(hits), reason, tid, track.box, mode="verify",
                                **self.photo.evidence(track), **zone_fields(self.zones, visit))
            self.last_granted[claim.person_id] = t
        elif len(claim.misses) >= self.stranger_frames:
            decision = self._denied(t, claim, threshold, tid, track)
        else:
            self.board.say(tid, track.box, TrackState.VERIFYING,
                           f"checking {claim.label} {len(hits)}/{self.confirm_frames}",
                           result.distance, claim.person_id, claim.name)
            return None
        state = TrackState.GRANTED if decision.kind == GRANTED else TrackState.DENIED
        self.board.say(tid, track.box, state, f"{claim.label}: {state}", result.distance,
                       claim.person_id, claim.name)
        return decision

    def _zone_denied(self, t: float, claim: Claim, visit: Visit, distance: float, threshold: float,
                     tid: int, track: FaceTrack, frames: int) -> Decision:
        """The claimed person's face matched frame by frame, but the visit's zone denies it."""
        self.board.say(tid, track.box, TrackState.DENIED, f"{claim.label}: {TrackState.DENIED}", distance,
                       claim.person_id, claim.name)
        return Decision(t, DENIED, claim.person_id, claim.name, distance, threshold, frames,
                        f"not {claim.label}: {visit.denied}", tid, track.box, mode="verify",
                        **self.photo.evidence(track), **zone_fields(self.zones, visit))

    def _denied(self, t: float, claim: Claim, threshold: float, tid: int, track: FaceTrack) -> Decision:
        misses = claim.misses[-self.stranger_frames:]
        own = [v.distance for v in misses if v.claimed]
        others = [v.label for v in misses if v.label is not None and not v.claimed]
        if own:
            distance = statistics.median(own)
            reason = (f"not {claim.label}: distance {distance:.2f} > threshold {threshold:.2f} "
                      f"in {len(misses)} frames")
        elif others:
            distance = math.inf
            reason = f"not {claim.label}: the face looks nearer to {statistics.mode(others)} ({len(misses)} frames)"
        else:
            distance = math.inf
            reason = f"not {claim.label}: the face matches no one ({len(misses)} frames)"
        return Decision(t, DENIED, claim.person_id, claim.name, distance, threshold, len(misses),
                        reason, tid, track.box, mode="verify", **self.photo.evidence(track))

    def _timed_out(self, t: float, claim: Claim, bound: FaceTrack | None) -> Decision:
        own = [v.distance for v in claim.misses if v.claimed]
        distance = statistics.median(own) if own else math.inf
        seconds = self.claim_timeout_s
        if not claim.frames_seen:
            reason = f"no face seen within {seconds:.0f} s of the claim for {claim.label}"
        elif bound is not None and bound.photo.wait is not None:
            reason = f"{claim.label} matched, but {self.photo.no_head_movement(bound, seconds, 'of the claim')}"
        elif own:
            reason = (f"no face matched {claim.label} within {seconds:.0f} s of the claim "
                      f"(median distance {distance:.2f} > threshold {claim.threshold:.2f})")
        else:
            reason = f"no face matched {claim.label} within {seconds:.0f} s of the claim"
        box = bound.box if bound is not None else (0.0,) * 4
        return Decision(t, DENIED, claim.person_id, claim.name, distance, claim.threshold,
                        len(claim.window), reason, -1 if claim.track_id is None else claim.track_id,
                        box, mode="verify", **self.photo.evidence(bound))
