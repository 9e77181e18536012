"""The access log: one row per door decision, in the gallery's database.

A row keeps the time, the person (employee id and name at that moment; NULL = stranger), the
distance and threshold that decided, the decision and its reason, what the door output did, and
optionally a face snapshot (an encrypted JPEG in ``snapshots/``, written with the same
temp → fsync → rename → commit order as photos). Erasing a person (``Gallery.remove``) deletes
their snapshots but keeps the rows, so the log still says when the door opened.

The table itself is created by db.py's schema migrations; this module builds on db.py only and
does not import the people's store (``EventLog`` takes the gallery for its database).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from faceguard.atomic import atomic_open
from faceguard.errors import GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.db import Database, encode_jpeg, iso, os_error_message

log = logging.getLogger(__name__)

SNAPSHOT_MAX_SIDE = 320
CSV_COLUMNS = ("time", "decision", "employee_id", "name", "distance", "threshold", "reason",
               "door_result", "snapshot")

_COLUMNS = ("id, time, employee_id, name, distance, threshold, decision, reason, door_result, "
            "snapshot_file, evidence")


@dataclass(frozen=True)
class Event:
    id: int
    time: float                 # seconds since the epoch
    employee_id: str | None     # None: a stranger
    name: str | None
    distance: float | None      # squared L2 to the nearest person; None when nobody to compare
    threshold: float | None
    decision: str               # e.g. "GRANTED", "DENIED"
    reason: str
    door_result: str            # what the door output reported ("ok", an error, "" for none)
    has_snapshot: bool
    evidence: dict = field(default_factory=dict)   # e.g. {"motion": …, "challenges": [...]}

    def to_dict(self) -> dict:
        return {"time": iso(self.time), "decision": self.decision, "employee_id": self.employee_id,
                "name": self.name, "distance": self.distance, "threshold": self.threshold,
                "reason": self.reason, "door_result": self.door_result, "snapshot": self.has_snapshot,
                "evidence": self.evidence}


def _event(row) -> Event:
    return Event(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9] is not None,
                 json.loads(row[10]) if row[10] else {})


class HasDatabase(Protocol):
    """What EventLog needs of a gallery: its database (``Gallery`` has one as ``.db``)."""

    db: Database


class EventLog:
    """The access log of one gallery: ``EventLog(gallery)``."""

    def __init__(self, gallery: HasDatabase):
        self.gallery = gallery   # kept for callers that reach the gallery through its log
        self.db = gallery.db

    def log_event(self, decision: str, *, employee_id: str | None = None, name: str | None = None,
                  distance: float | None = None, threshold: float | None = None, reason: str = "",
                  door_result: str = "", snapshot_rgb: np.ndarray | None = None,
                  when: float | None = None, evidence: dict | None = None) -> Event:
        """Record one decision. ``name`` defaults to the enrolled name of ``employee_id``;
        ``snapshot_rgb`` (RGB uint8, e.g. the face crop) is stored encrypted, ≤ 320 px."""
        decision = (decision or "").strip()
        if not decision:
            raise GalleryError("An access-log event needs a decision.")
        if employee_id is not None and name is None:
            with self.db.reading() as con:
                row = con.execute("SELECT name FROM people WHERE employee_id=?", (employee_id,)).fetchone()
            name = row[0] if row else None
        blob = None
        if snapshot_rgb is not None:
            blob = self.db.cipher.encrypt(encode_jpeg(snapshot_rgb, SNAPSHOT_MAX_SIDE, 85), crypto.SNAPSHOT)
        with self.db.change() as change:
            fname = change.write_file(self.db.snapshots_dir, blob) if blob is not None else None
            cur = change.con.execute(
                "INSERT INTO events (time, employee_id, name, distance, threshold, decision, reason, "
                "door_result, snapshot_file, evidence) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (when or time.time(), employee_id, name, _opt_float(distance), _opt_float(threshold),
                 decision, reason or "", door_result or "", fname,
                 json.dumps(evidence, sort_keys=True) if evidence else ""))
            event_id = cur.lastrowid
        return self.event(event_id)

    def set_door_result(self, event_id: int, door_result: str) -> None:
        """Add what the door output reported to an event logged when it was decided (the door
        may answer seconds later, or never)."""
        with self.db.change() as change:
            change.con.execute("UPDATE events SET door_result=? WHERE id=?", (door_result, event_id))

    def event(self, event_id: int) -> Event:
        with self.db.reading() as con:
            row = con.execute(f"SELECT {_COLUMNS} FROM events WHERE id=?", (event_id,)).fetchone()
        if row is None:
            raise GalleryError(f"There is no access-log event number {event_id}.")
        return _event(row)

    def events(self, limit: int | None = 100, since: float | None = None) -> list[Event]:
        """Newest first; at most ``limit`` (None = all), from ``since`` (epoch seconds) on."""
        sql = f"SELECT {_COLUMNS} FROM events WHERE time >= ? ORDER BY time DESC, id DESC"
        args: tuple = (since if since is not None else float("-inf"),)
        if limit is not None:
            sql += " LIMIT ?"
            args += (int(limit),)
        with self.db.reading() as con:
            return [_event(r) for r in con.execute(sql, args).fetchall()]

    def snapshot(self, event_id: int) -> np.ndarray | None:
        """The event's face snapshot as RGB uint8, or None when it has none (or was erased)."""
        with self.db.reading() as con:
            row = con.execute("SELECT snapshot_file FROM events WHERE id=?", (event_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        return self.db.read_image(self.db.snapshots_dir / row[0], crypto.SNAPSHOT, "snapshot")

    def export_csv(self, path: Path, since: float | None = None) -> int:
        """Write the log (oldest first) as CSV, atomically; returns the number of rows."""
        path = Path(path)
        rows = list(reversed(self.events(limit=None, since=since)))
        try:
            # private (0600): the log names people and says when they came and went
            with atomic_open(path, 0o600, text=True, newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(CSV_COLUMNS)
                for e in rows:
                    writer.writerow([iso(e.time), e.decision, e.employee_id or "", e.name or "",
                                     "" if e.distance is None else f"{e.distance:.4f}",
                                     "" if e.threshold is None else f"{e.threshold:.4f}",
                                     e.reason, e.door_result, "yes" if e.has_snapshot else "no"])
        except OSError as exc:
            raise GalleryError(os_error_message(exc, path.parent).replace("gallery folder", "folder")) from exc
        return len(rows)

    def enforce_retention(self, days: float, now: float | None = None) -> int:
        """Delete events (and their snapshots) older than ``days``; returns how many."""
        if days <= 0:
            raise GalleryError("The log retention must be at least one day.")
        cutoff = (now or time.time()) - days * 86400.0
        with self.db.change() as change:
            con = change.con
            snaps = [r[0] for r in con.execute(
                "SELECT snapshot_file FROM events WHERE time < ? AND snapshot_file IS NOT NULL", (cutoff,))]
            removed = con.execute("DELETE FROM events WHERE time < ?", (cutoff,)).rowcount
            change.obsolete.extend(self.db.snapshots_dir / s for s in snaps)
        if removed:
            log.info("Access log retention (%g days): removed %d event(s)", days, removed)
        return removed


def _opt_float(value) -> float | None:
    return None if value is None else float(value)
