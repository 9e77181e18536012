"""The people of the gallery: one photo and one embedding per employee.

The database, its schema, the transactions and the encrypted files are db.py's; this module
says what a person is and how one is enrolled, changed, re-embedded, checked and erased. The
access log (events.py) lives in the same database but is not imported here: erasing a person
clears their snapshots through the shared schema, in the same transaction.

Each person's photo, embedding and snapshots are encrypted with their own data key (keys.py),
bound to their row; erasing the row erases the key, so no copy of their face stays readable.

Photos are RGB uint8 arrays. Embeddings are float32 unit vectors tagged with the model id that
made them; ``embeddings(model_id)`` returns only those of that model, so two models are never
compared.
"""

from __future__ import annotations

import logging
import math
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceguard import paths
from faceguard.errors import GalleryError
from faceguard.gallery import crypto, integrity, rowmac
from faceguard.gallery.checkup import GalleryChecks
from faceguard.gallery.db import Database, decode_jpeg, encode_jpeg
from faceguard.gallery.ids import clean_id, clean_text, erase_words, same_id
from faceguard.gallery.person import ACTIVE_SQL, Person, check_embedding, single_embedding
from faceguard.logfile import attached_log_files, log_files, mask_words

log = logging.getLogger(__name__)

PHOTO_MAX_SIDE = 1024


