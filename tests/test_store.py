"""Gallery storage on real SQLite in temporary folders: round trips, encryption, bad input."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from faceguard.errors import GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.db import DB_NAME
from faceguard.gallery.events import EventLog
from faceguard.gallery.store import PHOTO_MAX_SIDE, Gallery

REPO = Path(__file__).resolve().parent.parent
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG"


def unit(seed: int, dim: int = 128) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def photo(seed: int, h: int = 240, w: int = 180) -> np.ndarray:
    """A smooth (JPEG-friendly) image whose colour depends on the seed."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, size=3)
    ramp = np.linspace(0, 30, w)[None, :, None]
    return np.clip(base[None, None, :] + ramp + np.zeros((h, 1, 1)), 0, 255).astype(np.uint8)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def db_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.glob(DB_NAME + "*"))


def test_add_and_read_back(gallery):
    big = photo(1, h=2000, w=1500)
    p = gallery.add_person(" Ana Lima ", "E1", big, unit(1), "model-a")
    assert (p.name, p.employee_id, p.active, p.last_seen, p.model_id) == ("Ana Lima", "E1", True, None, "model-a")
    assert p.consent_at == pytest.approx(p.created)
    stored = gallery.photo("E1")
    assert max(stored.shape[:2]) == PHOTO_MAX_SIDE and stored.shape == (1024, 768, 3)
    # JPEG keeps a smooth image close to the original (downscaled the same way)
    assert abs(float(stored.mean()) - float(big.mean())) < 2.0
    gallery.add_person("Bo", "E2", photo(2), unit(2), "model-a", consent_at=1000.0)
    gallery.add_person("Cy", "E3", photo(3), unit(3), "model-b")
    ids, matrix = gallery.embeddings("model-a")
    assert ids == ["E1", "E2"] and matrix.dtype == np.float32 and matrix.shape == (2, 128)
    np.testing.assert_array_equal(matrix[1], unit(2))
    assert gallery.embeddings("model-c")[1].shape == (0, 0)
    assert gallery.person("E2").consent_at == 1000.0
    assert gallery.stale_count("model-a") == 1

    gallery.rename("E2", "Bo Berg")
    gallery.set_active("E3", False)
    gallery.touch_last_seen("E1", when=1234.5)
    assert [p.name for p in gallery.people()] == ["Ana Lima", "Bo Berg"]
    assert [p.employee_id for p in gallery.people(active_only=False)] == ["E1", "E2", "E3"]
    assert gallery.person("E1").last_seen == 1234.5
    assert gallery.embeddings("model-b")[0] == []          # inactive people are not matched
    assert gallery.embeddings("model-b", active_only=False)[0] == ["E3"]
    assert gallery.person("nobody") is None
    assert len(gallery) == 3


def test_replace_photo_swaps_file_and_embedding(gallery):
    gallery.add_person("Ana", "E1", photo(1), unit(1), "m")
    before = files_in(gallery.photos_dir)
    gallery.replace_photo("E1", photo(9, h=100, w=100), unit(9), "m2")
    after = files_in(gallery.photos_dir)
    assert len(before) == len(after) == 1 and before != after
    assert gallery.photo("E1").shape == (100, 100, 3)
    np.testing.assert_array_equal(gallery.embeddings("m2")[1][0], unit(9))
    assert gallery.person("E1").model_id == "m2"


@pytest.mark.parametrize("name, employee_id, fragment", [
    ("", "E9", "name is empty"),
    ("   ", "E9", "name is empty"),
    ("Zed", "", "employee id is empty"),
    ("Zed", "E1", "already enrolled"),
    ("Two\nlines", "E9", "one line"),
])
def test_bad_person_input_changes_nothing(gallery, name, employee_id, fragment):
    gallery.add_person("Ana", "E1", photo(1), unit(1), "m")
    files = files_in(gallery.photos_dir)
    with pytest.raises(GalleryError, match=fragment):
        gallery.add_person(name, employee_id, photo(2), unit(2), "m")
    assert [p.name for p in gallery.people()] == ["Ana"]
    assert files_in(gallery.photos_dir) == files


