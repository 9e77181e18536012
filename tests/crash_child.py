"""Helper for test_crash_safety.py: a fork server whose children change a gallery until killed.

Usage: ``python crash_child.py DATA_DIR KEY_FILE JOURNAL``. The imports are paid once here; for
each ``run SEED`` line on stdin the server forks a child, prints ``pid N`` and waits for a
``reap`` line before collecting it (so the pid stays valid while the test kills it), then prints
``exit STATUS``. ``quit`` ends the server.

Each child opens the gallery (start-up sweep included) and runs enrol / replace-photo / remove
operations back to back. Around each one it appends to JOURNAL, unbuffered: ``B <op> <id> <v>``
before and ``E`` after, so the test knows which operation a kill may have interrupted. Photo
version ``v`` is encoded in the photo's colour and the embedding, see ``photo_for`` and
``embedding_for``; nothing here runs a model.
"""

from __future__ import annotations

import os
import random
import sys
import traceback
from pathlib import Path

import numpy as np

from faceguard.gallery.store import Gallery

DIM = 8
OPS_PER_CHILD = 40


def colour_for(version: int) -> int:
    return 20 + (version * 37) % 200


def photo_for(version: int) -> np.ndarray:
    return np.full((40, 32, 3), colour_for(version), np.uint8)


def embedding_for(version: int) -> np.ndarray:
    v = np.random.default_rng(version).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _child(root: Path, key: Path, journal: Path, seed: int) -> None:
    rng = random.Random(seed)
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(line: str) -> None:
        os.write(fd, (line + "\n").encode())

    gallery = Gallery.open(root, key)
    ids = [p.employee_id for p in gallery.people(active_only=False)]
    for i in range(OPS_PER_CHILD):
        version = seed * 1000 + i               # unique across children: ids and photo versions
        if len(ids) < 2:
            op = "add"
        else:
            op = rng.choices(["add", "replace", "remove"], weights=[3, 4, 3])[0]
        if op == "add":
            employee_id = f"E{version}"
            note(f"B add {employee_id} {version}")
            gallery.add_person(f"Person {version}", employee_id, photo_for(version),
                               embedding_for(version), "m")
            ids.append(employee_id)
        elif op == "replace":
            employee_id = rng.choice(ids)
            note(f"B replace {employee_id} {version}")
            gallery.replace_photo(employee_id, photo_for(version), embedding_for(version), "m")
        else:
            employee_id = rng.choice(ids)
            note(f"B remove {employee_id} 0")
            gallery.remove(employee_id)
            ids.remove(employee_id)
        note("E")


def main() -> int:
    root, key, journal = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            return 0
        if words[0] != "run":
            continue
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                _child(root, key, journal, int(words[1]))
            except BaseException:  # noqa: BLE001 (a forked child must report anything, then _exit)
                traceback.print_exc()
                status = 3
            os._exit(status)
        print(f"pid {pid}", flush=True)
        sys.stdin.readline()                   # "reap"
        _, status = os.waitpid(pid, 0)
        print(f"exit {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