class Gallery(GalleryChecks):
    """The people of one office. Open with ``Gallery.open()``; thread-safe (the database's lock).
    ``EventLog(gallery)`` is the access log in the same database."""

    def __init__(self, db: Database):
        self.db = db
        self.root = db.root
        self.photos_dir = db.photos_dir
        self.snapshots_dir = db.snapshots_dir
        self.key_file = db.key_file
        self.cipher = db.cipher

    @classmethod
    def open(cls, data_dir: Path | None = None, key_file: Path | None = None) -> Gallery:
        """Open (or create) the gallery in ``data_dir``; sweeps files a crash left behind."""
        return cls(Database.open(data_dir, key_file))

    @property
    def _con(self) -> sqlite3.Connection:
        return self.db.con

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sweep(self) -> list[Path]:
        """Delete files no row names (left by a crash) and temp files; returns what was deleted."""
        return self.db.sweep()

    # -- people --------------------------------------------------------------------------------
    def add_person(self, name: str, employee_id: str, photo_rgb: np.ndarray, embedding: np.ndarray,
                   model_id: str, consent_at: float | None = None, created: float | None = None,
                   check: Callable[[], None] | None = None) -> Person:
        """Enrol a person with their photo and its embedding; consent and the enrolment time
        are recorded as now unless given (an import keeps the original enrolment's). Raises
        GalleryError when the employee id is taken (in any letter case).

        ``check()`` runs inside the write transaction, before the insert (enrolment's duplicate
        search): two enrolments of one face at once then see each other, one after the other."""
        name = clean_text(name, "name")
        employee_id = clean_id(employee_id)
        model_id = clean_text(model_id, "model id")
        jpeg = encode_jpeg(photo_rgb, PHOTO_MAX_SIDE)
        vec = check_embedding(embedding).tobytes()
        now = time.time()
        keys = self.db.keys
        with self.db.change() as change:
            con = change.con
            self._check_free(con, employee_id)
            if check is not None:
                check()
            # The row first: its id is part of every blob's associated data (keys.py). The
            # placeholders never commit; the photo file is durable before the row names it.
            person_id = con.execute(
                "INSERT INTO people (name, employee_id, created, consent_at, active, photo_file, "
                "embedding, model_id) VALUES (?,?,?,?,1,?,?,?)",
                (name, employee_id, created or now, consent_at or now, f"pending-{uuid.uuid4().hex}",
                 b"", model_id)).lastrowid
            wrapped, cipher = keys.new(person_id, employee_id)
            fname, digest = self._write_photo(change, keys.seal(cipher, jpeg, crypto.PHOTO, person_id))
            con.execute("UPDATE people SET photo_file=?, photo_digest=?, embedding=?, data_key=? WHERE id=?",
                        (fname, digest, keys.seal(cipher, vec, crypto.EMBEDDING, person_id), wrapped, person_id))
            self._seal(con, person_id)
        log.info("Enrolled %s (%s)", name, employee_id)
        return self.person(employee_id)

    def replace_photo(self, employee_id: str, photo_rgb: np.ndarray, embedding: np.ndarray,
                      model_id: str, check: Callable[[], None] | None = None) -> Person:
        """A new photo and embedding; ``check()`` runs inside the transaction (as add_person's)."""
        jpeg = encode_jpeg(photo_rgb, PHOTO_MAX_SIDE)
        vec = check_embedding(embedding).tobytes()
        keys = self.db.keys
        with self.db.change() as change:
            employee_id, old = self._resolve(change.con, employee_id)
            if check is not None:
                check()
            person_id, wrapped = change.con.execute(
                "SELECT id, data_key FROM people WHERE employee_id=?", (employee_id,)).fetchone()
            try:
                cipher = keys.person(person_id, employee_id, wrapped)
            except GalleryError:
                cipher = None      # a damaged data key: the new photo comes with a new one
            if cipher is None:
                wrapped, cipher = keys.new(person_id, employee_id)
            fname, digest = self._write_photo(change, keys.seal(cipher, jpeg, crypto.PHOTO, person_id))
            change.con.execute(
                "UPDATE people SET photo_file=?, photo_digest=?, embedding=?, model_id=?, data_key=? WHERE id=?",
                (fname, digest, keys.seal(cipher, vec, crypto.EMBEDDING, person_id), model_id, wrapped, person_id))
            self._seal(change.con, person_id)
            change.obsolete.append(self.photos_dir / old)
            # learned templates were anchored to the old photo (templates.py): they go with it
            change.con.execute("DELETE FROM templates WHERE person_id=?", (person_id,))
        log.info("Replaced the photo of %s", employee_id)
        return self.person(employee_id)

    def rename(self, employee_id: str, name: str) -> Person:
        name = clean_text(name, "name")
        with self.db.change() as change:
            employee_id, _ = self._resolve(change.con, employee_id)
            change.con.execute("UPDATE people SET name=? WHERE employee_id=?", (name, employee_id))
            self._seal(change.con, employee_id)
        return self.person(employee_id)

    def set_active(self, employee_id: str, active: bool) -> Person:
        """Deactivate (never let in, kept in the gallery) or activate again."""
        with self.db.change() as change:
            employee_id, _ = self._resolve(change.con, employee_id)
            change.con.execute("UPDATE people SET active=? WHERE employee_id=?", (int(bool(active)), employee_id))
            self._seal(change.con, employee_id)
        log.info("%s %s", "Activated" if active else "Deactivated", employee_id)
        return self.person(employee_id)

    def set_valid_until(self, employee_id: str, until: float | None) -> Person:
        """Let the person in only before ``until`` (epoch seconds); None = no end date."""
        with self.db.change() as change:
            employee_id, _ = self._resolve(change.con, employee_id)
            change.con.execute("UPDATE people SET valid_until=? WHERE employee_id=?",
                               (None if until is None else float(until), employee_id))
            self._seal(change.con, employee_id)
        return self.person(employee_id)

    def change_id(self, employee_id: str, new_id: str) -> Person:
        """Give a person another employee id; their access-log rows follow them."""
        new_id = clean_id(new_id)
        with self.db.change() as change:
            con = change.con
            employee_id, _ = self._resolve(con, employee_id)
            if new_id == employee_id:
                return self._person(con.execute(f"SELECT {self._PERSON_COLUMNS} FROM people WHERE "
                                                "employee_id=?", (employee_id,)).fetchone())
            self._check_free(con, new_id, but=employee_id)
            person_id, wrapped = con.execute("SELECT id, data_key FROM people WHERE employee_id=?",
                                             (employee_id,)).fetchone()
            con.execute("UPDATE people SET employee_id=?, data_key=? WHERE id=?",
                        (new_id, self.db.keys.rewrap(person_id, employee_id, new_id, wrapped), person_id))
            self._seal(con, person_id)
            if not same_id(new_id, employee_id):
                integrity.bury(con, self.cipher.mac_key, employee_id)   # the old id is gone
            con.execute("UPDATE events SET employee_id=? WHERE employee_id=?", (new_id, employee_id))
        log.info("Changed employee id %s to %s", employee_id, new_id)
        return self.person(new_id)

    def touch_last_seen(self, employee_id: str, when: float | None = None) -> None:
        with self.db.change() as change:
            change.con.execute("UPDATE people SET last_seen=? WHERE employee_id=?",
                               (when or time.time(), employee_id))

    def remove(self, employee_id: str) -> str:
        """Erase a person: their row with their data key (so every copy of their photo,
        embedding and snapshots, wherever it lingers, can no longer be decrypted), the files,
        and their name and employee id from the access log and the log files. The access log's
        rows stay (the door opened at these times) under a pseudonym; returns it."""
        alias = "erased-" + secrets.token_hex(4)
        with self.db.change() as change:
            con = change.con
            employee_id, photo = self._resolve(con, employee_id)
            # The events table is the access log's (events.py); its snapshots go in this same
            # transaction, so a face never outlives the person's erasure.
            snaps = [r[0] for r in con.execute(
                "SELECT snapshot_file FROM events WHERE employee_id=? AND snapshot_file IS NOT NULL",
                (employee_id,))]
            names = {r[0] for r in con.execute(
                "SELECT name FROM people WHERE employee_id=? UNION "
                "SELECT DISTINCT name FROM events WHERE employee_id=? AND name IS NOT NULL",
                (employee_id, employee_id))}
            con.execute("UPDATE events SET snapshot_file=NULL, snapshot_key=NULL, employee_id=?, "
                        "name=NULL WHERE employee_id=?", (alias, employee_id))
            con.execute("DELETE FROM templates WHERE person_id IN (SELECT id FROM people WHERE employee_id=?)",
                        (employee_id,))   # learned templates (pins.py schema; templates.py)
            for word in {employee_id, *names}:   # "Lin recognised", "nearest Lin": the name goes too
                for event_id, reason in con.execute("SELECT id, reason FROM events WHERE instr(reason, ?) > 0",
                                                    (word,)).fetchall():
                    con.execute("UPDATE events SET reason=? WHERE id=?",
                                (erase_words(reason, [employee_id, *names]), event_id))
            con.execute("DELETE FROM people WHERE employee_id=?", (employee_id,))
            integrity.bury(con, self.cipher.mac_key, employee_id)
            change.obsolete.append(self.photos_dir / photo)
            change.obsolete.extend(self.snapshots_dir / s for s in snaps)
        # secure_delete zeroed the freed cells; the checkpoint moves that into the database
        # file and truncates the WAL, which held the rows (and the data key) too.
        self.db.checkpoint()
        files = {*attached_log_files(), paths.log_file()}
        masked = mask_words([f for base in files for f in log_files(base)], [employee_id, *names])
        log.info("Erased a person and %d snapshot(s); the access log calls them %s (%d mention(s) "
                 "masked in the log files)", len(snaps), alias, masked)
        return alias

    def next_expiry(self) -> float:
        """The next end date still to come (inf: none): the door rebuilds its matcher then, so a
        passed valid-until stops a door nothing else would wake (issue 22 item 3)."""
        now = time.time()
        return min((p.valid_until for p in self.people(active_only=False)
                    if p.valid_until is not None and p.valid_until > now), default=math.inf)

    def _seal(self, con: sqlite3.Connection, person: int | str) -> None:
        """The row's new change number and MAC (integrity.py), inside the caller's write."""
        if isinstance(person, str):
            person = con.execute("SELECT id FROM people WHERE employee_id=?", (person,)).fetchone()[0]
        integrity.seal(con, self.cipher.mac_key, person)

    def _write_photo(self, change, blob: bytes) -> tuple[str, str]:
        """(file name, digest) of a sealed photo written for the row about to name it."""
        return change.write_file(self.photos_dir, blob), rowmac.digest(blob)

    @staticmethod
    def _resolve(con: sqlite3.Connection, employee_id: str) -> tuple[str, str]:
        """(the id as stored, its photo file) for an id typed in any letter case."""
        employee_id = (employee_id or "").strip() if isinstance(employee_id, str) else ""
        employee_id = employee_id.encode("utf-8", "replace").decode("utf-8")   # lone surrogates
        row = con.execute("SELECT employee_id, photo_file FROM people WHERE employee_id=?",
                          (employee_id,)).fetchone()
        if row is None:
            rows = [r for r in con.execute("SELECT employee_id, photo_file FROM people")
                    if same_id(r[0], employee_id)]
            row = rows[0] if len(rows) == 1 else None   # two legacy ids differing in case: exact only
        if row is None:
            raise GalleryError(f"No person with employee id '{employee_id}' is enrolled.")
        return row[0], row[1]

    @classmethod
    def _photo_file(cls, con: sqlite3.Connection, employee_id: str) -> str:
        return cls._resolve(con, employee_id)[1]

    @staticmethod
    def _check_free(con: sqlite3.Connection, employee_id: str, but: str | None = None) -> None:
        for taken, name in con.execute("SELECT employee_id, name FROM people"):
            if taken != but and same_id(taken, employee_id):
                same = "" if taken == employee_id else f" as '{taken}' (ids ignore upper and lower case)"
                raise GalleryError(f"Employee id '{employee_id}' is already enrolled{same}: {name}. "
                                   "Choose another id, or replace that person's photo.")

    _PERSON_COLUMNS = "id, name, employee_id, created, consent_at, active, last_seen, model_id, valid_until"

    @staticmethod
    def _person(row) -> Person:
        valid_until = row[8]
        enabled = bool(row[5])
        active = enabled and (valid_until is None or valid_until > time.time())
        return Person(row[0], row[1], row[2], row[3], row[4], active, row[6], row[7], valid_until, enabled)

    def people(self, active_only: bool = True) -> list[Person]:
        where, args = (f"WHERE {ACTIVE_SQL}", (time.time(),)) if active_only else ("", ())
        with self.db.reading() as con:
            rows = con.execute(f"SELECT {self._PERSON_COLUMNS} FROM people {where} "
                               "ORDER BY name COLLATE NOCASE, employee_id", args).fetchall()
        return [self._person(r) for r in rows]

    def person(self, employee_id: str) -> Person | None:
        """The person with this employee id, typed in any letter case (None: nobody)."""
        with self.db.reading() as con:
            try:
                stored, _ = self._resolve(con, employee_id)
            except GalleryError:
                return None
            row = con.execute(f"SELECT {self._PERSON_COLUMNS} FROM people WHERE employee_id=?",
                              (stored,)).fetchone()
        return self._person(row) if row else None

    def __len__(self) -> int:
        with self.db.reading() as con:
            return con.execute("SELECT COUNT(*) FROM people").fetchone()[0]

    def _cipher(self, con: sqlite3.Connection, employee_id: str):
        """(row id, the person's cipher or None for legacy, photo file) of an enrolled person."""
        row = con.execute("SELECT id, data_key, photo_file FROM people WHERE employee_id=?",
                          (employee_id,)).fetchone()
        if row is None:
            raise GalleryError(f"No person with employee id '{employee_id}' is enrolled.")
        return row[0], self.db.keys.person(row[0], employee_id, row[1]), row[2]

    def photo_jpeg(self, employee_id: str) -> bytes:
        """The stored photo as JPEG bytes (decrypted, not re-encoded)."""
        with self.db.reading() as con:
            employee_id, _ = self._resolve(con, employee_id)
            person_id, cipher, name = self._cipher(con, employee_id)
        return self.db.read_sealed(self.photos_dir / name, cipher, crypto.PHOTO, person_id, "photo")

    def photo(self, employee_id: str) -> np.ndarray:
        """The stored photo as RGB uint8."""
        return decode_jpeg(self.photo_jpeg(employee_id), "photo")

    def embeddings(self, model_id: str, active_only: bool = True,
                   damaged: dict[str, str] | None = None) -> tuple[list[str], np.ndarray]:
        """(employee ids, float32 matrix [N, D]) of the people whose embedding ``model_id`` made;
        the matrix is [0, 0] when there are none. A damaged embedding raises GalleryError naming
        the person, unless ``damaged`` is given: then that person is left out and their problem
        put there ({employee id: problem}), so one bad row does not shut the door for everyone."""
        where, args = (f"AND {ACTIVE_SQL}", (time.time(),)) if active_only else ("", ())
        key = self.cipher.mac_key
        with self.db.reading() as con:
            rows = con.execute(f"SELECT {integrity.COLUMNS} FROM people WHERE "
                               f"model_id=? {where} ORDER BY id", (model_id, *args)).fetchall()
            buried = integrity.tombstones(con, key)
        ids, vecs = [], []
        for row in rows:
            r = (row[1], row[7], row[0], row[9])
            try:
                # Only a row whose MAC verifies may be matched (docs/decision-rule.md).
                if (why := integrity.problem(key, row, buried)) is not None:
                    raise GalleryError(f"The person with employee id '{row[1]}': {why}.")
                vecs.append(np.frombuffer(self._embedding(*r), np.float32))
            except GalleryError as exc:
                if damaged is None:
                    raise
                damaged[r[0]] = str(exc)
                log.error("left out of the door's matching: %s", exc)
                continue
            ids.append(r[0])
        if not ids:
            return [], np.zeros((0, 0), np.float32)
        return ids, np.stack(vecs)

    def _embedding(self, employee_id: str, blob: bytes, person_id: int, wrapped: bytes | None) -> bytes:
        keys = self.db.keys
        try:
            return keys.unseal(keys.person(person_id, employee_id, wrapped), blob, crypto.EMBEDDING,
                               person_id, "embedding")
        except GalleryError as exc:
            raise GalleryError(f"The face data of employee id '{employee_id}': {exc}") from exc

    def stale_count(self, model_id: str) -> int:
        """How many people have an embedding from a model other than ``model_id``."""
        with self.db.reading() as con:
            return con.execute("SELECT COUNT(*) FROM people WHERE model_id<>?", (model_id,)).fetchone()[0]

    def reembed(self, pipeline, progress: Callable[[int, int], None] | None = None) -> dict[str, str]:
        """Re-embed, from the stored photos, everyone whose embedding another model made.

        One small transaction per person, so an interruption leaves each person on the old or
        the new model (and ``embeddings()`` never mixes them). Returns {employee id: problem}
        for photos in which the pipeline finds no face; those people stay unmatchable until
        their photo is replaced.
        """
        model_id = pipeline.model_id
        with self.db.reading() as con:
            todo = [r[0] for r in con.execute(
                "SELECT employee_id FROM people WHERE model_id<>? ORDER BY id", (model_id,))]
        failed: dict[str, str] = {}
        for done, employee_id in enumerate(todo, 1):
            try:
                embedding = single_embedding(pipeline, self.photo(employee_id))
                with self.db.change() as change:
                    person_id, cipher, _ = self._cipher(change.con, employee_id)
                    emb = self.db.keys.seal(cipher, embedding.tobytes(), crypto.EMBEDDING, person_id)
                    change.con.execute("UPDATE people SET embedding=?, model_id=? WHERE id=?",
                                       (emb, model_id, person_id))
                    self._seal(change.con, person_id)
            except GalleryError as exc:
                failed[employee_id] = str(exc)
                log.warning("Re-embedding %s failed: %s", employee_id, exc)
            if progress:
                progress(done, len(todo))
        if todo:
            log.info("Re-embedded %d people with %s (%d failed)", len(todo) - len(failed), model_id, len(failed))
        return failed
