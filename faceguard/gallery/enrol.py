"""Enrolment: one photo of one consenting person → a gallery entry.

The checks run cheapest first and nothing is written until all pass: name and employee id,
consent, exactly one face of usable size, and no existing person within the threshold (the
same person enrolled twice under two ids would make the door's answer depend on chance).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from faceguard.errors import GalleryError, NoFaceError
from faceguard.gallery.recognise import gallery_matcher
from faceguard.gallery.store import Gallery, Person
from faceguard.vision.main_face import face_side, main_faces

log = logging.getLogger(__name__)

MIN_PHOTO_FACE_PX = 60   # the smaller side of the face box; below this the embedding is unreliable


class DuplicatePersonError(GalleryError):
    """The face is within the threshold of someone already enrolled (named in the message)."""

    def __init__(self, message: str, employee_id: str, name: str, distance: float):
        super().__init__(message)
        self.employee_id = employee_id
        self.name = name
        self.distance = distance


def single_face(pipeline, rgb: np.ndarray):
    """The one FaceResult in an enrolment photo; NoFaceError for none, several or too small.

    Faces smaller than MIN_PHOTO_FACE_PX are background (a poster, a passer-by far behind) and do not
    count as a second person; when they are all there is, the message says "too small".
    """
    results = pipeline.process(rgb)
    if not results:
        raise NoFaceError("No face was found in the photo. Use a well-lit, frontal photo in which "
                          "the face is clearly visible.")
    # Bystanders much smaller than the main face (and detector false positives in hair or
    # background, which are small too) are not a second person: the same rule as the live gate.
    usable = [r for r in main_faces(results) if face_side(r) >= MIN_PHOTO_FACE_PX]
    if len(usable) > 1:
        raise NoFaceError(f"The photo shows {len(usable)} faces; an enrolment photo must show "
                          "exactly one person. Crop it or take another.")
    if not usable:
        side = max(face_side(r) for r in results)
        raise NoFaceError(f"The face is too small ({side:.0f} px across; at least {MIN_PHOTO_FACE_PX} px "
                          "needed). Move closer to the camera or use a larger photo.")
    if len(results) > 1:
        log.info("Ignored %d small background face(s) in the enrolment photo", len(results) - 1)
    return usable[0]


def enrol(gallery: Gallery, pipeline, rgb: np.ndarray, name: str, employee_id: str, consent: bool,
          threshold: float | None = None, override_duplicate: bool = False) -> Person:
    """Enrol one person from one photo (RGB uint8); returns the new Person.

    Raises GalleryError (empty name/id, no consent, id taken), NoFaceError (no face, several
    faces, face too small) or DuplicatePersonError (the face matches someone enrolled, unless
    ``override_duplicate``). The duplicate check is the door's own rule (``gallery_matcher``:
    same scoring rule and threshold; ``threshold`` is the user's setting, None = calibrated) over
    everyone enrolled, active or not; stored photos made by another model are re-embedded first.
    """
    name = (name or "").strip()
    employee_id = (employee_id or "").strip()
    if not name:
        raise GalleryError("The name is empty; enter the person's name.")
    if not employee_id:
        raise GalleryError("The employee id is empty; enter the person's employee id.")
    if not consent:
        raise GalleryError(f"{name} has not given consent; FaceGuard stores a face only with the "
                           "person's consent.")
    existing = gallery.person(employee_id)
    if existing:
        raise GalleryError(f"Employee id '{employee_id}' is already enrolled as {existing.name}. "
                           "Choose another id, or replace that person's photo.")
    face = single_face(pipeline, rgb)
    near = gallery_matcher(gallery, pipeline, threshold, include_inactive=True).nearest(face.embedding)
    if near.accepted:
        message = (f"This face looks like {near.name} (employee id {near.id}), who is already "
                   f"enrolled ({near.explain()}).")
        if not override_duplicate:
            raise DuplicatePersonError(message + " If they are different people, enrol again with "
                                       "the duplicate override.", str(near.id), near.name or "",
                                       near.distance)
        log.warning("%s Enrolled anyway (override).", message)
    return gallery.add_person(name, employee_id, rgb, face.embedding, pipeline.model_id,
                              consent_at=time.time())


def replace_photo(gallery: Gallery, pipeline, employee_id: str, rgb: np.ndarray) -> Person:
    """Give an enrolled person a new photo (same face checks as enrolment)."""
    if gallery.person(employee_id) is None:
        raise GalleryError(f"No person with employee id '{employee_id}' is enrolled.")
    face = single_face(pipeline, rgb)
    return gallery.replace_photo(employee_id, rgb, face.embedding, pipeline.model_id)
