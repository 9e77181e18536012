"""Failed photo checks are counted per PERSON, not per track: losing the face for a moment (a
new track) or stepping out and back in does not give an attacker a fresh start.

For the person a face was matched to, within ``window_s`` (5 minutes):
* the 1st failure costs nothing more than the failed visit;
* the 2nd means a wait (``wait_s``) before the face is checked again (shown at the door);
* the 3rd suspends face entry for ``suspend_s`` (15 minutes): the Decision says "attack
  suspected", and until it ends (or the manager resumes face entry, see gallery/suspension.py)
  the person gets in only with a second factor.
The suspension is written through ``store`` (the gallery) so that a restart does not lift it;
the counts themselves live in memory. Times are the door's frame times (seconds); the store
keeps wall-clock times, converted at the boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

DEFAULT_WINDOW_S = 300.0
DEFAULT_WAIT_S = 30.0
DEFAULT_SUSPEND_S = 900.0


class SuspensionStore(Protocol):
    """Where suspensions outlive the process (the gallery). Wall-clock seconds."""

    def suspended_until(self, person: str) -> float | None: ...

    def suspend(self, person: str, until: float) -> None: ...


@dataclass(frozen=True)
class Standing:
    """Whether a person's face may be checked now: ``ok``, ``wait`` or ``suspended`` (until)."""

    state: str
    until: float = 0.0
    failures: int = 0

    def to_dict(self, now: float) -> dict:
        out: dict = {"state": self.state, "failures": self.failures}
        if self.state != "ok":
            out["seconds_left"] = round(max(0.0, self.until - now), 1)
        return out


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    wait_until: float = 0.0
    suspended_until: float = 0.0


class Attempts:
    def __init__(self, window_s: float = DEFAULT_WINDOW_S, wait_s: float = DEFAULT_WAIT_S,
                 suspend_s: float = DEFAULT_SUSPEND_S, store: SuspensionStore | None = None,
                 wall: Callable[[], float] = time.time):
        self.window_s = window_s
        self.wait_s = wait_s
        self.suspend_s = suspend_s
        self.store = store
        self.wall = wall
        self._people: dict[Hashable, _Record] = {}
        self._asked_store: set[Hashable] = set()

    def _record(self, person: Hashable, t: float) -> _Record:
        rec = self._people.setdefault(person, _Record())
        if person not in self._asked_store and self.store is not None:
            self._asked_store.add(person)
            until = self.store.suspended_until(str(person))
            if until is not None and until > self.wall():
                rec.suspended_until = t + (until - self.wall())   # wall clock → frame time
        rec.failures = [f for f in rec.failures if t - f < self.window_s]
        return rec

    def standing(self, person: Hashable, t: float) -> Standing:
        rec = self._record(person, t)
        if t < rec.suspended_until:
            return Standing("suspended", rec.suspended_until, len(rec.failures))
        if t < rec.wait_until:
            return Standing("wait", rec.wait_until, len(rec.failures))
        return Standing("ok", 0.0, len(rec.failures))

    def failed(self, person: Hashable, t: float) -> Standing:
        """Count one failed photo check of ``person`` at ``t``; their standing after it."""
        rec = self._record(person, t)
        rec.failures.append(t)
        n = len(rec.failures)
        if n >= 3:
            rec.suspended_until = t + self.suspend_s
            rec.failures.clear()
            if self.store is not None:
                self.store.suspend(str(person), self.wall() + self.suspend_s)
            return Standing("suspended", rec.suspended_until, n)
        if n == 2:
            rec.wait_until = t + self.wait_s
            return Standing("wait", rec.wait_until, n)
        return Standing("ok", 0.0, n)

    def forget(self, person: Hashable) -> None:
        """Face entry resumed (by the manager): the counts start again."""
        self._people.pop(person, None)
        self._asked_store.discard(person)

    def refresh(self) -> None:
        """The gallery changed (face entry may have been resumed there): read it again."""
        if self.store is not None:
            for person in list(self._asked_store):
                until = self.store.suspended_until(str(person))
                rec = self._people.get(person)
                if rec is not None and rec.suspended_until and (until is None or until <= self.wall()):
                    self.forget(person)
        self._asked_store.clear()

    def reset(self) -> None:
        self._people.clear()
        self._asked_store.clear()
