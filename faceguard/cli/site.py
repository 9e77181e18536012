"""`faceguard site create | join | status | sync | log`: several doors, one PostgreSQL site.

JSON shapes (``--json``; times ISO 8601 UTC)::

    site create --json   {"code": str, "site": str}
    site join --json     {"door": str, "site": str, "gallery_version": int, "people": int}
    site status --json   {"joined": bool, "site": str, "door": str, "reachable": bool,
                          "last_sync": str | null, "pending_events": int, "gallery_version": int,
                          "site_gallery_version": int | null, "problem": str | null,
                          "quarantined": {employee id: why}, "stale_s": float | null}
                         # stale_s: seconds since this door last heard from the site
    site code --json     {"code": str}        # a new join code and site key; the old ones stop working
    site remove-door NAME --json  {"code": str, "removed": str}   # that door gets no new key
    site sync --json     {"applied": int, "pushed": int, "gallery_version": int,
                          "push_problem": str | null}   # why the log waits (a locked table)
    site log --json      {"events": [{"door": str, "local_id": int, "time": str, "decision": str,
                          "employee_id": str | null, "name": str | null, "distance": float | null,
                          "threshold": float | null, "reason": str, "door_result": str,
                          "snapshot": bool, "local_time": str}, ...]}   # every door's, newest first

Exit codes: 0 done; 2 a FaceGuardError (a wrong code, the site unreachable, …), printed.
"""

from __future__ import annotations

import argparse
import json

from faceguard.cli.common import JSON_STDOUT, command


def _replica():
    from faceguard.gallery.store import Gallery
    from faceguard.site import SiteError
    from faceguard.site.config import SiteConfig
    from faceguard.site.replica import Replica

    config = SiteConfig.load()
    if config is None:
        raise SiteError("This door has not joined a site; join one with "
                        "'faceguard site join URL --code CODE --door NAME'.")
    gallery = Gallery.open()
    try:
        return gallery, Replica(gallery, config)
    except BaseException:
        gallery.close()
        raise


def _password(args) -> tuple[str, str | None]:
    """(the URL without a password, the password to use or None), from, in this order: the URL
    (it works, but stays in the shell's history and shows in `ps`: said on stderr), the prompt
    (--ask-password), PGPASSWORD. None: libpq finds it itself (~/.pgpass, PGPASSFILE) or the
    server needs none."""
    import getpass
    import os
    import sys

    from faceguard.site.config import split_password

    url, password = split_password(args.url)
    if password is not None:
        print("faceguard: note: a password in the URL stays in the shell's history; next time use "
              "--ask-password or PGPASSWORD (see docs/site.md).", file=sys.stderr)
    elif args.ask_password:
        password = getpass.getpass("PostgreSQL password: ")
    elif os.environ.get("PGPASSWORD"):
        password = os.environ["PGPASSWORD"]
    return url, password


def cmd_create(args) -> int:
    from faceguard.site.config import with_password
    from faceguard.site.store import SiteStore

    url, password = _password(args)     # used for this connection only: `create` stores nothing
    with SiteStore.connect(with_password(url, password) if password else url) as store:
        code, _ = store.create()
        where = store.where
    if args.json:
        print(json.dumps({"code": code, "site": where}))
    else:
        print(f"Created a FaceGuard site in {where}.")
        print(f"Join code (shown only now; keep it like a key): {code}")
        print(f"Add each door with: faceguard site join URL --code {code} --door NAME")
    return 0


def cmd_join(args) -> int:
    from faceguard.gallery.store import Gallery
    from faceguard.site.config import passfile_path, store_password
    from faceguard.site.joining import join
    from faceguard.site.store import describe

    url, password = _password(args)
    # A password given now goes to FaceGuard's own libpq password file (0600), never into
    # site.json: the saved URL only names that file.
    before = passfile_path().read_text() if passfile_path().exists() else None
    url = store_password(url, password) if password else url
    try:
        with Gallery.open() as gallery:
            report = join(url, args.code, args.door, gallery)
            people = len(gallery)
    except BaseException:
        if password:                 # not joined: the password file as it was
            _restore(passfile_path(), before)
        raise
    if args.json:
        print(json.dumps({"door": args.door, "site": describe(url),
                          "gallery_version": report.version, "people": people}))
    else:
        print(f"Door '{args.door}' joined {describe(url)}: {people} people, gallery version "
              f"{report.version}.")
    return 0


def _restore(path, text: str | None) -> None:
    from faceguard.atomic import write_text_atomic
    if text is None:
        path.unlink(missing_ok=True)
    else:
        write_text_atomic(path, text, 0o600)


