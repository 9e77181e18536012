"""User settings: one dataclass, stored as JSON in the config folder.

Every value is validated on load and on save; a bad value raises SettingsError naming the key,
so the settings dialog can refuse it with the reason and the CLI can print it.
"""

from __future__ import annotations

import json
import numbers
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
# The photo check's bar (faceguard/access/liveness.py): waved prints reach 0.08-0.23, real
# faces 0.49-1.15 (benchmarks/liveness.py).
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
        if expected is float:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
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
        return self


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
    photo_check_timeout_s: float = 8.0    # recognised but not moved for this long: DENIED
    challenge: bool = True            # with the photo check: follow a dot on a random path per visit
    door: DoorSettings = field(default_factory=DoorSettings)
    admin_pin_hash: str = ""          # scrypt hash; "" = no PIN set
    log_retention_days: int = 30
    keep_snapshots: bool = True
    # Failed photo checks count per person (faceguard/access/attempts.py): the 2nd within 5
    # minutes means this wait; the 3rd suspends face entry for this long ("attack suspected").
    photo_retry_wait_s: float = 30.0
    face_suspend_s: float = 900.0

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
                    "photo_check_timeout_s", "log_retention_days", "photo_retry_wait_s", "face_suspend_s"):
            check_range(key, getattr(self, key))
        check_confirm_frames(self.confirm_frames, self.window_frames)
        if not str(self.camera).strip():
            raise bad("camera", "must name a device index, a URL or a video file.")
        self.door.validate()
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
        door_raw = raw.pop("door", {}) or {}
        if not isinstance(door_raw, dict):
            raise SettingsError(f"Setting 'door': must be a group of door settings ({{...}}), not {door_raw!r:.40}.")
        door_known = {f.name for f in fields(DoorSettings)}
        if set(door_raw) - door_known:
            raise SettingsError(f"Unknown door setting(s): {', '.join(sorted(set(door_raw) - door_known))}.")
        try:
            return cls(door=DoorSettings(**door_raw), **raw).validate()
        except TypeError as exc:
            raise SettingsError(f"Settings file has a value of the wrong type ({exc}).") from exc


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
