"""From per-frame matches to door decisions: multi-frame confirmation, strangers, cool-down.

The frame loop calls ``Decider.update(t, observations)`` once per processed frame with one
``(box, MatchResult)`` per face. Faces are tracked across frames (``IouTracker``) so that every
person's frames are counted on their own track and two people side by side never lend each other
votes. Per track:

* identify mode: GRANTED for a person once they are the accepted match in at least N of the
  track's last M frames; DENIED once the track has shown K frames of a stranger. One decision per
  track until it leaves the picture, and a per-person cool-down: a second track of the same person
  within ``cooldown_s`` of their last GRANTED makes no new event (one visit, one event).
* verify mode: ``claim(employee_id)`` (typed, or a badge reader that types) binds to the largest
  face; GRANTED when that face is within the threshold of the claimed person's embedding in N of
  its last M frames, DENIED after K frames that are not, or when no matching face turns up within
  ``claim_timeout_s``. The frame loop passes ``Matcher.verify(embedding, decider.claimed_id)``
  results while a claim is open (an identify result counts only when its nearest person is the
  claimed one).

Photo check (``photo_check=True``, faceguard/access/liveness.py): a recognised face must also
have moved like a head, not like a flat picture, before GRANTED; until it has, its status asks
the person to turn their head a little, and after ``photo_check_timeout_s`` of recognised
frames without such motion the track is DENIED (person named, reason says why). Movement
counts only on frames recognised as that person, so a stranger's moving face swapped in on the
same track lends a photo nothing. Needs the landmarks of each face passed to ``update``.

``statuses`` holds one ``TrackStatus`` per visible track after each update, for the UI to paint.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from faceguard.access.liveness import DEFAULT_MIN_MOTION, MotionCheck
from faceguard.access.track import IouTracker
from faceguard.errors import SettingsError
from faceguard.gallery.match import MatchResult

GRANTED = "GRANTED"
DENIED = "DENIED"
MODES = ("identify", "verify")


@dataclass(frozen=True)
class Decision:
    time: float
    kind: str                           # GRANTED | DENIED
    person_id: Hashable | None          # None for a stranger
    name: str | None
    distance: float                     # median over the frames used; inf when there was no one
    threshold: float
    frames_used: int
    reason: str                         # one sentence, with distance and threshold
    track_id: int
    box: tuple[float, float, float, float]
    mode: str = "identify"

    def to_dict(self) -> dict:
        """JSON-ready (inf becomes None)."""
        return {
            "time": self.time, "decision": self.kind, "mode": self.mode,
            "person_id": self.person_id, "name": self.name,
            "distance": self.distance if math.isfinite(self.distance) else None,
            "threshold": self.threshold, "frames_used": self.frames_used,
            "reason": self.reason, "track_id": self.track_id, "box": list(self.box),
        }


@dataclass(frozen=True)
class TrackStatus:
    """What the UI paints next to one face this frame."""

    track_id: int
    box: tuple[float, float, float, float]
    state: str          # looking | recognising | stranger | granted | denied | cooldown | verifying
                        # | turn_head (recognised, waiting for the photo check)
    text: str           # e.g. "recognising Ana 2/3"
    person_id: Hashable | None = None
    name: str | None = None
    distance: float = math.inf          # this frame's nearest distance


@dataclass
class _Vote:
    person: Hashable | None             # accepted person, None = stranger frame
    label: str | None                   # nearest entry's name (or id), for explanations
    distance: float
    score: float
    claimed: bool = False               # verify: the distance is to the claimed person


@dataclass
class _PhotoWait:
    """A face recognised (N of M) that has not yet moved like a head: what to say if it never does."""
    since: float
    label: str
    person: Hashable
    name: str | None
    distance: float
    threshold: float
    mode: str


@dataclass
class _TrackState:
    window: deque
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    stranger: list[_Vote] = field(default_factory=list)   # every stranger frame of the track
    settled: TrackStatus | None = None   # set once the track made (or skipped) its decision
    # Photo check: motion is measured only on frames recognised as the one person (`motion_of`),
    # so a stranger's face swapped in for a moment cannot lend a photo its movement.
    landmarks: np.ndarray | None = None  # this frame's
    motion_of: Hashable | None = None
    motion: MotionCheck = field(default_factory=MotionCheck)
    best_motion: float = 0.0             # the most that person's face has moved like a head
    photo_wait: _PhotoWait | None = None    # recognised, waiting for the photo check


@dataclass
class _Claim:
    person_id: Hashable
    name: str | None
    since: float
    track_id: int | None = None
    window: deque = field(default_factory=deque)
    misses: list[_Vote] = field(default_factory=list)
    threshold: float = math.nan         # the last threshold applied, for a timeout's record
    frames_seen: int = 0                # frames of any bound face, kept when a face leaves


class Decider:
    def __init__(
        self,
        threshold: float | None = None,
        confirm_frames: int = 3,
        window_frames: int = 5,
        stranger_frames: int = 5,
        cooldown_s: float = 10.0,
        mode: str = "identify",
        *,
        claim_timeout_s: float = 10.0,
        photo_check: bool = False,
        min_motion: float = DEFAULT_MIN_MOTION,
        photo_check_timeout_s: float = 8.0,
        tracker: IouTracker | None = None,
    ):
        """``threshold`` None = trust each MatchResult's own ``accepted``/``threshold``; a value
        re-judges each result's score against it (one threshold for the whole door)."""
        if threshold is not None and not (0.0 < threshold < 4.0):
            raise SettingsError("Setting 'threshold': must be a squared L2 distance between 0 and 4.")
        if not 1 <= window_frames <= 60:
            raise SettingsError("Setting 'window_frames': must be between 1 and 60.")
        if not 1 <= confirm_frames <= window_frames:
            raise SettingsError(f"Setting 'confirm_frames': must be between 1 and window_frames ({window_frames}).")
        if stranger_frames < 1:
            raise SettingsError("Setting 'stranger_frames': must be at least 1.")
        if cooldown_s < 0:
            raise SettingsError("Setting 'cooldown_s': must not be negative.")
        if mode not in MODES:
            raise SettingsError(f"Setting 'mode': must be one of {', '.join(MODES)}, not '{mode}'.")
        if not 0.0 < min_motion < 2.0:
            raise SettingsError("Setting 'photo_check_min_motion': must be between 0 and 2.")
        if not 1.0 <= photo_check_timeout_s <= 60.0:
            raise SettingsError("Setting 'photo_check_timeout_s': must be between 1 and 60 seconds.")
        self.photo_check = photo_check
        self.min_motion = min_motion
        self.photo_check_timeout_s = photo_check_timeout_s
        self.threshold = threshold
        self.confirm_frames = confirm_frames
        self.window_frames = window_frames
        self.stranger_frames = stranger_frames
        self.cooldown_s = cooldown_s
        self.mode = mode
        self.claim_timeout_s = claim_timeout_s
        self.tracker = tracker or IouTracker()
        self.statuses: list[TrackStatus] = []
        self._tracks: dict[int, _TrackState] = {}
        self._last_granted: dict[Hashable, float] = {}
        self._claim: _Claim | None = None

    @classmethod
    def from_settings(cls, settings, threshold: float | None = None, **kw) -> Decider:
        """From a ``Settings``; ``threshold`` overrides ``settings.threshold`` (pass the model's
        default when the setting is None)."""
        return cls(
            threshold=settings.threshold if threshold is None else threshold,
            confirm_frames=settings.confirm_frames, window_frames=settings.window_frames,
            stranger_frames=settings.stranger_frames, cooldown_s=settings.cooldown_s,
            mode=settings.mode, photo_check=settings.photo_check,
            min_motion=settings.photo_check_min_motion,
            photo_check_timeout_s=settings.photo_check_timeout_s, **kw)

    # -- verify mode -----------------------------------------------------------------------
    def claim(self, person_id: Hashable, t: float, name: str | None = None) -> None:
        """Start checking the face in front of the camera against ``person_id`` (verify mode).
        A new claim replaces an open one."""
        if self.mode != "verify":
            raise SettingsError("Setting 'mode': an employee id can only be checked in verify mode.")
        self._claim = _Claim(person_id, name, t, window=deque(maxlen=self.window_frames))

    @property
    def claimed_id(self) -> Hashable | None:
        """The open claim's person id (the frame loop verifies against it), or None."""
        return None if self._claim is None else self._claim.person_id

    # -- the frame loop --------------------------------------------------------------------
    def update(self, t: float, observations: Sequence[tuple[Sequence[float], MatchResult]],
               landmarks: Sequence[np.ndarray] | None = None) -> list[Decision]:
        """One processed frame at time ``t`` (seconds): every face's box and match, and its five
        landmarks (needed by the photo check)."""
        if self.photo_check and (landmarks is None or len(landmarks) != len(observations)):
            raise ValueError("the photo check needs the landmarks of every face")
        boxes = [tuple(float(v) for v in box) for box, _ in observations]
        track_ids = self.tracker.update(boxes)
        for tid in self.tracker.ended:
            self._tracks.pop(tid, None)
        decisions: list[Decision] = []
        self.statuses = []
        seen = []
        for k, (tid, box, (_, result)) in enumerate(zip(track_ids, boxes, observations, strict=True)):
            state = self._tracks.setdefault(tid, _TrackState(deque(maxlen=self.window_frames)))
            state.box = box
            state.landmarks = landmarks[k] if self.photo_check else None
            seen.append((tid, state, result))
        if self.mode == "identify":
            for tid, state, result in seen:
                decision = self._identify(t, tid, state, result)
                if decision:
                    decisions.append(decision)
        else:
            decision = self._verify(t, seen)
            if decision:
                decisions.append(decision)
        return decisions

    def reset(self) -> None:
        """Forget every track, claim and cool-down (e.g. after the camera changes)."""
        self.tracker.reset()
        self._tracks.clear()
        self._last_granted.clear()
        self._claim = None
        self.statuses = []

    # -- identify --------------------------------------------------------------------------
    def _accepts(self, result: MatchResult) -> bool:
        if self.threshold is None:
            return result.accepted
        return result.index is not None and result.score <= self.threshold

    def _threshold_of(self, result: MatchResult) -> float:
        return result.threshold if self.threshold is None else self.threshold

    def _identify(self, t: float, tid: int, state: _TrackState, result: MatchResult) -> Decision | None:
        accepted = self._accepts(result)
        label = None if result.index is None else result.label
        vote = _Vote(result.id if accepted else None, label, result.distance, result.score)
        state.window.append(vote)
        if accepted:
            self._measure_motion(t, state, vote.person)
        if state.settled is not None:
            self._show(state.settled, state.box, result.distance)
            return None
        threshold = self._threshold_of(result)
        if not accepted and state.photo_wait is not None:
            # Already recognised and asked to turn: a turned head may miss a frame or two, and
            # those are not a stranger's frames. The grant still needs N of M again.
            gate = self._photo_gate(t, tid, state, state.photo_wait)
            if gate is None:
                self._show(TrackStatus(tid, state.box, "recognising", f"recognising {state.photo_wait.label}",
                                       state.photo_wait.person, state.photo_wait.name), state.box, result.distance)
            return gate if isinstance(gate, Decision) else None
        if accepted:
            agree = [v for v in state.window if v.person == vote.person]
            if len(agree) < self.confirm_frames:
                self._show(TrackStatus(tid, state.box, "recognising",
                                       f"recognising {label} {len(agree)}/{self.confirm_frames}",
                                       vote.person, result.name), state.box, result.distance)
                return None
            last = self._last_granted.get(vote.person)
            if last is not None and t - last < self.cooldown_s:
                # Same visit (e.g. the face was lost for a moment and came back as a new track).
                state.settled = TrackStatus(tid, state.box, "cooldown",
                                            f"{label}: already let in {t - last:.0f} s ago",
                                            vote.person, result.name)
                self._show(state.settled, state.box, result.distance)
                return None
            distance = statistics.median(v.distance for v in agree)
            gate = self._photo_gate(t, tid, state, _PhotoWait(t, label, vote.person, result.name, distance,
                                                              threshold, "identify"))
            if gate is not None:
                return gate if isinstance(gate, Decision) else None
            self._last_granted[vote.person] = t
            score = statistics.median(v.score for v in agree)
            measure = (f"median distance {distance:.2f}" if result.rule != "margin"
                       else f"median score {score:.2f}, median distance {distance:.2f}")
            reason = (f"{label} recognised in {len(agree)} of the last {len(state.window)} frames "
                      f"({measure} ≤ threshold {threshold:.2f}){self._photo_note(state)}")
            state.settled = TrackStatus(tid, state.box, "granted", f"{label}: granted",
                                        vote.person, result.name)
            self._show(state.settled, state.box, result.distance)
            return Decision(t, GRANTED, vote.person, result.name, distance, threshold,
                            len(agree), reason, tid, state.box)
        state.stranger.append(vote)
        if len(state.stranger) < self.stranger_frames:
            self._show(TrackStatus(tid, state.box, "stranger",
                                   f"unknown {len(state.stranger)}/{self.stranger_frames}"),
                       state.box, result.distance)
            return None
        frames = state.stranger[-self.stranger_frames:]
        nearest = [v for v in frames if v.label is not None]
        if nearest:
            distance = statistics.median(v.distance for v in nearest)
            who = statistics.mode(v.label for v in nearest)
            reason = (f"stranger: no one within threshold {threshold:.2f} in {len(frames)} frames "
                      f"(nearest {who}, median distance {distance:.2f})")
        else:
            distance = math.inf
            reason = f"stranger: the gallery is empty ({len(frames)} frames)"
        state.settled = TrackStatus(tid, state.box, "denied", "stranger: denied")
        self._show(state.settled, state.box, result.distance)
        return Decision(t, DENIED, None, None, distance, threshold, len(frames), reason, tid, state.box)

    # -- verify ----------------------------------------------------------------------------
    def _verify(self, t: float, seen: list[tuple[int, _TrackState, MatchResult]]) -> Decision | None:
        claim = self._claim
        if claim is None:
            for tid, state, result in seen:
                self._show(TrackStatus(tid, state.box, "looking", "waiting for an employee id"),
                           state.box, result.distance)
            return None
        label = claim.name or str(claim.person_id)
        if claim.track_id is not None and claim.track_id not in self.tracker.tracks:
            claim.track_id = None                     # that face left; take the next one
            claim.window.clear()
            claim.misses.clear()
        if claim.track_id is None and seen:
            # The claimant is the face nearest the camera, i.e. the largest box.
            claim.track_id = max(seen, key=lambda s: _area(s[1].box))[0]
        decision = None
        for tid, state, result in seen:
            if tid != claim.track_id:
                self._show(TrackStatus(tid, state.box, "looking", "looking"), state.box, result.distance)
                continue
            threshold = claim.threshold = self._threshold_of(result)
            is_claimed = result.index is not None and result.id == claim.person_id
            vote = _Vote(claim.person_id if is_claimed and result.distance <= threshold else None,
                         None if result.index is None else result.label, result.distance,
                         result.score, claimed=is_claimed)
            claim.window.append(vote)
            claim.frames_seen += 1
            if vote.person is not None:
                self._measure_motion(t, state, vote.person)
            hits = [v for v in claim.window if v.person is not None]
            if vote.person is None and state.photo_wait is None:   # (a turning head may miss)
                claim.misses.append(vote)
            gate = None
            if len(hits) >= self.confirm_frames:
                distance = statistics.median(v.distance for v in hits)
                gate = self._photo_gate(t, tid, state, _PhotoWait(t, label, claim.person_id, claim.name,
                                                                  distance, threshold, "verify"))
            elif state.photo_wait is not None:
                gate = self._photo_gate(t, tid, state, state.photo_wait)
            if gate is not None:     # waiting for the photo check, or it failed: already shown
                decision = gate if isinstance(gate, Decision) else decision
                continue
            if len(hits) >= self.confirm_frames:
                reason = (f"{label} verified in {len(hits)} of the last {len(claim.window)} frames "
                          f"(median distance {distance:.2f} ≤ threshold {threshold:.2f}){self._photo_note(state)}")
                decision = Decision(t, GRANTED, claim.person_id, claim.name or result.name, distance,
                                    threshold, len(hits), reason, tid, state.box, mode="verify")
                self._last_granted[claim.person_id] = t
            elif len(claim.misses) >= self.stranger_frames:
                decision = self._verify_denied(t, claim, label, threshold, tid, state.box)
            else:
                self._show(TrackStatus(tid, state.box, "verifying",
                                       f"checking {label} {len(hits)}/{self.confirm_frames}",
                                       claim.person_id, claim.name), state.box, result.distance)
                continue
            kind = "granted" if decision.kind == GRANTED else "denied"
            self._show(TrackStatus(tid, state.box, kind, f"{label}: {kind}", claim.person_id, claim.name),
                       state.box, result.distance)
        if decision is None and t - claim.since > self.claim_timeout_s:
            own = [v.distance for v in claim.misses if v.claimed]
            distance = statistics.median(own) if own else math.inf
            bound = self._tracks.get(claim.track_id)
            if not claim.frames_seen:
                reason = f"no face seen within {self.claim_timeout_s:.0f} s of the claim for {label}"
            elif bound is not None and bound.photo_wait is not None:
                reason = f"{label} matched, but {self._no_head_movement(bound, self.claim_timeout_s, 'of the claim')}"
            elif own:
                reason = (f"no face matched {label} within {self.claim_timeout_s:.0f} s of the claim "
                          f"(median distance {distance:.2f} > threshold {claim.threshold:.2f})")
            else:
                reason = f"no face matched {label} within {self.claim_timeout_s:.0f} s of the claim"
            box = self._tracks[claim.track_id].box if claim.track_id in self._tracks else (0.0,) * 4
            decision = Decision(t, DENIED, claim.person_id, claim.name, distance, claim.threshold,
                                len(claim.window), reason,
                                -1 if claim.track_id is None else claim.track_id, box, mode="verify")
        if decision is not None:
            self._claim = None
        return decision

    def _verify_denied(self, t: float, claim: _Claim, label: str, threshold: float,
                       tid: int, box: tuple) -> Decision:
        misses = claim.misses[-self.stranger_frames:]
        own = [v.distance for v in misses if v.claimed]
        others = [v.label for v in misses if v.label is not None and not v.claimed]
        if own:
            distance = statistics.median(own)
            reason = (f"not {label}: distance {distance:.2f} > threshold {threshold:.2f} "
                      f"in {len(misses)} frames")
        elif others:
            distance = math.inf
            reason = f"not {label}: the face looks nearer to {statistics.mode(others)} ({len(misses)} frames)"
        else:
            distance = math.inf
            reason = f"not {label}: the face matches no one ({len(misses)} frames)"
        return Decision(t, DENIED, claim.person_id, claim.name, distance, threshold, len(misses),
                        reason, tid, box, mode="verify")

    # -- photo check -----------------------------------------------------------------------
    def _measure_motion(self, t: float, state: _TrackState, person: Hashable) -> None:
        """A frame recognised as `person`: add its landmarks to that person's motion record."""
        if not self.photo_check:
            return
        if state.motion_of != person:
            state.motion_of, state.motion, state.best_motion = person, MotionCheck(), 0.0
        state.motion.add(t, state.landmarks)
        state.best_motion = max(state.best_motion, state.motion.motion())

    def _photo_gate(self, t: float, tid: int, state: _TrackState, recognised: _PhotoWait
                    ) -> TrackStatus | Decision | None:
        """None: the photo check is off or passed. A TrackStatus: recognised, still waiting for
        the face to move (shown, no decision yet). A Decision: waited too long, DENIED."""
        if not self.photo_check or state.best_motion >= self.min_motion:
            return None
        if state.photo_wait is None:
            state.photo_wait = recognised
        w = state.photo_wait
        if t - w.since < self.photo_check_timeout_s:
            status = TrackStatus(tid, state.box, "turn_head", f"{w.label}: turn your head a little",
                                 w.person, w.name)
            self._show(status, state.box, w.distance)
            return status
        reason = (f"{w.label} recognised (median distance {w.distance:.2f} ≤ threshold {w.threshold:.2f}), "
                  f"but {self._no_head_movement(state, self.photo_check_timeout_s)}")
        state.settled = TrackStatus(tid, state.box, "denied", f"{w.label}: photo check failed", w.person, w.name)
        self._show(state.settled, state.box, w.distance)
        return Decision(t, DENIED, w.person, w.name, w.distance, w.threshold, len(state.window), reason, tid,
                        state.box, mode=w.mode)

    def _no_head_movement(self, state: _TrackState, seconds: float, since: str = "") -> str:
        within = f"within {seconds:.0f} s {since}".rstrip()
        return (f"{within} the face did not move like a real head (photo check: motion "
                f"{state.best_motion:.2f} < {self.min_motion:.2f}); a photo or a screen?")

    def _photo_note(self, state: _TrackState) -> str:
        if not self.photo_check:
            return ""
        return f"; photo check: motion {state.best_motion:.2f} ≥ {self.min_motion:.2f}"

    def _show(self, status: TrackStatus, box: tuple, distance: float) -> None:
        self.statuses.append(TrackStatus(status.track_id, box, status.state, status.text,
                                         status.person_id, status.name, distance))


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
