"""Photo check: does the face move like a head, or like a flat picture? (No extra model.)

A printed photo (or a still on a phone) moved in front of the camera is a plane: every view of
it is a homography of the first, and at door distances very nearly an affine map. A real head
is not flat: the nose tip stands about half an eye-distance in front of the eyes and mouth, so
when the head turns or nods, the nose moves across the face relative to them (parallax).

Per frame, the eyes and mouth corners are mapped by a least-squares affine fit onto a fixed
square (eyes at (∓1, −1), mouth corners at (∓1, +1)); the nose's position in that square is
`nose_position`. For a picture it stays put however the picture is moved, turned or tilted; for
a head it follows the yaw (u) and pitch (v). `MotionCheck` keeps one track's positions with
their timestamps, smooths them on a fixed time grid (the median of the samples within
`SMOOTH_S` of each grid point, against landmark jitter) and reports the spread (5th to 95th
percentile over the grid, the larger of u and v) over the last few seconds. Everything is in
seconds, not frames, so the same head movement gives nearly the same value whether the door
checks 5, 10 or 30 frames per second (a 5-frame median was 1 s of smoothing at 5 fps and
flattened real turns; benchmarks/liveness.py resamples real and attack tracks to compare).

Measured with `python benchmarks/liveness.py` (benchmarks/results/liveness.json): the
enrolment portrait rendered as a hand-held print (benchmarks/photo_attack.py), waved by up to
±40° yaw and ±30° pitch at 30–60 cm, reaches 0.07–0.22 at 30 fps and at most 0.25 resampled
to 10 or 5 fps (any frame phase); the real faces of the shared clip near enough to measure
reach 0.42–0.95 at 30 fps, at least 0.31 at 10 or 5 fps, their median over the phases within
6 % of the 30 fps value. A head turned by about 10° each way gives about 0.4
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
# The smoothing span (seconds): long enough to hold 3 samples at 5 fps (a median of 2-3 against
# a jittery frame), short enough to keep a half-second head turn (real tracks of the shared
# clip keep their 30 fps value within 10 % at 5 and 10 fps; benchmarks/results/liveness.json).
SMOOTH_S = 0.6
SPREAD = (0.05, 0.95)           # the spread: 5th to 95th percentile over the grid
GRID_S = 1 / 30                 # the time grid the spread is taken over, whatever the frame rate
MIN_NEIGHBOURS = 2              # a grid point with fewer samples near it (a gap) is left out
MIN_SPAN_S = 0.4                # less time than this observed proves nothing either way
MIN_SAMPLES = 3                 # (the old 10 frames: 0.33 s at 30 fps, 2 s at 5 fps), nor fewer
                                # samples (3 is 0.4 s at 5 fps)
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

    @property
    def span_s(self) -> float:
        """Seconds between the first and the last sample kept."""
        return self._seen[-1][0] - self._seen[0][0] if self._seen else 0.0

    def motion(self) -> float:
        """Spread of the smoothed nose position (0 until MIN_SPAN_S seconds and MIN_SAMPLES
        samples are in)."""
        if len(self._seen) < MIN_SAMPLES or self.span_s < MIN_SPAN_S:
            return 0.0
        smooth = smoothed(np.array([t for t, _ in self._seen]), np.array([p for _, p in self._seen]))
        if len(smooth) == 0:
            return 0.0
        lo, hi = np.quantile(smooth, SPREAD, axis=0)
        return float(np.max(hi - lo))


def smoothed(times: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """The nose positions on a grid of GRID_S from the first to the last time: at each grid
    point the median of the samples within SMOOTH_S / 2 of it; points with fewer than
    MIN_NEIGHBOURS samples near them (a gap where the face was not measured) are left out, so
    a lone frame after a gap cannot stand for the whole gap."""
    grid = np.arange(times[0], times[-1] + 1e-9, GRID_S)
    # Each grid point's neighbours are a run of the (time-ordered) samples: [first, end).
    first = np.searchsorted(times, grid - SMOOTH_S / 2 - 1e-6, side="left")
    end = np.searchsorted(times, grid + SMOOTH_S / 2 + 1e-6, side="right")
    count = end - first
    keep = count >= MIN_NEIGHBOURS
    if not keep.any():
        return np.empty((0, 2))
    first, count = first[keep], count[keep]
    # Gather each run into a row padded with +inf, sort, and take the middle (a row median).
    cols = np.arange(int(count.max()))
    idx = np.minimum(first[:, None] + cols, len(times) - 1)
    rows = np.where((cols < count[:, None])[:, :, None], uv[idx], np.inf)
    rows.sort(axis=1)
    lo = ((count - 1) // 2)[:, None, None]
    hi = (count // 2)[:, None, None]
    return (np.take_along_axis(rows, np.broadcast_to(lo, (len(count), 1, 2)), 1)
            + np.take_along_axis(rows, np.broadcast_to(hi, (len(count), 1, 2)), 1))[:, 0, :] / 2
