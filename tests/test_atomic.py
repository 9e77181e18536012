"""faceguard.atomic on real files: the old file or the whole new one, never half, no leftovers."""

from __future__ import annotations

import os
import resource
import signal
from pathlib import Path

import pytest

from faceguard.atomic import (
    TMP_PREFIX,
    atomic_open,
    atomic_path,
    write_bytes_atomic,
    write_text_atomic,
)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_write_creates_private_file_and_replaces(tmp_path):
    target = tmp_path / "a.bin"
    write_bytes_atomic(target, b"first")
    assert target.read_bytes() == b"first" and target.stat().st_mode & 0o777 == 0o600
    umask = os.umask(0)
    os.umask(umask)
    write_bytes_atomic(target, b"second", mode=0o644)          # the umask applies, as for open()
    assert target.read_bytes() == b"second" and target.stat().st_mode & 0o777 == 0o644 & ~umask
    write_text_atomic(tmp_path / "t.txt", "zoë\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "zoë\n"
    assert leftovers(tmp_path) == []


def test_failure_mid_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "log.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, text=True, newline="") as fh:
            fh.write("half of the new")
            raise RuntimeError("the writer failed")
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_no_replace_keeps_an_existing_file(tmp_path):
    target = tmp_path / "gallery.key"
    write_bytes_atomic(target, b"mine", replace=False)
    with pytest.raises(FileExistsError):
        write_bytes_atomic(target, b"theirs", replace=False)
    assert target.read_bytes() == b"mine" and leftovers(tmp_path) == []


def test_full_disk_keeps_the_old_file(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG instead of death
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, old_limit[1]))
    try:
        with pytest.raises(OSError):
            write_bytes_atomic(target, b"x" * 100_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_atomic_path_for_writers_that_want_a_name(tmp_path):
    target = tmp_path / "model.onnx"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and not target.exists()
        tmp.write_bytes(b"graph")
    assert target.read_bytes() == b"graph"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"broken gra")
            raise ValueError("export failed")
    assert target.read_bytes() == b"graph" and leftovers(tmp_path) == []


def test_missing_folder_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "no-such-folder" / "x", b"x")
