"""The gallery dialog's new actions on real widgets and the real SQLite (deactivate greyed and
never let in at the door on the real clip, valid-until, change of id, case-insensitive clash,
replace photo through the gate and the duplicate check), the bulk enrolment dialog with 20
dev-set people, and the confirmation that ends an enrolment."""

from __future__ import annotations

import os
import shutil
import sqlite3

from conftest import HANG_MS

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import pytest  # noqa: E402
from conftest import blurred, dev_people, fake_window, photo, screenshot  # noqa: E402  # noqa: E402

from faceguard.gallery.enrol import enrol  # noqa: E402
from faceguard.settings import Settings  # noqa: E402
from faceguard.vision.image import load_image  # noqa: E402

pytestmark = pytest.mark.usefixtures("styled")   # the app's style sheet, as users see it


def db_rows(g, sql):
    with sqlite3.connect(g.db.path) as con:
        return con.execute(sql).fetchall()


def open_dialog(qtbot, gallery, pipeline):
    from faceguard.ui.gallery_dialog import GalleryDialog
    d = GalleryDialog(gallery, pipeline, Settings())
    qtbot.addWidget(d)
    d.failures = []
    d._fail = lambda exc: d.failures.append(str(exc))      # instead of a modal message box
    d.show()
    return d


def running_door(qtbot, pipeline, gallery, clip: str):
    """The door window started on ``clip``, the photo check off (as the recognition tests):
    only the gallery decides here."""
    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.sounds import SoundPlayer
    w = DoorWindow(Settings(camera=clip, photo_check=False), pipeline, gallery,
                   sounds=SoundPlayer(enabled=False), save=False)
    qtbot.addWidget(w)
    w.show()
    w.start()
    return w


def cell(d, employee_id, column):
    from PySide6.QtCore import Qt

    from faceguard.ui.people_model import COLUMNS
    row = next(r for r, p in enumerate(d.model.people) if p.employee_id == employee_id)
    idx = d.model.index(row, COLUMNS.index(column))
    return d.model.data(idx), d.model.data(idx, Qt.ItemDataRole.ForegroundRole)


def test_gallery_dialog_manages_people(qtbot, gallery, pipeline, lfw, split, tmp_path):
    t = pipeline.threshold_for(2)
    enrol(gallery, pipeline, load_image(photo(lfw, split, "Hugo_Chavez")), "Hugo Chavez", "E7", True, t)
    enrol(gallery, pipeline, load_image(photo(lfw, split, "Tom_Ridge")), "Tom Ridge", "T1", True, t)
    d = open_dialog(qtbot, gallery, pipeline)
    assert d.select("T1") and d.active_btn.text() == "Deactivate"
    assert cell(d, "T1", "Status") == ("active", None)
    d.active_btn.click()
    assert db_rows(gallery, "SELECT active FROM people WHERE employee_id='T1'") == [(0,)]
    text, colour = cell(d, "T1", "Status")
    assert text == "inactive" and colour.getRgb()[:3] == (150, 150, 150)       # greyed
    assert d.active_btn.text() == "Activate"
    d.select("E7")                                   # the greyed row shows unselected
    qtbot.waitUntil(lambda: d.model.thumbs_loaded >= 2, timeout=5000)
    screenshot(d, "gallery_dialog_inactive")
    d.select("T1")
    d.active_btn.click()
    assert db_rows(gallery, "SELECT active FROM people WHERE employee_id='T1'") == [(1,)]

    assert d.valid_until_selected("2020-03-31")
    assert cell(d, "T1", "Status")[0] == "expired 2020-03-31" and not gallery.person("T1").active
    assert d.valid_until_selected("")
    assert cell(d, "T1", "Status")[0] == "active"

    assert not d.change_id_selected("e7")                                   # case-insensitive clash
    assert "already enrolled as 'E7'" in d.failures[-1]
    assert d.change_id_selected("T-0001")
    assert d.selected().employee_id == "T-0001"
    assert sorted(db_rows(gallery, "SELECT employee_id FROM people")) == [("E7",), ("T-0001",)]

    before = db_rows(gallery, "SELECT photo_file FROM people WHERE employee_id='T-0001'")
    assert not d.replace_selected(str(photo(lfw, split, "Hugo_Chavez", "probe")))   # another person
    assert "looks like Hugo Chavez" in d.failures[-1]
    assert not d.replace_selected(str(blurred(photo(lfw, split, "Tom_Ridge", "probe"), tmp_path)))
    assert d.failures[-1] == "This photo cannot be used: the photo is blurred; use a sharp one."
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(photo(lfw, split, "Tom_Ridge", "probe"))), (120, 120)))
    assert not d.replace_selected(str(small))
    assert "px wide; use a photo where it is at least 80 px" in d.failures[-1]
    assert db_rows(gallery, "SELECT photo_file FROM people WHERE employee_id='T-0001'") == before
    assert d.replace_selected(str(photo(lfw, split, "Tom_Ridge", "probe")))
    assert db_rows(gallery, "SELECT photo_file FROM people WHERE employee_id='T-0001'") != before


