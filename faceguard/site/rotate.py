"""Rotating the site key, and removing a door (issue 22 item 6).

Before rotation the site key never changed, so an old join code plus a database backup from
before a code change unwrapped the current key. ``rotate`` makes a new site key, re-encrypts
every blob the site holds with it (photos, embeddings, snapshots), re-seals every row MAC,
locks it under a new join code, and wraps it for each door that remains, in ONE transaction.

Each door holds an X25519 key pair of its own (``<config>/site-door.key``, made when it joins);
the site keeps its public key, MAC'd with the site key (so a database administrator cannot slip
in a key of their own), and the current site key wrapped for it (X25519 + HKDF-SHA256 +
AES-GCM with a one-time key pair). A door that finds its site key out of date unwraps the new
one (``refresh``). A removed door, and anyone with an old code or backup, holds only old keys.
"""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceguard import paths
from faceguard.atomic import write_text_atomic
from faceguard.errors import FaceGuardError
from faceguard.gallery import crypto, rowmac
from faceguard.site import SiteError, keys, rows, schema

log = logging.getLogger(__name__)

DOOR_KEY_NAME = "site-door.key"
KEY_CHECK = b"site-key-check"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def door_private_key(create: bool = False) -> X25519PrivateKey | None:
    path = paths.config_dir() / DOOR_KEY_NAME
    try:
        return X25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text(encoding="ascii").strip()))
    except FileNotFoundError:
        if not create:
            return None
    except (OSError, ValueError) as exc:
        raise SiteError(f"This door's site key pair {path} is damaged ({exc}); join the site again.") from exc
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    write_text_atomic(path, raw.hex() + "\n", 0o600, encoding="ascii")
    return key


def _public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(*_RAW)


def _kek(shared: bytes, door: str) -> crypto.Cipher:
    return crypto.Cipher(HKDF(hashes.SHA256(), 32, None, b"faceguard-site-key|" + door.encode()).derive(shared))


def wrap_for(site_key: bytes, door: str, public: bytes) -> bytes:
    eph = X25519PrivateKey.generate()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(public))
    return _public(eph) + _kek(shared, door).encrypt(site_key, b"site-key-for:" + door.encode())


def unwrap_for(blob: bytes, door: str, private: X25519PrivateKey) -> bytes:
    shared = private.exchange(X25519PublicKey.from_public_bytes(bytes(blob[:32])))
    return _kek(shared, door).decrypt(bytes(blob[32:]), b"site-key-for:" + door.encode(), "site key")


def _door_mac(site_key: bytes, door: str, public: bytes) -> bytes:
    return rowmac.row_mac(rowmac.derive(site_key, b"rows"), "door", {"door": door, "public_key": public})


def register_key(cur, site_key: bytes, door: str) -> None:
    """At join: this door's public key (made now) and the site key wrapped for it, MAC'd."""
    public = _public(door_private_key(create=True))      # type: ignore[arg-type]
    cur.execute("UPDATE doors SET public_key=%s, key_mac=%s, wrapped_key=%s WHERE name=%s",
                (public, _door_mac(site_key, door, public), wrap_for(site_key, door, public), door))
    key_check(cur, site_key)


def key_check(cur, site_key: bytes) -> None:
    cur.execute("INSERT INTO site_meta VALUES ('key_check', %s) ON CONFLICT (key) DO NOTHING",
                (crypto.Cipher(site_key).encrypt(b"faceguard", KEY_CHECK).hex(),))


def is_current(cur, site_key: bytes) -> bool:
    cur.execute("SELECT value FROM site_meta WHERE key='key_check'")
    row = cur.fetchone()
    if row is None:
        return True          # a site from before rotation: its one key is current
    try:
        crypto.Cipher(site_key).decrypt(bytes.fromhex(row[0]), KEY_CHECK)
        return True
    except (FaceGuardError, ValueError):
        return False


def refresh(cur, door: str) -> bytes:
    """The current site key for ``door`` from its wrapped copy; SiteError when it has none (it
    was removed, or joined before rotation existed)."""
    cur.execute("SELECT wrapped_key, removed FROM doors WHERE name=%s", (door,))
    row = cur.fetchone()
    private = door_private_key()
    if row is None or row[1] or row[0] is None or private is None:
        raise SiteError(f"The site's key was changed and this door ('{door}') holds no copy of the "
                        "new one (it was removed from the site, or joined before key rotation); "
                        "join the site again with its current code.")
    return unwrap_for(bytes(row[0]), door, private)


def rotate(cur, old_key: bytes, remove: str | None = None) -> tuple[str, bytes]:
    """Inside one transaction: a new site key and code; every blob and MAC moved to it; the key
    wrapped for each remaining door (``remove``: that door is marked removed first)."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (schema.GALLERY_LOCK,))
    if remove is not None:
        cur.execute("UPDATE doors SET removed=TRUE, wrapped_key=NULL WHERE name=%s AND NOT removed", (remove,))
        if cur.rowcount == 0:
            raise SiteError(f"No door named '{remove}' belongs to this site.")
    new_key, code = keys.new_site_key(), keys.new_code()
    old, new = crypto.Cipher(old_key), crypto.Cipher(new_key)
    for table, column, purpose, key_cols in (
            ("people", "photo", crypto.PHOTO, ("employee_id",)),
            ("embeddings", "embedding", crypto.EMBEDDING, ("employee_id", "model_id")),
            ("events", "snapshot", crypto.SNAPSHOT, ("door", "local_id", "time"))):
        cols = ", ".join(key_cols)
        cur.execute(f"SELECT {cols}, {column} FROM {table} WHERE {column} IS NOT NULL")
        for *ident, blob in cur.fetchall():
            where = " AND ".join(f"{c}=%s" for c in key_cols)
            cur.execute(f"UPDATE {table} SET {column}=%s WHERE {where}",
                        (new.encrypt(old.decrypt(bytes(blob), purpose), purpose), *ident))
    cur.execute("SELECT employee_id FROM people")
    for (eid,) in cur.fetchall():
        rows.seal(cur, rowmac.derive(new_key, b"rows"), eid)
    cur.execute("SELECT name, public_key, key_mac FROM doors WHERE NOT removed AND public_key IS NOT NULL")
    for door, public, mac in cur.fetchall():
        if not rowmac.verify(rowmac.derive(old_key, b"rows"), "door", {"door": door, "public_key": bytes(public)}, mac):
            log.error("Door %r's public key at the site was not made by a door; it gets no new key", door)
            continue
        cur.execute("UPDATE doors SET wrapped_key=%s, key_mac=%s WHERE name=%s",
                    (wrap_for(new_key, door, bytes(public)), _door_mac(new_key, door, bytes(public)), door))
    salt, wrapped = keys.wrap(new_key, code)
    for key, value in (("code_salt", salt), ("wrapped_key", wrapped),
                       ("key_check", new.encrypt(b"faceguard", KEY_CHECK).hex())):
        cur.execute("INSERT INTO site_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value=EXCLUDED.value",
                    (key, value))
    return code, new_key
