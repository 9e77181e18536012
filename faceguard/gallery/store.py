"""The gallery: one photo and one embedding per employee, in SQLite plus encrypted files.

On disk (the data folder, ``paths.data_dir()`` unless told otherwise)::

    gallery.db          SQLite (WAL): people, events (see events.py), meta
    photos/<hex>.enc    one encrypted JPEG per person (the enrolment photo, ≤ 1024 px)
    snapshots/<hex>.enc encrypted face snapshots of the access log

Crash safety. Every change runs in one SQLite write transaction (``BEGIN IMMEDIATE``), and
files follow one order: a new file is written to a ``.tmp-`` name, fsynced and renamed BEFORE
the row that names it commits; a file that a change makes obsolete is deleted only AFTER the
commit. A crash therefore leaves either the old or the new rows, each naming a complete file,
plus at most some files that no row names. The start-up sweep deletes those; it runs inside a
write transaction too, so it never deletes the file of another process's change in flight
(that process holds the write lock until it commits).

Times are seconds since the epoch (float, UTC). Photos are RGB uint8 arrays. Embeddings are
float32 unit vectors tagged with the model id that made them; ``embeddings(model_id)`` returns
only those of that model, so two models are never compared.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from faceguard import paths
from faceguard.errors import FaceGuardError, GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.events import EVENTS_SCHEMA

log = logging.getLogger(__name__)

DB_NAME = "gallery.db"
PHOTOS = "photos"
SNAPSHOTS = "snapshots"
TMP_PREFIX = ".tmp-"
FILE_SUFFIX = ".enc"
PHOTO_MAX_SIDE = 1024
JPEG_QUALITY = 92
SCHEMA_VERSION = 1
EXPORT_FORMAT = "faceguard-gallery"
_OUR_FILE = re.compile(r"^[0-9a-f]{32}\.enc$")
_MAX_IMPORT_PHOTO_BYTES = 30 << 20   # refuse zip members bigger than this (zip bombs)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    employee_id TEXT NOT NULL UNIQUE,
    created     REAL NOT NULL,
    consent_at  REAL NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    last_seen   REAL,
    photo_file  TEXT NOT NULL UNIQUE,
    embedding   BLOB NOT NULL,          -- encrypted float32 bytes
    model_id    TEXT NOT NULL
);
""" + EVENTS_SCHEMA


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


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)      # employee ids
    updated: list[str] = field(default_factory=list)    # existing ids whose photo/name were replaced
    failed: dict[str, str] = field(default_factory=dict)  # employee id (or entry) -> reason


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# -- small file helpers ----------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); Windows cannot open folders and needs no such step."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def os_error_message(exc: OSError, folder: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"The disk holding {folder} is full; nothing was changed. Free some space and try again."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"The gallery folder {folder} is read-only for FaceGuard; nothing was changed. "
                "Check the folder's permissions or choose another data folder.")
    return f"Writing to the gallery folder {folder} failed ({exc.strerror or exc}); nothing was changed."


def encode_jpeg(rgb: np.ndarray, max_side: int, quality: int = JPEG_QUALITY) -> bytes:
    rgb = _check_rgb(rgb)
    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        f = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise GalleryError("The photo could not be encoded as JPEG.")
    return buf.tobytes()


def decode_jpeg(data: bytes, what: str) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise GalleryError(f"The stored {what} is not a readable image.")
    return np.ascontiguousarray(img[:, :, ::-1])


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise GalleryError(f"A photo must be an RGB uint8 image [H, W, 3], not {rgb.dtype} {rgb.shape}.")
    return rgb


def _check_embedding(embedding: np.ndarray) -> np.ndarray:
    e = np.asarray(embedding, dtype=np.float32)
    if e.ndim != 1 or e.size == 0 or not np.all(np.isfinite(e)):
        raise GalleryError(f"An embedding must be a finite 1-D vector, not shape {e.shape}.")
    norm = float(np.linalg.norm(e))
    if abs(norm - 1.0) > 1e-3:
        raise GalleryError(f"An embedding must have unit length (this one has norm {norm:.3f}).")
    return e


