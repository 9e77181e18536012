"""The desktop widgets, driven by pytest-qt offscreen: camera loss and recovery, no camera,
settings refusals, kiosk PIN, the exception hook, the gallery table, and a screenshot of each."""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import FakeCapture, NoFaces, fake_window, screenshot  # noqa: E402,F401

from faceguard.errors import CameraError  # noqa: E402
from faceguard.settings import Settings  # noqa: E402

pytestmark = pytest.mark.usefixtures("styled")   # the app's style sheet, as users see it


@pytest.fixture
def plug():
    return {"in": True}


def test_camera_unplug_shows_disconnected_then_recovers(qtbot, plug):
    from faceguard.ui.presentation import CAMERA_LOST_TEXT
    w = fake_window(qtbot, plug)
    w.start()
    qtbot.waitUntil(lambda: w.camera_text.startswith("Camera: live") and w.video.image is not None, timeout=5000)
    plug["in"] = False
    qtbot.waitUntil(lambda: "disconnected, retrying" in w.camera_text, timeout=5000)
    assert w.banner.title.text() == CAMERA_LOST_TEXT
    assert w.video.image is None
    plug["in"] = True
    qtbot.waitUntil(lambda: w.camera_text.startswith("Camera: live") and w.video.image is not None, timeout=5000)
    assert w.banner.state == "idle"
    assert "fps" in w.fps_label.text()
    w.stop()


def test_no_camera_offers_choices_instead_of_crashing(qtbot, plug):
    def no_camera():
        raise CameraError("Cannot open camera 0: no such camera, or it is in use by another program.")
    w = fake_window(qtbot, plug, open_source=no_camera)
    w.start()
    qtbot.waitUntil(lambda: w.pages.currentIndex() == 1, timeout=5000)
    assert "Cannot open camera 0" in w.no_camera.reason.text()
    assert w.no_camera.url_btn.isEnabled() and w.no_camera.file_btn.isEnabled()
    # A URL without a scheme is refused with the reason; a video file is accepted and saved.
    w.no_camera.url.setText("192.168.1.20")
    w.no_camera.url_btn.click()
    assert "rtsp://" in w.no_camera.hint.text()
    assert "Cannot open camera 0" in w.no_camera.reason.text()
    w.resize(1000, 640)
    screenshot(w, "door_window_no_camera")
    w.stop()


def test_no_camera_page_switches_to_a_chosen_video(qtbot, plug, shared_data):
    def no_camera():
        raise CameraError("Cannot open camera 0.")
    w = fake_window(qtbot, plug, open_source=no_camera)
    w.start()
    qtbot.waitUntil(lambda: w.pages.currentIndex() == 1, timeout=5000)
    clip = str(shared_data / "video" / "short_hamilton_clip.mp4")
    w.no_camera.chosen.emit(clip)
    qtbot.waitUntil(lambda: w.pages.currentIndex() == 0 and w.video.image is not None, timeout=8000)
    assert w.settings.camera == clip and w.settings.loop_video
    assert w.video.image.width() == 640
    w.stop()


def test_settings_dialog_refuses_invalid_values_naming_the_field(qtbot):
    from faceguard.settings import RANGES
    from faceguard.ui.settings_dialog import SettingsDialog
    d = SettingsDialog(Settings(), save=False, default_threshold=0.36)
    qtbot.addWidget(d)
    d.show()
    d.confirm_frames.setValue(9)        # more than window_frames (5)
    d.accept()
    assert d.result() == 0
    assert d.error.text() == "Grant after: must be between 1 and out of the last (5)."
    assert d.focusWidget() is d.confirm_frames              # the cursor is put where it is wrong
    d.confirm_frames.setValue(3)
    d.door_kind.setCurrentIndex(d.door_kind.findData("webhook"))
    d.door_url.setText("door.local/open")
    d.accept()
    assert d.error.text() == "Web address: must start with http:// or https://."
    d.door_kind.setCurrentIndex(d.door_kind.findData("serial"))
    d.accept()
    assert d.error.text().startswith("Serial port: is empty") and "door." not in d.error.text()
    d.door_kind.setCurrentIndex(d.door_kind.findData("none"))
    # The boxes cannot leave the setting's range (settings.RANGES, the one place it is written).
    for box, key in ((d.retention, "log_retention_days"), (d.window_frames, "window_frames"),
                     (d.stranger_frames, "stranger_frames"), (d.cooldown, "cooldown_s"),
                     (d.photo_timeout, "photo_check_timeout_s")):
        assert (box.minimum(), box.maximum()) == RANGES[key][:2], key
    d.retention.setValue(0)
    assert d.retention.value() == 1
    assert 0 < d.threshold.minimum() and d.threshold.maximum() < 4
    d.accept()
    assert d.result() == 1 and d.settings.threshold is None


