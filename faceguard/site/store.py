"""``SiteStore``: one connection to the site's PostgreSQL database.

Blobs go in and out as they are (the caller encrypts with the site key, keys.py): no face in
clear here. Every gallery write is one transaction that takes the gallery advisory lock, draws
the next change number, seals the row's MAC (rows.py) and NOTIFYs the doors on commit. psycopg
errors leave as SiteUnreachableError (a door keeps deciding) or SiteError, in words."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from faceguard.gallery import rowmac
from faceguard.gallery.ids import normalise_id
from faceguard.site import SiteError, SiteUnreachableError, erase, keys, rotate, rows, schema

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
except ModuleNotFoundError:  # the [site] extra is not installed
    psycopg = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
# No statement waits for ever: a lock held by someone else (an administrator's psql, a long
# report) makes a statement fail after these, and the door goes on (issue 22 item 8).
STATEMENT_TIMEOUT_MS = 15_000
LOCK_TIMEOUT_MS = 3_000
PUSH_LOCK_TIMEOUT_MS = 500     # the access log gives way at once: revocation never waits behind it
# A server that vanishes mid-query (cable pulled) is noticed within ~10 s instead of minutes.
_TCP: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
        "tcp_user_timeout": 10_000}


def describe(url: str) -> str:
    """The server as a person recognises it, without the password."""
    try:
        d = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - a malformed URL is described as what it is
        return "the site database (its address is not valid)"
    host = d.get("host") or "localhost"
    return f"{d.get('user') or ''}{'@' if d.get('user') else ''}{host}:{d.get('port') or 5432}/{d.get('dbname') or ''}"


@dataclass(frozen=True)
class SitePerson:
    employee_id: str
    name: str
    created: float
    consent_at: float
    active: bool
    deleted: bool
    photo_seq: int
    seq: int
    valid_until: float | None = None
    digests: str = ""
    mac: bytes | None = None


class NotAtSiteError(SiteError):
    """The employee id is not enrolled at the site (never, or removed)."""


_PERSON = "employee_id, name, created, consent_at, active, deleted, photo_seq, seq, valid_until, digests, mac"


class SiteStore:
    def __init__(self, conn, url: str):
        self.conn = conn
        self.url = url
        self.where = describe(url)
        self.row_key: bytes | None = None     # the row MACs' key (rows.py), from the site key

    def use_key(self, site_key: bytes) -> None:
        """Hold the site key's MAC key: gallery writes need it, and a site from before row MACs
        (no flag, no MAC anywhere) is sealed once, trusted as it is when a door first meets it."""
        self.row_key = rowmac.derive(site_key, b"rows")
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (schema.GALLERY_LOCK,))
            cur.execute("SELECT EXISTS (SELECT 1 FROM people WHERE mac IS NOT NULL)")
            if not cur.fetchone()[0] and self._meta(cur, "row_macs") is None:
                cur.execute("SELECT employee_id FROM people WHERE mac IS NULL")
                for (eid,) in cur.fetchall():
                    rows.seal(cur, self.row_key, eid)
                cur.execute("INSERT INTO site_meta VALUES ('row_macs', '1') ON CONFLICT DO NOTHING")

    @classmethod
    def connect(cls, url: str, timeout: float = CONNECT_TIMEOUT_S, upgrade: bool = True) -> SiteStore:
        """Connect and bring the schema up to date (``upgrade``)."""
        if psycopg is None:
            raise SiteError("The site support is not installed: run "
                            "pip install 'faceguard[site]' (it adds psycopg).")
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout)),
                                   application_name="faceguard", **_TCP,
                                   options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
                                           f"-c lock_timeout={LOCK_TIMEOUT_MS}")
        except psycopg.OperationalError as exc:
            raise SiteUnreachableError(
                f"The site database {describe(url)} cannot be reached ({_first_line(exc)}). Check "
                "the address, the network and that the PostgreSQL server runs.") from exc
        except psycopg.Error as exc:
            raise SiteError(f"The site address {describe(url)} is not usable ({_first_line(exc)}).") from exc
        store = cls(conn, url)
        if upgrade:
            with store._errors():
                try:
                    schema.migrate(conn)
                except ValueError as exc:
                    conn.close()
                    raise SiteError(
                        f"The site database {store.where} was made by a newer FaceGuard (schema "
                        f"version {exc}; this one knows up to {schema.SCHEMA_VERSION}). Update "
                        "FaceGuard on this door.") from None
        return store

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not raise
            pass

    def __enter__(self) -> SiteStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            # Reachable, but a table is held by someone else (lock or statement timeout).
            raise SiteError(f"The site database {self.where} is busy: a table is locked by another "
                            f"session ({_first_line(exc)}); it is tried again.") from exc
        except psycopg.OperationalError as exc:
            raise SiteUnreachableError(
                f"The connection to the site database {self.where} was lost ({_first_line(exc)}).") from exc
        except psycopg.Error as exc:
            raise SiteError(f"The site database {self.where} refused the request ({_first_line(exc)}).") from exc

    @contextmanager
    def _tx(self) -> Iterator:
        with self._errors(), self.conn.transaction(), self.conn.cursor() as cur:
            yield cur

    # -- the site itself -------------------------------------------------------------------------
    def _meta(self, cur, key: str) -> str | None:
        cur.execute("SELECT value FROM site_meta WHERE key=%s", (key,))
        row = cur.fetchone()
        return row[0] if row else None

    def create(self) -> tuple[str, bytes]:
        """Make this database a site: a new site key and its join code → (code, site key)."""
        code, site_key = keys.new_code(), keys.new_site_key()
        salt, wrapped = keys.wrap(site_key, code)
        with self._tx() as cur:
            cur.execute("LOCK TABLE site_meta")
            if self._meta(cur, "site_id"):
                raise SiteError(f"{self.where} already holds a FaceGuard site; join it with its code "
                                "('faceguard site join'), or use an empty database for a new site.")
            for key, value in (("site_id", uuid.uuid4().hex), ("code_salt", salt), ("wrapped_key", wrapped),
                               ("created", str(time.time()))):
                cur.execute("INSERT INTO site_meta VALUES (%s, %s)", (key, value))
        log.info("Created a FaceGuard site in %s", self.where)
        self.use_key(site_key)
        return code, site_key

    def site_id(self) -> str:
        with self._tx() as cur:
            value = self._meta(cur, "site_id")
        if not value:
            raise SiteError(f"{self.where} holds no FaceGuard site yet; create one with "
                            "'faceguard site create URL'.")
        return value

    def unlock(self, code: str) -> bytes:
        """The site key, if ``code`` is this site's join code."""
        self.site_id()
        with self._tx() as cur:
            salt, wrapped = self._meta(cur, "code_salt"), self._meta(cur, "wrapped_key")
        return keys.unwrap(salt or "", wrapped or "", code)

    def rotate_key(self, old_key: bytes, remove: str | None = None) -> tuple[str, bytes]:
        """A new site key and join code (rotate.py); ``remove``: that door first leaves."""
        with self._tx() as cur:
            code, key = rotate.rotate(cur, old_key, remove)
        self.row_key = rowmac.derive(key, b"rows")
        log.info("The site key of %s was rotated%s", self.where, f" (door '{remove}' removed)" if remove else "")
        return code, key

    def register_door_key(self, site_key: bytes, door: str) -> None:
        with self._tx() as cur:
            rotate.register_key(cur, site_key, door)

    def current_key(self, site_key: bytes, door: str) -> bytes:
        """``site_key`` if it is still the site's, else the current one this door may unwrap."""
        with self._tx() as cur:
            return site_key if rotate.is_current(cur, site_key) else rotate.refresh(cur, door)

    def register_door(self, name: str) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO doors (name, joined) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (name, time.time()))
            if cur.rowcount == 0:
                raise SiteError(f"A door named '{name}' has already joined this site; choose another "
                                f"name (for example '{name}-2').")

    def door_synced(self, door: str, seq: int) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE doors SET last_sync=%s, seq=%s WHERE name=%s", (time.time(), seq, door))

    def doors(self) -> list[dict]:
        with self._tx() as cur:
            cur.execute("SELECT name, joined, last_sync, seq FROM doors ORDER BY name")
            return [{"name": r[0], "joined": r[1], "last_sync": r[2], "gallery_version": r[3]}
                    for r in cur.fetchall()]

    def version(self) -> int:
        """The gallery version: the change number of the last gallery change (0: none yet)."""
        with self._tx() as cur:
            cur.execute("SELECT COALESCE(MAX(seq), 0) FROM people")
            return int(cur.fetchone()[0])

    # -- the gallery: reading --------------------------------------------------------------------
    def changes(self, since: int, limit: int = 200) -> list[SitePerson]:
        """People changed after change number ``since``, oldest change first."""
        with self._tx() as cur:
            cur.execute(f"SELECT {_PERSON} FROM people WHERE seq > %s ORDER BY seq LIMIT %s", (since, limit))
            return [SitePerson(*r) for r in cur.fetchall()]

    def people(self) -> list[SitePerson]:
        with self._tx() as cur:
            cur.execute(f"SELECT {_PERSON} FROM people WHERE NOT deleted ORDER BY employee_id")
            return [SitePerson(*r) for r in cur.fetchall()]

    def face_data(self, employee_ids: Iterable[str]) -> dict[str, tuple[bytes, dict[str, bytes]]]:
        """{employee id: (encrypted photo, {model id: encrypted embedding})}."""
        ids = list(employee_ids)
        out: dict[str, tuple[bytes, dict[str, bytes]]] = {}
        if not ids:
            return out
        with self._tx() as cur:
            cur.execute("SELECT employee_id, photo FROM people WHERE employee_id = ANY(%s) "
                        "AND photo IS NOT NULL", (ids,))
            for eid, photo in cur.fetchall():
                out[eid] = (bytes(photo), {})
            cur.execute("SELECT employee_id, model_id, embedding FROM embeddings WHERE employee_id = ANY(%s)",
                        (ids,))
            for eid, model_id, emb in cur.fetchall():
                if eid in out:
                    out[eid][1][model_id] = bytes(emb)
        return out

    # -- the gallery: writing --------------------------------------------------------------------
    @contextmanager
    def _gallery_change(self) -> Iterator[tuple]:
        """(cursor, change number) inside one transaction that NOTIFYs the doors on commit."""
        if self.row_key is None:
            raise SiteError("A gallery change at the site needs the site key (this door's "
                            "site.key); join the site with its code first.")
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (schema.GALLERY_LOCK,))
            cur.execute("SELECT nextval('change_seq')")
            seq = int(cur.fetchone()[0])
            yield cur, seq
            cur.execute("SELECT pg_notify(%s, %s)", (schema.CHANNEL, str(seq)))

    @staticmethod
    def _live(cur, employee_id: str) -> str | None:
        """The id as the site stores it of the live person whose id is ``employee_id`` in any
        case or width (ids.normalise_id), or None."""
        norm = normalise_id(employee_id)
        cur.execute("SELECT employee_id FROM people WHERE NOT deleted")
        found = [r[0] for r in cur.fetchall() if normalise_id(r[0]) == norm]
        return employee_id if employee_id in found else found[0] if found else None

    def _existing(self, cur, employee_id: str) -> str:
        """The stored id of an enrolled person (locked for this change); NotAtSiteError if none."""
        stored = self._live(cur, employee_id)
        if stored is None:
            raise NotAtSiteError(f"No person with employee id '{employee_id}' is enrolled at the site.")
        cur.execute("SELECT 1 FROM people WHERE employee_id=%s FOR UPDATE", (stored,))
        return stored

    def _seal(self, cur, employee_id: str) -> None:
        assert self.row_key is not None          # _gallery_change made sure
        rows.seal(cur, self.row_key, employee_id)

    def add_person(self, door: str, name: str, employee_id: str, photo: bytes, embedding: bytes,
                   model_id: str, consent_at: float, created: float | None = None) -> int:
        """Enrol at the site; SiteError when the id is taken. Returns the change number."""
        with self._gallery_change() as (cur, seq):
            taken = self._live(cur, employee_id)
            if taken is not None:
                cur.execute("SELECT name FROM people WHERE employee_id=%s", (taken,))
                same = "" if taken == employee_id else f" as '{taken}' (ids ignore case and width)"
                raise SiteError(f"Employee id '{employee_id}' is already enrolled at the site{same} "
                                f"({cur.fetchone()[0]}).")
            # A removed person's tombstone is revived: the id is free again.
            cur.execute(
                "INSERT INTO people (employee_id, name, created, consent_at, active, deleted, photo, "
                "photo_seq, seq, changed_by) VALUES (%s,%s,%s,%s,TRUE,FALSE,%s,%s,%s,%s) "
                "ON CONFLICT (employee_id) DO UPDATE SET name=EXCLUDED.name, created=EXCLUDED.created, "
                "consent_at=EXCLUDED.consent_at, active=TRUE, deleted=FALSE, photo=EXCLUDED.photo, "
                "photo_seq=EXCLUDED.photo_seq, seq=EXCLUDED.seq, changed_by=EXCLUDED.changed_by",
                (employee_id, name, created or time.time(), consent_at, photo, seq, seq, door))
            cur.execute("DELETE FROM embeddings WHERE employee_id=%s", (employee_id,))
            cur.execute("INSERT INTO embeddings VALUES (%s,%s,%s)", (employee_id, model_id, embedding))
            self._seal(cur, employee_id)
        return seq

    def replace_photo(self, door: str, employee_id: str, photo: bytes, embedding: bytes, model_id: str) -> int:
        with self._gallery_change() as (cur, seq):
            employee_id = self._existing(cur, employee_id)
            cur.execute("UPDATE people SET photo=%s, photo_seq=%s, seq=%s, changed_by=%s WHERE employee_id=%s",
                        (photo, seq, seq, door, employee_id))
            # Vectors of other models were made from the old photo: drop them.
            cur.execute("DELETE FROM embeddings WHERE employee_id=%s", (employee_id,))
            cur.execute("INSERT INTO embeddings VALUES (%s,%s,%s)", (employee_id, model_id, embedding))
            self._seal(cur, employee_id)
        return seq

    def rename(self, door: str, employee_id: str, name: str) -> int:
        with self._gallery_change() as (cur, seq):
            employee_id = self._existing(cur, employee_id)
            cur.execute("UPDATE people SET name=%s, seq=%s, changed_by=%s WHERE employee_id=%s",
                        (name, seq, door, employee_id))
            self._seal(cur, employee_id)
        return seq

    def set_active(self, door: str, employee_id: str, active: bool) -> int:
        with self._gallery_change() as (cur, seq):
            employee_id = self._existing(cur, employee_id)
            cur.execute("UPDATE people SET active=%s, seq=%s, changed_by=%s WHERE employee_id=%s",
                        (bool(active), seq, door, employee_id))
            self._seal(cur, employee_id)
        return seq

    def set_valid_until(self, door: str, employee_id: str, until: float | None) -> int:
        """Let the person in only before ``until`` (epoch seconds; None: no end) at every door."""
        with self._gallery_change() as (cur, seq):
            employee_id = self._existing(cur, employee_id)
            cur.execute("UPDATE people SET valid_until=%s, seq=%s, changed_by=%s WHERE employee_id=%s",
                        (None if until is None else float(until), seq, door, employee_id))
            self._seal(cur, employee_id)
        return seq

    def remove(self, door: str, employee_id: str) -> int:
        """Erase a person at the site: photo, embeddings and their snapshots in every door's log.
        The tombstone (id only) tells each door to erase its copy."""
        with self._gallery_change() as (cur, seq):
            employee_id = self._existing(cur, employee_id)
            cur.execute("SELECT name FROM people WHERE employee_id=%s", (employee_id,))
            name = cur.fetchone()[0]
            cur.execute("UPDATE people SET deleted=TRUE, photo=NULL, name='', active=FALSE, valid_until=NULL, "
                        "seq=%s, changed_by=%s WHERE employee_id=%s", (seq, door, employee_id))
            cur.execute("DELETE FROM embeddings WHERE employee_id=%s", (employee_id,))
            self._seal(cur, employee_id)
        # The log is scrubbed after the gallery change commits, in its own transaction: a lock
        # on the events table never holds up a removal (a scrub that gives way is done again
        # with the next push of any door).
        try:
            self.scrub_erased({employee_id: name})
        except SiteError as exc:
            log.warning("The site log keeps %s's rows for now (%s); the next push scrubs them", employee_id, exc)
        return seq

    # -- the access log --------------------------------------------------------------------------
    def scrub_erased(self, names: dict[str, str] | None = None) -> int:
        """Erase from every door's log the people removed at the site: their snapshots, ids and
        names (the rows stay under a pseudonym: the door opened at these times) and their names
        in any reason ("nearest Lin"). ``names``: {id: name} of a removal just made. Returns
        how many people were scrubbed. Gives way (SiteError) to a lock on the events table."""
        with self._tx() as cur:
            cur.execute(f"SET LOCAL lock_timeout = {int(PUSH_LOCK_TIMEOUT_MS)}")
            return erase.scrub(cur, names or {})

    def push_events(self, door: str, rows: list[tuple]) -> int:
        """Insert (local id, time, employee id, name, distance, threshold, decision, reason,
        door result, encrypted snapshot | None) rows of ``door``; a row already there (a push
        repeated after a lost answer) is not inserted twice, only its door result refreshed."""
        if not rows:
            return 0
        now = time.time()
        with self._tx() as cur:
            # The log gives way to anyone holding its table: the push is tried again later, and
            # the gallery's changes (another connection, another table) never wait behind it.
            cur.execute(f"SET LOCAL lock_timeout = {int(PUSH_LOCK_TIMEOUT_MS)}")
            cur.execute("SELECT 1 FROM doors WHERE name=%s", (door,))
            if cur.fetchone() is None:
                raise SiteError(f"The site does not know the door '{door}'; join it again.")
            # A snapshot of someone erased meanwhile is dropped on arrival.
            cur.executemany(
                "INSERT INTO events (door, local_id, time, employee_id, name, distance, threshold, "
                "decision, reason, door_result, snapshot, received) "
                "SELECT %s,%s,%s,%s,%s,%s,%s,%s,%s,%s, CASE WHEN EXISTS (SELECT 1 FROM people p WHERE "
                "p.employee_id=%s AND p.deleted) THEN NULL ELSE %s::bytea END, %s "
                "ON CONFLICT (door, local_id, time) DO UPDATE SET door_result=EXCLUDED.door_result",
                [(door, *r[:9], r[2], r[9], now) for r in rows])
        try:
            self.scrub_erased()       # rows of people removed meanwhile, or a scrub that gave way
        except SiteError as exc:
            log.info("Scrubbing the site log of erased people waits for the next push (%s)", exc)
        return len(rows)

    def update_door_results(self, door: str, rows: list[tuple[int, float, str]]) -> None:
        """(local id, time, door result) of events already pushed whose door output answered
        after they were logged."""
        if rows:
            with self._tx() as cur:
                cur.executemany("UPDATE events SET door_result=%s WHERE door=%s AND local_id=%s AND time=%s "
                                "AND door_result IS DISTINCT FROM %s",
                                [(result, door, local_id, t, result) for local_id, t, result in rows])

    def events(self, limit: int | None = 100, door: str | None = None) -> list[dict]:
        """Newest first, every door's (or one door's) events."""
        sql = ("SELECT door, local_id, time, employee_id, name, distance, threshold, decision, reason, "
               "door_result, snapshot IS NOT NULL FROM events")
        args: list = []
        if door:
            sql += " WHERE door=%s"
            args.append(door)
        sql += " ORDER BY time DESC, door, local_id DESC"
        if limit is not None:
            sql += " LIMIT %s"
            args.append(int(limit))
        with self._tx() as cur:
            cur.execute(sql, args)
            cols = ("door", "local_id", "time", "employee_id", "name", "distance", "threshold",
                    "decision", "reason", "door_result", "snapshot")
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def snapshot_blob(self, door: str, local_id: int) -> bytes | None:
        with self._tx() as cur:
            cur.execute("SELECT snapshot FROM events WHERE door=%s AND local_id=%s", (door, local_id))
            row = cur.fetchone()
        return bytes(row[0]) if row and row[0] is not None else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
