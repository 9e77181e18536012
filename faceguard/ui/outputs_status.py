"""The status bar's words for the door's outputs: "face unlock off" (the door decides nothing:
Home Assistant's switch, or `faceguard settings set face_unlock off`), the MQTT connection and
the OSDP panel's LED and buzzer commands."""

from __future__ import annotations

FACE_UNLOCK_OFF_TEXT = "Face unlock OFF: the door decides nothing"


def outputs_line(check) -> str:
    if check is None:
        return ""
    parts = [] if getattr(check, "face_unlock", True) else [FACE_UNLOCK_OFF_TEXT]
    outputs = getattr(check, "outputs", None)
    if outputs is not None:
        parts += [text for _, text in sorted(outputs.status().items())]
    return " · ".join(parts)
