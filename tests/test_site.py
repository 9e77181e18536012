"""Several doors, one site: a real PostgreSQL (a throw-away cluster), real doors as subprocesses
with their own data folders, the real clip through FrameSource."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

CLIP_FRAMES = "40"   # Miranda is granted within the clip's first few frames


class Door:
    """One door: its own data and config folders, driven through the `faceguard` CLI."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "XDG_DATA_HOME": str(root / "data"), "XDG_CONFIG_HOME": str(root / "config"),
                    "XDG_STATE_HOME": str(root / "state"), "XDG_CACHE_HOME": str(root / "cache"),
                    "PYTHONPATH": str(REPO)}
        self.data = root / "data" / "FaceGuard"
        self.config = root / "config" / "FaceGuard"

    def cmd(self, *args) -> list[str]:
        return [sys.executable, "-m", "faceguard", *map(str, args)]

    def run(self, *args, ok: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run(self.cmd(*args), env=self.env, cwd=REPO, capture_output=True, text=True,
                             timeout=300)
        if ok:
            assert out.returncode == 0, f"{args}: rc {out.returncode}\n{out.stdout}\n{out.stderr}"
        return out

    def json(self, *args) -> dict:
        return json.loads(self.run(*args, "--json").stdout)

    def door(self, clip: Path) -> list[dict]:
        out = self.run("door", "--camera", clip, "--headless", "--photo-check", "off", "--frames", CLIP_FRAMES)
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def sql(self, query: str, args=()) -> list[tuple]:
        con = sqlite3.connect(self.data / "gallery.db")
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def state(self) -> dict:
        return json.loads((self.data / "site-state.json").read_text())


def site_sql(url: str, query: str, args=()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


@pytest.fixture
def doors(tmp_path, site_url):
    a, b = Door(tmp_path / "A"), Door(tmp_path / "B")
    code = a.json("site", "create", site_url)["code"]
    a.run("site", "join", site_url, "--code", code, "--door", "front")
    b.run("site", "join", site_url, "--code", code, "--door", "back")
    return a, b


def test_a_wrong_join_code_is_refused(tmp_path, site_url):
    a, b = Door(tmp_path / "A"), Door(tmp_path / "B")
    code = a.json("site", "create", site_url)["code"]
    assert len(code.replace("-", "")) == 16
    wrong = ("B" if code[0] != "B" else "C") + code[1:]
    out = b.run("site", "join", site_url, "--code", wrong, "--door", "back", ok=False)
    assert out.returncode == 2
    assert "join code is wrong" in out.stderr
    assert not (b.config / "site.json").exists() and not (b.config / "site.key").exists()
    assert site_sql(site_url, "SELECT name FROM doors") == []
    # The right code joins; a second door under a taken name is refused; a second create too.
    b.run("site", "join", site_url, "--code", code.lower(), "--door", "back")
    out = a.run("site", "join", site_url, "--code", code, "--door", "back", ok=False)
    assert out.returncode == 2 and "already joined" in out.stderr
    out = a.run("site", "create", site_url, ok=False)
    assert out.returncode == 2 and "already holds a FaceGuard site" in out.stderr
    # A joined door can replace the code: the old one stops working, the new one joins.
    new = b.json("site", "code")["code"]
    c = Door(tmp_path / "C")
    out = c.run("site", "join", site_url, "--code", code, "--door", "side", ok=False)
    assert out.returncode == 2 and "join code is wrong" in out.stderr
    c.run("site", "join", site_url, "--code", new, "--door", "side")
    assert sorted(r[0] for r in site_sql(site_url, "SELECT name FROM doors")) == ["back", "side"]
    # The database holds the site key only wrapped: no 32-byte key in clear in site_meta.
    key = (b.config / "site.key").read_text().strip()
    assert all(key not in v for (v,) in site_sql(site_url, "SELECT value FROM site_meta"))


def test_two_doors_share_gallery_and_log_across_an_outage(doors, pg, site_url, shared_data):
    a, b = doors
    clip = shared_data / "video" / "short_hamilton_clip.mp4"
    a.run("enroll", shared_data / "video" / "lin-manuel-miranda.png", "--name", "Lin-Manuel Miranda",
          "--id", "E001", "--consent")
    # The site holds the face only encrypted: no JPEG marker, no float vector in clear.
    photo, = site_sql(site_url, "SELECT photo FROM people WHERE employee_id='E001'")[0]
    assert bytes(photo)[:4] == b"FGE1" and b"\xff\xd8\xff" not in bytes(photo)[:64]

    assert b.json("site", "sync")["applied"] == 1
    assert [p["employee_id"] for p in b.json("gallery", "list")["people"]] == ["E001"]
    granted = [d for d in b.door(clip) if d["decision"] == "GRANTED"]
    assert granted and granted[0]["person_id"] == "E001"
    # The running door sent its log itself (its watcher), no `site sync` needed.
    sent = site_sql(site_url, "SELECT local_id, decision FROM events WHERE door='back' ORDER BY local_id")
    assert sent == b.sql("SELECT id, decision FROM events ORDER BY id")

    # Site down: B still grants, queues its events, and refuses gallery edits.
    pg.stop()
    try:
        before = b.sql("SELECT MAX(id) FROM events")[0][0]
        decisions = b.door(clip)
        assert [d["person_id"] for d in decisions if d["decision"] == "GRANTED"] == ["E001"]
        queued = b.sql("SELECT id FROM events WHERE id > ?", (before,))
        assert len(queued) == len(decisions) > 0
        status = b.json("site", "status")
        assert status["reachable"] is False and status["pending_events"] == len(queued)
        out = b.run("gallery", "remove", "E001", ok=False)
        assert out.returncode == 2 and "cannot be reached now" in out.stderr
        out = b.run("enroll", shared_data / "video" / "lin-manuel-miranda.png", "--name", "Twin",
                    "--id", "E002", "--consent", "--override-duplicate", ok=False)
        assert out.returncode == 2 and "cannot be reached now" in out.stderr
        assert b.sql("SELECT employee_id FROM people") == [("E001",)]
    finally:
        pg.start()

    b.run("site", "sync")
    b.run("site", "sync")     # a second catch-up sends nothing twice
    local = sorted(r[0] for r in b.sql("SELECT id FROM events"))
    site_log = a.json("site", "log", "--limit", "0")["events"]
    from_b = [e["local_id"] for e in site_log if e["door"] == "back"]
    assert sorted(from_b) == local                     # every event, once each
    assert {e["door"] for e in site_log} == {"back"}
    assert b.json("site", "status")["pending_events"] == 0

    # Remove at A: B's replica keeps no trace of the face.
    assert b.sql("SELECT COUNT(*) FROM events WHERE employee_id='E001' AND snapshot_file IS NOT NULL")[0][0] > 0
    a.run("gallery", "remove", "E001")
    b.run("site", "sync")
    assert b.sql("SELECT COUNT(*) FROM people")[0][0] == 0
    assert b.sql("SELECT COUNT(*) FROM events WHERE snapshot_file IS NOT NULL AND employee_id='E001'")[0][0] == 0
    assert list((b.data / "photos").iterdir()) == []
    # What snapshots remain are the strangers' (no employee id), as on a single door.
    strangers = {r[0] for r in b.sql("SELECT snapshot_file FROM events WHERE employee_id IS NULL "
                                     "AND snapshot_file IS NOT NULL")}
    assert {p.name for p in (b.data / "snapshots").iterdir()} == strangers
    # The log rows stay (the door opened at these times), under a pseudonym: erase means erase.
    assert b.sql("SELECT COUNT(*) FROM events WHERE employee_id='E001'")[0][0] == 0
    assert b.sql("SELECT COUNT(*) FROM events WHERE employee_id LIKE 'erased-%' AND name IS NULL")[0][0] > 0
    assert site_sql(site_url, "SELECT deleted, photo IS NULL, name FROM people") == [(True, True, "")]
    assert site_sql(site_url, "SELECT COUNT(*) FROM embeddings")[0][0] == 0
    assert site_sql(site_url, "SELECT COUNT(*) FROM events WHERE snapshot IS NOT NULL "
                              "AND employee_id='E001'")[0][0] == 0
    # Erase means the id and name at the site too (issue 22 item 12): a pseudonym stays.
    assert site_sql(site_url, "SELECT COUNT(*) FROM events WHERE employee_id='E001' OR name IS NOT NULL "
                              "OR strpos(reason, 'Miranda') > 0")[0][0] == 0
    assert site_sql(site_url, "SELECT COUNT(*) FROM events WHERE left(employee_id, 7) = 'erased-'")[0][0] > 0
    assert b.json("gallery", "check")["ok"] is True


def _site_people(url: str, code_door: Door, n: int, shared_data) -> None:
    """n people at the site, enrolled through the store (photos encrypted with the site key)."""
    import cv2

    from faceguard.gallery import crypto
    from faceguard.site.store import SiteStore

    key = bytes.fromhex((code_door.config / "site.key").read_text().strip())
    cipher = crypto.Cipher(key)
    rgb = cv2.imread(str(shared_data / "video" / "lin-manuel-miranda.png"))
    ok, jpeg = cv2.imencode(".jpg", rgb)
    photo = cipher.encrypt(jpeg.tobytes(), crypto.PHOTO)
    rng = np.random.default_rng(0)
    from faceguard.site.replica import door_model_id

    mid = door_model_id()
    with SiteStore.connect(url) as store:
        store.use_key(key)
        for i in range(n):
            v = rng.normal(size=128).astype(np.float32)
            v /= np.linalg.norm(v)
            store.add_person("test", f"Person {i}", f"P{i:04d}", photo,
                             cipher.encrypt(v.tobytes(), crypto.EMBEDDING), mid, time.time())


def test_kill_9_during_sync_leaves_both_stores_consistent(doors, site_url, shared_data):
    a, b = doors
    n = 250
    _site_people(site_url, a, n, shared_data)
    proc = subprocess.Popen(b.cmd("site", "sync"), env=b.env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = b.data / "site-state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text() or "{}").get("seq", 0) > 0:
            break
        time.sleep(0.005)
    time.sleep(0.137)   # into the next batch: between and inside its people's transactions
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    reached = b.state()["seq"]
    assert 0 < reached < n, "the kill did not land in the middle of the sync"

    # Both stores are consistent: the replica holds whole people only, the site is untouched.
    check = b.json("gallery", "check")
    assert check["ok"], check["problems"]
    assert site_sql(site_url, "SELECT COUNT(*) FROM people WHERE NOT deleted")[0][0] == n
    # The next sync resumes and the replica equals the site.
    b.run("site", "sync")
    local = sorted(r[0] for r in b.sql("SELECT employee_id FROM people"))
    assert local == [f"P{i:04d}" for i in range(n)]
    assert len(list((b.data / "photos").iterdir())) == n
    assert b.json("gallery", "check")["ok"]
    assert b.json("site", "status")["gallery_version"] == b.json("site", "status")["site_gallery_version"]


def test_kill_9_during_push_loses_and_duplicates_no_event(doors, site_url):
    a, b = doors
    con = sqlite3.connect(b.data / "gallery.db")
    with con:
        con.executemany("INSERT INTO events (time, decision, reason) VALUES (?, 'DENIED', 'test')",
                        [(1e9 + i,) for i in range(3000)])
    con.close()
    for _ in range(2):
        proc = subprocess.Popen(b.cmd("site", "sync"), env=b.env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if site_sql(site_url, "SELECT COUNT(*) FROM events")[0][0] > 0:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    b.run("site", "sync")
    # A door result that arrives after the event was sent reaches the site too.
    last = b.sql("SELECT MAX(id) FROM events")[0][0]
    con = sqlite3.connect(b.data / "gallery.db")
    with con:
        con.execute("INSERT INTO events (time, decision, reason) VALUES (?, 'GRANTED', 'late')", (time.time(),))
    con.close()
    b.run("site", "sync")
    con = sqlite3.connect(b.data / "gallery.db")
    with con:
        con.execute("UPDATE events SET door_result='ok: relay closed' WHERE id=?", (last + 1,))
    con.close()
    b.run("site", "sync")
    assert site_sql(site_url, "SELECT door_result FROM events WHERE local_id=%s", (last + 1,)) == [("ok: relay closed",)]
    rows = site_sql(site_url, "SELECT local_id, COUNT(*) FROM events WHERE door='back' GROUP BY local_id")
    assert len(rows) == 3001 and all(c == 1 for _, c in rows)
    assert sorted(r[0] for r in rows) == sorted(r[0] for r in b.sql("SELECT id FROM events"))


def test_a_change_reaches_a_running_door_within_seconds(site_url):
    """LISTEN/NOTIFY: with a 60 s catch-up timer, a change still arrives within seconds."""
    from faceguard.gallery import crypto
    from faceguard.gallery.store import Gallery
    from faceguard.site.config import SiteConfig
    from faceguard.site.joining import join
    from faceguard.site.replica import door_model_id
    from faceguard.site.store import SiteStore
    from faceguard.site.watch import SiteWatcher

    with SiteStore.connect(site_url) as store:
        code, key = store.create()
    with Gallery.open() as gallery:
        join(site_url, code, "lobby", gallery)
        watcher = SiteWatcher(gallery, SiteConfig.load(), interval=60).start()
        try:
            deadline = time.monotonic() + 10
            while watcher.syncs == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)       # the listener is set up after the first sync
            cipher = crypto.Cipher(key)
            v = np.zeros(128, np.float32)
            v[0] = 1
            import cv2
            ok, jpeg = cv2.imencode(".jpg", np.full((200, 160, 3), 128, np.uint8))
            t0 = time.monotonic()
            with SiteStore.connect(site_url) as store:
                store.use_key(key)
                store.add_person("admin", "Ana", "A1", cipher.encrypt(jpeg.tobytes(), crypto.PHOTO),
                                 cipher.encrypt(v.tobytes(), crypto.EMBEDDING), door_model_id(), time.time())
            while not watcher.take_changed() and time.monotonic() - t0 < 5:
                time.sleep(0.02)
            delay = time.monotonic() - t0
            assert gallery.person("A1") is not None and gallery.person("A1").name == "Ana"
            assert delay < 5, f"the change took {delay:.1f} s"
            assert "in step" in watcher.status_line()
        finally:
            watcher.stop(flush_timeout=0)


def test_the_schema_upgrades_step_by_step_and_a_newer_site_is_refused(site_url):
    import psycopg

    from faceguard.site import SiteError, schema
    from faceguard.site.store import SiteStore

    with SiteStore.connect(site_url) as store:
        store.create()
        store.add_person("admin", "Ana", "A1", b"x", b"y", "m", 0.0)

    def add_badge(cur):
        cur.execute("ALTER TABLE people ADD COLUMN badge TEXT NOT NULL DEFAULT ''")

    with psycopg.connect(site_url, autocommit=True) as conn:
        newer = len(schema.MIGRATIONS) + 1
        assert schema.migrate(conn, [*schema.MIGRATIONS, (newer, add_badge)]) == newer
        assert conn.execute("SELECT employee_id, badge FROM people").fetchall() == [("A1", "")]
    with pytest.raises(SiteError, match="newer FaceGuard"):
        SiteStore.connect(site_url)
    with psycopg.connect(site_url) as conn:   # refused untouched
        assert conn.execute("SELECT value FROM site_meta WHERE key='schema_version'").fetchone() == (str(newer),)


def _tiny_person(store, key: bytes, eid: str, model_id: str) -> None:
    import cv2

    from faceguard.gallery import crypto

    cipher = crypto.Cipher(key)
    store.use_key(key)
    v = np.zeros(128, np.float32)
    v[len(eid) % 128] = 1
    ok, jpeg = cv2.imencode(".jpg", np.full((120, 100, 3), 90, np.uint8))
    store.add_person("admin", f"Name {eid}", eid, cipher.encrypt(jpeg.tobytes(), crypto.PHOTO),
                     cipher.encrypt(v.tobytes(), crypto.EMBEDDING), model_id, time.time())


def test_a_site_restored_from_an_older_backup_is_copied_again(site_url):
    """Change numbers restart below the door's cursor: the door must notice, not miss them."""
    import psycopg

    from faceguard.gallery.store import Gallery
    from faceguard.site.config import SiteConfig
    from faceguard.site.joining import join
    from faceguard.site.replica import Replica, door_model_id
    from faceguard.site.store import SiteStore

    mid = door_model_id()
    with SiteStore.connect(site_url) as store:
        code, key = store.create()
        for eid in ("A1", "A2", "A3"):
            _tiny_person(store, key, eid, mid)
    with Gallery.open() as gallery:
        join(site_url, code, "lobby", gallery)
        assert sorted(p.employee_id for p in gallery.people()) == ["A1", "A2", "A3"]
        # "Restore" the site as it was before any enrolment, then enrol someone else there.
        with psycopg.connect(site_url, autocommit=True) as conn:
            conn.execute("DELETE FROM people")
            conn.execute("ALTER SEQUENCE change_seq RESTART WITH 1")
        with SiteStore.connect(site_url) as store:
            _tiny_person(store, key, "B1", mid)
        report = Replica(gallery, SiteConfig.load()).sync()
        assert report.version == 1
        assert [p.employee_id for p in gallery.people()] == ["B1"]
        assert len(list(gallery.photos_dir.iterdir())) == 1
