"""The wrong-PIN back-off kept in the person's row (issue 21), so that restarting the door does not
give a PIN guesser a fresh start: ``people.pin_wrong`` (wrong PINs in a row), ``pin_lockouts``
(lock-outs so far; each doubles the next) and ``pin_locked_until`` (wall-clock seconds; NULL: the
keypad is open). The counting itself is access/second_factor.py's; this is its store. The row
MAC covers the three once set (integrity.fields), so they cannot be cleared by SQL; erasing the
person erases them with the row; the right PIN clears them.
"""

from __future__ import annotations

import logging

from faceguard.errors import GalleryError
from faceguard.gallery.store import Gallery

log = logging.getLogger(__name__)


class GalleryPinBackoff:
    """The door's ``second_factor.BackoffStore`` on the gallery."""

    def __init__(self, gallery: Gallery):
        self.gallery = gallery

    def load(self, person: str) -> tuple[int, int, float | None]:
        try:
            return backoff(self.gallery, person)
        except GalleryError as exc:      # the door goes on counting in memory
            log.error("wrong-PIN back-off of %s not read: %s", person, exc)
            return 0, 0, None

    def save(self, person: str, wrong: int, lockouts: int, locked_until: float | None) -> None:
        try:
            store_backoff(self.gallery, person, wrong, lockouts, locked_until)
        except GalleryError as exc:      # the door goes on; the back-off holds in memory
            log.error("wrong-PIN back-off of %s not stored: %s", person, exc)


def backoff(gallery: Gallery, employee_id: str) -> tuple[int, int, float | None]:
    """(wrong PINs in a row, lock-outs so far, locked until (wall clock) or None) of a person;
    (0, 0, None) for an id nobody has."""
    with gallery.db.reading() as con:
        row = con.execute("SELECT pin_wrong, pin_lockouts, pin_locked_until FROM people WHERE employee_id=?",
                          (employee_id,)).fetchone()
    if row is None:
        return 0, 0, None
    return int(row[0] or 0), int(row[1] or 0), None if row[2] is None else float(row[2])


def store_backoff(gallery: Gallery, employee_id: str, wrong: int, lockouts: int, locked_until: float | None) -> None:
    with gallery.db.change() as change:
        if change.con.execute("UPDATE people SET pin_wrong=?, pin_lockouts=?, pin_locked_until=? "
                              "WHERE employee_id=?", (int(wrong), int(lockouts), locked_until,
                                                      employee_id)).rowcount:
            gallery._seal(change.con, employee_id)    # the row MAC covers it: no clearing it by SQL
