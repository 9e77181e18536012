"""The gallery's database and encrypted files: the floor that store.py and events.py stand on.

On disk (the data folder, ``paths.data_dir()`` unless told otherwise)::

    gallery.db          SQLite (WAL): people, events, meta
    photos/<hex>.enc    one encrypted JPEG per person (the enrolment photo, ≤ 1024 px)
    snapshots/<hex>.enc encrypted face snapshots of the access log

Schema. ``MIGRATIONS`` is the ordered list of (version, step) pairs; ``PRAGMA user_version``
records the last step applied. Opening applies the missing steps, each in its own write
transaction together with its version bump, so an interrupted upgrade resumes where it stopped.
A database from a newer FaceGuard (a version this code does not know) is refused untouched:
an older program must never write into a format it does not understand.

Crash safety. Every change runs in one SQLite write transaction (``BEGIN IMMEDIATE``), and
files follow one order: a new file is written to a temp name, fsynced and renamed BEFORE the
row that names it commits; a file that a change makes obsolete is deleted only AFTER the
commit. A crash therefore leaves either the old or the new rows, each naming a complete file,
plus at most some files that no row names. The start-up sweep deletes those; it runs inside a
write transaction too, so it never deletes the file of another process's change in flight
(that process holds the write lock until it commits).

Times are stored as seconds since the epoch (float, UTC); ``iso`` is how they leave the gallery.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from faceguard import atomic, paths
from faceguard.errors import GalleryError
from faceguard.gallery import crypto

log = logging.getLogger(__name__)

DB_NAME = "gallery.db"
PHOTOS = "photos"
SNAPSHOTS = "snapshots"
TMP_PREFIX = atomic.TMP_PREFIX
FILE_SUFFIX = ".enc"
JPEG_QUALITY = 92
OUR_FILE = re.compile(r"^[0-9a-f]{32}\.enc$")

# Which column names the files of which folder: the sweep keeps exactly the files named here.
FILE_COLUMNS = {PHOTOS: ("people", "photo_file"), SNAPSHOTS: ("events", "snapshot_file")}


# -- schema ------------------------------------------------------------------------------------
def _create_v1(con: sqlite3.Connection) -> None:
    """The first schema: people with their encrypted embedding, the access log, and meta."""
    for statement in (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
        """CREATE TABLE people (
            id          INTEGER PRIMARY KEY,
            name        TEXT NOT NULL,
            employee_id TEXT NOT NULL UNIQUE,
            created     REAL NOT NULL,
            consent_at  REAL NOT NULL,
            active      INTEGER NOT NULL DEFAULT 1,
            last_seen   REAL,
            photo_file  TEXT NOT NULL UNIQUE,
            embedding   BLOB NOT NULL,          -- encrypted float32 bytes
            model_id    TEXT NOT NULL)""",
        """CREATE TABLE events (
            id            INTEGER PRIMARY KEY,
            time          REAL NOT NULL,
            employee_id   TEXT,                 -- NULL: a stranger
            name          TEXT,
            distance      REAL,
            threshold     REAL,
            decision      TEXT NOT NULL,
            reason        TEXT NOT NULL DEFAULT '',
            door_result   TEXT NOT NULL DEFAULT '',
            snapshot_file TEXT UNIQUE)""",
        "CREATE INDEX events_time ON events(time)",
        "CREATE INDEX events_employee ON events(employee_id)",
    ):
        con.execute(statement)


def _events_evidence_v2(con: sqlite3.Connection) -> None:
    """The numbers behind a decision (the photo check's motion, each challenge's direction,
    outcome, movement and times) as JSON fields of its access-log entry."""
    con.execute("ALTER TABLE events ADD COLUMN evidence TEXT NOT NULL DEFAULT ''")


Migration = tuple[int, Callable[[sqlite3.Connection], None]]

# Append a step for every schema change, never edit a released one: a gallery of any older
# version must keep upgrading step by step. A step uses ``con.execute`` only (executescript
# would commit half-way and break the one-transaction-per-step rule).
MIGRATIONS: list[Migration] = [
    (1, _create_v1),
    (2, _events_evidence_v2),
]


def check_migrations(migrations: Sequence[Migration]) -> int:
    """The schema version ``migrations`` lead to; ValueError unless they number 1, 2, 3, …"""
    versions = [v for v, _ in migrations]
    if not versions or versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"schema migrations must be numbered 1, 2, 3, … in order, not {versions}")
    return versions[-1]


SCHEMA_VERSION = check_migrations(MIGRATIONS)


def _migrate(con: sqlite3.Connection, db_path: Path, migrations: Sequence[Migration]) -> None:
    for target, step in migrations:
        con.execute("BEGIN IMMEDIATE")
        # Read the version under the write lock: another process may have upgraded meanwhile.
        current = con.execute("PRAGMA user_version").fetchone()[0]
        if current >= target:
            con.execute("ROLLBACK")
            continue
        try:
            step(con)
            con.execute(f"PRAGMA user_version={int(target)}")
            con.execute("COMMIT")
        except BaseException as exc:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(exc, sqlite3.Error) and not _looks_corrupt(exc):
                raise GalleryError(
                    f"The gallery database {db_path} could not be updated to the format of this "
                    f"FaceGuard version (schema {current} to {target}): {sqlite_message(exc, db_path)} "
                    "It was left in its previous format; fix the cause and open it again.") from exc
            raise
        log.info("Gallery database %s updated to schema version %d", db_path, target)


# -- time and images ---------------------------------------------------------------------------
def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise GalleryError(f"A photo must be an RGB uint8 image [H, W, 3], not {rgb.dtype} {rgb.shape}.")
    return rgb


def encode_jpeg(rgb: np.ndarray, max_side: int, quality: int = JPEG_QUALITY) -> bytes:
    rgb = check_rgb(rgb)
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


# -- transactions ------------------------------------------------------------------------------
class Change:
    """The files one transaction creates (removed again if it does not commit) and makes
    obsolete (removed only after it commits)."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con
        self.created: list[Path] = []
        self.obsolete: list[Path] = []

    def write_file(self, folder: Path, data: bytes) -> str:
        """Store ``data`` (already encrypted) durably under a new name in ``folder``, before
        the row naming it commits; returns the name."""
        name = uuid.uuid4().hex + FILE_SUFFIX
        atomic.write_bytes_atomic(folder / name, data, 0o600)
        self.created.append(folder / name)
        return name


