"""Who came in today: the day's access log summed up for a manager (no Qt: the CLI's
`faceguard log today` and the window's Today view both read it).

`Today` holds, for one local calendar day: each person let in (first entry, last seen, how many
entries, at which doors), the entries and refusals per hour, every refusal with its reason,
and which refusals look like an attack (`suspected_attack`). Read-only: it never writes the log.

At a site door the rows can come from the site (`from_site`: every door's events, with a door
column); otherwise, or when the site cannot be reached, from this door's own log
(`from_gallery`). `to_dict` is the JSON shape `faceguard log today --json` prints (README).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

GRANTED, DENIED = "GRANTED", "DENIED"
# Evidence keys the photo check writes (access/records.Decision.evidence; the liveness work may
# add more): a refusal carrying them was a face matched to someone that failed the photo check.
LIVENESS_EVIDENCE = ("motion", "challenges", "liveness", "texture")
# Site rows carry no evidence column: the photo check's refusals say so in their reason.
_LIVENESS_WORDS = re.compile(r"photo check|a photo|a video|a screen|head|challenge|target|print", re.I)


@dataclass(frozen=True)
class Row:
    """One access-log event, from this door's log or the site's."""
    time: float
    decision: str
    employee_id: str | None
    name: str | None
    reason: str = ""
    door: str = ""               # "" = this door (no site)
    evidence: dict = field(default_factory=dict)

    @property
    def suspected_attack(self) -> bool:
        """A refusal of a face that matched an enrolled person but failed the photo check (a
        print, a phone screen, a video): someone tried to pass as that person."""
        if self.decision != DENIED or self.employee_id is None:
            return False
        if any(k in self.evidence for k in LIVENESS_EVIDENCE):
            return True
        return bool(_LIVENESS_WORDS.search(self.reason))


@dataclass(frozen=True)
class PersonDay:
    employee_id: str
    name: str
    first_entry: float
    last_seen: float
    entries: int
    doors: tuple[str, ...]


@dataclass(frozen=True)
class Today:
    day: date
    source: str                          # "this door" | "site"
    doors: tuple[str, ...]               # doors with events today (site), () for one door
    door: str | None                     # the door filter, None = every door
    people: tuple[PersonDay, ...]        # by first entry
    entries_per_hour: tuple[int, ...]    # 24 counts, local hours
    denied_per_hour: tuple[int, ...]
    denials: tuple[Row, ...]             # oldest first
    note: str = ""                       # e.g. why the site's rows could not be read

    @property
    def entries(self) -> int:
        return sum(self.entries_per_hour)

    @property
    def suspected_attacks(self) -> int:
        return sum(r.suspected_attack for r in self.denials)


def day_bounds(day: date) -> tuple[float, float]:
    """Epoch seconds of the local midnight starting `day` and of the next one (a DST day is
    23 or 25 hours long)."""
    start = datetime.combine(day, time()).astimezone()
    end = datetime.combine(day + timedelta(days=1), time()).astimezone()
    return start.timestamp(), end.timestamp()


def local_iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def summarise(rows: Iterable[Row], day: date, *, source: str = "this door", door: str | None = None,
              note: str = "") -> Today:
    """The day's summary of `rows` (any order; rows outside the day or, with `door`, of other
    doors are left out)."""
    start, end = day_bounds(day)
    rows = sorted((r for r in rows if start <= r.time < end), key=lambda r: r.time)
    doors = tuple(sorted({r.door for r in rows if r.door}))
    if door:
        rows = [r for r in rows if r.door.casefold() == door.casefold()]
    entries, denied = [0] * 24, [0] * 24
    people: dict[str, dict] = {}
    for r in rows:
        hour = datetime.fromtimestamp(r.time).hour
        if r.decision == GRANTED and r.employee_id is not None:
            entries[hour] += 1
            p = people.setdefault(r.employee_id, {"name": r.name or r.employee_id, "first": r.time,
                                                  "doors": []})
            p["last"], p["n"] = r.time, p.get("n", 0) + 1
            if r.door and r.door not in p["doors"]:
                p["doors"].append(r.door)
        elif r.decision != GRANTED:
            denied[hour] += 1
    return Today(day, source, doors, door,
                 tuple(PersonDay(eid, p["name"], p["first"], p["last"], p["n"], tuple(p["doors"]))
                       for eid, p in people.items()),
                 tuple(entries), tuple(denied), tuple(r for r in rows if r.decision != GRANTED), note)


def rows_from_gallery(gallery, day: date) -> list[Row]:
    from faceguard.gallery.events import EventLog
    start, end = day_bounds(day)
    return [Row(e.time, e.decision, e.employee_id, e.name, e.reason, "", e.evidence)
            for e in EventLog(gallery).query(start, end)]


def rows_from_site(store, day: date) -> list[Row]:
    """Every door's events of the day from the site (newest first there: read until older)."""
    start, _ = day_bounds(day)
    return [Row(float(e["time"]), e["decision"], e["employee_id"], e["name"], e["reason"] or "", e["door"])
            for e in store.events(limit=None) if float(e["time"]) >= start]


