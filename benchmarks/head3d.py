"""A textured 3-D head for the challenge benchmark and tests: the enrolment photo laid on a
simple face surface (an ellipsoid with a nose), turned by yaw and pitch and seen by a camera.

Unlike the flat print of photo_attack.py, this surface has depth where a face has it (the nose
tip stands about 0.6 eye-distances in front of the eyes, the cheeks fall back towards the
ears), so turning it moves the nose across the face the way a real head does. It is a
stand-in for a person who follows the door's instructions; real people must confirm the
numbers it gives (say so wherever they are quoted).
"""

from __future__ import annotations

import cv2
import numpy as np

FRAME_W, FRAME_H = 640, 480


class Head:
    def __init__(self, photo: np.ndarray, landmarks: np.ndarray, face_width_px: float = 200.0):
        """``photo`` RGB, ``landmarks`` its 5 detector points (eyes, nose, mouth corners);
        the head is scaled so the face is about ``face_width_px`` wide in the frame."""
        lm = np.asarray(landmarks, np.float64)
        eye_dist = float(np.linalg.norm(lm[1] - lm[0]))
        scale = face_width_px / (2.2 * eye_dist)
        self.photo = cv2.resize(photo[..., :3], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        lm = lm * scale
        eye_dist *= scale
        h, w = self.photo.shape[:2]
        centre = np.array([(lm[0, 0] + lm[1, 0]) / 2, (lm[0, 1] + lm[3, 1]) / 2 + 0.1 * eye_dist])
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        rx, ry = 1.25 * eye_dist, 1.7 * eye_dist            # the face oval
        r2 = ((xs - centre[0]) / rx) ** 2 + ((ys - centre[1]) / ry) ** 2
        depth = 1.1 * eye_dist * np.sqrt(np.clip(1.0 - r2, 0.0, None))
        nose = np.exp(-(((xs - lm[2, 0]) ** 2 + (ys - lm[2, 1] + 0.25 * eye_dist) ** 2)
                        / (2 * (0.28 * eye_dist) ** 2)))
        depth += 0.6 * eye_dist * nose * (r2 < 1)
        self.points = np.stack([xs - centre[0], ys - centre[1], depth], axis=-1).reshape(-1, 3)
        self.colours = self.photo.reshape(-1, 3)
        self.pivot_depth = -0.9 * eye_dist                  # the neck turns about a point behind the face

    def render(self, yaw_deg: float, pitch_deg: float = 0.0, *, shift=(0.0, 0.0)) -> np.ndarray:
        """The head turned by yaw (positive: to the person's LEFT, nose to image right) and pitch
        (positive: chin up), centred in a 640×480 grey frame."""
        y, p = np.radians([yaw_deg, pitch_deg])
        ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
        rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
        pts = self.points - [0, 0, self.pivot_depth]
        pts = pts @ (ry @ rx).T + [0, 0, self.pivot_depth]
        x = np.round(pts[:, 0] + FRAME_W / 2 + shift[0]).astype(np.int64)
        yy = np.round(pts[:, 1] + FRAME_H / 2 + shift[1]).astype(np.int64)
        ok = (x >= 0) & (x < FRAME_W) & (yy >= 0) & (yy < FRAME_H)
        order = np.argsort(pts[ok, 2], kind="stable")       # far first: the nearest point wins
        frame = np.full((FRAME_H, FRAME_W, 3), 90, np.uint8)
        written = np.zeros((FRAME_H, FRAME_W), np.uint8)
        xi, yi = x[ok][order], yy[ok][order]
        frame[yi, xi] = self.colours[ok][order]
        written[yi, xi] = 1
        # Splatting leaves pinholes where the surface stretches; fill them from their neighbours.
        holes = ((cv2.dilate(written, np.ones((5, 5), np.uint8)) > 0) & (written == 0)).astype(np.uint8)
        return cv2.inpaint(frame, holes, 2, cv2.INPAINT_TELEA)


class Follower:
    """A person at the door who follows the moving dot with their nose: with a human lag
    (0.2-0.6 s), their own amplitude (degrees per marker unit), a little noise, and optionally
    their natural fidgeting (``fidget(t) -> (yaw, pitch)`` in degrees, e.g. the shared clip's
    real head movement). Sees each new path (``see``) the moment the door shows it."""

    def __init__(self, rng: np.random.Generator, lag_s: tuple[float, float] = (0.2, 0.6),
                 deg_per_unit: tuple[float, float] = (12.0, 20.0), noise_deg: float = 0.4,
                 fidget=None):
        self.rng = rng
        self.lag = float(rng.uniform(*lag_s))
        self.gain = float(rng.uniform(*deg_per_unit))
        self.noise = noise_deg
        self.fidget = fidget
        self.paths: list = []                  # challenge.TargetPath, in the order shown

    def see(self, path) -> None:
        if path is not None and (not self.paths or self.paths[-1].shown_at != path.shown_at):
            self.paths.append(path)

    def pose(self, t: float) -> tuple[float, float]:
        """(yaw, pitch) in degrees: yaw > 0 is the person's left, pitch > 0 chin up. The dot's
        x grows to the person's right and its y downwards, so both turn the other way."""
        yaw, pitch = self.rng.normal(0.0, self.noise, 2)
        if self.fidget is not None:
            fy, fp = self.fidget(t)
            yaw, pitch = yaw + fy, pitch + fp
        seen = [p for p in self.paths if p.shown_at <= t - self.lag]
        if seen:
            x, y = seen[-1].position(t - self.lag)
            yaw, pitch = yaw - self.gain * x, pitch - self.gain * y
        return float(yaw), float(pitch)


class PoseTable:
    """The 3-D head rendered on a grid of poses and run through the real pipeline once per
    grid point (``build``); ``face(yaw, pitch)`` then gives the pipeline's box and landmarks
    interpolated bilinearly between the grid points (they change smoothly with the pose) and
    the nearest point's embedding. Rendering costs about 0.5 s a frame on a busy CPU, so
    closed-loop benchmarks over many seeds read the table instead of rendering every frame."""

    def __init__(self, yaws: np.ndarray, pitches: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray,
                 embeddings: np.ndarray):
        self.yaws, self.pitches = yaws, pitches
        self.boxes, self.landmarks, self.embeddings = boxes, landmarks, embeddings

    @classmethod
    def build(cls, head: Head, pipeline, yaw_max: float = 44.0, pitch_max: float = 28.0,
              step: float = 2.0) -> PoseTable:
        # (a follower turns up to 1.5 marker units × 20° = 30°, plus the fidget; beyond about
        # 42° of yaw and 26° of pitch the rendered head's landmarks no longer move: the edge)
        yaws = np.arange(-yaw_max, yaw_max + 1e-9, step)
        pitches = np.arange(-pitch_max, pitch_max + 1e-9, step)
        boxes = np.full((len(yaws), len(pitches), 4), np.nan)
        lms = np.full((len(yaws), len(pitches), 5, 2), np.nan)
        embs = np.zeros((len(yaws), len(pitches), 512), np.float32)
        for i, y in enumerate(yaws):
            for j, p in enumerate(pitches):
                faces = pipeline.process(head.render(float(y), float(p)))
                if faces:
                    f = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
                    boxes[i, j], lms[i, j] = f.box, f.landmarks
                    embs[i, j, :len(f.embedding)] = f.embedding
        return cls(yaws, pitches, boxes, lms, embs[..., :len(f.embedding)])

    def save(self, path) -> None:
        np.savez_compressed(path, yaws=self.yaws, pitches=self.pitches, boxes=self.boxes,
                            landmarks=self.landmarks, embeddings=self.embeddings)

    @classmethod
    def load(cls, path) -> PoseTable:
        z = np.load(path)
        return cls(z["yaws"], z["pitches"], z["boxes"], z["landmarks"], z["embeddings"])

    def face(self, yaw: float, pitch: float):
        """(box, landmarks, embedding) of the head at this pose, or None where the detector
        found no face at a neighbouring grid point."""
        fy = float(np.clip((yaw - self.yaws[0]) / (self.yaws[1] - self.yaws[0]), 0, len(self.yaws) - 1.001))
        fp = float(np.clip((pitch - self.pitches[0]) / (self.pitches[1] - self.pitches[0]), 0,
                           len(self.pitches) - 1.001))
        i, j = int(fy), int(fp)
        a, b = fy - i, fp - j
        w = np.array([[(1 - a) * (1 - b), (1 - a) * b], [a * (1 - b), a * b]])
        cells = (slice(i, i + 2), slice(j, j + 2))
        if np.isnan(self.boxes[cells]).any():
            return None
        box = np.einsum("ij,ijk->k", w, self.boxes[cells])
        lm = np.einsum("ij,ijkl->kl", w, self.landmarks[cells])
        return box, lm, self.embeddings[int(round(fy)), int(round(fp))]
