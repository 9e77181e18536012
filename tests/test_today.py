"""Issue 24 item 4: who came in today, from `faceguard log today [--json]` and the Today view
(the same summary, tools/today.py), on a real gallery's access log; at a site, every door."""

from __future__ import annotations

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
from faceguard.tools.today import Row, day_bounds, summarise, to_dict  # noqa: E402

TODAY = date.today()


@pytest.fixture(autouse=True)
def _today():
    """The day each test runs, not the day its module was imported: a run that passes midnight
    (a slow CI) wrote yesterday's visits and asked the door for today's."""
    global TODAY
    TODAY = date.today()


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def at(hour: float, days_ago: int = 0) -> float:
    return day_bounds(TODAY - timedelta(days=days_ago))[0] + hour * 3600


def hm(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M")


@pytest.fixture
def day():
    """Ana and Ben enrolled; today: Ana in at 08:05, 12:30 and 17:10, Ben at 09:00, a stranger
    refused at 10:00, a print of Ana refused by the photo check at 11:15; Ana yesterday too."""
    g = Gallery.open()
    g.add_person("Ana Lima", "E1", np.full((120, 100, 3), 90, np.uint8), unit(1), "m")
    g.add_person("Ben Ode", "E2", np.full((120, 100, 3), 120, np.uint8), unit(2), "m")
    log = EventLog(g)
    for h in (8 + 5 / 60, 12.5, 17 + 10 / 60):
        log.log_event("GRANTED", employee_id="E1", distance=0.1, threshold=0.18, reason="ok", when=at(h))
    log.log_event("GRANTED", employee_id="E2", distance=0.09, threshold=0.18, reason="ok", when=at(9))
    log.log_event("DENIED", distance=0.6, threshold=0.18, reason="stranger: no one within threshold "
                  "(nearest Ben Ode, median distance 0.60)", when=at(10))
    log.log_event("DENIED", employee_id="E1", distance=0.08, threshold=0.18, when=at(11.25),
                  reason="within 3 s the face did not move like a real head; a photo or a screen?",
                  evidence={"motion": 0.01, "min_motion": 0.05})
    log.log_event("GRANTED", employee_id="E1", distance=0.1, threshold=0.18, when=at(8, days_ago=1))
    yield g
    g.close()


def test_today_sums_up_who_came_in_from_the_real_log(day):
    from faceguard.tools.today import from_gallery
    today = from_gallery(day, TODAY)
    ana, ben = today.people
    assert (ana.employee_id, ana.name, ana.entries) == ("E1", "Ana Lima", 3)
    assert (hm(ana.first_entry), hm(ana.last_seen)) == ("08:05", "17:10")    # not yesterday's 08:00
    assert (ben.employee_id, hm(ben.first_entry), ben.entries) == ("E2", "09:00", 1)
    assert today.entries == 4 and today.entries_per_hour[8] == today.entries_per_hour[17] == 1
    assert today.denied_per_hour[10] == today.denied_per_hour[11] == 1
    stranger, print_of_ana = today.denials
    assert not stranger.suspected_attack and print_of_ana.suspected_attack
    assert today.suspected_attacks == 1 and today.doors == () and today.source == "this door"


def test_log_today_prints_the_day_and_its_json_shape(day, capsys):
    assert cli.main(["log", "today", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["day"] == TODAY.isoformat() and doc["source"] == "this door" and doc["doors"] == []
    assert doc["totals"] == {"entries": 4, "people": 2, "denied": 2, "suspected_attacks": 1}
    assert doc["people"][0]["first_entry"].startswith(f"{TODAY}T08:05:00")
    assert doc["people"][0]["first_entry"][19] in "+-"                 # local time with its offset
    assert [h["entries"] for h in doc["per_hour"]][8:13] == [1, 1, 0, 0, 1]
    assert [d["suspected_attack"] for d in doc["denials"]] == [False, True]
    assert set(doc["denials"][0]) == {"time", "door", "decision", "employee_id", "name", "reason",
                                      "suspected_attack"}
    assert cli.main(["log", "today"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Today, {TODAY:%A %d %B %Y} (this door)"
    assert out[1] == "4 entries by 2 people; 2 refused (1 suspected attack)"
    assert "08:05        17:10            3  Ana Lima (E1)" in out
    assert any(ln.startswith("11:15  SUSPECTED ATTACK  Ana Lima (E1): within 3 s") for ln in out)
    assert cli.main(["log", "today", "--door", "front"]) == 2          # no site: no doors to pick
    assert "--door needs a door that joined a site" in capsys.readouterr().err


def test_log_list_decision_in_any_case_and_unknown_ones_refused(day, capsys):
    assert cli.main(["log", "list", "--decision", "granted", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["events"]) == 5
    assert cli.main(["log", "list", "--decision", "Denied"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 events"
    assert cli.main(["log", "list", "--decision", "foo"]) == 2
    assert "--decision 'foo': not a decision; use one of DENIED, GRANTED" in capsys.readouterr().err


SITE_ROWS = [Row(at(8.1), "GRANTED", "E1", "Ana Lima", "ok", "front"),
             Row(at(8.6), "GRANTED", "E2", "Ben Ode", "ok", "back"),
             Row(at(13.0), "GRANTED", "E1", "Ana Lima", "ok", "back"),
             Row(at(9.2), "DENIED", None, None, "stranger", "back"),
             Row(at(9.4), "DENIED", "E2", "Ben Ode", "asked LEFT: the head did not turn; a photo?", "front")]


def test_today_view_at_a_site_has_a_door_column_and_filter(qtbot, styled):
    from faceguard.ui.today_view import TodayView
    loads = []

    def load(door):
        loads.append(door)
        return summarise(SITE_ROWS, TODAY, source="site", door=door or None)
    v = TodayView(None, load=load)
    qtbot.addWidget(v)
    v.show()
    assert v.heading.text() == f"Today, {TODAY:%A %d %B %Y}: every door"
    assert v.rows(v.people) == [["Ana Lima", "E1", "08:06", "13:00", "2", "front, back"],
                                ["Ben Ode", "E2", "08:36", "08:36", "1", "back"]]
    assert v.rows(v.refusals)[1][:4] == ["09:24", "front", "Ben Ode (E2)", "yes"]
    assert v.chart.entries[8] == 2 and v.chart.denied[9] == 2
    assert v.door.isVisible() and v.totals.text().endswith("1 suspected attack")
    screenshot(v, "today_view")
    assert v.set_door("back") and loads[-1] == "back"
    assert v.rows(v.people) == [["Ben Ode", "E2", "08:36", "08:36", "1", "back"],
                                ["Ana Lima", "E1", "13:00", "13:00", "1", "back"]]
    assert [r[1] for r in v.rows(v.refusals)] == ["back"]
    assert to_dict(v.today)["door"] == "back" and to_dict(v.today)["doors"] == ["back", "front"]


def test_today_view_on_a_door_of_its_own_reads_the_gallery(qtbot, styled, day):
    from faceguard.ui.today_view import TodayView
    v = TodayView(day)
    qtbot.addWidget(v)
    v.show()
    assert not v.door.isVisible() and v.people.isColumnHidden(5) and v.people.rowCount() == 2
    assert v.totals.text() == "4 entries by 2 people · 2 refused · 1 suspected attack"


def test_at_a_site_door_today_reads_every_doors_events_from_postgresql(day, postgres_server, capsys):
    """A real site (PostgreSQL): both doors' events, with the door; when the site cannot be
    reached, this door's own log and a note saying so."""
    from faceguard.site.config import SiteConfig
    from faceguard.site.store import SiteStore
    from faceguard.tools.today import for_this_door
    site_url = postgres_server.createdb("today")
    with SiteStore.connect(site_url) as store:
        _, key = store.create()
        for door in ("front", "back"):
            store.register_door(door)
        store.push_events("front", [(1, at(8.1), "E1", "Ana Lima", 0.1, 0.18, "GRANTED", "ok", "ok", None)])
        store.push_events("back", [(1, at(8.6), "E2", "Ben Ode", 0.1, 0.18, "GRANTED", "ok", "ok", None),
                                   (2, at(9.4), "E2", "Ben Ode", 0.08, 0.18, "DENIED",
                                    "a photo or a screen?", "", None),
                                   (3, at(8, days_ago=1), "E1", "Ana Lima", 0.1, 0.18, "GRANTED", "ok", "ok", None)])
        site_id = store.site_id()
    SiteConfig(site_url, site_id, "front").save()
    SiteConfig.save_key(key)
    today = for_this_door(day, TODAY)
    assert today.source == "site" and today.doors == ("back", "front") and today.note == ""
    assert [(p.employee_id, p.doors) for p in today.people] == [("E1", ("front",)), ("E2", ("back",))]
    assert [(r.door, r.suspected_attack) for r in today.denials] == [("back", True)]
    back = for_this_door(day, TODAY, door="BACK")                      # door names in any case
    assert [p.employee_id for p in back.people] == ["E2"] and back.door == "BACK"
    # `site log` prints local times with their offset, as `log list` and the CSV do.
    assert cli.main(["site", "log"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(datetime.fromtimestamp(at(9.4)).astimezone().isoformat(timespec="seconds") + "\tback")
    # The site down: this door's own log, said so.
    SiteConfig("postgresql://faceguard@127.0.0.1:1/nowhere", site_id, "front").save()
    alone = for_this_door(day, TODAY, timeout=2)
    assert alone.source == "this door" and "cannot be reached" in alone.note
    assert alone.entries == 4 and alone.doors == ("front",)



def test_gallery_list_prints_local_times_as_the_log_does(day, capsys):
    seen = at(9.5)
    with day.db.change() as change:
        change.con.execute("UPDATE people SET last_seen=? WHERE employee_id='E1'", (seen,))
    assert cli.main(["gallery", "list"]) == 0
    out = capsys.readouterr().out
    local = datetime.fromtimestamp(seen).astimezone().isoformat(timespec="seconds")
    assert f"E1\tAna Lima\tlast seen {local}" in out and local[19] in "+-"      # with its offset


def test_the_access_log_window_shows_every_doors_events_with_a_door_column(qtbot, styled, day, postgres_server):
    from faceguard.site.config import SiteConfig
    from faceguard.site.store import SiteStore
    from faceguard.ui.log_window import EVERY_DOOR, HERE, LogWindow
    site_url = postgres_server.createdb("logwindow")
    with SiteStore.connect(site_url) as store:
        _, key = store.create()
        for door in ("front", "back"):
            store.register_door(door)
        store.push_events("back", [(7, at(10.5), "E2", "Ben Ode", 0.09, 0.18, "GRANTED", "ok", "ok", None),
                                   (8, at(11.5), None, None, 0.6, 0.18, "DENIED", "stranger", "", None)])
        store.push_events("front", [(3, at(9.5), "E1", "Ana Lima", 0.1, 0.18, "GRANTED", "ok", "ok", None)])
        site_id = store.site_id()
    SiteConfig(site_url, site_id, "front").save()
    SiteConfig.save_key(key)
    w = LogWindow(day, today=TODAY)
    qtbot.addWidget(w)
    w.show()
    w.set_days(TODAY, TODAY)
    assert w.where.isVisible() and len(w.rows()[0]) == 6           # this door's log: no Door column
    assert len(w.rows()) == 6
    assert w.set_where(EVERY_DOOR)
    rows = w.rows()
    assert [(r[1], r[2], r[6]) for r in rows] == [("stranger", "DENIED", "back"), ("Ben Ode (E2)", "GRANTED", "back"),
                                                   ("Ana Lima (E1)", "GRANTED", "front")]
    w.set_person("E2")
    assert [r[6] for r in w.rows()] == ["back"]
    w.set_person("")
    w.set_decision("DENIED")
    assert [r[1] for r in w.rows()] == ["stranger"]
    screenshot(w, "log_window_every_door")
    assert w.set_where(HERE) and len(w.rows()[0]) == 6
