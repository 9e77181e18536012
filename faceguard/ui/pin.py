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


# Back-off: a 4-digit PIN has 10,000 values, so unlimited tries at one a second would open
# the door's settings within hours. Every MAX_TRIES wrong PINs in a row start a wait that
# doubles each time (60 s, 120 s, 240 s, …); the right PIN clears the count.
MAX_TRIES = 5
FIRST_WAIT_S = 60.0


class PinGuard:
    """Counts wrong PINs and refuses to check any while a back-off wait runs.

    ``clock`` is monotonic seconds (injectable so tests need not wait a minute)."""

    def __init__(self, clock=None):
        import time
        self.clock = clock or time.monotonic
        self.wrong = 0            # wrong PINs since the last right one
        self.waits = 0            # back-off waits started since the last right one
        self.locked_until = 0.0

    def wait_s(self) -> float:
        """Seconds left before the next PIN is checked (0: now)."""
        return max(0.0, self.locked_until - self.clock())

    def locked_message(self) -> str:
        return f"Too many wrong PINs: try again in {self.wait_s():.0f} s."

    def check(self, pin: str, stored: str) -> tuple[bool, str]:
        """(True, "") for the right PIN; else (False, what to tell the person)."""
        if self.wait_s() > 0:
            return False, self.locked_message()
        if verify_pin(pin, stored):
            self.wrong = self.waits = 0
            self.locked_until = 0.0
            return True, ""
        self.wrong += 1
        left = MAX_TRIES - self.wrong % MAX_TRIES
        if left == MAX_TRIES:   # the MAX_TRIES-th wrong one in a row
            wait = FIRST_WAIT_S * 2 ** self.waits
            self.waits += 1
            self.locked_until = self.clock() + wait
            return False, f"Wrong PIN {self.wrong} times: wait {wait:.0f} s before the next try."
        nxt = FIRST_WAIT_S * 2 ** self.waits
        return False, f"Wrong PIN. {left} more {'try' if left == 1 else 'tries'} before a {nxt:.0f} s wait."
