"""IoU tracking of faces across frames, so each person's frames are counted separately.

Every face box in a frame is given the id of the track it continues, or a new id. A track
predicts where its box will be next from its recent motion (constant velocity), and detections
are matched to those predictions by IoU, best pair first (greedy), never below ``min_iou``.
Predicting the motion is what keeps two people apart when they walk past each other: at the
moment their boxes overlap, each detection still lies nearer its own track's prediction.
A track that has no detection for more than ``MAX_MISSED_S`` seconds ends (more than
``max_missed`` frames when the frames have no times); its id is never reused. In seconds, because
a door counts a visit left during its photo check as a try: a face lost for 0.2 s would end its
track at 30 frames a second (after 5 frames) but not at 5.

Given the frames' timestamps (``update(boxes, t)``), the IoU floor is judged per time, not per
frame: a face moves further between two frames 0.2 s apart (a PC checking 5 frames a second)
than between two 1/30 s apart, so the floor ``min_iou`` holds for gaps up to ``FLOOR_GAP_S`` and
falls in proportion beyond it (to a third of it at most). On the shared clip the singer's face,
seen at 5 frames a second, otherwise broke into 2-3 tracks (IoU 0.2-0.3 between frames as he
gestures) where 30 and 10 frames a second keep one, and every piece started its photo check anew.

Boxes are [x1, y1, x2, y2] in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# How much of the newest frame-to-frame motion enters the velocity estimate; the rest is the
# previous estimate, which smooths detector jitter.
_VELOCITY_GAIN = 0.6
MAX_MISSED_S = 0.5  # a track not seen for longer than this has ended (5 frames at 10 frames/s)
FLOOR_GAP_S = 0.1   # up to this gap between a track's frames (10 frames/s) the floor is min_iou
MIN_FLOOR_SHARE = 1 / 3   # and never below this part of it, however long the gap


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` [A, 4] with every box in ``b`` [B, 4]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def distinct_faces(boxes: Sequence[Sequence[float] | np.ndarray] | np.ndarray, scores: Sequence[float],
                   max_iou: float = 0.5) -> list[int]:
    """Indices of the boxes to keep when the detector found one face twice (two boxes that
    overlap by more than ``max_iou``): the higher-scoring box of each such pair stays, so one
    face makes one track and one decision. Order of the kept boxes is preserved."""
    det = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ious = iou_matrix(det, det)
    keep: list[int] = []
    for i in sorted(range(len(det)), key=lambda k: -float(scores[k])):
        if all(ious[i, j] <= max_iou for j in keep):
            keep.append(i)
    return sorted(keep)


@dataclass
class Track:
    id: int
    box: np.ndarray                     # last detected box
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # px per frame, per edge
    missed: int = 0                     # frames since the last detection
    hits: int = 1                       # frames with a detection
    seen_at: float | None = None        # the last detection's time (when the frames have times)

    def predicted(self) -> np.ndarray:
        """Where the box should be in the next frame."""
        return self.box + self.velocity * (self.missed + 1)


class IouTracker:
    def __init__(self, min_iou: float = 0.3, max_missed: int = 5):
        if not 0.0 < min_iou <= 1.0:
            raise ValueError("min_iou must be in (0, 1]")
        if max_missed < 0:
            raise ValueError("max_missed must be >= 0")
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: dict[int, Track] = {}
        self.ended: list[int] = []          # ids of tracks that ended in the last update
        self._next_id = 1

    def update(self, boxes: Sequence[Sequence[float]] | np.ndarray, t: float | None = None) -> list[int]:
        """Assign a track id to each box of this frame (same order as ``boxes``); ``t``: the
        frame's time in seconds (the IoU floor then follows the time since each track's last
        detection)."""
        det = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        track_ids = list(self.tracks)
        assigned: list[int | None] = [None] * len(det)
        if track_ids and len(det):
            predicted = np.stack([self.tracks[t].predicted() for t in track_ids])
            ious = iou_matrix(predicted, det)
            floors = [self._floor(self.tracks[tid], t) for tid in track_ids]
            # Greedy: take the highest remaining IoU pair, down to each track's floor.
            used_tracks: set[int] = set()
            for flat in np.argsort(-ious, axis=None, kind="stable"):
                ti, di = np.unravel_index(flat, ious.shape)
                if ious[ti, di] < floors[ti]:
                    continue
                if assigned[di] is None and ti not in used_tracks:
                    assigned[di] = track_ids[ti]
                    used_tracks.add(int(ti))
            for di, tid in enumerate(assigned):
                if tid is not None:
                    self._continue(self.tracks[tid], det[di], t)
        self.ended = []
        for tid in track_ids:
            if tid not in assigned:
                track = self.tracks[tid]
                track.missed += 1
                if self._gone(track, t):
                    del self.tracks[tid]
                    self.ended.append(tid)
        for di in range(len(det)):
            if assigned[di] is None:
                tid = self._next_id
                self._next_id += 1
                self.tracks[tid] = Track(tid, det[di].copy(), seen_at=t)
                assigned[di] = tid
        return [int(t) for t in assigned if t is not None]   # every box has an id by now

    def split(self, tid: int) -> int:
        """Another face now stands where track ``tid`` was (the Decider saw the identity change):
        give it a new id, keeping the box and motion, so it is decided on its own."""
        track = self.tracks.pop(tid)
        track.id, self._next_id = self._next_id, self._next_id + 1
        track.hits = 1
        self.tracks[track.id] = track
        return track.id

    def reset(self) -> None:
        self.ended = list(self.tracks)
        self.tracks.clear()

    def _gone(self, track: Track, t: float | None) -> bool:
        if t is None or track.seen_at is None:
            return track.missed > self.max_missed
        return t - track.seen_at > MAX_MISSED_S

    def _floor(self, track: Track, t: float | None) -> float:
        """The least IoU that continues ``track`` in a frame at ``t``."""
        if t is None or track.seen_at is None or t - track.seen_at <= FLOOR_GAP_S:
            return self.min_iou
        return self.min_iou * max(FLOOR_GAP_S / (t - track.seen_at), MIN_FLOOR_SHARE)

    @staticmethod
    def _continue(track: Track, box: np.ndarray, t: float | None) -> None:
        step = (box - track.box) / (track.missed + 1)
        track.velocity = _VELOCITY_GAIN * step + (1 - _VELOCITY_GAIN) * track.velocity
        track.box = box.copy()
        track.missed = 0
        track.hits += 1
        track.seen_at = t
