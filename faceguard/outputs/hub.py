"""``Outputs``: what the door check hands every decision to, and what it asks for commands
coming back (Home Assistant's switch and lock) and for the outputs' status lines.

``publish`` only writes the message into the outbox (a local SQLite insert) and wakes the
senders; the network is only touched in their threads, so a receiver that is down never slows a
frame. It never raises: a failing output is logged and the decision stands.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from faceguard.access.records import Decision
from faceguard.errors import FaceGuardError
from faceguard.outputs import events, webhook
from faceguard.outputs.delivery import Sender
from faceguard.outputs.outbox import Outbox, new_key
from faceguard.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """Asked from outside: ``face_unlock`` (value True/False) or ``unlock`` (value: the source,
    e.g. "MQTT (broker 10.0.0.2:1883, topic faceguard/front/lock/set)")."""

    what: str
    value: object


class Output(Protocol):
    """An output with its own connection (MQTT, OSDP)."""

    def publish(self, decision: Decision, row: dict, snapshot_rgb: np.ndarray | None) -> None: ...

    def face_unlock_changed(self, on: bool) -> None: ...

    def close(self, timeout: float) -> None: ...


class Outputs:
    def __init__(self, settings: Settings, root: Path, *,
                 credential_of: Callable[[str], str | None] | None = None):
        self.settings = settings
        self.door_name = settings.mqtt.door_name
        self.commands: queue.Queue[Command] = queue.Queue()
        self._status: dict[str, str] = {}
        self._status_lock = threading.Lock()
        self._senders: dict[str, Sender] = {}
        self._batch: list[tuple[str, bytes, str, str, bool]] = []   # publish's messages
        self._outputs: list[Output] = []      # MQTT, OSDP: each its own publish and close
        self.outbox: Outbox | None = None
        self.credential_of = credential_of
        if settings.webhook.url or settings.mqtt.url:
            self.outbox = Outbox.in_folder(root)
        if settings.webhook.url:
            channel = webhook.WebhookChannel(settings.webhook)
            self._senders[webhook.CHANNEL] = self._sender(webhook.CHANNEL, channel.send)
        if settings.mqtt.url:
            from faceguard.outputs.mqtt import MqttOutput

            self._outputs.append(MqttOutput(settings.mqtt, self))
        if settings.osdp.port:
            from faceguard.outputs.osdp import OsdpReader

            self._outputs.append(OsdpReader(settings.osdp, self, root))

    @property
    def active(self) -> bool:
        return bool(self._senders or self._outputs)

    def _sender(self, channel: str, send) -> Sender:
        assert self.outbox is not None
        return Sender(self.outbox, channel, send)

    def add_sender(self, channel: str, send) -> Sender:
        """For an output with its own channel (MQTT): a sender over the shared outbox."""
        sender = self._sender(channel, send)
        self._senders[channel] = sender
        return sender

    def queue(self, channel: str, body: bytes, key: str, topic: str = "", retain: bool = False) -> None:
        """For the outbox: written with the rest of this decision's messages by ``publish``."""
        self._batch.append((channel, body, key, topic, retain))

    def publish(self, decision: Decision, snapshot_rgb: np.ndarray | None = None) -> str | None:
        """Hand one decision to every configured output; returns its event id (None: no
        output configured). Never raises."""
        if not self.active:
            return None
        key = new_key()
        row = events.event_dict(decision, self.door_name, key)
        self._batch = []
        try:
            if webhook.CHANNEL in self._senders:
                self.queue(webhook.CHANNEL, events.encode(row), key)
            for output in self._outputs:
                output.publish(decision, row, snapshot_rgb)
            if self._batch and self.outbox is not None:
                self.outbox.put_many(self._batch)
                for channel in {m[0] for m in self._batch}:
                    self._senders[channel].wake()
        except FaceGuardError as exc:
            log.error("decision not handed to the outputs: %s", exc)
        except Exception:  # an output must never take the frame loop down
            log.exception("decision not handed to the outputs")
        return key

    def command(self, what: str, value: object) -> None:
        """From an output's thread: the door check takes it with its next frame."""
        self.commands.put(Command(what, value))

    def take_commands(self) -> list[Command]:
        out = []
        while True:
            try:
                out.append(self.commands.get_nowait())
            except queue.Empty:
                return out

    def set_status(self, name: str, text: str) -> None:
        with self._status_lock:
            if text:
                self._status[name] = text
            else:
                self._status.pop(name, None)

    def status(self) -> dict[str, str]:
        """What the window shows, e.g. {"osdp": "panel: LED green, buzzer 2 beeps"}."""
        with self._status_lock:
            return dict(self._status)

    def face_unlock_changed(self, on: bool) -> None:
        """The door check's switch moved (from a command or the dialog): tell the outputs."""
        for output in self._outputs:
            output.face_unlock_changed(on)

    def close(self, timeout: float = 2.0) -> None:
        """Stop the outputs: MQTT says offline, what is still waiting stays in the outbox."""
        for sender in self._senders.values():
            left = sender.close(timeout)
            if left:
                log.warning("outbox: %d message(s) wait for the next start", left)
        for output in self._outputs:
            try:
                output.close(timeout)
            except Exception:  # noqa: BLE001  closing must reach every output
                log.exception("output not closed cleanly")
        if self.outbox is not None:
            self.outbox.close()
