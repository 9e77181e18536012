"""The door window's parts: the decision banner and the page shown when there is no camera."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from faceguard.ui.presentation import BannerView, idle_banner
from faceguard.ui.target_marker import TargetMarker

log = logging.getLogger(__name__)


class DecisionBanner(QFrame):
    """The big coloured banner: GRANTED + name + photo, DENIED, or look at the camera."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.photo = QLabel()
        self.photo.setFixedSize(120, 120)
        self.photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.arrow = QLabel()
        self.arrow.setObjectName("bannerArrow")      # big enough to read from 2 m (style.qss)
        self.arrow.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.arrow.setMinimumWidth(160)
        big = self.arrow.font()
        big.setPointSize(96)                         # also without the style sheet
        big.setBold(True)
        self.arrow.setFont(big)
        self.arrow.setVisible(False)
        self.marker = TargetMarker()                 # the follow-the-target challenge's dot
        self.marker.setVisible(False)
        self.title = QLabel()
        self.title.setObjectName("bannerTitle")
        self.detail = QLabel()
        self.detail.setObjectName("bannerDetail")
        self.detail.setWordWrap(True)
        text = QVBoxLayout()
        text.addStretch(1)
        text.addWidget(self.title)
        text.addWidget(self.detail)
        text.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(18, 12, 18, 12)
        row.addWidget(self.photo)
        row.addWidget(self.arrow)
        row.addWidget(self.marker)
        row.addLayout(text, 1)
        self.setMinimumHeight(150)
        self.state = ""
        self.view: BannerView | None = None
        self.present(idle_banner())

    def present(self, view: BannerView, photo: QImage | None = None) -> None:
        """Paint a BannerView (presentation.py decides which one, and its texts)."""
        self.view = view
        self.state = view.state
        self.title.setText(view.title)
        self.detail.setText(view.detail)
        self.arrow.setText(view.arrow or "")
        self.arrow.setVisible(view.arrow is not None)
        if view.target is None:
            self.marker.show_path(None, 0.0)
        if photo is not None and not photo.isNull():
            pix = QPixmap.fromImage(photo).scaled(
                self.photo.size(), Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
            self.photo.setPixmap(pix)
            self.photo.show()
        else:
            self.photo.clear()
            self.photo.setVisible(False)
        for w in (self, self.title, self.detail, self.arrow):   # re-read the style sheet for the new `state`
            w.setProperty("state", view.state)
            w.style().unpolish(w)
            w.style().polish(w)


    def tick(self, frame_t: float) -> None:
        """A frame was painted (door time ``frame_t``): the marker's dot runs from there."""
        target = None if self.view is None else self.view.target
        if target is not None:
            self.marker.show_path(target, frame_t)


class _CameraSearch(QThread):
    found = Signal(list)

    def run(self) -> None:
        from faceguard.camera import list_cameras
        try:
            self.found.emit(list_cameras())
        except Exception:   # a broken driver must not take the app down
            log.exception("listing cameras failed")
            self.found.emit([])


class NoCameraPage(QWidget):
    """Shown when the camera cannot be opened: pick a device, a URL or a video file."""

    chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("noCamera")
        self.headline = QLabel("No camera")
        self.headline.setObjectName("noCameraTitle")
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.devices = QComboBox()
        self.devices.setMinimumWidth(220)
        self.search_btn = QPushButton("Search for cameras")
        self.use_device_btn = QPushButton("Use this camera")
        self.use_device_btn.setEnabled(False)
        self.url = QLineEdit()
        self.url.setPlaceholderText("rtsp://192.168.1.20/stream  or  http://…")
        self.url_btn = QPushButton("Connect")
        self.file_btn = QPushButton("Open a video file…")
        self.retry_btn = QPushButton("Try again")
        self.hint = QLabel()
        self.hint.setObjectName("error")

        box = QVBoxLayout(self)
        box.setContentsMargins(60, 40, 60, 40)
        box.addStretch(1)
        box.addWidget(self.headline)
        box.addWidget(self.reason)
        box.addSpacing(18)
        for label, widgets in (("A camera on this computer:", (self.devices, self.search_btn, self.use_device_btn)),
                               ("A network camera:", (self.url, self.url_btn)),
                               ("A recorded video:", (self.file_btn, self.retry_btn))):
            box.addWidget(QLabel(label))
            row = QHBoxLayout()
            for w in widgets:
                row.addWidget(w)
            row.addStretch(1)
            box.addLayout(row)
            box.addSpacing(8)
        box.addWidget(self.hint)
        self.locked_note = QLabel("The camera is not available. Please ask a member of staff.")
        self.locked_note.setWordWrap(True)
        self.locked_note.setVisible(False)
        box.addWidget(self.locked_note)
        box.addStretch(2)

        self._search: _CameraSearch | None = None
        self.search_btn.clicked.connect(self.search)
        self.use_device_btn.clicked.connect(lambda: self.chosen.emit(str(self.devices.currentData())))
        self.url_btn.clicked.connect(self._use_url)
        self.url.returnPressed.connect(self._use_url)
        self.file_btn.clicked.connect(self._pick_file)
        self.retry_btn.clicked.connect(lambda: self.chosen.emit(""))

    def set_locked(self, on: bool) -> None:
        """Kiosk mode: visitors see that the camera is out, not its address or the choices."""
        for w in self.findChildren(QWidget):
            if w is not self.headline:
                w.setVisible(not on)
        self.locked_note.setVisible(on)

    def set_reason(self, text: str) -> None:
        self.reason.setText(f"{text}\nChoose where the pictures should come from:")
        self.hint.setText("")

    def search(self) -> None:
        if self._search is not None and self._search.isRunning():
            return
        self.devices.clear()
        self.devices.addItem("Searching…")
        self.use_device_btn.setEnabled(False)
        self._search = _CameraSearch(self)
        self._search.found.connect(self._show_devices)
        self._search.start()

    def _show_devices(self, indices: list) -> None:
        self.devices.clear()
        for i in indices:
            self.devices.addItem(f"Camera {i}", i)
        if not indices:
            self.devices.addItem("No camera found")
        self.use_device_btn.setEnabled(bool(indices))

    def _use_url(self) -> None:
        url = self.url.text().strip()
        if "://" not in url:
            self.hint.setText("A camera address starts with rtsp://, http:// or https://.")
            return
        self.chosen.emit(url)

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video file", str(Path.home()),
                                              "Videos (*.mp4 *.avi *.mkv *.mov *.webm);;All files (*)")
        if path:
            self.chosen.emit(path)

    def stop(self) -> None:
        if self._search is not None:
            self._search.wait(5000)
