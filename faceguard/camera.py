"""FrameSource: frames from a camera index, a stream URL or a video file, one interface.

Live sources are read by a grabber thread that keeps only the newest frame: when inference is
slower than the camera, old frames are dropped, never queued. Video files are read frame by
frame (every frame, stamped with its position in the clip) unless `realtime` is asked for,
in which case they behave like a camera running at the file's frame rate.
A live source that stops delivering is reopened every `reconnect_s` seconds; `status` says so.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceguard.errors import CameraError
from faceguard.inputs import check_regular_file
from faceguard.vision.image import to_rgb8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray   # [H, W, 3] uint8 RGB
    index: int        # frame number since the source was opened
    t: float          # seconds: position in the clip for files, since open for live sources


MAX_CAMERA_INDEX = 9999
MAX_VIDEO_BYTES = 1 << 40      # no real limit on a clip's size; the check is for its kind


def parse_source(source: str | int) -> str | int:
    """'0' → camera 0; anything else is a URL or a file path."""
    text = str(source).strip()
    if not (text.isascii() and text.isdigit()):
        return text
    if int(text) > MAX_CAMERA_INDEX:      # OpenCV overflows on 10^20; no computer has that many
        raise CameraError(f"There is no camera {text[:30]}: a camera number is 0 to {MAX_CAMERA_INDEX} "
                          "(0 is the first camera).")
    return int(text)


def _is_path(source: str | int) -> bool:
    """A video file (existing or not): not a device index, URL or device node (/dev/video0)."""
    return isinstance(source, str) and "://" not in source and not source.startswith("/dev/")


def list_cameras(max_index: int = 6) -> list[int]:
    """Device indices that open and deliver a frame (slow-ish: call from a worker)."""
    found = []
    for i in range(max_index):
        cap = cv2.VideoCapture(i)
        try:
            if cap.isOpened() and cap.read()[0]:
                found.append(i)
        finally:
            cap.release()
    return found


class FrameSource:
    def __init__(self, source: str | int, *, loop: bool = False, realtime: bool = False,
                 reconnect_s: float = 2.0, open_capture=cv2.VideoCapture,
                 retry_at_start: bool = False):
        """``retry_at_start``: a live camera or stream that cannot be opened yet is retried
        like one that dropped later (a door service started before its camera), instead of
        raising; the window keeps False so it can show its no-camera page."""
        self.source = parse_source(source)
        self.loop = loop
        self.realtime = realtime
        self.reconnect_s = reconnect_s
        self._open_capture = open_capture  # injectable so tests can make a source fail
        self._cap: cv2.VideoCapture | None = None
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._fresh = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index = 0
        self._t0 = 0.0
        self._loop_offset = 0.0  # clip time of the loops already played (t keeps growing)
        self._last_t = 0.0
        self.fps = 0.0
        self.frame_count = 0     # a file's frame count from its header (0: unknown)
        self.retry_at_start = retry_at_start
        self.status = "closed"   # closed | live | reconnecting | ended

    @property
    def is_file(self) -> bool:
        return _is_path(self.source)

    def describe(self) -> str:
        return f"camera {self.source}" if isinstance(self.source, int) else str(self.source)

    # -- opening -----------------------------------------------------------------------------
    def _open(self):
        if _is_path(self.source):
            # A missing file is an error at once (never retried like a camera being plugged in);
            # a FIFO or device would block the open for ever, so it is refused before OpenCV.
            path = Path(str(self.source))
            if not path.exists():
                raise CameraError(f"The video file {self.source} does not exist.")
            check_regular_file(path, MAX_VIDEO_BYTES, "a video file", CameraError)
        cap = self._open_capture(self.source)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"Cannot open {self.describe()}: no such camera, or it is in use "
                              "by another program.")
        return cap

    def open(self) -> FrameSource:
        live = not self.is_file
        try:
            self._cap = cap = self._open()
        except CameraError as exc:
            if not (live and self.retry_at_start):
                raise
            log.warning("%s; retrying every %.0f s", exc, self.reconnect_s)
            self.fps, self._t0, self.status = 25.0, time.monotonic(), "reconnecting"
            self._stop.clear()
            self._thread = threading.Thread(target=self._grab_loop, name="frame-grabber", daemon=True)
            self._thread.start()
            return self
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if self.is_file else 0
        self._t0 = time.monotonic()
        self.status = "live"
        if not self.is_file or self.realtime:
            self._stop.clear()
            self._thread = threading.Thread(target=self._grab_loop, name="frame-grabber", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._fresh.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self.status != "ended":
            self.status = "closed"

    def __enter__(self) -> FrameSource:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------
    def _read_one(self) -> Frame | None:
        cap = self._cap
        if cap is None:
            return None
        ok, bgr = cap.read()
        if not ok and self.is_file and self.loop:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._loop_offset = self._last_t + 1.0 / self.fps
            ok, bgr = cap.read()
        if not ok or bgr is None:
            return None
        if self.is_file and not self.realtime:
            # Clip position, plus the loops already played: time never runs backwards, or the
            # per-person cool-down would never end on a looping video.
            t = self._loop_offset + float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
        else:
            t = time.monotonic() - self._t0
        self._last_t = t
        frame = Frame(to_rgb8(bgr), self._index, t)
        self._index += 1
        return frame

    def _grab_loop(self) -> None:
        period = 1.0 / self.fps if self.is_file else 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            frame = self._read_one() if self._cap is not None else None
            if frame is None:
                if self.is_file and not self.loop:
                    self.status = "ended"
                    self._fresh.set()
                    return
                self._reconnect()
                continue
            with self._lock:
                self._latest = frame
            self.status = "live"
            self._fresh.set()
            if period:
                time.sleep(max(0.0, period - (time.monotonic() - started)))

    def _reconnect(self) -> None:
        self.status = "reconnecting"
        log.warning("%s stopped delivering frames; reconnecting", self.describe())
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        while not self._stop.wait(self.reconnect_s):
            try:
                self._cap = self._open()
                log.info("%s reconnected", self.describe())
                return
            except CameraError:
                continue

    def end_problem(self) -> str | None:
        """After a file ended: why it ended early (damaged or truncated), or None when it
        played to the end its header announced."""
        if self.status != "ended" or not self.frame_count or self.loop:
            return None
        # Container frame counts are estimates: a few frames short is normal.
        if self._index >= 0.95 * self.frame_count - 2:
            return None
        return (f"{self.describe()} ended after {self._index} of its {self.frame_count} frames; "
                "the file may be damaged or cut short.")

    def read(self, timeout: float = 2.0) -> Frame | None:
        """The next frame of a file, or the newest frame of a live source.

        Returns None when a file has ended, or when a live source gave nothing new within
        `timeout` (check `status`: 'reconnecting' means the camera vanished).
        """
        if self._cap is None and self._thread is None:
            raise CameraError(f"{self.describe()} is not open.")
        if self._thread is None:  # a file read frame by frame
            frame = self._read_one()
            if frame is None:
                self.status = "ended"
            return frame
        if not self._fresh.wait(timeout):
            return None
        with self._lock:
            frame, self._latest = self._latest, None
            self._fresh.clear()
        return frame
