"""Issue 22 at the door: a passed end date stops a door nothing else wakes (item 3), log text that
cannot forge rows or run in a spreadsheet (item 13)."""

from __future__ import annotations

import csv
import json
import time

from faceguard.cli import main
from faceguard.doorcheck import DoorCheck
from faceguard.gallery.events import EventLog, display_row, write_csv
from faceguard.gallery.store import Gallery
from faceguard.settings import Settings


def test_a_passed_end_date_stops_the_running_door_without_another_write(lin_enrolled, pipeline):
    with Gallery.open() as gallery:
        gallery.set_valid_until(lin_enrolled, time.time() + 1.0)
        check = DoorCheck(pipeline, gallery, Settings(), log_events=False)
        assert check.matcher.ids == [lin_enrolled]
        version = gallery.db.data_version()
        time.sleep(1.1)
        check._follow_gallery()          # what every frame does first
        assert gallery.db.data_version() == version     # no process wrote anything
        assert check.matcher.ids == []


def test_a_forged_claim_cannot_forge_a_log_row(lin_enrolled, capsys):
    forged = "NOBODY\n2026-01-01 09:00:00\tMallory (E999)\tGRANTED"
    with Gallery.open() as gallery:
        EventLog(gallery).log_event("DENIED", reason=f"claimed id '{forged}': no employee has this id")
        EventLog(gallery).log_event("DENIED", employee_id="E\t999", name="=HYPERLINK(\"http://x\")")
    assert main(["log", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4                                   # header, two rows, the count
    assert all(line.count("\t") == 5 for line in out[:3])
    claim = next(line for line in out if "claimed id" in line)
    assert claim.split("\t")[2] == "DENIED" and "\\n" in claim and "\\t" in claim


def test_csv_export_neutralises_formulas(gallery, tmp_path):
    log = EventLog(gallery)
    log.log_event("DENIED", employee_id="@SUM(A1:A9)", name="=HYPERLINK(\"http://evil\",\"x\")",
                  reason="+cmd|' /C calc'!A0")
    write_csv(log.events(limit=None), tmp_path / "log.csv")
    with open(tmp_path / "log.csv", newline="") as fh:
        row = list(csv.reader(fh))[1]
    texts = [c for c in row if c and c[0] in "=+-@'"]
    assert texts and all(c.startswith("'") for c in texts)
    assert display_row(log.events(limit=1)[0])[1].startswith("=HYPERLINK")   # shown, not run


def test_a_site_door_cut_off_longer_than_the_cap_lets_nobody_in(shared_data, lin_enrolled, capsys):
    """Item 9: a door that has not heard from its site for longer than site_max_stale_s denies,
    saying since when; within the cap it decides from its copy as before."""
    from faceguard import paths
    from faceguard.settings import save_settings
    from faceguard.site.config import ReplicaState, SiteConfig

    SiteConfig("postgresql://nobody@127.0.0.1:1/none", "s1", "front").save()   # unreachable
    SiteConfig.save_key(bytes(32))
    clip = shared_data / "video" / "short_hamilton_clip.mp4"
    argv = ["door", "--camera", str(clip), "--headless", "--photo-check", "off", "--frames", "40"]
    save_settings(Settings(site_max_stale_s=300))
    for heard, granted in ((time.time() - 60, True), (time.time() - 600, False)):
        ReplicaState("s1", last_sync=heard).save(paths.data_dir())
        assert main(argv) == 0
        rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
        assert rows and any(r["decision"] == "GRANTED" for r in rows) == granted, rows
        if not granted:
            assert all(r["name"] is None for r in rows)
            assert any("has not heard from the site since" in r["reason"] for r in rows)


def test_the_running_door_keeps_the_wal_bounded(lin_enrolled, pipeline, monkeypatch):
    """Item 10: a door that logs for hours checkpoints and truncates the WAL by itself."""
    import faceguard.doorcheck as doorcheck

    with Gallery.open() as gallery:
        check = DoorCheck(pipeline, gallery, Settings())
        log = EventLog(gallery)
        for i in range(1500):
            log.log_event("DENIED", reason=f"stranger {i}", evidence={"pad": "x" * 400})
        wal = gallery.db.path.with_name(gallery.db.path.name + "-wal")
        grown = wal.stat().st_size
        monkeypatch.setattr(doorcheck, "WAL_CHECKPOINT_S", 0.0)
        check._wal_due = 0.0
        check._enforce_retention()           # what every frame does
        assert grown > 1 << 20 and wal.stat().st_size <= 1 << 20, (grown, wal.stat().st_size)
        check.close()


def test_the_stale_check_reads_a_replica_state_written_meanwhile_at_once():
    """The state is cached for a second (read on every frame), but not past a change of the file:
    a door started again at once (or a catch-up) must not decide from the old time."""
    from faceguard import paths
    from faceguard.site.config import ReplicaState, SiteConfig
    from faceguard.site.stale import stale_reason

    SiteConfig("postgresql://nobody@127.0.0.1:1/none", "s1", "front").save()
    ReplicaState("s1", last_sync=time.time() - 60).save(paths.data_dir())
    assert stale_reason(paths.data_dir(), 300) is None
    ReplicaState("s1", last_sync=time.time() - 600).save(paths.data_dir())
    assert "has not heard from the site since" in stale_reason(paths.data_dir(), 300)
    ReplicaState("s1", last_sync=time.time()).save(paths.data_dir())
    assert stale_reason(paths.data_dir(), 300) is None
