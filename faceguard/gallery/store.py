"""The people of the gallery: one photo and one embedding per employee.

The database, its schema, the transactions and the encrypted files are db.py's; this module
says what a person is and how one is enrolled, changed, re-embedded, checked and erased. The
access log (events.py) lives in the same database but is not imported here: erasing a person
clears their snapshots through the shared schema, in the same transaction.

Photos are RGB uint8 arrays. Embeddings are float32 unit vectors tagged with the model id that
made them; ``embeddings(model_id)`` returns only those of that model, so two models are never
compared.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceguard.errors import GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.db import Database, decode_jpeg, encode_jpeg, iso
from faceguard.vision.main_face import main_face

log = logging.getLogger(__name__)

PHOTO_MAX_SIDE = 1024


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    employee_id: str
    created: float
    consent_at: float
    active: bool
    last_seen: float | None
    model_id: str          # the model that made the stored embedding

    def to_dict(self) -> dict:
        return {
            "name": self.name, "employee_id": self.employee_id, "created": iso(self.created),
            "consent_at": iso(self.consent_at), "active": self.active,
            "last_seen": iso(self.last_seen) if self.last_seen else None, "model_id": self.model_id,
        }


def check_embedding(embedding: np.ndarray) -> np.ndarray:
    e = np.asarray(embedding, dtype=np.float32)
    if e.ndim != 1 or e.size == 0 or not np.all(np.isfinite(e)):
        raise GalleryError(f"An embedding must be a finite 1-D vector, not shape {e.shape}.")
    norm = float(np.linalg.norm(e))
    if abs(norm - 1.0) > 1e-3:
        raise GalleryError(f"An embedding must have unit length (this one has norm {norm:.3f}).")
    return e


def clean_text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise GalleryError(f"The {what} is empty; enter one.")
    if len(value) > 200 or any(ord(c) < 32 for c in value):
        raise GalleryError(f"The {what} must be one line of at most 200 characters.")
    return value


def single_embedding(pipeline, rgb: np.ndarray) -> np.ndarray:
    """The embedding of a stored photo's main face (enrolment made sure it has exactly one)."""
    best = main_face(pipeline.process(rgb), rgb.shape)
    if best is None:
        raise GalleryError("The pipeline finds no face in this photo; replace the photo.")
    return np.asarray(best.embedding, np.float32)


