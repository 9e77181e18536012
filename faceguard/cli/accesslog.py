"""`faceguard log list | export | today`: the access log from the command line.

``log list`` prints what the log window shows (local time, person or stranger, decision,
distance / threshold, reason, door result), newest first. ``--json``::

    {"events": [{"time": str,            # ISO 8601 UTC
                 "local_time": str,      # ISO 8601 local time with its UTC offset
                 "decision": str, "employee_id": str | null, "name": str | null,
                 "distance": float | null, "threshold": float | null,
                 "reason": str, "door_result": str, "snapshot": bool}, ...]}

``--decision`` takes any letter case (granted, Denied) and refuses a decision the log does not
know (exit 2) instead of printing "0 events".

``log today`` sums up today (tools/today.py): who came in (first entry, last seen), entries per
hour, refusals and suspected attacks; at a site door every door's, with ``--door`` to pick one.
Its ``--json`` shape is ``tools.today.to_dict`` (README, "JSON output").
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from faceguard.cli.common import JSON_STDOUT, Refused, command, count

KNOWN_DECISIONS = ("GRANTED", "DENIED")


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
        log = EventLog(gallery)
        decision = _decision(args.decision, log)
        events = log.query(args.since, args.until, employee_id=args.person,
                           strangers=args.strangers, decision=decision, limit=args.limit)
    if args.json:
        print(json.dumps({"events": [dict(e.to_dict(), local_time=local_iso(e.time)) for e in events]}))
        return 0
    print("\t".join(DISPLAY_COLUMNS))
    for e in events:
        print("\t".join(display_row(e)))
    print(f"{len(events)} event{'' if len(events) == 1 else 's'}")
    return 0


def _decision(text: str | None, log) -> str | None:
    """--decision in any letter case; one the log cannot hold is refused (exit 2), not "0 events"."""
    if text is None:
        return None
    known = sorted({*KNOWN_DECISIONS, *log.decisions()})
    wanted = text.strip().upper()
    if wanted not in known:
        raise Refused(f"--decision {text!r}: not a decision; use one of {', '.join(known)}")
    return wanted


def cmd_log_today(args) -> int:
    from faceguard.site.config import SiteConfig
    from faceguard.tools.today import for_this_door, to_dict

    if args.door and SiteConfig.load() is None:
        raise Refused("--door needs a door that joined a site (this door's log has only its own events)")
    with _open() as gallery:
        today = for_this_door(gallery, door=args.door)
    if args.json:
        print(json.dumps(to_dict(today)))
        return 0
    for line in today_lines(today):
        print(line)
    return 0


def today_lines(today) -> list[str]:
    """`log today` as text: the totals, who came in, entries per hour, the refusals."""
    from datetime import datetime

    def hm(t: float) -> str:
        return datetime.fromtimestamp(t).strftime("%H:%M")

    where = ("every door of the site" if today.source == "site" and not today.door
             else f"door {today.door}" if today.door else "this door")
    lines = [f"Today, {today.day:%A %d %B %Y} ({where})"]
    if today.note:
        lines.append(today.note)
    lines.append(f"{today.entries} entr{'y' if today.entries == 1 else 'ies'} by {len(today.people)} "
                 f"{'person' if len(today.people) == 1 else 'people'}; {len(today.denials)} refused "
                 f"({today.suspected_attacks} suspected attack{'' if today.suspected_attacks == 1 else 's'})")
    if today.people:
        lines += ["", "First entry  Last seen  Entries  Person" + ("  (doors)" if today.doors else "")]
        for p in today.people:
            doors = f"  ({', '.join(p.doors)})" if p.doors else ""
            lines.append(f"{hm(p.first_entry):<11}  {hm(p.last_seen):<9}  {p.entries:>7}  "
                         f"{p.name} ({p.employee_id}){doors}")
    busy = [h for h in range(24) if today.entries_per_hour[h] or today.denied_per_hour[h]]
    if busy:
        lines += ["", "Hour   Entries  Refused"]
        for h in range(busy[0], busy[-1] + 1):
            n, d = today.entries_per_hour[h], today.denied_per_hour[h]
            lines.append(f"{h:02d}:00  {n:>7}  {d:>7}  {'█' * n}{'░' * d}")
    if today.denials:
        lines += ["", "Refused"]
        for r in today.denials:
            who = f"{r.name or r.employee_id} ({r.employee_id})" if r.employee_id else "stranger"
            flag = "SUSPECTED ATTACK  " if r.suspected_attack else ""
            door = f"{r.door}  " if r.door else ""
            lines.append(f"{hm(r.time)}  {door}{flag}{who}: {r.reason}")
    return lines


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
    p.add_argument("--decision", default=None, help="one decision only, e.g. granted or DENIED")
    p.add_argument("--limit", type=count(10**9), default=None, help="at most this many, newest first")
    p = command(lsub, "today", cmd_log_today, parents=[JSON_STDOUT],
                help="who came in today: first entry, last seen, entries per hour, refusals")
    p.add_argument("--door", default=None, metavar="NAME", help="at a site door: this door only")
    p = command(lsub, "export", cmd_log_export, help="write the access log as CSV")
    p.add_argument("file", type=Path)
    _filters(p)
