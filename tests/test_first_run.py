"""Start-up paths of the door window: a missing key file ends in the explanatory dialog and a
usable window (no AttributeError), and the first-run checklist."""

from __future__ import annotations

import os
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import FakeCapture, screenshot  # noqa: E402

from faceguard.settings import Settings  # noqa: E402

pytestmark = pytest.mark.usefixtures("styled")   # the app's style sheet, as users see it


def unit(seed):
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def test_missing_key_file_explains_then_leaves_a_usable_window(qtbot, monkeypatch):
    import faceguard.ui.app as app
    from faceguard.camera import FrameSource
    from faceguard.gallery import crypto
    from faceguard.gallery.store import Gallery
    from faceguard.ui.door_window import NO_GALLERY_TEXT, DoorWindow
    from faceguard.ui.sounds import SoundPlayer
    with Gallery.open() as g:
        g.add_person("Ana Lima", "E1", np.full((80, 80, 3), 120, np.uint8), unit(1), "m")
    crypto.default_key_file().unlink()
    shown, hooked = [], []
    monkeypatch.setattr(app, "show_error", lambda message, parent=None: shown.append(message))
    monkeypatch.setattr(app, "_show_from_hook", lambda message: hooked.append(message))
    app.install_exception_hook()
    gallery, problem = app.open_gallery(None)
    assert gallery is None and shown == [problem]
    assert "key file" in problem and "missing" in problem and "Restore the key file" in problem
    plug = {"in": True}
    w = DoorWindow(Settings(camera="fake://cam"), SimpleNamespace(provider="CPU"), gallery,
                   open_source=lambda: FrameSource("fake://cam", open_capture=lambda s: FakeCapture(plug)).open(),
                   sounds=SoundPlayer(enabled=False), save=False, gallery_problem=problem)
    qtbot.addWidget(w)
    w.show()
    w.start()                                       # no AttributeError, no exit
    assert hooked == [] and w.isVisible()
    assert w.banner.title.text() == NO_GALLERY_TEXT
    assert "restart FaceGuard" in w.banner.detail.text()
    assert w.video._placeholder.replace("\n", " ").startswith("The door check is off.")
    assert " ".join(problem.split()) in " ".join(w.video._placeholder.split())
    assert w.camera_text == "Camera: off (no gallery)" and not w.controller.running
    assert w.pages.currentIndex() == 0 and w.menuBar().isVisible()
    assert all(a.isEnabled() for a in w.actions_by_name.values())
    screenshot(w, "door_window_no_gallery")
    # Without the reason passed (another caller), the controller refuses with a sentence too.
    w.gallery_problem = ""
    w.start()
    assert hooked == [] and "gallery is not open" in w.video._placeholder


def test_first_run_checklist_until_done(qtbot, monkeypatch):
    from conftest import NoFaces

    import faceguard.ui.enroll_dialog as ed
    import faceguard.ui.settings_dialog as sd
    from faceguard.camera import FrameSource
    from faceguard.gallery.store import Gallery
    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.pin import hash_pin
    from faceguard.ui.sounds import SoundPlayer
    opened = []

    def fake(name):
        class Fake:
            enrolled, enrolled_many, settings = None, [], None

            def __init__(self, *a, **k):
                opened.append(name)

            def exec(self):
                return 0

            def deleteLater(self):
                pass
        return Fake
    monkeypatch.setattr(ed, "EnrollDialog", fake("enrol"))
    monkeypatch.setattr(sd, "SettingsDialog", fake("settings"))
    gallery = Gallery.open()
    plug = {"in": True}
    w = DoorWindow(Settings(camera="fake://cam"), SimpleNamespace(provider="CPU", threshold_for=lambda *a: 0.2,
                                                                  scoring_for=lambda *a: ("distance", 0.2)),
                   gallery, make_check=NoFaces,
                   open_source=lambda: FrameSource("fake://cam", open_capture=lambda s: FakeCapture(plug)).open(),
                   sounds=SoundPlayer(enabled=False), save=False)
    qtbot.addWidget(w)
    w.show()
    w.start()
    c = w.checklist
    assert c.isVisible() and c.items_done() == {"enrol": False, "pin": False, "door": False}
    assert all(b.isVisible() for b in c.buttons.values())
    screenshot(w, "door_window_first_run")
    c.buttons["enrol"].click()
    c.buttons["door"].click()
    assert opened == ["enrol", "settings"]
    gallery.add_person("Ana Lima", "E1", np.full((80, 80, 3), 120, np.uint8), unit(1), "m")
    w.refresh_checklist()
    assert c.items_done() == {"enrol": True, "pin": False, "door": False}
    assert c.texts["enrol"].text() == "Enrol your staff (1 enrolled)" and not c.buttons["enrol"].isVisible()
    w.settings.admin_pin_hash = hash_pin("2580")
    w.refresh_checklist()
    assert c.isVisible() and c.items_done()["pin"]
    w.settings.door.kind, w.settings.door.command = "command", "true"
    w.refresh_checklist()
    assert not c.isVisible()                                   # all done: gone
    w.settings.door.kind = "none"
    w.refresh_checklist()
    assert c.isVisible()
    c.later.click()
    w.refresh_checklist()
    assert not c.isVisible()                                   # put away for this session
    w.stop()
    gallery.close()
