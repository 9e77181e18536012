"""Checks on files a user hands FaceGuard, before anything reads them.

A path may name a FIFO (``open`` blocks until a writer comes), a device such as /dev/zero
(``read`` never ends), a folder, or a file far larger than anything FaceGuard reads. Each is
refused here with one sentence naming the file, raised as the caller's error class. Standard
library plus errors.py only: every layer may use this.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from faceguard.errors import FaceGuardError


def check_regular_file(path: Path, limit: int, what: str = "file",
                       error: type[FaceGuardError] = FaceGuardError) -> int:
    """The size of ``path`` when it is a regular file of at most ``limit`` bytes; ``error``
    (naming the file and ``what`` it should be) otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: file not found.") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror}).") from exc
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a folder, not {what}.")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: is not a regular file (a device, pipe or socket); give {what}.")
    if st.st_size > limit:
        raise error(f"{path}: the file is too large ({_mb(st.st_size)}; at most {_mb(limit)} for {what}).")
    return st.st_size


def read_limited(path: Path, limit: int, what: str = "file",
                 error: type[FaceGuardError] = FaceGuardError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (checked again while reading:
    the file may grow after the check)."""
    check_regular_file(path, limit, what, error)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror}).") from exc
    if len(data) > limit:
        raise error(f"{path}: the file is too large (more than {_mb(limit)} for {what}).")
    return data


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def check_output_file(path: Path, what: str, error: type[FaceGuardError] = FaceGuardError,
                      example: str = "export.zip") -> None:
    """Refuse an output path that names a folder, a device or pipe (an atomic write would
    rename a regular file over /dev/null), or lies in a folder that does not exist."""
    if not path.name or path.name in (".", ".."):
        raise error(f"{path} is not a file name; give one such as {example} for {what}.")
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise error(f"{path} cannot be written ({exc.strerror}).") from exc
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise error(f"{path} is a folder; give a file name such as {path / example} for {what}.")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise error(f"{path} is not a regular file (a device, pipe or socket); give a file name for {what}.")
    if not path.parent.is_dir():
        raise error(f"The folder {path.parent} for {what} does not exist.")
