"""The access log: one row per door decision, in the gallery's database.

A row keeps the time, the person (employee id and name at that moment; NULL = stranger), the
distance and threshold that decided, the decision and its reason, what the door output did, and
optionally a face snapshot (an encrypted JPEG in ``snapshots/``, written with the same
temp → fsync → rename → commit order as photos). Erasing a person (``Gallery.remove``) deletes
their snapshots (and the data key that could decrypt any copy of them) and replaces their name
and employee id with a pseudonym, keeping the rows: the log still says when the door opened.

The table itself is created by db.py's schema migrations; this module builds on db.py only and
does not import the people's store (``EventLog`` takes the gallery for its database).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from faceguard.atomic import atomic_open
from faceguard.errors import GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.db import Database, decode_jpeg, encode_jpeg, iso, os_error_message
from faceguard.gallery.ids import csv_safe, printable
from faceguard.gallery.keys import GALLERY_KEY
from faceguard.inputs import check_output_file

log = logging.getLogger(__name__)

SNAPSHOT_MAX_SIDE = 320
# "time" is local time with its UTC offset (2026-12-01T10:41:00+01:00): what the office's clock
# said, and still one instant when the file is read elsewhere or across a DST change.
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


def local_iso(t: float) -> str:
    """Local time with its UTC offset, e.g. 2026-12-01T10:41:00+01:00."""
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


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
        jpeg = None if snapshot_rgb is None else encode_jpeg(snapshot_rgb, SNAPSHOT_MAX_SIDE, 85)
        with self.db.change() as change:
            cur = change.con.execute(
                "INSERT INTO events (time, employee_id, name, distance, threshold, decision, reason, "
                "door_result, evidence) VALUES (?,?,?,?,?,?,?,?,?)",
                (when or time.time(), employee_id, name, _opt_float(distance), _opt_float(threshold),
                 decision, reason or "", door_result or "",
                 json.dumps(evidence, sort_keys=True) if evidence else ""))
            event_id = cur.lastrowid
            if jpeg is not None:
                # The row id is in the snapshot's associated data, so the row comes first; the
                # file is durable before the row naming it commits.
                key_ref, cipher = self._snapshot_key(change.con, employee_id)
                fname = change.write_file(self.db.snapshots_dir,
                                          self.db.keys.seal(cipher, jpeg, crypto.SNAPSHOT, event_id))
                change.con.execute("UPDATE events SET snapshot_file=?, snapshot_key=? WHERE id=?",
                                   (fname, key_ref, event_id))
        return self.event(event_id)

    def _snapshot_key(self, con, employee_id: str | None):
        """(events.snapshot_key, cipher) for a snapshot of ``employee_id``: the person's data key,
        so erasing them erases it too; the gallery key for a stranger (or a damaged data key)."""
        if employee_id is not None:
            row = con.execute("SELECT id, data_key FROM people WHERE employee_id=?", (employee_id,)).fetchone()
            if row is not None and row[1] is not None:
                try:
                    return row[0], self.db.keys.person(row[0], employee_id, row[1])
                except GalleryError as exc:
                    log.warning("%s; the snapshot is kept under the gallery key", exc)
        return GALLERY_KEY, self.db.keys.master

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

    def query(self, since: float | None = None, until: float | None = None, *,
              employee_id: str | None = None, strangers: bool = False,
              decision: str | None = None, limit: int | None = None) -> list[Event]:
        """Newest first: events with ``since <= time < until`` (epoch seconds), of one person
        (``employee_id``, compared case-insensitively), or of strangers only, of one decision."""
        where, args = ["1=1"], []
        if since is not None:
            where.append("time >= ?")
            args.append(float(since))
        if until is not None:
            where.append("time < ?")
            args.append(float(until))
        if strangers:
            where.append("employee_id IS NULL")
        elif employee_id:
            where.append("lower(employee_id) = lower(?)")
            args.append(employee_id)
        if decision:
            where.append("decision = ?")
            args.append(decision)
        sql = f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY time DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self.db.reading() as con:
            return [_event(r) for r in con.execute(sql, args).fetchall()]

    def decisions(self) -> list[str]:
        """The decisions the log holds (GRANTED, DENIED, …), for a filter's choices."""
        with self.db.reading() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT decision FROM events ORDER BY decision")]

    def snapshot(self, event_id: int) -> np.ndarray | None:
        """The event's face snapshot as RGB uint8, or None when it has none (or was erased)."""
        with self.db.reading() as con:
            row = con.execute("SELECT snapshot_file, snapshot_key FROM events WHERE id=?", (event_id,)).fetchone()
            if row is None or row[0] is None:
                return None
            cipher = self.db.keys.snapshot_cipher(con, row[1])
        return decode_jpeg(self.db.read_sealed(self.db.snapshots_dir / row[0], cipher, crypto.SNAPSHOT,
                                               event_id, "snapshot"), "snapshot")

    def export_csv(self, path: Path, since: float | None = None) -> int:
        """Write the log (oldest first) as CSV, atomically; returns the number of rows."""
        return write_csv(self.events(limit=None, since=since), path)

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


DISPLAY_COLUMNS = ("Time", "Person", "Decision", "Distance / threshold", "Reason", "Door")


def display_row(e: Event) -> tuple[str, ...]:
    """An event as the log window and ``faceguard log list`` show it (local time)."""
    who = f"{e.name or e.employee_id} ({e.employee_id})" if e.employee_id else "stranger"
    if e.distance is None:
        numbers = "–"
    else:
        numbers = f"{e.distance:.3f} / {e.threshold:.3f}" if e.threshold is not None else f"{e.distance:.3f}"
    when = datetime.fromtimestamp(e.time).strftime("%Y-%m-%d %H:%M:%S")
    # Escaped: an id or claim holding a tab or newline must not forge a column or a row.
    return (when, printable(who), printable(e.decision), numbers, printable(e.reason),
            printable(e.door_result) or "–")


def write_csv(events: list[Event], path: Path) -> int:
    """``events`` (newest first, as queried) written oldest first as CSV, atomically, private
    (0600: the log names people and says when they came and went); returns the row count."""
    path = Path(path)
    check_output_file(path, "the access log", GalleryError, "access-log.csv")
    rows = list(reversed(events))
    try:
        with atomic_open(path, 0o600, text=True, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for e in rows:
                # Text cells neutralised: "=HYPERLINK(…)" in a name must stay text in a spreadsheet.
                writer.writerow([local_iso(e.time), csv_safe(e.decision), csv_safe(e.employee_id),
                                 csv_safe(e.name), "" if e.distance is None else f"{e.distance:.4f}",
                                 "" if e.threshold is None else f"{e.threshold:.4f}",
                                 csv_safe(e.reason), csv_safe(e.door_result), "yes" if e.has_snapshot else "no"])
    except OSError as exc:
        raise GalleryError(os_error_message(exc, path.parent).replace("gallery folder", "folder")) from exc
    return len(rows)


def _opt_float(value) -> float | None:
    return None if value is None else float(value)
