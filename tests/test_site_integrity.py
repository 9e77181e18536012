"""Issue 22 at the site: a real PostgreSQL (conftest's throw-away cluster), doors as real local
galleries in one process, edits through SiteGallery, and an administrator's SQL with psql's
rights but no site key. The outcome asserted is always the door's matcher: who it would let in."""

from __future__ import annotations

import time

import psycopg
import pytest
from conftest import flat_photo as photo
from conftest import unit

from faceguard.errors import FaceGuardError
from faceguard.gallery.events import EventLog
from faceguard.gallery.recognise import gallery_matcher
from faceguard.gallery.store import Gallery
from faceguard.site import SiteError
from faceguard.site.config import SiteConfig
from faceguard.site.joining import join
from faceguard.site.store import SiteStore


# -- ids (items 1, 2) ------------------------------------------------------------------------------
def test_a_case_variant_id_cannot_be_enrolled_at_another_door(site):
    with pytest.raises(FaceGuardError, match="already enrolled"):
        site.edit("back").add_person("Akhmed", "e001", photo(3), unit(3, site.dim), site.pipeline.model_id)
    assert site.sql("SELECT employee_id, name FROM people ORDER BY employee_id") == [("E001", "Lin"), ("E002", "Bo")]


def test_a_standalone_door_with_a_case_variant_cannot_join_over_someone(site, tmp_path):
    with Gallery.open(tmp_path / "C", tmp_path / "C.key") as c:
        c.add_person("Akhmed", "e001", photo(3), unit(3, site.dim), site.pipeline.model_id)
        with pytest.raises(SiteError, match="clash"):
            join(site.url, site.code, "side", c)
    assert site.sql("SELECT name FROM doors ORDER BY name") == [("back",), ("front",)]
    site.sync()
    assert site.galleries["back"].person("E001").name == "Lin" and site.let_in() == {"E001", "E002"}


def test_a_case_variant_remove_erases_at_the_site(site):
    site.edit("front").remove("e001")
    assert site.sql("SELECT deleted FROM people WHERE employee_id='E001'") == [(True,)]
    site.sync()
    assert site.galleries["back"].person("E001") is None and site.let_in() == {"E002"}


# -- an administrator's SQL without the site key (item 5) ------------------------------------------
def test_reactivating_by_sql_is_refused_by_every_door(site):
    site.edit().set_active("E001", False)
    site.sync()
    assert site.let_in() == {"E002"}
    site.sql("UPDATE people SET active=TRUE, seq=nextval('change_seq') WHERE employee_id='E001'")
    site.sync()
    assert site.let_in() == {"E002"}
    assert "without the site key" in site.replica("back").status()["quarantined"]["E001"]


def test_face_data_copied_onto_another_row_is_refused(site):
    # Lin's photo, embedding, digests and MAC copied onto Bo's row: Bo's face would open as Lin.
    site.sql("UPDATE people p SET photo=q.photo, digests=q.digests, mac=q.mac, seq=nextval('change_seq'), "
             "photo_seq=q.photo_seq FROM people q WHERE p.employee_id='E002' AND q.employee_id='E001'")
    site.sql("UPDATE embeddings e SET embedding=f.embedding FROM embeddings f "
             "WHERE e.employee_id='E002' AND f.employee_id='E001'")
    site.sync()
    # Bo's row is refused and, failing closed, Bo is let in no more; Lin's face opens only as Lin.
    m = gallery_matcher(site.galleries["back"], site.pipeline)
    assert m.ids == ["E001"] and site.let_in() == {"E001"}
    assert "E002" in site.replica("back").status()["quarantined"]


def test_an_erased_person_restored_from_an_older_dump_is_refused(site):
    people = site.sql("SELECT * FROM people ORDER BY employee_id")            # the dump
    embeddings = site.sql("SELECT * FROM embeddings")
    site.edit().remove("E001")
    site.sync()
    assert site.let_in() == {"E002"}
    # The whole site restored from the dump: Lin's old row (valid MAC, older change number) is
    # back, and the gallery version is below the door's cursor.
    site.sql("DELETE FROM embeddings")
    site.sql("DELETE FROM people")
    for row in people:
        site.sql(f"INSERT INTO people VALUES ({','.join(['%s'] * len(row))})", row)
    for row in embeddings:
        site.sql("INSERT INTO embeddings VALUES (%s, %s, %s)", row)
    site.sync()
    assert site.let_in() == {"E002"}
    assert "older" in site.replica("back").status()["quarantined"]["E001"]


# -- revocation always arrives (item 7) --------------------------------------------------------------
def test_one_bad_row_does_not_stop_later_revocations(site):
    seq = site.sql("SELECT nextval('change_seq')")[0][0]
    site.sql("INSERT INTO people (employee_id, name, created, consent_at, photo_seq, seq) "
             "VALUES ('X1', 'Mallory', 0, 0, %s, %s)", (seq, seq))
    site.edit().set_active("E002", False)
    site.edit().remove("E001")
    site.sync()
    assert site.let_in() == set()
    assert list(site.replica("back").status()["quarantined"]) == ["X1"]


