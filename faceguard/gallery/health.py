"""Is the gallery database on disk one we may open, or one whose loss we must not paper over?

Two ways a gallery can look new or smaller than it is, and then lose its photos to the
start-up sweep (which keeps only the files rows name):

- ``gallery.db`` emptied (0 bytes) or never set up while the gallery's key file exists or its
  folders hold stored files: SQLite would happily start a new, empty database;
- a damaged write-ahead log (``gallery.db-wal``): SQLite reads a WAL up to its first frame that
  fails its checksum and silently ignores the rest, committed transactions included, so a
  recent enrolment vanishes without an error.

Both are checked before SQLite touches the files (closing the last connection checkpoints the
WAL and deletes it, destroying the evidence).

WAL format (sqlite.org/fileformat2.html#walformat): a 32-byte header (magic, version, page
size, checkpoint sequence, two salts, a checksum of the first 24 bytes), then frames of a
24-byte header (page number, database size after a commit or 0, the two salts, a cumulative
checksum) and one page. A frame is valid when its salts match the header's and its checksum
continues the chain. Each frame stores its running checksum, so a frame beyond the first bad
one can still be checked against its predecessor alone. A commit frame that passes that local
check but lies beyond the valid end is a transaction that was written completely and then
damaged: a process killed mid-write leaves only a torn tail (never a complete commit frame after
a torn one), and a transaction written over such a tail re-chains everything it covers.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

WAL_MAGIC_LE = 0x377F0682    # checksums over little-endian words
WAL_MAGIC_BE = 0x377F0683    # over big-endian words
_WAL_HEADER = 32
_FRAME_HEADER = 24
_MAX_WAL_BYTES = 512 << 20   # larger than any WAL of ours (auto-checkpoint at ~4 MB): not checked


def _checksum(data: bytes, order: str, s1: int = 0, s2: int = 0) -> tuple[int, int]:
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s1 = (s1 + words[i] + s2) & 0xFFFFFFFF
        s2 = (s2 + words[i + 1] + s1) & 0xFFFFFFFF
    return s1, s2


def _db_page_size(db_path: Path) -> int | None:
    try:
        with open(db_path, "rb") as fh:
            head = fh.read(18)
    except OSError:
        return None
    if len(head) < 18 or not head.startswith(b"SQLite format 3\x00"):
        return None
    size = struct.unpack(">H", head[16:18])[0]
    return 65536 if size == 1 else size


def _valid_page_size(n: int) -> bool:
    return 512 <= n <= 65536 and n & (n - 1) == 0


def lost_wal_commits(db_path: Path, looks: int = 3) -> int:
    """How many committed transactions the WAL beside ``db_path`` holds that SQLite will not
    read because the log is damaged before them (0: none, or no WAL).

    A running door appends to the WAL while this reads it, and one read() is not a snapshot:
    a frame read just before the writer reached it and its successors read just after look
    like a damaged frame followed by a good commit. Real damage stays; such a race does not
    repeat, so the answer is the least of ``looks`` reads a moment apart."""
    lost = _lost_once(db_path)
    for _ in range(looks - 1):
        if not lost:
            break
        time.sleep(0.05)
        lost = min(lost, _lost_once(db_path))
    return lost


def _lost_once(db_path: Path) -> int:
    wal = Path(str(db_path) + "-wal")
    try:
        if not wal.is_file() or wal.stat().st_size > _MAX_WAL_BYTES:
            return 0
        data = wal.read_bytes()
    except OSError:
        return 0
    if len(data) < _WAL_HEADER + _FRAME_HEADER:
        return 0
    magic, _version, page_size = struct.unpack(">III", data[:12])
    order = ">" if magic == WAL_MAGIC_BE else "<"
    if not _valid_page_size(page_size):
        page_size = _db_page_size(db_path) or 4096
    salt = data[16:24]
    header_ok = magic in (WAL_MAGIC_LE, WAL_MAGIC_BE) and \
        _checksum(data[:24], order) == struct.unpack(">II", data[24:32])
    prev = struct.unpack(">II", data[24:32])
    in_chain = header_ok          # still inside the prefix SQLite reads
    lost = 0
    frame = _FRAME_HEADER + page_size
    for off in range(_WAL_HEADER, len(data) - frame + 1, frame):
        head = data[off:off + _FRAME_HEADER]
        stored = struct.unpack(">II", head[16:24])
        locally_ok = head[8:16] == salt and \
            _checksum(data[off + _FRAME_HEADER:off + frame], order,
                      *_checksum(head[:8], order, *prev)) == stored
        commit = struct.unpack(">I", head[4:8])[0] != 0
        if not (in_chain and locally_ok):
            in_chain = False
            if locally_ok and commit:
                lost += 1
        prev = stored
    return lost


def has_stored_files(root: Path, folders: tuple[str, ...], pattern) -> bool:
    for sub in folders:
        try:
            if any(pattern.match(p.name) for p in (root / sub).iterdir()):
                return True
        except OSError:
            continue
    return False
