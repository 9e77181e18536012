"""Enrolment quality gate: one face, big enough, bright enough, sharp, looking at the camera.

A gallery holds ONE photo per person, so that photo must be good. `assess` looks at an RGB
image and the faces the detector found in it (anything with `.box` [x1, y1, x2, y2] and
`.landmarks` [5, 2] (x, y)) and returns a `Quality` whose `message` is the one thing the person
should do next; the checks run in the order a person can fix them (step in front, come closer,
light, hold still, turn). No Qt here: the enrolment dialog and the CLI share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from faceguard.vision.main_face import face_side, main_faces

# Face box side (pixels, the shorter of width and height) the live enrolment gate asks for:
# below it the chip would be upsampled from too few pixels to be a good one-shot reference.
# (Not the detector's smallest face, vision/pipeline.MIN_DETECT_FACE_PX, nor the floor for an
# enrolment photo file, gallery/enrol.MIN_PHOTO_FACE_PX.)
MIN_LIVE_FACE_PX = 80
# Mean luma (0..255) of the face region: below it the embedding gets noisy, above it washes out.
MIN_BRIGHTNESS = 60.0
MAX_BRIGHTNESS = 220.0
# Variance of the Laplacian of the face, resampled to SHARP_SIDE pixels wide so the number does
# not depend on how big the face is in the frame. Measured on 50 LFW faces (JPEG, 250 px): sharp
# ones score 8 to 145 (median about 20); the same faces blurred with sigma 3 score 2 to 4.
SHARP_SIDE = 112
MIN_SHARPNESS = 7.0
# Pose from the five landmarks: |yaw| is the nose's sideways offset from the eye midpoint in
# units of the eye distance (0 = frontal, about 0.5 = profile); roll is the eye line's angle.
MAX_YAW = 0.25
MAX_ROLL_DEG = 15.0
# Pitch: where the nose sits between the eye line (0) and the mouth line (1); frontal ≈ 0.5.
PITCH_RANGE = (0.28, 0.76)

MSG_OK = "Good: hold it there"
MSG_NO_FACE = "Look at the camera"
MSG_ONE_FACE = "One face please"
MSG_CLOSER = "Come closer"
MSG_DARK = "Too dark: turn on a light or face the window"
MSG_BRIGHT = "Too bright: move out of direct light"
MSG_STILL = "Hold still"
MSG_STRAIGHT = "Look straight at the camera"


@dataclass(frozen=True)
class Quality:
    ok: bool
    message: str                      # what the person should do next (MSG_OK when ok)
    face_index: int | None = None     # which of the given faces was judged
    face_px: float = 0.0
    brightness: float = 0.0
    sharpness: float = 0.0
    yaw: float = 0.0
    roll_deg: float = 0.0
    pitch: float = 0.5
    failed: tuple[str, ...] = field(default=())  # every check that failed, first = message

    @property
    def score(self) -> float:
        """Higher is a better enrolment photo (used to pick the best of a burst)."""
        if self.face_index is None:
            return 0.0
        frontal = max(0.0, 1.0 - abs(self.yaw) / 0.5) * max(0.0, 1.0 - abs(self.roll_deg) / 45.0)
        return float(np.log1p(self.sharpness) * frontal * min(self.face_px, 200.0) / 200.0
                     + (10.0 if self.ok else 0.0))


def luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def face_region(gray: np.ndarray, box) -> np.ndarray:
    """The face box (inset by 10 % so background and hair weigh less), clipped to the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
    h, w = gray.shape[:2]
    xa, xb = int(max(0, x1 + dx)), int(min(w, x2 - dx))
    ya, yb = int(max(0, y1 + dy)), int(min(h, y2 - dy))
    return gray[ya:yb, xa:xb]


def sharpness(region: np.ndarray) -> float:
    """Variance of the Laplacian of the region resampled to SHARP_SIDE pixels wide."""
    if region.size == 0 or min(region.shape[:2]) < 4:
        return 0.0
    h, w = region.shape[:2]
    new_h = max(4, round(h * SHARP_SIDE / w))
    interp = cv2.INTER_AREA if w > SHARP_SIDE else cv2.INTER_LINEAR
    norm = cv2.resize(region, (SHARP_SIDE, new_h), interpolation=interp)
    return float(cv2.Laplacian(norm, cv2.CV_64F).var())


def pose(landmarks) -> tuple[float, float, float]:
    """(yaw, roll in degrees, pitch) from five landmarks: eyes, nose, mouth corners."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    eye_l, eye_r, nose, mouth_l, mouth_r = lm
    eye_mid, mouth_mid = (eye_l + eye_r) / 2, (mouth_l + mouth_r) / 2
    eye_vec = eye_r - eye_l
    eye_dist = float(np.hypot(*eye_vec)) or 1e-6
    roll = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
    # Project the nose onto the face's own axes so a tilted head does not read as a turned one.
    ux = eye_vec / eye_dist
    uy = np.array([-ux[1], ux[0]])
    yaw = float(np.dot(nose - eye_mid, ux) / eye_dist)
    down = float(np.dot(mouth_mid - eye_mid, uy)) or 1e-6
    pitch = float(np.dot(nose - eye_mid, uy) / down)
    return yaw, roll, pitch


def assess(rgb: np.ndarray, faces: list) -> Quality:
    """Judge an image for enrolment given the faces detected in it.

    `face_index` in the result indexes the `faces` list as given.
    """
    gray = luma(rgb)
    all_faces = list(faces)
    faces = main_faces(all_faces)
    if len(faces) == 0:
        # A face too dark to detect is still too dark: say so rather than "look at the camera".
        mean = float(gray.mean())
        if mean < MIN_BRIGHTNESS * 0.75:
            return Quality(False, MSG_DARK, brightness=mean, failed=("brightness",))
        return Quality(False, MSG_NO_FACE, brightness=mean, failed=("face",))
    if len(faces) > 1:
        return Quality(False, MSG_ONE_FACE, failed=("one_face",))

    face = faces[0]
    index = next(i for i, f in enumerate(all_faces) if f is face)
    face_px = face_side(face)
    region = face_region(gray, face.box)
    bright = float(region.mean()) if region.size else float(gray.mean())
    sharp = sharpness(region)
    yaw, roll, pitch = pose(face.landmarks)

    failed: list[tuple[str, str]] = []
    if face_px < MIN_LIVE_FACE_PX:
        failed.append(("size", MSG_CLOSER))
    if bright < MIN_BRIGHTNESS:
        failed.append(("brightness", MSG_DARK))
    elif bright > MAX_BRIGHTNESS:
        failed.append(("brightness", MSG_BRIGHT))
    if sharp < MIN_SHARPNESS:
        failed.append(("sharpness", MSG_STILL))
    if abs(yaw) > MAX_YAW or abs(roll) > MAX_ROLL_DEG or not (PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]):
        failed.append(("pose", MSG_STRAIGHT))

    message = failed[0][1] if failed else MSG_OK
    return Quality(not failed, message, index, face_px, bright, sharp, yaw, roll, pitch,
                   tuple(k for k, _ in failed))


def assess_image(pipeline, rgb: np.ndarray) -> Quality:
    """Detect with the pipeline, then assess."""
    return assess(rgb, pipeline.detect(rgb))
