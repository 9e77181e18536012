"""The second factor (issue 21): a face that needs a PIN waits here until the PIN is typed.

docs/decision-rule.md, "order of checks" step 3. The identify rule ``ask``s for a track whose
visit needs a factor (grey zone, auth mode face+pin, a door that requires it); the door (window
keypad, headless stdin) ``answer``s with what was typed. The PIN is checked against the matched
person's hash ONLY (the PIN confirms the face; it never picks a person). With the setting on, a
badge reader that types the person's employee id + Enter counts instead of the PIN.

Wrong PINs back off per PERSON, not per track (a stranger cannot reset the count by stepping
out and back in): every ``MAX_WRONG`` wrong PINs in a row lock that person's keypad for
``FIRST_WAIT_S``, doubling each time; the right PIN clears the count. Times are the frames'
timestamps, so the answer does not depend on how fast the PC is. What was typed is never kept
or put into a reason. With a ``store`` (the gallery, gallery/pin_backoff.py) the count and the
lock outlive a restart of the door: read once per person, written at each change, in wall-clock
seconds (converted at the boundary, as access/attempts.py does for a suspension).
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from faceguard.access.records import DENIED, GRANTED, Decision, Verdict
from faceguard.gallery.recognise import GREY, STRANGER, VisitZones, fuse

MAX_WRONG = 3
FIRST_WAIT_S = 60.0
PIN_TIMEOUT_S = 30.0      # asked and nothing typed for this long: DENIED


def _same_id(a: str, b: str) -> bool:
    """Employee ids compare as NFKC + casefold (docs/decision-rule.md)."""
    def norm(x: str) -> str:
        return unicodedata.normalize("NFKC", x).strip().casefold()
    return norm(a) == norm(b)


class BackoffStore(Protocol):
    """Where a person's wrong-PIN back-off outlives the process: (wrong PINs in a row, lock-outs
    so far, locked until in wall-clock seconds or None)."""

    def load(self, person: str) -> tuple[int, int, float | None]: ...

    def save(self, person: str, wrong: int, lockouts: int, locked_until: float | None) -> None: ...


@dataclass(frozen=True)
class Visit:
    """The face zone of a visit matched to one person (docs/decision-rule.md)."""

    zone: str
    score: float
    fused: np.ndarray
    needs: str | None        # why a second factor is needed, None = not needed
    denied: str | None       # why the zone alone denies, None = it does not


def judge_visit(zones: VisitZones | None, require_pin: bool, person: Hashable | None,
                frames: list[tuple[Hashable | None, np.ndarray | None]]) -> Visit | None:
    """The zone of a visit from its recent (person, embedding) frames: those recognised as
    ``person`` are fused and scored, then docs/decision-rule.md step 3 says whether a second
    factor is needed or the zone alone denies. None without zones (or frames)."""
    if zones is None or person is None:
        return None
    embs = [e for p, e in frames if p == person and e is not None]
    if not embs:
        return None
    fused = fuse(embs)
    zone, score = zones.zone(person, fused)
    mode = zones.mode(person)
    if zone == STRANGER:
        return Visit(zone, score, fused, None, f"the visit's face (score {score:.3f}) is not within "
                                               f"the normal threshold {zones.normal:.3f}")
    needs = ("this door asks everyone for a PIN" if require_pin else
             "the person's auth mode is face and PIN" if mode == "face+pin" else
             f"the face is in the grey zone (score {score:.3f} > strict {zones.strict:.3f})"
             if zone == GREY and mode != "face" else None)
    denied = None
    if zone == GREY and needs is None:
        denied = (f"the face is in the grey zone (score {score:.3f} > strict {zones.strict:.3f}) "
                  "and its auth mode is face only: a doubtful face is denied")
    return Visit(zone, score, fused, needs, denied)


def zone_fields(zones: VisitZones | None, visit: Visit | None) -> dict:
    """The Decision fields that carry a visit's zone (none without zones)."""
    if visit is None or zones is None:
        return {}
    return {"zone": visit.zone, "zone_score": round(visit.score, 4), "strict": zones.strict,
            "normal": zones.normal}


@dataclass
class Asked:
    """A face waiting for its second factor: the PIN request and the visit's fused embedding
    (a learned template, once confirmed)."""

    request: Decision
    fused: np.ndarray | None


