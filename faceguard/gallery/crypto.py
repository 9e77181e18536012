"""Encryption at rest for the gallery: photos, embeddings and access-log snapshots.

Threat model: someone who copies the data folder (the database, the photos/ and snapshots/
folders) from a backup, a stolen disk or a shared drive learns no face and no face embedding.
Names, employee ids and log times are NOT encrypted (the office needs to search them). The key
lives in a separate file in the config folder (mode 0600), so it is only as safe as the user's
account: a person who can read both folders can read everything. Back up the key file with the
data folder, separately; without it the photos are lost for good.

Each blob is ``MAGIC | 12-byte random nonce | AES-256-GCM ciphertext+tag``. The associated data
names what the blob is ("photo", "embedding", ...), so a blob moved to another purpose fails to
decrypt instead of being misread.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceguard import paths
from faceguard.errors import GalleryError

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
    key_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, key.hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        # link() fails when the name exists: a key another process made a moment ago is kept.
        os.link(tmp, key_file)
    except FileExistsError:
        existing = read_key(key_file)
        if existing is None:  # pragma: no cover - vanished between link() and read
            raise GalleryError(f"The gallery key file {key_file} appeared and vanished; try again.") from None
        return existing
    except OSError as exc:
        raise GalleryError(
            f"The gallery key file {key_file} cannot be created ({exc.strerror}); check that the "
            "config folder is writable.") from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("Created a new gallery key in %s", key_file)
    return key
