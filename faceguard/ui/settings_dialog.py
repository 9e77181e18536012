"""Settings in plain words: Recognition, Door, Photo check, Privacy and Admin (one tab each),
each field with one line under it saying what it does.

The dialog never judges a value itself: it builds a candidate Settings and lets
Settings.validate (the same rules the CLI and the settings file use) refuse it; the refusal is
shown with the field named as this window labels it (FIELD_LABELS), and the dialog stays open.
Number boxes take their ranges from settings.RANGES, the one place each range is written.
"Test door" runs in a thread with a spinner and a Cancel: a door host that never answers must
not freeze the window.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from concurrent.futures import Future

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from faceguard.errors import FaceGuardError, SettingsError
from faceguard.settings import DOOR_KINDS, PROVIDERS, RANGES, Settings, save_settings
from faceguard.ui.factor_fields import FactorFields
from faceguard.ui.outputs_fields import OutputFields
from faceguard.ui.pin import hash_pin
from faceguard.ui.settings_hints import SettingsHints
from faceguard.ui.settings_words import DOOR_LABELS, PLACEHOLDERS, PROVIDER_LABELS, field_message

log = logging.getLogger(__name__)

POLL_MS = 50


def _spin(key: str, value: int, suffix: str = "") -> QSpinBox:
    s = QSpinBox()
    lo, hi, _ = RANGES[key]
    s.setRange(int(lo), int(hi))
    s.setValue(value)
    s.setSuffix(suffix)
    return s


def _dspin(lo: float, hi: float, value: float, decimals: int, step: float, suffix: str = "") -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(step)
    s.setValue(value)
    s.setSuffix(suffix)
    return s


def _range_spin(key: str, value: float, decimals: int, step: float, suffix: str = "") -> QDoubleSpinBox:
    lo, hi, _ = RANGES[key]
    return _dspin(lo, hi, value, decimals, step, suffix)


class SettingsDialog(SettingsHints, QDialog):
    """Edits a copy of `settings`; after accept(), `self.settings` holds the saved values."""

    def __init__(self, settings: Settings, parent=None, *, save: bool = True,
                 default_threshold: float | None = None, gallery_size: int | None = None,
                 margin_threshold: float | None = None, threshold_curve=None,
                 checked_fps: float | None = None):
        """`default_threshold`: the model's distance threshold calibrated for the current
        gallery (`pipeline.threshold_for(gallery_size)`), shown while "use calibrated" is on.
        `margin_threshold`: set when a gallery this large is scored by the runner-up margin
        rule instead (`pipeline.scoring_for`); its score is named, but the field keeps the
        distance value because a threshold typed here is always a plain distance."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.original = settings
        self.settings = copy.deepcopy(settings)
        self._save = save
        self.door_job: Future | None = None      # the door test running now
        self._door_timer = QTimer(self, interval=POLL_MS)
        self._door_timer.timeout.connect(self._poll_door)
        self.fields: dict[str, QWidget] = {}     # setting key → its widget (to point at a refusal)
        s = self.settings

        self.camera = QLineEdit(str(s.camera))
        self.camera.setPlaceholderText("0 = first camera, rtsp://…, or a video file")
        self.loop_video = QCheckBox("Loop a video file")
        self.loop_video.setChecked(s.loop_video)
        self.default_threshold = default_threshold
        calibrated = ""
        people = "" if gallery_size is None else f" for {gallery_size} {'person' if gallery_size == 1 else 'people'}"
        if margin_threshold:
            calibrated = f" (runner-up margin rule, score ≤ {margin_threshold:.2f}{people})"
        elif default_threshold:
            calibrated = f" ({default_threshold:.2f}{people})"
        self.use_default_threshold = QCheckBox("Use the model's calibrated strictness" + calibrated)
        self.use_default_threshold.setChecked(s.threshold is None)
        self.threshold = _range_spin("threshold", s.threshold if s.threshold is not None
                                     else (default_threshold or 0.36), 3, 0.01)
        self.threshold.setMinimum(0.001)
        self.threshold.setMaximum(3.999)      # the range is open at both ends
        self.threshold.setEnabled(s.threshold is not None)
        self.use_default_threshold.toggled.connect(self._use_calibrated)
        self.confirm_frames = _spin("window_frames", s.confirm_frames, " frames")
        self.window_frames = _spin("window_frames", s.window_frames, " frames")
        self.stranger_frames = _spin("stranger_frames", s.stranger_frames, " frames")
        self.cooldown = _range_spin("cooldown_s", s.cooldown_s, 1, 1.0, " s")
        self.mode = QComboBox()
        self.mode.addItem("Recognise anyone enrolled (identify)", "identify")
        self.mode.addItem("Check a typed or badged employee id (verify)", "verify")
        self.mode.setCurrentIndex(1 if s.mode == "verify" else 0)
        self.provider = QComboBox()
        for p in PROVIDERS:
            self.provider.addItem(PROVIDER_LABELS.get(p, p), p)
        self.provider.setCurrentIndex(PROVIDERS.index(s.provider))

        self.photo_check = QCheckBox("A recognised face must move before the door opens")
        self.photo_check.setChecked(s.photo_check)
        self.challenge = QCheckBox("Ask the face to follow a moving dot (a random path per visit)")
        self.challenge.setChecked(s.challenge)
        self.photo_timeout = _range_spin("photo_check_timeout_s", s.photo_check_timeout_s, 1, 1.0, " s")
        # What switching the checks off allows, in plain words (both are on by default).
        self.photo_warning = QLabel()
        self.photo_warning.setWordWrap(True)
        self.photo_warning.setStyleSheet("color: #a4251b; font-weight: 600;")

        self.door_kind = QComboBox()
        for k in DOOR_KINDS:
            self.door_kind.addItem(DOOR_LABELS.get(k, k), k)
        self.door_kind.setCurrentIndex(DOOR_KINDS.index(s.door.kind))
        self.door_command = QLineEdit(s.door.command)
        self.door_command.setPlaceholderText("e.g. /usr/local/bin/open-door {employee_id}")
        self.door_url = QLineEdit(s.door.url)
        self.door_url.setPlaceholderText("https://door.example/open")
        self.door_port = QLineEdit(s.door.serial_port)
        self.door_port.setPlaceholderText("/dev/ttyUSB0")
        self.door_seconds = _dspin(0.0, 600.0, s.door.open_seconds, 1, 0.5, " s")
        self.outputs = OutputFields(s)   # MQTT, webhooks, OSDP, face unlock
        self.factor = FactorFields(s)    # the PIN (issue 21)
        self.test_door_btn = QPushButton("Test door")
        self.door_cancel_btn = QPushButton("Cancel test")
        self.door_spinner = QProgressBar()
        self.door_spinner.setRange(0, 0)            # busy: no percentage to show
        self.door_spinner.setMaximumWidth(90)
        self.door_spinner.setTextVisible(False)
        self.door_result = QLabel()
        self.door_result.setWordWrap(True)

        self.keep_snapshots = QCheckBox("Keep a face snapshot with each access-log event")
        self.keep_snapshots.setChecked(s.keep_snapshots)
        self.retention = _spin("log_retention_days", s.log_retention_days, " days")
        self.pin = QLineEdit()
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setPlaceholderText("set" if s.admin_pin_hash else "not set")
        self.pin_again = QLineEdit()
        self.pin_again.setEchoMode(QLineEdit.EchoMode.Password)

        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.build_hints(gallery_size, threshold_curve, checked_fps)   # the strictness in rates, the PIN warning

        rec = self._form([
            ("camera", "Camera", self.camera, "Which camera to watch: 0 is the first one; or a "
             "stream address, or a video file."),
            (None, "", self.loop_video, ""),
            ("mode", "Door mode", self.mode, "Identify lets in anyone enrolled; verify first asks "
             "for an employee id or badge."),
            (None, "", self.use_default_threshold, ""),
            ("threshold", "Strictness", self.threshold, "How close a face must be to its enrolled "
             "photo. Lower: fewer strangers let in; higher: fewer employees asked to look again."),
            (None, "", self.strictness_note, ""),
            ("confirm_frames", "Grant after", self.confirm_frames, "How many camera frames must "
             "recognise the same person before the door opens…"),
            ("window_frames", "Out of the last", self.window_frames, "…out of this many recent frames."),
            ("stranger_frames", "Deny a stranger after", self.stranger_frames, "Frames of an unknown "
             "face before it is refused and logged."),
            (None, "", self.frames_note, ""),
            ("cooldown_s", "Quiet time per person", self.cooldown, "After a decision, how long the "
             "same person is not logged again."),
            ("provider", "Run on", self.provider, "Where faces are computed; automatic uses a "
             "graphics card when there is one."),
        ])
        test_row = QHBoxLayout()
        for w in (self.test_door_btn, self.door_spinner, self.door_cancel_btn):
            test_row.addWidget(w)
        test_row.addWidget(self.door_result, 1)
        door = self._form([
            ("door.kind", "Door output", self.door_kind, "What FaceGuard does to open the door."),
            ("door.command", "Command", self.door_command, "A program to run. " + PLACEHOLDERS),
            ("door.url", "Web address", self.door_url, "Receives a POST with the person's name, id "
             "and distance."),
            ("door.serial_port", "Serial port", self.door_port, "The port of a USB relay board, "
             "e.g. /dev/ttyUSB0 or COM3."),
            ("door.open_seconds", "Keep open", self.door_seconds, "How long the door stays unlocked."),
            (None, "", self._wrap(test_row), "Opens the door once now, with the values above."),
            *self.outputs.rows(),
        ])
        photo = self._form([
            ("photo_check_min_motion", "", self.photo_check, "Stops a printed photo or a still "
             "picture held up to the camera: a flat picture cannot move like a head."),
            (None, "", self.challenge, "A new random path for each visit: a video of an "
             "employee replayed on a phone cannot follow it."),
            (None, "", self.photo_warning, ""),
            ("photo_check_timeout_s", "Give up after", self.photo_timeout, "How long a recognised "
             "face has to move before it is refused."),
            *self.factor.rows(),
        ])
        privacy = self._form([
            (None, "", self.keep_snapshots, "A small encrypted face picture, to see who was let in "
             "or refused. Off: the log keeps times and names only."),
            ("log_retention_days", "Keep the access log", self.retention, "Older events and their "
             "snapshots are erased."),
        ])
        admin = self._form([
            ("admin_pin_hash", "New admin PIN", self.pin, "At least 4 digits; asked before "
             "enrolment, gallery, settings, the access log, leaving full screen and quitting."),
            (None, "Repeat PIN", self.pin_again, "Forgotten? Run: faceguard admin reset-pin"),
            (None, "", self.pin_warning, ""),
        ])

        # One tab per group: five groups of fields with their help lines do not fit side by
        # side on an office screen.
        self.tabs = QTabWidget()
        for title, form in (("Recognition", rec), ("Door", door), ("Photo check", photo),
                            ("Privacy", privacy), ("Admin", admin)):
            page = QWidget()
            outer = QVBoxLayout(page)
            outer.addLayout(form)
            outer.addStretch(1)
            self.tabs.addTab(page, title)
        body = QVBoxLayout(self)
        body.addWidget(self.tabs, 1)
        body.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        body.addWidget(buttons)

        self.door_kind.currentIndexChanged.connect(self._door_fields)
        self.test_door_btn.clicked.connect(self.test_door)
        self.door_cancel_btn.clicked.connect(self.cancel_door_test)
        self.photo_check.toggled.connect(lambda *_: self._photo_fields())
        self.challenge.toggled.connect(lambda *_: self._photo_fields())
        self._door_fields()
        self._photo_fields()
        self._door_busy(False)
        self.resize(720, 640)

    def _form(self, rows) -> QFormLayout:
        """Rows of (setting key or None, label, widget, help line under it)."""
        form = QFormLayout()
        for key, label, widget, help_text in rows:
            form.addRow(label, widget)
            if key:
                self.fields[key] = widget
            if help_text:
                help_label = QLabel(help_text)
                help_label.setObjectName("help")
                help_label.setWordWrap(True)
                help_label.setStyleSheet("color: #5f6670; font-size: 11px;")
                form.addRow("", help_label)
        return form

    @staticmethod
    def _wrap(layout) -> QWidget:
        w = QWidget()
        layout.setContentsMargins(0, 0, 0, 0)
        w.setLayout(layout)
        return w

    def help_texts(self) -> list[str]:
        return [w.text() for w in self.findChildren(QLabel) if w.objectName() == "help"]

    def _use_calibrated(self, on: bool) -> None:
        self.threshold.setEnabled(not on)
        if on and self.default_threshold:
            self.threshold.setValue(self.default_threshold)   # the field shows what will apply

    def _door_fields(self) -> None:
        kind = self.door_kind.currentData()
        self.door_command.setEnabled(kind == "command")
        self.door_url.setEnabled(kind == "webhook")
        self.door_port.setEnabled(kind == "serial")

    def _photo_fields(self) -> None:
        on = self.photo_check.isChecked()
        self.challenge.setEnabled(on)
        self.photo_timeout.setEnabled(on)
        if not on:
            warning = ("Off: a printed photo, or a video on a phone, of an employee held up to the "
                       "camera opens the door for anyone.")
        elif not self.challenge.isChecked():
            warning = ("Without the random movement, a video of an employee replayed on a phone "
                       "or tablet opens the door.")
        else:
            warning = ""
        self.photo_warning.setText(warning)
        self.photo_warning.setVisible(bool(warning))

    # -- candidate values -------------------------------------------------------------------
    def candidate(self) -> Settings:
        """The values in the dialog as Settings, validated (SettingsError names the key)."""
        s = copy.deepcopy(self.settings)
        s.camera = self.camera.text().strip()
        s.loop_video = self.loop_video.isChecked()
        s.threshold = None if self.use_default_threshold.isChecked() else float(self.threshold.value())
        s.mode = self.mode.currentData()
        s.confirm_frames = self.confirm_frames.value()
        s.window_frames = self.window_frames.value()
        s.stranger_frames = self.stranger_frames.value()
        s.cooldown_s = float(self.cooldown.value())
        s.photo_check = self.photo_check.isChecked()
        s.challenge = self.challenge.isChecked()
        s.photo_check_timeout_s = float(self.photo_timeout.value())
        s.provider = self.provider.currentData()
        s.door.kind = self.door_kind.currentData()
        s.door.command = self.door_command.text().strip()
        s.door.url = self.door_url.text().strip()
        s.door.serial_port = self.door_port.text().strip()
        s.door.open_seconds = float(self.door_seconds.value())
        self.outputs.apply(s)
        self.factor.apply(s)
        s.keep_snapshots = self.keep_snapshots.isChecked()
        s.log_retention_days = self.retention.value()
        pin, again = self.pin.text(), self.pin_again.text()
        if pin or again:
            if pin != again:
                raise SettingsError("Setting 'admin_pin_hash': the two PINs differ; type the same PIN twice.")
            s.admin_pin_hash = hash_pin(pin)
        return s.validate()

    def _refuse(self, exc: FaceGuardError, target: QLabel) -> None:
        """Show a refusal naming the field, and put the cursor in that field."""
        target.setText(field_message(str(exc)))
        key = re.search(r"Setting '([^']+)'", str(exc))
        widget = self.fields.get(key.group(1)) if key else None
        if widget is not None:
            self.show_field(widget)

    def show_field(self, widget: QWidget) -> None:
        """Bring the tab holding ``widget`` to the front and put the cursor in it."""
        for i in range(self.tabs.count()):
            if self.tabs.widget(i).isAncestorOf(widget):
                self.tabs.setCurrentIndex(i)
        if widget.isEnabled():
            widget.setFocus()

    # -- door test, off the UI thread --------------------------------------------------------
    def _door_busy(self, on: bool) -> None:
        self.test_door_btn.setEnabled(not on)
        self.door_spinner.setVisible(on)
        self.door_cancel_btn.setVisible(on)

    def test_door(self) -> bool:
        """Start a door test in a thread; False (and why) when the values cannot make a door."""
        from faceguard.access.decide import GRANTED, Decision
        from faceguard.access.door import make_door
        if self.door_job is not None:
            return False
        try:
            door = make_door(self.candidate().door)
        except FaceGuardError as exc:
            self._refuse(exc, self.door_result)
            return False
        probe = Decision(time=0.0, kind=GRANTED, person_id="TEST", name="Door test", distance=0.0,
                         threshold=0.0, frames_used=0, reason="test from the settings dialog",
                         track_id=-1, box=(0.0, 0.0, 0.0, 0.0))
        job: Future = Future()

        def run() -> None:
            try:
                job.set_result(door.trigger(probe))
            except Exception as exc:   # a door's own bug: reported, never a traceback
                log.exception("door test failed")
                job.set_exception(exc)
        # A daemon thread, not a QThread: a cancelled test may outlive this dialog, and its
        # blocked socket must never hold up closing it or quitting.
        threading.Thread(target=run, name="door-test", daemon=True).start()
        self.door_job = job
        self.door_result.setText("Testing the door…")
        self._door_busy(True)
        self._door_timer.start()
        return True

    def _poll_door(self) -> None:
        job = self.door_job
        if job is None or not job.done():
            return
        self._end_door_test()
        exc = job.exception()
        if exc is not None:
            self.door_result.setText(f"Door test failed: {type(exc).__name__}: {exc}")
            return
        result = job.result()
        self.door_result.setText(("Door opened: " if result.ok else "Door test failed: ") + result.message)

    def cancel_door_test(self) -> None:
        """Stop waiting for the door; a request already sent may still reach it."""
        if self.door_job is None:
            return
        self._end_door_test()
        self.door_result.setText("Door test cancelled (a request already sent may still arrive).")

    def _end_door_test(self) -> None:
        self.door_job = None
        self._door_timer.stop()
        self._door_busy(False)

    @property
    def door_testing(self) -> bool:
        return self.door_job is not None

    def accept(self) -> None:
        try:
            candidate = self.candidate()
            if self._save:
                save_settings(candidate)
        except FaceGuardError as exc:
            self._refuse(exc, self.error)
            return
        self.settings = candidate
        self.error.setText("")
        super().accept()

    def done(self, result: int) -> None:
        self.cancel_door_test()
        super().done(result)
