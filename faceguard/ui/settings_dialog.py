"""Settings: camera, recognition, door output, admin PIN, log retention.

The dialog never judges a value itself: it builds a candidate Settings and lets
Settings.validate (the same rules the CLI and the settings file use) refuse it; the refusal,
which names the key, is shown in the dialog and the dialog stays open.
"""

from __future__ import annotations

import copy
import logging

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from faceguard.errors import FaceGuardError, SettingsError
from faceguard.settings import DOOR_KINDS, PROVIDERS, Settings, save_settings
from faceguard.ui.pin import hash_pin

log = logging.getLogger(__name__)

PROVIDER_LABELS = {"auto": "Automatic (GPU when available)", "cuda": "NVIDIA GPU (CUDA)", "cpu": "CPU"}
DOOR_LABELS = {"none": "No door output (log only)", "command": "Run a command",
               "webhook": "Call a web address (webhook)", "serial": "USB / serial relay"}


def _spin(lo: int, hi: int, value: int, suffix: str = "") -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
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


class SettingsDialog(QDialog):
    """Edits a copy of `settings`; after accept(), `self.settings` holds the saved values."""

    def __init__(self, settings: Settings, parent=None, *, save: bool = True,
                 default_threshold: float | None = None, gallery_size: int | None = None,
                 margin_threshold: float | None = None):
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
        s = self.settings

        # Ranges are wide on purpose: Settings.validate is the one place that decides, so the
        # reason the user sees is the same one the CLI prints.
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
        self.use_default_threshold = QCheckBox("Use the model's calibrated threshold" + calibrated)
        self.use_default_threshold.setChecked(s.threshold is None)
        self.threshold = _dspin(0.0, 10.0, s.threshold if s.threshold is not None else (default_threshold or 0.36), 3, 0.01)
        self.threshold.setEnabled(s.threshold is not None)
        self.use_default_threshold.toggled.connect(self._use_calibrated)
        self.confirm_frames = _spin(0, 1000, s.confirm_frames)
        self.window_frames = _spin(0, 1000, s.window_frames)
        self.stranger_frames = _spin(0, 1000, s.stranger_frames)
        self.cooldown = _dspin(0.0, 100000.0, s.cooldown_s, 1, 1.0, " s")
        self.photo_check = QCheckBox("Photo check: a recognised face must turn a little before the door opens")
        self.photo_check.setToolTip("Stops a printed photo or a still picture on a phone held up to the camera. "
                                    "Not a video replayed on a screen.")
        self.photo_check.setChecked(s.photo_check)
        self.mode = QComboBox()
        self.mode.addItem("Recognise anyone enrolled (identify)", "identify")
        self.mode.addItem("Check a typed or badged employee id (verify)", "verify")
        self.mode.setCurrentIndex(1 if s.mode == "verify" else 0)
        self.provider = QComboBox()
        for p in PROVIDERS:
            self.provider.addItem(PROVIDER_LABELS.get(p, p), p)
        self.provider.setCurrentIndex(PROVIDERS.index(s.provider))

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
        self.test_door_btn = QPushButton("Test door")
        self.door_result = QLabel()
        self.door_result.setWordWrap(True)

        self.pin = QLineEdit()
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setPlaceholderText("set" if s.admin_pin_hash else "not set")
        self.pin_again = QLineEdit()
        self.pin_again.setEchoMode(QLineEdit.EchoMode.Password)
        self.retention = _spin(0, 100000, s.log_retention_days, " days")

        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)

        cam = QFormLayout()
        cam.addRow("Camera", self.camera)
        cam.addRow("", self.loop_video)
        rec = QFormLayout()
        rec.addRow("Door mode", self.mode)
        rec.addRow("", self.use_default_threshold)
        rec.addRow("Distance threshold", self.threshold)
        rec.addRow("Grant after (N frames)", self.confirm_frames)
        rec.addRow("… of the last (M frames)", self.window_frames)
        rec.addRow("Deny after (stranger frames)", self.stranger_frames)
        rec.addRow("Cool-down per person", self.cooldown)
        rec.addRow("", self.photo_check)
        rec.addRow("Run on", self.provider)
        door = QFormLayout()
        door.addRow("Door output", self.door_kind)
        door.addRow("Command", self.door_command)
        door.addRow("Web address", self.door_url)
        door.addRow("Serial port", self.door_port)
        door.addRow("Keep open", self.door_seconds)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_door_btn)
        test_row.addWidget(self.door_result, 1)
        door.addRow("", self._wrap(test_row))
        adm = QFormLayout()
        adm.addRow("New admin PIN", self.pin)
        adm.addRow("Repeat PIN", self.pin_again)
        adm.addRow("Keep the access log", self.retention)

        body = QVBoxLayout(self)
        grid = QHBoxLayout()
        col1, col2 = QVBoxLayout(), QVBoxLayout()
        col1.addWidget(self._group("Camera", cam))
        col1.addWidget(self._group("Recognition", rec))
        col2.addWidget(self._group("Door", door))
        col2.addWidget(self._group("Administration", adm))
        col2.addStretch(1)
        grid.addLayout(col1)
        grid.addLayout(col2)
        body.addLayout(grid)
        body.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        body.addWidget(buttons)

        self.door_kind.currentIndexChanged.connect(self._door_fields)
        self.test_door_btn.clicked.connect(self.test_door)
        self._door_fields()

    @staticmethod
    def _wrap(layout) -> QWidget:
        w = QWidget()
        layout.setContentsMargins(0, 0, 0, 0)
        w.setLayout(layout)
        return w

    @staticmethod
    def _group(title: str, layout) -> QGroupBox:
        g = QGroupBox(title)
        g.setLayout(layout)
        return g

    def _use_calibrated(self, on: bool) -> None:
        self.threshold.setEnabled(not on)
        if on and self.default_threshold:
            self.threshold.setValue(self.default_threshold)   # the field shows what will apply

    def _door_fields(self) -> None:
        kind = self.door_kind.currentData()
        self.door_command.setEnabled(kind == "command")
        self.door_url.setEnabled(kind == "webhook")
        self.door_port.setEnabled(kind == "serial")

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
        s.provider = self.provider.currentData()
        s.door.kind = self.door_kind.currentData()
        s.door.command = self.door_command.text().strip()
        s.door.url = self.door_url.text().strip()
        s.door.serial_port = self.door_port.text().strip()
        s.door.open_seconds = float(self.door_seconds.value())
        s.log_retention_days = self.retention.value()
        pin, again = self.pin.text(), self.pin_again.text()
        if pin or again:
            if pin != again:
                raise SettingsError("Setting 'admin_pin_hash': the two PINs differ; type the same PIN twice.")
            s.admin_pin_hash = hash_pin(pin)
        return s.validate()

    def test_door(self) -> None:
        from faceguard.access.decide import GRANTED, Decision
        from faceguard.access.door import make_door
        try:
            door = make_door(self.candidate().door)
        except FaceGuardError as exc:
            self.door_result.setText(str(exc))
            return
        probe = Decision(time=0.0, kind=GRANTED, person_id="TEST", name="Door test", distance=0.0,
                         threshold=0.0, frames_used=0, reason="test from the settings dialog",
                         track_id=-1, box=(0.0, 0.0, 0.0, 0.0))
        result = door.trigger(probe)
        self.door_result.setText(("Door opened: " if result.ok else "Door test failed: ") + result.message)

    def accept(self) -> None:
        try:
            candidate = self.candidate()
            if self._save:
                save_settings(candidate)
        except FaceGuardError as exc:
            self.error.setText(str(exc))
            return
        self.settings = candidate
        self.error.setText("")
        super().accept()
