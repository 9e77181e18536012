"""One door check per data folder.

Two FaceGuards on one gallery would both open the door for one visit and log it twice, so the
first door check takes an exclusive lock on a file in the data folder and holds it for the
life of the process; a second process is refused with a message naming the holder. The lock
is the operating system's (flock), so it is released when the process ends, however it ends:
no stale lock after a crash. Within one process the lock is taken once (the window restarts
its door check after every settings change).
"""

from __future__ import annotations

import os
from pathlib import Path

from faceguard.errors import FaceGuardError

try:
    import fcntl
except ImportError:  # Windows: no flock; one instance is then the user's to keep
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "door.lock"
_held: dict[Path, int] = {}   # data folder → open lock file descriptor, for this process


class AlreadyRunningError(FaceGuardError):
    """Another FaceGuard process runs a door check on the same data folder."""


def claim_data_folder(folder: Path) -> None:
    """Hold the data folder's door lock for this process, or raise AlreadyRunningError."""
    folder = Path(folder).resolve()
    if fcntl is None or folder in _held:
        return
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise AlreadyRunningError(
            f"FaceGuard is already running a door check on {folder} (process {holder}). Close "
            "that one first: two would open the door for one visit and log it twice.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
    _held[folder] = fd
