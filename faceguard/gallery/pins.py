"""The second factor's gallery data: each person's PIN (as a slow salted hash) and auth mode.

A PIN is 4-8 digits. It is stored only as hashlib.scrypt(pin, random salt), and that hash is
sealed (encrypted) with the person's own data key, bound to their row (keys.py): erasing the
person erases the key, and no copy of the hash can be tried offline afterwards. The PIN itself
is never stored, logged or put in an error message.

Auth modes (per person): ``face`` (the face alone; a grey-zone face is DENIED), ``grey-pin``
(the default: a PIN only when the face lies in the grey zone), ``face+pin`` (a PIN always: a
server room).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import struct
from typing import TYPE_CHECKING

from faceguard.errors import GalleryError
from faceguard.gallery import keys as keyring
from faceguard.gallery.factor_schema import DEFAULT_AUTH_MODE

if TYPE_CHECKING:
    from faceguard.gallery.store import Gallery

PIN_PURPOSE = b"pin"
AUTH_MODES = ("face", "grey-pin", "face+pin")
MIN_DIGITS, MAX_DIGITS = 4, 8
# scrypt cost: ~50 ms and 16 MiB per check; a door checks one PIN per visit, a thief with the
# (decrypted) hash pays this per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_HEADER = struct.Struct(">4sIII")      # b"scr1", n, r, p; then a 16-byte salt, a 32-byte digest
_MAGIC = b"scr1"


# -- the PIN itself ------------------------------------------------------------------------
def check_pin(pin: str) -> str:
    """The PIN as typed, stripped; GalleryError (never quoting it) unless 4-8 digits."""
    pin = (pin or "").strip()
    if not (pin.isascii() and pin.isdigit() and MIN_DIGITS <= len(pin) <= MAX_DIGITS):
        raise GalleryError(f"A PIN must be {MIN_DIGITS} to {MAX_DIGITS} digits (0-9), nothing else.")
    return pin


def pin_warning(pin: str) -> str | None:
    """Words for a PIN that is easy to guess (one digit repeated, a run like 1234 or 9876, a
    pair repeated like 1212, a year like 1987), or None. A warning, not a refusal."""
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in zip(digits, digits[1:], strict=False)}
    if len(set(digits)) == 1:
        return "This PIN repeats one digit: it is among the first a stranger would try."
    if steps in ({1}, {-1}):
        return "This PIN is a run of digits (like 1234): it is among the first a stranger would try."
    if len(pin) % 2 == 0 and len(set(pin[i:i + 2] for i in range(0, len(pin), 2))) == 1:
        return "This PIN repeats a pair of digits: easy to guess."
    if len(pin) == 4 and 1930 <= int(pin) <= 2039:
        return "This PIN looks like a year (a birth year is easy to guess)."
    return None


def hash_pin(pin: str, salt: bytes | None = None) -> bytes:
    """The stored form: header, salt and scrypt digest (binary; sealed before it is stored)."""
    pin = check_pin(pin)
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return _HEADER.pack(_MAGIC, SCRYPT_N, SCRYPT_R, SCRYPT_P) + salt + digest


def pin_matches(pin: str, stored: bytes) -> bool:
    """Whether ``pin`` hashes to ``stored`` (constant-time compare); False for any malformed input."""
    try:
        magic, n, r, p = _HEADER.unpack_from(stored)
        salt, digest = stored[_HEADER.size:_HEADER.size + 16], stored[_HEADER.size + 16:]
        if magic != _MAGIC or len(digest) != 32:
            return False
        pin = check_pin(pin)
        tried = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    except (struct.error, GalleryError, ValueError):
        return False
    return hmac.compare_digest(tried, digest)


# -- stored with the person ------------------------------------------------------------------
def _row(con: sqlite3.Connection, gallery: Gallery, employee_id: str):
    stored, _ = gallery._resolve(con, employee_id)
    person_id, cipher, _ = gallery._cipher(con, stored)
    if cipher is None:
        raise GalleryError(f"Employee id '{stored}' is still encrypted the old way; replace their "
                           "photo before setting a PIN.")
    return stored, person_id, cipher


def set_pin(gallery: Gallery, employee_id: str, pin: str | None) -> None:
    """Set (or with None, clear) the person's PIN."""
    blob = None if pin is None else hash_pin(pin)
    with gallery.db.change() as change:
        stored, person_id, cipher = _row(change.con, gallery, employee_id)
        sealed = None if blob is None else cipher.encrypt(blob, keyring.bound(PIN_PURPOSE, person_id))
        change.con.execute("UPDATE people SET pin=? WHERE id=?", (sealed, person_id))
        gallery._seal(change.con, person_id)      # the row MAC covers the PIN (issue 22)
    if pin is None:
        gallery.db.checkpoint()      # the old hash out of the write-ahead log too


