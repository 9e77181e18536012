"""The enrolment dialog borrows the door window's camera: never two readers of one device.

A USB webcam usually cannot be opened twice (V4L2: device busy). The door window stops its
worker while the enrolment preview runs and restarts it afterwards; both open the camera through
one OneReader, so even a door worker that is slow to stop never overlaps the preview.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from faceguard.camera import FrameSource  # noqa: E402
from faceguard.errors import CameraError  # noqa: E402
from faceguard.settings import Settings  # noqa: E402


class Readers:
    """The real clip as a live camera, counting how many readers hold it at once."""

    def __init__(self, clip):
        self.clip = str(clip)
        self.open_now: list = []
        self.peak = 0
        self.log: list[str] = []   # "open" / "close", in order
        outer = self

        class CountingSource(FrameSource):
            def open(self):
                super().open()
                outer.open_now.append(self)
                outer.peak = max(outer.peak, len(outer.open_now))
                outer.log.append("open")
                return self

            def close(self):
                if self in outer.open_now:
                    outer.open_now.remove(self)
                    outer.log.append("close")
                super().close()

        self._cls = CountingSource

    def __call__(self):
        return self._cls(self.clip, loop=True, realtime=True).open()


def door_window(qtbot, pipeline, gallery, readers, **kw):
    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.sounds import SoundPlayer
    w = DoorWindow(Settings(camera=readers.clip), pipeline, gallery, open_source=readers,
                   sounds=SoundPlayer(enabled=False), save=False, **kw)
    qtbot.addWidget(w)
    w.show()
    return w


def enrol_while(qtbot, w, body) -> None:
    """Open the enrolment dialog from the door window, run `body(dialog)` while it is open,
    then close it; an assertion failing in `body` is re-raised here (never a hung exec())."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    failure: list[BaseException] = []

    def run():
        dialog = QApplication.activeModalWidget()
        try:
            body(dialog)
        except BaseException as exc:   # noqa: BLE001 (handed back to the test below)
            failure.append(exc)
        finally:
            dialog.reject()

    QTimer.singleShot(100, run)
    w.open_enrol()
    if failure:
        raise failure[0]


def test_enrolment_borrows_the_door_camera_and_gives_it_back(qtbot, pipeline, shared_data):
    from faceguard.gallery.store import Gallery
    from faceguard.ui.presentation import PAUSED_TEXT

    readers = Readers(shared_data / "video" / "short_hamilton_clip.mp4")
    with Gallery.open() as gallery:
        w = door_window(qtbot, pipeline, gallery, readers)
        w.start()
        qtbot.waitUntil(lambda: w.camera_text.startswith("Camera: live"), timeout=15000)
        seen: dict = {}

        def preview_runs(dialog):
            qtbot.waitUntil(lambda: dialog.current is not None, timeout=15000)
            seen.update(readers=len(readers.open_now), door_worker=w.controller.worker, banner=w.banner.title.text(),
                        camera=w.camera_text, door_image=w.video.image)

        enrol_while(qtbot, w, preview_runs)

        assert seen["readers"] == 1 and seen["door_worker"] is None
        assert seen["banner"] == PAUSED_TEXT == "Paused while enrolling"
        assert seen["camera"] == "Camera: paused (enrolling)" and seen["door_image"] is None
        assert readers.peak == 1
        qtbot.waitUntil(lambda: w.camera_text.startswith("Camera: live") and w.video.image is not None
                        and len(readers.open_now) == 1, timeout=15000)
        assert w.banner.title.text() != PAUSED_TEXT
        w.stop()
    assert readers.peak == 1
    assert readers.log == ["open", "close"] * 3   # door, preview, door again


def test_a_door_worker_slow_to_stop_never_overlaps_the_preview(qtbot, pipeline, shared_data):
    """The door check is busy with a frame when enrolment opens and outlasts stop()'s wait: the
    preview opens the camera only after that frame is done and the door has closed it."""
    from faceguard.doorcheck import FrameReport
    from faceguard.gallery.store import Gallery
    from faceguard.ui import video

    readers = Readers(shared_data / "video" / "short_hamilton_clip.mp4")
    busy, inside, done = threading.Event(), threading.Event(), threading.Event()

    class SlowCheck:
        gallery_empty = False
        damaged: dict = {}

        def process(self, frame):
            if busy.is_set():
                inside.set()
                done.wait(20)       # a frame that takes far longer than stop() waits
                busy.clear()
            return FrameReport(frame, [], [], 1.0)

        def close(self, timeout=None):
            return []

    with Gallery.open() as gallery:
        w = door_window(qtbot, pipeline, gallery, readers, make_check=SlowCheck)
        w.controller.stop_wait_ms = 100
        w.start()
        qtbot.waitUntil(lambda: w.camera_text.startswith("Camera: live"), timeout=15000)
        busy.set()
        qtbot.waitUntil(inside.is_set, timeout=5000)
        seen: dict = {}

        def preview_waits_then_runs(dialog):
            qtbot.wait(500)
            # The stopped door worker still holds the camera; the preview waits for it.
            seen.update(waiting=(dialog.current is None, len(readers.open_now), len(video._LINGERING)))
            done.set()
            qtbot.waitUntil(lambda: dialog.current is not None, timeout=15000)
            seen.update(running=len(readers.open_now))

        enrol_while(qtbot, w, preview_waits_then_runs)

        assert seen["waiting"] == (True, 1, 1)
        assert seen["running"] == 1
        qtbot.waitUntil(lambda: w.camera_text.startswith("Camera: live") and len(readers.open_now) == 1,
                        timeout=15000)
        qtbot.waitUntil(lambda: not video._LINGERING, timeout=5000)   # the slow worker was freed
        w.stop()
    assert readers.peak == 1
    assert readers.log == ["open", "close"] * 3


def test_one_reader_waits_for_the_camera_to_be_given_back():
    from faceguard.ui.video import OneReader

    opened: list[str] = []

    class Source:
        def __init__(self):
            self.status, self.closed = "live", 0

        def close(self):
            self.closed += 1

    def opener():
        opened.append("open")
        return Source()

    gate = OneReader(opener, wait_s=5.0)
    first = gate()
    assert gate.held and first.status == "live"   # the source's own attributes show through
    second: list = []
    t = threading.Thread(target=lambda: second.append(gate()))
    t.start()
    time.sleep(0.3)
    assert second == [] and opened == ["open"]    # still waiting for the first reader
    first.close()
    t.join(5)
    assert len(second) == 1 and opened == ["open", "open"]
    first.close()                                  # closing twice gives the camera back once
    assert gate.held and first._source.closed == 2
    second[0].close()
    assert not gate.held


def test_one_reader_refuses_with_a_reason_when_the_camera_is_not_given_back():
    from faceguard.ui.video import OneReader

    def broken():
        raise CameraError("Cannot open camera 0.")

    gate = OneReader(lambda: type("S", (), {"close": lambda self: None})(), wait_s=0.2)
    held = gate()
    with pytest.raises(CameraError, match="still in use by another FaceGuard window"):
        gate()
    held.close()
    gate.opener = broken
    with pytest.raises(CameraError, match="Cannot open camera 0"):
        gate()
    assert not gate.held       # a failed open does not keep the camera