class SecondFactor:
    def __init__(self, badge_accepted: bool = False, timeout_s: float = PIN_TIMEOUT_S,
                 max_wrong: int = MAX_WRONG, first_wait_s: float = FIRST_WAIT_S,
                 store: BackoffStore | None = None, wall: Callable[[], float] = time.time):
        self.badge_accepted = badge_accepted
        self.store = store
        self.wall = wall
        self._loaded: set[Hashable] = set()
        self.timeout_s = timeout_s
        self.max_wrong = max_wrong
        self.first_wait_s = first_wait_s
        self.asked: dict[int, Asked] = {}
        self._wrong: dict[Hashable, int] = {}
        self._lockouts: dict[Hashable, int] = {}
        self._locked_until: dict[Hashable, float] = {}

    def reset(self) -> None:
        """Forget the open requests (the back-off counts stay: they belong to people)."""
        self.asked.clear()

    def ask(self, request: Decision, fused: np.ndarray | None = None) -> None:
        self.asked[request.track_id] = Asked(request, fused)

    def waiting(self) -> list[int]:
        """Track ids waiting for a factor, oldest request first."""
        return sorted(self.asked, key=lambda tid: self.asked[tid].request.time)

    def locked_for(self, person: Hashable, t: float) -> float:
        """Seconds this person's keypad stays locked after too many wrong PINs (0: open)."""
        self._load(person, t)
        return max(0.0, self._locked_until.get(person, -math.inf) - t)

    def _load(self, person: Hashable, t: float) -> None:
        """The person's back-off from the store, once (a restarted door goes on where it was)."""
        if self.store is None or person is None or person in self._loaded:
            return
        self._loaded.add(person)
        wrong, lockouts, until = self.store.load(str(person))
        if wrong:
            self._wrong[person] = wrong
        if lockouts:
            self._lockouts[person] = lockouts
        if until is not None and until > self.wall():
            self._locked_until[person] = t + (until - self.wall())   # wall clock → frame time

    def _save(self, person: Hashable, t: float) -> None:
        if self.store is None or person is None:
            return
        locked = self._locked_until.get(person)
        self.store.save(str(person), self._wrong.get(person, 0), self._lockouts.get(person, 0),
                        None if locked is None or locked <= t else self.wall() + (locked - t))

    def answer(self, track_id: int, typed: str | None, t: float,
               check: Callable[[Hashable, str], bool]) -> tuple[Decision, Asked] | None:
        """The final decision for a face waiting on ``track_id`` (None: no such request).
        ``typed`` None or "" = nothing typed; ``check(person, pin)`` asks the gallery."""
        asked = self.asked.pop(track_id, None)
        if asked is None:
            return None
        req = asked.request
        person = req.person_id
        locked = self.locked_for(person, t)
        typed = (typed or "").strip()
        if locked > 0:
            return self._final(req, t, DENIED, None, f"too many wrong PINs for this face: the keypad is "
                                                     f"locked for {locked:.0f} s more"), asked
        if not typed:
            return self._final(req, t, DENIED, "pin", "no PIN given"), asked
        if self.badge_accepted and person is not None and _same_id(typed, str(person)):
            return self._final(req, t, GRANTED, "badge", "confirmed by the badge"), asked
        if person is not None and check(person, typed):
            had = self._wrong.pop(person, None), self._lockouts.pop(person, None)
            if any(had):
                self._save(person, t)
            return self._final(req, t, GRANTED, "pin", "confirmed by the PIN"), asked
        wrong = self._wrong.get(person, 0) + 1
        reason = f"wrong PIN ({wrong} of {self.max_wrong} before the keypad locks)"
        if wrong >= self.max_wrong:
            n = self._lockouts.get(person, 0) + 1
            self._lockouts[person] = n
            wait = self.first_wait_s * 2 ** (n - 1)
            self._locked_until[person] = t + wait
            wrong = 0
            reason = f"wrong PIN; {self.max_wrong} wrong in a row: the keypad locks for {wait:.0f} s"
        self._wrong[person] = wrong
        self._save(person, t)
        return self._final(req, t, DENIED, "pin", reason), asked

    def expire(self, t: float) -> list[tuple[Decision, Asked]]:
        """Requests nobody answered within ``timeout_s``: DENIED, "no PIN given"."""
        late = [tid for tid, a in self.asked.items() if t - a.request.time >= self.timeout_s]
        out = []
        for tid in late:
            asked = self.asked.pop(tid)
            out.append((self._final(asked.request, t, DENIED, "pin",
                                    f"no PIN given within {self.timeout_s:.0f} s"), asked))
        return out

    @staticmethod
    def _final(req: Decision, t: float, kind: Verdict, factor: str | None, why: str) -> Decision:
        zone = "" if req.zone is None else f"face in zone {req.zone} (score {req.zone_score:.3f}); "
        who = f"{req.name or req.person_id}: " if kind == GRANTED else ""   # named only when let in
        return replace(req, time=t, kind=kind, factor=factor or "pin", reason=f"{who}{zone}{why}")
