"""Sentences a user can act on for the OS and SQLite errors of the gallery's files."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path


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
    if looks_corrupt(exc):
        return f"The gallery database {db} is damaged ({text}); restore it from a backup."
    return f"The gallery database {db} reported an error: {text}."


def looks_corrupt(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(w in text for w in ("not a database", "malformed", "corrupt", "encrypted", "disk image"))
