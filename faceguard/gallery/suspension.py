"""Face entry suspended for a person after repeated failed photo checks (access/attempts.py),
kept in the person's row (``people.face_suspended_until``, wall-clock seconds) so a restart of
the door does not lift it. The manager lifts it early: ``faceguard gallery resume EMPID`` or the
gallery dialog's "Resume face entry". Erasing the person erases it with their row.
"""

from __future__ import annotations

import logging
import time

from faceguard.errors import GalleryError
from faceguard.gallery.store import Gallery

log = logging.getLogger(__name__)


class GallerySuspensions:
    """The door's ``attempts.SuspensionStore`` on the gallery."""

    def __init__(self, gallery: Gallery):
        self.gallery = gallery

    def suspended_until(self, person: str) -> float | None:
        return suspended_until(self.gallery, person)

    def suspend(self, person: str, until: float) -> None:
        try:
            suspend(self.gallery, person, until)
        except GalleryError as exc:      # the door goes on; the suspension holds in memory
            log.error("face entry suspension of %s not stored: %s", person, exc)


def suspended_until(gallery: Gallery, employee_id: str, now: float | None = None) -> float | None:
    """When ``employee_id``'s face entry resumes (wall clock), or None when it is not suspended."""
    with gallery.db.reading() as con:
        row = con.execute("SELECT face_suspended_until FROM people WHERE employee_id=?",
                          (employee_id,)).fetchone()
    if row is None or row[0] is None or row[0] <= (time.time() if now is None else now):
        return None
    return float(row[0])


def suspend(gallery: Gallery, employee_id: str, until: float) -> None:
    with gallery.db.change() as change:
        change.con.execute("UPDATE people SET face_suspended_until=? WHERE employee_id=?",
                           (until, employee_id))
        gallery._seal(change.con, employee_id)    # the row MAC covers it: no lifting it by SQL
    log.warning("face entry of %s suspended until %s", employee_id, time.ctime(until))


def resume(gallery: Gallery, employee_id: str) -> str:
    """Lift a suspension (the manager's decision); returns the id as stored. GalleryError when
    nobody has this id."""
    person = gallery.person(employee_id)
    if person is None:
        raise GalleryError(f"No person with employee id '{employee_id}' is enrolled.")
    with gallery.db.change() as change:
        change.con.execute("UPDATE people SET face_suspended_until=NULL WHERE employee_id=?",
                           (person.employee_id,))
        gallery._seal(change.con, person.employee_id)
    log.info("face entry of %s resumed by the manager", person.employee_id)
    return person.employee_id


def suspended_people(gallery: Gallery, now: float | None = None) -> dict[str, float]:
    """Every person whose face entry is suspended now: employee id → until (wall clock)."""
    now = time.time() if now is None else now
    with gallery.db.reading() as con:
        rows = con.execute("SELECT employee_id, face_suspended_until FROM people "
                           "WHERE face_suspended_until > ?", (now,)).fetchall()
    return {r[0]: float(r[1]) for r in rows}
