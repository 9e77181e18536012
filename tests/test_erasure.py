"""Issue 15, items 5, 6 and 9: erasing a person makes every lingering copy of their face
unreadable (per-person data keys), their name and id leave the access log and the log files;
blobs are bound to their rows; legacy galleries are converted; the log file is private."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceguard import paths
from faceguard.cli import main
from faceguard.errors import GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.db import DB_NAME, MIGRATIONS, SCHEMA_VERSION, Database, encode_jpeg
from faceguard.gallery.events import EventLog
from faceguard.gallery.store import Gallery
from faceguard.logfile import PrivateRotatingFileHandler

REPO = Path(__file__).resolve().parent.parent


def unit(seed: int, dim: int = 16) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def face(value: int) -> np.ndarray:
    return np.full((60, 50, 3), value, np.uint8)


def every_byte(*folders: Path) -> bytes:
    return b"".join(p.read_bytes() for f in folders for p in f.rglob("*") if p.is_file())


def master(gallery: Gallery) -> crypto.Cipher:
    return crypto.Cipher(crypto.read_key(gallery.key_file))


def decryptable(blob: bytes, ciphers: list[crypto.Cipher], purpose: bytes, row_ids: range) -> bool:
    """Whether any of ``ciphers`` opens ``blob`` under the bare purpose or bound to any row."""
    ads = [purpose] + [purpose + b":" + str(i).encode() for i in row_ids]
    for c in ciphers:
        for ad in ads:
            try:
                c.decrypt(blob, ad)
                return True
            except GalleryError:
                pass
    return False


def test_erased_face_cannot_be_decrypted_from_any_copy(tmp_path):
    with Gallery.open() as g:
        log = EventLog(g)
        g.add_person("Ana Lima", "E1", face(100), unit(1), "m")
        g.add_person("Bo Chen", "E2", face(150), unit(2), "m")
        ev = log.log_event("GRANTED", employee_id="E1", snapshot_rgb=face(90))
        con = g._con
        photo_file, emb, wrapped = con.execute(
            "SELECT photo_file, embedding, data_key FROM people WHERE employee_id='E1'").fetchone()
        snap_file = con.execute("SELECT snapshot_file FROM events WHERE id=?", (ev.id,)).fetchone()[0]
        # what free disk blocks, a backup or an old copy of the folder would still hold
        lingering = {"photo": ((g.photos_dir / photo_file).read_bytes(), crypto.PHOTO),
                     "embedding": (bytes(emb), crypto.EMBEDDING),
                     "snapshot": ((g.snapshots_dir / snap_file).read_bytes(), crypto.SNAPSHOT)}
        assert g.photo("E1").shape == (60, 50, 3) and log.snapshot(ev.id) is not None
        g.remove("E1")
        # every key left on the machine: the gallery key and the remaining people's data keys
        ciphers = [master(g)] + [g.db.keys.person(pid, eid, w) for pid, eid, w in
                                 con.execute("SELECT id, employee_id, data_key FROM people")]
        for what, (blob, purpose) in lingering.items():
            assert not decryptable(blob, ciphers, purpose, range(0, 50)), what
        root = g.root
    # the wrapped data key itself is gone from every file of the data and config folders
    assert bytes(wrapped) not in every_byte(root, paths.config_dir())


def test_erasure_pseudonymises_the_access_log_and_masks_the_log_files():
    log_file = paths.log_file()
    log_file.write_text("2026-01-01 INFO door: GRANTED Ana Lima (E1)\n"
                        "2026-01-01 INFO faceguard: Employee id 'E1' is already enrolled (Ana Lima).\n"
                        "2026-01-02 INFO door: GRANTED Bo Chen (E10)\n")
    rotated = log_file.with_name(log_file.name + ".1")
    rotated.write_text("2025-12-31 INFO enrolled Ana Lima (E1)\n")
    with Gallery.open() as g:
        g.add_person("Ana Lima", "E1", face(100), unit(1), "m")
        g.add_person("Bo Chen", "E10", face(150), unit(2), "m")
        log = EventLog(g)
        log.log_event("GRANTED", employee_id="E1")
        g.rename("E1", "Ana Lima-Diaz")                 # the log rows keep the name at the time
        log.log_event("GRANTED", employee_id="E1")
        log.log_event("GRANTED", employee_id="E10")
        alias = g.remove("E1")
        rows = [(e.employee_id, e.name) for e in log.events()]
    assert rows.count((alias, None)) == 2 and ("E10", "Bo Chen") in rows
    assert alias.startswith("erased-") and not any(eid == "E1" for eid, _ in rows)
    text = log_file.read_text() + rotated.read_text()
    assert "Ana Lima" not in text and "E1)" not in text and "'E1'" not in text
    assert "GRANTED Bo Chen (E10)" in text                # a longer id is another person


def test_a_ciphertext_copied_onto_another_row_does_not_decrypt(capsys):
    with Gallery.open() as g:
        g.add_person("Ana Lima", "E1", face(100), unit(1), "m")
        g.add_person("Bo Chen", "E2", face(150), unit(2), "m")
        root = g.root
    con = sqlite3.connect(root / DB_NAME)                 # an attacker with sqlite3, no key
    with con:
        con.execute("UPDATE people SET embedding=(SELECT embedding FROM people WHERE employee_id='E1') "
                    "WHERE employee_id='E2'")
    con.close()
    with Gallery.open() as g:
        with pytest.raises(GalleryError, match="E2"):
            g.embeddings("m")                              # never Ana's face under Bo's id
        problems = g.check("m")
    # The blob fails to decrypt, and the row's MAC (over the blob's digest) fails too.
    assert len(problems) == 2 and all("Bo Chen (E2)" in p for p in problems)
    assert "cannot be decrypted" in problems[0] and "edited by hand" in problems[1]
    assert main(["gallery", "check", "--json"]) == 1
    capsys.readouterr()

    # The data key and the embedding moved together: the wrapped key names its row.
    con = sqlite3.connect(root / DB_NAME)
    with con:
        con.execute("UPDATE people SET (embedding, data_key) = (SELECT embedding, data_key FROM people "
                    "WHERE employee_id='E1') WHERE employee_id='E2'")
    con.close()
    with Gallery.open() as g:
        with pytest.raises(GalleryError, match="E2"):
            g.embeddings("m")
        problems = g.check("m")
    assert any("Bo Chen (E2)" in p and "copied from another person's row" in p for p in problems)


def test_a_legacy_gallery_is_converted_to_per_person_keys(tmp_path):
    """A schema-1 gallery (everything under the gallery key, bare-purpose associated data), as
    FaceGuard wrote it before, built here with the old format by hand."""
    root, key = tmp_path / "data", tmp_path / "gallery.key"
    db = Database.open(root, key, migrations=MIGRATIONS[:1])
    old_photo = db.cipher.encrypt(encode_jpeg(face(100), 1024), crypto.PHOTO)
    with db.change() as change:
        name = change.write_file(db.photos_dir, old_photo)
        change.con.execute("INSERT INTO people (name, employee_id, created, consent_at, photo_file, "
                           "embedding, model_id) VALUES ('Ana Lima', 'E1', 1, 1, ?, ?, 'm')",
                           (name, db.cipher.encrypt(unit(1).tobytes(), crypto.EMBEDDING)))
        for employee_id, value in (("E1", 90), (None, 60)):
            snap = change.write_file(db.snapshots_dir,
                                     db.cipher.encrypt(encode_jpeg(face(value), 320), crypto.SNAPSHOT))
            change.con.execute("INSERT INTO events (time, employee_id, decision, snapshot_file) "
                               "VALUES (2, ?, 'GRANTED', ?)", (employee_id, snap))
    db.close()
    old_files = {p.name for p in (root / "photos").iterdir()} | {p.name for p in (root / "snapshots").iterdir()}

    with Gallery.open(root, key) as g:
        assert g.db.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert g.db.con.execute("SELECT data_key IS NOT NULL FROM people").fetchone()[0] == 1
        np.testing.assert_array_equal(g.embeddings("m")[1][0], unit(1))
        assert abs(float(g.photo("E1").mean()) - 100) < 3
        log = EventLog(g)
        values = sorted(round(float(log.snapshot(e.id).mean())) for e in log.events())
        assert [abs(v - w) < 3 for v, w in zip(values, [60, 90], strict=True)] == [True, True]
        assert g.check("m") == []
        keys = dict(g.db.con.execute("SELECT employee_id, snapshot_key FROM events"))
        assert keys[None] == 0 and keys["E1"] == 1
        new_files = {p.name for p in g.photos_dir.iterdir()} | {p.name for p in g.snapshots_dir.iterdir()}
    assert not new_files & old_files and not (root / "quarantine").exists()
    # the converted gallery erases properly: the old-format copy no longer matters, the new
    # one dies with the data key
    with Gallery.open(root, key) as g:
        g.remove("E1")
        assert g.check("m") == []


def test_log_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        target = tmp_path / "faceguard.log"
        target.write_text("")
        target.chmod(0o644)                                 # left wider by an older version
        handler = PrivateRotatingFileHandler(target, maxBytes=200, backupCount=2)
        rec = logging.LogRecord("t", logging.INFO, __file__, 1, "x" * 150, None, None)
        for _ in range(3):
            handler.emit(rec)                               # rolls over: a new file each time
        handler.close()
    finally:
        os.umask(old)
    files = sorted(tmp_path.glob("faceguard.log*"))
    assert len(files) == 3
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), files


def test_the_cli_writes_its_log_file_0600():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", "import os, sys; os.umask(0o022); from faceguard.cli "
                        "import main; sys.exit(main(['gallery', 'list']))"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(paths.log_file().stat().st_mode) == 0o600
