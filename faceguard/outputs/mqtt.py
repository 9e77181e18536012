"""MQTT (paho-mqtt 2.x, the ``[mqtt]`` extra): every decision on ``faceguard/<door>/event``, the
last one retained on ``…/state``, ``…/availability`` online/offline (retained; the broker's last
will says offline when the door dies, a clean stop says it itself), Home Assistant discovery
(homeassistant.py), and two commands back: the "face unlock" switch and, only when
``mqtt.remote_unlock`` is on, the lock's unlock (logged with its source).

Events and states go through the shared outbox (QoS 1, in order, removed only once the broker
acknowledged them), so a broker that is down loses nothing; the frame loop only writes the
outbox. Discovery, availability and the switch's state are published on every connect (and
again when Home Assistant announces itself online): they are current state, not history.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from urllib.parse import urlsplit

import numpy as np

from faceguard.access.records import Decision
from faceguard.errors import DoorError
from faceguard.outputs import events
from faceguard.outputs import homeassistant as ha
from faceguard.outputs.delivery import DELIVERED, RETRY, Hub, Outcome
from faceguard.outputs.outbox import Message
from faceguard.settings import MqttSettings

log = logging.getLogger(__name__)

CHANNEL = "mqtt"
ACK_WAIT_S = 2.0         # how long one send waits for the broker's PUBACK
UNLOCKED_FOR_S = 5.0     # the lock shows UNLOCKED this long after a remote unlock


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of mqtt://host[:1883] or mqtts://host[:8883]."""
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise DoorError(f"Setting 'mqtt.url': '{url}' is not mqtt://host:port or mqtts://host:port.")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise DoorError(f"Setting 'mqtt.url': the port in '{url}' is not a number.") from exc
    return parts.hostname, port, tls


