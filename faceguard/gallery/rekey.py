"""Converting a legacy gallery (schema 1: every blob under the gallery key, bare-purpose
associated data) to per-person data keys and row-bound blobs (keys.py).

Schema step 2 adds the columns; this conversion fills them. It needs the gallery key and
writes files, so it runs after the key is unlocked rather than inside the SQL-only schema step,
one write transaction per person with the usual file order (new file durable before the row
commits, the old one deleted after). It resumes on the next opening where it stopped; a person
whose old blobs cannot be decrypted stays legacy (read the old way, reported by ``check``).
"""

from __future__ import annotations

import logging

from faceguard.errors import GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.keys import GALLERY_KEY

log = logging.getLogger(__name__)


def upgrade(db) -> int:
    """Give every legacy person a data key and re-encrypt their blobs, then the strangers'
    snapshots; returns how many people were converted."""
    with db.reading() as con:
        if "data_key" not in {r[1] for r in con.execute("PRAGMA table_info(people)")}:
            return 0             # opened with an older migration list (tests of schema steps)
        todo = [r[0] for r in con.execute("SELECT id FROM people WHERE data_key IS NULL ORDER BY id")]
        strangers = con.execute("SELECT COUNT(*) FROM events WHERE snapshot_file IS NOT NULL "
                                "AND snapshot_key IS NULL").fetchone()[0]
    if not todo and not strangers:
        return 0
    done = 0
    for person_id in todo:
        try:
            with db.change() as change:
                done += _person(db, change, person_id)
        except GalleryError as exc:
            log.warning("Person row %d keeps the old encryption: %s", person_id, exc)
    with db.change() as change:
        rows = change.con.execute("SELECT id, snapshot_file FROM events WHERE snapshot_file IS NOT NULL "
                                  "AND snapshot_key IS NULL").fetchall()
        for event_id, name in rows:
            _snapshot(db, change, event_id, name, db.keys.master, GALLERY_KEY)
    db.checkpoint()
    log.info("Converted %d people to per-person data keys", done)
    return done


def _person(db, change, person_id: int) -> int:
    con = change.con
    row = con.execute("SELECT employee_id, photo_file, embedding, data_key FROM people WHERE id=?",
                      (person_id,)).fetchone()
    if row is None or row[3] is not None:
        return 0                     # erased or converted meanwhile
    employee_id, photo_file, emb_blob, _ = row
    photo = db.read_encrypted(db.photos_dir / photo_file, crypto.PHOTO, "photo")
    embedding = db.cipher.decrypt(bytes(emb_blob), crypto.EMBEDDING, "embedding")
    wrapped, cipher = db.keys.new(person_id, employee_id)
    name = change.write_file(db.photos_dir, db.keys.seal(cipher, photo, crypto.PHOTO, person_id))
    con.execute("UPDATE people SET photo_file=?, embedding=?, data_key=? WHERE id=?",
                (name, db.keys.seal(cipher, embedding, crypto.EMBEDDING, person_id), wrapped, person_id))
    change.obsolete.append(db.photos_dir / photo_file)
    for event_id, snap in con.execute(
            "SELECT id, snapshot_file FROM events WHERE employee_id=? AND snapshot_file IS NOT NULL "
            "AND snapshot_key IS NULL", (employee_id,)).fetchall():
        _snapshot(db, change, event_id, snap, cipher, person_id)
    return 1


def _snapshot(db, change, event_id: int, name: str, cipher, key_ref: int) -> None:
    try:
        jpeg = db.read_encrypted(db.snapshots_dir / name, crypto.SNAPSHOT, "snapshot")
    except GalleryError as exc:
        log.warning("Access-log snapshot of event %d keeps the old encryption: %s", event_id, exc)
        return
    new = change.write_file(db.snapshots_dir, db.keys.seal(cipher, jpeg, crypto.SNAPSHOT, event_id))
    change.con.execute("UPDATE events SET snapshot_file=?, snapshot_key=? WHERE id=?", (new, key_ref, event_id))
    change.obsolete.append(db.snapshots_dir / name)
