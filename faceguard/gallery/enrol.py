"""Enrolment: one photo of one consenting person → a gallery entry.

The checks run cheapest first and nothing is written until all pass: name and employee id,
consent, the photo gate (quality.assess, the same the enrolment dialog shows: one face, at
least 80 px, lit, sharp, frontal), and no existing person within the threshold (the same person
enrolled twice under two ids would make the door's answer depend on chance). The duplicate
search runs inside the write transaction, so two enrolments of one face at the same moment
cannot both pass it. Replacing a photo goes through the same gate and duplicate check.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from faceguard.errors import GalleryError, NoFaceError
from faceguard.gallery.ids import same_id
from faceguard.gallery.person import Person
from faceguard.gallery.recognise import bring_up_to_date, gallery_matcher
from faceguard.gallery.store import Gallery
from faceguard.vision.quality import assess, photo_message

log = logging.getLogger(__name__)

class DuplicatePersonError(GalleryError):
    """The face is within the threshold of someone already enrolled (named in the message).
    ``summary`` is the finding without the advice, for a caller that names its own override
    (the CLI's --force, the dialog's question)."""

    def __init__(self, summary: str, employee_id: str, name: str, distance: float,
                 advice: str = "If they are different people, enrol anyway with the duplicate override."):
        super().__init__(f"{summary} {advice}")
        self.summary = summary
        self.employee_id = employee_id
        self.name = name
        self.distance = distance


def check_photo(pipeline, rgb: np.ndarray):
    """The one FaceResult of a photo that passes the enrolment gate; NoFaceError saying what is
    wrong with the photo otherwise (quality.photo_message: "the photo is blurred", …)."""
    results = pipeline.process(rgb)
    q = assess(rgb, results)
    if not q.ok:
        raise NoFaceError(f"This photo cannot be used: {photo_message(q)}.")
    if len(results) > 1:
        log.info("Ignored %d small background face(s) in the enrolment photo", len(results) - 1)
    return results[q.face_index]


def single_face(pipeline, rgb: np.ndarray):
    """Kept for callers of the old name: the gate of ``check_photo``."""
    return check_photo(pipeline, rgb)


def _duplicate_check(gallery: Gallery, pipeline, embedding, threshold, but: str | None = None):
    """A check() for the write transaction: DuplicatePersonError when the face is someone
    enrolled (active or not; ``but`` = the person whose photo is being replaced)."""
    def check() -> None:
        near = gallery_matcher(gallery, pipeline, threshold, include_inactive=True).nearest(embedding)
        if near.accepted and not (but is not None and same_id(str(near.id), but)):
            raise DuplicatePersonError(
                f"This face looks like {near.name} (employee id {near.id}), who is already "
                f"enrolled ({near.explain()}).", str(near.id), near.name or "", near.distance)
    return check


def enrol(gallery: Gallery, pipeline, rgb: np.ndarray, name: str, employee_id: str, consent: bool,
          threshold: float | None = None, override_duplicate: bool = False, face=None) -> Person:
    """Enrol one person from one photo (RGB uint8); returns the new Person.

    Raises GalleryError (empty name/id, no consent, id taken in any letter case), NoFaceError
    (the photo fails the gate) or DuplicatePersonError (the face matches someone enrolled,
    unless ``override_duplicate``). The duplicate check is the door's own rule
    (``gallery_matcher``: same scoring rule and threshold; ``threshold`` is the user's setting,
    None = calibrated) over everyone enrolled, active or not; stored photos made by another
    model are re-embedded first.
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
        raise GalleryError(f"Employee id '{employee_id}' is already enrolled as {existing.name}"
                           f"{'' if existing.employee_id == employee_id else ' (' + existing.employee_id + ')'}. "
                           "Choose another id, or replace that person's photo.")
    if face is None:     # else the caller chose and judged the face (bulk: the main-face rule)
        face = check_photo(pipeline, rgb)
    bring_up_to_date(gallery, pipeline)    # writes: before the transaction the check runs in
    check = None if override_duplicate else _duplicate_check(gallery, pipeline, face.embedding, threshold)
    if override_duplicate:
        log.warning("Enrolling %s without the duplicate check (override).", employee_id)
    return gallery.add_person(name, employee_id, rgb, face.embedding, pipeline.model_id,
                              consent_at=time.time(), check=check)


def replace_photo(gallery: Gallery, pipeline, employee_id: str, rgb: np.ndarray,
                  threshold: float | None = None, override_duplicate: bool = False) -> Person:
    """Give an enrolled person a new photo: the enrolment gate, and the face must not be
    someone else enrolled (DuplicatePersonError, unless ``override_duplicate``)."""
    person = gallery.person(employee_id)
    if person is None:
        raise GalleryError(f"No person with employee id '{employee_id}' is enrolled.")
    face = check_photo(pipeline, rgb)
    bring_up_to_date(gallery, pipeline)
    check = None if override_duplicate else _duplicate_check(
        gallery, pipeline, face.embedding, threshold, but=person.employee_id)
    return gallery.replace_photo(person.employee_id, rgb, face.embedding, pipeline.model_id, check=check)
