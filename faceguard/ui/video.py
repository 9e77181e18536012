"""Frames on screen: the worker thread that reads the camera and runs the flow, and the widget
that paints the newest frame with a box, name and distance on each face.

Threads: the worker (a QThread) opens the FrameSource, reads the newest frame, calls the
`process` function given to it (door check or enrolment quality) and hands the result over.
The UI thread only paints. The hand-over is a single slot, not a queue: when the UI is busy, a
newer result replaces the one it has not picked up yet, so nothing piles up in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QThread, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from faceguard.errors import CameraError, FaceGuardError
from faceguard.ui.presentation import AMBER, GREEN, GREY, RED, Overlay

__all__ = ["AMBER", "GREEN", "GREY", "RED", "OneReader", "Overlay", "RateMeter", "VideoView",
           "VideoWorker", "WorkerResult", "rgb_to_qimage"]

log = logging.getLogger(__name__)


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """RGB uint8 [H, W, 3] → a QImage that owns its pixels (safe after `rgb` is freed)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class RateMeter:
    """Events per second over the last `span` seconds."""

    def __init__(self, span: float = 2.0):
        self.span = span
        self._times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        while self._times and now - self._times[0] > self.span:
            self._times.popleft()

    @property
    def rate(self) -> float:
        if len(self._times) < 2:
            return 0.0
        dt = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / dt if dt > 0 else 0.0


class VideoView(QWidget):
    """Paints the newest frame, letterboxed, with overlays; counts its own paint rate."""

    def __init__(self, parent: QWidget | None = None, placeholder: str = "Starting the camera…"):
        super().__init__(parent)
        self._image: QImage | None = None
        self._overlays: list[Overlay] = []
        self._placeholder = placeholder
        self.paint_meter = RateMeter()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(800, 450)

    def set_frame(self, image: QImage | None, overlays: list[Overlay] | None = None) -> None:
        self._image = image
        self._overlays = list(overlays or [])
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    @property
    def image(self) -> QImage | None:
        return self._image

    def _target(self) -> QRectF:
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.paint_meter.tick()
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 26, 30))
        if self._image is None or self._image.isNull():
            p.setPen(QPen(QColor(200, 200, 200)))
            f = QFont(self.font())
            f.setPointSize(16)
            p.setFont(f)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._placeholder)
            p.end()
            return
        target = self._target()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(target, self._image)
        s = target.width() / self._image.width()
        p.setClipRect(target)   # a face cut by the frame edge keeps its box inside the picture
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        label_font = QFont(self.font())
        label_font.setPointSize(11)
        label_font.setBold(True)
        p.setFont(label_font)
        metrics = p.fontMetrics()
        for ov in self._overlays:
            x1, y1, x2, y2 = ov.box
            r = QRectF(target.x() + x1 * s, target.y() + y1 * s, (x2 - x1) * s, (y2 - y1) * s)
            p.setPen(QPen(ov.color, 3))
            p.setBrush(QBrush())   # no fill inside the box
            p.drawRoundedRect(r, 6, 6)
            if ov.landmarks is not None:
                p.setPen(QPen(ov.color, 4))
                for x, y in np.asarray(ov.landmarks).reshape(-1, 2):
                    p.drawPoint(QPointF(target.x() + x * s, target.y() + y * s))
            if ov.label:
                tw, th = metrics.horizontalAdvance(ov.label) + 12, metrics.height() + 6
                top = r.top() - th if r.top() - th >= target.top() else r.bottom()
                # A face near the right edge keeps its whole name in the picture.
                left = max(target.left(), min(r.left(), target.right() - tw))
                tag = QRectF(left, top, tw, th)
                p.setPen(QPen(Qt.PenStyle.NoPen))
                p.setBrush(QBrush(ov.color))
                p.drawRoundedRect(tag, 4, 4)
                p.setPen(QPen(QColor(255, 255, 255)))
                p.drawText(tag, Qt.AlignmentFlag.AlignCenter, ov.label)
        p.end()


class OneReader:
    """Opens the camera for one reader at a time.

    Most webcams cannot be opened twice (V4L2: "device busy"), and a worker being stopped may
    still hold the device for a moment (a slow frame). Every window that reads the door's camera
    opens it through the same OneReader: an open waits, in the worker thread that asked, until
    the previous reader has closed its source, so two readers never hold the device at once.
    `opener` (a zero-argument function returning an open FrameSource) can be swapped when the
    office picks another camera.
    """

    def __init__(self, opener: Callable[[], object], wait_s: float = 15.0):
        self.opener = opener
        self.wait_s = wait_s
        self._free = threading.Condition()
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def __call__(self) -> _Lent:
        with self._free:
            if not self._free.wait_for(lambda: not self._held, timeout=self.wait_s):
                raise CameraError("The camera is still in use by another FaceGuard window. "
                                  "Close it and try again.")
            self._held = True
        try:
            return _Lent(self.opener(), self._release)
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        with self._free:
            self._held = False
            self._free.notify_all()


