"""The second factor's schema step (issue 21), apart from pins.py so that db.py can import it
without importing anything above the database."""

from __future__ import annotations

import sqlite3

DEFAULT_AUTH_MODE = "grey-pin"


def second_factor_v5(con: sqlite3.Connection) -> None:
    """Schema step: the PIN (sealed scrypt hash) and auth mode per person, and learned
    templates (extra embeddings from PIN-confirmed visits, sealed with the person's data key)."""
    con.execute("ALTER TABLE people ADD COLUMN pin BLOB")
    con.execute(f"ALTER TABLE people ADD COLUMN auth_mode TEXT NOT NULL DEFAULT '{DEFAULT_AUTH_MODE}'")
    con.execute("""CREATE TABLE templates (
        id        INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL,        -- people.id
        created   REAL NOT NULL,
        model_id  TEXT NOT NULL,
        embedding BLOB NOT NULL,           -- sealed float32 bytes
        snapshot  BLOB)                    -- sealed JPEG of the visit's face, or NULL""")
    con.execute("CREATE INDEX templates_person ON templates (person_id)")


def face_suspension_v7(con: sqlite3.Connection) -> None:
    """Face entry suspended after repeated failed photo checks (access/attempts.py), until this
    wall-clock time: NULL = not suspended. In the person's row, so erasing them erases it."""
    con.execute("ALTER TABLE people ADD COLUMN face_suspended_until REAL")


def pin_backoff_v9(con: sqlite3.Connection) -> None:
    """The wrong-PIN back-off per person (access/second_factor.py, gallery/pin_backoff.py): wrong
    PINs in a row, lock-outs so far (each doubles the next), and the wall-clock time the keypad
    opens again (NULL: not locked). In the person's row, so a restart keeps it and erasing the
    person erases it; the row MAC covers it once it is set (integrity.fields)."""
    con.execute("ALTER TABLE people ADD COLUMN pin_wrong INTEGER NOT NULL DEFAULT 0")
    con.execute("ALTER TABLE people ADD COLUMN pin_lockouts INTEGER NOT NULL DEFAULT 0")
    con.execute("ALTER TABLE people ADD COLUMN pin_locked_until REAL")