def from_gallery(gallery, day: date | None = None) -> Today:
    day = day or date.today()
    return summarise(rows_from_gallery(gallery, day), day)


def for_this_door(gallery, day: date | None = None, door: str | None = None, timeout: float = 5) -> Today:
    """At a site door every door's day (from the site); at a door on its own, or when the site
    cannot be reached (then `note` says so), this door's own log."""
    from faceguard.site import SiteError
    from faceguard.site.config import SiteConfig

    day = day or date.today()
    config = SiteConfig.load()
    if config is None:
        return summarise(rows_from_gallery(gallery, day), day, door=door)
    from faceguard.site.replica import Replica
    try:
        with Replica(gallery, config).connect(timeout) as store:
            rows = rows_from_site(store, day)
    except SiteError as exc:
        rows = [Row(r.time, r.decision, r.employee_id, r.name, r.reason, config.door, r.evidence)
                for r in rows_from_gallery(gallery, day)]
        return summarise(rows, day, source="this door", door=door,
                         note=f"The site cannot be reached ({exc}); this door's events only.")
    return summarise(rows, day, source="site", door=door)


def to_dict(today: Today) -> dict:
    """The JSON shape of `faceguard log today --json` (times: local, with the UTC offset)."""
    return {
        "day": today.day.isoformat(), "source": today.source, "doors": list(today.doors),
        "door": today.door, "note": today.note,
        "totals": {"entries": today.entries, "people": len(today.people),
                   "denied": len(today.denials), "suspected_attacks": today.suspected_attacks},
        "people": [{"employee_id": p.employee_id, "name": p.name, "first_entry": local_iso(p.first_entry),
                    "last_seen": local_iso(p.last_seen), "entries": p.entries, "doors": list(p.doors)}
                   for p in today.people],
        "per_hour": [{"hour": h, "entries": today.entries_per_hour[h], "denied": today.denied_per_hour[h]}
                     for h in range(24)],
        "denials": [{"time": local_iso(r.time), "door": r.door or None, "decision": r.decision,
                     "employee_id": r.employee_id, "name": r.name, "reason": r.reason,
                     "suspected_attack": r.suspected_attack} for r in today.denials],
    }


def site_log(gallery, since: float, until: float, timeout: float = 5) -> list[tuple[str, object]]:
    """Every door's access-log events with since <= time < until, newest first, from this
    door's site, as (door, gallery.events.Event) pairs (their snapshots stay at the site:
    ``has_snapshot`` False). SiteError when this door joined no site or it cannot be reached."""
    from faceguard.gallery.events import Event
    from faceguard.site import SiteError
    from faceguard.site.config import SiteConfig
    from faceguard.site.replica import Replica

    config = SiteConfig.load()
    if config is None:
        raise SiteError("This door has not joined a site.")
    with Replica(gallery, config).connect(timeout) as store:
        rows = store.events(limit=None)
    return [(e["door"], Event(-int(e["local_id"]), float(e["time"]), e["employee_id"], e["name"], e["distance"],
                              e["threshold"], e["decision"], e["reason"] or "", e["door_result"] or "", False))
            for e in rows if since <= float(e["time"]) < until]
