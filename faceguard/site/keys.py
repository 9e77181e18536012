"""The site key and the join code that hands it to a new door.

The site key (256 bits) encrypts every photo, embedding and snapshot the site database holds,
with the gallery's own Cipher. The database never holds that key in clear: it keeps the key
wrapped (AES-GCM) under a key derived from the join code with scrypt, so whoever can read the
database (a backup, its administrator) sees no face without the code, and a wrong code fails
to unwrap instead of letting a door in. The code itself is shown once, by ``site create``, and
stored nowhere.

A code is 16 letters and digits from the RFC 4648 base32 alphabet (80 random bits), printed in
groups of four; it is read back case-blind, without its dashes and spaces.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from faceguard.errors import FaceGuardError
from faceguard.gallery.crypto import Cipher
from faceguard.site import SiteError

KEY_BYTES = 32
WRAP_PURPOSE = b"site-key"
_SCRYPT_N = 2 ** 15   # about 0.1 s per try: costly to guess, quick for one join


def new_site_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii")
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def normalise(code: str) -> str:
    return "".join(c for c in (code or "").upper() if c.isalnum())


def _wrapping(code: str, salt: bytes) -> Cipher:
    kdf = Scrypt(salt=salt, length=KEY_BYTES, n=_SCRYPT_N, r=8, p=1)
    return Cipher(kdf.derive(normalise(code).encode("ascii")))


def wrap(site_key: bytes, code: str) -> tuple[str, str]:
    """(salt hex, wrapped key hex) to store in the site database."""
    salt = secrets.token_bytes(16)
    return salt.hex(), _wrapping(code, salt).encrypt(site_key, WRAP_PURPOSE).hex()


def unwrap(salt_hex: str, wrapped_hex: str, code: str) -> bytes:
    """The site key; SiteError when the code is not this site's."""
    if len(normalise(code)) != 16:
        raise SiteError("That is not a join code: a code has 16 letters and digits "
                        "(as XXXX-XXXX-XXXX-XXXX), as printed by 'faceguard site create'.")
    try:
        return _wrapping(code, bytes.fromhex(salt_hex)).decrypt(bytes.fromhex(wrapped_hex), WRAP_PURPOSE)
    except FaceGuardError:
        raise SiteError("The join code is wrong for this site: check it letter by letter, or "
                        "ask whoever created the site for the code.") from None
