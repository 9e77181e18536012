"""Encryption at rest for the gallery: photos, embeddings and access-log snapshots.

Threat model: someone who copies the data folder (the database, the photos/ and snapshots/
folders) from a backup, a stolen disk or a shared drive learns no face and no face embedding.
Names, employee ids and log times are NOT encrypted (the office needs to search them). The key
lives in a separate file in the config folder (mode 0600), so it is only as safe as the user's
account: a person who can read both folders can read everything. Back up the key file with the
data folder, separately; without it the photos are lost for good.

Each blob is ``MAGIC | 12-byte random nonce | AES-256-GCM ciphertext+tag``. The associated data
names what the blob is ("photo", "embedding", ...) and, since schema 2, its row (keys.py), so a
blob moved to another purpose or row fails to decrypt instead of being misread. The key in the
file (the gallery key) wraps each person's data key (keys.py), which encrypts their face data.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceguard import paths
from faceguard.atomic import write_text_atomic
from faceguard.errors import GalleryError
from faceguard.gallery.rowmac import derive

log = logging.getLogger(__name__)

KEY_FILE_NAME = "gallery.key"
MAGIC = b"FGE1"
_NONCE_SIZE = 12
_KEY_BYTES = 32

# The associated-data tags; one per kind of thing that is encrypted.
PHOTO = b"photo"
EMBEDDING = b"embedding"
SNAPSHOT = b"snapshot"
KEY_CHECK = b"key-check"


def default_key_file() -> Path:
    return paths.config_dir() / KEY_FILE_NAME


class Cipher:
    """AES-256-GCM with a fixed key; ``encrypt``/``decrypt`` work on whole blobs."""

    def __init__(self, key: bytes):
        if len(key) != _KEY_BYTES:
            raise GalleryError(f"The gallery key must be {_KEY_BYTES} bytes, not {len(key)}.")
        self._aead = AESGCM(key)
        self.mac_key = derive(key, b"rows")   # the row MACs' key (rowmac.py), never stored

    def encrypt(self, data: bytes, purpose: bytes) -> bytes:
        nonce = os.urandom(_NONCE_SIZE)
        return MAGIC + nonce + self._aead.encrypt(nonce, data, purpose)

    def decrypt(self, blob: bytes, purpose: bytes, what: str = "data") -> bytes:
        """Plain bytes; GalleryError naming ``what`` when the blob is damaged or the key is wrong."""
        head = len(MAGIC) + _NONCE_SIZE
        if len(blob) < head + 16 or not blob.startswith(MAGIC):
            raise GalleryError(f"The stored {what} is damaged (not a FaceGuard encrypted file).")
        try:
            return self._aead.decrypt(blob[len(MAGIC):head], blob[head:], purpose)
        except InvalidTag as exc:
            raise GalleryError(
                f"The stored {what} cannot be decrypted: it is damaged, or the key file does not "
                "belong to this gallery.") from exc


def read_key(key_file: Path) -> bytes | None:
    """The key in ``key_file``, or None when the file does not exist."""
    try:
        text = key_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise GalleryError(f"The gallery key file {key_file} cannot be read ({exc}).") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != _KEY_BYTES:
        raise GalleryError(
            f"The gallery key file {key_file} is damaged (expected {2 * _KEY_BYTES} hex digits). "
            "Restore it from your backup.")
    return key


def create_key(key_file: Path) -> bytes:
    """Write a new random key to ``key_file`` (mode 0600); never replaces an existing file."""
    key = secrets.token_bytes(_KEY_BYTES)
    try:
        key_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # FileExistsError too: a file stands where the folder should be
        raise GalleryError(
            f"The folder {key_file.parent} for the gallery key cannot be created ({exc.strerror}); "
            "check that the config folder is writable.") from exc
    try:
        # replace=False: a key another process made a moment ago is kept, never overwritten.
        write_text_atomic(key_file, key.hex() + "\n", 0o600, encoding="ascii", replace=False)
    except FileExistsError:
        existing = read_key(key_file)
        if existing is None:  # pragma: no cover - vanished between link() and read
            raise GalleryError(f"The gallery key file {key_file} appeared and vanished; try again.") from None
        return existing
    except OSError as exc:
        raise GalleryError(
            f"The gallery key file {key_file} cannot be created ({exc.strerror}); check that the "
            "config folder is writable.") from exc
    log.info("Created a new gallery key in %s", key_file)
    return key
