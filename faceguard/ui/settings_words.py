"""The Settings window's words: what each choice and field is called, and refusals worded with
the field a person can see instead of the setting's key."""

from __future__ import annotations

import math
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


# -- strictness in words (issue 24): what a threshold means for strangers ---------------------
def stranger_rate(curve, threshold: float, people: int) -> float:
    """The share of a stranger's frames taken for someone enrolled, at `threshold` with
    `people` enrolled, from the model's calibration curve. Each point (n, t) of the curve is the
    threshold at which 1 % of stranger frames match one of n people, so one stranger-to-person
    comparison passes t with probability about 0.01 / n; between points that probability is
    interpolated on a log scale (outside them, extended along the nearest segment), and n
    people give n chances: 1 - (1 - p)^n."""
    points = sorted((float(t), math.log(0.01 / n)) for n, t in curve)
    if len(points) < 2:
        return math.nan
    if threshold <= points[0][0]:
        (t0, l0), (t1, l1) = points[0], points[1]
    elif threshold >= points[-1][0]:
        (t0, l0), (t1, l1) = points[-2], points[-1]
    else:
        (t0, l0), (t1, l1) = next((a, b) for a, b in zip(points, points[1:], strict=False) if a[0] <= threshold <= b[0])
    p = min(1.0, math.exp(l0 + (threshold - t0) * (l1 - l0) / (t1 - t0)))
    return 1.0 - (1.0 - p) ** max(1, people)


def strictness_words(curve, threshold: float, people: int, calibrated: float | None) -> str:
    """E.g. "With 12 people enrolled, a stranger's face is taken for one of them in about 1 of
    100 frames (the calibrated setting); a lower value lets fewer strangers in but asks more
    employees to look again."."""
    rate = stranger_rate(curve, threshold, people)
    if not math.isfinite(rate):
        return ""
    who = f"With {people} {'person' if people == 1 else 'people'} enrolled"
    one_in = 1 / rate if rate > 0 else math.inf
    if math.isfinite(one_in):     # two significant digits: "1 of 100", not "1 of 104"
        one_in = round(one_in, -max(0, int(math.floor(math.log10(one_in))) - 1))
    odds = f"about 1 of {one_in:,.0f} frames" if rate < 0.5 else "most frames"
    if calibrated is None or abs(threshold - calibrated) < 0.0005:
        where = " (the calibrated setting)"
    elif threshold < calibrated:
        where = " (stricter than calibrated: more employees are asked to look again)"
    else:
        where = " (looser than calibrated: more strangers let in)"
    return f"{who}, a stranger's face is taken for one of them in {odds}{where}."


TYPICAL_FPS = 10.0    # checked frames a second on an office PC's CPU (benchmarks/engine.py)


def frames_words(confirm: int, stranger: int, fps: float | None) -> str:
    """The frame counts as time: "At 8 checked frames a second (this PC now): let in after
    about 0.4 s of a face, a stranger refused after about 0.6 s."."""
    measured = fps is not None and fps >= 0.5
    rate = fps if measured else TYPICAL_FPS
    where = "this PC now" if measured else "a typical office PC"
    return (f"At {rate:.0f} checked frames a second ({where}): let in after about {confirm / rate:.1f} s "
            f"of a face, a stranger refused after about {stranger / rate:.1f} s.")


# -- admin PINs a passer-by guesses first -----------------------------------------------------
def trivial_pin(pin: str) -> str:
    """Why a PIN is easy to guess ("" when it is not): one digit repeated (0000, 1111), a
    straight run (1234, 9876), a pair repeated (1212), or a year (1990, 2024)."""
    pin = pin.strip()
    if not pin.isdigit():
        return ""
    steps = {int(b) - int(a) for a, b in zip(pin, pin[1:], strict=False)}
    if len(set(pin)) == 1:
        return f"{pin} is one digit repeated"
    if steps in ({1}, {-1}):
        return f"{pin} is a run of digits"
    if len(pin) % 2 == 0 and pin == pin[:2] * (len(pin) // 2):
        return f"{pin} is a pair repeated"
    if len(pin) == 4 and pin[:2] in ("19", "20"):
        return f"{pin} looks like a year"
    return ""
