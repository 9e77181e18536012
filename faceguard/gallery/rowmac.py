"""Row MACs: every field that decides who may enter is authenticated with a key the database
does not hold.

Whoever can write the database file (sqlite3 on a door, psql on the site) but not read the key
file can otherwise re-activate a person, lift an end date, copy one person's face data onto
another row, or restore an erased person from an old dump. Each person row therefore carries
an HMAC-SHA256 over its access-deciding fields (the normalised id, the switch, the end date,
erased or not, the digests of the face data, the change number), keyed by a key derived from
the gallery key (a door) or the site key (the site), neither of which the database holds. A row
whose MAC does not verify is left out of matching, named in the log and the status bar, and
reported by ``gallery check``; the other rows keep working.

An erasure leaves an authenticated tombstone (normalised id + change number): a copy of the
row restored later carries an older change number and is refused.

To cover a new field (a PIN hash, an auth mode, a learned template's digest): add it to the
dict the caller passes to ``row_mac`` at BOTH the sealing and the verifying place (for the local
gallery, ``person_fields`` below); a digest of a blob, never the blob itself. Old rows then fail
to verify until they are sealed again, so add the field with a migration that reseals.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import Any

_VERSION = b"faceguard-row-mac-v1"


def derive(key: bytes, purpose: bytes) -> bytes:
    """A 32-byte MAC key for ``purpose`` from a 32-byte secret (HMAC as a one-step KDF: the
    secret is uniformly random already)."""
    return hmac.new(key, _VERSION + b"|" + purpose, hashlib.sha256).digest()


def digest(blob: bytes | None) -> str:
    """The hex SHA-256 of a blob ("" for none): what a MAC covers of photos and embeddings."""
    return "" if blob is None else hashlib.sha256(bytes(blob)).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return repr(float(value))          # 1.0 and 1 differ in JSON; repr keeps one form
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return digest(bytes(value))
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    raise TypeError(f"a row MAC cannot cover a {type(value).__name__}")


def row_mac(key: bytes, kind: str, fields: dict[str, Any]) -> bytes:
    """HMAC-SHA256 over ``fields`` (named values: text, numbers, booleans, None, blobs as their
    digest), canonically encoded (sorted keys), and the ``kind`` of row ("person", "tombstone",
    "site-person"), so a MAC of one kind never verifies as another."""
    body = json.dumps({"kind": kind, "fields": _canonical(fields)}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hmac.new(key, body, hashlib.sha256).digest()


def verify(key: bytes, kind: str, fields: dict[str, Any], mac: bytes | None) -> bool:
    if not mac:
        return False
    return hmac.compare_digest(row_mac(key, kind, fields), bytes(mac))


def number(value: Any) -> float | None:
    """A stored time as the MAC sees it (SQLite and PostgreSQL hand back floats or ints)."""
    return None if value is None else float(value)
