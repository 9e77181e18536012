"""The gallery's database and encrypted files: the floor that store.py and events.py stand on.

On disk (the data folder, ``paths.data_dir()`` unless told otherwise)::

    gallery.db          SQLite (WAL, shrunk back to 1 MB at checkpoints): people, events, meta, tombstones
    photos/<hex>.enc    one encrypted JPEG per person (the enrolment photo, ≤ 1024 px)
    snapshots/<hex>.enc encrypted face snapshots of the access log

Schema. ``MIGRATIONS`` is the ordered list of (version, step) pairs; ``PRAGMA user_version``
records the last step applied. Opening applies the missing steps, each in its own write
transaction together with its version bump, so an interrupted upgrade resumes where it stopped.
A database from a newer FaceGuard is refused untouched (never write a format not understood).

Crash safety. Every change runs in one write transaction (``BEGIN IMMEDIATE``); a new file is
written, fsynced and renamed BEFORE the row naming it commits, an obsolete one deleted only
AFTER. A crash leaves the old or the new rows, each naming a complete file, plus perhaps files
no row names: the start-up sweep (itself in a write transaction, so never racing another
process's change) moves those to ``quarantine/``, never deleting on its word alone. A database
that should exist but is empty, or whose write-ahead log is damaged, is refused (health.py).

Times are seconds since the epoch (float, UTC); ``iso`` is how they leave the gallery."""

from __future__ import annotations

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
from faceguard.gallery import crypto, health, integrity, keys, rekey
from faceguard.gallery.credentials import add_credential_v5
from faceguard.gallery.factor_schema import face_suspension_v7, pin_backoff_v9, second_factor_v5
from faceguard.gallery.messages import looks_corrupt as _looks_corrupt
from faceguard.gallery.messages import os_error_message, sqlite_message

log = logging.getLogger(__name__)

DB_NAME = "gallery.db"
PHOTOS = "photos"
SNAPSHOTS = "snapshots"
QUARANTINE = "quarantine"   # stored files no row named at start-up: kept, never deleted
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


def _people_valid_until_v3(con: sqlite3.Connection) -> None:
    """A person may be let in until a date (a temp, a contractor): NULL = no end."""
    con.execute("ALTER TABLE people ADD COLUMN valid_until REAL")


def _add_person_keys_v4(con: sqlite3.Connection) -> None:
    """Per-person data keys (gallery/keys.py): a person's wrapped key in their row, and which
    key encrypted each snapshot (NULL: legacy, 0: the gallery key, else the person's row id).
    The blobs of existing people are re-encrypted by rekey.py once the key is unlocked."""
    con.execute("ALTER TABLE people ADD COLUMN data_key BLOB")
    con.execute("ALTER TABLE events ADD COLUMN snapshot_key INTEGER")


Migration = tuple[int, Callable[[sqlite3.Connection], None]]