def test_bad_embedding_and_photo_are_refused(gallery):
    with pytest.raises(GalleryError, match="unit length"):
        gallery.add_person("Ana", "E1", photo(1), unit(1) * 2, "m")
    with pytest.raises(GalleryError, match="RGB uint8"):
        gallery.add_person("Ana", "E1", photo(1)[:, :, 0], unit(1), "m")
    with pytest.raises(GalleryError, match="No person"):
        gallery.replace_photo("E404", photo(1), unit(1), "m")
    with pytest.raises(GalleryError, match="No person"):
        gallery.remove("E404")
    assert len(gallery) == 0 and files_in(gallery.photos_dir) == []


def test_nothing_readable_at_rest(gallery):
    # JPEG magic and the float32 bytes of the embedding appear nowhere in the data folder
    emb = unit(5)
    gallery.add_person("Ana", "E1", photo(5), emb, "m")
    EventLog(gallery).log_event("GRANTED", employee_id="E1", snapshot_rgb=photo(6, 80, 80))
    gallery.close()
    root = gallery.root
    raw = db_bytes(root)
    assert b"Ana" in raw                                    # the search proves we read the right bytes
    assert emb.tobytes() not in raw and emb[:8].tobytes() not in raw
    stored = list(root.rglob("*.enc"))
    assert len(stored) == 2
    for path in [*stored, *root.glob(DB_NAME + "*")]:
        data = path.read_bytes()
        assert JPEG_MAGIC not in data and PNG_MAGIC not in data, path
    for path in stored:
        assert path.read_bytes().startswith(crypto.MAGIC)
    key_file = crypto.default_key_file()
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_missing_key_file_is_refused_and_not_recreated(gallery):
    gallery.add_person("Ana", "E1", photo(1), unit(1), "m")
    gallery.close()
    key_file = crypto.default_key_file()
    key_file.unlink()
    with pytest.raises(GalleryError, match="key file .* is missing") as err:
        Gallery.open()
    assert "cannot be read" in str(err.value)
    assert not key_file.exists()
    assert len(files_in(gallery.photos_dir)) == 1         # the encrypted photo is kept


def test_wrong_key_file_is_refused(gallery):
    gallery.add_person("Ana", "E1", photo(1), unit(1), "m")
    gallery.close()
    key_file = crypto.default_key_file()
    original = key_file.read_text()
    key_file.write_text(os.urandom(32).hex())
    with pytest.raises(GalleryError, match="does not belong"):
        Gallery.open()
    key_file.write_text("not hex")
    with pytest.raises(GalleryError, match="damaged"):
        Gallery.open()
    key_file.write_text(original)
    with Gallery.open() as g:
        assert g.photo("E1").shape == (240, 180, 3)


@pytest.mark.parametrize("content", [
    b"this is not a database at all" * 100,
    b"SQLite format 3\x00" + b"\xff" * 4000,
])
def test_corrupt_database_is_reported_and_left_alone(content):
    with Gallery.open() as g:
        g.add_person("Ana", "E1", photo(1), unit(1), "m")
        root = g.root
    db = root / DB_NAME
    db.write_bytes(content)
    with pytest.raises(GalleryError, match="damaged or not a database"):
        Gallery.open()
    assert db.read_bytes() == content
    assert len(files_in(root / "photos")) == 1              # photos are not swept away either


def test_foreign_sqlite_file_is_refused(tmp_path):
    root = tmp_path / "other"
    root.mkdir()
    con = sqlite3.connect(root / DB_NAME)
    con.execute("CREATE TABLE invoices (n INTEGER)")
    con.commit()
    con.close()
    before = (root / DB_NAME).read_bytes()
    with pytest.raises(GalleryError, match="not a FaceGuard gallery"):
        Gallery.open(root)
    assert (root / DB_NAME).read_bytes() == before


