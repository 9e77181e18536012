"""The access log window (filters, snapshot viewer, CSV export in local time with its UTC
offset) and `faceguard log list`, which prints the same rows."""

from __future__ import annotations

import csv
import json
import os
from datetime import date, datetime, timedelta

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import screenshot  # noqa: E402

from faceguard import cli  # noqa: E402
from faceguard.gallery.events import EventLog  # noqa: E402
from faceguard.gallery.store import Gallery  # noqa: E402
from faceguard.ui.log_window import day_start  # noqa: E402

TODAY = date(2026, 11, 20)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def face(seed: int) -> np.ndarray:
    rgb = np.zeros((120, 100, 3), np.uint8)
    rgb[20:100, 20:80] = (40 * seed % 255, 180, 90)
    rgb[40:50, 30:45] = 20
    return rgb


pytestmark = pytest.mark.usefixtures("styled")   # the app's style sheet, as users see it


@pytest.fixture
def filled():
    """Ana (E1) and Ben (E2) enrolled; six events over three days, two with snapshots."""
    g = Gallery.open()
    g.add_person("Ana Lima", "E1", face(1), unit(1), "m")
    g.add_person("Ben Ode", "E2", face(2), unit(2), "m")
    log = EventLog(g)
    at = lambda d, h: day_start(TODAY - timedelta(days=d)) + h * 3600   # noqa: E731
    log.log_event("GRANTED", employee_id="E1", distance=0.11, threshold=0.18, reason="ok",
                  door_result="ok", snapshot_rgb=face(5), when=at(0, 9.5))
    log.log_event("DENIED", distance=0.61, threshold=0.18, reason="stranger", snapshot_rgb=face(7),
                  when=at(0, 10))
    log.log_event("GRANTED", employee_id="E2", distance=0.09, threshold=0.18, door_result="timed out",
                  when=at(0, 11))
    log.log_event("GRANTED", employee_id="E1", distance=0.12, threshold=0.18, when=at(1, 8))
    log.log_event("DENIED", distance=0.7, threshold=0.18, when=at(2, 23.99))
    log.log_event("GRANTED", employee_id="E2", distance=0.1, threshold=0.18, when=at(9, 12))  # outside the week
    yield g
    g.close()


def open_window(qtbot, g):
    from faceguard.ui.log_window import LogWindow
    w = LogWindow(g, today=TODAY)
    qtbot.addWidget(w)
    w.show()
    return w


def test_log_window_lists_filters_and_shows_snapshots(qtbot, filled):
    w = open_window(qtbot, filled)
    rows = w.rows()
    assert len(rows) == 5 and w.count.text() == "5 events"       # the last 7 days, newest first
    assert rows[0] == [f"{TODAY} 11:00:00", "Ben Ode (E2)", "GRANTED", "0.090 / 0.180", "", "timed out"]
    assert rows[1][1:4] == ["stranger", "DENIED", "0.610 / 0.180"]
    assert rows[4][0] == f"{TODAY - timedelta(days=2)} 23:59:24"

    w.set_days(TODAY, TODAY)
    assert [r[1] for r in w.rows()] == ["Ben Ode (E2)", "stranger", "Ana Lima (E1)"]
    w.set_person("E1")
    assert [r[0] for r in w.rows()] == [f"{TODAY} 09:30:00"]
    w.set_days(TODAY - timedelta(days=30), TODAY)
    assert len(w.rows()) == 2 and {r[1] for r in w.rows()} == {"Ana Lima (E1)"}
    w.set_person(None)                                              # strangers
    assert [r[2] for r in w.rows()] == ["DENIED", "DENIED"]
    w.set_person("")
    w.set_decision("DENIED")
    assert len(w.rows()) == 2 and all(r[1] == "stranger" for r in w.rows())
    w.set_decision("GRANTED")
    assert len(w.rows()) == 4

    w.set_days(TODAY, TODAY)
    w.set_decision("")
    w.select_row(1)                                                # the stranger's snapshot
    pix = w.snapshot.pixmap()
    assert not pix.isNull() and pix.width() > 100
    assert "stranger" in w.snapshot_note.text()
    img = pix.toImage()
    assert img.pixelColor(pix.width() // 2, pix.height() // 2).green() > 120   # the face(7) colours
    screenshot(w, "access_log_window")
    w.select_row(0)                                                # no snapshot kept
    filled_log = EventLog(filled)
    filled_log.log_event("DENIED", distance=0.5, threshold=0.18, when=day_start(TODAY) + 12 * 3600)
    assert len(w.rows()) == 3
    w.refresh_btn.click()                                          # the door logged meanwhile
    assert len(w.rows()) == 4 and w.rows()[0][0] == f"{TODAY} 12:00:00"
    w.select_row(1)
    assert w.snapshot.pixmap().isNull() and w.snapshot.text() == "No snapshot kept for this event."
    # Decrypted in memory only: the snapshots folder holds nothing but the encrypted files.
    assert all(p.suffix == ".enc" for p in filled.snapshots_dir.iterdir())


def test_log_window_exports_what_it_shows_in_local_time(qtbot, filled, tmp_path):
    w = open_window(qtbot, filled)
    w.set_days(TODAY, TODAY)
    w.set_person("E1")
    out = tmp_path / "today.csv"
    w.ask_save = lambda: str(out)
    w.export_btn.click()
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "time" and len(rows) == 2
    local = datetime.fromtimestamp(day_start(TODAY) + 9.5 * 3600).astimezone()
    assert rows[1][0] == local.isoformat(timespec="seconds")      # e.g. 2026-11-20T09:30:00+01:00
    assert rows[1][0].startswith(f"{TODAY}T09:30:00") and rows[1][0][19] in "+-"
    assert rows[1][1:4] == ["GRANTED", "E1", "Ana Lima"]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert "exported 1" in w.count.text()


def test_log_list_prints_the_same_rows(qtbot, filled, capsys):
    w = open_window(qtbot, filled)
    since = str(TODAY - timedelta(days=6))
    assert cli.main(["log", "list", "--since", since]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["Time", "Person", "Decision", "Distance / threshold", "Reason", "Door"]
    assert [ln.split("\t") for ln in lines[1:-1]] == w.rows()
    assert lines[-1] == "5 events"
    assert cli.main(["log", "list", "--person", "e1", "--json"]) == 0    # ids: case-insensitive
    events = json.loads(capsys.readouterr().out)["events"]
    assert [e["employee_id"] for e in events] == ["E1", "E1"]
    assert events[0]["local_time"].startswith(f"{TODAY}T09:30:00") and events[0]["time"].endswith("+00:00")
    assert cli.main(["log", "list", "--since", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err
