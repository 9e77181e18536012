"""`faceguard settings show/set`: the dialog's rules from the command line; secrets never shown."""

from __future__ import annotations

import io
import json

from faceguard.cli import main
from faceguard.settings import load_settings

SECRET = "s3cret-value-for-the-hook"


def run(capsys, *argv, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_set_checks_like_the_dialog_and_saves(capsys):
    assert run(capsys, "settings", "set", "mqtt.url", "mqtt://127.0.0.1:1883")[0] == 0
    assert load_settings().mqtt.url == "mqtt://127.0.0.1:1883"
    code, _, err = run(capsys, "settings", "set", "mqtt.url", "http://broker")
    assert code == 2 and "mqtt.url" in err and "mqtt://" in err and "Traceback" not in err
    code, _, err = run(capsys, "settings", "set", "threshold", "7")
    assert code == 2 and "between 0 and 4" in err
    code, _, err = run(capsys, "settings", "set", "osdp.address", "twelve")
    assert code == 2 and "whole number" in err
    code, _, err = run(capsys, "settings", "set", "url", "x")
    assert code == 2 and "door.url" in err and "webhook.url" in err
    assert run(capsys, "settings", "set", "face_unlock", "off")[0] == 0
    assert run(capsys, "settings", "set", "threshold", "0.35")[0] == 0
    saved = load_settings()
    assert saved.face_unlock is False and saved.threshold == 0.35
    assert saved.mqtt.url == "mqtt://127.0.0.1:1883"      # a refused value changed nothing


def test_secrets_are_never_printed_back(capsys, monkeypatch):
    code, out, _ = run(capsys, "settings", "set", "webhook.secret", "-", stdin=SECRET + "\n",
                       monkeypatch=monkeypatch)
    assert code == 0 and SECRET not in out and "webhook.secret set" in out
    assert run(capsys, "settings", "set", "webhook.url", "https://hooks.example/door")[0] == 0
    assert run(capsys, "settings", "set", "mqtt.password", "broker-pass")[0] == 0
    assert load_settings().webhook.secret == SECRET
    code, out, _ = run(capsys, "settings", "show")
    assert code == 0 and SECRET not in out and "broker-pass" not in out
    assert 'webhook.secret = "(set)"' in out and 'osdp.scbk = "(not set)"' in out
    code, out, _ = run(capsys, "settings", "show", "--json")
    shown = json.loads(out)
    assert shown["webhook.url"] == "https://hooks.example/door"
    assert shown["webhook.secret"] == "(set)" and shown["mqtt.password"] == "(set)"
    assert SECRET not in out
    code, _, err = run(capsys, "settings", "set", "admin_pin_hash", "x")
    assert code == 2 and "admin PIN" in err


def test_a_webhook_needs_its_secret_first(capsys):
    code, _, err = run(capsys, "settings", "set", "webhook.url", "https://hooks.example/door")
    assert code == 2 and "webhook.secret" in err and "16 characters" in err


def test_the_dialogs_door_tab_has_the_same_keys_and_never_shows_a_secret(qtbot, capsys):
    from conftest import screenshot

    from faceguard.ui.settings_dialog import SettingsDialog

    assert run(capsys, "settings", "set", "webhook.secret", SECRET)[0] == 0
    d = SettingsDialog(load_settings(), save=True, default_threshold=0.18, gallery_size=3)
    qtbot.addWidget(d)
    d.show()
    for key in ("mqtt.url", "mqtt.door_name", "webhook.url", "webhook.secret", "osdp.port",
                "face_unlock"):
        assert key in d.fields
    assert d.outputs.webhook_secret.text() == ""                 # the secret is not shown
    assert d.outputs.webhook_secret.placeholderText() == "set; type to replace"
    d.outputs.mqtt_url.setText("http://wrong")
    d.accept()
    assert d.result() == 0 and "mqtt" in d.error.text().lower()   # the CLI's rule, in the dialog
    d.outputs.mqtt_url.setText("mqtt://127.0.0.1:1883")
    d.outputs.webhook_url.setText("https://hooks.example/door")
    d.outputs.face_unlock.setChecked(False)
    d.show_field(d.outputs.mqtt_url)
    screenshot(d, "settings_dialog_door_outputs")
    d.accept()
    assert d.result() == 1, d.error.text()
    saved = load_settings()
    assert saved.mqtt.url == "mqtt://127.0.0.1:1883" and saved.face_unlock is False
    assert saved.webhook.secret == SECRET                          # kept, not blanked
