"""One enrolled person as the gallery hands it out, and the checks on what goes into a row."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from faceguard.errors import GalleryError
from faceguard.gallery.db import iso
from faceguard.vision.main_face import main_face


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    employee_id: str
    created: float
    consent_at: float
    active: bool           # may be let in now: enabled and not past valid_until
    last_seen: float | None
    model_id: str          # the model that made the stored embedding
    valid_until: float | None = None   # epoch seconds; None = no end date
    enabled: bool = True   # the manager's switch (deactivate / activate)

    @property
    def expired(self) -> bool:
        return self.valid_until is not None and self.valid_until <= time.time()

    def access_status(self) -> str:
        """In words, for the gallery list and dialog: "active", "inactive", "until 2027-03-31"
        or "expired 2027-03-31"."""
        if not self.enabled:
            return "inactive"
        if self.valid_until:
            return f"{'expired' if self.expired else 'until'} {last_day(self.valid_until)}"
        return "active"

    def to_dict(self) -> dict:
        # "active" is the stored switch, so an export re-imports it as it was set; an expiry
        # travels as its date.
        return {
            "name": self.name, "employee_id": self.employee_id, "created": iso(self.created),
            "consent_at": iso(self.consent_at), "active": self.enabled,
            "last_seen": iso(self.last_seen) if self.last_seen else None, "model_id": self.model_id,
            "valid_until": iso(self.valid_until) if self.valid_until else None,
        }


def last_day(t: float) -> str:
    """The last day a valid-until time lets the person in (it is the next day's midnight)."""
    return time.strftime("%Y-%m-%d", time.localtime(t - 1))


def check_embedding(embedding: np.ndarray) -> np.ndarray:
    e = np.asarray(embedding, dtype=np.float32)
    if e.ndim != 1 or e.size == 0 or not np.all(np.isfinite(e)):
        raise GalleryError(f"An embedding must be a finite 1-D vector, not shape {e.shape}.")
    norm = float(np.linalg.norm(e))
    if abs(norm - 1.0) > 1e-3:
        raise GalleryError(f"An embedding must have unit length (this one has norm {norm:.3f}).")
    return e


# Active now: switched on and not past an end date (the door and the duplicate rule's sizing).
ACTIVE_SQL = "active=1 AND (valid_until IS NULL OR valid_until > ?)"


def single_embedding(pipeline, rgb: np.ndarray) -> np.ndarray:
    """The embedding of a stored photo's main face (enrolment made sure it has exactly one)."""
    best = main_face(pipeline.process(rgb), rgb.shape)
    if best is None:
        raise GalleryError("The pipeline finds no face in this photo; replace the photo.")
    return np.asarray(best.embedding, np.float32)
