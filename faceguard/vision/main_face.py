"""The one rule for "the main face of a photo" (enrolment, re-embedding, identify, verify,
evaluation, training data): which of the faces the detector found is the photo's subject.

Two steps: faces much smaller than the largest are bystanders far behind (or false detections
in hair or a poster) and do not count (`main_faces`); of those that count, the subject is the
one whose landmarks sit nearest the image centre (`main_face`). Enrolment additionally insists
that exactly one face counts (two people in an enrolment photo is an error, not a choice).
"""

from __future__ import annotations

import numpy as np

# A detection smaller than this fraction of the largest face is a bystander far behind (or a
# false detection in hair or a poster), not a second person standing in front of the camera.
BYSTANDER_FRACTION = 0.4


def face_side(face) -> float:
    """The shorter side of the face box, in pixels."""
    x1, y1, x2, y2 = (float(v) for v in face.box)
    return min(x2 - x1, y2 - y1)


def main_faces(faces: list) -> list:
    """The faces that count: bystanders much smaller than the largest face are ignored."""
    if len(faces) < 2:
        return list(faces)
    largest = max(face_side(f) for f in faces)
    return [f for f in faces if face_side(f) >= BYSTANDER_FRACTION * largest]


def main_face(faces: list, shape: tuple[int, ...]):
    """The photo's subject among the faces that count (None for no faces).

    By the landmarks, not the box: a box's centre moves with how much hair, chin or occluder the
    detector includes, while the eyes, nose and mouth are what a photographer (or LFW's
    funneling) puts in the middle. Measured on the dev set: with two heads side by side
    (Gene_Robinson_0003) the box rule picked the bystander, the landmark rule the subject.
    """
    faces = main_faces(faces)
    if not faces:
        return None
    centre = np.array([shape[1] / 2, shape[0] / 2])

    def off(f) -> float:
        return float(np.sum((np.mean(f.landmarks, axis=0) - centre) ** 2))

    return min(faces, key=off)
