"""Work-around for a PySide6 6.12 binding bug on Python < 3.12.

Measured here (PySide6-Essentials 6.12.0, Python 3.11.7): every Qt call that returns void
(QLabel.setText, QPainter.setPen, QWidget.update …) takes one reference from None without
having given it one. On 3.12+ None is immortal and nothing happens; on 3.11 the count reaches
zero after a few thousand calls and the interpreter aborts ("deallocating None"), which a door
check painting 30 frames a second hits within seconds. Until the bindings are fixed, we give
the references back: the count is raised in place (CPython keeps ob_refcnt at offset 0), which
costs no memory, unlike holding a list of references.
"""

from __future__ import annotations

import ctypes
import sys

NEEDED = sys.version_info < (3, 12) and sys.implementation.name == "cpython"
LOW_WATER = 1_000_000
TOP_UP_TO = 100_000_000


def ensure_none_refs() -> None:
    """Cheap when nothing is needed; call it often (each paint, each result, a 1 s timer).

    True and False are topped up too: calls returning bool were seen to abort the same way
    ("deallocating True or False") at exit after a long run.
    """
    if not NEEDED:
        return
    for obj in (None, True, False):
        have = sys.getrefcount(obj)
        if have < LOW_WATER:
            ctypes.c_ssize_t.from_address(id(obj)).value += TOP_UP_TO - have


ensure_none_refs()
