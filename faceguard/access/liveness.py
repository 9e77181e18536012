"""Photo check: does the face move like a head, or like a flat picture? (No extra model.)

A printed photo (or a still on a phone) moved in front of the camera is a plane: every view of
it is a homography of the first, and at door distances very nearly an affine map. A real head
is not flat: the nose tip stands about half an eye-distance in front of the eyes and mouth, so
when the head turns or nods, the nose moves across the face relative to them (parallax).

Per frame, the eyes and mouth corners are mapped by a least-squares affine fit onto a fixed
square (eyes at (∓1, −1), mouth corners at (∓1, +1)); the nose's position in that square is
`nose_position`. For a picture it stays put however the picture is moved, turned or tilted; for
a head it follows the yaw (u) and pitch (v). `MotionCheck` keeps one track's positions, takes a
5-frame running median against landmark jitter, and reports the spread (5th to 95th
percentile, the larger of u and v) over the last few seconds.

Measured with `python benchmarks/liveness.py` (benchmarks/results/liveness.json): the
enrolment portrait rendered as a hand-held print (benchmarks/photo_attack.py), waved by up to
±40° yaw and ±30° pitch at 30–60 cm, reaches 0.08–0.23; the real faces of the shared clip near
enough to measure reach 0.49–1.15. A head turned by about 10° each way gives about 0.4
(geometry: nose depth ≈ 1.1 half-face-widths × 2·sin 10°). The default bar, 0.3
(settings.DEFAULT_MIN_MOTION), sits between. Not caught here: a video of the person replayed
on a screen (challenge.py asks for a movement it cannot follow), a 3-D mask.
A person who stands perfectly still is asked to turn their head a little (the door says so).
"""

from __future__ import annotations

from collections import deque

import numpy as np

EYES_AND_MOUTH = [0, 1, 3, 4]   # landmark order: eye, eye, nose, mouth corner, mouth corner
NOSE = 2
_SQUARE = np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
SMOOTH_FRAMES = 5
MIN_FRAMES = 10                 # fewer frames than this prove nothing either way
# Faces farther away than the door (eyes closer than this, i.e. a face under about 60 px wide)
# are not measured: their landmarks jitter by a larger part of the face.
MIN_EYE_DISTANCE_PX = 24.0


def nose_position(landmarks: np.ndarray) -> np.ndarray:
    """(u, v): where the nose sits in the square spanned by the eyes and mouth corners.

    Invariant to any affine motion of the face in the image (shift, turn, scale, shear), so a
    flat picture gives the same value in every frame; a head turning or nodding does not.
    """
    lm = np.asarray(landmarks, np.float64)
    design = np.hstack([lm[EYES_AND_MOUTH], np.ones((4, 1))])
    affine, *_ = np.linalg.lstsq(design, _SQUARE, rcond=None)
    return np.array([lm[NOSE, 0], lm[NOSE, 1], 1.0]) @ affine


class MotionCheck:
    """One tracked face's nose positions over the last `window_s` seconds."""

    def __init__(self, window_s: float = 3.0):
        self.window_s = window_s
        self._seen: deque[tuple[float, np.ndarray]] = deque()

    def add(self, t: float, landmarks: np.ndarray) -> bool:
        """Record one frame; False when the face is too far away to be measured."""
        lm = np.asarray(landmarks, np.float64)
        if np.linalg.norm(lm[1] - lm[0]) < MIN_EYE_DISTANCE_PX:
            return False
        self._seen.append((t, nose_position(lm)))
        while self._seen and t - self._seen[0][0] > self.window_s:
            self._seen.popleft()
        return True

    @property
    def frames(self) -> int:
        return len(self._seen)

    def motion(self) -> float:
        """Spread of the smoothed nose position (0 until MIN_FRAMES frames are in)."""
        if len(self._seen) < MIN_FRAMES:
            return 0.0
        uv = np.array([p for _, p in self._seen])
        smooth = np.median(np.lib.stride_tricks.sliding_window_view(uv, SMOOTH_FRAMES, axis=0), axis=-1)
        lo, hi = np.quantile(smooth, [0.05, 0.95], axis=0)
        return float(np.max(hi - lo))
