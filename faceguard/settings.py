"""User settings: one dataclass, stored as JSON in the config folder.

Every value is validated on load and on save; a bad value raises SettingsError naming the key,
so the settings dialog can refuse it with the reason and the CLI can print it.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from faceguard import paths
from faceguard.atomic import write_text_atomic
from faceguard.errors import SettingsError
from faceguard.inputs import read_limited

PROVIDERS = ("auto", "cuda", "cpu")
MAX_SETTINGS_BYTES = 1 << 20
DOOR_KINDS = ("none", "command", "webhook", "serial")
MODES = ("identify", "verify")
# The photo check's bar (faceguard/access/liveness.py): waved prints reach 0.07-0.25, real
# faces 0.31-1.23, at 5, 10 or 30 frames per second (benchmarks/liveness.py).
DEFAULT_MIN_MOTION = 0.3

# The one place for each numeric setting's valid range, (low, high, unit): Settings.validate
# and the Decider both check here. Ends are inclusive, except where a value of 0 (or 2) makes
# no sense (open ranges are marked by the `open_low` / `open_high` sets below).
RANGES: dict[str, tuple[float, float, str]] = {
    "threshold": (0.0, 4.0, "a squared L2 distance"),
    "window_frames": (1, 60, "frames"),
    "stranger_frames": (1, 120, "frames"),
    "cooldown_s": (0, 3600, "seconds"),
    "claim_timeout_s": (1, 120, "seconds"),
    "photo_check_min_motion": (0.0, 2.0, ""),
    "photo_check_timeout_s": (1.0, 60.0, "seconds"),
    "log_retention_days": (1, 3650, "days"),
    "site_max_stale_s": (0, 30 * 86400, "seconds"),
    "min_face_px": (20, 400, "pixels"),
    "full_detect_every": (1, 30, "frames"),
    "photo_retry_wait_s": (0, 3600, "seconds"),
    "face_suspend_s": (60, 86400, "seconds"),
}
_OPEN_ENDS = {"threshold", "photo_check_min_motion"}


def check_range(key: str, value: float) -> None:
    """Raise SettingsError naming ``key`` when ``value`` is outside RANGES[key]."""
    low, high, unit = RANGES[key]
    inside = low < value < high if key in _OPEN_ENDS else low <= value <= high
    if not inside:
        what = f"{unit} " if unit and key == "threshold" else ""
        tail = f" {unit}" if unit and key != "threshold" else ""
        raise SettingsError(f"Setting '{key}': must be {what}between {low:g} and {high:g}{tail}.")


def check_confirm_frames(confirm_frames: int, window_frames: int) -> None:
    if not 1 <= confirm_frames <= window_frames:
        raise SettingsError(f"Setting 'confirm_frames': must be between 1 and window_frames ({window_frames}).")


_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _check_types(obj, prefix: str = "") -> None:
    """A hand-edited file can hold "five" or true where a number belongs: refuse it naming the
    key, instead of failing later with a bare TypeError/ValueError (or accepting true as 1)."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        expected = float if f.name == "threshold" else type(f.default)
        if expected not in _TYPE_WORDS or (f.name == "threshold" and value is None):
            continue  # the door group is checked on its own; None = the model default
        if expected is float:   # NaN and infinity are no setting (NaN passes no range check)
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        elif expected is int:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        else:
            ok = isinstance(value, expected)
        if not ok:
            raise SettingsError(f"Setting '{prefix}{f.name}': must be {_TYPE_WORDS[expected]}, "
                                f"not {value!r}.")


