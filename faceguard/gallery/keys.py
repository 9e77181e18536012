"""Per-person data keys: erasing a person erases every copy of their face (crypto-shredding).

The gallery key (crypto.py, a file in the config folder) encrypts no face itself. Each person
gets a random data key, stored only in their database row, wrapped (encrypted) by the gallery
key; their photo, embedding and access-log snapshots are encrypted with it. Erasing the person
deletes the row, and with it the only copy of the data key (SQLite's secure_delete overwrites
the freed cell; the WAL is checkpointed and truncated). Copies of the old ciphertexts left in
free disk blocks, backups or the quarantine folder then decrypt with no key that still exists.

Every blob's associated data names its purpose AND its row ("embedding:17", "snapshot:204"),
and a wrapped data key names the person's row id and employee id. A ciphertext copied onto
another row with sqlite3 (no key needed) therefore fails to decrypt instead of making one
person's face open the door as another, and ``Gallery.check`` reports it.

Strangers' snapshots are encrypted with the gallery key (bound to their event row). Galleries
from before this scheme ("legacy": no data key, bare-purpose associated data) are converted on
opening (rekey.py); a legacy blob is read the old way until then.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from pathlib import Path

from faceguard.errors import GalleryError
from faceguard.gallery import crypto
from faceguard.gallery.crypto import Cipher

log = logging.getLogger(__name__)

GALLERY_KEY = 0       # events.snapshot_key for a snapshot under the gallery key (a stranger's)


def bound(purpose: bytes, row_id: int) -> bytes:
    """The associated data of a blob of ``purpose`` belonging to row ``row_id``."""
    return purpose + b":" + str(int(row_id)).encode()


def _wrap_ad(person_id: int, employee_id: str) -> bytes:
    return b"person-key:" + str(int(person_id)).encode() + b":" + employee_id.encode("utf-8")


class KeyRing:
    """The gallery key and the people's data keys it wraps."""

    def __init__(self, gallery_cipher: Cipher):
        self.master = gallery_cipher

    def new(self, person_id: int, employee_id: str) -> tuple[bytes, Cipher]:
        """(wrapped key for the row, the person's cipher) for a new data key."""
        key = secrets.token_bytes(32)
        return self.master.encrypt(key, _wrap_ad(person_id, employee_id)), Cipher(key)

    def person(self, person_id: int, employee_id: str, wrapped: bytes | None) -> Cipher | None:
        """The person's cipher; None for a legacy row (no data key yet). GalleryError when the
        wrapped key is damaged or was copied from another row."""
        if wrapped is None:
            return None
        try:
            return Cipher(self.master.decrypt(bytes(wrapped), _wrap_ad(person_id, employee_id)))
        except GalleryError:
            raise GalleryError(
                f"The data key of employee id '{employee_id}' cannot be decrypted: it was damaged "
                "or copied from another person's row. Replace their photo (or enrol them again).") from None

    def rewrap(self, person_id: int, old_id: str, new_id: str, wrapped: bytes | None) -> bytes | None:
        """The row's wrapped key under its new employee id (the wrapping names the id)."""
        if wrapped is None:
            return None
        self.person(person_id, old_id, wrapped)             # the same message when it is damaged
        key = self.master.decrypt(bytes(wrapped), _wrap_ad(person_id, old_id))
        return self.master.encrypt(key, _wrap_ad(person_id, new_id))

    def seal(self, cipher: Cipher | None, data: bytes, purpose: bytes, row_id: int) -> bytes:
        """Encrypt ``data`` for row ``row_id``; ``cipher`` None = the legacy format."""
        if cipher is None:
            return self.master.encrypt(data, purpose)
        return cipher.encrypt(data, bound(purpose, row_id))

    def unseal(self, cipher: Cipher | None, blob: bytes, purpose: bytes, row_id: int, what: str) -> bytes:
        if cipher is None:
            return self.master.decrypt(bytes(blob), purpose, what)
        return cipher.decrypt(bytes(blob), bound(purpose, row_id), what)

    def snapshot_cipher(self, con: sqlite3.Connection, key_ref: int | None) -> Cipher | None:
        """The cipher of a snapshot by its events.snapshot_key: None legacy, 0 the gallery key,
        else the person's whose row id it is."""
        if key_ref is None:
            return None
        if key_ref == GALLERY_KEY:
            return self.master
        row = con.execute("SELECT employee_id, data_key FROM people WHERE id=?", (key_ref,)).fetchone()
        if row is None or row[1] is None:
            raise GalleryError("The snapshot's key is gone: the person it shows was erased.")
        return self.person(key_ref, row[0], row[1])


def unlock(con: sqlite3.Connection, root: Path, key_file: Path, has_data: bool) -> Cipher:
    """The gallery cipher; creates a key only where no encrypted data exists yet (``has_data``:
    the folders hold stored files)."""
    row = con.execute("SELECT value FROM meta WHERE key='key_check'").fetchone()
    key = crypto.read_key(key_file)
    if key is None:
        people = con.execute("SELECT COUNT(*) FROM people").fetchone()[0]
        if row is not None or has_data or people:
            raise GalleryError(
                f"The gallery in {root} is encrypted, and its key file {key_file} is missing. "
                "Without that key the photos, face data and snapshots cannot be read. Restore "
                "the key file from your backup; FaceGuard never makes a new key over existing "
                "data. To start over with an empty gallery, move the folder away.")
        key = crypto.create_key(key_file)
    cipher = Cipher(key)
    if row is None:
        try:
            con.execute("INSERT OR IGNORE INTO meta VALUES ('key_check', ?)",
                        (cipher.encrypt(b"faceguard", crypto.KEY_CHECK),))
        except sqlite3.Error as exc:
            raise GalleryError(f"The gallery database in {root} cannot be written ({exc}).") from exc
    else:
        try:
            cipher.decrypt(bytes(row[0]), crypto.KEY_CHECK)
        except GalleryError:
            raise GalleryError(
                f"The key file {key_file} does not belong to the gallery in {root}: its photos "
                "and face data cannot be decrypted. Restore the matching key file.") from None
    return cipher
