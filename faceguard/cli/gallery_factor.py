"""`faceguard gallery set-pin | auth | credential`: a person's second factor (issue 21) and
access-card number (OSDP) from the command line. The PIN is read from standard input, without
echo on a terminal, and never printed or logged."""

from __future__ import annotations

import argparse

from faceguard.cli.common import command, open_gallery


def cmd_gallery_credential(args) -> int:
    """A person's access-card number for the OSDP panel ("-" clears it)."""
    from faceguard.gallery.credentials import set_credential

    with open_gallery() as gallery:
        person = gallery.person(args.employee_id)
        if person is None:
            from faceguard.errors import GalleryError

            raise GalleryError(f"No employee has the id '{args.employee_id}'.")
        stored = set_credential(gallery, person.employee_id, None if args.number == "-" else args.number)
    print(f"{person.name}: card number {stored}" if stored else f"{person.name}: no card number")
    return 0


def _read_pin() -> str:
    """The PIN from standard input: asked without echo on a terminal, else its first line."""
    import getpass
    import sys

    from faceguard.errors import FaceGuardError

    if sys.stdin.isatty():
        first = getpass.getpass("PIN (4-8 digits): ")
        if getpass.getpass("the same PIN again: ") != first:
            raise FaceGuardError("The two PINs differ; nothing was changed. Run the command again.")
        return first
    return sys.stdin.readline().strip()


def cmd_gallery_set_pin(args) -> int:
    import sys

    from faceguard.gallery import pins

    pin = None if args.clear else pins.check_pin(_read_pin())
    with open_gallery() as gallery:
        person = gallery.person(args.employee_id)
        pins.set_pin(gallery, args.employee_id, pin)
        warning = None if pin is None else pins.pin_warning(pin)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{person.name} ({person.employee_id}): PIN {'removed' if pin is None else 'set'}")
    return 0


def cmd_gallery_auth(args) -> int:
    from faceguard.gallery import pins

    with open_gallery() as gallery:
        person = gallery.person(args.employee_id)
        pins.set_auth_mode(gallery, args.employee_id, args.mode)
        has_pin = pins.has_pin(gallery, args.employee_id)
    words = {"face": "the face alone (a doubtful face is denied)",
             "grey-pin": "the face, and a PIN when the face is doubtful",
             "face+pin": "the face and a PIN, always"}
    print(f"{person.name} ({person.employee_id}): {words[args.mode]}")
    if args.mode != "face" and not has_pin:
        print(f"note: {person.employee_id} has no PIN yet; set one with "
              f"'faceguard gallery set-pin {person.employee_id}'")
    return 0


def register(gsub: argparse._SubParsersAction) -> None:
    p = command(gsub, "set-pin", cmd_gallery_set_pin,
                help="set a person's PIN (4-8 digits, read from standard input; no echo)")
    p.add_argument("employee_id")
    p.add_argument("--clear", action="store_true", help="remove the PIN instead")
    p = command(gsub, "auth", cmd_gallery_auth, help="how a person is let in: face | grey-pin | face+pin")
    p.add_argument("employee_id")
    p.add_argument("mode", choices=("face", "grey-pin", "face+pin"))
    p = command(gsub, "credential", cmd_gallery_credential,
                help="a person's access-card number for the OSDP panel (facility:card or hex)")
    p.add_argument("employee_id")
    p.add_argument("number", help="12:3456 (26-bit Wiegand facility:card), hex digits, or - to clear")