def test_settings_dialog_shows_the_calibrated_threshold_for_the_gallery(qtbot):
    from faceguard.ui.settings_dialog import SettingsDialog
    d = SettingsDialog(Settings(), save=False, default_threshold=0.18, gallery_size=1)
    qtbot.addWidget(d)
    assert "(0.18 for 1 person)" in d.use_default_threshold.text()
    assert d.threshold.value() == pytest.approx(0.18) and not d.threshold.isEnabled()
    d.use_default_threshold.setChecked(False)
    assert d.threshold.isEnabled()
    d.threshold.setValue(0.3)
    assert d.candidate().threshold == pytest.approx(0.3)
    d.use_default_threshold.setChecked(True)      # back to calibrated: the field shows it again
    assert d.threshold.value() == pytest.approx(0.18) and d.candidate().threshold is None
    # A large gallery is scored by the runner-up margin rule: the label names it, the field keeps
    # the distance value (a typed threshold is always a plain distance).
    big = SettingsDialog(Settings(), save=False, default_threshold=0.117, gallery_size=150, margin_threshold=0.0892)
    qtbot.addWidget(big)
    assert "runner-up margin rule, score ≤ 0.09 for 150 people" in big.use_default_threshold.text()
    assert big.threshold.value() == pytest.approx(0.117)


def test_door_window_passes_the_calibration_for_its_gallery_size(qtbot, plug):
    class Pipeline:
        provider = "CPU"

        def threshold_for(self, n, override=None):
            return 0.2 - 0.0005 * n

        def scoring_for(self, n, override=None):
            return ("margin", 0.09) if n >= 100 else ("distance", self.threshold_for(n))

    w = fake_window(qtbot, plug)
    c = w.controller
    c.pipeline = Pipeline()
    c.gallery = SimpleNamespace(people=lambda: [object()] * 4)
    assert c.calibration() == {"gallery_size": 4, "default_threshold": pytest.approx(0.198)}
    c.gallery = SimpleNamespace(people=lambda: [object()] * 120)
    assert c.calibration() == {"gallery_size": 120, "default_threshold": pytest.approx(0.14),
                               "margin_threshold": 0.09}
    c.pipeline = None     # no models: nothing to show
    assert c.calibration() == {}


def test_settings_dialog_saves_valid_values_and_pin(qtbot):
    from faceguard.settings import load_settings
    from faceguard.ui.pin import verify_pin
    from faceguard.ui.settings_dialog import SettingsDialog
    d = SettingsDialog(Settings(), save=True, default_threshold=0.1767, gallery_size=1)
    qtbot.addWidget(d)
    d.show()
    d.pin.setText("2468")
    d.pin_again.setText("2469")
    d.accept()
    assert "PINs differ" in d.error.text()
    d.pin_again.setText("2468")
    d.window_frames.setValue(7)
    d.confirm_frames.setValue(4)
    d.provider.setCurrentIndex(d.provider.findData("cpu"))
    d.retention.setValue(90)
    assert d.photo_check.isChecked()          # on by default (issue 13)
    d.photo_check.setChecked(False)
    screenshot(d, "settings_dialog")
    d.accept()
    assert d.result() == 1, d.error.text()
    saved = load_settings()
    assert (saved.window_frames, saved.confirm_frames, saved.provider, saved.log_retention_days) == (7, 4, "cpu", 90)
    assert saved.photo_check is False
    assert verify_pin("2468", saved.admin_pin_hash) and not verify_pin("1234", saved.admin_pin_hash)
    assert "2468" not in saved.admin_pin_hash


