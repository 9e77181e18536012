"""The access log on a real gallery database: record, query, CSV export, retention."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from faceguard.errors import GalleryError
from faceguard.gallery.events import CSV_COLUMNS, EventLog
from faceguard.gallery.store import Gallery

DAY = 86400.0
NOW = 1_700_000_000.0


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=16).astype(np.float32)
    return v / np.linalg.norm(v)


def face(value: int, size: int = 120) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


@pytest.fixture
def log():
    g = Gallery.open()
    g.add_person("Ana Lima", "E1", face(100), unit(1), "m")
    yield EventLog(g)
    g.close()


def test_log_and_query(log):
    granted = log.log_event("GRANTED", employee_id="E1", distance=0.21, threshold=0.4,
                            reason="3 of 5 frames", door_result="ok", snapshot_rgb=face(60, 500),
                            when=NOW - 60)
    denied = log.log_event("DENIED", distance=0.7, threshold=0.4, reason="stranger", when=NOW)
    assert granted.name == "Ana Lima"                       # looked up from the gallery
    assert (granted.decision, granted.distance, granted.threshold, granted.has_snapshot) == ("GRANTED", 0.21, 0.4, True)
    assert denied.employee_id is None and denied.name is None and not denied.has_snapshot
    assert [e.id for e in log.events()] == [denied.id, granted.id]      # newest first
    assert [e.id for e in log.events(limit=1)] == [denied.id]
    assert [e.id for e in log.events(since=NOW - 1)] == [denied.id]
    snap = log.snapshot(granted.id)
    assert snap.shape == (320, 320, 3) and abs(int(snap.mean()) - 60) <= 2   # shrunk to ≤ 320 px
    assert log.snapshot(denied.id) is None
    assert granted.to_dict()["time"].endswith("+00:00")


def test_empty_decision_is_refused(log):
    with pytest.raises(GalleryError, match="needs a decision"):
        log.log_event("  ")
    assert log.events() == []


def test_export_csv(log, tmp_path):
    log.log_event("GRANTED", employee_id="E1", distance=0.2, threshold=0.4, door_result="ok", when=NOW)
    log.log_event("DENIED", distance=0.9, threshold=0.4, reason="stranger, door stays shut", when=NOW + 5)
    out = tmp_path / "log.csv"
    assert log.export_csv(out) == 2
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1][1:5] == ["GRANTED", "E1", "Ana Lima", "0.2000"]          # oldest first
    assert rows[2][1:4] == ["DENIED", "", ""] and rows[2][6] == "stranger, door stays shut"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with pytest.raises(GalleryError, match="folder"):
        log.export_csv(tmp_path / "no-such-folder" / "log.csv")


def test_retention_removes_old_events_and_their_snapshots(log):
    g = log.gallery
    old = log.log_event("GRANTED", employee_id="E1", snapshot_rgb=face(10), when=NOW - 31 * DAY)
    log.log_event("DENIED", snapshot_rgb=face(20), when=NOW - 40 * DAY)
    recent = log.log_event("GRANTED", employee_id="E1", snapshot_rgb=face(30), when=NOW - 29 * DAY)
    assert len(list(g.snapshots_dir.iterdir())) == 3
    assert log.enforce_retention(30, now=NOW) == 2
    assert [e.id for e in log.events()] == [recent.id]
    assert len(list(g.snapshots_dir.iterdir())) == 1
    assert log.snapshot(recent.id) is not None
    with pytest.raises(GalleryError):
        log.event(old.id)
    assert log.enforce_retention(30, now=NOW) == 0
    with pytest.raises(GalleryError, match="at least one day"):
        log.enforce_retention(0)
    assert g.check() == []