class MqttOutput:
    def __init__(self, settings: MqttSettings, hub: Hub):
        try:
            import paho.mqtt.client as paho
        except ImportError as exc:
            raise DoorError("MQTT needs paho-mqtt: pip install 'faceguard[mqtt]'.") from exc
        self.paho = paho
        self.settings = settings
        self.hub = hub
        self.topics = ha.Topics(settings.door_name, settings.discovery_prefix)
        self.host, self.port, tls = broker_address(settings.url)
        self.face_unlock = hub.settings.face_unlock
        self.connected = threading.Event()
        self._refused = ""                     # the broker's last refusal, in words
        self._inflight: dict[int, object] = {}     # outbox id → paho MQTTMessageInfo
        client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                             client_id=f"faceguard-{settings.door_name}-{uuid.uuid4().hex[:6]}",
                             protocol=paho.MQTTv311)
        if settings.username:
            client.username_pw_set(settings.username, settings.password or None)
        if tls:
            client.tls_set(ca_certs=settings.ca_file or None)
        client.will_set(self.topics.availability, ha.OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        self.sender = hub.add_sender(CHANNEL, self._send)
        hub.set_status(CHANNEL, f"MQTT: connecting to {self.host}:{self.port}")
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()

    # -- the frame thread ------------------------------------------------------------------
    def publish(self, decision: Decision, row: dict, snapshot_rgb: np.ndarray | None) -> None:
        body = events.encode(row)
        key = row["id"]
        self.hub.queue(CHANNEL, body, key, self.topics.event)
        self.hub.queue(CHANNEL, body, key, self.topics.state, retain=True)
        if self.settings.snapshot and snapshot_rgb is not None:
            from faceguard.gallery.db import encode_jpeg

            self.hub.queue(CHANNEL, encode_jpeg(snapshot_rgb, 320, 85), key, self.topics.snapshot)

    def face_unlock_changed(self, on: bool) -> None:
        self.face_unlock = on
        self.client.publish(self.topics.face_unlock, ha.ON if on else ha.OFF, qos=1, retain=True)

    def close(self, timeout: float = 2.0) -> None:
        """A clean stop: availability offline (retained), then disconnect."""
        if self.connected.is_set():
            info = self.client.publish(self.topics.availability, ha.OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                log.warning("MQTT: offline not sent before the stop")
        self.client.disconnect()
        self.client.loop_stop()

    # -- the outbox's sender thread --------------------------------------------------------
    def _send(self, message: Message) -> Outcome:
        info = self._inflight.get(message.id)
        if info is None:
            if not self.connected.is_set():
                return Outcome(RETRY, f"MQTT broker {self.host}:{self.port} not connected",
                               retry_in_s=5.0)   # a connect wakes the sender at once
            info = self.client.publish(message.topic, message.body, qos=1, retain=message.retain)
            # paho keeps a QoS 1 message and sends it again after a reconnect: wait on the same
            # one rather than publishing a second copy.
            self._inflight[message.id] = info
        try:
            info.wait_for_publish(ACK_WAIT_S)  # type: ignore[attr-defined]
        except (RuntimeError, ValueError):
            pass
        if info.is_published():  # type: ignore[attr-defined]
            del self._inflight[message.id]
            return Outcome(DELIVERED)
        return Outcome(RETRY, f"MQTT broker {self.host}:{self.port} did not acknowledge",
                       retry_in_s=1.0)

    # -- paho's network thread -------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            refused = f"MQTT: {self.host}:{self.port} refused the door ({reason_code}); check " \
                      "mqtt.username and mqtt.password"
            if refused != self._refused:      # paho retries every few seconds: say it once
                log.warning("%s", refused)
            self._refused = refused
            self.hub.set_status(CHANNEL, refused)
            return
        self._refused = ""
        log.info("MQTT connected to %s:%d", self.host, self.port)
        client.subscribe([(self.topics.ha_status, 1), (self.topics.face_unlock_set, 1),
                          (self.topics.lock_set, 1)])
        client.publish(self.topics.availability, ha.ONLINE, qos=1, retain=True)
        self._announce()
        self.connected.set()
        self.hub.set_status(CHANNEL, f"MQTT: connected to {self.host}:{self.port}")
        if self.hub.outbox is not None:
            self.hub.outbox.retry_now(CHANNEL)
        self.sender.wake()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if self._refused:
            return                            # the refusal stays on show
        self.hub.set_status(CHANNEL, f"MQTT: {self.host}:{self.port} away; events wait in the "
                                     "outbox")
        if was_connected:
            log.warning("MQTT disconnected from %s:%d (%s)", self.host, self.port, reason_code)

    def _announce(self) -> None:
        """Discovery configs and the current states (retained)."""
        if self.settings.discovery:
            configs = ha.discovery(self.topics, remote_unlock=self.settings.remote_unlock,
                                   snapshot=self.settings.snapshot)
            for topic, payload in configs.items():
                self.client.publish(topic, "" if payload is None else json.dumps(payload),
                                    qos=1, retain=True)
        self.client.publish(self.topics.face_unlock, ha.ON if self.face_unlock else ha.OFF,
                            qos=1, retain=True)
        if self.settings.remote_unlock:
            self.client.publish(self.topics.lock, ha.LOCKED, qos=1, retain=True)

    def _on_message(self, client, userdata, msg) -> None:
        payload = msg.payload.decode("utf-8", "replace").strip()
        if msg.topic == self.topics.ha_status:
            if payload == ha.ONLINE:      # Home Assistant restarted: it forgot the configs
                self._announce()
        elif msg.topic == self.topics.face_unlock_set:
            if payload in (ha.ON, ha.OFF):
                self.hub.command("face_unlock", payload == ha.ON)
                self.face_unlock_changed(payload == ha.ON)
        elif msg.topic == self.topics.lock_set:
            self._lock_command(payload, msg.topic)

    def _lock_command(self, payload: str, topic: str) -> None:
        source = f"MQTT (broker {self.host}:{self.port}, topic {topic})"
        if payload != ha.UNLOCK:
            return        # LOCK: the door locks itself after opening; nothing to do
        if not self.settings.remote_unlock:
            log.warning("remote unlock refused (mqtt.remote_unlock is off): %s", source)
            return
        self.hub.command("unlock", source)
        self.client.publish(self.topics.lock, ha.UNLOCKED, qos=1, retain=True)
        timer = threading.Timer(UNLOCKED_FOR_S, lambda: self.client.publish(
            self.topics.lock, ha.LOCKED, qos=1, retain=True))
        timer.daemon = True
        timer.start()