class Database:
    """One open gallery database with its folders and cipher; thread-safe (one lock).
    Open with ``Database.open()``; ``change()`` writes, ``reading()`` reads."""

    def __init__(self, con: sqlite3.Connection, root: Path, cipher: crypto.Cipher, key_file: Path):
        self.con = con
        self.root = root
        self.path = root / DB_NAME
        self.photos_dir = root / PHOTOS
        self.snapshots_dir = root / SNAPSHOTS
        self.key_file = key_file
        self.cipher = cipher
        self.lock = threading.RLock()

    @classmethod
    def open(cls, data_dir: Path | None = None, key_file: Path | None = None,
             migrations: Sequence[Migration] = MIGRATIONS) -> Database:
        """Open (or create) the database in ``data_dir``, bring its schema up to date and sweep
        the files a crash left behind."""
        check_migrations(migrations)
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
        if not existed and any(OUR_FILE.match(p.name) for p in (root / PHOTOS).iterdir()):
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
            _prepare(con, db_path, migrations)
            if not existed:
                try:  # names and employee ids are not encrypted: keep the file private to the user
                    os.chmod(db_path, 0o600)
                except OSError:
                    pass
                log.info("Created a new gallery database at %s", db_path)
            db = cls(con, root, _unlock(con, root, key_file), key_file)
            db.sweep()
        except BaseException:
            con.close()
            raise
        return db

    def close(self) -> None:
        with self.lock:
            self.con.close()

    @contextmanager
    def change(self) -> Iterator[Change]:
        """One write transaction with the file ordering described in the module docstring."""
        with self.lock:
            try:
                self.con.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self.error(exc) from exc
            change = Change(self.con)
            try:
                yield change
                self.con.execute("COMMIT")
            except BaseException as exc:
                try:
                    self.con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                for path in change.created:
                    path.unlink(missing_ok=True)
                if isinstance(exc, sqlite3.Error):
                    raise self.error(exc) from exc
                if isinstance(exc, OSError):
                    raise GalleryError(os_error_message(exc, self.root)) from exc
                raise
            for path in change.obsolete:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:  # the next sweep removes it
                    log.warning("Could not delete %s (%s)", path, exc)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            try:
                yield self.con
            except sqlite3.Error as exc:
                raise self.error(exc) from exc

    def data_version(self) -> int:
        """A number that changes whenever ANOTHER connection commits (e.g. `faceguard gallery
        remove` while the door runs): cheap enough to ask every frame."""
        with self.reading() as con:
            return int(con.execute("PRAGMA data_version").fetchone()[0])

    def error(self, exc: sqlite3.Error) -> GalleryError:
        return GalleryError(sqlite_message(exc, self.path))

    def checkpoint(self) -> None:
        """Fold the WAL into the database so erased rows leave the WAL file too."""
        with self.lock:
            try:
                self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed (%s); it happens later", exc)

    def named_files(self, con: sqlite3.Connection) -> dict[Path, set[str]]:
        """Folder → the file names its rows name (see FILE_COLUMNS)."""
        return {self.root / folder: {r[0] for r in con.execute(
                    f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")}
                for folder, (table, column) in FILE_COLUMNS.items()}

    def sweep(self) -> list[Path]:
        """Delete files no row names (left by a crash) and temp files; returns what was deleted."""
        removed: list[Path] = []
        with self.change() as change:
            for folder, names in self.named_files(change.con).items():
                for path in folder.iterdir():
                    ours = path.name.startswith(TMP_PREFIX) or OUR_FILE.match(path.name)
                    if ours and path.name not in names and path.is_file():
                        change.obsolete.append(path)
                        removed.append(path)
        if removed:
            log.info("Start-up sweep removed %d file(s) left by an interrupted change", len(removed))
        return removed

    def read_encrypted(self, path: Path, purpose: bytes, what: str) -> bytes:
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise GalleryError(f"The stored {what} {path} cannot be read ({exc.strerror}).") from exc
        return self.cipher.decrypt(blob, purpose, what)

    def read_image(self, path: Path, purpose: bytes, what: str) -> np.ndarray:
        """A stored encrypted JPEG as RGB uint8."""
        return decode_jpeg(self.read_encrypted(path, purpose, what), what)


def _prepare(con: sqlite3.Connection, db_path: Path, migrations: Sequence[Migration]) -> None:
    latest = migrations[-1][0]
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version > latest:
            raise GalleryError(
                f"The gallery database {db_path} was made by a newer version of FaceGuard (its "
                f"format is version {version}; this FaceGuard knows up to version {latest}). It "
                "was left untouched: install the newer FaceGuard again, or choose another data "
                "folder.")
        if tables and (version == 0 or "people" not in tables):
            raise GalleryError(
                f"{db_path} is an SQLite file but not a FaceGuard gallery. It was left "
                "untouched; choose another data folder.")
        problem = con.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(problem)
        con.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the old photo file is deleted, even on power loss.
        con.execute("PRAGMA synchronous=FULL")
        # Erased rows are overwritten with zeros, not left in free pages.
        con.execute("PRAGMA secure_delete=ON")
        _migrate(con, db_path, migrations)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and not _looks_corrupt(exc):
            raise GalleryError(sqlite_message(exc, db_path)) from exc
        raise GalleryError(
            f"The gallery database {db_path} is damaged or not a database ({exc}). FaceGuard "
            "left it untouched: restore it from a backup, or move it away to start an empty "
            "gallery.") from exc


def _unlock(con: sqlite3.Connection, root: Path, key_file: Path) -> crypto.Cipher:
    """The cipher for this gallery; creates a key only where no encrypted data exists yet."""
    row = con.execute("SELECT value FROM meta WHERE key='key_check'").fetchone()
    key = crypto.read_key(key_file)
    if key is None:
        has_files = any(OUR_FILE.match(p.name) for sub in (PHOTOS, SNAPSHOTS)
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


# -- errors a user can act on ------------------------------------------------------------------
def os_error_message(exc: OSError, folder: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"The disk holding {folder} is full; nothing was changed. Free some space and try again."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"The gallery folder {folder} is read-only for FaceGuard; nothing was changed. "
                "Check the folder's permissions or choose another data folder.")
    return f"Writing to the gallery folder {folder} failed ({exc.strerror or exc}); nothing was changed."


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