@dataclass
class DoorSettings:
    kind: str = "none"
    command: str = ""                 # shell command; {name} {employee_id} {distance} placeholders
    url: str = ""                     # webhook: POST JSON here
    serial_port: str = ""             # e.g. /dev/ttyUSB0
    serial_baud: int = 9600
    serial_open_bytes: str = "A0 01 01 A2"   # hex bytes sent to open the relay
    serial_close_bytes: str = "A0 01 00 A1"  # hex bytes sent to close it
    open_seconds: float = 3.0
    timeout_s: float = 5.0
    retries: int = 2

    def validate(self) -> DoorSettings:
        def bad(key: str, why: str) -> SettingsError:
            return SettingsError(f"Setting 'door.{key}': {why}")

        if self.kind not in DOOR_KINDS:
            raise bad("kind", f"must be one of {', '.join(DOOR_KINDS)}, not '{self.kind}'.")
        if self.kind == "command" and not self.command.strip():
            raise bad("command", "is empty; give the shell command that opens the door.")
        if self.kind == "webhook" and not self.url.startswith(("http://", "https://")):
            raise bad("url", "must start with http:// or https://.")
        if self.kind == "serial" and not self.serial_port:
            raise bad("serial_port", "is empty; give the relay's serial port, e.g. /dev/ttyUSB0.")
        for key in ("serial_open_bytes", "serial_close_bytes"):
            try:
                bytes.fromhex(getattr(self, key))
            except ValueError as exc:
                raise bad(key, "must be hex bytes such as 'A0 01 01 A2'.") from exc
        if not (0 < self.timeout_s <= 120):
            raise bad("timeout_s", "must be between 0 and 120 seconds.")
        if not (0 <= self.retries <= 10):
            raise bad("retries", "must be between 0 and 10.")
        if not (0 < self.open_seconds <= 600):      # 1e9 s would hold the door open for 31 years
            raise bad("open_seconds", "must be between 0 and 600 seconds.")
        if not (50 <= self.serial_baud <= 4_000_000):
            raise bad("serial_baud", "must be between 50 and 4000000.")
        return self


CARD_FORMATS = ("wiegand26", "raw")


@dataclass
class MqttSettings:
    """MQTT (faceguard/outputs/mqtt.py): events, state, availability, Home Assistant discovery."""

    url: str = ""                     # mqtt://host:1883 or mqtts://host:8883; "" = off
    door_name: str = "door"           # topics faceguard/<door_name>/…; one HA device per door
    username: str = ""
    password: str = ""                # secret: never shown by `faceguard settings show`
    ca_file: str = ""                 # mqtts: the broker's CA certificate (PEM); "" = system CAs
    discovery: bool = True            # Home Assistant discovery configs under discovery_prefix
    discovery_prefix: str = "homeassistant"
    remote_unlock: bool = False       # a lock entity whose unlock opens the door (logged)
    snapshot: bool = False            # the face snapshot as an image entity (biometric data!)

    def validate(self) -> MqttSettings:
        if self.url and not self.url.startswith(("mqtt://", "mqtts://")):
            raise SettingsError("Setting 'mqtt.url': must start with mqtt:// or mqtts://, e.g. "
                                "mqtt://192.168.1.10:1883.")
        if not _TOPIC_WORD.fullmatch(self.door_name):
            raise SettingsError("Setting 'mqtt.door_name': use letters, digits, - and _ only "
                                f"(it is part of MQTT topics), not '{self.door_name}'.")
        if not self.discovery_prefix or any(c in self.discovery_prefix for c in "#+ "):
            raise SettingsError("Setting 'mqtt.discovery_prefix': must be a topic without "
                                "spaces, # or +, e.g. homeassistant.")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise SettingsError(f"Setting 'mqtt.ca_file': no file at {self.ca_file}.")
        return self


@dataclass
class WebhookSettings:
    """Every decision POSTed as signed JSON (faceguard/outputs/webhook.py)."""

    url: str = ""                     # "" = off
    secret: str = ""                  # HMAC-SHA256 key; never shown by `settings show`
    timeout_s: float = 5.0

    def validate(self) -> WebhookSettings:
        if self.url and not self.url.startswith(("http://", "https://")):
            raise SettingsError("Setting 'webhook.url': must start with http:// or https://.")
        if self.url and len(self.secret) < 16:
            raise SettingsError("Setting 'webhook.secret': give at least 16 characters, so the "
                                "receiver can tell the door's messages from forged ones.")
        if not (0 < self.timeout_s <= 120):
            raise SettingsError("Setting 'webhook.timeout_s': must be between 0 and 120 seconds.")
        return self


