"""Enrolment: one good photo, a name, an employee id and the person's consent.

The live preview runs the quality gate (vision/quality.py) on every frame in the worker thread
and says what to do ("come closer", "too dark"…); Capture is enabled only while the gate
passes. Auto-capture takes the best-scoring frame of the next second. "From photo file" runs
the same gate on a picture. Saving goes through gallery.enrol, which refuses a second
enrolment of someone already in the gallery unless the operator confirms.

Saving (detect, embed, the flipped re-embed, the encrypted photo and its row) runs in a
`SaveJob` thread: the dialog says "Saving…" with its buttons off, and the result or the
refusal comes back to the UI thread (`save_finished(bool)`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from faceguard.errors import FaceGuardError
from faceguard.gallery import pins
from faceguard.ui.video import AMBER, GREEN, GREY, Overlay, VideoView, VideoWorker, rgb_to_qimage
from faceguard.vision.image import load_image
from faceguard.vision.quality import Quality, assess, photo_message

log = logging.getLogger(__name__)

AUTO_CAPTURE_S = 1.0


@dataclass
class Checked:
    """A frame (or photo) with the faces found in it and the gate's verdict."""
    rgb: np.ndarray
    faces: list
    quality: Quality


def is_duplicate_error(exc: BaseException) -> bool:
    return type(exc).__name__ == "DuplicatePersonError"


class SaveJob(QThread):
    """`gallery.enrol.enrol(...)` off the UI thread: `saved(result)` or `refused(error)`, each
    a FaceGuardError with a message for the operator (never a traceback)."""

    saved = Signal(object)
    refused = Signal(object)

    def __init__(self, gallery, pipeline, rgb: np.ndarray, kwargs: dict, parent=None):
        super().__init__(parent)
        self._args = (gallery, pipeline, rgb)
        self.kwargs = kwargs

    def run(self) -> None:
        from faceguard.gallery.enrol import enrol
        try:
            result = enrol(*self._args, **self.kwargs)
        except FaceGuardError as exc:
            self.refused.emit(exc)
            return
        except Exception as exc:   # noqa: BLE001 (a bug: logged, the operator gets a sentence)
            log.exception("enrolment failed")
            self.refused.emit(FaceGuardError(f"Saving failed ({type(exc).__name__}: {exc}). "
                                             "Nothing was enrolled; see the log file."))
            return
        self.saved.emit(result)


