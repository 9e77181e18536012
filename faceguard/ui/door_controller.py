"""The door check behind the door window: no widgets, only what runs and what it reports.

`DoorController` owns the worker thread (`VideoWorker`), the door check it runs (`DoorCheck`
from faceguard/doorcheck.py, the same no-Qt flow as `faceguard door --headless`), the camera
gate (`OneReader`: one reader of the door's camera at a time), the employee ids typed in verify
mode and the gallery reloads. The window calls `start`, `stop`, `claim`, `gallery_changed` and
paints what the signals carry:

* `checked(LiveFrame)`: a processed frame (its picture and the `FrameReport` of its faces);
* `decided(Decision, rgb)`: each decision of that frame, with the frame for the snapshot;
* `camera_status(str)`: live | reconnecting | ended | failed; `failed(str)`: a message to show;
* `enrolled(int)`: the number of active people the check matches against (0: nobody yet, the
  check decides nothing).

Threads: the door check runs its frames in the worker thread; a gallery reload or a claim asked
for in the UI thread is served there between two frames. When the worker stops (settings
changed, enrolment, quit) it closes the door check in that same thread, after giving the camera
back: a GRANTED whose door output is still running is logged, and no door thread is left.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from faceguard.camera import Frame
from faceguard.doorcheck import FrameReport
from faceguard.errors import FaceGuardError, GalleryError
from faceguard.gallery.person import Person
from faceguard.settings import Settings
from faceguard.ui.video import OneReader, VideoWorker

log = logging.getLogger(__name__)

DOOR_CLOSE_MAX_S = 30.0   # the longest a stopping door check waits for its door output


class Check(Protocol):
    """What the controller needs of a door check (`DoorCheck`, or a test's stand-in)."""

    @property
    def gallery_empty(self) -> bool: ...      # nobody to match: the check decides nothing
    damaged: dict[str, str]                  # people left out: their face data is unreadable
    def process(self, frame: Frame) -> FrameReport: ...
    def claim(self, employee_id: str, t: float) -> object: ...
    def answer_pin(self, track_id: int, typed: str | None, t: float) -> object: ...
    def reload_gallery(self) -> None: ...
    def close(self, timeout: float = ...) -> object: ...


@dataclass(frozen=True)
class LiveFrame:
    image: QImage            # the frame, converted in the worker thread
    report: FrameReport
    camera_fps: float        # what the camera delivers
    checked_fps: float       # frames the door check got through, per second


class DoorController(QObject):
    checked = Signal(object)
    decided = Signal(object, object)
    camera_status = Signal(str)
    failed = Signal(str)
    notice = Signal(str)          # a problem to show in the status bar; the door keeps running
    enrolled = Signal(int)

    stop_wait_ms = 3000   # how long stop() waits for the worker before letting it end alone
    expiry_check_ms = 60_000   # how often a valid-until date passing while it runs is looked for

    def __init__(self, settings: Settings, pipeline, gallery, *,
                 make_check: Callable[[], Check] | None = None,
                 open_source: Callable[[], object] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.pipeline = pipeline
        self.gallery = gallery
        self._make_check = make_check or self._default_check
        # One gate for every reader of the door's camera (the door, the enrolment preview).
        self.camera = OneReader(open_source or self._default_source)
        self.worker: VideoWorker | None = None
        self.check: Check | None = None
        self.camera_state = "stopped"
        self._reload = threading.Event()        # set by the UI thread, served by the worker
        self._claims: queue.SimpleQueue = queue.SimpleQueue()   # verify mode: checked ids
        self._pins: queue.SimpleQueue = queue.SimpleQueue()     # keypad: (track id, typed)
        # Every decision goes to the window, also those of frames it had no time to paint (the
        # worker hands over only the newest frame): on a busy PC a DENIED must not vanish.
        self._decided: queue.SimpleQueue = queue.SimpleQueue()
        # The check caches who is active; a person's valid-until date can pass while the door
        # runs for weeks, so the controller looks for one now and then and reloads.
        self._built_at = time.time()
        self._expiry_timer = QTimer(self, interval=self.expiry_check_ms)
        self._expiry_timer.timeout.connect(self.check_expiry)
        self._expiry_timer.start()
        # A door that joined a site keeps its replica in step for the window's whole life; the
        # check reloads by itself when the replica changes (its per-frame data_version look).
        self.site = None
        if gallery is not None:
            from faceguard.site.watch import start_for
            self.site = start_for(gallery)

    def site_status(self) -> str:
        """The status bar's site words ("" for a door on its own)."""
        return self.site.status_line() if self.site is not None else ""

    def close_site(self) -> None:
        """Quitting: stop the watcher, which sends what the door logged since its last sync."""
        if self.site is not None:
            self.site.stop()
            self.site = None

    # -- what it runs ----------------------------------------------------------------------
    def _default_source(self):
        from faceguard.camera import FrameSource
        return FrameSource(self.settings.camera, loop=self.settings.loop_video, realtime=True).open()

    def _default_check(self) -> Check:
        from faceguard.doorcheck import DoorCheck
        if self.gallery is None:
            raise GalleryError("The gallery is not open, so nobody can be recognised; see the "
                               "log file for why.")
        return DoorCheck(self.pipeline, self.gallery, self.settings)

    def use_camera(self, source: str) -> None:
        """The office picked another camera (a device index, a URL or a video file)."""
        self.settings.camera = source
        self.settings.loop_video = Path(source).is_file()
        self.camera.opener = self._default_source

    @property
    def running(self) -> bool:
        return self.worker is not None

    @property
    def frames(self) -> int:
        """Frames the current worker has checked (0 when stopped)."""
        return self.worker.frames if self.worker is not None else 0

    def enrolled_count(self, check: Check | None = None) -> int | None:
        """Active people in the gallery, the ones the door check matches against; 0 whenever
        the check has nobody to match (None: not known, e.g. no gallery)."""
        if check is not None and check.gallery_empty:
            return 0
        return None if self.gallery is None else len(self.gallery.people())

    # -- start and stop --------------------------------------------------------------------
    def start(self) -> None:
        """(Re)start the camera and a new door check; FaceGuardError when the check cannot
        be built (e.g. a door output set up wrongly)."""
        self.stop()
        self._built_at = time.time()
        check = self._make_check()
        self.check = check
        self._reload.clear()
        while not self._claims.empty():
            self._claims.get()
        while not self._pins.empty():     # a new check has no face waiting for them
            self._pins.get()
        self.camera_state = "starting"
        self.worker = VideoWorker(self.camera, lambda frame: self._process(check, frame), self,
                                  finish=lambda: self._close(check))
        self.worker.result_ready.connect(self._on_result)
        self.worker.camera_status.connect(self._on_camera_status)
        self.worker.failed.connect(self.failed)
        self.worker.start()
        count = self.enrolled_count(check)
        if count is not None:
            self.enrolled.emit(count)
        if check.damaged:
            self.notice.emit("Left out of the door check, their face data is damaged (replace "
                             f"their photo): {', '.join(sorted(check.damaged))}")

    def stop(self, wait_ms: int | None = None) -> None:
        """Stop the worker: it finishes its frame, gives the camera back and closes the door
        check (waiting for a door output still running). Waits up to `wait_ms` (default
        `stop_wait_ms`); a worker still busy then ends on its own, and still logs."""
        if self.worker is None:
            return
        worker, self.worker, self.check = self.worker, None, None
        # Nothing a stopping worker still says may reach the screen (a late "live" would
        # replace the paused notice).
        worker.result_ready.disconnect(self._on_result)
        worker.camera_status.disconnect(self._on_camera_status)
        worker.failed.disconnect(self.failed)
        self.camera_state = "stopped"
        if worker.stop(self.stop_wait_ms if wait_ms is None else wait_ms):
            worker.deleteLater()

    def door_close_s(self) -> float:
        """How long a stopping check waits for its door output: the output's own time-outs."""
        d = self.settings.door
        return min(DOOR_CLOSE_MAX_S, d.timeout_s * (d.retries + 1) + d.open_seconds)

    def close_wait_ms(self) -> int:
        """How long quitting waits for the worker: a frame, plus the door output."""
        return self.stop_wait_ms + int(self.door_close_s() * 1000)

    def _close(self, check: Check) -> None:
        """In the worker thread, after its last frame and after the camera is given back."""
        check.close(self.door_close_s())

    # -- the worker thread -----------------------------------------------------------------
    def _process(self, check: Check, frame: Frame) -> FrameReport:
        """The worker's per-frame call. A reload asked for by the UI runs here, between two
        frames, so the matcher never changes under a frame."""
        if self._reload.is_set():
            self._reload.clear()
            check.reload_gallery()
            count = self.enrolled_count(check)
            if count is not None:
                self.enrolled.emit(count)      # queued to the UI thread
        while not self._claims.empty():
            check.claim(self._claims.get(), frame.t)   # the id was checked in the UI thread
        answered = []
        while not self._pins.empty():        # the keypad's answers (issue 21), at this frame's time
            track_id, typed = self._pins.get()
            final = check.answer_pin(track_id, typed, frame.t)
            if final is not None:
                answered.append(final)
        report = check.process(frame)
        report.decisions[:0] = answered
        for decision in report.decisions:
            self._decided.put((decision, frame.rgb))
        return report

    # -- the UI thread ---------------------------------------------------------------------
    def _on_result(self) -> None:
        r = self.worker.take() if self.worker is not None else None
        if r is None:
            return
        if self.camera_state == "reconnecting":
            return   # a frame grabbed just before the cable was pulled: keep the notice up
        report: FrameReport = r.result
        self.checked.emit(LiveFrame(r.image, report, r.camera_fps, self.worker.camera_meter.rate))
        while not self._decided.empty():          # this frame's, and those of frames skipped
            decision, rgb = self._decided.get()
            self.decided.emit(decision, rgb)

    def _on_camera_status(self, status: str) -> None:
        self.camera_state = status
        self.camera_status.emit(status)

    def claim(self, employee_id: str) -> Person | None:
        """Verify mode: the next face is checked against this employee only. The check gets
        every id (an unknown or inactive one is its DENIED, logged and reported with the next
        frame); returned here is the person, or None when no active employee has this id."""
        employee_id = employee_id.strip()
        if not employee_id or self.worker is None:
            return None
        person = self.gallery.person(employee_id) if self.gallery is not None else None
        # Ids are one id whatever their case ("e001" finds E001): the check gets the stored form.
        self._claims.put(person.employee_id if person is not None else employee_id)
        return person if person is not None and person.active else None

    def answer_pin(self, track_id: int, typed: str) -> None:
        """The keypad's entry for the face waiting on ``track_id``: the worker checks it before
        its next frame (the typed text is kept nowhere else)."""
        self._pins.put((track_id, typed))

    def check_expiry(self, now: float | None = None) -> bool:
        """Reload the check when someone's valid-until date passed since it last loaded the
        gallery; True when it did."""
        now = time.time() if now is None else now
        if self.gallery is None:
            return False
        try:
            passed = any(p.valid_until is not None and self._built_at < p.valid_until <= now
                         for p in self.gallery.people(active_only=False))
        except FaceGuardError as exc:
            log.warning("valid-until check skipped: %s", exc)
            return False
        if passed:
            log.info("a valid-until date passed: reloading the gallery")
            self.gallery_changed()
            self._built_at = now
        return passed

    def gallery_changed(self) -> None:
        """The check caches the gallery's embeddings (and its threshold follows the gallery's
        size): the worker reloads them before its next frame so new people count."""
        self._built_at = time.time()
        if self.worker is not None:
            self._reload.set()   # else the next start() builds the check from the gallery then
        else:
            count = self.enrolled_count()
            if count is not None:
                self.enrolled.emit(count)

    def calibration(self) -> dict:
        """What the model calibrated for the current gallery, as SettingsDialog arguments:
        gallery_size, default_threshold (distance) and, when a gallery this large is scored by
        the runner-up margin rule, margin_threshold. Empty when there is no pipeline."""
        if self.pipeline is None:
            return {}
        try:
            size = self.enrolled_count() or 0
            found = {"gallery_size": size, "default_threshold": float(self.pipeline.threshold_for(size, None))}
            rule, threshold = self.pipeline.scoring_for(size, None)
            if rule == "margin":
                found["margin_threshold"] = float(threshold)
            return found
        except FaceGuardError as exc:
            log.info("no calibrated threshold: %s", exc)
            return {}
