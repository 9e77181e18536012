"""The enrolment dialog borrows the door window's camera: never two readers of one device."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from faceguard.camera import FrameSource  # noqa: E402
from faceguard.settings import Settings  # noqa: E402


def test_enrolment_borrows_the_door_camera_and_gives_it_back(qtbot, pipeline, shared_data):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from faceguard.gallery.store import Gallery
    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.sounds import SoundPlayer

    clip = shared_data / "video" / "short_hamilton_clip.mp4"
    open_now: list = []
    peak = [0]

    class CountingSource(FrameSource):
        """The real clip as a live camera, counting how many readers hold it at once."""

        def open(self):
            super().open()
            open_now.append(self)
            peak[0] = max(peak[0], len(open_now))
            return self

        def close(self):
            if self in open_now:
                open_now.remove(self)
            super().close()

    def opener():
        return CountingSource(str(clip), loop=True, realtime=True).open()

    with Gallery.open() as gallery:
        w = DoorWindow(Settings(camera=str(clip)), pipeline, gallery, open_source=opener,
                       sounds=SoundPlayer(enabled=False), save=False)
        qtbot.addWidget(w)
        w.show()
        w.start()
        qtbot.waitUntil(lambda: w.camera_text.startswith("Camera: live"), timeout=15000)
        seen: dict = {}

        def while_enrolling():
            dialog = QApplication.activeModalWidget()
            qtbot.waitUntil(lambda: dialog.current is not None, timeout=15000)  # preview runs
            seen.update(readers=len(open_now), door_worker=w.worker, banner=w.banner.title.text())
            dialog.reject()

        QTimer.singleShot(100, while_enrolling)
        w.open_enrol()

        assert seen["readers"] == 1 and seen["door_worker"] is None
        assert seen["banner"] == "Paused while enrolling"
        assert peak[0] == 1
        qtbot.waitUntil(lambda: w.camera_text.startswith("Camera: live") and len(open_now) == 1,
                        timeout=15000)
        w.stop()
    assert peak[0] == 1