def has_pin(gallery: Gallery, employee_id: str) -> bool:
    with gallery.db.reading() as con:
        stored, _ = gallery._resolve(con, employee_id)
        row = con.execute("SELECT pin FROM people WHERE employee_id=?", (stored,)).fetchone()
    return row is not None and row[0] is not None


def verify_pin(gallery: Gallery, employee_id: str, pin: str) -> bool:
    """Whether ``pin`` is this person's PIN (False when they have none or their row is gone)."""
    try:
        with gallery.db.reading() as con:
            stored, person_id, cipher = _row(con, gallery, employee_id)
            sealed = con.execute("SELECT pin FROM people WHERE id=?", (person_id,)).fetchone()[0]
        if sealed is None:
            return False
        blob = cipher.decrypt(bytes(sealed), keyring.bound(PIN_PURPOSE, person_id), "PIN hash")
    except GalleryError:
        return False
    return pin_matches(pin, blob)


def sealed_pin(gallery: Gallery, employee_id: str) -> bytes | None:
    """The PIN hash unsealed (for an export, which re-seals it under the zip's protection)."""
    with gallery.db.reading() as con:
        stored, person_id, cipher = _row(con, gallery, employee_id)
        sealed = con.execute("SELECT pin FROM people WHERE id=?", (person_id,)).fetchone()[0]
    if sealed is None:
        return None
    return cipher.decrypt(bytes(sealed), keyring.bound(PIN_PURPOSE, person_id), "PIN hash")


def restore_pin_hash(gallery: Gallery, employee_id: str, blob: bytes | None) -> None:
    """Store an already-hashed PIN (an import); checked for its form, never for the PIN."""
    if blob is not None:
        try:
            magic = _HEADER.unpack_from(blob)[0]
        except struct.error:
            magic = b""
        if magic != _MAGIC or len(blob) != _HEADER.size + 48:
            raise GalleryError(f"The PIN hash of employee id '{employee_id}' is damaged; set the PIN again.")
    with gallery.db.change() as change:
        _, person_id, cipher = _row(change.con, gallery, employee_id)
        sealed = None if blob is None else cipher.encrypt(blob, keyring.bound(PIN_PURPOSE, person_id))
        change.con.execute("UPDATE people SET pin=? WHERE id=?", (sealed, person_id))
        gallery._seal(change.con, person_id)      # the row MAC covers the PIN (issue 22)


# -- auth mode -------------------------------------------------------------------------------
def check_auth_mode(mode: str) -> str:
    if mode not in AUTH_MODES:
        raise GalleryError(f"The auth mode must be one of {', '.join(AUTH_MODES)}, not '{mode}'.")
    return mode


def set_auth_mode(gallery: Gallery, employee_id: str, mode: str) -> None:
    mode = check_auth_mode(mode)
    with gallery.db.change() as change:
        stored, _ = gallery._resolve(change.con, employee_id)
        change.con.execute("UPDATE people SET auth_mode=? WHERE employee_id=?", (mode, stored))
        gallery._seal(change.con, stored)


def auth_mode(gallery: Gallery, employee_id: str) -> str:
    with gallery.db.reading() as con:
        stored, _ = gallery._resolve(con, employee_id)
        row = con.execute("SELECT auth_mode FROM people WHERE employee_id=?", (stored,)).fetchone()
    return row[0] if row and row[0] in AUTH_MODES else DEFAULT_AUTH_MODE


def auth_modes(gallery: Gallery) -> dict[str, str]:
    """{employee id: auth mode} of everyone (one read, for the door's matcher)."""
    with gallery.db.reading() as con:
        return {r[0]: r[1] if r[1] in AUTH_MODES else DEFAULT_AUTH_MODE
                for r in con.execute("SELECT employee_id, auth_mode FROM people")}


# -- export / import (portable.py) -------------------------------------------------------------
def export_fields(gallery: Gallery, employee_id: str) -> dict:
    """The person's second-factor data for a gallery export: the PIN's scrypt hash (hex; the
    PIN itself is never in it) and the auth mode."""
    blob = sealed_pin(gallery, employee_id)
    return {"pin_scrypt": None if blob is None else blob.hex(), "auth_mode": auth_mode(gallery, employee_id)}


def import_fields(gallery: Gallery, employee_id: str, entry: dict) -> None:
    """Restore what ``export_fields`` wrote (absent keys: an older export; nothing changes)."""
    if "auth_mode" in entry:
        set_auth_mode(gallery, employee_id, str(entry["auth_mode"]))
    if "pin_scrypt" in entry:
        value = entry["pin_scrypt"]
        try:
            blob = None if value is None else bytes.fromhex(str(value))
        except ValueError:
            raise GalleryError(f"The PIN hash of employee id '{employee_id}' is damaged; set the PIN again.") from None
        restore_pin_hash(gallery, employee_id, blob)