def test_deactivated_person_is_not_let_in_on_the_clip(qtbot, pipeline, gallery, shared_data, lfw, split,
                                                      lin_enrolled):
    # Someone active stays enrolled, so the door still decides (an empty gallery decides nothing).
    enrol(gallery, pipeline, load_image(photo(lfw, split, "Tom_Ridge")), "Tom Ridge", "T1", True)
    d = open_dialog(qtbot, gallery, pipeline)
    assert d.select(lin_enrolled)
    d.active_btn.click()
    assert not gallery.person(lin_enrolled).active
    clip = str(shared_data / "video" / "short_hamilton_clip.mp4")
    w = running_door(qtbot, pipeline, gallery, clip)
    frames = int(cv2.VideoCapture(clip).get(cv2.CAP_PROP_FRAME_COUNT))
    qtbot.waitUntil(lambda: w.last_frame_index >= frames - 1 or "ended" in w.camera_text, timeout=120000)
    w.stop()
    kinds = [d.kind for d in w.decisions]
    assert "GRANTED" not in kinds and "DENIED" in kinds, kinds
    assert not any(r.startswith("GRANTED") for r in w.event_rows())


def test_bulk_enrolment_dialog_enrols_20_dev_set_people(qtbot, gallery, pipeline, lfw, split, tmp_path):
    from faceguard.ui.bulk_dialog import BulkEnrolDialog
    folder = tmp_path / "new-staff"
    folder.mkdir()
    people = dev_people(split, 20)
    for who in people:
        shutil.copy(photo(lfw, split, who), folder)
    d = BulkEnrolDialog(gallery, pipeline, Settings())
    qtbot.addWidget(d)
    d.show()
    assert not d.choose(tmp_path / "nowhere") and "neither a folder" in d.summary.text()
    assert d.choose(folder) and d.table.rowCount() == 20
    assert not d.start_btn.isEnabled()                       # consent first
    d.consent.setChecked(True)
    assert d.start_btn.isEnabled() and d.start()
    assert not d.close_btn.isEnabled()
    qtbot.waitUntil(lambda: not d.running, timeout=120000)
    report = d.report()
    stored = db_rows(gallery, "SELECT employee_id, name FROM people")
    ok = [r for r in report if r[4].startswith("enrolled")]      # columns: face, photo, name, id, result
    assert len(report) == 20 and len(ok) == len(stored) >= 14
    assert sorted(r[3] for r in ok) == sorted(e for e, _ in stored)
    assert all(r[4].startswith("This photo cannot be used:") for r in report if r not in ok)
    assert d.progress.value() == d.progress.maximum() == 20
    assert d.summary.text().startswith(f"{len(ok)} of 20 enrolled, {20 - len(ok)} refused")
    screenshot(d, "bulk_enrol_dialog")


def test_enrolment_ends_with_a_confirmation(qtbot, monkeypatch):
    from types import SimpleNamespace

    import faceguard.ui.enroll_dialog as ed
    w = fake_window(qtbot, {"in": True})
    monkeypatch.setattr(type(w), "gallery", property(lambda self: []))   # a stand-in gallery: nobody enrolled
    w.controller.gallery_changed = lambda: None

    class Fake:
        enrolled = SimpleNamespace(name="Ana Lima", employee_id="E1")
        enrolled_many: list = []

        def __init__(self, *a, **k):
            pass

        def exec(self):
            return 1

        def deleteLater(self):
            pass
    monkeypatch.setattr(ed, "EnrollDialog", Fake)
    w.open_enrol()
    assert w.enrol_confirmation == "Enrolled Ana Lima (E1). The door check lets this person in from now on."
    assert w.statusBar().currentMessage() == w.enrol_confirmation
    assert w.notice_box.isVisible() and w.notice_box.text() == w.enrol_confirmation


