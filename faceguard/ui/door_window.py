"""The door-check window: live video, the decision banner, recent events, status bar.

The window does not decide anything. A VideoWorker runs the door check (`check.process(frame)`,
the same no-Qt flow the headless CLI runs) on the newest frame and this window paints what the
report says: one box per face, a banner for each decision, a row in the recent events.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from faceguard import paths
from faceguard.errors import FaceGuardError
from faceguard.settings import Settings, save_settings
from faceguard.ui.pin import verify_pin
from faceguard.ui.sounds import SoundPlayer
from faceguard.ui.video import (
    AMBER,
    GREEN,
    GREY,
    RED,
    OneReader,
    Overlay,
    VideoView,
    VideoWorker,
    rgb_to_qimage,
)

log = logging.getLogger(__name__)

BANNER_HOLD_MS = 4000      # a decision stays on screen this long, then "look at the camera"
MAX_EVENT_ROWS = 50
MAX_DECISIONS_KEPT = 1000
THUMB = 64

IDLE_TEXT = "Look at the camera"
PAUSED_TEXT = "Paused while enrolling"
CAMERA_LOST_TEXT = "Camera disconnected, retrying…"
TURN_HEAD_TEXT = "Please turn your head a little"


# -- small adapters over the report records (the flow's dataclasses, read by attribute) --------
def kind_of(decision) -> str:
    kind = getattr(decision, "kind", "")
    return str(getattr(kind, "value", kind)).upper()


def name_of(obj) -> str | None:
    name = getattr(obj, "name", None)
    if name is None and getattr(obj, "person", None) is not None:
        name = getattr(obj.person, "name", None)
    return name


def explanation_of(decision) -> str:
    """Why the door decided this, with the numbers: the Decider's reason (e.g. "Ana recognised
    in 3 of the last 5 frames (median distance 0.11 ≤ threshold 0.18)"); when a reason lacks
    them, distance and threshold are added so no decision is shown without its evidence."""
    reason = str(getattr(decision, "reason", "") or "").strip()
    dist = float(getattr(decision, "distance", math.inf))
    thr = float(getattr(decision, "threshold", math.nan))
    if "threshold" in reason or not (math.isfinite(dist) or math.isfinite(thr)):
        return reason or "no distance measured"
    if math.isfinite(dist) and math.isfinite(thr):
        numbers = f"distance {dist:.2f} {'≤' if dist <= thr else '>'} threshold {thr:.2f}"
    elif math.isfinite(thr):
        numbers = f"threshold {thr:.2f}"
    else:
        numbers = f"distance {dist:.2f}"
    return f"{reason} ({numbers})" if reason else numbers


def crop(rgb: np.ndarray, box, margin: float = 0.25) -> np.ndarray:
    """The face box plus a margin, clipped to the frame (for thumbnails)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    h, w = rgb.shape[:2]
    xa, xb = int(max(0, x1 - mx)), int(min(w, x2 + mx))
    ya, yb = int(max(0, y1 - my)), int(min(h, y2 + my))
    if xb <= xa or yb <= ya:
        return rgb
    return rgb[ya:yb, xa:xb]


def any_to_qimage(photo) -> QImage | None:
    """A gallery photo as whatever the store returns (array, bytes, path) → QImage."""
    if photo is None:
        return None
    if isinstance(photo, np.ndarray):
        return rgb_to_qimage(photo)
    if isinstance(photo, (bytes, bytearray)):
        img = QImage.fromData(bytes(photo))
        return None if img.isNull() else img
    if isinstance(photo, (str, Path)):
        img = QImage(str(photo))
        return None if img.isNull() else img
    return None