# Append a step per schema change, never edit a released one (older galleries upgrade step by
# step); ``con.execute`` only (executescript would commit half-way through a step).
MIGRATIONS: list[Migration] = [
    (1, _create_v1),
    (2, _events_evidence_v2),
    (3, _people_valid_until_v3),
    (4, _add_person_keys_v4),
    (5, second_factor_v5),     # PIN, auth mode, learned templates
    (6, add_credential_v5),    # OSDP credential number
    (7, face_suspension_v7),   # photo-check retries per person (issue 20)
    (8, integrity.add_row_macs_v5),   # row MACs over all the above, tombstones (issue 22)
    (9, pin_backoff_v9),       # wrong-PIN back-off per person, kept over a restart (issue 21)
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
        self.quarantine_dir = root / QUARANTINE
        self.key_file = key_file
        self.cipher = cipher                 # the gallery key: wraps data keys, legacy blobs
        self.keys = keys.KeyRing(cipher)
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
        has_files = health.has_stored_files(root, (PHOTOS, SNAPSHOTS), OUR_FILE)
        if not existed and has_files:
            # The sweep would quarantine every photo of a gallery whose database went missing.
            raise GalleryError(
                f"The photos folder in {root} holds stored photos, but the database file "
                f"{db_path.name} is missing. Restore it from your backup, or move the folder "
                "away to start an empty gallery.")
        # Checked before SQLite reads the files: closing a connection would checkpoint the
        # damaged log away, and with it the evidence.
        lost = health.lost_wal_commits(db_path) if existed else 0
        if lost:
            raise GalleryError(
                f"The gallery's write-ahead log {db_path}-wal is damaged: it holds {lost} saved "
                "change(s) (enrolments, removals or log entries) that can no longer be read. "
                "FaceGuard left every file untouched. Restore the data folder from your backup; "
                f"or, to give up those changes, move {db_path.name}-wal out of the folder and "
                "start again.")
        # Evidence that a gallery lived here, against which an empty database is a loss.
        evidence = ("its folders hold stored photos or snapshots" if has_files else
                    f"its key file {key_file} exists" if key_file.exists() else None)
        try:
            con = sqlite3.connect(db_path, timeout=15.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise GalleryError(
                f"The gallery database {db_path} cannot be opened ({exc}); check that the folder "
                "is writable.") from exc
        try:
            _prepare(con, db_path, migrations, evidence if existed else None)
            if not existed:
                try:  # names and employee ids are not encrypted: keep the file private to the user
                    os.chmod(db_path, 0o600)
                except OSError:
                    pass
                log.info("Created a new gallery database at %s", db_path)
            db = cls(con, root, keys.unlock(con, root, key_file, has_files), key_file)
            db.sweep()
            rekey.upgrade(db)      # a gallery from before per-person keys (schema step 2)
            integrity.seal_legacy(con, db.cipher.mac_key, db.photos_dir)   # before row MACs
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
        """Clear away what a crash left: temp files (never complete) are deleted; stored files
        no row names are MOVED to ``quarantine/``, never deleted, because a healthy-looking
        database may still be missing rows it once had (a restored old backup, a damaged log).
        Returns the paths cleared away (their old names)."""
        removed: list[Path] = []
        moved = 0
        with self.change() as change:
            for folder, names in self.named_files(change.con).items():
                for path in folder.iterdir():
                    if path.name in names or not path.is_file():
                        continue
                    if path.name.startswith(TMP_PREFIX):
                        change.obsolete.append(path)
                    elif OUR_FILE.match(path.name):
                        self.quarantine_dir.mkdir(exist_ok=True)
                        os.replace(path, self.quarantine_dir / f"{folder.name}-{path.name}")
                        moved += 1
                    else:
                        continue
                    removed.append(path)
            if moved:
                atomic.fsync_dir(self.quarantine_dir)
        if moved:
            log.warning("Start-up sweep moved %d stored file(s) that no row names to %s; delete "
                        "them once nobody is missing from the gallery", moved, self.quarantine_dir)
        if len(removed) > moved:
            log.info("Start-up sweep removed %d temp file(s) of an interrupted change", len(removed) - moved)
        return removed

    def read_encrypted(self, path: Path, purpose: bytes, what: str) -> bytes:
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise GalleryError(f"The stored {what} {path} cannot be read ({exc.strerror}).") from exc
        return self.cipher.decrypt(blob, purpose, what)

    def read_sealed(self, path: Path, cipher, purpose: bytes, row_id: int, what: str) -> bytes:
        """A stored file of row ``row_id`` (keys.py; ``cipher`` None = the legacy format)."""
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise GalleryError(f"The stored {what} {path} cannot be read ({exc.strerror}).") from exc
        return self.keys.unseal(cipher, blob, purpose, row_id, what)


def _prepare(con: sqlite3.Connection, db_path: Path, migrations: Sequence[Migration],
             evidence: str | None = None) -> None:
    """Check, configure and migrate; ``evidence`` (why a gallery must have lived here) makes
    an empty or never set-up database a loss to report, not a new gallery to start."""
    latest = migrations[-1][0]
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if evidence and version == 0 and not tables:
            size = db_path.stat().st_size
            state = "is empty (0 bytes)" if size == 0 else "holds no gallery"
            raise GalleryError(
                f"The gallery database {db_path} {state}, but {evidence}: the database was "
                "lost or damaged. FaceGuard left every file untouched. Restore gallery.db from "
                f"your backup. To start over with an empty gallery, move the folder {db_path.parent} "
                "and the key file elsewhere (keep the key: it is the only way to read backups).")
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
        if problem != "ok":   # a multi-line report: its first finding is the message's
            lines = [ln for ln in problem.splitlines() if ln.strip() and not ln.startswith("***")]
            raise sqlite3.DatabaseError((lines or ["malformed"])[0][:200])
        con.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the old photo file is deleted, even on power loss.
        con.execute("PRAGMA synchronous=FULL")
        # Erased rows are overwritten with zeros, not left in free pages.
        con.execute("PRAGMA secure_delete=ON")
        con.execute("PRAGMA journal_size_limit=1048576")   # a checkpointed WAL shrinks back to 1 MB
        _migrate(con, db_path, migrations)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and not _looks_corrupt(exc):
            raise GalleryError(sqlite_message(exc, db_path)) from exc
        raise GalleryError(
            f"The gallery database {db_path} is damaged or not a database ({exc}). FaceGuard "
            "left it untouched: restore it from a backup, or move it away to start an empty "
            "gallery.") from exc
