"""What several commands share: the option groups (argparse parents, each defined once), the
pipeline as the options and Settings ask for it, and the refusal of options a mode ignores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def command(sub, name: str, func, *, parents=(), **kw) -> argparse.ArgumentParser:
    """Add sub-command `name` running `func(args)`; the parser rides along for its usage errors."""
    p = sub.add_parser(name, parents=list(parents), **kw)
    p.set_defaults(func=func, command_parser=p)
    return p


# --flip / --no-flip: which embedding (and so which embedding id) a command works with.
FLIP = _parent()
FLIP.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                  help="embed chip + mirror image averaged, or (--no-flip) the chip only "
                       "(default: from settings)")

# --provider plus --flip / --no-flip: every command that runs the face pipeline.
ENGINE = argparse.ArgumentParser(add_help=False, parents=[FLIP])
ENGINE.add_argument("--provider", choices=("auto", "cuda", "cpu"), default=None,
                    help="onnxruntime execution provider (default: from settings, 'auto')")

# --camera: every command that reads frames.
CAMERA = _parent()
CAMERA.add_argument("--camera", default=None, metavar="SRC",
                    help="device index, stream URL or video file")

# --json as a switch: the command's answer on stdout as one JSON object instead of text.
JSON_STDOUT = _parent()
JSON_STDOUT.add_argument("--json", action="store_true",
                         help="print the result as JSON (the shape is in the command's docs)")

# --json FILE: measuring commands print text and also write their numbers to a file.
JSON_FILE = _parent()
JSON_FILE.add_argument("--json", type=Path, default=None, metavar="FILE",
                       help="also write the numbers to this JSON file")


def count(most: int, least: int = 0):
    """argparse type: a whole number from ``least`` to ``most`` (10^20 is refused here, not
    passed on to SQLite or numpy as an overflow or an allocation of terabytes)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"{text[:30]} is outside {least} to {most}")
        return value
    return parse


def distance_threshold(text: str) -> float:
    """argparse type of --threshold: a squared L2 distance between unit vectors, in (0, 4]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 4.0:
        raise argparse.ArgumentTypeError(
            f"{text} is outside (0, 4]: thresholds are squared distances between unit vectors")
    return value


def load_pipeline(args):
    """The FacePipeline for --provider / --flip, falling back to the user's Settings.

    Commands look this up as ``common.load_pipeline`` at call time, so a test can load the
    models once per session by replacing it."""
    from faceguard.settings import load_settings
    from faceguard.vision.pipeline import FacePipeline

    settings = load_settings()
    provider = getattr(args, "provider", None) or settings.provider
    return FacePipeline.load(provider, model_id=settings.model_id or None,
                             flip=flip_setting(args, settings))


def flip_setting(args, settings) -> bool:
    """--flip / --no-flip when given, else the Settings' choice."""
    flip = getattr(args, "flip", None)
    return settings.flip_average if flip is None else flip


def write_json(path: Path | None, data) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")


class Refused(Exception):
    """An option the chosen mode would ignore: the CLI prints argparse's usage error, exit 2."""


def refuse(args, options: dict[str, str], because: str) -> None:
    """Raise Refused when any of ``options`` ({dest: "--flag"}) was given.

    Options that a mode can refuse default to None (or False for a switch), so "given" is
    "not None and not False". ``because`` completes "--flag ...", e.g. "needs --headless".
    """
    given = [flag for dest, flag in options.items()
             if (v := getattr(args, dest, None)) is not None and v is not False]  # 0 is given
    if given:
        raise Refused(f"{', '.join(given)} {because}")


def open_gallery():
    """The gallery the CLI edits: at a door joined to a site, edits go to the site."""
    from faceguard.site.replica import open_gallery as site_or_local

    return site_or_local()
