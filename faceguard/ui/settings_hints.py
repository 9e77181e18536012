"""The Settings window's live hints (issue 24): what the strictness means in stranger rates
(from the model's calibration curve, settings_words.strictness_words) and a warning on an admin
PIN a passer-by guesses first. A mixin of SettingsDialog, so its file stays about the fields."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QAbstractSpinBox, QLabel, QSpinBox

from faceguard.errors import FaceGuardError
from faceguard.ui.settings_words import frames_words, strictness_words, trivial_pin

log = logging.getLogger(__name__)


def default_curve():
    """The deployed model's calibration curve (() when the manifest cannot be read)."""
    from faceguard.vision.models import load_manifest
    try:
        return load_manifest().embedder().threshold_curve
    except FaceGuardError as exc:
        log.info("no calibration curve for the strictness words: %s", exc)
        return ()


class SettingsHints:
    """Needs of the dialog: threshold, use_default_threshold, default_threshold, pin."""

    def build_hints(self, gallery_size: int | None, curve=None, checked_fps: float | None = None) -> None:
        self.curve = default_curve() if curve is None else curve
        self.gallery_size = max(1, gallery_size or 1)
        self.strictness_note = QLabel()
        self.strictness_note.setWordWrap(True)
        self.strictness_note.setStyleSheet("color: #2f3a48; font-size: 11px; font-weight: 600;")
        self.checked_fps = checked_fps
        self.frames_note = QLabel()
        self.frames_note.setWordWrap(True)
        self.frames_note.setStyleSheet("color: #2f3a48; font-size: 11px; font-weight: 600;")
        for box in (self.confirm_frames, self.stranger_frames):
            box.valueChanged.connect(lambda *_: self.show_frames())
        self.show_frames()
        self.pin_warning = QLabel()
        self.pin_warning.setObjectName("error")
        self.pin_warning.setWordWrap(True)
        self.threshold.valueChanged.connect(lambda *_: self.show_strictness())
        self.use_default_threshold.toggled.connect(lambda *_: self.show_strictness())
        self.pin.textChanged.connect(self.show_pin_warning)
        self.show_strictness()
        self.show_pin_warning(self.pin.text())
        # Arrows on every number field, and the mouse wheel only once it is clicked into.
        for box in self.findChildren(QAbstractSpinBox):
            box.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.UpDownArrows)
            box.setAccelerated(True)
            if isinstance(box, QSpinBox):
                box.setMinimumWidth(110)

    def show_strictness(self) -> None:
        text = strictness_words(self.curve, float(self.threshold.value()), self.gallery_size,
                                self.default_threshold)
        self.strictness_note.setText(text)
        self.strictness_note.setVisible(bool(text))

    def show_frames(self) -> None:
        self.frames_note.setText(frames_words(self.confirm_frames.value(), self.stranger_frames.value(),
                                              self.checked_fps))

    def show_pin_warning(self, pin: str) -> None:
        why = trivial_pin(pin)
        self.pin_warning.setText(f"Easy to guess: {why}. Anyone at the door may try it first; choose "
                                 "another." if why else "")
        self.pin_warning.setVisible(bool(why))
