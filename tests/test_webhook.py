"""Signed webhooks for every decision, through the real outbox, to a real HTTP receiver (an
http.server in a thread) that checks each signature, takes each idempotency key once, and goes
down in the middle of the run."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import sample_decision, wait_for

from faceguard.access.records import DENIED, GRANTED
from faceguard.outputs import webhook
from faceguard.outputs.hub import Outputs
from faceguard.settings import Settings, WebhookSettings

SECRET = "a-shared-secret-of-the-office"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """What the building's server does with FaceGuard's webhooks."""

    def __init__(self, port: int, secret: str = SECRET):
        self.port, self.secret = port, secret
        self.taken: dict[str, dict] = {}     # idempotency key → event, once
        self.deliveries: list[str] = []      # every request's key, duplicates included
        self.bad_signatures = 0
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not webhook.verify(receiver.secret, self.headers, body):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                key = self.headers[webhook.KEY_HEADER]
                receiver.deliveries.append(key)
                receiver.taken.setdefault(key, json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()




def outputs_for(url: str, root, secret: str = SECRET) -> Outputs:
    settings = Settings(webhook=WebhookSettings(url=url, secret=secret)).validate()
    return Outputs(settings, root)




def test_signature_covers_timestamp_and_body():
    body = b'{"decision":"GRANTED"}'
    headers = {webhook.TIMESTAMP_HEADER: "1700000000.000",
               webhook.SIGNATURE_HEADER: webhook.signature(SECRET, "1700000000.000", body)}
    assert headers[webhook.SIGNATURE_HEADER].startswith("sha256=")
    assert webhook.verify(SECRET, headers, body, now=1700000010.0)
    assert not webhook.verify(SECRET, headers, body + b" ", now=1700000010.0)      # body changed
    assert not webhook.verify("another-secret-123", headers, body, now=1700000010.0)
    assert not webhook.verify(SECRET, headers, body, now=1700000000.0 + 301)      # replayed late
    moved = {**headers, webhook.TIMESTAMP_HEADER: "1700000005.000"}
    assert not webhook.verify(SECRET, moved, body, now=1700000010.0)               # time changed


def test_every_event_arrives_once_across_a_receiver_outage(tmp_path):
    port = free_port()
    receiver = Receiver(port)
    receiver.start()
    outputs = outputs_for(f"http://127.0.0.1:{port}/faceguard", tmp_path)
    keys = [outputs.publish(sample_decision(i, GRANTED if i % 3 else DENIED)) for i in range(10)]
    assert wait_for(lambda: len(receiver.taken) == 10, 10)
    receiver.stop()                                   # the receiver goes down mid-run
    started = time.perf_counter()
    keys += [outputs.publish(sample_decision(i, GRANTED if i % 3 else DENIED)) for i in range(10, 25)]
    queued_ms = (time.perf_counter() - started) * 1000 / 15
    assert queued_ms < 50                             # the frame loop never waits for it
    time.sleep(1.5)
    assert outputs.outbox.pending("webhook") == 15    # held, persisted, in order
    receiver.start()                                  # back: the outbox empties itself
    assert wait_for(lambda: len(receiver.taken) == 25, 30), outputs.outbox.pending()
    outputs.close()
    assert sorted(receiver.taken) == sorted(keys)     # none lost
    assert len(receiver.deliveries) == len(set(receiver.deliveries)) == 25   # none doubled
    assert receiver.bad_signatures == 0
    kinds = [receiver.taken[k]["decision"] for k in keys]
    assert kinds == ["DENIED" if i % 3 == 0 else "GRANTED" for i in range(25)]   # every event
    first = receiver.taken[keys[1]]
    assert first["person_id"] == "E001" and first["event_type"] == "granted"
    assert first["id"] == keys[1] and first["door_name"] == "door" and first["door"] is None


def test_a_wrong_secret_is_refused_and_kept_not_retried_forever(tmp_path):
    port = free_port()
    receiver = Receiver(port, secret="the-receivers-other-secret")
    receiver.start()
    outputs = outputs_for(f"http://127.0.0.1:{port}/", tmp_path)
    outputs.publish(sample_decision(1))
    assert wait_for(lambda: outputs.outbox.counters().get("refused.webhook") == 1, 10)
    outputs.close()
    receiver.stop()
    assert receiver.bad_signatures == 1 and not receiver.taken


def test_a_webhook_without_a_secret_is_refused_by_the_settings():
    from faceguard.errors import SettingsError

    with pytest.raises(SettingsError, match="webhook.secret"):
        Settings(webhook=WebhookSettings(url="http://127.0.0.1:9/", secret="")).validate()
