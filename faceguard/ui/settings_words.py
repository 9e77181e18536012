"""The Settings window's words: what each choice and field is called, and refusals worded with
the field a person can see instead of the setting's key."""

from __future__ import annotations

import re

PROVIDER_LABELS = {"auto": "Automatic (GPU when available)", "cuda": "NVIDIA GPU (CUDA)", "cpu": "CPU"}
DOOR_LABELS = {"none": "No door output (log only)", "command": "Run a command",
               "webhook": "Call a web address (webhook)", "serial": "USB / serial relay"}
PLACEHOLDERS = ("Placeholders: {name} the person's name, {employee_id} their employee id, "
                "{distance} how close the face was (0 = identical).")

# Setting key → the label of its field here: refusals name the field a person can see.
FIELD_LABELS = {
    "camera": "Camera", "mode": "Door mode", "threshold": "Strictness",
    "confirm_frames": "Grant after", "window_frames": "Out of the last",
    "stranger_frames": "Deny a stranger after", "cooldown_s": "Quiet time per person",
    "provider": "Run on", "door.kind": "Door output", "door.command": "Command",
    "door.url": "Web address", "door.serial_port": "Serial port", "door.serial_open_bytes": "Serial port",
    "door.serial_close_bytes": "Serial port", "door.timeout_s": "Door output",
    "door.retries": "Door output", "door.open_seconds": "Keep open",
    "photo_check_min_motion": "Photo check", "photo_check_timeout_s": "Give up after",
    "log_retention_days": "Keep the access log", "admin_pin_hash": "New admin PIN",
}


def field_message(message: str) -> str:
    """A refusal with the setting's key replaced by its field's label: "Setting
    'door.serial_port': is empty; …" → "Serial port: is empty; …"."""
    def label(m: re.Match) -> str:
        return FIELD_LABELS.get(m.group(1), m.group(1))
    message = re.sub(r"Setting '([^']+)'", label, message)
    # A key inside the sentence ("… between 1 and window_frames (5)"); only keys with "_" or
    # ".", which never occur in plain prose ("camera" or "mode" may).
    for key in sorted((k for k in FIELD_LABELS if "_" in k or "." in k), key=len, reverse=True):
        message = re.sub(rf"\b{re.escape(key)}\b", FIELD_LABELS[key].lower(), message)
    return message
