"""The door-check window: live video, the decision banner, recent events, status bar.

The window decides nothing and runs nothing: its DoorController (door_controller.py) runs the
door check in a worker thread and emits the typed records; presentation.py turns them into
texts and colours and says which banner is on show; this window lays them out and paints.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from faceguard import paths
from faceguard.access.records import GRANTED, PIN, Decision
from faceguard.doorcheck import face_crop
from faceguard.errors import FaceGuardError
from faceguard.settings import Settings, save_settings
from faceguard.ui.checklist import FirstRunChecklist, progress_of
from faceguard.ui.door_admin import AdminActions
from faceguard.ui.door_controller import Check, DoorController, LiveFrame
from faceguard.ui.door_status import StatusLine
from faceguard.ui.door_widgets import DecisionBanner, NoCameraPage
from faceguard.ui.keypad import Keypad
from faceguard.ui.kiosk import KioskMode
from faceguard.ui.outputs_status import outputs_line
from faceguard.ui.pin import PinGuard
from faceguard.ui.presentation import (
    BANNER_HOLD_S,
    CAMERA_LOST_TEXT,
    BannerRule,
    BannerView,
    claim_banner,
    door_reason,
    event_row,
    explanation_of,
    face_overlay,
    row_color,
    unknown_id_banner,
    who_of,
)
from faceguard.ui.sounds import SoundPlayer
from faceguard.ui.video import VideoView, rgb_to_qimage

log = logging.getLogger(__name__)

MAX_EVENT_ROWS = 50
NO_GALLERY_TEXT = "Door check off: the gallery cannot be opened"
MAX_DECISIONS_KEPT = 1000
CHECKLIST_REFRESH_MS = 5000   # enrolments from a terminal or another door show within this
THUMB = 64


class DoorWindow(KioskMode, AdminActions, QMainWindow):
    """The main window. `make_check()` builds the door check and `open_source()` opens the
    FrameSource (both go to the DoorController; injectable so tests can drive them)."""

    def __init__(self, settings: Settings, pipeline=None, gallery=None, *,
                 make_check: Callable[[], Check] | None = None,
                 open_source: Callable[[], object] | None = None,
                 sounds: SoundPlayer | None = None, save: bool = True, gallery_problem: str = ""):
        """``gallery_problem``: why the gallery could not be opened (gallery None); the window
        then says the door check is off and why, and stays usable."""
        super().__init__()
        self.gallery_problem = gallery_problem
        self.controller = DoorController(settings, pipeline, gallery, make_check=make_check,
                                         open_source=open_source, parent=self)
        self._save = save
        self.sounds = sounds or SoundPlayer()
        self.kiosk = False
        self.pin_guard = PinGuard()
        self.admin_message = ""    # why the last admin PIN was refused (also in the status bar)
        self.enrol_confirmation = ""   # the last enrolment's confirmation (door_admin)
        self._quit_ok = False      # the PIN was given for this quit: closeEvent asks no more
        self.rule = BannerRule()
        # The latest decisions shown, oldest first (tests, audit); bounded: the door runs for months.
        self.decisions: deque[Decision] = deque(maxlen=MAX_DECISIONS_KEPT)
        self.last_frame_index = -1          # the newest frame painted (its number in the source)

        self.setWindowTitle("FaceGuard · Door check")
        icon = paths.assets_dir() / "icon.png"
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self._build()
        self._build_actions()
        self.banner_timer = QTimer(self, singleShot=True, interval=int(BANNER_HOLD_S * 1000))
        self.banner_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.banner_timer.timeout.connect(lambda: self._paint(self.rule.expire(time.monotonic())))
        c = self.controller
        c.checked.connect(self._on_checked)
        c.decided.connect(self.show_decision)
        c.camera_status.connect(self._on_camera_status)
        c.failed.connect(self._on_failed)
        c.enrolled.connect(self._on_enrolled)    # a method, not a lambda: queued from the worker
        c.notice.connect(lambda text: self.statusBar().showMessage(text, 30000))
        # The gallery changes under the window too (`faceguard enroll` in a terminal, the site):
        # the checklist's count follows it.
        self.checklist_timer = QTimer(self, interval=CHECKLIST_REFRESH_MS)
        self.checklist_timer.timeout.connect(lambda: self.checklist.isVisible() and self.refresh_checklist())
        self.checklist_timer.start()
        self.resize(1180, 720)

    # The controller holds what the door check runs with; the window reads it from there.
    @property
    def settings(self) -> Settings:
        return self.controller.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self.controller.settings = value

    @property
    def pipeline(self):
        return self.controller.pipeline

    @property
    def gallery(self):
        return self.controller.gallery

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.video = VideoView(placeholder="Starting the camera…")
        self.banner = DecisionBanner()
        self.events = QListWidget()
        self.events.setObjectName("events")
        self.events.setIconSize(QSize(THUMB, THUMB))
        self.events.setWordWrap(True)          # the row's explanation is longer than the panel
        self.events.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.events_title = events_title = QLabel("Recent events")
        events_title.setObjectName("sideTitle")

        # Verify mode: an employee id typed, or typed by a badge reader, then the face must match.
        self.claim_box = QLineEdit()
        self.claim_box.setPlaceholderText("Employee id or badge, then Enter")
        self.claim_box.returnPressed.connect(lambda: self.submit_claim(self.claim_box.text()))
        self.claim_box.setVisible(self.settings.mode == "verify")

        self.checklist = FirstRunChecklist()
        self.checklist.enrol_wanted.connect(self.open_enrol)
        self.checklist.settings_wanted.connect(self.open_settings)
        side = QVBoxLayout()
        side.addWidget(self.checklist)
        side.addWidget(self.claim_box)
        # Issue 21: a face that needs a PIN gets the keypad (it names no one).
        self.keypad = Keypad()
        self.keypad.entered.connect(self.controller.answer_pin)
        side.addWidget(self.keypad)
        side.addWidget(events_title)
        side.addWidget(self.events, 1)
        self.side_panel = side_w = QWidget()
        side_w.setLayout(side)
        side_w.setFixedWidth(320)

        top = QHBoxLayout()
        top.addWidget(self.video, 1)
        top.addWidget(side_w)
        main = QVBoxLayout()
        main.setContentsMargins(12, 12, 12, 6)
        main.addLayout(top, 1)
        main.addWidget(self.banner)
        self.status_line = StatusLine()   # the site's state and the frame rate, never cut off
        main.addWidget(self.status_line)
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
        provider = self.pipeline.provider if self.pipeline is not None else "?"
        self.provider_label = QLabel(f"Runs on: {provider}")
        self.fps_label = QLabel("Camera: – fps")
        self.infer_label = QLabel("Inference: – ms")
        self.site_label = QLabel(self.controller.site_status())
        self.site_label.setVisible(self.controller.site is not None)
        self.outputs_label = QLabel("")   # face unlock off; MQTT, OSDP panel's LED/buzzer
        self.outputs_label.setVisible(False)
        sb.addPermanentWidget(self.outputs_label)
        for w in (self.camera_label, self.provider_label, self.fps_label, self.infer_label, self.site_label):
            w.setContentsMargins(8, 0, 8, 0)
            sb.addPermanentWidget(w)
        if self.controller.site is not None:        # reachable, syncing, events waiting
            self._site_timer = QTimer(self, interval=1000)
            self._site_timer.timeout.connect(self.show_status_line)
            self._site_timer.start()
        self.show_status_line()

    def show_status_line(self) -> None:
        status = self.controller.site_status()
        self.site_label.setText(status)
        self.status_line.show_site(status)

    def _build_actions(self) -> None:
        menu = self.menuBar().addMenu("&FaceGuard")
        self.actions_by_name: dict[str, QAction] = {}
        for name, text, keys, slot in (
            ("enrol", "&Enrol a person…", "Ctrl+E", self.open_enrol),
            ("gallery", "&Gallery…", "Ctrl+G", self.open_gallery),
            ("settings", "&Settings…", "Ctrl+,", self.open_settings),
            ("log", "Access &log…", "Ctrl+L", self.open_log),
            ("today", "&Today…", "Ctrl+T", self.open_today),
            ("kiosk", "&Full screen (kiosk)", "F11", lambda: self.set_kiosk(True)),
            ("quit", "&Quit", "Ctrl+Q", self.request_quit),
        ):
            act = QAction(text, self)
            act.setShortcut(QKeySequence(keys))
            act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            act.triggered.connect(slot)
            menu.addAction(act)
            self.addAction(act)   # shortcuts work with the menu bar hidden (kiosk)
            self.actions_by_name[name] = act

    # -- starting and stopping ------------------------------------------------------------
    def refresh_checklist(self) -> None:
        """The first-run checklist shows what is still to do (hidden once all is done)."""
        self.checklist.show_progress(progress_of(self.settings, self.gallery))
        if self.kiosk:                       # admin things only behind the PIN
            self.checklist.hide()

    def start(self) -> None:
        """(Re)start the camera and the door check."""
        self.refresh_checklist()
        self.banner_timer.stop()
        if self.gallery is None and self.gallery_problem:
            self._show_no_gallery()
            return
        try:
            self.controller.start()
        except FaceGuardError as exc:
            if self.gallery is None:
                self.gallery_problem = str(exc)
                self._show_no_gallery()
            else:
                self._show_problem(str(exc))
            return
        self.pages.setCurrentIndex(0)
        self._paint(self.rule.idle())
        self.video.set_frame(None)
        self.video.set_placeholder("Starting the camera…")
        self.camera_label.setText("Camera: starting")

    def stop(self, wait_ms: int | None = None) -> None:
        """Stop the door check; it logs a decision whose door output is still running."""
        self.controller.stop(wait_ms)

    def submit_claim(self, employee_id: str) -> bool:
        """Verify mode: check the next face against this employee only (False: unknown id)."""
        employee_id = employee_id.strip()
        self.claim_box.clear()
        if not employee_id or not self.controller.running:
            return False
        person = self.controller.claim(employee_id)
        if person is None:
            self._paint(self.rule.force(unknown_id_banner(employee_id), time.monotonic()))
            self.banner_timer.start()
            return False
        self._paint(self.rule.force(claim_banner(person.employee_id)))
        return True

    def use_camera(self, source: str) -> None:
        """A source chosen on the no-camera page ('' = try the current one again)."""
        if source:
            self.controller.use_camera(source)
            if self._save:
                try:
                    save_settings(self.settings)
                except FaceGuardError as exc:
                    self.statusBar().showMessage(str(exc), 8000)
        self.start()

    def _on_camera_status(self, status: str) -> None:
        src = self.settings.camera
        if status == "live":
            self.camera_label.setText(f"Camera: live ({src})")
            if self.rule.shown.role == "camera":
                self._paint(self.rule.idle())
        elif status == "reconnecting":
            self.camera_label.setText("Camera: disconnected, retrying")
            self.video.set_frame(None)
            self.video.set_placeholder(CAMERA_LOST_TEXT)
            self._paint(self.rule.force(BannerView(
                "problem", CAMERA_LOST_TEXT,
                "Check the camera's cable or network. FaceGuard reconnects by itself.", "camera")))
        elif status == "ended":
            self.camera_label.setText("Camera: the video has ended")
            self.video.set_placeholder("The video has ended.")
        elif status == "failed":
            self.camera_label.setText("Camera: not available")

    def _on_failed(self, message: str) -> None:
        if self.controller.frames == 0 and self.camera_label.text().endswith("not available"):
            self._show_problem(message)
        else:
            self.statusBar().showMessage(message, 10000)

    def _show_no_gallery(self) -> None:
        """No gallery (e.g. its key file is missing): nobody can be recognised, so the door
        check does not run; the window says why and what to do, and its menus still work."""
        import textwrap
        self.pages.setCurrentIndex(0)
        self.video.set_frame(None)
        # The reason is long (it names the files): the video area has the room for it.
        why = textwrap.fill(self.gallery_problem, 72, break_on_hyphens=False, break_long_words=False)
        self.video.set_placeholder(f"The door check is off.\n\n{why}\n\nThen restart FaceGuard.")
        self.camera_label.setText("Camera: off (no gallery)")
        self._paint(self.rule.force(BannerView(
            "problem", NO_GALLERY_TEXT, "Do what the message above says, then restart FaceGuard. "
            "Settings and the menus still work.", "problem")))

    def _show_problem(self, message: str) -> None:
        self.no_camera.set_reason(message)
        self.pages.setCurrentIndex(1)

    def _on_enrolled(self, count: int) -> None:
        self._paint(self.rule.set_enrolled(count))
        self.refresh_checklist()

    @property
    def camera_text(self) -> str:
        return self.camera_label.text()

    # -- painting a report ----------------------------------------------------------------
    def _paint(self, view: BannerView | None, photo: QImage | None = None) -> None:
        if view is not None:
            self.banner.present(view, photo)
            if view.sound == "prompt":        # a new instruction: a cue for who is not looking
                self.sounds.play(view.sound)

    def _on_checked(self, live: LiveFrame) -> None:
        report = live.report
        self.last_frame_index = report.frame.index
        self.video.set_frame(live.image, [face_overlay(f, numbers=not self.kiosk) for f in report.faces])
        self.fps_label.setText(f"Camera: {live.camera_fps:.0f} fps · checked: {live.checked_fps:.1f} fps")
        self.status_line.show_rate(live.checked_fps, live.camera_fps)
        self.infer_label.setText(f"Inference: {report.infer_ms:.0f} ms")
        line = outputs_line(self.controller.check)
        if line != self.outputs_label.text():
            self.outputs_label.setText(line)
            self.outputs_label.setVisible(bool(line))
        self._paint(self.rule.faces(report.faces, time.monotonic()))
        self.banner.tick(report.frame.t)
        for decision, result in report.door_results:
            if not result.ok:
                self.statusBar().showMessage(f"The door output failed for {who_of(decision)}: "
                                             f"{result.message}", 10000)

    def _photo_of(self, decision: Decision) -> QImage | None:
        """The enrolled photo of the person let in (None: a stranger, or no photo)."""
        if decision.person_id is None or self.gallery is None:
            return None
        try:
            return rgb_to_qimage(self.gallery.photo(decision.person_id))
        except FaceGuardError as exc:
            log.info("no gallery photo for %s: %s", decision.person_id, exc)
            return None

    def show_decision(self, decision: Decision, rgb: np.ndarray | None = None) -> None:
        """A decision of the door check: the banner when it takes the screen (presentation's
        BannerRule), its sound then, and always a row in the recent events."""
        if decision.kind == PIN:           # not final: the keypad asks, nothing is named or listed
            self.keypad.ask(decision.track_id)
            self.side_panel.setVisible(True)   # in kiosk mode too: the keypad lives there
            return
        if decision.factor is not None and self.keypad.track_id == decision.track_id:
            self.keypad.close_request()     # (e.g. nothing typed in time)
            self.side_panel.setVisible(not self.kiosk or self.settings.mode == "verify")
        snapshot = rgb_to_qimage(face_crop(rgb, decision.box)) if rgb is not None else None
        view = self.rule.decision(decision, time.monotonic())
        if view is not None:
            # A refused face is not shown: it may be a print of someone enrolled, or a bystander.
            photo = (self._photo_of(decision) or snapshot) if decision.kind == GRANTED else None
            self.banner.present(view, photo)
            self.sounds.play(view.sound)
            self.banner_timer.start()
        self.decisions.append(decision)
        log.info("%s %s: %s", decision.kind, who_of(decision), explanation_of(decision))
        self._add_event_row(decision, snapshot)

    def _add_event_row(self, decision: Decision, snapshot: QImage | None) -> None:
        item = QListWidgetItem(event_row(decision, time.strftime("%H:%M:%S")))
        item.setToolTip(door_reason(decision))
        item.setData(Qt.ItemDataRole.UserRole, str(decision.kind))
        item.setForeground(row_color(decision))
        if snapshot is not None:
            item.setIcon(QIcon(QPixmap.fromImage(snapshot).scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)))
        self.events.insertItem(0, item)
        while self.events.count() > MAX_EVENT_ROWS:
            self.events.takeItem(self.events.count() - 1)

    def event_rows(self) -> list[str]:
        return [self.events.item(i).text() for i in range(self.events.count())]

    # -- kiosk mode and admin -------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        # In kiosk mode the window has no frame, but Alt+F4 or the session can still close it.
        if self.kiosk and not self._quit_ok and not self.admin_ok("quit FaceGuard"):
            event.ignore()
            return
        self.stop(self.controller.close_wait_ms())   # quitting waits for a door still opening
        self.controller.close_site()
        self.no_camera.stop()
        super().closeEvent(event)