def test_settings_test_door_runs_the_configured_command(qtbot, tmp_path):
    from faceguard.ui.settings_dialog import SettingsDialog
    marker = tmp_path / "opened.txt"
    d = SettingsDialog(Settings(), save=False)
    qtbot.addWidget(d)
    d.door_kind.setCurrentIndex(d.door_kind.findData("command"))
    d.door_command.setText(f"touch {marker}")
    assert d.test_door()
    qtbot.waitUntil(lambda: d.door_result.text().startswith("Door opened"), timeout=10000)
    assert marker.exists() and not d.door_testing and d.test_door_btn.isEnabled()


def test_kiosk_escape_needs_the_admin_pin(qtbot, plug):
    from PySide6.QtCore import Qt

    from faceguard.ui.pin import hash_pin
    w = fake_window(qtbot, plug)
    w.settings.admin_pin_hash = hash_pin("1357")
    w.set_kiosk(True)
    answers = iter([None, "1357"])
    w.ask_pin = lambda *_: next(answers)
    qtbot.keyClick(w, Qt.Key.Key_Escape)       # cancelled: stays in kiosk mode
    assert w.kiosk and w.menuBar().isHidden()
    qtbot.keyClick(w, Qt.Key.Key_Escape)       # right PIN: leaves it
    assert not w.kiosk and not w.menuBar().isHidden()


def test_exception_hook_shows_a_message_and_keeps_running(qtbot, plug, monkeypatch):
    from faceguard import paths
    from faceguard.ui import app
    shown = []
    monkeypatch.setattr(app, "show_error", lambda message, parent=None: shown.append(message))
    app.setup_logging()
    w = fake_window(qtbot, plug)
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError as exc:
        app.exception_hook(type(exc), exc, exc.__traceback__)
    assert shown == ["Something unexpected went wrong (ZeroDivisionError: division by zero)."]
    assert w.isVisible()
    # From another thread the dialog is posted to the UI thread.
    t = threading.Thread(target=lambda: app.exception_hook(RuntimeError, RuntimeError("boom"), None))
    t.start()
    t.join()
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=2000)
    assert "RuntimeError: boom" in shown[1]
    for h in __import__("logging").getLogger().handlers:
        h.flush()
    assert "ZeroDivisionError" in paths.log_file().read_text()


def test_pin_hash_round_trip_and_refusals():
    from faceguard.errors import SettingsError
    from faceguard.ui.pin import hash_pin, verify_pin
    h = hash_pin("0000")
    assert h.startswith("scrypt$") and verify_pin("0000", h)
    assert not verify_pin("0001", h) and not verify_pin("0000", "garbage")
    with pytest.raises(SettingsError, match="admin_pin_hash"):
        hash_pin("12")


class Reloadable(NoFaces):
    """A door check that records where and how often the window asks it to reload the gallery."""

    def __init__(self):
        self.reloads = []

    def reload_gallery(self):
        self.reloads.append(threading.current_thread())


def test_gallery_change_reloads_the_check_in_the_worker_between_frames(qtbot, plug):
    check = Reloadable()
    w = fake_window(qtbot, plug, make_check=lambda: check)
    w.start()
    qtbot.waitUntil(lambda: w.controller.frames >= 2, timeout=5000)
    worker = w.controller.worker
    w.controller.gallery_changed()            # what the enrol and gallery dialogs call on close
    qtbot.waitUntil(lambda: len(check.reloads) == 1, timeout=5000)
    assert check.reloads[0] is not threading.main_thread()
    assert w.controller.worker is worker      # the camera was not reopened
    frames = worker.frames
    qtbot.waitUntil(lambda: worker.frames >= frames + 3, timeout=5000)
    assert len(check.reloads) == 1            # once per change, not once per frame
    w.stop()


def decision(kind, name, distance, threshold, reason, person_id=None, box=(10.0, 10.0, 50.0, 50.0)):
    from faceguard.access.decide import Decision
    return Decision(time=1.0, kind=kind, person_id=person_id, name=name, distance=distance,
                    threshold=threshold, frames_used=3, reason=reason, track_id=1, box=box)


