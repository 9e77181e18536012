"""Every decision POSTed as JSON to ``webhook.url``, signed, from the outbox.

Headers (the receiver checks them; ``verify`` below is the reference):
  X-FaceGuard-Timestamp  Unix seconds when this attempt was sent
  X-FaceGuard-Signature  "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)
  Idempotency-Key        the event's id; the same on every retry: take each key once

The timestamp is inside the signature so a recorded request cannot be replayed later (reject
one older than a few minutes). Answers: 2xx delivered; 408, 429, 5xx and network errors are
retried with back-off; any other 4xx (a wrong secret, a wrong URL) is refused for good, logged
and kept in the outbox, so one bad message does not hold back the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request

from faceguard.outputs.delivery import DELIVERED, REFUSED, RETRY, Outcome
from faceguard.outputs.outbox import Message
from faceguard.settings import WebhookSettings

CHANNEL = "webhook"
TIMESTAMP_HEADER = "X-FaceGuard-Timestamp"
SIGNATURE_HEADER = "X-FaceGuard-Signature"
KEY_HEADER = "Idempotency-Key"
TOLERANCE_S = 300.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, headers, body: bytes, now: float | None = None,
           tolerance_s: float = TOLERANCE_S) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    timestamp = headers.get(TIMESTAMP_HEADER) or ""
    given = headers.get(SIGNATURE_HEADER) or ""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(signature(secret, timestamp, body), given)


class WebhookChannel:
    def __init__(self, settings: WebhookSettings):
        self.url = settings.url
        self.secret = settings.secret
        self.timeout_s = settings.timeout_s

    def send(self, message: Message) -> Outcome:
        timestamp = f"{time.time():.3f}"
        request = urllib.request.Request(self.url, data=message.body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "FaceGuard",
            TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(self.secret, timestamp, message.body),
            KEY_HEADER: message.key})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
                return Outcome(DELIVERED)
        except urllib.error.HTTPError as exc:
            problem = f"webhook answered {exc.code} {exc.reason}"
            if exc.code in (408, 429) or exc.code >= 500:
                return Outcome(RETRY, problem)
            return Outcome(REFUSED, problem)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            return Outcome(RETRY, f"webhook unreachable ({getattr(exc, 'reason', exc)})")
