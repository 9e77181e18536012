"""`faceguard admin reset-pin`: the way back in when the admin PIN is forgotten.

The PIN guards the window, not the computer: whoever can write the user's config folder can
edit the settings file anyway, so removing the PIN from here needs exactly that access and
nothing more. The command says so, and says where a new PIN is set.
"""

from __future__ import annotations

import argparse

from faceguard.cli.common import command


def cmd_reset_pin(args) -> int:
    from faceguard import paths
    from faceguard.errors import SettingsError
    from faceguard.settings import load_settings, save_settings

    path = paths.settings_file()
    settings = load_settings(path)
    if not settings.admin_pin_hash:
        print(f"No admin PIN is set (settings file {path}); nothing to reset.")
        return 0
    settings.admin_pin_hash = ""
    try:
        save_settings(settings, path)
    except SettingsError as exc:
        raise SettingsError(f"{exc} Resetting the PIN needs write access to the config folder "
                            f"{path.parent}: run this as the user who runs FaceGuard.") from exc
    print(f"The admin PIN was removed from {path}.\n"
          "This works for anyone who can write to that config folder, so keep that account "
          "private. Set a new PIN in the window: FaceGuard → Settings → Admin.")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("admin", help="admin PIN recovery")
    asub = a.add_subparsers(dest="admin_command", required=True)
    command(asub, "reset-pin", cmd_reset_pin,
            help="remove a forgotten admin PIN (needs write access to the config folder)")
