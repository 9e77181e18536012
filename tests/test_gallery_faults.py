"""Issue 15, item 2: a gallery whose database was emptied, rolled back or whose write-ahead log
is damaged is refused, and the start-up sweep never deletes a stored file. Real SQLite files."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from faceguard.cli import main
from faceguard.errors import GalleryError
from faceguard.gallery.db import DB_NAME
from faceguard.gallery.health import lost_wal_commits
from faceguard.gallery.store import Gallery


def unit(seed: int, dim: int = 16) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def face(value: int) -> np.ndarray:
    return np.full((60, 50, 3), value, np.uint8)


def stored(root: Path) -> dict[str, bytes]:
    """Every stored photo and snapshot, by folder/name."""
    return {f"{p.parent.name}/{p.name}": p.read_bytes()
            for sub in ("photos", "snapshots") for p in (root / sub).glob("*.enc")}


def one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture
def two_people() -> Path:
    with Gallery.open() as g:
        g.add_person("Ana Lima", "E1", face(100), unit(1), "m")
        g.add_person("Bo Chen", "E2", face(150), unit(2), "m")
        return g.root


def test_emptied_database_is_refused_and_nothing_is_swept(two_people, capsys):
    root = two_people
    files = stored(root)
    (root / DB_NAME).write_bytes(b"")                       # `: > gallery.db`
    err = one_line_error(capsys, ["gallery", "list"])
    assert "gallery.db" in err and "is empty (0 bytes)" in err and "backup" in err
    assert stored(root) == files and (root / DB_NAME).stat().st_size == 0
    assert not (root / "quarantine").exists()


def test_emptied_database_with_only_the_key_left_is_refused(tmp_path):
    root, key = tmp_path / "data", tmp_path / "gallery.key"
    Gallery.open(root, key).close()                         # a gallery lived here: its key exists
    (root / DB_NAME).write_bytes(b"")
    with pytest.raises(GalleryError, match="is empty.*key file .*gallery.key exists"):
        Gallery.open(root, key)


def test_a_new_folder_is_still_a_new_gallery(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / DB_NAME).write_bytes(b"")                       # no key, no files: nothing was lost
    with Gallery.open(root, tmp_path / "new.key") as g:
        assert len(g) == 0


def test_sweep_moves_unnamed_files_to_quarantine_never_deletes(two_people):
    """A database restored from yesterday's backup does not know today's enrolment: its photo
    must survive the sweep."""
    root = two_people
    backup = root.parent / "backup.db"
    with Gallery.open() as g:
        bo_photo = g.photos_dir / g._photo_file(g._con, "E2")
        g.db.checkpoint()
    shutil.copy(root / DB_NAME, backup)
    with Gallery.open() as g:
        g.add_person("Cy Diaz", "E3", face(200), unit(3), "m")
        cy_photo = g.photos_dir / g._photo_file(g._con, "E3")
        g.db.checkpoint()
    content = cy_photo.read_bytes()
    for p in root.glob(DB_NAME + "*"):
        p.unlink()
    shutil.copy(backup, root / DB_NAME)                    # the restored, older database
    with Gallery.open() as g:
        assert [p.employee_id for p in g.people()] == ["E1", "E2"]
        assert bo_photo.exists() and not cy_photo.exists()
        assert g.check() == []
    kept = root / "quarantine" / f"photos-{cy_photo.name}"
    assert kept.read_bytes() == content


def _gallery_with_unreadable_wal(root: Path) -> tuple[Path, Path]:
    """A copy of ``root`` taken while a reader held the database open (as a running door does),
    so the last enrolment lives only in the WAL; then one byte of the WAL's first frame is
    flipped, as a bad sector would."""
    copy = root.parent / "copy"
    reader = sqlite3.connect(root / DB_NAME)                # keeps the WAL from being checkpointed
    try:
        reader.execute("SELECT COUNT(*) FROM people").fetchone()
        with Gallery.open() as g:
            g.add_person("Cy Diaz", "E3", face(200), unit(3), "m")
        shutil.copytree(root, copy)
    finally:
        reader.close()
    wal = copy / (DB_NAME + "-wal")
    data = bytearray(wal.read_bytes())
    data[32 + 24 + 200] ^= 0x01
    wal.write_bytes(bytes(data))
    return copy, wal


def test_damaged_wal_holding_a_committed_enrolment_is_refused(two_people, capsys, monkeypatch):
    copy, wal = _gallery_with_unreadable_wal(two_people)
    assert lost_wal_commits(copy / DB_NAME) >= 1
    # What SQLite alone makes of it: Cy is gone without a word (hence the check before opening).
    probe = copy.parent / "probe"
    shutil.copytree(copy, probe)
    con = sqlite3.connect(probe / DB_NAME)
    assert con.execute("SELECT COUNT(*) FROM people WHERE employee_id='E3'").fetchone()[0] == 0
    con.close()

    files, wal_bytes = stored(copy), wal.read_bytes()
    monkeypatch.setenv("XDG_DATA_HOME", str(copy.parent / "xdg"))
    (copy.parent / "xdg").mkdir()
    shutil.move(copy, copy.parent / "xdg" / "FaceGuard")
    moved = copy.parent / "xdg" / "FaceGuard"
    for argv in (["gallery", "check"], ["gallery", "list"]):
        err = one_line_error(capsys, argv)
        assert "write-ahead log" in err and "damaged" in err and "untouched" in err
    assert stored(moved) == files and (moved / (DB_NAME + "-wal")).read_bytes() == wal_bytes


def test_healthy_wal_is_not_taken_for_damage(two_people):
    healthy = two_people.parent / "healthy"
    reader = sqlite3.connect(two_people / DB_NAME)
    try:
        reader.execute("SELECT 1").fetchone()
        with Gallery.open() as g:
            g.remove("E1")
            g.add_person("Di Eze", "E4", face(220), unit(4), "m")
        shutil.copytree(two_people, healthy)
    finally:
        reader.close()
    assert lost_wal_commits(healthy / DB_NAME) == 0
    with Gallery.open(healthy) as g:
        assert {p.employee_id for p in g.people()} == {"E2", "E4"}


def test_a_wal_being_written_meanwhile_is_not_taken_for_damage(tmp_path):
    """A running door appends to the WAL (and restarts it after checkpoints) while a command
    checks it: hundreds of checks during a busy writer find no damage."""
    import subprocess
    import sys
    import textwrap
    import time

    db = tmp_path / DB_NAME
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3, time
        con = sqlite3.connect({str(db)!r}, isolation_level=None)
        con.execute("PRAGMA wal_autocheckpoint=50")      # restarts the WAL often
        end = time.time() + 3
        while time.time() < end:
            con.execute("INSERT INTO t VALUES (randomblob(3000))")
            con.execute("DELETE FROM t WHERE rowid % 7 = 0")
        """)])
    try:
        time.sleep(0.3)
        checks, found = 0, []
        while writer.poll() is None:
            checks += 1
            if n := lost_wal_commits(db, looks=1):
                found.append(n)
    finally:
        writer.wait(timeout=30)
    assert checks >= 50 and found == [], (checks, found)
