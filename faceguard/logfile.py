"""FaceGuard's log file: private to the user (0600, rotations included), and scrubbed of an
erased person's name and employee id.

The log names people (who was let in, who was enrolled), so it is as private as the gallery's
names: a plain RotatingFileHandler would create it, and each rotation, with the umask's 0644.
Erasing a person must also erase them from the log: ``mask_words`` overwrites every occurrence
in place with asterisks of the same length, so a door process appending to the same file
meanwhile loses nothing (its offsets stay valid). Standard library only: every layer may use it.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
from collections.abc import Iterable
from pathlib import Path


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files are created 0600 (and tightened if found wider)."""

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
        except OSError:
            pass   # not ours to change (another user's file); writing still works or fails below
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


def log_files(base: Path, count: int = 9) -> list[Path]:
    """The log file and its rotations (``faceguard.log``, ``.1`` … ``.count``) that exist."""
    candidates = [base] + [base.with_name(f"{base.name}.{i}") for i in range(1, count + 1)]
    return [p for p in candidates if p.is_file()]


def attached_log_files() -> list[Path]:
    """The base files of the file handlers on the root logger."""
    return [Path(h.baseFilename) for h in logging.getLogger().handlers
            if isinstance(h, logging.FileHandler)]


def mask_words(files: Iterable[Path], words: Iterable[str]) -> int:
    """Overwrite each whole-word occurrence of ``words`` in ``files`` with asterisks, in place;
    returns how many were masked. A file that cannot be opened is skipped."""
    needles = sorted({w.strip().encode("utf-8") for w in words if w and w.strip()}, key=len, reverse=True)
    if not needles:
        return 0
    pattern = re.compile(rb"(?<![\w])(?:" + b"|".join(re.escape(n) for n in needles) + rb")(?![\w])")
    masked = 0
    for path in dict.fromkeys(files):
        try:
            with open(path, "r+b") as fh:
                data = fh.read()
                for m in pattern.finditer(data):
                    fh.seek(m.start())
                    fh.write(b"*" * (m.end() - m.start()))
                    masked += 1
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            continue
    return masked