def cmd_status(args) -> int:
    from faceguard.gallery.ids import printable
    from faceguard.site.config import SiteConfig

    if SiteConfig.load() is None:
        if args.json:
            print(json.dumps({"joined": False}))
        else:
            print("This door has not joined a site (it works on its own).")
        return 0
    gallery, replica = _replica()
    with gallery:
        status = {"joined": True, **replica.status()}
    if args.json:
        print(json.dumps(status))
        return 0
    state = "reachable" if status["reachable"] else f"UNREACHABLE ({status['problem']})"
    print(f"door '{status['door']}' at site {status['site']}: {state}")
    print(f"last sync: {status['last_sync'] or 'never'}; pending events: {status['pending_events']}; "
          f"gallery version {status['gallery_version']}"
          + (f" of {status['site_gallery_version']}" if status["site_gallery_version"] is not None else ""))
    if status["stale_s"] is not None and not status["reachable"]:
        print(f"this door has not heard from the site for {status['stale_s']:.0f} s")
    for employee_id, why in status["quarantined"].items():
        print(f"NOT APPLIED here: the site's row of {printable(employee_id)}: {why}")
    return 0


def cmd_sync(args) -> int:
    gallery, replica = _replica()
    with gallery:
        report = replica.sync()
    if args.json:
        print(json.dumps({"applied": report.applied, "pushed": report.pushed,
                          "gallery_version": report.version, "push_problem": report.push_problem}))
    else:
        print(f"synced: {report.applied} gallery change(s) applied, {report.pushed} event(s) sent; "
              f"gallery version {report.version}")
        if report.push_problem:
            print(f"the access log was not sent this time ({report.push_problem}); it goes with the "
                  "next sync")
    return 0


def cmd_code(args, remove: str | None = None) -> int:
    from faceguard.site.config import SiteConfig

    gallery, replica = _replica()
    with gallery, replica.connect() as store:
        # A new site key too, re-wrapped for the doors that remain: an old code with an old
        # backup of the database unlocks only the old key (issue 22 item 6).
        code, key = store.rotate_key(replica.config.key(), remove)
        SiteConfig.save_key(key)
    if args.json:
        print(json.dumps({"code": code, **({"removed": remove} if remove else {})}))
    else:
        if remove:
            print(f"Door '{remove}' was removed from the site; it can no longer read the site's data.")
        print(f"New join code (shown only now; the previous code and site key no longer work): {code}")
    return 0


def cmd_remove_door(args) -> int:
    return cmd_code(args, remove=args.name)


def cmd_log(args) -> int:
    from faceguard.gallery.db import iso
    from faceguard.gallery.events import local_iso

    gallery, replica = _replica()
    with gallery, replica.connect() as store:
        events = store.events(limit=args.limit or None, door=args.door)
    for e in events:
        e["time"], e["local_time"] = iso(e["time"]), local_iso(e["time"])
    if args.json:
        print(json.dumps({"events": events}))
        return 0
    from faceguard.gallery.ids import printable

    for e in events:   # local time with its offset; escaped: a tab or newline forges no row
        print("\t".join(printable(str(v)) for v in (e["local_time"], e["door"], e["decision"],
                                                   e["name"] or "stranger", e["reason"])))
    print(f"{len(events)} events")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("site", help="several doors sharing one gallery and log on PostgreSQL")
    ssub = s.add_subparsers(dest="site_command", required=True)
    p = command(ssub, "create", cmd_create, parents=[JSON_STDOUT],
                help="make a PostgreSQL database a FaceGuard site; prints the join code")
    p.add_argument("url", help="PostgreSQL URL, e.g. postgresql://faceguard@server:5432/faceguard "
                   "(the password: --ask-password, PGPASSWORD or ~/.pgpass)")
    p.add_argument("--ask-password", action="store_true", help="ask for the database password")
    p = command(ssub, "join", cmd_join, parents=[JSON_STDOUT], help="join this door to a site")
    p.add_argument("url")
    p.add_argument("--ask-password", action="store_true",
                   help="ask for the database password (kept in a 0600 file, not in site.json)")
    p.add_argument("--code", required=True, help="the join code 'site create' printed")
    p.add_argument("--door", required=True, help="this door's name, unique in the site (e.g. front)")
    command(ssub, "status", cmd_status, parents=[JSON_STDOUT],
            help="is the site reachable; last sync, pending events, gallery version")
    command(ssub, "code", cmd_code, parents=[JSON_STDOUT],
            help="replace the join code and the site key (e.g. once every door has joined)")
    p = command(ssub, "remove-door", cmd_remove_door, parents=[JSON_STDOUT],
                help="remove a door from the site (a lost or retired PC): a new key and code")
    p.add_argument("name", help="the door's name, as it joined")
    command(ssub, "sync", cmd_sync, parents=[JSON_STDOUT], help="catch up with the site now")
    p = command(ssub, "log", cmd_log, parents=[JSON_STDOUT], help="every door's access log, from the site")
    p.add_argument("--limit", type=int, default=100, help="newest N events (0: all; default 100)")
    p.add_argument("--door", default=None, help="only this door's events")