class Gallery:
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
                   model_id: str, consent_at: float | None = None) -> Person:
        """Enrol a person with their photo and its embedding; consent is recorded as now unless
        given. Raises GalleryError when the employee id is taken."""
        name = clean_text(name, "name")
        employee_id = clean_text(employee_id, "employee id")
        model_id = clean_text(model_id, "model id")
        photo = self.cipher.encrypt(encode_jpeg(photo_rgb, PHOTO_MAX_SIDE), crypto.PHOTO)
        emb = self.cipher.encrypt(check_embedding(embedding).tobytes(), crypto.EMBEDDING)
        now = time.time()
        with self.db.change() as change:
            taken = change.con.execute("SELECT name FROM people WHERE employee_id=?", (employee_id,)).fetchone()
            if taken:
                raise GalleryError(f"Employee id '{employee_id}' is already enrolled ({taken[0]}).")
            fname = change.write_file(self.photos_dir, photo)
            change.con.execute(
                "INSERT INTO people (name, employee_id, created, consent_at, active, photo_file, "
                "embedding, model_id) VALUES (?,?,?,?,1,?,?,?)",
                (name, employee_id, now, consent_at or now, fname, emb, model_id))
        log.info("Enrolled %s (%s)", name, employee_id)
        return self.person(employee_id)

    def replace_photo(self, employee_id: str, photo_rgb: np.ndarray, embedding: np.ndarray,
                      model_id: str) -> Person:
        photo = self.cipher.encrypt(encode_jpeg(photo_rgb, PHOTO_MAX_SIDE), crypto.PHOTO)
        emb = self.cipher.encrypt(check_embedding(embedding).tobytes(), crypto.EMBEDDING)
        with self.db.change() as change:
            old = self._photo_file(change.con, employee_id)
            fname = change.write_file(self.photos_dir, photo)
            change.con.execute("UPDATE people SET photo_file=?, embedding=?, model_id=? WHERE employee_id=?",
                               (fname, emb, model_id, employee_id))
            change.obsolete.append(self.photos_dir / old)
        log.info("Replaced the photo of %s", employee_id)
        return self.person(employee_id)

    def rename(self, employee_id: str, name: str) -> Person:
        name = clean_text(name, "name")
        with self.db.change() as change:
            self._photo_file(change.con, employee_id)
            change.con.execute("UPDATE people SET name=? WHERE employee_id=?", (name, employee_id))
        return self.person(employee_id)

    def set_active(self, employee_id: str, active: bool) -> Person:
        with self.db.change() as change:
            self._photo_file(change.con, employee_id)
            change.con.execute("UPDATE people SET active=? WHERE employee_id=?", (int(bool(active)), employee_id))
        return self.person(employee_id)

    def touch_last_seen(self, employee_id: str, when: float | None = None) -> None:
        with self.db.change() as change:
            change.con.execute("UPDATE people SET last_seen=? WHERE employee_id=?",
                               (when or time.time(), employee_id))

    def remove(self, employee_id: str) -> None:
        """Erase a person: their row, embedding, photo file and access-log snapshots. The log's
        rows stay (who came in when) without the face."""
        with self.db.change() as change:
            con = change.con
            photo = self._photo_file(con, employee_id)
            # The events table is the access log's (events.py); its snapshots go in this same
            # transaction, so a face never outlives the person's erasure.
            snaps = [r[0] for r in con.execute(
                "SELECT snapshot_file FROM events WHERE employee_id=? AND snapshot_file IS NOT NULL",
                (employee_id,))]
            con.execute("UPDATE events SET snapshot_file=NULL WHERE employee_id=?", (employee_id,))
            con.execute("DELETE FROM people WHERE employee_id=?", (employee_id,))
            change.obsolete.append(self.photos_dir / photo)
            change.obsolete.extend(self.snapshots_dir / s for s in snaps)
        self.db.checkpoint()
        log.info("Removed %s and %d snapshot(s)", employee_id, len(snaps))

    @staticmethod
    def _photo_file(con: sqlite3.Connection, employee_id: str) -> str:
        row = con.execute("SELECT photo_file FROM people WHERE employee_id=?", (employee_id,)).fetchone()
        if row is None:
            raise GalleryError(f"No person with employee id '{employee_id}' is enrolled.")
        return row[0]

    _PERSON_COLUMNS = "id, name, employee_id, created, consent_at, active, last_seen, model_id"

    @staticmethod
    def _person(row) -> Person:
        return Person(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7])

    def people(self, active_only: bool = True) -> list[Person]:
        where = "WHERE active=1" if active_only else ""
        with self.db.reading() as con:
            rows = con.execute(f"SELECT {self._PERSON_COLUMNS} FROM people {where} "
                               "ORDER BY name COLLATE NOCASE, employee_id").fetchall()
        return [self._person(r) for r in rows]

    def person(self, employee_id: str) -> Person | None:
        with self.db.reading() as con:
            row = con.execute(f"SELECT {self._PERSON_COLUMNS} FROM people WHERE employee_id=?",
                              (employee_id,)).fetchone()
        return self._person(row) if row else None

    def __len__(self) -> int:
        with self.db.reading() as con:
            return con.execute("SELECT COUNT(*) FROM people").fetchone()[0]

    def photo_jpeg(self, employee_id: str) -> bytes:
        """The stored photo as JPEG bytes (decrypted, not re-encoded)."""
        with self.db.reading() as con:
            name = self._photo_file(con, employee_id)
        return self.db.read_encrypted(self.photos_dir / name, crypto.PHOTO, "photo")

    def photo(self, employee_id: str) -> np.ndarray:
        """The stored photo as RGB uint8."""
        return decode_jpeg(self.photo_jpeg(employee_id), "photo")

    def embeddings(self, model_id: str, active_only: bool = True) -> tuple[list[str], np.ndarray]:
        """(employee ids, float32 matrix [N, D]) of the people whose embedding ``model_id`` made;
        the matrix is [0, 0] when there are none."""
        where = "AND active=1" if active_only else ""
        with self.db.reading() as con:
            rows = con.execute(f"SELECT employee_id, embedding FROM people WHERE model_id=? {where} "
                               "ORDER BY id", (model_id,)).fetchall()
        if not rows:
            return [], np.zeros((0, 0), np.float32)
        vecs = [np.frombuffer(self.cipher.decrypt(bytes(b), crypto.EMBEDDING, "embedding"), np.float32)
                for _, b in rows]
        return [r[0] for r in rows], np.stack(vecs)

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
                emb = self.cipher.encrypt(embedding.tobytes(), crypto.EMBEDDING)
                with self.db.change() as change:
                    change.con.execute("UPDATE people SET embedding=?, model_id=? WHERE employee_id=?",
                                       (emb, model_id, employee_id))
            except GalleryError as exc:
                failed[employee_id] = str(exc)
                log.warning("Re-embedding %s failed: %s", employee_id, exc)
            if progress:
                progress(done, len(todo))
        if todo:
            log.info("Re-embedded %d people with %s (%d failed)", len(todo) - len(failed), model_id, len(failed))
        return failed

    # -- checks --------------------------------------------------------------------------------
    def check(self, model_id: str | None = None) -> list[str]:
        """Problems found, as sentences (empty = healthy): database integrity, every person has a
        readable photo and an embedding (of ``model_id`` when given), every file belongs to someone."""
        problems: list[str] = []
        with self.db.reading() as con:
            result = [r[0] for r in con.execute("PRAGMA integrity_check")]
            rows = con.execute("SELECT employee_id, name, photo_file, embedding, model_id FROM people").fetchall()
            named = self.db.named_files(con)
        if result != ["ok"]:
            problems.append(f"The database is damaged: {'; '.join(result[:5])}")
        dims = set()
        for employee_id, name, photo_file, emb_blob, mid in rows:
            who = f"{name} ({employee_id})"
            try:
                self.db.read_image(self.photos_dir / photo_file, crypto.PHOTO, "photo")
            except GalleryError as exc:
                problems.append(f"{who}: {exc}")
            try:
                vec = np.frombuffer(self.cipher.decrypt(bytes(emb_blob), crypto.EMBEDDING, "embedding"), np.float32)
                if not np.isfinite(vec).all() or abs(float(np.linalg.norm(vec)) - 1) > 1e-3:
                    problems.append(f"{who}: the stored embedding is not a unit vector.")
                dims.add((mid, vec.size))
            except GalleryError as exc:
                problems.append(f"{who}: {exc}")
            if model_id and mid != model_id:
                problems.append(f"{who}: the embedding was made by model '{mid}', not the current "
                                f"'{model_id}'; re-embed the gallery.")
        for folder, names in named.items():
            present = {p.name for p in folder.iterdir()}
            for extra in sorted(present - names):
                problems.append(f"The file {folder / extra} belongs to no one.")
            if folder == self.snapshots_dir:   # a person without a photo is reported above
                for missing in sorted(names - present):
                    problems.append(f"The access-log snapshot {folder / missing} is missing.")
        return problems