def face_overlay(face) -> Overlay:
    """Box colour and label for one face record of a FrameReport."""
    name = name_of(face)
    dist = getattr(face, "distance", math.inf)
    state = str(getattr(face, "state", "") or "")
    text = getattr(face, "status", None) or getattr(face, "text", None) or ""
    if state in ("granted", "cooldown") or (name and state not in ("stranger", "denied")):
        color = GREEN if state in ("granted", "cooldown", "") else AMBER
    elif state in ("stranger", "denied") or (not name and math.isfinite(dist)):
        color = RED
    else:
        color = GREY
    who = name or "unknown"
    label = f"{who}  {dist:.2f}" if math.isfinite(dist) else who
    if text.startswith(who):   # "Ana: granted" → "Ana  0.08 · granted", the name once
        text = text[len(who):].lstrip(" :·")
    if text and text not in label:
        label = f"{label} · {text}"
    return Overlay(tuple(float(v) for v in face.box), label, color,
                   getattr(face, "landmarks", None))


class DecisionBanner(QFrame):
    """The big coloured banner: GRANTED + name + photo, DENIED, or look at the camera."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.photo = QLabel()
        self.photo.setFixedSize(120, 120)
        self.photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
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
        row.addLayout(text, 1)
        self.setMinimumHeight(150)
        self.state = ""
        self.show_idle()

    def _set(self, state: str, title: str, detail: str, photo: QImage | None) -> None:
        self.state = state
        self.setProperty("state", state)
        self.title.setText(title)
        self.detail.setText(detail)
        if photo is not None and not photo.isNull():
            pix = QPixmap.fromImage(photo).scaled(
                self.photo.size(), Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
            self.photo.setPixmap(pix)
            self.photo.show()
        else:
            self.photo.clear()
            self.photo.setVisible(False)
        for w in (self, self.title, self.detail):   # re-read the style sheet for the new `state`
            w.setProperty("state", state)
            w.style().unpolish(w)
            w.style().polish(w)

    def show_idle(self, text: str = IDLE_TEXT) -> None:
        self._set("idle", text, "Stand in front of the camera and look at it for a moment.", None)

    def show_granted(self, name: str, detail: str, photo: QImage | None) -> None:
        self._set("granted", f"GRANTED  ·  {name}", detail, photo)

    def show_denied(self, detail: str, photo: QImage | None) -> None:
        self._set("denied", "DENIED", detail, photo)

    def show_problem(self, text: str, detail: str) -> None:
        self._set("problem", text, detail, None)


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
        box.addStretch(2)

        self._search: _CameraSearch | None = None
        self.search_btn.clicked.connect(self.search)
        self.use_device_btn.clicked.connect(lambda: self.chosen.emit(str(self.devices.currentData())))
        self.url_btn.clicked.connect(self._use_url)
        self.url.returnPressed.connect(self._use_url)
        self.file_btn.clicked.connect(self._pick_file)
        self.retry_btn.clicked.connect(lambda: self.chosen.emit(""))

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


class DoorWindow(QMainWindow):
    """The main window. `make_check()` builds the door check (a `.process(frame)` object);
    `open_source()` opens the FrameSource. Both are injectable so tests can drive them."""

    def __init__(self, settings: Settings, pipeline=None, gallery=None, *,
                 make_check: Callable[[], object] | None = None,
                 open_source: Callable[[], object] | None = None,
                 sounds: SoundPlayer | None = None, save: bool = True):
        super().__init__()
        self.settings = settings
        self.pipeline = pipeline
        self.gallery = gallery
        self._make_check = make_check or self._default_check
        # One gate for every reader of the door's camera (this window, the enrolment preview).
        self._open_source = OneReader(open_source or self._default_source)
        self._save = save
        self.sounds = sounds or SoundPlayer()
        self.worker: VideoWorker | None = None
        self.check = None
        self._reload = threading.Event()    # set by the UI thread, served by the worker thread
        self._claims: queue.SimpleQueue = queue.SimpleQueue()  # verify mode: ids typed/badged
        self.kiosk = False
        self._camera_state = "starting"
        # The latest decisions shown, oldest first (tests, audit); bounded: the door runs for months.
        self.decisions: deque = deque(maxlen=MAX_DECISIONS_KEPT)
        self.last_frame_index = -1          # the newest frame painted (its number in the source)

        self.setWindowTitle("FaceGuard · Door check")
        icon = paths.assets_dir() / "icon.png"
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self._build()
        self._build_actions()
        self.banner_timer = QTimer(self, singleShot=True, interval=BANNER_HOLD_MS)
        self.banner_timer.timeout.connect(lambda: self.banner.show_idle())
        self.resize(1180, 720)

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.video = VideoView(placeholder="Starting the camera…")
        self.banner = DecisionBanner()
        self.events = QListWidget()
        self.events.setObjectName("events")
        self.events.setIconSize(QSize(THUMB, THUMB))
        self.events.setWordWrap(True)          # the row's explanation is longer than the panel
        self.events.setTextElideMode(Qt.TextElideMode.ElideNone)
        events_title = QLabel("Recent events")
        events_title.setObjectName("sideTitle")

        # Verify mode: an employee id typed, or typed by a badge reader, then the face must match.
        self.claim_box = QLineEdit()
        self.claim_box.setPlaceholderText("Employee id or badge, then Enter")
        self.claim_box.returnPressed.connect(lambda: self.submit_claim(self.claim_box.text()))
        self.claim_box.setVisible(self.settings.mode == "verify")

        side = QVBoxLayout()
        side.addWidget(self.claim_box)
        side.addWidget(events_title)
        side.addWidget(self.events, 1)
        side_w = QWidget()
        side_w.setLayout(side)
        side_w.setFixedWidth(320)

        top = QHBoxLayout()
        top.addWidget(self.video, 1)
        top.addWidget(side_w)
        main = QVBoxLayout()
        main.setContentsMargins(12, 12, 12, 6)
        main.addLayout(top, 1)
        main.addWidget(self.banner)
        live = QWidget()
        live.setLayout(main)

        self.no_camera = NoCameraPage()
        self.no_camera.chosen.connect(self.use_camera)
        self.pages = QStackedWidget()
        self.pages.addWidget(live)
        self.pages.addWidget(self.no_camera)
        self.setCentralWidget(self.pages)

        sb = self.statusBar()
        self.camera_label = QLabel("Camera: starting")
        self.provider_label = QLabel(f"Runs on: {getattr(self.pipeline, 'provider', '?')}")
        self.fps_label = QLabel("Camera: – fps")
        self.infer_label = QLabel("Inference: – ms")
        for w in (self.camera_label, self.provider_label, self.fps_label, self.infer_label):
            w.setContentsMargins(8, 0, 8, 0)
            sb.addPermanentWidget(w)

    def _build_actions(self) -> None:
        menu = self.menuBar().addMenu("&FaceGuard")
        self.actions_by_name: dict[str, QAction] = {}
        for name, text, keys, slot in (
            ("enrol", "&Enrol a person…", "Ctrl+E", self.open_enrol),
            ("gallery", "&Gallery…", "Ctrl+G", self.open_gallery),
            ("settings", "&Settings…", "Ctrl+,", self.open_settings),
            ("kiosk", "&Full screen (kiosk)", "F11", lambda: self.set_kiosk(True)),
            ("quit", "&Quit", "Ctrl+Q", self.close),
        ):
            act = QAction(text, self)
            act.setShortcut(QKeySequence(keys))
            act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            act.triggered.connect(slot)
            menu.addAction(act)
            self.addAction(act)   # shortcuts work with the menu bar hidden (kiosk)
            self.actions_by_name[name] = act

    # -- camera and worker ----------------------------------------------------------------
    def _default_source(self):
        from faceguard.camera import FrameSource
        return FrameSource(self.settings.camera, loop=self.settings.loop_video, realtime=True).open()

    def _default_check(self):
        from faceguard.doorcheck import DoorCheck
        return DoorCheck(self.pipeline, self.gallery, self.settings)

    def start(self) -> None:
        """(Re)start the camera and the door check."""
        self.stop()
        try:
            self.check = self._make_check()
        except FaceGuardError as exc:
            self._show_problem(str(exc))
            return
        self.pages.setCurrentIndex(0)
        self.banner.show_idle()
        self.video.set_frame(None)
        self.video.set_placeholder("Starting the camera…")
        self.camera_label.setText("Camera: starting")
        self._camera_state = "starting"
        self._reload.clear()
        self.worker = VideoWorker(self._open_source, self._processor(self.check), self)
        self.worker.result_ready.connect(self._on_result)
        self.worker.camera_status.connect(self._on_camera_status)
        self.worker.failed.connect(self._on_failed)
        self.worker.start()

    def _processor(self, check) -> Callable[[object], object]:
        """The worker's per-frame call. A gallery reload asked for by the UI runs here, in the
        worker thread, between two frames, so the matcher never changes under a frame."""
        reload = getattr(check, "reload_gallery", None)

        def process(frame):
            if reload is not None and self._reload.is_set():
                self._reload.clear()
                reload()
            while not self._claims.empty():
                check.claim(self._claims.get(), frame.t)  # the id was checked in the UI thread
            return check.process(frame)
        return process

    def submit_claim(self, employee_id: str) -> bool:
        """Verify mode: check the next face against this employee only (False: unknown id)."""
        employee_id = employee_id.strip()
        self.claim_box.clear()
        if not employee_id or self.worker is None or not hasattr(self.check, "claim"):
            return False
        person = self.gallery.person(employee_id) if self.gallery is not None else None
        if person is None or not person.active:
            self.banner.show_denied(f"No active employee with id '{employee_id}'.", None)
            self.banner_timer.start()
            return False
        self._claims.put(employee_id)
        self.banner.show_problem(f"{person.name}: look at the camera",
                                 "Your face is checked against your enrolled photo.")
        return True

    stop_wait_ms = 3000   # how long stop() waits for the worker before letting it end alone

    def stop(self) -> None:
        if self.worker is not None:
            worker, self.worker = self.worker, None
            # Nothing a stopping worker still says may reach the screen (a late "live" would
            # replace the paused notice).
            worker.result_ready.disconnect(self._on_result)
            worker.camera_status.disconnect(self._on_camera_status)
            worker.failed.disconnect(self._on_failed)
            if worker.stop(self.stop_wait_ms):
                worker.deleteLater()

    def use_camera(self, source: str) -> None:
        """A source chosen on the no-camera page ('' = try the current one again)."""
        if source:
            self.settings.camera = source
            self.settings.loop_video = Path(source).is_file()
            if self._save:
                try:
                    save_settings(self.settings)
                except FaceGuardError as exc:
                    self.statusBar().showMessage(str(exc), 8000)
            self._open_source.opener = self._default_source
        self.start()

    def _on_camera_status(self, status: str) -> None:
        self._camera_state = status
        src = self.settings.camera
        if status == "live":
            self.camera_label.setText(f"Camera: live ({src})")
            if self.banner.state == "problem":
                self.banner.show_idle()
        elif status == "reconnecting":
            self.camera_label.setText("Camera: disconnected, retrying")
            self.video.set_frame(None)
            self.video.set_placeholder(CAMERA_LOST_TEXT)
            self.banner.show_problem(CAMERA_LOST_TEXT,
                                     "Check the camera's cable or network. FaceGuard reconnects by itself.")
        elif status == "ended":
            self.camera_label.setText("Camera: the video has ended")
            self.video.set_placeholder("The video has ended.")
        elif status == "failed":
            self.camera_label.setText("Camera: not available")

    def _on_failed(self, message: str) -> None:
        if self.worker is not None and self.worker.frames == 0 and self.camera_label.text().endswith("not available"):
            self._show_problem(message)
        else:
            self.statusBar().showMessage(message, 10000)

    def _show_problem(self, message: str) -> None:
        self.no_camera.set_reason(message)
        self.pages.setCurrentIndex(1)

    @property
    def camera_text(self) -> str:
        return self.camera_label.text()

    # -- painting a report ----------------------------------------------------------------
    def _on_result(self) -> None:
        r = self.worker.take() if self.worker is not None else None
        if r is None:
            return
        if self._camera_state == "reconnecting":
            return   # a frame grabbed just before the cable was pulled: keep the notice up
        report = r.result
        self.last_frame_index = int(getattr(r.frame, "index", -1))
        faces = list(getattr(report, "faces", []) or [])
        self.video.set_frame(r.image, [face_overlay(f) for f in faces])
        infer = getattr(report, "infer_ms", None) or r.infer_ms
        self.fps_label.setText(f"Camera: {r.camera_fps:.0f} fps · checked: {self.worker.camera_meter.rate:.1f} fps")
        self.infer_label.setText(f"Inference: {infer:.0f} ms")
        self._prompt_turn_head(faces)
        for decision in getattr(report, "decisions", []) or []:
            self.show_decision(decision, r.frame.rgb)

    def _prompt_turn_head(self, faces: list) -> None:
        """Photo check: a recognised face that has not yet moved like a head is asked to."""
        waiting = [f for f in faces if getattr(f, "state", "") == "turn_head"]
        if self.banner_timer.isActive():
            return   # a decision is on show
        if waiting:
            who = waiting[0].name or "You"
            self.banner.show_problem(TURN_HEAD_TEXT, f"{who}: recognised. Turn your head slowly left and "
                                     "right so the camera sees a real face, not a photo.")
        elif self.banner.title.text() == TURN_HEAD_TEXT:
            self.banner.show_idle()

    def _photo_of(self, decision, rgb: np.ndarray | None) -> QImage | None:
        person_id = getattr(decision, "person_id", None)
        if person_id is not None and self.gallery is not None and hasattr(self.gallery, "photo"):
            try:
                img = any_to_qimage(self.gallery.photo(person_id))
                if img is not None:
                    return img
            except FaceGuardError as exc:
                log.info("no gallery photo for %s: %s", person_id, exc)
        box = getattr(decision, "box", None)
        if rgb is not None and box is not None:
            return rgb_to_qimage(crop(rgb, box))
        return None

    def show_decision(self, decision, rgb: np.ndarray | None = None) -> None:
        kind = kind_of(decision)
        name = name_of(decision) or "unknown person"
        dist = getattr(decision, "distance", math.inf)
        why = explanation_of(decision)
        snapshot = None
        box = getattr(decision, "box", None)
        if rgb is not None and box is not None:
            snapshot = rgb_to_qimage(crop(rgb, box))
        if kind == "GRANTED":
            self.banner.show_granted(name, f"Welcome! {why}", self._photo_of(decision, rgb))
            self.sounds.play("granted")
        else:
            self.banner.show_denied(why, snapshot)
            self.sounds.play("denied")
        self.banner_timer.start()
        self.decisions.append(decision)
        log.info("%s %s: %s", kind, name, why)
        self._add_event_row(kind, name if kind == "GRANTED" else (name_of(decision) or "stranger"),
                            dist, why, snapshot)

    def _add_event_row(self, kind: str, who: str, dist: float, why: str, snapshot: QImage | None) -> None:
        when = time.strftime("%H:%M:%S")
        dist_text = f"  ·  {dist:.2f}" if math.isfinite(dist) else ""
        item = QListWidgetItem(f"{kind}  {who}\n{when}{dist_text}\n{why}")
        item.setToolTip(why)
        item.setData(Qt.ItemDataRole.UserRole, kind)
        item.setForeground(GREEN if kind == "GRANTED" else RED)
        if snapshot is not None:
            item.setIcon(QIcon(QPixmap.fromImage(snapshot).scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)))
        self.events.insertItem(0, item)
        while self.events.count() > MAX_EVENT_ROWS:
            self.events.takeItem(self.events.count() - 1)

    def event_rows(self) -> list[str]:
        return [self.events.item(i).text() for i in range(self.events.count())]

    # -- kiosk mode and admin -------------------------------------------------------------
    def set_kiosk(self, on: bool) -> None:
        self.kiosk = on
        self.menuBar().setVisible(not on)
        if on:
            self.showFullScreen()
        else:
            self.showNormal()

    def ask_pin(self) -> str | None:
        """Asks for the admin PIN (tests replace this)."""
        pin, ok = QInputDialog.getText(self, "Admin PIN", "Enter the admin PIN to leave kiosk mode:",
                                       QLineEdit.EchoMode.Password)
        return pin if ok else None

    def admin_ok(self) -> bool:
        """True when not in kiosk mode, or when the right admin PIN is given."""
        if not self.kiosk or not self.settings.admin_pin_hash:
            return True
        pin = self.ask_pin()
        if pin is None:
            return False
        if verify_pin(pin, self.settings.admin_pin_hash):
            return True
        QMessageBox.warning(self, "FaceGuard", "Wrong PIN.")
        return False

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.key() == Qt.Key.Key_Escape and self.kiosk:
            if self.admin_ok():
                self.set_kiosk(False)
            return
        super().keyPressEvent(event)

    # -- dialogs --------------------------------------------------------------------------
    def _need_gallery(self) -> bool:
        if self.gallery is None:
            QMessageBox.warning(self, "FaceGuard", "The gallery is not open, so people cannot be "
                                "enrolled or listed. See the log for why.")
            return False
        return True

    def open_enrol(self) -> None:
        if not self.admin_ok() or not self._need_gallery():
            return
        from faceguard.ui.enroll_dialog import EnrollDialog
        # One camera, one reader: most webcams cannot be opened twice, so the door check lets
        # go of it while the dialog's live preview uses the same source; it restarts after.
        # Both open it through self._open_source (a OneReader): the preview gets the camera only
        # once the door's worker has closed it, however long its last frame takes.
        live = self.worker is not None
        self.stop()
        if live:
            self.banner.show_problem(PAUSED_TEXT, "The door check starts again when enrolment is closed.")
            self.video.set_frame(None)
            self.video.set_placeholder(PAUSED_TEXT)
            self.camera_label.setText("Camera: paused (enrolling)")
        dialog = EnrollDialog(self.pipeline, self.gallery, self.settings, parent=self,
                              open_source=self._open_source, live=live)
        try:
            dialog.exec()
        finally:
            dialog.deleteLater()   # a child of this window: else kept as long as the window
            if live:
                self.start()   # builds the check from the gallery as it is now
            else:
                self._gallery_changed()

    def open_gallery(self) -> None:
        if not self.admin_ok() or not self._need_gallery():
            return
        from faceguard.ui.gallery_dialog import GalleryDialog
        GalleryDialog(self.gallery, self.pipeline, self.settings, parent=self).exec()
        self._gallery_changed()

    def open_settings(self) -> None:
        if not self.admin_ok():
            return
        from faceguard.ui.settings_dialog import SettingsDialog
        dlg = SettingsDialog(self.settings, parent=self, save=self._save, **self.calibrated_threshold())
        if dlg.exec():
            self.settings = dlg.settings
            self.claim_box.setVisible(self.settings.mode == "verify")
            self.start()

    def calibrated_threshold(self) -> dict:
        """What the model calibrated for the current gallery, as SettingsDialog arguments:
        gallery_size, default_threshold (distance) and, when a gallery this large is scored by
        the runner-up margin rule, margin_threshold. Empty when there is no pipeline."""
        if self.pipeline is None or not hasattr(self.pipeline, "threshold_for"):
            return {}
        try:
            # Active people: the ones the door check matches against (and sizes its threshold by).
            size = len(self.gallery.people()) if self.gallery is not None else 0
            found = {"gallery_size": size, "default_threshold": float(self.pipeline.threshold_for(size, None))}
            if hasattr(self.pipeline, "scoring_for"):
                rule, threshold = self.pipeline.scoring_for(size, None)
                if rule == "margin":
                    found["margin_threshold"] = float(threshold)
            return found
        except FaceGuardError as exc:
            log.info("no calibrated threshold: %s", exc)
            return {}

    def _gallery_changed(self) -> None:
        """The check caches the gallery's embeddings (and the threshold follows the gallery's
        size): the worker reloads them before its next frame so new people count."""
        if self.worker is None:
            return   # the next start() builds the check from the gallery as it is then
        if hasattr(self.check, "reload_gallery"):
            self._reload.set()
        else:
            self.start()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.stop()
        self.no_camera.stop()
        super().closeEvent(event)
