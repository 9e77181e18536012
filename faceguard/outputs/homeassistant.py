"""Home Assistant MQTT discovery: the retained config messages that make one Home Assistant
device per door, with its entities. Field names and values follow Home Assistant's MQTT
integration docs (event.mqtt, sensor.mqtt, switch.mqtt, lock.mqtt, image.mqtt; the discovery
page for ``device``, ``origin`` and the topic ``<prefix>/<component>/<node_id>/<object_id>/config``);
tests/test_mqtt.py holds the shapes.

Entities: an ``event`` (every decision; its ``event_type`` granted/denied/pin/attack), a ``sensor``
(the last person), a ``switch`` "Face unlock" (off: the door decides nothing), and, only when
enabled, a ``lock`` (unlock opens the door) and an ``image`` (the last face snapshot). A
disabled one is removed from Home Assistant with an empty retained config.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceguard import __version__

EVENT_TYPES = ["granted", "denied", "pin", "attack"]
ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"
LOCK, UNLOCK, LOCKED, UNLOCKED = "LOCK", "UNLOCK", "LOCKED", "UNLOCKED"


@dataclass(frozen=True)
class Topics:
    """Every topic of one door."""

    door: str
    prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        return f"faceguard/{self.door}"

    event = property(lambda self: f"{self.base}/event")                 # every decision
    state = property(lambda self: f"{self.base}/state")                 # the last one, retained
    availability = property(lambda self: f"{self.base}/availability")   # online / offline
    face_unlock = property(lambda self: f"{self.base}/face_unlock")     # ON / OFF, retained
    face_unlock_set = property(lambda self: f"{self.base}/face_unlock/set")
    lock = property(lambda self: f"{self.base}/lock")                   # LOCKED / UNLOCKED
    lock_set = property(lambda self: f"{self.base}/lock/set")
    snapshot = property(lambda self: f"{self.base}/snapshot")           # JPEG bytes
    ha_status = property(lambda self: f"{self.prefix}/status")          # HA's birth: online

    @property
    def node_id(self) -> str:
        return f"faceguard_{self.door}"

    def config(self, component: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{self.node_id}/{object_id}/config"


def _common(t: Topics, object_id: str, name: str) -> dict:
    return {
        "name": name,
        "unique_id": f"{t.node_id}_{object_id}",     # stable: the door's name and the entity
        "availability_topic": t.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": {
            "identifiers": [t.node_id],
            "name": f"FaceGuard {t.door}",
            "manufacturer": "FaceGuard",
            "model": "Face-recognition door check",
            "sw_version": __version__,
        },
        "origin": {"name": "FaceGuard", "sw_version": __version__},
    }


def discovery(t: Topics, *, remote_unlock: bool, snapshot: bool) -> dict[str, dict | None]:
    """{config topic: payload}; None = remove that entity (an empty retained message)."""
    out: dict[str, dict | None] = {
        t.config("event", "decision"): {
            **_common(t, "decision", "Decision"),
            "state_topic": t.event,
            "event_types": EVENT_TYPES,
            "icon": "mdi:door",
        },
        t.config("sensor", "last_person"): {
            **_common(t, "last_person", "Last person"),
            "state_topic": t.state,
            "value_template": "{{ value_json.name or 'stranger' }}",
            "json_attributes_topic": t.state,
            "icon": "mdi:account",
        },
        t.config("switch", "face_unlock"): {
            **_common(t, "face_unlock", "Face unlock"),
            "command_topic": t.face_unlock_set,
            "state_topic": t.face_unlock,
            "payload_on": ON,
            "payload_off": OFF,
            "state_on": ON,
            "state_off": OFF,
            "icon": "mdi:face-recognition",
        },
    }
    out[t.config("lock", "door")] = None if not remote_unlock else {
        **_common(t, "door", "Door"),
        "command_topic": t.lock_set,
        "state_topic": t.lock,
        "payload_lock": LOCK,
        "payload_unlock": UNLOCK,
        "state_locked": LOCKED,
        "state_unlocked": UNLOCKED,
    }
    out[t.config("image", "last_face")] = None if not snapshot else {
        **_common(t, "last_face", "Last face"),
        "image_topic": t.snapshot,
        "content_type": "image/jpeg",
    }
    return out