# -- end dates travel (item 11) ----------------------------------------------------------------------
def test_an_end_date_reaches_every_door_and_travels_on_join(site, tmp_path):
    site.edit().set_valid_until("E002", time.time() - 1)
    site.sync()
    assert site.let_in() == {"E001"}
    assert site.galleries["back"].person("E002").valid_until is not None
    with Gallery.open(tmp_path / "C", tmp_path / "C.key") as c:
        until = time.time() + 3600
        c.add_person("Cy", "E003", photo(4), unit(4, site.dim), site.pipeline.model_id)
        c.set_valid_until("E003", until)
        join(site.url, site.code, "side", c)
    assert site.sql("SELECT valid_until FROM people WHERE employee_id='E003'")[0][0] == pytest.approx(until)


# -- erasure reaches the site's log (item 12) ---------------------------------------------------------
def test_erasure_takes_the_name_out_of_every_log(site):
    log = EventLog(site.galleries["back"])
    log.log_event("GRANTED", employee_id="E001", reason="Lin recognised (distance 0.31)")
    log.log_event("DENIED", reason="stranger; nearest Lin at 0.52")
    site.sync()
    site.edit().remove("E001")
    site.sync()
    for g in site.galleries.values():
        rows = g.db.con.execute("SELECT employee_id, name, reason FROM events").fetchall()
        assert all("Lin" not in (r[2] or "") and r[0] != "E001" and r[1] is None for r in rows), rows
    rows = site.sql("SELECT employee_id, name, reason FROM events ORDER BY local_id")
    assert len(rows) == 2 and rows[0][0].startswith("erased-") and rows[0][1] is None
    assert [r[2] for r in rows] == ["an erased person recognised (distance 0.31)",
                                    "stranger; nearest an erased person at 0.52"]


# -- revocation never waits behind the log (item 8) -------------------------------------------------
def test_revocation_arrives_within_2_s_while_the_log_table_is_locked(site):
    from faceguard.site.watch import SiteWatcher

    back = site.galleries["back"]
    watcher = SiteWatcher(back, SiteConfig(site.url, site.site_id, "back"), interval=60).start()
    locker = psycopg.connect(site.url)
    try:
        deadline = time.monotonic() + 10
        while watcher.syncs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)                       # the listener is set up after the first sync
        locker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")   # held: a long report
        EventLog(back).log_event("DENIED", reason="stranger")          # the door has a log to send
        delays = []
        for eid in ("E001", "E002"):
            t0 = time.monotonic()
            site.edit().set_active(eid, False)
            while back.person(eid).enabled and time.monotonic() - t0 < 10:
                time.sleep(0.02)
            delays.append(time.monotonic() - t0)
        assert max(delays) < 2.0, delays
        assert site.let_in() == set()
        # `site sync` beside it neither hangs nor fails: the gallery is in step, the log waits.
        t0 = time.monotonic()
        report = site.sync()
        assert time.monotonic() - t0 < 5 and report.pushed == 0 and "lock" in report.push_problem
    finally:
        watcher.stop(flush_timeout=0)         # before the lock goes: it must not send the event
        locker.close()
    print(f"revocation delays with the log table locked: {[round(d, 3) for d in delays]} s")
    assert site.sync().pushed == 1 and site.sync().push_problem is None


# -- key rotation and removing a door (item 6) ---------------------------------------------------
def test_rotation_leaves_an_old_code_with_an_old_backup_and_a_removed_door_nothing(site):
    from faceguard.gallery import crypto
    from faceguard.site import keys

    backup = dict(site.sql("SELECT key, value FROM site_meta"))         # pg_dump before the change
    with SiteStore.connect(site.url) as store:
        store.use_key(site.key)
        code, new_key = store.rotate_key(site.key, remove="back")
    assert new_key != site.key and code != site.code
    old = keys.unwrap(backup["code_salt"], backup["wrapped_key"], site.code)
    assert old == site.key                                               # all the backup gives
    photo = bytes(site.sql("SELECT photo FROM people WHERE employee_id='E001'")[0][0])
    with pytest.raises(FaceGuardError):
        crypto.Cipher(old).decrypt(photo, crypto.PHOTO)
    with pytest.raises(SiteError, match="join code is wrong"), SiteStore.connect(site.url) as store:
        store.unlock(site.code)
    # The door that remains follows the rotation by itself (its own key pair) and keeps working.
    site.edit("front").set_active("E002", False)
    assert SiteConfig.key_path().read_text().strip() == new_key.hex()
    site.sync("front")
    assert site.let_in("front") == {"E001"}
    # The removed door, holding the old key, gets no new one.
    SiteConfig.save_key(site.key)
    with pytest.raises(SiteError, match="holds no copy of the new one"):
        site.sync("back")


def test_stripping_a_mac_and_the_sealed_flag_does_not_get_a_row_resealed(site):
    site.edit().set_active("E001", False)
    site.sql("UPDATE people SET mac=NULL, active=TRUE, seq=nextval('change_seq') WHERE employee_id='E001'")
    site.sql("DELETE FROM site_meta WHERE key='row_macs'")
    site.sync()
    assert site.let_in() == {"E002"} and site.sql("SELECT mac FROM people WHERE employee_id='E001'") == [(None,)]
