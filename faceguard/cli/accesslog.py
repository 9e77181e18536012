"""`faceguard log list | export`: the access log from the command line.

``log list`` prints what the log window shows (local time, person or stranger, decision,
distance / threshold, reason, door result), newest first. ``--json``::

    {"events": [{"time": str,            # ISO 8601 UTC
                 "local_time": str,      # ISO 8601 local time with its UTC offset
                 "decision": str, "employee_id": str | null, "name": str | null,
                 "distance": float | null, "threshold": float | null,
                 "reason": str, "door_result": str, "snapshot": bool}, ...]}
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from faceguard.cli.common import JSON_STDOUT, command, count


def local_date(text: str) -> float:
    """argparse type of --since / --until: YYYY-MM-DD (local midnight) or an ISO date-time."""
    try:
        when = datetime.fromisoformat(text.strip())
        if not 1970 <= when.year <= 9999:
            raise ValueError(when.year)
        return when.timestamp()   # a naive date-time is local time
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(f"not a date from 1970 on: {text!r} (use YYYY-MM-DD)") from None


def _open():
    from faceguard.gallery.store import Gallery

    return Gallery.open()


def cmd_log_list(args) -> int:
    from faceguard.gallery.events import DISPLAY_COLUMNS, EventLog, display_row, local_iso

    with _open() as gallery:
        events = EventLog(gallery).query(args.since, args.until, employee_id=args.person,
                                         strangers=args.strangers, decision=args.decision,
                                         limit=args.limit)
    if args.json:
        print(json.dumps({"events": [dict(e.to_dict(), local_time=local_iso(e.time)) for e in events]}))
        return 0
    print("\t".join(DISPLAY_COLUMNS))
    for e in events:
        print("\t".join(display_row(e)))
    print(f"{len(events)} event{'' if len(events) == 1 else 's'}")
    return 0


def cmd_log_export(args) -> int:
    from faceguard.gallery.events import EventLog, write_csv

    with _open() as gallery:
        events = EventLog(gallery).query(args.since, args.until, employee_id=args.person)
    n = write_csv(events, args.file)
    print(f"wrote {n} events to {args.file} (local time with UTC offset)")
    return 0


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", type=local_date, default=None, metavar="DATE",
                   help="from this day on (YYYY-MM-DD, local time)")
    p.add_argument("--until", type=local_date, default=None, metavar="DATE",
                   help="before this day (YYYY-MM-DD, local time)")
    p.add_argument("--person", default=None, metavar="ID", help="one employee id only")


def register(sub: argparse._SubParsersAction) -> None:
    lg = sub.add_parser("log", help="the access log")
    lsub = lg.add_subparsers(dest="log_command", required=True)
    p = command(lsub, "list", cmd_log_list, parents=[JSON_STDOUT], help="print the access log")
    _filters(p)
    p.add_argument("--strangers", action="store_true", help="strangers only")
    p.add_argument("--decision", default=None, help="one decision only, e.g. GRANTED")
    p.add_argument("--limit", type=count(10**9), default=None, help="at most this many, newest first")
    p = command(lsub, "export", cmd_log_export, help="write the access log as CSV")
    p.add_argument("file", type=Path)
    _filters(p)