class _Lent:
    """An open source on loan from a OneReader: closing it gives the camera back (once)."""

    def __init__(self, source, give_back: Callable[[], None]):
        self._source = source
        self._give_back: Callable[[], None] | None = give_back

    def __getattr__(self, name):   # read, status, fps…: the source's own
        return getattr(self._source, name)

    def close(self) -> None:
        try:
            self._source.close()
        finally:
            give_back, self._give_back = self._give_back, None
            if give_back is not None:
                give_back()


_LINGERING: set[VideoWorker] = set()   # stopped workers still finishing (see VideoWorker.stop)


@dataclass
class WorkerResult:
    image: QImage          # the frame, converted in the worker thread
    frame: object          # faceguard.camera.Frame
    result: object         # whatever `process` returned
    infer_ms: float
    camera_fps: float


class VideoWorker(QThread):
    """Reads a FrameSource, runs `process(frame)` on the newest frame, hands over the result.

    Signals: `result_ready()` (pick it up with `take()`), `camera_status(str)` with 'live',
    'reconnecting', 'ended', 'failed'; `failed(str)` with a user-facing message.
    `finish()`, when given, runs in the worker thread as its last step, after the source is
    closed, however the thread ends (the door check closes its door output there: the thread
    that ran its frames is the one that closes it).
    """

    result_ready = Signal()
    camera_status = Signal(str)
    failed = Signal(str)

    def __init__(self, open_source: Callable[[], object], process: Callable[[object], object],
                 parent=None, read_timeout: float = 0.5, finish: Callable[[], None] | None = None):
        super().__init__(parent)
        self._open_source = open_source
        self._process = process
        self._finish = finish
        self._read_timeout = read_timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: WorkerResult | None = None
        self._pending = False
        self.frames = 0
        self._last_report = -1e9
        self.camera_meter = RateMeter()

    def stop(self, wait_ms: int = 3000) -> bool:
        """Ask the thread to end and wait up to `wait_ms`; True when it has ended (and closed
        its source). A thread still busy (a slow frame, a stream that takes long to open)
        ends on its own: it is detached from its parent and kept referenced until it has
        finished, because Qt aborts the program when a running QThread is destroyed."""
        self._stop.set()
        if self.wait(wait_ms):
            return True
        log.warning("the video worker is still busy after %d ms; it ends on its own", wait_ms)
        self.setParent(None)
        _LINGERING.add(self)
        self.finished.connect(self._forget)
        if self.isFinished():   # it ended between the wait and the connect
            self._forget()
        return False

    @Slot()
    def _forget(self) -> None:
        if self in _LINGERING:
            self.wait()   # `finished` comes just before the thread's last step
            _LINGERING.discard(self)
            self.deleteLater()

    def take(self) -> WorkerResult | None:
        """The newest result (None if already taken); the UI thread calls this."""
        with self._lock:
            r, self._latest, self._pending = self._latest, None, False
        return r

    def _report_once(self, message: str, every_s: float = 10.0) -> None:
        """Emit `failed` at most every `every_s` seconds: a bad frame a second is one message."""
        now = time.monotonic()
        if now - self._last_report >= every_s:
            self._last_report = now
            self.failed.emit(message)

    def _hand_over(self, r: WorkerResult) -> None:
        with self._lock:
            self._latest = r
            notify = not self._pending
            self._pending = True
        if notify:
            self.result_ready.emit()

    def run(self) -> None:
        try:
            self._run()
        finally:
            if self._finish is not None:
                try:
                    self._finish()
                except Exception:   # noqa: BLE001 (the thread must end; the log says why)
                    log.exception("finishing the video worker failed")

    def _run(self) -> None:
        try:
            source = self._open_source()
        except FaceGuardError as exc:
            self.camera_status.emit("failed")
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # an OpenCV backend may raise anything; never kill the app
            log.exception("opening the camera failed")
            self.camera_status.emit("failed")
            self.failed.emit(f"The camera could not be opened ({exc}).")
            return
        status = None
        try:
            while not self._stop.is_set():
                try:
                    frame = source.read(timeout=self._read_timeout)
                except CameraError as exc:
                    self.camera_status.emit("failed")
                    self.failed.emit(str(exc))
                    return
                if source.status != status:
                    status = source.status
                    self.camera_status.emit(status)
                if frame is None:
                    if source.status == "ended":
                        return
                    continue
                self.camera_meter.tick()
                t0 = time.perf_counter()
                try:
                    result = self._process(frame)
                except FaceGuardError as exc:   # one bad frame (e.g. a door that failed)
                    self._report_once(str(exc))
                    continue
                except Exception as exc:         # a bug: log it, keep the door check running
                    log.exception("processing a frame failed")
                    self._report_once(f"Processing a frame failed ({type(exc).__name__}: {exc}).")
                    continue
                infer_ms = (time.perf_counter() - t0) * 1000.0
                self.frames += 1
                self._hand_over(WorkerResult(rgb_to_qimage(frame.rgb), frame, result, infer_ms,
                                             float(source.fps)))   # what the camera delivers
        except Exception as exc:
            log.exception("the video worker stopped")
            self.failed.emit(f"The camera stopped unexpectedly ({type(exc).__name__}: {exc}).")
        finally:
            source.close()
