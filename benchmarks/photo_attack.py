"""A printed photo held up to the door camera, as camera frames (for the photo-check test and
benchmark): the photo is a flat card in 3-D, turned and moved by a hand, seen through a pinhole
camera, with sensor noise and JPEG compression, like a webcam's frames.
"""

from __future__ import annotations

import cv2
import numpy as np

FRAME_W, FRAME_H = 640, 480
FOCAL_PX = 600.0                 # a typical 640×480 webcam (about 56° horizontal field of view)
CARD_WIDTH_M = 0.2


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def render(photo: np.ndarray, yaw: float, pitch: float, roll: float, distance_m: float,
           shift_m: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The photo as a card at `distance_m`, turned by yaw/pitch/roll degrees, on a grey wall."""
    ph, pw = photo.shape[:2]
    corners = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float64)
    card = np.c_[(corners - [pw / 2, ph / 2]) * (CARD_WIDTH_M / pw), np.zeros(4)]
    world = card @ _rotation(yaw, pitch, roll).T + [shift_m[0], shift_m[1], distance_m]
    image = np.c_[FOCAL_PX * world[:, 0] / world[:, 2] + FRAME_W / 2,
                  FOCAL_PX * world[:, 1] / world[:, 2] + FRAME_H / 2]
    h = cv2.getPerspectiveTransform(corners.astype(np.float32), image.astype(np.float32))
    wall = np.full((FRAME_H, FRAME_W, 3), 90, np.uint8)
    return cv2.warpPerspective(photo, h, (FRAME_W, FRAME_H), dst=wall, borderMode=cv2.BORDER_TRANSPARENT)


def waved(photo: np.ndarray, frames: int, *, yaw: float, pitch: float, distance_m: float,
          fps: float = 30.0, seed: int = 0) -> list[np.ndarray]:
    """RGB frames of the photo waved by up to ±yaw and ±pitch degrees (and some roll, shift
    and to-and-fro), with noise and JPEG artefacts."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(frames):
        t = i / fps
        rgb = render(photo, yaw * np.sin(1.3 * t), pitch * np.sin(1.7 * t + 1), 8 * np.sin(0.9 * t),
                     distance_m + 0.05 * np.sin(0.5 * t), (0.03 * np.sin(t), 0.02 * np.sin(1.4 * t)))
        noisy = np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
        _, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 80])
        out.append(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))   # channel order kept: RGB in, RGB out
    return out


# (yaw, pitch, distance): a gentle wave far away up to a wild one close to the camera
ATTACKS = [(10, 5, 0.6), (25, 15, 0.45), (35, 20, 0.35), (40, 30, 0.3)]