@dataclass
class OsdpSettings:
    """FaceGuard as an OSDP reader (PD) on the access panel's RS-485 line (outputs/osdp.py)."""

    port: str = ""                    # serial port, e.g. /dev/ttyUSB0; "" = off
    baud: int = 9600
    address: int = 1                  # the reader's address on the line, 0-126
    card_format: str = "wiegand26"    # wiegand26 (facility:card) | raw (bits as hex)
    scbk: str = ""                    # secure channel key (32 hex); "" = install mode (SCBK-D)

    def validate(self) -> OsdpSettings:
        if self.baud not in (9600, 19200, 38400, 57600, 115200, 230400):
            raise SettingsError("Setting 'osdp.baud': must be 9600, 19200, 38400, 57600, 115200 "
                                "or 230400.")
        if not 0 <= self.address <= 126:
            raise SettingsError("Setting 'osdp.address': must be between 0 and 126.")
        if self.card_format not in CARD_FORMATS:
            raise SettingsError(f"Setting 'osdp.card_format': must be one of "
                                f"{', '.join(CARD_FORMATS)}, not '{self.card_format}'.")
        if self.scbk:
            try:
                ok = len(bytes.fromhex(self.scbk)) == 16
            except ValueError:
                ok = False
            if not ok:
                raise SettingsError("Setting 'osdp.scbk': must be 32 hex digits (a 16-byte key), "
                                    "or empty for install mode.")
        return self


# The setting groups besides `door`: {key in the JSON: dataclass}.
GROUPS: dict[str, type[MqttSettings | WebhookSettings | OsdpSettings]] = {"mqtt": MqttSettings, "webhook": WebhookSettings, "osdp": OsdpSettings}
_TOPIC_WORD = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class Settings:
    camera: str = "0"                 # device index, URL or video file
    loop_video: bool = False
    provider: str = "auto"            # auto | cuda | cpu
    model_id: str = ""                # "" = the manifest's default embedder
    flip_average: bool = True
    threshold: float | None = None    # None = the model's calibrated default
    mode: str = "identify"            # identify | verify
    confirm_frames: int = 3           # N of the last M frames must agree to grant
    window_frames: int = 5            # M
    stranger_frames: int = 5          # K frames of a stranger before DENIED
    cooldown_s: float = 10.0          # one visit = one event per person
    # A recognised face must also prove it is a live head: move like one (not a flat picture)
    # and follow a dot moving on a random path (not a replayed video).
    photo_check: bool = True
    photo_check_min_motion: float = DEFAULT_MIN_MOTION   # see faceguard/access/liveness.py
    photo_check_timeout_s: float = 12.0    # recognised but not moved for this long: DENIED
    challenge: bool = True            # with the photo check: follow a dot on a random path per visit
    door: DoorSettings = field(default_factory=DoorSettings)
    admin_pin_hash: str = ""          # scrypt hash; "" = no PIN set
    log_retention_days: int = 30
    keep_snapshots: bool = True
    # The second factor (issue 21): a PIN from everyone at this door (a server room); learned
    # templates from PIN-confirmed visits; a badge reader typing the employee id instead of the PIN.
    require_pin: bool = False
    learn_templates: bool = True
    badge_as_factor: bool = False
    # Off: the door decides nothing (nights, holidays) and says so on screen; Home Assistant's
    # "face unlock" switch sets it (faceguard/outputs/mqtt.py).
    face_unlock: bool = True
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    osdp: OsdpSettings = field(default_factory=OsdpSettings)
    # A door of a site that has not heard from it for longer than this decides no more from its
    # copy (DENIED, saying why); 0 = no cap (issue 22 item 9).
    site_max_stale_s: float = 0.0
    # Speed (vision/guided.py): no face smaller than this (pixels of the camera picture, or of
    # its 1280-px reduction) is searched for at the door: 60 px is where the photo check stops
    # measuring (access/liveness.MIN_EYE_DISTANCE_PX), a person farther than the door. The
    # whole picture is searched every full_detect_every frames (between, only where faces are
    # followed, and wherever the picture changed).
    min_face_px: int = 60
    full_detect_every: int = 5
    # Failed photo checks count per person (faceguard/access/attempts.py): the 2nd within 5
    # minutes means this wait; the 3rd suspends face entry for this long ("attack suspected").
    photo_retry_wait_s: float = 30.0
    face_suspend_s: float = 900.0
    # Speed (access/lazy_flip.py): with flip_average, the door adds the mirror pass only to faces
    # that vote on an undecided visit or lie near the threshold (votes as with it everywhere).
    lazy_flip: bool = True

    def validate(self) -> Settings:
        def bad(key: str, why: str) -> SettingsError:
            return SettingsError(f"Setting '{key}': {why}")

        _check_types(self)
        if not isinstance(self.door, DoorSettings):
            raise bad("door", "must be a group of door settings.")
        _check_types(self.door, "door.")
        if self.provider not in PROVIDERS:
            raise bad("provider", f"must be one of {', '.join(PROVIDERS)}, not '{self.provider}'.")
        if self.mode not in MODES:
            raise bad("mode", f"must be one of {', '.join(MODES)}, not '{self.mode}'.")
        if self.threshold is not None:
            check_range("threshold", float(self.threshold))
        for key in ("window_frames", "stranger_frames", "cooldown_s", "photo_check_min_motion",
                    "photo_check_timeout_s", "log_retention_days", "site_max_stale_s",
                    "photo_retry_wait_s", "face_suspend_s"):
            check_range(key, getattr(self, key))
        check_confirm_frames(self.confirm_frames, self.window_frames)
        check_range("min_face_px", self.min_face_px)
        check_range("full_detect_every", self.full_detect_every)
        if not str(self.camera).strip():
            raise bad("camera", "must name a device index, a URL or a video file.")
        self.door.validate()
        for group in GROUPS:
            value: MqttSettings | WebhookSettings | OsdpSettings = getattr(self, group)
            if not isinstance(value, GROUPS[group]):
                raise bad(group, f"must be a group of {group} settings.")
            _check_types(value, f"{group}.")
            value.validate()
        return self

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Settings:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise SettingsError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        raw = dict(raw)
        groups = {name: _group_from_dict(name, raw.pop(name, {})) for name in GROUPS}
        door_raw = raw.pop("door", {}) or {}
        if not isinstance(door_raw, dict):
            raise SettingsError(f"Setting 'door': must be a group of door settings ({{...}}), not {door_raw!r:.40}.")
        door_known = {f.name for f in fields(DoorSettings)}
        if set(door_raw) - door_known:
            raise SettingsError(f"Unknown door setting(s): {', '.join(sorted(set(door_raw) - door_known))}.")
        try:
            return cls(door=DoorSettings(**door_raw), **groups, **raw).validate()
        except TypeError as exc:
            raise SettingsError(f"Settings file has a value of the wrong type ({exc}).") from exc


