"""The persisted outbox (faceguard/outputs/outbox.py) and its sender: a real SQLite file."""

from __future__ import annotations

import threading
import time

from faceguard.outputs.delivery import DELIVERED, REFUSED, RETRY, Outcome, Sender, backoff_s
from faceguard.outputs.outbox import Outbox


def test_messages_survive_a_restart_and_go_out_in_order(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    for i in range(5):
        assert box.put("webhook", f"m{i}".encode(), key=f"k{i}")
    assert not box.put("webhook", b"again", key="k0")      # the same event twice: one message
    box.close()
    box = Outbox(tmp_path / "outbox.db")                    # a restart: all still there
    assert box.pending("webhook") == 5
    got: list[str] = []
    done = threading.Event()

    def send(message):
        got.append(message.key)
        if len(got) == 5:
            done.set()
        return Outcome(DELIVERED)

    sender = Sender(box, "webhook", send)
    assert done.wait(5)
    assert sender.close(1.0) == 0
    assert got == [f"k{i}" for i in range(5)]
    assert box.pending() == 0


def test_the_outbox_is_bounded_and_counts_what_it_dropped(tmp_path):
    box = Outbox(tmp_path / "outbox.db", max_messages=3)
    for i in range(5):
        box.put("mqtt", b"x", key=f"k{i}", topic="t")
    assert box.pending("mqtt") == 3
    assert box.head("mqtt").key == "k2"                     # the oldest went first
    assert box.counters()["dropped.mqtt"] == 2


def test_a_failing_receiver_is_retried_with_backoff_and_a_refusal_is_kept(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    box.put("webhook", b"a", key="a")
    box.put("webhook", b"b", key="b")
    tries: list[tuple[str, float]] = []
    done = threading.Event()

    def send(message):
        tries.append((message.key, time.monotonic()))
        if message.key == "a":
            return Outcome(REFUSED, "401 Unauthorized")
        if sum(k == "b" for k, _ in tries) < 3:
            return Outcome(RETRY, "503")
        done.set()
        return Outcome(DELIVERED)

    sender = Sender(box, "webhook", send)
    assert done.wait(10)
    sender.close(0.5)
    b_times = [t for k, t in tries if k == "b"]
    assert len(b_times) == 3
    assert b_times[1] - b_times[0] >= 0.9 and b_times[2] - b_times[1] >= 1.9   # 1 s, then 2 s
    assert box.pending() == 0 and box.counters()["refused.webhook"] == 1
    assert [backoff_s(n) for n in (1, 2, 3, 10)] == [1.0, 2.0, 4.0, 60.0]