def test_missing_database_with_photos_is_refused():
    with Gallery.open() as g:
        g.add_person("Ana", "E1", photo(1), unit(1), "m")
        root = g.root
    for p in root.glob(DB_NAME + "*"):
        p.unlink()
    with pytest.raises(GalleryError, match="database file gallery.db is missing"):
        Gallery.open()
    assert len(files_in(root / "photos")) == 1


def test_sweep_removes_orphans_and_temp_files(gallery):
    gallery.add_person("Ana", "E1", photo(1), unit(1), "m")
    kept = files_in(gallery.photos_dir)
    (gallery.photos_dir / ("ab" * 16 + ".enc")).write_bytes(b"orphan")
    (gallery.photos_dir / ".tmp-half-written").write_bytes(b"x")
    (gallery.snapshots_dir / ("cd" * 16 + ".enc")).write_bytes(b"orphan")
    (gallery.photos_dir / "notes.txt").write_text("the user's own file")
    removed = gallery.sweep()
    assert len(removed) == 3
    assert files_in(gallery.photos_dir) == sorted([*kept, "notes.txt"])
    assert files_in(gallery.snapshots_dir) == []
    assert gallery.check() == [f"The file {gallery.photos_dir / 'notes.txt'} belongs to no one."]


def test_check_finds_each_kind_of_problem(gallery):
    gallery.add_person("Ana", "E1", photo(1), unit(1), "m")
    gallery.add_person("Bo", "E2", photo(2), unit(2), "m")
    gallery.add_person("Cy", "E3", photo(3), unit(3), "old")
    assert gallery.check() == []
    problems = gallery.check("m")
    assert len(problems) == 1 and "Cy (E3)" in problems[0] and "re-embed" in problems[0]
    ana_file = gallery.photos_dir / gallery._photo_file(gallery._con, "E1")
    ana_file.unlink()
    bo_file = gallery.photos_dir / gallery._photo_file(gallery._con, "E2")
    bo_file.write_bytes(bo_file.read_bytes()[:-5] + b"xxxxx")
    problems = gallery.check()
    assert len(problems) == 2
    assert "Ana (E1)" in problems[0] and "cannot be read" in problems[0]
    assert "Bo (E2)" in problems[1] and "cannot be decrypted" in problems[1]


def test_remove_erases_photo_embedding_and_snapshots(gallery):
    log = EventLog(gallery)
    gallery.add_person("Ana", "E1", photo(1), unit(1), "m")
    gallery.add_person("Bo", "E2", photo(2), unit(2), "m")
    for _ in range(2):
        log.log_event("GRANTED", employee_id="E1", distance=0.2, threshold=0.4, snapshot_rgb=photo(7, 90, 90))
    stranger = log.log_event("DENIED", snapshot_rgb=photo(8, 90, 90))
    ana_photo = gallery.photos_dir / gallery._photo_file(gallery._con, "E1")
    ana_blob = bytes(gallery._con.execute("SELECT embedding FROM people WHERE employee_id='E1'").fetchone()[0])
    assert ana_blob in db_bytes(gallery.root)
    assert len(files_in(gallery.snapshots_dir)) == 3

    alias = gallery.remove("E1")
    assert not ana_photo.exists()
    assert len(files_in(gallery.photos_dir)) == 1
    assert len(files_in(gallery.snapshots_dir)) == 1 and log.snapshot(stranger.id) is not None
    assert ana_blob not in db_bytes(gallery.root)
    assert gallery.person("E1") is None
    # the log's rows stay (the door opened then), under a pseudonym (issue 15, item 5)
    assert not [e for e in log.events() if e.employee_id == "E1" or e.name == "Ana"]
    ana_events = [e for e in log.events() if e.employee_id == alias]
    assert len(ana_events) == 2 and not any(e.has_snapshot for e in ana_events)
    assert gallery.check() == []