class EnrollDialog(QDialog):
    save_finished = Signal(bool)   # True: enrolled (the dialog accepts); False: refused, reason shown

    def __init__(self, pipeline, gallery, settings, parent=None, *,
                 open_source: Callable[[], object] | None = None, live: bool = True):
        super().__init__(parent)
        self.pipeline = pipeline
        self.gallery = gallery
        self.settings = settings
        self._open_source = open_source or self._default_source
        self.worker: VideoWorker | None = None
        self.current: Checked | None = None     # newest checked live frame
        self.captured: Checked | None = None    # the photo that will be enrolled
        self.enrolled = None                    # what gallery.enrol returned
        self.enrolled_many: list = []           # bulk enrolment's enrolled items
        self.bulk = None
        self.job: SaveJob | None = None         # the save running now
        self._burst: list[Checked] = []
        self._burst_until = 0.0

        self.setWindowTitle("Enrol a person")
        self.preview = VideoView(placeholder="Starting the camera…")
        self.preview.setMinimumSize(480, 300)
        self.feedback = QLabel("Look at the camera")
        self.feedback.setObjectName("feedback")
        self.feedback.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.capture_btn = QPushButton("Capture")
        self.capture_btn.setEnabled(False)
        self.auto = QCheckBox("Auto-capture (best of the next second)")
        self.file_btn = QPushButton("From photo file…")
        self.photo = QLabel("No photo yet")
        self.photo.setObjectName("photoSlot")
        self.photo.setFixedSize(180, 180)
        self.photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = QLineEdit()
        self.name.setPlaceholderText("First and last name")
        self.employee_id = QLineEdit()
        self.employee_id.setPlaceholderText("e.g. E-1042")
        self.pin = QLineEdit()      # issue 21: optional; only its scrypt hash is stored
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setPlaceholderText("optional, 4-8 digits")
        self.pin.setMaxLength(8)
        self.consent = QCheckBox("Consent given (required)")
        self.consent.setToolTip("The person agrees that their face photo is stored to open the door.")
        self.consent.setObjectName("consent")
        self.consent.setMinimumWidth(260)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.enrol_btn = QPushButton("Enrol")
        self.enrol_btn.setObjectName("primary")
        self.enrol_btn.setDefault(True)
        self.cancel_btn = cancel = QPushButton("Cancel")
        self.bulk_btn = QPushButton("Enrol many…")
        self.bulk_btn.setToolTip("A folder of photos, one per person, or a CSV with photo,name,id.")

        left = QVBoxLayout()
        left.addWidget(self.preview, 1)
        left.addWidget(self.feedback)
        row = QHBoxLayout()
        row.addWidget(self.capture_btn)
        row.addWidget(self.auto)
        row.addStretch(1)
        row.addWidget(self.file_btn)
        left.addLayout(row)

        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Employee id", self.employee_id)
        form.addRow("PIN", self.pin)
        right = QVBoxLayout()
        right.addWidget(self.photo, 0, Qt.AlignmentFlag.AlignHCenter)
        right.addLayout(form)
        right.addWidget(self.consent)
        right.addWidget(self.error)
        right.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.bulk_btn)
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.enrol_btn)
        right.addLayout(buttons)

        top = QHBoxLayout(self)
        top.addLayout(left, 3)
        top.addLayout(right, 2)

        self.capture_btn.clicked.connect(self.capture)
        self.file_btn.clicked.connect(self._pick_file)
        self.bulk_btn.clicked.connect(lambda: self.open_bulk().exec())
        self.enrol_btn.clicked.connect(self.save)
        cancel.clicked.connect(self.reject)
        for w in (self.name, self.employee_id, self.pin):
            w.textChanged.connect(self._update_enrol_button)
        self.consent.toggled.connect(self._update_enrol_button)
        self._update_enrol_button()
        self.resize(980, 520)
        if live:
            self.start_camera()
        else:
            self.preview.set_placeholder("No live camera here.\nUse “From photo file…”.")

    # -- live preview -----------------------------------------------------------------------
    def _default_source(self):
        from faceguard.camera import FrameSource
        return FrameSource(self.settings.camera, loop=self.settings.loop_video, realtime=True).open()

    def check(self, rgb: np.ndarray) -> Checked:
        faces = self.pipeline.detect(rgb)
        return Checked(rgb, faces, assess(rgb, faces))

    def start_camera(self) -> None:
        self.worker = VideoWorker(self._open_source, lambda frame: self.check(frame.rgb), self)
        self.worker.result_ready.connect(self._on_frame)
        self.worker.failed.connect(self._on_camera_failed)
        self.worker.start()

    def stop_camera(self) -> None:
        if self.worker is not None:
            self.worker.result_ready.disconnect(self._on_frame)
            self.worker.failed.disconnect(self._on_camera_failed)
            self.worker.stop()   # a worker still busy ends on its own and gives the camera back
            self.worker = None

    def _on_camera_failed(self, message: str) -> None:
        self.preview.set_placeholder("No camera picture.\nUse “From photo file…” instead.")
        self.feedback.setText(message)

    def _on_frame(self) -> None:
        r = self.worker.take() if self.worker is not None else None
        if r is None:
            return
        checked: Checked = r.result
        self.current = checked
        q = checked.quality
        overlays = []
        for i, f in enumerate(checked.faces):
            judged = i == q.face_index
            overlays.append(Overlay(tuple(float(v) for v in f.box), q.message if judged else "",
                                    GREEN if judged and q.ok else AMBER, f.landmarks))
        self.preview.set_frame(r.image, overlays)
        self.show_quality(q)
        if self.saving:
            return   # the photo being saved stays the captured one
        if self._burst_until:
            if q.ok:
                self._burst.append(checked)
            if time.monotonic() >= self._burst_until:
                self._finish_burst()
        elif q.ok and self.auto.isChecked() and self.captured is None:
            self._burst_until = time.monotonic() + AUTO_CAPTURE_S
            self._burst = [checked]

    def _finish_burst(self) -> None:
        self._burst_until = 0.0
        if self._burst:
            self.set_captured(max(self._burst, key=lambda c: c.quality.score))
        self._burst = []

    def show_quality(self, q: Quality, from_file: bool = False) -> None:
        """The gate's verdict: what to do in front of the camera ("Hold still"), or, for a
        photo file, what is wrong with the photo ("Good: hold it there" means nothing to a file)."""
        text = photo_message(q) if from_file else q.message
        self.feedback.setText(text[:1].upper() + text[1:])
        self.feedback.setProperty("ok", q.ok)
        self.feedback.style().unpolish(self.feedback)
        self.feedback.style().polish(self.feedback)
        self.capture_btn.setEnabled(q.ok and not self.saving)

    @property
    def saving(self) -> bool:
        return self.job is not None

    def capture(self) -> None:
        if self.current is not None and self.current.quality.ok and not self.saving:
            self.set_captured(self.current)

    def open_bulk(self):
        """The bulk enrolment dialog over this one's gallery (its camera is let go first)."""
        from faceguard.ui.bulk_dialog import BulkEnrolDialog
        self.stop_camera()
        self.bulk = BulkEnrolDialog(self.gallery, self.pipeline, self.settings, parent=self)
        self.bulk.finished.connect(lambda *_: self._bulk_closed())
        return self.bulk

    def _bulk_closed(self) -> None:
        if self.bulk is not None and any(o.ok for o in self.bulk.outcomes):
            self.enrolled_many = [o.item for o in self.bulk.outcomes if o.ok]
            self.accept()      # people were enrolled: the door check reloads them

    # -- from a file ------------------------------------------------------------------------
    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a photo", str(Path.home()),
                                              "Photos (*.jpg *.jpeg *.png *.bmp *.webp);;All files (*)")
        if path:
            self.load_photo(path)

    def load_photo(self, path: str | Path) -> bool:
        """Run the gate on a photo file; True when it passes and became the captured photo."""
        try:
            rgb = load_image(path)
        except FaceGuardError as exc:
            self.error.setText(str(exc))
            return False
        checked = self.check(rgb)
        self.show_quality(checked.quality, from_file=True)
        self.preview.set_frame(rgb_to_qimage(rgb), [
            Overlay(tuple(float(v) for v in f.box), "",
                    (GREEN if checked.quality.ok else AMBER) if i == checked.quality.face_index else GREY)
            for i, f in enumerate(checked.faces)])
        if not checked.quality.ok:
            # A photo file is not a person in front of the camera: say what is wrong with it.
            self.error.setText(f"This photo cannot be used: {photo_message(checked.quality)}.")
            return False
        self.stop_camera()   # the chosen photo stays on screen
        self.set_captured(checked)
        return True

    # -- the photo, the form, saving --------------------------------------------------------
    def set_captured(self, checked: Checked) -> None:
        # Small bystanders far behind are left in the photo: enrol() ignores faces under 40 % of
        # the main one (vision/main_face.py), the same rule the gate applied here.
        self.captured = checked
        f = checked.faces[checked.quality.face_index]
        x1, y1, x2, y2 = (float(v) for v in f.box)
        mx, my = 0.3 * (x2 - x1), 0.3 * (y2 - y1)
        h, w = checked.rgb.shape[:2]
        face = checked.rgb[int(max(0, y1 - my)):int(min(h, y2 + my)), int(max(0, x1 - mx)):int(min(w, x2 + mx))]
        self.photo.setPixmap(QPixmap.fromImage(rgb_to_qimage(face)).scaled(
            self.photo.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        self.error.setText("")
        self._update_enrol_button()

    def missing(self) -> str | None:
        """What still stops enrolment, as a sentence (None when ready)."""
        if self.captured is None:
            return "Take a photo first (Capture, or From photo file…)."
        if not self.name.text().strip():
            return "Type the person's name."
        if not self.employee_id.text().strip():
            return "Type the person's employee id."
        if not self.consent.isChecked():
            return "The person's consent is required."
        pin = self.pin.text().strip()
        if pin and not (pin.isdigit() and pins.MIN_DIGITS <= len(pin) <= pins.MAX_DIGITS):
            return "The PIN must be 4 to 8 digits (or left empty)."
        return None

    def _update_enrol_button(self) -> None:
        why = self.missing()
        self.enrol_btn.setEnabled(why is None and not self.saving)
        self.enrol_btn.setToolTip(why or "")

    def confirm_duplicate(self, message: str) -> bool:
        """Asks whether to enrol anyway (tests replace this)."""
        answer = QMessageBox.question(self, "Already enrolled?",
                                      f"{message}\n\nEnrol this photo as a new person anyway?")
        return answer == QMessageBox.StandardButton.Yes

    def save(self) -> bool:
        """Start saving in a SaveJob; False (and the reason shown) when something is missing.
        `save_finished` says how it ended."""
        why = self.missing()
        if why:
            self.error.setText(why)
            return False
        if self.saving:
            return False
        self._start_save(override_duplicate=False)
        return True

    def _start_save(self, override_duplicate: bool) -> None:
        kwargs = dict(name=self.name.text().strip(), employee_id=self.employee_id.text().strip(),
                      consent=self.consent.isChecked(), threshold=self.settings.threshold)
        if override_duplicate:
            kwargs["override_duplicate"] = True
        self.job = SaveJob(self.gallery, self.pipeline, self.captured.rgb, kwargs, self)
        self.job.saved.connect(self._on_saved)
        self.job.refused.connect(self._on_refused)
        self._set_saving(True)
        self.job.start()

    def _set_saving(self, on: bool) -> None:
        for w in (self.capture_btn, self.file_btn, self.cancel_btn, self.name, self.employee_id,
                  self.consent, self.auto, self.bulk_btn):
            w.setEnabled(not on)
        if on:
            self.enrol_btn.setEnabled(False)
            self.enrol_btn.setText("Saving…")
            self.error.setText("")
        else:
            self.enrol_btn.setText("Enrol")
            self._update_enrol_button()
            self.capture_btn.setEnabled(self.current is not None and self.current.quality.ok)

    def _end_job(self) -> None:
        job, self.job = self.job, None
        if job is not None:
            job.wait()        # it has emitted its last signal; let the thread finish
            job.deleteLater()
        self._set_saving(False)

    def _on_saved(self, enrolled) -> None:
        self._end_job()
        self.enrolled = enrolled
        if self.pin.text().strip():
            try:
                pins.set_pin(self.gallery, self.employee_id.text().strip(), self.pin.text())
            except FaceGuardError as exc:
                log.warning("PIN not set at enrolment: %s", exc)
            self.pin.clear()
        log.info("enrolled %s", self.name.text().strip())
        self.save_finished.emit(True)
        self.accept()

    def _on_refused(self, exc: FaceGuardError) -> None:
        overriding = self.job is not None and "override_duplicate" in self.job.kwargs
        self._end_job()
        if is_duplicate_error(exc) and not overriding and self.confirm_duplicate(str(exc)):
            self._start_save(override_duplicate=True)
            return
        self.error.setText(str(exc))
        self.save_finished.emit(False)

    def done(self, result: int) -> None:
        if self.saving:
            return   # closing waits for the save: the buttons say "Saving…"
        self.stop_camera()
        super().done(result)
