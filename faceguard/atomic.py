"""Durable file replacement: a reader sees the old file or the complete new one, never half.

Every write goes to a temp name in the destination's own folder (a rename is only atomic within
one file system), is fsynced, renamed over the destination with ``os.replace`` and then the
folder is fsynced, so the rename itself survives a power cut. If anything fails the temp file
is removed and the destination is left as it was.

Temp names start with ``TMP_PREFIX`` and end with ``.tmp``: the gallery's start-up sweep
removes such leftovers of a killed process. Standard library only: every layer may use this.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TMP_PREFIX = ".tmp-"


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); Windows cannot open folders and needs no
    such step, so failing to open one is not an error."""
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


def temp_name(path: Path) -> Path:
    """A fresh temp name beside ``path`` (unique, so concurrent writers never share one)."""
    return path.with_name(f"{TMP_PREFIX}{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, path: Path, replace: bool) -> None:
    if replace:
        os.replace(tmp, path)
    else:
        # link() fails when the name exists, so a file another process made meanwhile is kept.
        os.link(tmp, path)
        tmp.unlink()
    fsync_dir(path.parent)


@contextmanager
def atomic_path(path: Path, *, replace: bool = True) -> Iterator[Path]:
    """For writers that want a file name (``torch.onnx.export``): yields a temp path to write;
    on leaving, it is fsynced and renamed to ``path``. The writer creates the file, so its
    permissions follow the umask; use ``atomic_open`` for private files."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        _fsync_file(tmp)
        _publish(tmp, path, replace)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: Path, mode: int = 0o600, *, text: bool = False, encoding: str = "utf-8",
                newline: str | None = None, replace: bool = True) -> Iterator[IO]:
    """Yields a new file (binary, or text when ``text``) that becomes ``path`` when the block
    ends without an exception. ``mode`` is set when the temp file is created, so the data is
    never readable by others, not even for a moment. ``replace=False`` raises
    FileExistsError instead of replacing an existing ``path``."""
    path = Path(path)
    tmp = temp_name(path)
    # O_EXCL: never write through a file or link someone placed at the temp name.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w" if text else "wb", encoding=encoding if text else None,
                       newline=newline if text else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, path, replace)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o600, *, replace: bool = True) -> None:
    """Replace ``path`` with ``data`` durably (see the module docstring); OSError on failure,
    with ``path`` unchanged and no temp file left."""
    with atomic_open(path, mode, replace=replace) as fh:
        fh.write(data)


def write_text_atomic(path: Path, text: str, mode: int = 0o600, *, encoding: str = "utf-8",
                      replace: bool = True) -> None:
    write_bytes_atomic(path, text.encode(encoding), mode, replace=replace)
