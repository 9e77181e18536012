"""FrameSource on real video: files frame by frame, written clips, and a live source that drops out."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.camera import Frame, FrameSource, parse_source
from faceguard.errors import CameraError


@pytest.fixture(scope="module")
def clip(shared_data) -> Path:
    return shared_data / "video" / "short_hamilton_clip.mp4"


def test_file_read_frame_by_frame(clip):
    cap = cv2.VideoCapture(str(clip))
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    frames: list[Frame] = []
    with FrameSource(str(clip)) as src:
        assert src.status == "live" and src.is_file
        assert src.fps == pytest.approx(29.97, abs=0.01)
        while (f := src.read()) is not None:
            frames.append(f)
        assert src.status == "ended"
        assert src.read() is None  # stays ended
    assert src.status == "ended"
    assert len(frames) == expected == 275
    assert [f.index for f in frames] == list(range(len(frames)))
    ts = np.array([f.t for f in frames])
    assert np.all(np.diff(ts) > 0)
    assert ts[-1] == pytest.approx((len(frames) - 1) / 29.97, abs=0.05)
    first = frames[0].rgb
    assert first.shape == (360, 640, 3) and first.dtype == np.uint8
    assert first.std() > 10  # real picture content, not a blank frame


def test_written_video_is_read_back(tmp_path):
    path = tmp_path / "made.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
    assert writer.isOpened()
    shades = [20 + 10 * i for i in range(12)]
    for i, v in enumerate(shades):
        bgr = np.full((64, 96, 3), v, np.uint8)
        bgr[:, :, 2] = 250  # strong red in every frame: checks the BGR → RGB order
        cv2.rectangle(bgr, (4 * i, 10), (4 * i + 15, 30), (0, 0, 0), -1)  # a moving square
        writer.write(bgr)
    writer.release()

    with FrameSource(str(path)) as src:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert len(frames) == len(shades)
    assert src.fps == pytest.approx(10.0)
    for i, (f, v) in enumerate(zip(frames, shades, strict=True)):
        assert f.rgb.shape == (64, 96, 3)
        assert abs(float(f.rgb[50, 60, 0]) - 250) < 8  # red channel first
        assert abs(float(f.rgb[50, 60, 1]) - v) < 8
        assert f.rgb[20, 4 * i + 7].max() < 40  # the square moved with the frame number
        assert f.t == pytest.approx(i / 10.0, abs=0.011)


def test_looping_file_restarts(tmp_path):
    path = tmp_path / "three.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 32))
    for v in (30, 130, 230):
        writer.write(np.full((32, 32, 3), v, np.uint8))
    writer.release()
    with FrameSource(str(path), loop=True) as src:
        frames = [src.read() for _ in range(7)]
    assert [round(float(f.rgb.mean()), -1) for f in frames] == [30, 130, 230, 30, 130, 230, 30]
    # time keeps running across loops (a cool-down measured in clip time must end)
    assert [f.t for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], abs=0.011)


def test_missing_file_is_a_camera_error(tmp_path):
    missing = tmp_path / "gone.mp4"
    with pytest.raises(CameraError, match=f"{missing}.*does not exist"):
        FrameSource(str(missing)).open()


def test_read_before_open_is_a_camera_error(clip):
    with pytest.raises(CameraError, match="not open"):
        FrameSource(str(clip)).read()


def test_parse_source():
    assert parse_source("0") == 0 and parse_source(" 2 ") == 2
    assert parse_source("rtsp://cam/stream") == "rtsp://cam/stream"
    assert parse_source(3) == 3


class FlakyCapture:
    """A cv2.VideoCapture look-alike over the real clip that can be told to stop delivering."""

    def __init__(self, clip: Path, frames_before_failing: int | None, opens: bool = True):
        self._cap = cv2.VideoCapture(str(clip))
        self._left = frames_before_failing
        self._opens = opens

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's spelling
        return self._opens and self._cap.isOpened()

    def read(self):
        if self._left is not None:
            if self._left <= 0:
                return False, None  # the cable was pulled
            self._left -= 1
        ok, bgr = self._cap.read()
        if not ok and self._left is None:  # a healthy camera never runs out: loop the clip
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        return ok, bgr

    def get(self, prop):
        return self._cap.get(prop)

    def set(self, prop, value):
        return self._cap.set(prop, value)

    def release(self):
        self._cap.release()


def test_live_source_reconnects_after_a_dropout(clip):
    """First capture gives 3 frames then fails; the first reopen finds no camera; the second
    works. The source must report 'reconnecting' meanwhile and 'live' again afterwards."""
    status_at_open: list[str] = []
    plan = [dict(frames_before_failing=3), dict(frames_before_failing=None, opens=False),
            dict(frames_before_failing=None)]
    src: FrameSource

    def open_capture(source):
        assert source == "rtsp://door-camera/stream"
        status_at_open.append(src.status)
        return FlakyCapture(clip, **plan[min(len(status_at_open) - 1, len(plan) - 1)])

    src = FrameSource("rtsp://door-camera/stream", reconnect_s=0.05, open_capture=open_capture)
    with src:
        assert src.status == "live" and not src.is_file
        seen_status, frames = set(), []
        deadline = time.monotonic() + 10
        while len(status_at_open) < 3 or len(frames) < 8:
            seen_status.add(src.status)
            f = src.read(timeout=0.02)
            if f is not None:
                frames.append(f)
            assert time.monotonic() < deadline, (status_at_open, len(frames))
        assert src.status == "live"
    assert src.status == "closed"
    assert status_at_open == ["closed", "reconnecting", "reconnecting"]
    assert "reconnecting" in seen_status
    idx = [f.index for f in frames]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)  # newest-only, never repeated
    ts = [f.t for f in frames]
    assert ts == sorted(ts)
    assert frames[-1].rgb.shape == (360, 640, 3)


def test_camera_that_never_opens(clip):
    src = FrameSource(7, open_capture=lambda s: FlakyCapture(clip, None, opens=False))
    with pytest.raises(CameraError, match="Cannot open camera 7"):
        src.open()
