"""Identify mode: who of the enrolled people is this face, decided per tracked face.

GRANTED for a person once they are the accepted match in at least N of the face's last M
frames (and, with the photo check on, the face moved like a head); DENIED once the face has
shown K frames of a stranger. One decision per face; the cool-down belongs to the PERSON (one
visit, one event): a second track of someone let in within ``cooldown_s`` makes no new event.
Strangers get the same courtesy: a stranger who stays in view (their track lost and found
again) is DENIED once per visit, recognised by their own embedding, not once every few seconds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Hashable

import numpy as np

from faceguard.access.photo_gate import TOO_SLOW, PhotoGate
from faceguard.access.records import DENIED, GRANTED, PIN, Decision, TrackState, TrackStatus
from faceguard.access.second_factor import Asked, SecondFactor, Visit, judge_visit, zone_fields
from faceguard.access.track_state import FaceTrack, PhotoWait, StatusBoard, Vote
from faceguard.gallery.match import MatchResult
from faceguard.gallery.recognise import STRANGER, VisitZones

# A stranger seen again is the same stranger when their embeddings lie this close: one
# person's photos lie 0.04-0.08 apart (dev-set staff, gallery vs probe), the same face in a
# video closer still; two different strangers can be as near as 0.16. Erring towards "a new
# stranger" only costs one more DENIED row.
SAME_STRANGER_DISTANCE = 0.12
# What the window and the reasons call a face before its visit is let in, when the visit may
# need a second factor: never the matched name (a stranger must not learn whom they resemble).
UNNAMED = "face"



class IdentifyRule:
    def __init__(self, confirm_frames: int, stranger_frames: int, cooldown_s: float,
                 photo: PhotoGate, board: StatusBoard):
        self.confirm_frames = confirm_frames
        self.stranger_frames = stranger_frames
        self.cooldown_s = cooldown_s
        self.photo = photo
        self.board = board
        self.last_granted: dict[Hashable, float] = {}
        # The face zones and the second factor (issue 21); without zones the rule is as before.
        self.zones: VisitZones | None = None
        self.require_pin = False           # the door asks everyone for a PIN (a server room)
        self.factor = SecondFactor()
        # Recently denied strangers: [embedding, last seen]. Refreshed while they stay in view.
        self._strangers: list[list] = []

    def reset(self) -> None:
        self.last_granted.clear()
        self._strangers.clear()
        self.factor.reset()

    def step(self, t: float, tid: int, track: FaceTrack, result: MatchResult, vote: Vote,
             threshold: float) -> Decision | None:
        track.window.append(vote)
        track.frames.append((vote.person, track.embedding))
        if vote.person is not None:
            self.photo.measure(track, t, vote.person)
        if track.settled is not None:
            self._show_settled(t, track.settled, track, vote, result.distance)
            return None
        wait = track.photo.wait
        if vote.person is None and wait is not None:
            # Already recognised and asked to turn: a turned head may miss a frame or two, and
            # those are not a stranger's frames. The grant still needs N of M again.
            gate = self.photo.check(t, tid, track, wait)
            if gate is None:
                self.board.say(tid, track.box, TrackState.RECOGNISING, f"recognising {wait.label}",
                               result.distance, wait.person, wait.name)
            return gate if isinstance(gate, Decision) else None
        if vote.person is not None:
            return self._recognised(t, tid, track, result, vote, threshold)
        return self._stranger(t, tid, track, result, threshold)

    def _show_settled(self, t: float, settled: TrackStatus, track: FaceTrack, vote: Vote,
                      distance: float) -> None:
        """A decided face: show its decision only while this frame supports it (the same person,
        or still a stranger), never a name the face in front of the camera is not."""
        if vote.person == settled.person_id:
            if settled.state == TrackState.DENIED and settled.person_id is None:
                self._seen_stranger(t, track.embedding)
            self.board.show(settled, track.box, distance)
        else:
            self.board.say(settled.track_id, track.box, TrackState.LOOKING, "checking…", distance)

    def _recognised(self, t: float, tid: int, track: FaceTrack, result: MatchResult, vote: Vote,
                    threshold: float) -> Decision | None:
        label = vote.label or str(vote.person)
        if self.unnamed(vote.person, result.distance):
            label = UNNAMED
        agree = [v for v in track.window if v.person == vote.person]
        if len(agree) < self.confirm_frames:
            self.board.say(tid, track.box, TrackState.RECOGNISING,
                           f"recognising {label} {len(agree)}/{self.confirm_frames}",
                           result.distance, vote.person, None if label == UNNAMED else result.name)
            return None
        last = self.last_granted.get(vote.person)
        if last is not None and t - last < self.cooldown_s:
            # Same visit (e.g. the face was lost for a moment and came back as a new track).
            track.settled = TrackStatus(tid, track.box, TrackState.COOLDOWN,
                                        f"{label}: already let in {t - last:.0f} s ago",
                                        vote.person, result.name)
            self.board.show(track.settled, track.box, result.distance)
            return None
        distance = statistics.median(v.distance for v in agree)
        visit = self._visit(track, vote.person)
        if visit is not None and visit.denied:
            return self._zone_denied(t, tid, track, result, visit, len(agree), distance, threshold)
        if visit is not None and visit.needs:
            label = UNNAMED
        gate = self.photo.check(t, tid, track, PhotoWait(t, label, vote.person, result.name, distance,
                                                         threshold, "identify"))
        if isinstance(gate, Decision) and (instead := self._factor_instead(gate, vote.person)):
            return self._ask(t, tid, track, result, visit, instead, len(agree), distance, threshold)
        if gate is not None:
            return gate if isinstance(gate, Decision) else None
        if visit is not None and visit.needs:
            return self._ask(t, tid, track, result, visit, visit.needs, len(agree), distance, threshold)
        self.last_granted[vote.person] = t
        score = statistics.median(v.score for v in agree)
        measure = (f"median distance {distance:.2f}" if result.rule != "margin"
                   else f"median score {score:.2f}, median distance {distance:.2f}")
        reason = (f"{label} recognised in {len(agree)} of the last {len(track.window)} frames "
                  f"({measure} ≤ threshold {threshold:.2f}){self.photo.note(track)}")
        track.settled = TrackStatus(tid, track.box, TrackState.GRANTED, f"{label}: granted",
                                    vote.person, result.name)
        self.board.show(track.settled, track.box, result.distance)
        return Decision(t, GRANTED, vote.person, result.name, distance, threshold, len(agree), reason,
                        tid, track.box, **self.photo.evidence(track), **self._zone_fields(visit))

    def _stranger(self, t: float, tid: int, track: FaceTrack, result: MatchResult,
                  threshold: float) -> Decision | None:
        track.stranger.append(Vote(None, None if result.index is None else result.label,
                                   result.distance, result.score))
        if len(track.stranger) < self.stranger_frames:
            self.board.say(tid, track.box, TrackState.STRANGER,
                           f"unknown {len(track.stranger)}/{self.stranger_frames}", result.distance)
            return None
        track.settled = TrackStatus(tid, track.box, TrackState.DENIED, "stranger: denied")
        self.board.show(track.settled, track.box, result.distance)
        if self._seen_stranger(t, track.embedding):
            return None          # the same stranger, still (or again) in view: one visit, one event
        frames = track.stranger[-self.stranger_frames:]
        nearest = [v for v in frames if v.label is not None]
        if nearest:
            distance = statistics.median(v.distance for v in nearest)
            # With the face zones on, the reason names no one: a stranger must not learn whom
            # they resemble (the access log keeps the distance).
            who = "" if self.zones is not None else f"nearest {statistics.mode(v.label for v in nearest)}, "
            reason = (f"stranger: no one within threshold {threshold:.2f} in {len(frames)} frames "
                      f"({who}median distance {distance:.2f})")
        else:
            distance = math.inf
            reason = f"stranger: the gallery is empty ({len(frames)} frames)"
        return Decision(t, DENIED, None, None, distance, threshold, len(frames), reason, tid, track.box)

    def _seen_stranger(self, t: float, embedding: np.ndarray | None) -> bool:
        """Whether this stranger was denied within the cool-down (then refresh their time);
        otherwise remember them. Without embeddings every stranger track is a new visit."""
        self._strangers = [s for s in self._strangers if t - s[1] < self.cooldown_s]
        if embedding is None:
            return False
        for entry in self._strangers:
            if float(np.sum((entry[0] - embedding) ** 2)) <= SAME_STRANGER_DISTANCE:
                entry[1] = t
                return True
        self._strangers.append([np.array(embedding, np.float32), t])
        return False

    # -- the face zone and the second factor (issue 21) -------------------------------------
    def unnamed(self, person: Hashable | None, distance: float) -> bool:
        """Whether a face recognised as ``person`` must not be named yet: its frame is not
        within the strict zone, or a PIN will be asked whatever the zone."""
        if self.zones is None or person is None:
            return False
        return (distance > self.zones.strict or self.require_pin
                or self.zones.mode(person) == "face+pin")

    def _factor_instead(self, gate: Decision, person: Hashable) -> str | None:
        """Why the photo gate's denial becomes a PIN request (docs/decision-rule.md, step 2):
        the person's face entry is suspended after repeated failures, or this PC is too slow
        for the check right now. Never the "attack suspected" decision itself (it is logged and
        sent as such), and never for a person whose auth mode is face only."""
        if self.zones is None or gate.attack_suspected or self.zones.mode(person) == "face":
            return None
        if (gate.attempts or {}).get("state") == "suspended":
            return "face entry is suspended after repeated failed photo checks"
        return TOO_SLOW if TOO_SLOW in gate.reason else None

    def _visit(self, track: FaceTrack, person: Hashable | None) -> Visit | None:
        """The zone of this visit: its deciding frames (those of the window recognised as
        ``person``) fused and scored; None without zones."""
        return judge_visit(self.zones, self.require_pin, person, list(track.frames)[-len(track.window):])

    def _zone_fields(self, visit: Visit | None) -> dict:
        return zone_fields(self.zones, visit)

    def _zone_denied(self, t: float, tid: int, track: FaceTrack, result: MatchResult, visit: Visit,
                     frames: int, distance: float, threshold: float) -> Decision:
        stranger = visit.zone == STRANGER
        person = None if stranger else result.id
        track.settled = TrackStatus(tid, track.box, TrackState.DENIED, "denied", result.id)
        self.board.show(track.settled, track.box, result.distance)
        return Decision(t, DENIED, person, None if stranger else result.name, distance, threshold, frames,
                        f"denied: {visit.denied}", tid, track.box, **self._zone_fields(visit))

    def _ask(self, t: float, tid: int, track: FaceTrack, result: MatchResult, visit: Visit | None, needs: str,
             frames: int, distance: float, threshold: float) -> Decision:
        """The visit needs a second factor (``needs`` says why; ``visit`` None when the zones are
        off, e.g. the photo gate's NEEDS_FACTOR): a PIN request, and the face shown unnamed."""
        track.settled = TrackStatus(tid, track.box, TrackState.PIN, "enter your PIN", result.id)
        self.board.show(track.settled, track.box, result.distance)
        request = Decision(t, PIN, result.id, result.name, distance, threshold, frames,
                           f"a second factor is needed: {needs}{self.photo.note(track)}", tid,
                           track.box, **self.photo.evidence(track), **self._zone_fields(visit))
        self.factor.ask(request, None if visit is None else visit.fused)
        return request

    def answer(self, track_id: int, typed: str | None, t: float, check: Callable[[Hashable, str], bool],
               track: FaceTrack | None) -> tuple[Decision, Asked] | None:
        """What was typed for the face waiting on ``track_id``: its final decision (None: no face
        waits there). ``track`` (still in view, or None) shows the outcome."""
        answered = self.factor.answer(track_id, typed, t, check)
        if answered is not None:
            self._settle(answered[0], track)
        return answered

    def expire(self, t: float, tracks: dict[int, FaceTrack]) -> list[Decision]:
        """Faces asked for a PIN that nobody typed in time: DENIED."""
        out = []
        for decision, _ in self.factor.expire(t):
            self._settle(decision, tracks.get(decision.track_id))
            out.append(decision)
        return out

    def _settle(self, decision: Decision, track: FaceTrack | None) -> None:
        granted = decision.kind == GRANTED
        if granted:
            self.last_granted[decision.person_id] = decision.time
        if track is not None and track.settled is not None and track.settled.state == TrackState.PIN:
            label = decision.name or str(decision.person_id)
            track.settled = TrackStatus(decision.track_id, track.box,
                                        TrackState.GRANTED if granted else TrackState.DENIED,
                                        f"{label}: granted" if granted else "denied", decision.person_id,
                                        decision.name if granted else None)
