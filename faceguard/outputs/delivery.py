"""One sender thread per channel: takes the outbox's oldest message, hands it to the channel's
``send`` and removes it only when the receiver took it; otherwise it is tried again with back-off
(1 s, 2 s, 4 s … at most ``max_backoff_s``). Messages of a channel go out in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from faceguard.outputs.outbox import Message, Outbox, OutboxError
from faceguard.settings import Settings

log = logging.getLogger(__name__)

DELIVERED, RETRY, REFUSED = "delivered", "retry", "refused"


@dataclass(frozen=True)
class Outcome:
    what: str               # DELIVERED | RETRY | REFUSED
    problem: str = ""
    retry_in_s: float | None = None   # RETRY: wait this long instead of the back-off


def backoff_s(attempts: int, first_s: float = 1.0, most_s: float = 60.0) -> float:
    """The wait after the ``attempts``-th failure in a row."""
    return min(most_s, first_s * 2 ** max(0, attempts - 1))


class Sender:
    def __init__(self, outbox: Outbox, channel: str, send: Callable[[Message], Outcome], *,
                 max_backoff_s: float = 60.0):
        self.outbox = outbox
        self.channel = channel
        self.send = send
        self.max_backoff_s = max_backoff_s
        self.last_problem = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"outbox-{channel}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A message was queued, or the receiver is back."""
        self._wake.set()

    def close(self, timeout: float = 2.0) -> int:
        """Try to send what is waiting for at most ``timeout`` s, then stop; what is left stays
        in the outbox for the next start. Returns the number left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            head = self.outbox.head(self.channel)
            if head is None or head.next_try > time.time():
                break
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        self._thread.join(max(0.1, deadline - time.monotonic()))
        return self.outbox.pending(self.channel)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self._step()
            except OutboxError as exc:
                log.error("outbox %s: %s", self.channel, exc)
                wait = 5.0
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()

    def _step(self) -> float:
        """Send the head if it is due; the seconds to wait before the next step."""
        message = self.outbox.head(self.channel)
        if message is None:
            return 3600.0
        now = time.time()
        if message.next_try > now:
            return message.next_try - now
        try:
            outcome = self.send(message)
        except Exception as exc:  # noqa: BLE001  a sender's bug must not stop the outbox
            log.exception("outbox %s: sender failed", self.channel)
            outcome = Outcome(RETRY, f"sender failed: {exc}")
        if outcome.what == DELIVERED:
            self.outbox.delivered(message.id)
            self.last_problem = ""
            return 0.0
        if outcome.what == REFUSED:
            log.error("outbox %s: message %s refused for good: %s", self.channel, message.key,
                      outcome.problem)
            self.outbox.refuse(message.id, outcome.problem)
            self.last_problem = outcome.problem
            return 0.0
        wait = outcome.retry_in_s
        if wait is None:
            wait = backoff_s(message.attempts + 1, most_s=self.max_backoff_s)
        if outcome.problem != self.last_problem:
            log.warning("outbox %s: %s (retrying)", self.channel, outcome.problem)
        self.last_problem = outcome.problem
        self.outbox.retry_later(message.id, time.time() + wait, outcome.problem)
        return wait


class Hub(Protocol):
    """What an output with its own connection (MQTT, OSDP) uses of ``hub.Outputs`` (written
    here, below both, so that neither imports the hub that imports them)."""

    settings: Settings
    outbox: Outbox | None
    credential_of: Callable[[str], str | None] | None

    def add_sender(self, channel: str, send: Callable[[Message], Outcome]) -> Sender: ...

    def queue(self, channel: str, body: bytes, key: str, topic: str = "",
              retain: bool = False) -> None: ...

    def set_status(self, name: str, text: str) -> None: ...

    def command(self, what: str, value: object) -> None: ...
