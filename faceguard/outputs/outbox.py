"""One persisted, bounded outbox for the door's messages (webhooks and MQTT), in its own SQLite
file in the data folder (``outbox.db``).

Why its own file and not a table in gallery.db: the outbox is written for every decision and
emptied as receivers answer; it holds no biometric data and no access rights, so it needs neither
the gallery's cipher nor its migrations, and its writes never wait for the gallery's lock.
Deleting it loses only messages not yet sent.

Delivery is at-least-once: a message stays until its sender reports it delivered, so a crash or
a lost answer sends it again. Every message carries an idempotency key (the event's id), and a
receiver that remembers keys takes each event exactly once. Messages of one channel go out in
order. The outbox is bounded (``max_messages`` per channel): when a receiver stays away that
long, the oldest waiting message is dropped, counted and logged, rather than filling the disk.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from faceguard.errors import FaceGuardError

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.db"
MAX_MESSAGES = 20_000     # per channel: ~3 h of 2 events/s with the receiver away

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,          -- 'webhook' | 'mqtt'
    key TEXT NOT NULL,              -- idempotency key (the event id)
    topic TEXT NOT NULL DEFAULT '', -- MQTT topic ('' for webhooks)
    retain INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL,
    created REAL NOT NULL,          -- wall clock, for the delivery delay
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,   -- monotonic-free: wall clock seconds
    problem TEXT NOT NULL DEFAULT '',
    refused INTEGER NOT NULL DEFAULT 0, -- the receiver refused it for good (kept for a person)
    UNIQUE (channel, key, topic)
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (channel, refused, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class OutboxError(FaceGuardError):
    """The outbox file cannot be opened or written."""


@dataclass(frozen=True)
class Message:
    id: int
    channel: str
    key: str
    topic: str
    retain: bool
    body: bytes
    created: float
    attempts: int
    next_try: float


def new_key() -> str:
    """An idempotency key: unique per event, the same for every channel that carries it."""
    return uuid.uuid4().hex


class Outbox:
    """Thread-safe: the frame thread puts, each channel's sender takes."""

    def __init__(self, path: Path, max_messages: int = MAX_MESSAGES):
        self.path = Path(path)
        self.max_messages = max_messages
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(self.path, timeout=15.0, isolation_level=None,
                                        check_same_thread=False)
            self._con.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL: a committed message survives a crash of the process; a power cut
            # may lose the last few, which the access log still holds.
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._con.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"The message outbox {self.path} cannot be opened ({exc}); check "
                              "that the data folder is writable.") from exc

    @classmethod
    def in_folder(cls, root: Path) -> Outbox:
        return cls(Path(root) / OUTBOX_FILE)

    def put(self, channel: str, body: bytes, *, key: str, topic: str = "",
            retain: bool = False) -> bool:
        """Queue one message; False when the same (channel, key, topic) is already queued."""
        return self.put_many([(channel, body, key, topic, retain)]) == 1

    def put_many(self, messages: list[tuple[str, bytes, str, str, bool]]) -> int:
        """Queue (channel, body, key, topic, retain) messages in one transaction (one decision's
        messages to every channel: one commit per frame); how many were new."""
        now = time.time()
        added = 0
        with self._lock, self._write() as con:
            for channel, body, key, topic, retain in messages:
                cur = con.execute(
                    "INSERT OR IGNORE INTO messages (channel, key, topic, retain, body, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (channel, key, topic, int(retain), body, now))
                if cur.rowcount:
                    added += 1
                    self._trim(con, channel)
        return added

    def _trim(self, con: sqlite3.Connection, channel: str) -> None:
        (count,) = con.execute("SELECT COUNT(*) FROM messages WHERE channel=? AND refused=0",
                               (channel,)).fetchone()
        over = count - self.max_messages
        if over <= 0:
            return
        con.execute("DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE channel=? "
                    "AND refused=0 ORDER BY id LIMIT ?)", (channel, over))
        con.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                    "value = value + excluded.value", (f"dropped.{channel}", over))
        log.warning("outbox %s full (%d messages): the oldest %d dropped", channel,
                    self.max_messages, over)

    def head(self, channel: str) -> Message | None:
        """The oldest message of ``channel`` not yet delivered (due or not)."""
        with self._lock:
            row = self._con.execute(
                "SELECT id, channel, key, topic, retain, body, created, attempts, next_try "
                "FROM messages WHERE channel=? AND refused=0 ORDER BY id LIMIT 1",
                (channel,)).fetchone()
        return None if row is None else Message(row[0], row[1], row[2], row[3], bool(row[4]),
                                                bytes(row[5]), row[6], row[7], row[8])

    def delivered(self, message_id: int) -> None:
        with self._lock, self._write() as con:
            con.execute("DELETE FROM messages WHERE id=?", (message_id,))

    def retry_later(self, message_id: int, at: float, problem: str) -> None:
        with self._lock, self._write() as con:
            con.execute("UPDATE messages SET attempts = attempts + 1, next_try=?, problem=? "
                        "WHERE id=?", (at, problem[:500], message_id))

    def retry_now(self, channel: str) -> None:
        """The receiver is back (MQTT reconnected): every waiting message is due now."""
        with self._lock, self._write() as con:
            con.execute("UPDATE messages SET next_try=0 WHERE channel=? AND refused=0", (channel,))

    def refuse(self, message_id: int, problem: str) -> None:
        """The receiver refused it for good (e.g. 401: wrong secret): kept, but not retried."""
        with self._lock, self._write() as con:
            con.execute("UPDATE messages SET refused=1, problem=? WHERE id=?",
                        (problem[:500], message_id))

    def pending(self, channel: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM messages WHERE refused=0"
        args: tuple = ()
        if channel is not None:
            query, args = query + " AND channel=?", (channel,)
        with self._lock:
            return int(self._con.execute(query, args).fetchone()[0])

    def counters(self) -> dict[str, int]:
        with self._lock:
            out = dict(self._con.execute("SELECT name, value FROM counters").fetchall())
            out.update((f"refused.{c}", n) for c, n in self._con.execute(
                "SELECT channel, COUNT(*) FROM messages WHERE refused=1 GROUP BY channel"))
        return out

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def _write(self):
        return _Transaction(self._con, self.path)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error; an SQLite error becomes OutboxError."""

    def __init__(self, con: sqlite3.Connection, path: Path):
        self.con, self.path = con, path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise OutboxError(f"The message outbox {self.path} cannot be written ({exc}).") from exc
        return self.con

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            try:
                self.con.execute("COMMIT")
                return
            except sqlite3.Error as err:
                self.con.execute("ROLLBACK")
                raise OutboxError(f"The message outbox {self.path} cannot be written ({err}); "
                                  "is the disk full?") from err
        self.con.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise OutboxError(f"The message outbox {self.path} cannot be written ({exc}); is "
                              "the disk full?") from exc
