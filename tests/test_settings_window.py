"""The settings window in plain words: the five groups, a help line under each field, the door
command's placeholders, a door test that never freezes the window, snapshots that can be
turned off, and a screenshot."""

from __future__ import annotations

import os
import socket
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from conftest import screenshot  # noqa: E402

from faceguard.settings import Settings, load_settings  # noqa: E402

pytestmark = pytest.mark.usefixtures("styled")   # the app's style sheet, as users see it


def dialog(qtbot, settings: Settings | None = None, **kw):
    from faceguard.ui.settings_dialog import SettingsDialog
    d = SettingsDialog(settings or Settings(), save=kw.pop("save", False), default_threshold=0.18,
                       gallery_size=3, **kw)
    qtbot.addWidget(d)
    d.show()
    return d


def test_settings_are_grouped_with_a_help_line_under_each_field(qtbot):
    d = dialog(qtbot)
    titles = [d.tabs.tabText(i) for i in range(d.tabs.count())]
    assert titles == ["Recognition", "Door", "Photo check", "Privacy", "Admin"]
    assert d.width() <= 1000                                   # fits an office screen
    screenshot(d, "settings_dialog_recognition")
    helps = d.help_texts()
    assert len(helps) >= 18 and all(len(h) > 20 for h in helps)
    assert any(h.startswith("How close a face must be") for h in helps)
    placeholders = next(h for h in helps if "Placeholders" in h)
    for name in ("{name}", "{employee_id}", "{distance}"):
        assert name in placeholders
    assert "faceguard admin reset-pin" in " ".join(helps)
    d.door_kind.setCurrentIndex(d.door_kind.findData("command"))
    d.door_command.setText("/usr/local/bin/open {name} {employee_id} {distance}")
    d.photo_check.setChecked(True)
    d.show_field(d.door_command)
    screenshot(d, "settings_dialog_door")


def test_snapshots_can_be_turned_off(qtbot):
    d = dialog(qtbot, save=True)
    assert d.keep_snapshots.isChecked()
    d.keep_snapshots.setChecked(False)
    d.retention.setValue(14)
    d.accept()
    assert d.result() == 1, d.error.text()
    saved = load_settings()
    assert saved.keep_snapshots is False and saved.log_retention_days == 14


def test_photo_check_fields_follow_the_switch(qtbot):
    d = dialog(qtbot, Settings(photo_check=False, challenge=False), save=True)
    assert not d.challenge.isEnabled() and not d.photo_timeout.isEnabled()
    d.photo_check.setChecked(True)
    assert d.challenge.isEnabled() and d.photo_timeout.isEnabled()
    d.challenge.setChecked(True)
    d.photo_timeout.setValue(12)
    d.accept()
    saved = load_settings()
    assert (saved.photo_check, saved.challenge, saved.photo_check_timeout_s) == (True, True, 12.0)
    d = dialog(qtbot, saved, save=True)
    d.photo_check.setChecked(False)
    d.accept()
    assert load_settings().photo_check is False


@pytest.fixture
def silent_host():
    """A web server that takes the connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    yield f"http://127.0.0.1:{server.getsockname()[1]}/open"
    server.close()


def test_a_door_that_never_answers_does_not_freeze_the_window(qtbot, silent_host):
    from PySide6.QtCore import QTimer
    d = dialog(qtbot)
    d.door_kind.setCurrentIndex(d.door_kind.findData("webhook"))
    d.door_url.setText(silent_host)
    d.show_field(d.door_url)
    started = time.monotonic()
    d.test_door_btn.click()
    assert time.monotonic() - started < 1.0                   # back at once, the request in a thread
    assert d.door_testing and d.door_spinner.isVisible() and d.door_cancel_btn.isVisible()
    assert not d.test_door_btn.isEnabled() and d.door_result.text() == "Testing the door…"
    ticks = []
    timer = QTimer(d, interval=20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    qtbot.wait(600)
    assert len(ticks) >= 10 and max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < 0.3   # the window paints on
    assert d.door_testing                                     # the host still has not answered
    screenshot(d, "settings_dialog_door_test")
    d.door_cancel_btn.click()
    assert not d.door_testing and d.test_door_btn.isEnabled() and not d.door_spinner.isVisible()
    assert d.door_result.text().startswith("Door test cancelled")
    started = time.monotonic()
    d.reject()                                                # closing does not wait for the host
    assert time.monotonic() - started < 1.0


def test_a_door_test_that_cannot_start_names_the_field(qtbot):
    d = dialog(qtbot)
    d.door_kind.setCurrentIndex(d.door_kind.findData("serial"))
    d.tabs.setCurrentIndex(0)
    assert not d.test_door()
    assert d.door_result.text().startswith("Serial port:") and not d.door_testing
    assert d.tabs.tabText(d.tabs.currentIndex()) == "Door"     # brought to the front


def test_turning_the_photo_check_off_says_what_that_allows(qtbot):
    """Issue 13: on by default; switching it (or its challenge) off shows a plain warning."""
    d = dialog(qtbot)
    d.tabs.setCurrentIndex(2)
    assert d.photo_check.isChecked() and d.challenge.isChecked() and not d.photo_warning.isVisible()
    d.challenge.setChecked(False)
    assert d.photo_warning.isVisible() and "video of an employee" in d.photo_warning.text()
    d.photo_check.setChecked(False)
    assert "printed photo" in d.photo_warning.text() and not d.challenge.isEnabled()
    screenshot(d, "settings_dialog_photo_check_off")
    d.photo_check.setChecked(True)
    d.challenge.setChecked(True)
    assert not d.photo_warning.isVisible()
    assert (d.candidate().photo_check, d.candidate().challenge) == (True, True)


def test_the_second_factor_settings_are_in_the_dialog_and_saved(qtbot):
    """Issue 21's door-wide settings: a manager sets them in the dialog, not only in the file."""
    d = dialog(qtbot, save=True)
    assert not d.factor.require_pin.isChecked() and d.factor.learn.isChecked()
    d.tabs.setCurrentIndex(d.tabs.indexOf(d.factor.require_pin.parentWidget()))
    d.factor.require_pin.setChecked(True)
    d.factor.badge.setChecked(True)
    d.factor.learn.setChecked(False)
    screenshot(d, "settings_dialog_second_factor")
    d.accept()
    assert d.result() == 1, d.error.text()
    saved = load_settings()
    assert (saved.require_pin, saved.badge_as_factor, saved.learn_templates) == (True, True, False)
