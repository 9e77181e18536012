"""A little disk space held back for the access log (issue 22 item 10).

On a full disk SQLite cannot append a log entry, and the door would go on deciding with its log
silently gone. The door keeps a reserve file in the data folder; when a log write fails it
deletes the reserve, checkpoints the WAL (folding it into the database and truncating it), and
tries once more, so the entry that found the disk full is still written. What cannot be written
after that is counted and reported (the JSON line, the window, the exit status), never silent.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_NAME = "disk-reserve.bin"
RESERVE_BYTES = 512 << 10


def ensure(data_dir: Path, size: int | None = None) -> bool:
    """Make the reserve if it is missing (True: it is there now). Written, not sparse, so the
    blocks are really taken."""
    size = RESERVE_BYTES if size is None else size
    path = Path(data_dir) / RESERVE_NAME
    try:
        if path.is_file() and path.stat().st_size >= size:
            return True
        with open(path, "wb") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
        return True
    except OSError as exc:
        log.warning("No disk reserve for the access log in %s (%s): the disk is nearly full", data_dir, exc)
        path.unlink(missing_ok=True)
        return False


def release(data_dir: Path) -> bool:
    """Free the reserve (True: there was one to free)."""
    path = Path(data_dir) / RESERVE_NAME
    try:
        path.unlink()
    except OSError:
        return False
    log.error("The disk is full: the access log's reserve in %s was used; free disk space", data_dir)
    return True
