"""Settings: JSON round trip in the private config folder; every bad value names its key."""

from __future__ import annotations

import json

import pytest

from faceguard import paths
from faceguard.errors import SettingsError
from faceguard.settings import DoorSettings, Settings, load_settings, save_settings


def custom() -> Settings:
    return Settings(camera="rtsp://10.0.0.5/door", loop_video=True, provider="cpu",
                    model_id="dlib-resnet29-v1", flip_average=False, threshold=0.1234,
                    mode="verify", confirm_frames=2, window_frames=4, stranger_frames=7,
                    cooldown_s=12.5, admin_pin_hash="scrypt$abc", log_retention_days=90,
                    keep_snapshots=False,
                    door=DoorSettings(kind="serial", serial_port="/dev/ttyUSB0", serial_baud=19200,
                                      serial_open_bytes="A0 01 01 A2", open_seconds=4.0,
                                      timeout_s=2.0, retries=3))


def test_defaults_when_no_file():
    assert not paths.settings_file().exists()
    s = load_settings()
    assert s == Settings()
    assert s.threshold is None and s.provider == "auto"


def test_round_trip_in_config_folder(tmp_path):
    s = custom()
    written = save_settings(s)
    assert written == paths.settings_file()
    assert str(written).startswith(str(tmp_path))  # the private XDG folder, not the user's
    assert load_settings() == s
    raw = json.loads(written.read_text())
    assert raw["threshold"] == 0.1234 and raw["door"]["serial_baud"] == 19200
    assert not list(written.parent.glob(".settings-*"))  # no temporary file left behind


def test_round_trip_explicit_path(tmp_path):
    path = tmp_path / "deep" / "folder" / "s.json"
    save_settings(custom(), path)
    assert load_settings(path) == custom()


INVALID = [
    ("provider", {"provider": "tpu"}),
    ("mode", {"mode": "party"}),
    ("threshold", {"threshold": 0.0}),
    ("threshold", {"threshold": 4.5}),
    ("threshold", {"threshold": "low"}),
    ("threshold", {"threshold": True}),
    ("window_frames", {"window_frames": 0}),
    ("window_frames", {"window_frames": "five"}),
    ("confirm_frames", {"confirm_frames": 6, "window_frames": 5}),
    ("confirm_frames", {"confirm_frames": 2.5}),
    ("stranger_frames", {"stranger_frames": 500}),
    ("cooldown_s", {"cooldown_s": -1}),
    ("log_retention_days", {"log_retention_days": 0}),
    ("camera", {"camera": "   "}),
    ("camera", {"camera": 0}),
    ("flip_average", {"flip_average": "yes"}),
    ("door.kind", {"door": {"kind": "carrier-pigeon"}}),
    ("door.command", {"door": {"kind": "command", "command": " "}}),
    ("door.url", {"door": {"kind": "webhook", "url": "ftp://x"}}),
    ("door.serial_port", {"door": {"kind": "serial"}}),
    ("door.serial_open_bytes", {"door": {"serial_open_bytes": "zz"}}),
    ("door.serial_close_bytes", {"door": {"serial_close_bytes": "A0 0"}}),
    ("door.timeout_s", {"door": {"timeout_s": 0}}),
    ("door.retries", {"door": {"retries": 11}}),
    ("door.retries", {"door": {"retries": "x"}}),
]


@pytest.mark.parametrize(("key", "raw"), INVALID, ids=[f"{k}={v}" for k, v in INVALID])
def test_invalid_value_names_the_key(key, raw):
    with pytest.raises(SettingsError) as info:
        Settings.from_dict(raw)
    assert f"'{key}'" in str(info.value)


def test_invalid_value_in_file_is_refused_and_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "s.json"
    save_settings(custom(), path)
    before = path.read_bytes()
    bad = custom()
    bad.window_frames = 0
    with pytest.raises(SettingsError, match="'window_frames'"):
        save_settings(bad, path)
    assert path.read_bytes() == before
    raw = json.loads(before)
    raw["cooldown_s"] = 99999
    path.write_text(json.dumps(raw))
    with pytest.raises(SettingsError, match="'cooldown_s'"):
        load_settings(path)


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"camera": "0", "threshold": ')
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(path) in str(info.value) and "fix or delete it" in str(info.value)
    path.write_text("[1, 2, 3]")
    with pytest.raises(SettingsError, match="not a JSON object"):
        load_settings(path)


def test_unknown_keys_refused():
    with pytest.raises(SettingsError, match=r"Unknown setting\(s\): colour, volume"):
        Settings.from_dict({"volume": 11, "colour": "red", "camera": "1"})
    with pytest.raises(SettingsError, match=r"Unknown door setting\(s\): laser"):
        Settings.from_dict({"door": {"laser": True}})


def test_unsaveable_location(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SettingsError, match="could not be saved"):
        save_settings(Settings(), blocker / "settings.json")


def test_numbers_of_the_other_kind_accepted():
    s = Settings.from_dict({"cooldown_s": 5, "threshold": 1, "door": {"timeout_s": 2}})
    assert s.cooldown_s == 5 and s.threshold == 1 and s.door.timeout_s == 2
