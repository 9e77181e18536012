"""A person's access-card number (their credential at the office's access panel), so that the
door can hand a recognised face to the panel as that person's card (faceguard/outputs/osdp.py).

Stored in the people row (schema step 5), so it is erased, renamed and re-id'd with the person.
Two forms: "facility:card" for 26-bit Wiegand (facility 0-255, card 0-65535), or hex digits
for a raw credential sent bit for bit (``osdp.card_format`` says which the panel expects).
"""

from __future__ import annotations

import re
import sqlite3

from faceguard.errors import GalleryError

_WIEGAND = re.compile(r"(\d{1,3}):(\d{1,5})")
_HEX = re.compile(r"(?:0x)?([0-9A-Fa-f]{2,64})")


def add_credential_v5(con: sqlite3.Connection) -> None:
    """Schema step 5: a person's access-card number (NULL: none)."""
    con.execute("ALTER TABLE people ADD COLUMN credential TEXT")


def normalise(number: str) -> str:
    """The stored form of a credential number, or GalleryError saying what is accepted."""
    text = (number or "").strip()
    m = _WIEGAND.fullmatch(text)
    if m:
        facility, card = int(m.group(1)), int(m.group(2))
        if facility > 255 or card > 65535:
            raise GalleryError(f"Credential '{text}': a 26-bit Wiegand card has facility 0-255 "
                               "and card 0-65535.")
        return f"{facility}:{card}"
    m = _HEX.fullmatch(text)
    if m and len(m.group(1)) % 2 == 0:
        return m.group(1).upper()
    raise GalleryError(f"Credential '{text[:40]}': give facility:card (26-bit Wiegand, e.g. "
                       "12:3456) or the raw card number as hex digits (e.g. 04A3B2C1).")


def wiegand26(facility: int, card: int) -> bytes:
    """The 26 bits of a standard H10301 card, left-aligned in 4 bytes: even parity over the first
    12 data bits, 8 facility bits, 16 card bits, odd parity over the last 12 data bits."""
    data = (facility << 16) | card                  # 24 data bits
    even = bin(data >> 12).count("1") % 2           # makes the first 13 bits even
    odd = 1 - bin(data & 0xFFF).count("1") % 2      # makes the last 13 bits odd
    bits = (even << 25) | (data << 1) | odd
    return (bits << 6).to_bytes(4, "big")


def card_bits(credential: str, card_format: str) -> tuple[bytes, int]:
    """(data, number of bits) of a stored credential for the panel's card format."""
    m = _WIEGAND.fullmatch(credential)
    if card_format == "wiegand26":
        if not m:
            raise GalleryError(f"Credential '{credential}' is not facility:card, but the panel "
                               "expects 26-bit Wiegand (osdp.card_format).")
        return wiegand26(int(m.group(1)), int(m.group(2))), 26
    if m:
        return wiegand26(int(m.group(1)), int(m.group(2))), 26
    data = bytes.fromhex(credential)
    return data, 8 * len(data)


def get_credential(gallery, employee_id: str) -> str | None:
    with gallery.db.reading() as con:
        row = con.execute("SELECT credential FROM people WHERE employee_id=?",
                          (employee_id,)).fetchone()
    return None if row is None else row[0]


def set_credential(gallery, employee_id: str, number: str | None) -> str | None:
    """Set (or with None / "" clear) a person's credential; the stored form."""
    value = normalise(number) if number else None
    with gallery.db.change() as change:
        cur = change.con.execute("UPDATE people SET credential=? WHERE employee_id=?",
                                 (value, employee_id))
        if cur.rowcount == 0:
            raise GalleryError(f"No employee has the id '{employee_id}'.")
        gallery._seal(change.con, employee_id)    # the panel decides by it: under the row MAC
    return value
