"""The enrolment quality gate on real photos: each failure gives the message a person can act on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceguard.vision import quality
from faceguard.vision.image import load_image

GOOD = "Kim_Jong-Il/Kim_Jong-Il_0003.jpg"
OTHER = "Paul_Bremer/Paul_Bremer_0014.jpg"


@pytest.fixture(scope="module")
def good(lfw):
    return load_image(lfw / "images" / GOOD)


def judge(pipeline, rgb):
    return quality.assess_image(pipeline, rgb)


def test_good_photo_passes(pipeline, good):
    q = judge(pipeline, good)
    assert q.ok, q
    assert q.message == quality.MSG_OK
    assert q.face_px >= quality.MIN_LIVE_FACE_PX
    assert q.sharpness >= quality.MIN_SHARPNESS
    assert abs(q.yaw) <= quality.MAX_YAW


def test_enrolment_portrait_passes(pipeline, shared_data):
    # The portrait also holds a small false detection in the hair: a bystander, not a 2nd face.
    q = judge(pipeline, load_image(shared_data / "video" / "lin-manuel-miranda.png"))
    assert q.ok, q


def test_dark_photo_is_too_dark(pipeline, good):
    q = judge(pipeline, (good * 0.2).astype(np.uint8))
    assert not q.ok
    assert "too dark" in q.message.lower()


def test_tiny_face_asks_to_come_closer(pipeline, good):
    # The same face at a third of the size, pasted into a large empty frame.
    small = cv2.resize(good, (83, 83), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[200:283, 280:363] = small
    q = judge(pipeline, canvas)
    assert q.message == quality.MSG_CLOSER, q
    assert q.face_px < quality.MIN_LIVE_FACE_PX


def test_blurred_face_asks_to_hold_still(pipeline, good):
    q = judge(pipeline, cv2.GaussianBlur(good, (0, 0), 3))
    assert q.message == quality.MSG_STILL, q
    assert q.sharpness < quality.MIN_SHARPNESS


def test_two_faces_ask_for_one(pipeline, good, lfw):
    pair = np.hstack([good, load_image(lfw / "images" / OTHER)])
    q = judge(pipeline, pair)
    assert q.message == quality.MSG_ONE_FACE


def test_turned_head_asks_to_look_straight():
    # Landmarks of a face turned to one side: the nose far off the eye midpoint.
    faces = [type("F", (), {"box": np.array([100, 100, 300, 300], np.float32),
                            "landmarks": np.array([[160, 170], [240, 170], [255, 215], [170, 255], [235, 255]],
                                                  np.float32)})()]
    rng = np.random.default_rng(0)
    rgb = rng.integers(60, 200, (400, 400, 3), dtype=np.uint8)   # bright and sharp noise
    q = quality.assess(rgb, faces)
    assert q.message == quality.MSG_STRAIGHT
    assert q.yaw > quality.MAX_YAW


def test_no_face():
    q = quality.assess(np.full((200, 200, 3), 128, np.uint8), [])
    assert not q.ok and q.message == quality.MSG_NO_FACE


def test_score_prefers_the_sharper_frame(pipeline, good):
    sharp = judge(pipeline, good)
    soft = judge(pipeline, cv2.GaussianBlur(good, (0, 0), 1.2))
    assert sharp.score > soft.score
