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