def _group_from_dict(name: str, raw: object):
    """One setting group (mqtt, webhook, osdp) from its JSON object."""
    if not isinstance(raw, dict):
        raise SettingsError(f"Setting '{name}': must be a group of {name} settings ({{...}}).")
    known = {f.name for f in fields(GROUPS[name])}
    if set(raw) - known:
        raise SettingsError(f"Unknown {name} setting(s): {', '.join(sorted(set(raw) - known))}.")
    return GROUPS[name](**raw)


def load_settings(path: Path | None = None) -> Settings:
    """Settings from the config folder; defaults when no file exists yet."""
    path = path or paths.settings_file()
    if not path.exists():
        return Settings()
    # a FIFO or device in its place would block or never end; a real one is a few kB
    data = read_limited(path, MAX_SETTINGS_BYTES, "a settings file (JSON)", SettingsError)
    try:
        raw = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise SettingsError(f"The settings file {path} is nested too deeply to be settings; fix or "
                            "delete it.") from None
    except ValueError as exc:   # UnicodeDecodeError too
        raise SettingsError(f"The settings file {path} cannot be read ({str(exc)[:200]}); fix or "
                            "delete it.") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"The settings file {path} is not a JSON object; fix or delete it.")
    return Settings.from_dict(raw)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Validate, then replace the file atomically (a crash never leaves half a file)."""
    settings.validate()
    path = path or paths.settings_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(settings.to_dict(), indent=2))
    except OSError as exc:  # e.g. the config folder is read-only or is a file
        raise SettingsError(f"Settings could not be saved to {path} ({exc.strerror}).") from exc
    return path
