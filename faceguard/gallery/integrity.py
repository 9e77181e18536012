"""The local gallery's row MACs and tombstones (rowmac.py says why and how they are built).

Every write to a person's access-deciding fields ends with ``seal(con, key, person_id)`` inside
the same transaction: it draws the next change number (meta 'change_no') and stores the row's
MAC. ``problem(key, row, tombstones)`` says why a row must not be matched (None: it may be).
An erasure calls ``bury``: an authenticated tombstone of the normalised id at a change number
above every copy of the row that ever existed.

A gallery from before row MACs is sealed once, when it is first opened by this version (the
rows are trusted as they are then); from then on a row without a valid MAC is refused.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from faceguard.gallery import rowmac
from faceguard.gallery.ids import normalise_id

log = logging.getLogger(__name__)

COLUMNS = ("id, employee_id, name, active, valid_until, photo_file, photo_digest, embedding, "
           "model_id, data_key, change_no, pin, auth_mode, face_suspended_until, credential, "
           "pin_wrong, pin_lockouts, pin_locked_until, row_mac")
DAMAGED = "its row was damaged or edited by hand (its MAC does not verify); it is left out"
ERASED = "it was erased, and this is an older copy of the row (a tombstone refuses it)"


def add_row_macs_v5(con: sqlite3.Connection) -> None:
    """Schema step: row MACs, change numbers, photo digests, and tombstones of erased ids."""
    con.execute("ALTER TABLE people ADD COLUMN row_mac BLOB")
    con.execute("ALTER TABLE people ADD COLUMN change_no INTEGER NOT NULL DEFAULT 0")
    con.execute("ALTER TABLE people ADD COLUMN photo_digest TEXT")
    con.execute("CREATE TABLE tombstones (norm_id TEXT PRIMARY KEY, change_no INTEGER NOT NULL, "
                "mac BLOB NOT NULL)")


def fields(row) -> dict:
    """The MAC'd fields of a people row read with ``COLUMNS``. To cover a new access-deciding
    column (a PIN hash, an auth mode): add it to COLUMNS before ``row_mac`` (which stays last)
    and to the dict here (a blob as ``rowmac.digest``). Rows of another table that decide access
    (learned templates) go in as the sorted list of their digests: read them where ``seal`` and
    ``problem`` are called and add them to this dict there."""
    (pid, eid, name, active, valid_until, photo_file, photo_digest, embedding, model_id, data_key,
     change_no, pin, auth_mode, suspended_until, credential) = tuple(row)[:15]
    out = {"row": int(pid), "id": normalise_id(eid), "employee_id": eid, "name": name,
           "active": bool(active), "valid_until": rowmac.number(valid_until), "photo_file": photo_file,
           "photo": photo_digest or "", "embedding": rowmac.digest(embedding), "model_id": model_id,
           "data_key": rowmac.digest(data_key), "change": int(change_no or 0),
           # The second factor (issue 21), the photo check's suspension (issue 20) and the card
           # number the OSDP panel decides by (issue 23) decide access too.
           "pin": rowmac.digest(pin), "auth_mode": auth_mode,
           "suspended_until": rowmac.number(suspended_until), "credential": credential or ""}
    # The wrong-PIN back-off (issue 21, schema step 9) decides access too (clearing it by SQL
    # would reopen a locked keypad to guessing). It joins the MAC only once set, so the rows
    # sealed before step 9 (all at 0, 0, NULL) verify without a reseal the migration could not
    # do (it has no key); set back to 0 by hand, a row sealed with it fails like any edit.
    wrong, lockouts, locked_until = tuple(row)[15:18]
    if wrong or lockouts or locked_until is not None:
        out["pin_backoff"] = [int(wrong or 0), int(lockouts or 0), rowmac.number(locked_until)]
    return out


def next_change(con: sqlite3.Connection) -> int:
    row = con.execute("SELECT value FROM meta WHERE key='change_no'").fetchone()
    top = con.execute("SELECT MAX(m) FROM (SELECT MAX(change_no) AS m FROM people UNION ALL "
                      "SELECT MAX(change_no) FROM tombstones)").fetchone()[0] or 0
    n = max(int(row[0]) if row else 0, int(top)) + 1
    con.execute("INSERT OR REPLACE INTO meta VALUES ('change_no', ?)", (n,))
    return n


def seal(con: sqlite3.Connection, key: bytes, person_id: int) -> None:
    """Give the row a new change number and the MAC of its fields (inside the caller's write)."""
    con.execute("UPDATE people SET change_no=? WHERE id=?", (next_change(con), person_id))
    row = con.execute(f"SELECT {COLUMNS} FROM people WHERE id=?", (person_id,)).fetchone()
    con.execute("UPDATE people SET row_mac=? WHERE id=?",
                (rowmac.row_mac(key, "person", fields(row)), person_id))


def bury(con: sqlite3.Connection, key: bytes, employee_id: str) -> None:
    """The tombstone of an erased id: any copy of its row restored later is older than it."""
    norm, n = normalise_id(employee_id), next_change(con)
    con.execute("INSERT OR REPLACE INTO tombstones VALUES (?,?,?)",
                (norm, n, rowmac.row_mac(key, "tombstone", {"id": norm, "change": n})))


def tombstones(con: sqlite3.Connection, key: bytes) -> dict[str, int]:
    """{normalised id: change number} of the tombstones whose MAC verifies (a forged one is
    ignored: it could only lock a person out, and it cannot be made without the key)."""
    out = {}
    for norm, n, mac in con.execute("SELECT norm_id, change_no, mac FROM tombstones"):
        if rowmac.verify(key, "tombstone", {"id": norm, "change": int(n)}, mac):
            out[norm] = int(n)
    return out


def problem(key: bytes, row, buried: dict[str, int]) -> str | None:
    """Why this people row (read with ``COLUMNS``) must not be matched; None when it may."""
    f = fields(row)
    if not rowmac.verify(key, "person", f, tuple(row)[-1]):      # row_mac: COLUMNS' last
        return DAMAGED
    if buried.get(f["id"], -1) >= f["change"]:
        return ERASED
    return None


def seal_legacy(con: sqlite3.Connection, key: bytes, photos_dir: Path) -> int:
    """Seal the rows of a gallery opened for the first time by a version with row MACs (meta
    'row_macs' records that it happened, so a MAC removed later is never re-made)."""
    columns = {r[1] for r in con.execute("PRAGMA table_info(people)")}
    if "row_mac" not in columns or con.execute("SELECT 1 FROM meta WHERE key='row_macs'").fetchone():
        return 0          # opened with fewer schema steps (a test of an old format), or sealed
    con.execute("BEGIN IMMEDIATE")
    try:
        if con.execute("SELECT 1 FROM meta WHERE key='row_macs'").fetchone():
            con.execute("ROLLBACK")
            return 0
        ids = con.execute("SELECT id, photo_file FROM people WHERE row_mac IS NULL").fetchall()
        for pid, photo_file in ids:
            try:
                photo = rowmac.digest((photos_dir / photo_file).read_bytes())
            except OSError:
                photo = ""          # reported by `gallery check` as a missing photo
            con.execute("UPDATE people SET photo_digest=? WHERE id=?", (photo, pid))
            seal(con, key, pid)
        con.execute("INSERT INTO meta VALUES ('row_macs', 1)")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if ids:
        log.info("Sealed %d gallery row(s) with row MACs (first start of this version)", len(ids))
    return len(ids)