def _limit_file_size(limit: int):
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG instead of death
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limit[1]))
    return old_limit, old_handler


def test_full_disk_leaves_nothing_half_written(gallery):
    gallery.add_person("Ana", "E1", photo(1), unit(1), "m")
    before = files_in(gallery.photos_dir)
    noisy = np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8)  # ~ 300 kB JPEG
    old_limit, old_handler = _limit_file_size(100_000)
    try:
        with pytest.raises(GalleryError, match="full"):
            gallery.add_person("Bo", "E2", noisy, unit(2), "m")
        with pytest.raises(GalleryError, match="full"):
            gallery.replace_photo("E1", noisy, unit(3), "m")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert files_in(gallery.photos_dir) == before
    assert [p.employee_id for p in gallery.people()] == ["E1"]
    np.testing.assert_array_equal(gallery.embeddings("m")[1][0], unit(1))
    gallery.add_person("Bo", "E2", noisy, unit(2), "m")     # works again once space is back
    assert len(gallery) == 2


def test_full_disk_while_sqlite_writes_leaves_nothing_half_written(gallery):
    tiny = np.full((20, 20, 3), 90, np.uint8)                 # the photo file fits, the WAL does not
    gallery.add_person("Ana", "E1", tiny, unit(1), "m")
    before = files_in(gallery.photos_dir)
    largest = max(p.stat().st_size for p in gallery.root.glob(DB_NAME + "*"))
    old_limit, old_handler = _limit_file_size(largest)
    try:
        failures = []
        for i in range(2, 40):                                # until the WAL must grow
            try:
                gallery.add_person(f"P{i}", f"E{i}", tiny, unit(i), "m")
            except GalleryError as exc:
                failures.append(str(exc))
                break
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert failures and "nothing was changed" in failures[0], failures
    people = gallery.people()
    assert len(files_in(gallery.photos_dir)) == len(people) == len(before) + i - 2
    assert gallery.check() == []
    gallery.add_person("Bo", "EB", tiny, unit(99), "m")
    assert gallery.person("EB") is not None


_READ_ONLY_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from pathlib import Path
    from faceguard.errors import GalleryError
    from faceguard.gallery.store import Gallery
    root, key = Path(sys.argv[1]), Path(sys.argv[2])
    e = np.zeros(8, np.float32); e[0] = 1
    try:
        g = Gallery.open(root, key)
        g.add_person("Bo", "E2", np.full((50, 50, 3), 90, np.uint8), e, "m")
        print("WROTE")
    except GalleryError as exc:
        print("GalleryError:", exc)
""")


def _run_without_permission_override(args: list[str]) -> str:
    """Run the child so that file permissions apply to it (root ignores them otherwise)."""
    cmd = [sys.executable, "-c", _READ_ONLY_CHILD, *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            pytest.skip("running as root without setpriv: read-only folders cannot be simulated")
        cmd = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("locked", ["photos", "root"])
def test_read_only_folder_gives_clear_error_and_loses_nothing(tmp_path, locked):
    root, key = tmp_path / "data", tmp_path / "gallery.key"
    e = np.zeros(8, np.float32)
    e[0] = 1
    with Gallery.open(root, key) as g:
        g.add_person("Ana", "E1", photo(1), e, "m")
    target = root / "photos" if locked == "photos" else root
    before = {p.name: p.read_bytes() for p in (root / "photos").iterdir()}
    target.chmod(0o555)
    try:
        result = _run_without_permission_override([str(root), str(key)])
    finally:
        target.chmod(0o755)
    assert result.startswith("GalleryError:") and "read-only" in result, result
    with Gallery.open(root, key) as g:
        assert [p.employee_id for p in g.people()] == ["E1"]
        assert {p.name: p.read_bytes() for p in (root / "photos").iterdir()} == before
        assert g.check() == []
