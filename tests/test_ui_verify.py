"""Verify mode at the door: an employee id typed (or typed by a badge reader), then the face.

The camera is a stretch of the Hamilton clip in which Lin-Manuel Miranda faces the camera
(frames 90-200), written to a file and played frame by frame in a loop: each frame is checked,
its time is its place in the clip, so whenever an id is typed the next frames show him, however
slow the machine. (Played in real time, a loaded machine reached the claim on the frames where
he is in profile or off stage, and the claim timed out by the wall clock.)
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from faceguard.settings import Settings  # noqa: E402


def frontal_stretch(clip, path, first: int = 90, last: int = 200):
    """Frames [first, last] of `clip`, written as a video file at the clip's frame rate."""
    import cv2
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    writer = None
    for i in range(last + 1):
        ok, bgr = cap.read()
        assert ok, f"{clip} has fewer than {last + 1} frames"
        if i < first:
            continue
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                     (bgr.shape[1], bgr.shape[0]))
        writer.write(bgr)
    writer.release()
    cap.release()
    return path


def test_typed_employee_id_is_checked_against_the_face(qtbot, pipeline, shared_data, lfw, tmp_path):
    from faceguard.camera import FrameSource
    from faceguard.gallery.enrol import enrol
    from faceguard.gallery.store import Gallery
    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.sounds import SoundPlayer
    from faceguard.vision.image import load_image

    clip = frontal_stretch(shared_data / "video" / "short_hamilton_clip.mp4", tmp_path / "frontal.mp4")
    with Gallery.open() as gallery:
        for photo, name, emp in ((shared_data / "video" / "lin-manuel-miranda.png", "Lin-Manuel Miranda", "E001"),
                                 (lfw / "images" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg", "Abel Pacheco", "E002")):
            enrol(gallery, pipeline, load_image(photo), name, emp, consent=True,
                  threshold=pipeline.threshold_for(2))
        w = DoorWindow(Settings(camera=str(clip), mode="verify", cooldown_s=0, photo_check=False), pipeline, gallery,
                       open_source=lambda: FrameSource(str(clip), loop=True).open(),   # every frame
                       sounds=SoundPlayer(enabled=False), save=False)
        qtbot.addWidget(w)
        w.show()
        w.start()
        assert w.claim_box.isVisible()
        qtbot.waitUntil(lambda: w.camera_text.startswith("Camera: live"), timeout=15000)

        assert not w.submit_claim("E999")
        assert "No active employee has the id 'E999'" in w.banner.detail.text()

        qtbot.keyClicks(w.claim_box, "E002")      # Abel is not the man on camera
        qtbot.keyClick(w.claim_box, "\r")
        assert w.claim_box.text() == ""
        assert w.banner.title.text() == "Look at the camera"     # no name before the face is let in
        qtbot.waitUntil(lambda: any(d.person_id == "E002" for d in w.decisions), timeout=20000)
        abel = [d for d in w.decisions if d.person_id == "E002"][-1]
        assert abel.kind == "DENIED" and abel.mode == "verify"
        assert abel.distance > abel.threshold == pipeline.threshold_for(1)
        # The unknown id typed first is on the list too: the door check logged it as a DENIED.
        assert any(r.startswith("DENIED  unknown employee id\n") and "'E999'" in r for r in w.event_rows())

        assert w.submit_claim("e001")              # Lin-Manuel Miranda is (ids ignore letter case)
        qtbot.waitUntil(lambda: any(d.person_id == "E001" for d in w.decisions), timeout=20000)
        lin = [d for d in w.decisions if d.person_id == "E001"][-1]
        assert lin.kind == "GRANTED" and lin.distance <= lin.threshold
        assert w.banner.title.text() == "Welcome, Lin-Manuel Miranda"
        w.stop()