def test_enrol_dialog_says_what_is_wrong_with_a_photo_file_and_opens_bulk(qtbot, gallery, pipeline, lfw,
                                                                          split, tmp_path):
    from faceguard.ui.enroll_dialog import EnrollDialog
    d = EnrollDialog(pipeline, gallery, Settings(), live=False)
    qtbot.addWidget(d)
    d.show()
    assert not d.load_photo(blurred(photo(lfw, split, "Tom_Ridge", "probe"), tmp_path))
    assert d.error.text() == "This photo cannot be used: the photo is blurred; use a sharp one."
    assert d.feedback.text() == "The photo is blurred; use a sharp one"   # a file is not asked to hold still
    two = tmp_path / "two.jpg"
    a, b = (cv2.imread(str(photo(lfw, split, w))) for w in ("Tom_Ridge", "Hugo_Chavez"))
    cv2.imwrite(str(two), cv2.hconcat([a, b]))
    assert not d.load_photo(two)
    assert d.error.text() == "This photo cannot be used: two faces: crop the photo to one person."
    folder = tmp_path / "few"
    folder.mkdir()
    for who in ("Abel_Pacheco", "Akhmed_Zakayev"):
        shutil.copy(photo(lfw, split, who), folder)
    bulk = d.open_bulk()
    bulk.show()
    assert bulk.choose(folder)
    bulk.consent.setChecked(True)
    bulk.start()
    qtbot.waitUntil(lambda: not bulk.running, timeout=HANG_MS)
    bulk.close_btn.click()
    assert d.result() == 1                                   # people were enrolled: done
    assert [i.employee_id for i in d.enrolled_many] == ["Abel_Pacheco_0001", "Akhmed_Zakayev_0001"]


def test_bulk_enrolment_confirmation_names_them(qtbot, monkeypatch):
    from types import SimpleNamespace

    import faceguard.ui.enroll_dialog as ed
    w = fake_window(qtbot, {"in": True})
    monkeypatch.setattr(type(w), "gallery", property(lambda self: []))   # a stand-in gallery: nobody enrolled
    w.controller.gallery_changed = lambda: None

    class Fake:
        enrolled = None
        enrolled_many = [SimpleNamespace(name=f"P{i}", employee_id=f"E{i}") for i in range(7)]

        def __init__(self, *a, **k):
            pass

        def exec(self):
            return 1

        def deleteLater(self):
            pass
    monkeypatch.setattr(ed, "EnrollDialog", Fake)
    w.open_enrol()
    assert w.enrol_confirmation == ("Enrolled P0 (E0), P1 (E1), P2 (E2), P3 (E3), P4 (E4) and 2 more. "
                                    "The door check lets them in from now on.")


def test_a_valid_until_date_passing_while_the_door_runs_reloads_the_gallery(qtbot, gallery):
    import time

    import numpy as np
    w = fake_window(qtbot, {"in": True})
    w.controller.gallery = gallery
    v = np.random.default_rng(3).normal(size=128).astype(np.float32)
    gallery.add_person("Temp Worker", "C1", np.full((80, 80, 3), 90, np.uint8), v / np.linalg.norm(v), "m")
    until = time.time() + 5
    gallery.set_valid_until("C1", until)
    counts = []
    w.controller.enrolled.connect(counts.append)          # what a reload tells the window
    assert not w.controller.check_expiry(until - 1) and counts == []
    assert w.controller.check_expiry(until + 1) and len(counts) == 1   # passed: reloaded
    assert w.controller.check_expiry(until + 60) is False  # once
    assert w.controller._expiry_timer.isActive()


def test_a_change_in_the_dialog_reaches_the_running_door_at_once(qtbot, pipeline, gallery, shared_data,
                                                                lin_enrolled):
    """Issue 22 item 4: the door's check shares the dialog's connection, so SQLite's
    data_version does not see the write; the dialog tells the running door instead."""
    from faceguard.ui.gallery_dialog import GalleryDialog
    w = running_door(qtbot, pipeline, gallery, str(shared_data / "video" / "short_hamilton_clip.mp4"))
    qtbot.waitUntil(lambda: w.controller.check is not None and w.last_frame_index >= 1, timeout=HANG_MS)
    assert w.controller.check.matcher.ids == [lin_enrolled]
    d = GalleryDialog(gallery, pipeline, Settings(), parent=w)
    qtbot.addWidget(d)
    d.show()
    assert d.select(lin_enrolled)
    d.active_btn.click()                                     # the dialog stays open
    qtbot.waitUntil(lambda: w.controller.check.matcher.ids == [], timeout=HANG_MS)   # dialog still open
    w.stop()
