"""Door outputs: what happens when a decision is GRANTED.

Kinds (``DoorSettings.kind``): "none", "command" (a program run without a shell), "webhook"
(HTTP POST of the decision as JSON) and "serial" (bytes to a relay board). ``make_door`` builds
one from the settings; a configuration error raises DoorError there, at set-up time. After that,
``trigger(decision)`` never raises: a failing output is logged and comes back as
``DoorResult(ok=False, message)`` so the decision is still recorded and shown.

Outputs block (a relay holds the door open for seconds, a webhook may time out), so the frame
loop hands decisions to ``AsyncDoor``, which triggers them in its own worker thread.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import shlex
import signal
import string
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from faceguard.access.records import GRANTED, Decision
from faceguard.errors import DoorError
from faceguard.settings import DoorSettings

log = logging.getLogger(__name__)

PLACEHOLDERS = ("name", "employee_id", "distance")


@dataclass(frozen=True)
class DoorResult:
    ok: bool
    message: str


class DoorOutput:
    """Base class and the "none" output. Subclasses implement ``_open``."""

    kind = "none"

    def trigger(self, decision: Decision) -> DoorResult:
        """Open the door for a GRANTED decision; anything else leaves it closed. Never raises."""
        if decision.kind != GRANTED:
            return DoorResult(True, "door stays closed")
        try:
            result = self._open(decision)
        except Exception as exc:  # an output must never take the frame loop down
            log.exception("door output %s failed", self.kind)
            result = DoorResult(False, f"{self.kind} door output failed: {exc}")
        (log.info if result.ok else log.warning)("door %s: %s", self.kind, result.message)
        return result

    def _open(self, decision: Decision) -> DoorResult:
        return DoorResult(True, "no door output configured")


def placeholder_values(decision: Decision) -> dict[str, str]:
    """The values of {name} {employee_id} {distance} for one decision."""
    pid = "" if decision.person_id is None else str(decision.person_id)
    return {
        "name": decision.name or pid,
        "employee_id": pid,
        "distance": f"{decision.distance:.3f}" if math.isfinite(decision.distance) else "",
    }


class CommandDoor(DoorOutput):
    """Runs a program: the command line is split like a shell would (shlex) and each word is
    filled in separately, so a name with spaces or quotes stays one argument and can never run
    as shell code."""

    kind = "command"

    def __init__(self, command: str, timeout_s: float = 5.0):
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise DoorError(f"Setting 'door.command': cannot be split into words ({exc}).") from exc
        if not self.argv:
            raise DoorError("Setting 'door.command': is empty; give the command that opens the door.")
        for word in self.argv:
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(word) if f is not None]
            except ValueError as exc:
                raise DoorError(f"Setting 'door.command': bad braces in '{word}' ({exc}).") from exc
            unknown = [f for f in fields if f not in PLACEHOLDERS]
            if unknown:
                raise DoorError(
                    f"Setting 'door.command': unknown placeholder {{{unknown[0]}}}; "
                    f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}.")
        self.timeout_s = timeout_s

    def argv_for(self, decision: Decision) -> list[str]:
        values = placeholder_values(decision)
        return [word.format_map(values) for word in self.argv]

    def _open(self, decision: Decision) -> DoorResult:
        argv = self.argv_for(decision)
        try:
            # Its own process group, so a timed-out command is killed with everything it started
            # (a shell script's children would otherwise keep the relay busy).
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
        except FileNotFoundError:
            return DoorResult(False, f"door command not found: {argv[0]}")
        try:
            _, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return DoorResult(False, f"door command did not finish within {self.timeout_s:g} s")
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip()[-200:]
            return DoorResult(False, f"door command exited with {proc.returncode}" + (f": {tail}" if tail else ""))
        return DoorResult(True, f"door command ran: {argv[0]}")


class WebhookDoor(DoorOutput):
    """POSTs the decision as JSON. Connection errors, time-outs and 5xx answers are retried with
    exponential back-off (``backoff_s``, 2×, 4×…); a 4xx answer is a configuration error and is
    not retried."""

    kind = "webhook"

    def __init__(self, url: str, timeout_s: float = 5.0, retries: int = 2, backoff_s: float = 0.5):
        if not url.startswith(("http://", "https://")):
            raise DoorError("Setting 'door.url': must start with http:// or https://.")
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    def _open(self, decision: Decision) -> DoorResult:
        body = json.dumps({"event": "door_open", **decision.to_dict()}, default=str).encode("utf-8")
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(
                self.url, data=body, method="POST", headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return DoorResult(True, f"webhook answered {response.status} (attempt {attempt + 1})")
            except urllib.error.HTTPError as exc:
                problem = f"webhook answered {exc.code} {exc.reason}"
                if exc.code < 500:
                    break
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                problem = f"webhook unreachable ({reason})"
            log.warning("%s (attempt %d of %d)", problem, attempt + 1, self.retries + 1)
        return DoorResult(False, f"{problem} after {attempt + 1} attempt(s)")


class SerialRelayDoor(DoorOutput):
    """Sends ``open_bytes`` to a relay board, waits ``open_seconds``, sends ``close_bytes``.
    The port is opened per trigger, so a board plugged in after start-up still works."""

    kind = "serial"

    def __init__(self, port: str, baud: int = 9600, open_bytes: str = "A0 01 01 A2",
                 close_bytes: str = "A0 01 00 A1", open_seconds: float = 3.0, timeout_s: float = 5.0):
        if not port:
            raise DoorError("Setting 'door.serial_port': is empty; give the relay's port, e.g. /dev/ttyUSB0.")
        try:
            self.open_bytes = bytes.fromhex(open_bytes)
            self.close_bytes = bytes.fromhex(close_bytes)
        except ValueError as exc:
            raise DoorError("Setting 'door.serial_open_bytes'/'serial_close_bytes': must be hex bytes "
                            "such as 'A0 01 01 A2'.") from exc
        try:
            import serial  # noqa: F401  (pyserial, the `serial` extra)
        except ImportError as exc:
            raise DoorError("The serial relay needs pyserial: pip install 'faceguard[serial]'.") from exc
        self.port = port
        self.baud = baud
        self.open_seconds = open_seconds
        self.timeout_s = timeout_s

    def _open(self, decision: Decision) -> DoorResult:
        import serial

        try:
            link = serial.Serial(self.port, self.baud, timeout=self.timeout_s, write_timeout=self.timeout_s)
        except (serial.SerialException, OSError) as exc:
            return DoorResult(False, f"serial relay {self.port} cannot be opened ({exc})")
        try:
            link.write(self.open_bytes)
            link.flush()
            time.sleep(self.open_seconds)
        except (serial.SerialException, OSError) as exc:
            return DoorResult(False, f"serial relay {self.port} failed ({exc})")
        finally:
            # Whatever happened, try to release the relay: a door left open is the worse failure.
            try:
                link.write(self.close_bytes)
                link.flush()
            except (serial.SerialException, OSError):
                log.exception("serial relay %s: close bytes not sent", self.port)
            link.close()
        return DoorResult(True, f"serial relay {self.port} opened for {self.open_seconds:g} s")


def make_door(door_settings: DoorSettings) -> DoorOutput:
    """The output described by a ``DoorSettings``; DoorError when it cannot work as configured."""
    d = door_settings
    if d.kind == "none":
        return DoorOutput()
    if d.kind == "command":
        return CommandDoor(d.command, timeout_s=d.timeout_s)
    if d.kind == "webhook":
        return WebhookDoor(d.url, timeout_s=d.timeout_s, retries=d.retries)
    if d.kind == "serial":
        return SerialRelayDoor(d.serial_port, d.serial_baud, d.serial_open_bytes,
                               d.serial_close_bytes, d.open_seconds, d.timeout_s)
    raise DoorError(f"Setting 'door.kind': unknown door output '{d.kind}'.")


class AsyncDoor:
    """Triggers a DoorOutput in a worker thread so the frame loop never waits for the door.

    ``submit(decision)`` returns at once; each result arrives as ``(decision, DoorResult)`` on
    ``results`` (a queue the loop may drain with ``poll()``) and, if given, through
    ``on_result`` (called in the worker thread; a Qt caller should emit a signal from it).
    At most ``max_pending`` decisions wait; beyond that a decision is refused with a result
    rather than queued without bound.
    """

    def __init__(self, door: DoorOutput,
                 on_result: Callable[[Decision, DoorResult], None] | None = None,
                 max_pending: int = 8):
        self.door = door
        self.on_result = on_result
        self.results: queue.Queue[tuple[Decision, DoorResult]] = queue.Queue()
        self._pending: queue.Queue[Decision | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name=f"door-{door.kind}", daemon=True)
        self._thread.start()

    def submit(self, decision: Decision) -> bool:
        """Queue a decision for the door; False (and a failed result) when the queue is full."""
        try:
            self._pending.put_nowait(decision)
            return True
        except queue.Full:
            self._report(decision, DoorResult(False, "door output busy; decision not sent"))
            return False

    def poll(self) -> list[tuple[Decision, DoorResult]]:
        """Every result that arrived since the last poll."""
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                return out

    def close(self, timeout: float | None = None) -> bool:
        """Finish the queued decisions, then stop the worker, waiting at most ``timeout`` s in
        all (None: as long as it takes). True when the worker has stopped; a door output still
        running after that ends on its own (the thread is a daemon)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            # The stop mark waits for room in a full queue, but never past the deadline.
            self._pending.put(None, timeout=timeout)
        except queue.Full:
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._thread.join(left)
        return not self._thread.is_alive()

    def __enter__(self) -> AsyncDoor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            decision = self._pending.get()
            if decision is None:
                return
            try:
                result = self.door.trigger(decision)
            except Exception as exc:  # trigger() already guards; this guards a custom output
                log.exception("door output raised")
                result = DoorResult(False, f"door output failed: {exc}")
            self._report(decision, result)

    def _report(self, decision: Decision, result: DoorResult) -> None:
        self.results.put((decision, result))
        if self.on_result is not None:
            try:
                self.on_result(decision, result)
            except Exception:
                log.exception("door result callback failed")
