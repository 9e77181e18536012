"""`faceguard settings show [--json]` and `faceguard settings set KEY VALUE`: the settings from
the command line (a kiosk box is often administered over ssh).

Keys are the settings file's names, groups with a dot: `threshold`, `door.kind`, `mqtt.url`,
`webhook.secret`, `osdp.port` … A value is checked by the same rules as the Settings dialog
(Settings.validate) before the file is replaced. Secrets are never printed back: `show` says
only whether one is set, and `set KEY -` reads the value from standard input, so it stays out
of the shell's history.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields, is_dataclass

from faceguard.cli.common import JSON_STDOUT, command

SECRETS = frozenset({"admin_pin_hash", "mqtt.password", "webhook.secret", "osdp.scbk"})
# Set elsewhere, with their own checks: the PIN in the window (or `admin reset-pin`).
NOT_HERE = {"admin_pin_hash": "set the admin PIN in the window (Settings → Admin); "
                              "`faceguard admin reset-pin` removes a forgotten one"}
_TRUE, _FALSE = ("true", "on", "yes", "1"), ("false", "off", "no", "0")


def flat(settings) -> dict[str, object]:
    """{"threshold": …, "door.kind": …, "mqtt.url": …}: every setting by its dotted key."""
    out: dict[str, object] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if is_dataclass(value):
            out.update((f"{f.name}.{g.name}", getattr(value, g.name)) for g in fields(value))
        else:
            out[f.name] = value
    return out


def shown(key: str, value: object) -> object:
    if key in SECRETS:
        return "(set)" if value else "(not set)"
    return value


def parse_value(key: str, text: str, current: object) -> object:
    """The text of VALUE as the type the setting has; SettingsError in plain words."""
    from faceguard.errors import SettingsError

    word = text.strip().lower()
    if key == "threshold":
        if word in ("default", "none", ""):
            return None
        current = 0.0
    if isinstance(current, bool):
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise SettingsError(f"Setting '{key}': must be on or off (true/false), not '{text}'.")
    if isinstance(current, int | float):
        try:
            return int(word) if isinstance(current, int) else float(word)
        except ValueError:
            kind = "a whole number" if isinstance(current, int) else "a number"
            raise SettingsError(f"Setting '{key}': must be {kind}, not '{text}'.") from None
    return text


def set_value(settings, key: str, value: object):
    """A copy of ``settings`` with ``key`` set; validated like the dialog does."""
    from faceguard.settings import Settings

    raw = settings.to_dict()
    group, _, name = key.rpartition(".")
    (raw[group] if group else raw)[name] = value
    return Settings.from_dict(raw)


def cmd_show(args) -> int:
    from faceguard import paths
    from faceguard.settings import load_settings

    values = {k: shown(k, v) for k, v in flat(load_settings()).items()}
    if args.json:
        print(json.dumps(values, indent=2))
        return 0
    print(f"# {paths.settings_file()}")
    for key, value in values.items():
        print(f"{key} = {json.dumps(value)}")
    return 0


def cmd_set(args) -> int:
    from faceguard import paths
    from faceguard.errors import SettingsError
    from faceguard.settings import load_settings, save_settings

    settings = load_settings()
    values = flat(settings)
    key = args.key
    if key not in values:
        close = [k for k in values if k.endswith("." + key) or k.split(".")[-1] == key]
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise SettingsError(f"There is no setting '{key}'.{hint} `faceguard settings show` lists "
                            "them all.")
    if key in NOT_HERE:
        raise SettingsError(f"Setting '{key}' is not set here: {NOT_HERE[key]}.")
    text = args.value
    if text == "-":
        text = sys.stdin.readline().rstrip("\r\n")
    new = set_value(settings, key, parse_value(key, text, values[key]))
    path = save_settings(new, paths.settings_file())
    after = flat(new)[key]
    if key in SECRETS:
        print(f"{key} {'set' if after else 'cleared'} ({path})")
    else:
        print(f"{key} = {json.dumps(after)} ({path})")
    return 0


def register(sub) -> None:
    s = sub.add_parser("settings", help="show or change the settings (as the Settings dialog)")
    ssub = s.add_subparsers(dest="settings_command", required=True)
    command(ssub, "show", cmd_show, parents=[JSON_STDOUT],
            help="every setting by its key (secrets only as set / not set)")
    p = command(ssub, "set", cmd_set, help="change one setting, checked like the dialog does")
    p.add_argument("key", metavar="KEY", help="e.g. mqtt.url, webhook.secret, osdp.port, threshold")
    p.add_argument("value", metavar="VALUE", help="the new value; '-' reads it from stdin "
                                                   "(secrets stay out of the shell history)")
