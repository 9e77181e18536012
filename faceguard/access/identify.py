"""Identify mode: who of the enrolled people is this face, decided per tracked face.

GRANTED for a person once they are the accepted match in at least N of the face's last M
frames (and, with the photo check on, the face moved like a head); DENIED once the face has
shown K frames of a stranger. One decision per face; the cool-down belongs to the PERSON (one
visit, one event): a second track of someone let in within ``cooldown_s`` makes no new event.
Strangers get the same courtesy: a stranger who stays in view (their track lost and found
again) is DENIED once per visit, recognised by their own embedding, not once every few seconds.
Every visit that is denied counts (stranger_throttle.py): a stranger's by their embedding, a face
matched to X in the grey zone against X (attempts.py); repeated visits mean a wait, shown.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Hashable
from dataclasses import replace

import numpy as np

from faceguard.access.photo_gate import TOO_SLOW, PhotoGate
from faceguard.access.records import DENIED, GRANTED, PIN, Decision, TrackState, TrackStatus
from faceguard.access.second_factor import Asked, SecondFactor, Visit, judge_visit, zone_fields
from faceguard.access.stranger_throttle import (
    SAME_STRANGER_DISTANCE,
    StrangerThrottle,
    held_text,
    standing_note,
)
from faceguard.access.track_state import FaceTrack, PhotoWait, StatusBoard, Vote
from faceguard.gallery.match import MatchResult
from faceguard.gallery.recognise import STRANGER, VisitZones, fuse

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
        # Recently denied strangers, by embedding: their visits counted (stranger_throttle.py),
        # with the same window, wait and suspension as people's (settings photo_retry_wait_s,
        # face_suspend_s).
        people = photo.attempts
        self.strangers = StrangerThrottle(people.window_s, people.wait_s, people.suspend_s)

    def reset(self) -> None:
        self.last_granted.clear()
        self.strangers.reset()
        self.factor.reset()

    def step(self, t: float, tid: int, track: FaceTrack, result: MatchResult, vote: Vote,
             threshold: float) -> Decision | None:
        track.window.append(vote)
        track.frames.append((vote.person, track.embedding))
        if vote.person is not None:
            self.photo.measure(track, t, vote.person)
        if vote.person is None:
            self.strangers.sighted(t, track.embedding, self._same_face(threshold))
        if track.settled is None and self._held(t, tid, track, result, vote, threshold):
            return None
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
        if visit is not None and visit.denied and self._person_waits(t, tid, track, result, vote.person, label):
            return None
        if visit is not None and visit.denied:
            return self._counted(t, self._zone_denied(t, tid, track, result, visit, len(agree), distance, threshold),
                                 visit, threshold)
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
        standing = self.strangers.denied(t, self._stranger_face(track), self._same_face(threshold))
        if standing is None:
            return None          # the same stranger, still in view: one visit, one event
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
        reason += standing_note(standing, self.strangers.attempts, "denied visit of this face")
        return Decision(t, DENIED, None, None, distance, threshold, len(frames), reason, tid, track.box,
                        attempts=standing.to_dict(t))

    # -- repeated visits (stranger_throttle.py, attempts.py) ----------------------------------
    def _same_face(self, threshold: float) -> float:
        """How near two embeddings are one stranger: the normal threshold (the door's own), at
        most SAME_STRANGER_DISTANCE."""
        return min(SAME_STRANGER_DISTANCE, self.zones.normal if self.zones is not None else threshold)

    @staticmethod
    def _stranger_face(track: FaceTrack) -> np.ndarray | None:
        """A denied stranger's visit embedding: the mean of its stranger frames' embeddings."""
        embs = [e for p, e in track.frames if p is None and e is not None]
        return fuse(embs) if embs else track.embedding

    def _person_waits(self, t: float, tid: int, track: FaceTrack, result: MatchResult, person: Hashable,
                      label: str) -> bool:
        """A face matched to ``person`` whose denied visits (or failed photo checks) put them on
        a wait: shown, not judged again until it ends."""
        standing = self.photo.attempts.standing(person, t)
        if standing.state != "wait":
            return False
        self.board.say(tid, track.box, TrackState.TURN_HEAD, f"{label}: {held_text(standing, t)}",
                       result.distance, person, None if label == UNNAMED else result.name)
        return True

    def _counted(self, t: float, decision: Decision, visit: Visit, threshold: float) -> Decision:
        """A visit the face zone denied, counted: against the person it matched (grey zone,
        attempts.py), or by its embedding (a stranger's zone, stranger_throttle.py)."""
        if decision.person_id is None:
            standing = self.strangers.denied(t, visit.fused, self._same_face(threshold))
            if standing is None:          # the same visit as the last one counted
                return decision
            note = standing_note(standing, self.strangers.attempts, "denied visit of this face")
        else:
            standing = self.photo.attempts.standing(decision.person_id, t)
            if standing.state == "suspended":
                note = (f"; face entry for this match stays suspended for {(standing.until - t) / 60:.0f} "
                        "more min after repeated failed visits")
            else:
                standing = self.photo.attempts.failed(decision.person_id, t)
                note = standing_note(standing, self.photo.attempts, "failed visit matched to this person",
                                     "face entry for that person is suspended (a second factor or the manager)")
        return replace(decision, reason=decision.reason + note, attempts=standing.to_dict(t))

    def _held(self, t: float, tid: int, track: FaceTrack, result: MatchResult, vote: Vote,
              threshold: float) -> bool:
        """A face that must wait before it is checked again: a stranger after repeated denied
        visits (when nearer to that stranger than to whoever it matches). Shown, not decided."""
        matched = result.distance if vote.person is not None else math.inf
        standing = self.strangers.held(t, track.embedding, self._same_face(threshold), matched, tid)
        if standing is not None:
            self.board.say(tid, track.box, TrackState.STRANGER, f"unknown: {held_text(standing, t)}",
                           result.distance)
            return True
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
