"""The admin PIN: stored only as a scrypt hash in settings.admin_pin_hash.

Format: "scrypt$n$r$p$<salt hex>$<hash hex>" so the cost can be raised later without breaking
stored hashes. No Qt here, so the CLI can set a PIN too.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from faceguard.errors import SettingsError

# scrypt cost: about 50 ms and 16 MiB on a laptop: cheap for one unlock, slow for guessing.
N, R, P = 2**14, 8, 1
MIN_PIN_DIGITS = 4


def check_pin_format(pin: str) -> None:
    if not (pin.isdigit() and len(pin) >= MIN_PIN_DIGITS):
        raise SettingsError(f"Setting 'admin_pin_hash': the PIN must be at least {MIN_PIN_DIGITS} digits.")


def hash_pin(pin: str) -> str:
    check_pin_format(pin)
    salt = os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, stored: str) -> bool:
    """True when `pin` matches the stored hash; False for a wrong PIN or a malformed hash."""
    try:
        kind, n, r, p, salt_hex, digest_hex = stored.split("$")
        if kind != "scrypt":
            return False
        digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r),
                                p=int(p), dklen=len(digest_hex) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)