def test_every_decision_is_shown_with_its_distance_and_threshold(qtbot, plug):
    from faceguard.ui.presentation import explanation_of
    full = decision("GRANTED", "Ana", 0.08, 0.18,
                    "Ana recognised in 3 of the last 5 frames (median distance 0.08 ≤ threshold 0.18)")
    assert explanation_of(full) == full.reason
    bare = decision("DENIED", None, 0.41, 0.18, "stranger")
    assert explanation_of(bare) == "stranger (distance 0.41 > threshold 0.18)"
    assert explanation_of(decision("DENIED", None, float("inf"), 0.18, "")) == "threshold 0.18"
    w = fake_window(qtbot, plug)
    w.show_decision(full, np.full((120, 160, 3), 90, np.uint8))
    assert w.banner.title.text() == "Welcome, Ana"
    assert w.banner.detail.text() == "Please come in."     # words for the person; numbers in the rows
    w.banner_timer.stop()
    w.banner_timer.timeout.emit()              # Ana's hold is over (else a DENIED waits its turn)
    assert w.banner.state == "idle"
    w.show_decision(bare, np.full((120, 160, 3), 90, np.uint8))
    assert w.banner.title.text() == "Not recognised" and "0.41" not in w.banner.detail.text()
    denied, granted = w.event_rows()
    assert denied.startswith("DENIED  not let in") and denied.endswith("distance 0.41 > threshold 0.18)")
    assert granted.startswith("GRANTED  Ana") and granted.endswith("≤ threshold 0.18)")


def test_a_bystanders_denied_does_not_replace_a_granted_on_hold(qtbot, plug):
    """Ana is let in; a stranger behind her is refused a second later: the banner keeps
    "GRANTED · Ana" (and only her sound plays), the event list has both; after the hold the
    next decision shows again."""
    from faceguard.ui.presentation import GREEN, RED
    sounds = SoundRecorder()
    w = fake_window(qtbot, plug, sounds=sounds)
    w.resize(1000, 640)
    frame = np.full((120, 160, 3), 90, np.uint8)
    frame[20:60, 20:60] = (200, 160, 120)
    ana = decision("GRANTED", "Ana", 0.08, 0.18, "Ana recognised in 3 of the last 5 frames "
                   "(median distance 0.08 ≤ threshold 0.18)", person_id="E1")
    stranger = decision("DENIED", None, 0.52, 0.18, "stranger: no one within threshold 0.18 in 5 frames "
                        "(nearest Ana, median distance 0.52)", box=(90.0, 20.0, 130.0, 60.0))
    w.show_decision(ana, frame)
    w.show_decision(stranger, frame)
    assert w.banner.title.text() == "Welcome, Ana" and w.banner.state == "granted"
    assert sounds.played == ["granted"]
    assert w.banner_timer.isActive() and w.banner_timer.interval() == 4000
    denied, granted = w.event_rows()
    assert denied.startswith("DENIED  not let in\n") and "median distance 0.52" in denied
    assert "Ana" not in denied                   # who the stranger resembles stays in the log
    assert granted.startswith("GRANTED  Ana\n")
    assert w.events.item(0).foreground().color() == RED and w.events.item(1).foreground().color() == GREEN
    assert list(w.decisions) == [ana, stranger]
    screenshot(w, "door_window_granted_banner")
    qtbot.waitUntil(lambda: w.banner.state == "idle", timeout=6000)    # the hold ran out
    w.show_decision(stranger, frame)
    assert w.banner.title.text() == "Not recognised" and sounds.played == ["granted", "denied"]


class SoundRecorder:
    """What the window asked to play, without a sound card."""

    def __init__(self):
        self.played = []

    def play(self, name):
        self.played.append(name)


def test_face_label_shows_name_distance_and_state_once():
    from faceguard.doorcheck import FaceReport
    from faceguard.ui.presentation import GREEN, RED, face_overlay

    def face(name, dist, state, status):
        return FaceReport(box=(1.0, 2.0, 41.0, 52.0), landmarks=np.zeros((5, 2), np.float32), name=name,
                          employee_id=None if name is None else "E1", distance=dist, threshold=0.18,
                          state=state, status=status, explanation="")
    ana = face_overlay(face("Ana", 0.08, "granted", "Ana: granted"))
    assert ana.label == "Ana  0.08 · granted" and ana.color == GREEN and ana.box == (1.0, 2.0, 41.0, 52.0)
    stranger = face_overlay(face(None, 0.2, "stranger", "unknown 3/5"))
    assert stranger.label == "unknown  0.20 · 3/5" and stranger.color == RED
    assert face_overlay(face("Ana", 0.1, "recognising", "recognising Ana 2/3")).label == \
        "recognising 2/3  0.10"              # no name until let in
