"""Door outputs against real endpoints: a local HTTP server, a real program, a pseudo-terminal."""

from __future__ import annotations

import json
import os
import select
import shlex
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from faceguard.access.decide import DENIED, GRANTED, Decision
from faceguard.access.door import (
    AsyncDoor,
    CommandDoor,
    DoorOutput,
    DoorResult,
    SerialRelayDoor,
    WebhookDoor,
    make_door,
)
from faceguard.errors import DoorError
from faceguard.settings import DoorSettings


def decision(kind: str = GRANTED, name: str | None = "Ana", pid: str | None = "E1", d: float = 0.25) -> Decision:
    return Decision(time=12.5, kind=kind, person_id=pid, name=name, distance=d, threshold=0.4,
                    frames_used=3, reason="test", track_id=7, box=(1.0, 2.0, 3.0, 4.0))


# -- webhook ---------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.headers["Content-Type"], json.loads(body)))
        answer = self.server.plan.pop(0) if self.server.plan else 200
        if answer == "hang":
            self.server.release.wait(10)
            return
        self.send_response(answer)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.requests, server.plan, server.release = [], [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/door"
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_webhook_posts_the_decision_as_json(http_server):
    result = WebhookDoor(http_server.url, timeout_s=2, retries=0).trigger(decision())
    assert result == DoorResult(True, "webhook answered 200 (attempt 1)")
    ((ctype, body),) = http_server.requests
    assert ctype == "application/json"
    assert body == {"event": "door_open", "time": 12.5, "decision": "GRANTED", "mode": "identify",
                    "person_id": "E1", "name": "Ana", "distance": 0.25, "threshold": 0.4,
                    "frames_used": 3, "reason": "test", "track_id": 7, "box": [1.0, 2.0, 3.0, 4.0]}


def test_webhook_retries_a_server_error(http_server):
    http_server.plan[:] = [500, 200]
    result = WebhookDoor(http_server.url, timeout_s=2, retries=2, backoff_s=0.05).trigger(decision())
    assert result.ok and result.message == "webhook answered 200 (attempt 2)"
    assert len(http_server.requests) == 2


def test_webhook_gives_up_after_the_retries(http_server):
    http_server.plan[:] = [503, 503, 503, 200]
    result = WebhookDoor(http_server.url, timeout_s=2, retries=2, backoff_s=0.01).trigger(decision())
    assert not result.ok and "503" in result.message and "after 3 attempt(s)" in result.message
    assert len(http_server.requests) == 3


def test_webhook_does_not_retry_a_client_error(http_server):
    http_server.plan[:] = [404, 200]
    result = WebhookDoor(http_server.url, timeout_s=2, retries=3, backoff_s=0.01).trigger(decision())
    assert not result.ok and "404" in result.message and "after 1 attempt(s)" in result.message
    assert len(http_server.requests) == 1


def test_webhook_timeout_is_respected(http_server):
    http_server.plan[:] = ["hang"]
    start = time.monotonic()
    result = WebhookDoor(http_server.url, timeout_s=0.5, retries=0).trigger(decision())
    elapsed = time.monotonic() - start
    assert not result.ok and "unreachable" in result.message
    assert 0.4 < elapsed < 2.0


def test_webhook_unreachable_is_a_result_not_an_exception():
    url = f"http://127.0.0.1:{closed_port()}/"
    result = WebhookDoor(url, timeout_s=1, retries=1, backoff_s=0.01).trigger(decision())
    assert not result.ok and "unreachable" in result.message and "after 2 attempt(s)" in result.message


def test_denied_does_not_open_the_door(http_server):
    result = WebhookDoor(http_server.url, timeout_s=1).trigger(decision(DENIED, None, None, 0.7))
    assert result == DoorResult(True, "door stays closed") and http_server.requests == []


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- command ---------------------------------------------------------------------------------
WRITER = "import sys; open(sys.argv[1], 'w', encoding='utf-8').write('|'.join(sys.argv[2:]))"


def test_command_fills_placeholders_as_single_arguments(tmp_path):
    out = tmp_path / "opened.txt"
    cmd = f"{shlex.quote(sys.executable)} -c {shlex.quote(WRITER)} {out} {{name}} id={{employee_id}} {{distance}}"
    tricky = "Ana María O'Neil; touch /tmp/pwned $(id)"
    result = CommandDoor(cmd, timeout_s=10).trigger(decision(name=tricky, d=0.25))
    assert result.ok, result.message
    assert out.read_text(encoding="utf-8") == f"{tricky}|id=E1|0.250"


def test_command_failure_and_timeout_are_reported(tmp_path):
    fail = f"{shlex.quote(sys.executable)} -c \"import sys; sys.exit('relay says no')\""
    result = CommandDoor(fail, timeout_s=10).trigger(decision())
    assert result == DoorResult(False, "door command exited with 1: relay says no")
    start = time.monotonic()
    slow = CommandDoor(f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(5)'", timeout_s=0.3)
    assert slow.trigger(decision()) == DoorResult(False, "door command did not finish within 0.3 s")
    assert time.monotonic() - start < 3
    missing = CommandDoor("/nonexistent/open-door {name}").trigger(decision())
    assert missing == DoorResult(False, "door command not found: /nonexistent/open-door")


@pytest.mark.parametrize("command, message", [
    ("open-door {room}", "unknown placeholder {room}"),
    ("open-door 'unclosed", "cannot be split"),
    ("   ", "is empty"),
    ("open-door {name", "bad braces"),
])
def test_bad_command_is_refused_at_set_up(command, message):
    with pytest.raises(DoorError, match=message):
        CommandDoor(command)


# -- serial relay ----------------------------------------------------------------------------
def read_exactly(fd: int, n: int, timeout: float) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while len(data) < n and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            data += os.read(fd, n - len(data))
    return data


@pytest.fixture
def pty_port():
    master, slave = os.openpty()
    name = os.ttyname(slave)
    yield master, name
    os.close(slave)
    os.close(master)


def test_serial_relay_sends_open_then_close_bytes(pty_port):
    master, name = pty_port
    relay = SerialRelayDoor(name, 9600, "A0 01 01 A2", "a0 01 00 a1", open_seconds=0.3, timeout_s=2)
    with AsyncDoor(relay) as door:
        start = time.monotonic()
        assert door.submit(decision())
        opened = read_exactly(master, 4, timeout=3)
        t_open = time.monotonic() - start
        closed = read_exactly(master, 4, timeout=3)
        t_close = time.monotonic() - start
    assert opened == bytes([0xA0, 0x01, 0x01, 0xA2])
    assert closed == bytes([0xA0, 0x01, 0x00, 0xA1])
    assert t_close - t_open >= 0.2                 # the door was held open
    (dec, result), = door.poll()
    assert dec.person_id == "E1" and result == DoorResult(True, f"serial relay {name} opened for 0.3 s")


def test_serial_relay_missing_port_is_a_result():
    relay = SerialRelayDoor("/dev/does-not-exist", open_seconds=0)
    result = relay.trigger(decision())
    assert not result.ok and "cannot be opened" in result.message


def test_serial_relay_bad_hex_is_refused():
    with pytest.raises(DoorError, match="hex bytes"):
        SerialRelayDoor("/dev/ttyUSB0", open_bytes="open sesame")


# -- the worker thread -----------------------------------------------------------------------
class SlowDoor(DoorOutput):
    kind = "slow"

    def __init__(self, seconds: float):
        self.seconds = seconds

    def _open(self, decision):
        time.sleep(self.seconds)
        return DoorResult(True, "opened slowly")


class BrokenDoor(DoorOutput):
    kind = "broken"

    def trigger(self, decision):          # bypasses the base class guard on purpose
        raise RuntimeError("wiring fault")


def test_async_door_never_blocks_and_reports_through_callback():
    got = []
    arrived = threading.Event()
    door = AsyncDoor(SlowDoor(0.5), on_result=lambda d, r: (got.append((d.track_id, r)), arrived.set()))
    start = time.monotonic()
    assert door.submit(decision())
    assert time.monotonic() - start < 0.05
    assert arrived.wait(5)
    assert got == [(7, DoorResult(True, "opened slowly"))]
    door.close(5)


def test_async_door_survives_an_output_that_raises():
    with AsyncDoor(BrokenDoor()) as door:
        door.submit(decision())
        door.submit(decision())
    results = [r for _, r in door.poll()]
    assert results == [DoorResult(False, "door output failed: wiring fault")] * 2


def test_async_door_refuses_rather_than_queueing_without_bound():
    with AsyncDoor(SlowDoor(0.3), max_pending=1) as door:
        accepted = [door.submit(decision()) for _ in range(4)]
    assert accepted.count(False) >= 2
    results = [r.message for _, r in door.poll()]
    assert results.count("door output busy; decision not sent") == accepted.count(False)
    assert results.count("opened slowly") == accepted.count(True)


# -- from settings ---------------------------------------------------------------------------
def test_make_door_from_settings(tmp_path):
    assert type(make_door(DoorSettings())) is DoorOutput
    assert make_door(DoorSettings()).trigger(decision()) == DoorResult(True, "no door output configured")
    cmd = make_door(DoorSettings(kind="command", command="true {name}", timeout_s=2))
    assert isinstance(cmd, CommandDoor) and cmd.timeout_s == 2 and cmd.argv == ["true", "{name}"]
    hook = make_door(DoorSettings(kind="webhook", url="http://127.0.0.1:9/x", retries=4))
    assert isinstance(hook, WebhookDoor) and hook.retries == 4
    relay = make_door(DoorSettings(kind="serial", serial_port="/dev/ttyUSB0", serial_open_bytes="FF"))
    assert isinstance(relay, SerialRelayDoor) and relay.open_bytes == b"\xff"
    with pytest.raises(DoorError, match="door.kind"):
        make_door(DoorSettings(kind="carrier-pigeon"))
