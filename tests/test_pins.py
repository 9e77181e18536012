"""Issue 21, item 2 and 3: a person's PIN (scrypt, sealed with their data key) and auth mode:
set from the CLI (standard input), checked, erased with the person, carried by export/import,
and never found in any file of the data or config folders."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from faceguard import paths
from faceguard.cli import main
from faceguard.errors import GalleryError
from faceguard.gallery import pins
from faceguard.gallery.db import DB_NAME, SCHEMA_VERSION
from faceguard.gallery.store import Gallery

PIN = "918273"


def unit(seed: int, dim: int = 128) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def enrol(gallery: Gallery, employee_id: str = "E001", seed: int = 1) -> None:
    gallery.add_person("Ana Lima", employee_id, np.full((80, 60, 3), 90 + seed, np.uint8), unit(seed), "m1")


def every_file_bytes(*folders: Path) -> bytes:
    return b"".join(p.read_bytes() for f in folders if f.exists() for p in f.rglob("*") if p.is_file())


def set_pin_cli(monkeypatch, employee_id: str, typed: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed + "\n"))
    return main(["gallery", "set-pin", employee_id])


def test_pin_rules_and_warnings():
    for bad in ("123", "123456789", "12a4", "", "１２３４", "12 34"):
        with pytest.raises(GalleryError) as err:
            pins.check_pin(bad)
        assert "4 to 8 digits" in str(err.value) and (bad.strip() == "" or bad not in str(err.value))
    assert pins.check_pin(" 4711 ") == "4711"
    assert "repeats one digit" in pins.pin_warning("0000")
    assert "run of digits" in pins.pin_warning("123456")
    assert "run of digits" in pins.pin_warning("9876")
    assert "pair" in pins.pin_warning("1212")
    assert "year" in pins.pin_warning("1987")
    assert pins.pin_warning(PIN) is None


def test_hash_is_salted_slow_and_checked_exactly():
    a, b = pins.hash_pin(PIN), pins.hash_pin(PIN)
    assert a != b                                   # a fresh salt each time
    assert PIN.encode() not in a and len(a) == 16 + 16 + 32
    assert pins.pin_matches(PIN, a) and pins.pin_matches(PIN, b)
    assert not pins.pin_matches("918274", a)
    assert not pins.pin_matches(PIN, a[:-1])        # a damaged hash never matches
    assert not pins.pin_matches(PIN, b"garbage")


def test_set_verify_clear_and_auth_mode(gallery):
    enrol(gallery)
    assert not pins.has_pin(gallery, "E001") and not pins.verify_pin(gallery, "E001", PIN)
    pins.set_pin(gallery, "e001", PIN)              # ids in any letter case
    assert pins.has_pin(gallery, "E001")
    assert pins.verify_pin(gallery, "E001", PIN)
    assert not pins.verify_pin(gallery, "E001", "000000")
    assert not pins.verify_pin(gallery, "E404", PIN)
    assert pins.auth_mode(gallery, "E001") == "grey-pin"
    pins.set_auth_mode(gallery, "E001", "face+pin")
    assert pins.auth_modes(gallery) == {"E001": "face+pin"}
    with pytest.raises(GalleryError, match="face, grey-pin, face\\+pin"):
        pins.set_auth_mode(gallery, "E001", "pin")
    pins.set_pin(gallery, "E001", None)
    assert not pins.has_pin(gallery, "E001") and not pins.verify_pin(gallery, "E001", PIN)


def test_pin_is_bound_to_its_person(gallery):
    """A sealed PIN hash copied onto another row with sqlite3 does not let that PIN in there."""
    enrol(gallery, "E001", 1)
    enrol(gallery, "E002", 2)
    pins.set_pin(gallery, "E001", PIN)
    con = sqlite3.connect(gallery.root / DB_NAME)
    con.execute("UPDATE people SET pin=(SELECT pin FROM people WHERE employee_id='E001') "
                "WHERE employee_id='E002'")
    con.commit()
    con.close()
    assert pins.verify_pin(gallery, "E001", PIN)
    assert not pins.verify_pin(gallery, "E002", PIN)


def test_cli_set_pin_and_auth_never_store_or_log_the_pin(monkeypatch, capsys):
    with Gallery.open() as g:
        enrol(g)
    assert set_pin_cli(monkeypatch, "E001", PIN) == 0
    out = capsys.readouterr()
    assert "PIN set" in out.out and PIN not in out.out + out.err
    assert main(["gallery", "auth", "E001", "face+pin"]) == 0
    assert "the face and a PIN, always" in capsys.readouterr().out
    assert set_pin_cli(monkeypatch, "E001", "1111") == 0            # weak: set, with a warning
    out = capsys.readouterr()
    assert "repeats one digit" in out.err and "1111" not in out.out + out.err
    assert set_pin_cli(monkeypatch, "E001", PIN) == 0
    assert set_pin_cli(monkeypatch, "E001", "12") == 2              # refused, nothing changed
    assert "4 to 8 digits" in capsys.readouterr().err
    assert set_pin_cli(monkeypatch, "E999", PIN) == 2
    with Gallery.open() as g:
        assert pins.verify_pin(g, "E001", PIN) and pins.auth_mode(g, "E001") == "face+pin"
        g.db.checkpoint()
    stored = every_file_bytes(paths.data_dir(), paths.config_dir(), paths.log_file().parent)
    assert stored                                                  # there is something to search
    for form in (PIN.encode(), PIN.encode("utf-16-le"), b"1111"):
        assert form not in stored


def test_pin_erased_with_the_person(gallery):
    enrol(gallery)
    pins.set_pin(gallery, "E001", PIN)
    con = sqlite3.connect(gallery.root / DB_NAME)
    sealed = con.execute("SELECT pin FROM people").fetchone()[0]
    con.close()
    assert sealed
    gallery.remove("E001")
    data = every_file_bytes(gallery.root)
    assert bytes(sealed) not in data and bytes(sealed)[-24:] not in data
    enrol(gallery, "E001", 3)                     # the same id again starts with no PIN
    assert not pins.has_pin(gallery, "E001") and pins.auth_mode(gallery, "E001") == "grey-pin"


def test_export_import_carry_pin_hash_and_auth_mode(gallery, pipeline, lfw, split, tmp_path):
    from faceguard.gallery import portable
    from faceguard.gallery.enrol import enrol as enrol_photo
    from faceguard.vision.image import load_image

    who = sorted(split)[0]
    enrol_photo(gallery, pipeline, load_image(lfw / split[who]["gallery"][0]), "Ana Lima", "E001",
                consent=True)
    pins.set_pin(gallery, "E001", PIN)
    pins.set_auth_mode(gallery, "E001", "face+pin")
    zpath = tmp_path / "out.zip"
    portable.export_zip(gallery, zpath)
    with zipfile.ZipFile(zpath) as zf:
        doc = json.loads(zf.read("gallery.json"))
        assert PIN.encode() not in b"".join(zf.read(n) for n in zf.namelist())
    entry = doc["people"][0]
    assert entry["auth_mode"] == "face+pin" and len(bytes.fromhex(entry["pin_scrypt"])) == 64
    with Gallery.open(tmp_path / "other", tmp_path / "other.key") as other:
        report = portable.import_zip(other, zpath, pipeline)
        assert report.added == ["E001"]
        assert pins.verify_pin(other, "E001", PIN) and not pins.verify_pin(other, "E001", "000000")
        assert pins.auth_mode(other, "E001") == "face+pin"


def test_schema_has_the_second_factor_step(gallery):
    con = sqlite3.connect(gallery.root / DB_NAME)
    columns = {r[1] for r in con.execute("PRAGMA table_info(people)")}
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert {"pin", "auth_mode"} <= columns and "templates" in tables
    assert SCHEMA_VERSION >= 5
