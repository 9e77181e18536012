"""The one message every output sends for a decision: the headless JSON line's fields (``door``,
the door output's result, is null: the message leaves before the door has answered), plus
``door_name``, the event's idempotency key ``id``, the wall-clock ``at`` and a lower-case
``event_type`` (what Home Assistant's event entity reads)."""

from __future__ import annotations

import json
import time

from faceguard.access.records import Decision

# Decision kinds → event types. GRANTED and DENIED are today's; the second factor ("PIN asked")
# and the attack check add theirs (their Verdict's value, upper-case) and are mapped here.
EVENT_TYPES = {"GRANTED": "granted", "DENIED": "denied", "PIN": "pin", "PIN_ASKED": "pin",
               "ATTACK": "attack", "ATTACK_SUSPECTED": "attack", "REMOTE_UNLOCK": "remote_unlock"}


def event_type(kind: object) -> str:
    text = str(kind).upper()
    return EVENT_TYPES.get(text, text.lower())


def event_dict(decision: Decision, door: str, key: str, wall_time: float | None = None) -> dict:
    """JSON-ready; ``time`` stays the decision's own clock (clip position or since start),
    ``at`` is the wall clock (Unix seconds) when it was decided."""
    row = decision.to_dict()
    kind = "ATTACK" if decision.attack_suspected else decision.kind   # issue 20's "attack suspected"
    row.update(door=None, id=key, door_name=door, event_type=event_type(kind),
               at=time.time() if wall_time is None else wall_time)
    return row


def encode(row: dict) -> bytes:
    return json.dumps(row, default=str, separators=(",", ":")).encode("utf-8")
