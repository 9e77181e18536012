"""The gallery database layer on real SQLite files: schema migrations, and the import order of
the gallery's modules (db.py at the bottom, store and events beside each other above it)."""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from faceguard.errors import GalleryError
from faceguard.gallery.db import DB_NAME, MIGRATIONS, SCHEMA_VERSION, Database, check_migrations
from faceguard.gallery.events import EventLog
from faceguard.gallery.store import Gallery


def unit(seed: int, dim: int = 16) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def face(value: int) -> np.ndarray:
    return np.full((60, 50, 3), value, np.uint8)


def user_version(root: Path) -> int:
    con = sqlite3.connect(root / DB_NAME)
    try:
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def columns(db: Database, table: str) -> list[str]:
    with db.reading() as con:
        return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def db_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.glob(DB_NAME + "*")}


@pytest.fixture
def v1_gallery(tmp_path) -> tuple[Path, Path]:
    """A gallery at today's schema version with one person and one logged event (snapshot)."""
    root, key = tmp_path / "data", tmp_path / "gallery.key"
    with Gallery.open(root, key) as g:
        g.add_person("Ana Lima", "E1", face(100), unit(1), "m")
        EventLog(g).log_event("GRANTED", employee_id="E1", snapshot_rgb=face(70))
    return root, key


def test_new_gallery_is_built_by_the_migration_list(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / DB_NAME).write_bytes(b"")              # an empty file is a database at version 0
    with Gallery.open(root, tmp_path / "k") as g:
        assert {"people", "events", "meta"} <= set(_tables(g.db))
    assert user_version(root) == SCHEMA_VERSION == MIGRATIONS[-1][0]


def _tables(db: Database) -> list[str]:
    with db.reading() as con:
        return [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]


def test_older_schema_is_migrated_once_and_keeps_its_data(v1_gallery):
    """Today's gallery is 'older' than a code that knows one more step: opening applies it."""
    root, key = v1_gallery
    calls = []

    def add_badge(con: sqlite3.Connection) -> None:
        calls.append(con.execute("PRAGMA user_version").fetchone()[0])
        con.execute("ALTER TABLE people ADD COLUMN badge TEXT")
        con.execute("UPDATE people SET badge = 'B-' || employee_id")

    newer = [*MIGRATIONS, (SCHEMA_VERSION + 1, add_badge)]
    db = Database.open(root, key, migrations=newer)
    try:
        assert calls == [SCHEMA_VERSION]              # ran once, on the old version
        assert "badge" in columns(db, "people")
        with db.reading() as con:
            assert con.execute("SELECT badge FROM people").fetchall() == [("B-E1",)]
        gallery = Gallery(db)
        assert gallery.person("E1").name == "Ana Lima" and gallery.photo("E1").shape == (60, 50, 3)
        assert EventLog(gallery).events()[0].has_snapshot and gallery.check("m") == []
    finally:
        db.close()
    assert user_version(root) == SCHEMA_VERSION + 1
    Database.open(root, key, migrations=newer).close()
    assert calls == [SCHEMA_VERSION]                  # already there: not applied again


def test_newer_schema_is_refused_untouched(v1_gallery):
    root, key = v1_gallery
    con = sqlite3.connect(root / DB_NAME)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.close()
    before = db_files(root)
    photos = sorted(p.name for p in (root / "photos").iterdir())
    with pytest.raises(GalleryError, match="made by a newer version of FaceGuard") as err:
        Gallery.open(root, key)
    assert f"version {SCHEMA_VERSION + 1}" in str(err.value) and "untouched" in str(err.value)
    assert db_files(root) == before
    assert sorted(p.name for p in (root / "photos").iterdir()) == photos   # no sweep either


def test_a_failing_step_rolls_back_alone(v1_gallery):
    """Each step is one transaction: the good step stays, the failed one leaves no trace."""
    root, key = v1_gallery

    def good(con):
        con.execute("CREATE TABLE badges (employee_id TEXT)")

    def bad(con):
        con.execute("ALTER TABLE people ADD COLUMN half_done TEXT")
        con.execute("INSERT INTO no_such_table VALUES (1)")

    v = SCHEMA_VERSION
    with pytest.raises(GalleryError, match="could not be updated") as err:
        Database.open(root, key, migrations=[*MIGRATIONS, (v + 1, good), (v + 2, bad)])
    assert "previous format" in str(err.value)
    assert user_version(root) == v + 1
    with closing(Database.open(root, key, migrations=[*MIGRATIONS, (v + 1, good)])) as db:
        assert "badges" in _tables(db) and "half_done" not in columns(db, "people")
        assert Gallery(db).person("E1") is not None


def test_migration_list_must_be_numbered_in_order():
    def step(con):
        pass

    assert check_migrations([(1, step), (2, step)]) == 2
    for wrong in ([], [(2, step)], [(1, step), (3, step)], [(2, step), (1, step)]):
        with pytest.raises(ValueError, match="numbered 1, 2, 3"):
            check_migrations(wrong)


def test_gallery_modules_import_downwards_only():
    """db.py is the floor; store and events stand on it side by side; nothing loops."""
    grimp = pytest.importorskip("grimp")             # comes with import-linter (the dev extra)
    graph = grimp.build_graph("faceguard", include_external_packages=True)
    g = "faceguard.gallery."
    for a, b in [("store", "events"), ("events", "store"), ("db", "store"), ("db", "events"),
                 ("db", "portable"), ("store", "portable"), ("events", "portable")]:
        assert graph.find_shortest_chain(g + a, g + b) is None, f"{a} imports {b}"
    modules = [m for m in graph.modules if m.startswith(g)]
    for m in modules:
        for other in graph.find_modules_directly_imported_by(m) & set(modules):
            assert graph.find_shortest_chain(other, m) is None, f"import cycle {m} ↔ {other}"
    atomic_imports = graph.find_modules_directly_imported_by("faceguard.atomic")   # any layer may use it
    assert all(m.split(".")[0] in sys.stdlib_module_names for m in atomic_imports), atomic_imports
