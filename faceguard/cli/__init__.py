"""`faceguard` command line: the same FacePipeline / Gallery / DoorCheck the app uses, no UI.

One module per command group (engine, gallery, door, bench, doctor; train and export come from
faceguard.train.cli where training is shipped); shared options are argparse parents in
faceguard.cli.common. ``main`` is the one error boundary:

- exit 0 done; 1 a check found problems (``gallery check``, ``doctor``, ``gallery import``);
- exit 2 a usage error, an option the chosen mode would ignore, a FaceGuardError or an
  OSError (a file or folder that cannot be read or written), printed as one line;
- exit 130 interrupted (Ctrl-C), quietly;
- exit 141 (as a program killed by SIGPIPE) when the reader of stdout went away
  (``faceguard door ... | head -1``), quietly;
- exit 70 (EX_SOFTWARE, sysexits.h) a bug: one line on stderr, the traceback in the log file.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from pathlib import Path

from faceguard import __version__
from faceguard.cli import accesslog, admin, bench, common, doctor, door, engine, gallery, site
from faceguard.cli import settings as settings_cli
from faceguard.errors import FaceGuardError

log = logging.getLogger("faceguard")

EXIT_ERROR, EXIT_BUG, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 70, 130, 141


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="faceguard", description="Face-recognition door check.")
    ap.add_argument("--version", action="version", version=f"faceguard {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log to stderr too")
    sub = ap.add_subparsers(dest="command")
    for group in (door, engine, gallery, accesslog, bench, doctor, admin, site, settings_cli):
        group.register(sub)
    try:
        from faceguard.train import cli as train_cli  # defines the commands; torch loads later
    except ModuleNotFoundError as exc:
        if exc.name not in ("faceguard.train", "faceguard.train.cli"):
            raise
        return ap  # the packaged desktop app leaves training out
    train_cli.register(sub)
    return ap


def setup_logging(verbose: bool) -> None:
    from faceguard import paths
    from faceguard.logfile import PrivateRotatingFileHandler

    root = logging.getLogger()
    if root.handlers:
        return
    root.setLevel(logging.INFO)
    try:
        fh = PrivateRotatingFileHandler(paths.log_file(), maxBytes=2_000_000, backupCount=3)  # 0600
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)
    except OSError:
        pass  # an unwritable log folder must not stop the door check
    if verbose:
        root.addHandler(logging.StreamHandler(sys.stderr))


def describe_os_error(exc: OSError) -> str:
    """One line naming the path and what is wrong with it, for a person to act on."""
    path = exc.filename
    if path is None:
        return exc.strerror or str(exc)
    parent = Path(os.fsdecode(path)).parent
    if exc.errno == errno.ENOENT and not parent.is_dir():
        return f"{path}: the folder {parent} does not exist."
    return f"{path}: {(exc.strerror or str(exc)).lower()}."


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so that the interpreter's final flush
    of what is still buffered does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (e.g. captured by a test): nothing will flush it


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    """The command's usage line and "error: ...", as argparse prints any other bad option."""
    try:
        parser.error(message)
    except SystemExit as stop:
        return int(stop.code)
    return EXIT_ERROR  # parser.error always exits; this keeps the type checker content


def _fail(message: str, code: int) -> int:
    print(f"faceguard: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
        # What is still buffered goes out here, inside the boundary: a reader that went away
        # would otherwise show as an "Exception ignored" message at interpreter exit.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The core turns its own I/O failures into FaceGuardErrors or door results, so a broken
        # pipe that reaches here is our reader going away: nobody is left to tell.
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # usage errors (2), --help and --version (0): a code, not an exit
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    setup_logging(args.verbose)
    if not getattr(args, "func", None):  # plain `faceguard`: the door-check window
        args.func, args.camera, args.fullscreen = door.cmd_gui, None, False
    try:
        return int(args.func(args) or 0)
    except common.Refused as exc:
        return _usage_error(getattr(args, "command_parser", ap), str(exc))
    except FaceGuardError as exc:
        log.error("%s", exc)
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        log.info("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise  # main's: the same quiet end whether it breaks now or at the final flush
    except OSError as exc:
        log.error("%s", exc)
        return _fail(describe_os_error(exc), EXIT_ERROR)
    except Exception as exc:
        from faceguard import paths

        log.exception("unexpected error")
        return _fail(f"unexpected error ({type(exc).__name__}: {exc}); please report it with "
                     f"the details from {paths.log_file()}", EXIT_BUG)
