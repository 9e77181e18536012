"""The admin PIN on every guarded action of the door window (Enrol, Gallery, Settings, Access
log, leaving kiosk mode, Ctrl+Q and closing in kiosk), its back-off, and `admin reset-pin`."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from conftest import fake_window  # noqa: E402

from faceguard import cli  # noqa: E402
from faceguard.settings import Settings, load_settings, save_settings  # noqa: E402
from faceguard.ui.pin import FIRST_WAIT_S, MAX_TRIES, PinGuard, hash_pin  # noqa: E402

PIN = "4711"
HASH = hash_pin(PIN)   # scrypt once per module: it is slow on purpose


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def plug():
    return {"in": True}


@pytest.fixture
def window(qtbot, plug, monkeypatch):
    w = fake_window(qtbot, plug)
    w.settings.admin_pin_hash = HASH
    w.asked = []
    w.answers = []
    w.ask_pin = lambda purpose="continue": (w.asked.append(purpose), w.answers.pop(0) if w.answers else None)[1]
    opened = []
    # The dialogs themselves are other tests' business: here only whether they open.
    import faceguard.ui.enroll_dialog as ed
    import faceguard.ui.gallery_dialog as gd
    import faceguard.ui.log_window as lw
    import faceguard.ui.settings_dialog as sd
    for module, name in ((ed, "EnrollDialog"), (gd, "GalleryDialog"), (sd, "SettingsDialog"),
                         (lw, "LogWindow")):
        class Fake:
            enrolled, enrolled_many = None, []

            def __init__(self, *a, _name=name, **k):
                opened.append(_name)

            def exec(self):
                return 0

            def deleteLater(self):
                pass
        monkeypatch.setattr(module, name, Fake)
    w.opened = opened
    w.controller.gallery_changed = lambda: None
    w.controller.calibration = lambda: {}
    monkeypatch.setattr(type(w), "gallery", property(lambda self: []))   # a stand-in gallery: nobody enrolled
    yield w
    w._quit_ok = True     # let the test's teardown close it


GUARDED = [("enrol", "EnrollDialog", "enrol a person"), ("gallery", "GalleryDialog", "open the gallery"),
           ("settings", "SettingsDialog", "change the settings"),
           ("log", "LogWindow", "see the access log")]


@pytest.mark.parametrize("action, dialog, purpose", GUARDED)
def test_each_admin_action_needs_the_pin(window, action, dialog, purpose):
    act = window.actions_by_name[action]
    act.trigger()                          # cancelled
    assert window.opened == [] and window.asked == [purpose]
    window.answers = ["0000"]
    act.trigger()                          # wrong
    assert window.opened == [] and window.admin_message.startswith("Wrong PIN.")
    assert window.statusBar().currentMessage() == window.admin_message
    assert window.notice_box.isVisible() and window.notice_box.text() == window.admin_message
    window.answers = [PIN]
    act.trigger()                          # right
    assert window.opened == [dialog]


def test_without_a_pin_nothing_is_asked(window):
    window.settings.admin_pin_hash = ""
    for action, _dialog, _ in GUARDED:
        window.actions_by_name[action].trigger()
    assert window.asked == [] and window.opened == [d for _, d, _ in GUARDED]


def test_ctrl_q_needs_the_pin_and_closing_in_kiosk_too(qtbot, window):
    from PySide6.QtCore import Qt
    window.set_kiosk(True)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)   # cancelled
    assert window.asked == ["quit FaceGuard"] and window.isVisible()
    window.answers = ["1111"]
    window.close()                          # Alt+F4 / the session: refused with a wrong PIN
    assert window.isVisible() and window.kiosk and window.asked[-1] == "quit FaceGuard"
    qtbot.keyClick(window, Qt.Key.Key_Escape)     # leaving kiosk mode: cancelled
    assert window.kiosk and window.asked[-1] == "leave kiosk mode"
    window.answers = [PIN]
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not window.isVisible()


def test_wrong_pins_back_off_and_the_wait_doubles(window):
    clock = Clock()
    window.pin_guard = PinGuard(clock)
    act = window.actions_by_name["settings"]
    for _ in range(MAX_TRIES):
        window.answers = ["9999"]
        act.trigger()
    assert len(window.asked) == MAX_TRIES
    assert window.admin_message == f"Wrong PIN {MAX_TRIES} times: wait 60 s before the next try."
    window.answers = [PIN]
    act.trigger()                                 # locked: not even asked, right PIN or not
    assert len(window.asked) == MAX_TRIES and window.opened == []
    assert window.admin_message == "Too many wrong PINs: try again in 60 s."
    clock.t += FIRST_WAIT_S - 1
    act.trigger()
    assert window.admin_message == "Too many wrong PINs: try again in 1 s." and window.opened == []
    clock.t += 1
    for _ in range(MAX_TRIES):                    # the next five wrong ones: twice as long
        window.answers = ["9999"]
        act.trigger()
    assert window.admin_message.endswith("wait 120 s before the next try.")
    clock.t += 2 * FIRST_WAIT_S
    window.answers = [PIN]
    act.trigger()
    assert window.opened == ["SettingsDialog"]
    assert window.pin_guard.wrong == 0 and window.pin_guard.waits == 0   # the right PIN clears it


def test_pin_guard_counts_down_its_tries():
    g = PinGuard(Clock())
    assert g.check("1", HASH) == (False, "Wrong PIN. 4 more tries before a 60 s wait.")
    for _ in range(3):
        g.check("1", HASH)
    assert g.wrong == 4 and g.wait_s() == 0
    assert g.check(PIN, HASH) == (True, "")


def test_reset_pin_removes_it_and_says_what_it_needs(capsys):
    save_settings(Settings(admin_pin_hash=HASH, cooldown_s=12))
    assert cli.main(["admin", "reset-pin"]) == 0
    out = capsys.readouterr().out
    assert "removed" in out and "config folder" in out and "Settings → Admin" in out
    after = load_settings()
    assert after.admin_pin_hash == "" and after.cooldown_s == 12   # nothing else changed
    assert cli.main(["admin", "reset-pin"]) == 0
    assert "No admin PIN is set" in capsys.readouterr().out


def test_reset_pin_in_a_read_only_config_folder_names_the_folder(capsys, monkeypatch):
    import faceguard.settings as settings_module
    from faceguard import paths
    save_settings(Settings(admin_pin_hash=HASH))

    def refuse(*a, **k):   # as a folder of another user would (root writes anywhere)
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(settings_module, "write_text_atomic", refuse)
    assert cli.main(["admin", "reset-pin"]) == 2
    err = capsys.readouterr().err
    assert "write access to the config folder" in err and str(paths.settings_file().parent) in err
    assert load_settings().admin_pin_hash == HASH