def _clean_text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise GalleryError(f"The {what} is empty; enter one.")
    if len(value) > 200 or any(ord(c) < 32 for c in value):
        raise GalleryError(f"The {what} must be one line of at most 200 characters.")
    return value


class _Change:
    """The files one transaction creates (removed again if it does not commit) and makes
    obsolete (removed only after it commits)."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con
        self.created: list[Path] = []
        self.obsolete: list[Path] = []

    def write_file(self, folder: Path, data: bytes) -> str:
        name = uuid.uuid4().hex + FILE_SUFFIX
        tmp = folder / (TMP_PREFIX + name)
        try:
            _write_durably(tmp, data)
            os.replace(tmp, folder / name)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        self.created.append(folder / name)
        _fsync_dir(folder)
        return name


class Gallery:
    """The people of one office. Open with ``Gallery.open()``; thread-safe (one lock)."""

    def __init__(self, con: sqlite3.Connection, root: Path, cipher: crypto.Cipher, key_file: Path):
        self._con = con
        self.root = root
        self.photos_dir = root / PHOTOS
        self.snapshots_dir = root / SNAPSHOTS
        self.key_file = key_file
        self.cipher = cipher
        self._lock = threading.RLock()

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, data_dir: Path | None = None, key_file: Path | None = None) -> Gallery:
        """Open (or create) the gallery in ``data_dir``; sweeps files a crash left behind."""
        root = Path(data_dir) if data_dir else paths.data_dir()
        key_file = Path(key_file) if key_file else crypto.default_key_file()
        db_path = root / DB_NAME
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in (PHOTOS, SNAPSHOTS):
                (root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise GalleryError(f"The gallery folder {root} cannot be created ({exc.strerror}).") from exc
        existed = db_path.exists()
        if not existed and any(_OUR_FILE.match(p.name) for p in (root / PHOTOS).iterdir()):
            # The sweep would delete every photo of a gallery whose database went missing.
            raise GalleryError(
                f"The photos folder in {root} holds stored photos, but the database file "
                f"{db_path.name} is missing. Restore it from your backup, or move the folder "
                "away to start an empty gallery.")
        try:
            con = sqlite3.connect(db_path, timeout=15.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise GalleryError(
                f"The gallery database {db_path} cannot be opened ({exc}); check that the folder "
                "is writable.") from exc
        try:
            cls._prepare(con, db_path, existed)
            cipher = cls._unlock(con, root, key_file)
            gallery = cls(con, root, cipher, key_file)
            gallery.sweep()
        except BaseException:
            con.close()
            raise
        return gallery

    @staticmethod
    def _prepare(con: sqlite3.Connection, db_path: Path, existed: bool) -> None:
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and ("people" not in tables or version != SCHEMA_VERSION):
                raise GalleryError(
                    f"{db_path} is an SQLite file but not a FaceGuard gallery (or one from a newer "
                    "version). It was left untouched; choose another data folder.")
            problem = con.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(problem)
            con.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the old photo file is deleted, even on power loss.
            con.execute("PRAGMA synchronous=FULL")
            # Erased rows are overwritten with zeros, not left in free pages.
            con.execute("PRAGMA secure_delete=ON")
            if not tables:
                con.executescript(_SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _looks_corrupt(exc):
                raise GalleryError(sqlite_message(exc, db_path)) from exc
            raise GalleryError(
                f"The gallery database {db_path} is damaged or not a database ({exc}). FaceGuard "
                "left it untouched: restore it from a backup, or move it away to start an empty "
                "gallery.") from exc
        if not existed:
            try:  # names and employee ids are not encrypted: keep the file private to the user
                os.chmod(db_path, 0o600)
            except OSError:
                pass
            log.info("Created a new gallery database at %s", db_path)

    @staticmethod
    def _unlock(con: sqlite3.Connection, root: Path, key_file: Path) -> crypto.Cipher:
        """The cipher for this gallery; creates a key only where no encrypted data exists yet."""
        row = con.execute("SELECT value FROM meta WHERE key='key_check'").fetchone()
        key = crypto.read_key(key_file)
        if key is None:
            has_files = any(_OUR_FILE.match(p.name) for sub in (PHOTOS, SNAPSHOTS)
                            for p in (root / sub).iterdir())
            people = con.execute("SELECT COUNT(*) FROM people").fetchone()[0]
            if row is not None or has_files or people:
                raise GalleryError(
                    f"The gallery in {root} is encrypted, and its key file {key_file} is missing. "
                    "Without that key the photos, face data and snapshots cannot be read. Restore "
                    "the key file from your backup; FaceGuard never makes a new key over existing "
                    "data. To start over with an empty gallery, move the folder away.")
            key = crypto.create_key(key_file)
        cipher = crypto.Cipher(key)
        if row is None:
            try:
                con.execute("INSERT OR IGNORE INTO meta VALUES ('key_check', ?)",
                            (cipher.encrypt(b"faceguard", crypto.KEY_CHECK),))
            except sqlite3.Error as exc:
                raise GalleryError(f"The gallery database in {root} cannot be written ({exc}).") from exc
        else:
            try:
                cipher.decrypt(bytes(row[0]), crypto.KEY_CHECK)
            except GalleryError:
                raise GalleryError(
                    f"The key file {key_file} does not belong to the gallery in {root}: its photos "
                    "and face data cannot be decrypted. Restore the matching key file.") from None
        return cipher

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------------
    @contextmanager
    def _change(self) -> Iterator[_Change]:
        """One write transaction with the file ordering described in the module docstring."""
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._db_error(exc) from exc
            change = _Change(self._con)
            try:
                yield change
                self._con.execute("COMMIT")
            except BaseException as exc:
                try:
                    self._con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                for path in change.created:
                    path.unlink(missing_ok=True)
                if isinstance(exc, sqlite3.Error):
                    raise self._db_error(exc) from exc
                if isinstance(exc, OSError):
                    raise GalleryError(os_error_message(exc, self.root)) from exc
                raise
            for path in change.obsolete:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:  # the next sweep removes it
                    log.warning("Could not delete %s (%s)", path, exc)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._con
            except sqlite3.Error as exc:
                raise self._db_error(exc) from exc

    def _db_error(self, exc: sqlite3.Error) -> GalleryError:
        return GalleryError(sqlite_message(exc, self.root / DB_NAME))

    def sweep(self) -> list[Path]:
        """Delete files no row names (left by a crash) and temp files; returns what was deleted."""
        removed: list[Path] = []
        with self._change() as change:
            con = change.con
            names = {r[0] for r in con.execute("SELECT photo_file FROM people")}
            names |= {r[0] for r in con.execute(
                "SELECT snapshot_file FROM events WHERE snapshot_file IS NOT NULL")}
            for folder in (self.photos_dir, self.snapshots_dir):
                for path in folder.iterdir():
                    ours = path.name.startswith(TMP_PREFIX) or _OUR_FILE.match(path.name)
                    if ours and path.name not in names and path.is_file():
                        change.obsolete.append(path)
                        removed.append(path)
        if removed:
            log.info("Start-up sweep removed %d file(s) left by an interrupted change", len(removed))
        return removed

    # -- people --------------------------------------------------------------------------------
    def add_person(self, name: str, employee_id: str, photo_rgb: np.ndarray, embedding: np.ndarray,
                   model_id: str, consent_at: float | None = None) -> Person:
        """Enrol a person with their photo and its embedding; consent is recorded as now unless
        given. Raises GalleryError when the employee id is taken."""
        name = _clean_text(name, "name")
        employee_id = _clean_text(employee_id, "employee id")
        model_id = _clean_text(model_id, "model id")
        photo = self.cipher.encrypt(encode_jpeg(photo_rgb, PHOTO_MAX_SIDE), crypto.PHOTO)
        emb = self.cipher.encrypt(_check_embedding(embedding).tobytes(), crypto.EMBEDDING)
        now = time.time()
        with self._change() as change:
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
        emb = self.cipher.encrypt(_check_embedding(embedding).tobytes(), crypto.EMBEDDING)
        with self._change() as change:
            old = self._photo_file(change.con, employee_id)
            fname = change.write_file(self.photos_dir, photo)
            change.con.execute("UPDATE people SET photo_file=?, embedding=?, model_id=? WHERE employee_id=?",
                               (fname, emb, model_id, employee_id))
            change.obsolete.append(self.photos_dir / old)
        log.info("Replaced the photo of %s", employee_id)
        return self.person(employee_id)

    def rename(self, employee_id: str, name: str) -> Person:
        name = _clean_text(name, "name")
        with self._change() as change:
            self._photo_file(change.con, employee_id)
            change.con.execute("UPDATE people SET name=? WHERE employee_id=?", (name, employee_id))
        return self.person(employee_id)

    def set_active(self, employee_id: str, active: bool) -> Person:
        with self._change() as change:
            self._photo_file(change.con, employee_id)
            change.con.execute("UPDATE people SET active=? WHERE employee_id=?", (int(bool(active)), employee_id))
        return self.person(employee_id)

    def touch_last_seen(self, employee_id: str, when: float | None = None) -> None:
        with self._change() as change:
            change.con.execute("UPDATE people SET last_seen=? WHERE employee_id=?",
                               (when or time.time(), employee_id))

    def remove(self, employee_id: str) -> None:
        """Erase a person: their row, embedding, photo file and access-log snapshots. The log's
        rows stay (who came in when) without the face."""
        with self._change() as change:
            con = change.con
            photo = self._photo_file(con, employee_id)
            snaps = [r[0] for r in con.execute(
                "SELECT snapshot_file FROM events WHERE employee_id=? AND snapshot_file IS NOT NULL",
                (employee_id,))]
            con.execute("UPDATE events SET snapshot_file=NULL WHERE employee_id=?", (employee_id,))
            con.execute("DELETE FROM people WHERE employee_id=?", (employee_id,))
            change.obsolete.append(self.photos_dir / photo)
            change.obsolete.extend(self.snapshots_dir / s for s in snaps)
        self._checkpoint()
        log.info("Removed %s and %d snapshot(s)", employee_id, len(snaps))

    def _checkpoint(self) -> None:
        """Fold the WAL into the database so erased rows leave the WAL file too."""
        with self._lock:
            try:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed (%s); it happens later", exc)

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
        with self._reading() as con:
            rows = con.execute(f"SELECT {self._PERSON_COLUMNS} FROM people {where} "
                               "ORDER BY name COLLATE NOCASE, employee_id").fetchall()
        return [self._person(r) for r in rows]

    def person(self, employee_id: str) -> Person | None:
        with self._reading() as con:
            row = con.execute(f"SELECT {self._PERSON_COLUMNS} FROM people WHERE employee_id=?",
                              (employee_id,)).fetchone()
        return self._person(row) if row else None

    def __len__(self) -> int:
        with self._reading() as con:
            return con.execute("SELECT COUNT(*) FROM people").fetchone()[0]

    def photo(self, employee_id: str) -> np.ndarray:
        """The stored photo as RGB uint8."""
        with self._reading() as con:
            name = self._photo_file(con, employee_id)
        return decode_jpeg(self._read_encrypted(self.photos_dir / name, crypto.PHOTO, "photo"), "photo")

    def _read_encrypted(self, path: Path, purpose: bytes, what: str) -> bytes:
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise GalleryError(f"The stored {what} {path} cannot be read ({exc.strerror}).") from exc
        return self.cipher.decrypt(blob, purpose, what)

    def embeddings(self, model_id: str, active_only: bool = True) -> tuple[list[str], np.ndarray]:
        """(employee ids, float32 matrix [N, D]) of the people whose embedding ``model_id`` made;
        the matrix is [0, 0] when there are none."""
        where = "AND active=1" if active_only else ""
        with self._reading() as con:
            rows = con.execute(f"SELECT employee_id, embedding FROM people WHERE model_id=? {where} "
                               "ORDER BY id", (model_id,)).fetchall()
        if not rows:
            return [], np.zeros((0, 0), np.float32)
        vecs = [np.frombuffer(self.cipher.decrypt(bytes(b), crypto.EMBEDDING, "embedding"), np.float32)
                for _, b in rows]
        return [r[0] for r in rows], np.stack(vecs)

    def stale_count(self, model_id: str) -> int:
        """How many people have an embedding from a model other than ``model_id``."""
        with self._reading() as con:
            return con.execute("SELECT COUNT(*) FROM people WHERE model_id<>?", (model_id,)).fetchone()[0]

    def reembed(self, pipeline, progress: Callable[[int, int], None] | None = None) -> dict[str, str]:
        """Re-embed, from the stored photos, everyone whose embedding another model made.

        One small transaction per person, so an interruption leaves each person on the old or
        the new model (and ``embeddings()`` never mixes them). Returns {employee id: problem}
        for photos in which the pipeline finds no face; those people stay unmatchable until
        their photo is replaced.
        """
        model_id = pipeline.model_id
        with self._reading() as con:
            todo = [r[0] for r in con.execute(
                "SELECT employee_id FROM people WHERE model_id<>? ORDER BY id", (model_id,))]
        failed: dict[str, str] = {}
        for done, employee_id in enumerate(todo, 1):
            try:
                embedding = _single_embedding(pipeline, self.photo(employee_id))
                emb = self.cipher.encrypt(embedding.tobytes(), crypto.EMBEDDING)
                with self._change() as change:
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
        with self._reading() as con:
            result = [r[0] for r in con.execute("PRAGMA integrity_check")]
            rows = con.execute("SELECT employee_id, name, photo_file, embedding, model_id FROM people").fetchall()
            snaps = {r[0] for r in con.execute("SELECT snapshot_file FROM events WHERE snapshot_file IS NOT NULL")}
        if result != ["ok"]:
            problems.append(f"The database is damaged: {'; '.join(result[:5])}")
        dims = set()
        for employee_id, name, photo_file, emb_blob, mid in rows:
            who = f"{name} ({employee_id})"
            try:
                decode_jpeg(self._read_encrypted(self.photos_dir / photo_file, crypto.PHOTO, "photo"), "photo")
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
        photo_names = {r[2] for r in rows}
        for folder, names in ((self.photos_dir, photo_names), (self.snapshots_dir, snaps)):
            present = {p.name for p in folder.iterdir()}
            for extra in sorted(present - names):
                problems.append(f"The file {folder / extra} belongs to no one.")
            if folder == self.snapshots_dir:
                for missing in sorted(names - present):
                    problems.append(f"The access-log snapshot {folder / missing} is missing.")
        return problems

    # -- export / import -----------------------------------------------------------------------
    def export_zip(self, path: Path) -> int:
        """Write every person (photo as plain JPEG + gallery.json) to one zip; returns the count.
        The zip is NOT encrypted: it holds faces, so keep it as safe as the people's photos."""
        path = Path(path)
        people = self.people(active_only=False)
        entries = []
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
                for i, p in enumerate(people):
                    with self._reading() as con:
                        fname = self._photo_file(con, p.employee_id)
                    jpeg = self._read_encrypted(self.photos_dir / fname, crypto.PHOTO, "photo")
                    member = f"photos/{i:05d}.jpg"
                    zf.writestr(member, jpeg)
                    entries.append({**p.to_dict(), "photo": member})
                doc = {"format": EXPORT_FORMAT, "version": 1, "exported_at": iso(time.time()), "people": entries}
                zf.writestr("gallery.json", json.dumps(doc, indent=2, ensure_ascii=False))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise GalleryError(f"The export {path} could not be written ({exc.strerror or exc}).") from exc
        finally:
            tmp.unlink(missing_ok=True)
        log.info("Exported %d people to %s", len(entries), path)
        return len(entries)

    def import_zip(self, path: Path, pipeline) -> ImportReport:
        """Add the people of an exported zip, embedding their photos with ``pipeline``. An
        employee id already here is the same person: their name, photo and active flag are
        replaced. Each person is added on their own; a bad entry is reported, not fatal."""
        path = Path(path)
        try:
            zf = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise GalleryError(f"{path} is not a readable zip file ({exc}).") from exc
        report = ImportReport()
        with zf:
            try:
                doc = json.loads(zf.read("gallery.json"))
            except KeyError:
                raise GalleryError(f"{path} holds no gallery.json; it is not a FaceGuard gallery export.") from None
            except (ValueError, zipfile.BadZipFile) as exc:
                raise GalleryError(f"The gallery.json in {path} is damaged ({exc}).") from exc
            if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT or not isinstance(doc.get("people"), list):
                raise GalleryError(f"{path} is not a FaceGuard gallery export.")
            for n, entry in enumerate(doc["people"], 1):
                label = str(entry.get("employee_id") or f"entry {n}") if isinstance(entry, dict) else f"entry {n}"
                try:
                    self._import_one(zf, entry, pipeline, report)
                except (FaceGuardError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
                    report.failed[label] = str(exc) if isinstance(exc, FaceGuardError) else f"bad entry ({exc!r})"
        log.info("Imported %s: %d added, %d updated, %d failed", path, len(report.added),
                 len(report.updated), len(report.failed))
        return report

    def _import_one(self, zf: zipfile.ZipFile, entry: dict, pipeline, report: ImportReport) -> None:
        employee_id = _clean_text(str(entry["employee_id"]), "employee id")
        name = _clean_text(str(entry["name"]), "name")
        info = zf.getinfo(str(entry["photo"]))
        if info.file_size > _MAX_IMPORT_PHOTO_BYTES:
            raise GalleryError(f"The photo of {employee_id} is too large ({info.file_size} bytes).")
        rgb = decode_jpeg(zf.read(info), "photo in the zip")
        embedding = _single_embedding(pipeline, rgb)
        consent_at = parse_iso(entry["consent_at"]) if entry.get("consent_at") else None
        if consent_at is None:
            raise GalleryError(f"The entry of {employee_id} records no consent; it was not imported.")
        if self.person(employee_id) is None:
            self.add_person(name, employee_id, rgb, embedding, pipeline.model_id, consent_at=consent_at)
            report.added.append(employee_id)
        else:
            self.replace_photo(employee_id, rgb, embedding, pipeline.model_id)
            self.rename(employee_id, name)
            report.updated.append(employee_id)
        if not entry.get("active", True):
            self.set_active(employee_id, False)


def _single_embedding(pipeline, rgb: np.ndarray) -> np.ndarray:
    """The embedding of the largest face in a stored photo (enrolment made sure there is one)."""
    results = pipeline.process(rgb)
    if not results:
        raise GalleryError("The pipeline finds no face in this photo; replace the photo.")
    best = max(results, key=lambda r: float((r.box[2] - r.box[0]) * (r.box[3] - r.box[1])))
    return np.asarray(best.embedding, np.float32)


def sqlite_message(exc: sqlite3.Error, db: Path) -> str:
    """A sentence a user can act on for an SQLite error on the gallery database ``db``."""
    text = str(exc)
    if "full" in text:
        return f"The disk holding {db} is full; nothing was changed. Free some space and try again."
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return (f"The gallery database {db} or its folder is read-only for FaceGuard; nothing was "
                "changed. Check the folder's permissions or choose another data folder.")
    if "locked" in text or "busy" in text:
        return "The gallery is busy (another FaceGuard program is changing it); try again."
    if "I/O error" in text:
        return f"Writing the gallery database {db} failed (disk I/O error); nothing was changed."
    if _looks_corrupt(exc):
        return f"The gallery database {db} is damaged ({text}); restore it from a backup."
    return f"The gallery database {db} reported an error: {text}."


def _looks_corrupt(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(w in text for w in ("not a database", "malformed", "corrupt", "encrypted", "disk image"))
