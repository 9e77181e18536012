"""`faceguard gui` (or `door` without --headless): the door-check window.
`faceguard door --camera SRC --headless`: the whole door check without a window.

The window takes its settings from the Settings dialog, so the headless-only options are
refused without --headless, and --fullscreen is refused with it.

Each headless decision is printed as one JSON line on stdout (kept stable, for kiosks run as a service
and for tests)::

    {"time": float,            # seconds: clip position for video files, since start for cameras
     "decision": "GRANTED" | "DENIED", "mode": "identify" | "verify",
     "person_id": str | null, "name": str | null,   # employee id and name; null = stranger
     "distance": float | null, "threshold": float,  # median squared L2 over the frames used
     "frames_used": int, "reason": str, "track_id": int, "box": [x1, y1, x2, y2],
     "door": {"ok": bool, "message": str} | null,   # the door output's result (null: not opened)
     "log_lost": int}           # decisions so far whose access-log entry could not be written

Exit status 3: the run ended, but some decisions were not written to the access log (a full
disk); stderr says how many and why (issue 22 item 10).

A face that needs a second factor (issue 21: grey zone, auth mode face+pin, a door requiring a
PIN) first prints ``{"decision": "PIN", "track_id": int, "time": float}`` (no name, no distance)
and takes the next line of standard input as the typed PIN (or, where allowed, a badge's employee
id); its final GRANTED/DENIED line follows with ``"factor": "pin"`` ("badge"), and a denial says
why (wrong PIN, none given, keypad locked) without naming the matched person. Decisions carry
``zone``, ``zone_score``, ``strict`` and ``normal`` when the face zones apply.

With --timeline a summary follows on stderr: when a face was first seen, and each decision's
delay after it.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from faceguard.cli import common
from faceguard.cli.common import CAMERA, ENGINE, command, distance_threshold

log = logging.getLogger(__name__)

# What only the headless loop uses, {argparse dest: option}.
HEADLESS_ONLY = {"claim": "--claim", "threshold": "--threshold", "loop": "--loop",
                 "max_seconds": "--max-seconds", "frames": "--frames", "timeline": "--timeline",
                 "provider": "--provider", "flip": "--flip/--no-flip",
                 "photo_check": "--photo-check", "seed": "--seed"}


def cmd_gui(args) -> int:
    from faceguard.errors import FaceGuardError
    from faceguard.ui.preflight import qt_problem

    # Before PySide6 is imported: a missing system library is one actionable line, not Qt's abort.
    problem = qt_problem()
    if problem:
        raise FaceGuardError(problem)
    from faceguard.ui.app import run

    return run(camera=getattr(args, "camera", None), fullscreen=getattr(args, "fullscreen", False))


def _headless_settings(args):
    """The saved settings with this run's options on top."""
    from faceguard.settings import load_settings

    settings = load_settings()
    if args.threshold is not None:
        settings.threshold = args.threshold
    if args.claim:
        settings.mode = "verify"
    if args.photo_check is not None:
        settings.photo_check = args.photo_check == "on"
    return settings


def _run_frames(check, source, args, emit) -> tuple[int, float | None]:
    """The frame loop: every decision printed (a GRANTED once its door answered); returns the
    frames processed and the clip time of the first face."""
    frames, first_face, started = 0, None, time.monotonic()
    while True:
        if args.max_seconds and time.monotonic() - started > args.max_seconds:
            break
        if args.frames and frames >= args.frames:
            break
        frame = source.read()
        if frame is None:
            if source.status == "ended":
                break
            if source.status == "reconnecting":
                print(json.dumps({"camera": "disconnected, retrying"}), file=sys.stderr)
            continue
        frames += 1
        report = check.process(frame)
        if report.faces and first_face is None:
            first_face = frame.t
        for d in report.decisions:
            if d.kind == "PIN":         # issue 21: the next line of stdin is the typed PIN
                emit(d, None)
                final = check.answer_pin(d.track_id, sys.stdin.readline(), frame.t)
                if final is not None and final.kind != "GRANTED":
                    emit(final, None)
            elif d.kind != "GRANTED":
                emit(d, None)
        for d, r in report.door_results:
            emit(d, r)
    return frames, first_face


def _print_timeline(frames: int, first_face: float | None, timeline: list[dict]) -> None:
    print(f"frames processed: {frames}; first face at {first_face if first_face is not None else '-'} s",
          file=sys.stderr)
    for row in timeline:
        delay = "" if first_face is None else f" (+{row['time'] - first_face:.2f} s after first face)"
        print(f"  {row['time']:7.2f} s  {row['decision']:<7} {row['name'] or 'stranger'}: "
              f"{row['reason']}{delay}", file=sys.stderr)


def cmd_door(args) -> int:
    from faceguard.camera import FrameSource
    from faceguard.doorcheck import DoorCheck
    from faceguard.errors import FaceGuardError
    from faceguard.gallery.store import Gallery
    from faceguard.site.watch import start_for as start_site_watcher

    if not args.headless:
        common.refuse(args, HEADLESS_ONLY, "needs --headless (the window takes these from its "
                                           "Settings dialog)")
        return cmd_gui(args)
    common.refuse(args, {"fullscreen": "--fullscreen"}, "is for the window, not --headless")
    settings = _headless_settings(args)
    camera = args.camera if args.camera is not None else settings.camera
    source = FrameSource(camera, loop=args.loop, realtime=False, retry_at_start=True)
    if args.loop and (isinstance(source.source, int) or "://" in str(source.source)):
        raise common.Refused(f"--loop replays a video file; {source.describe()} is live")
    pipeline = common.load_pipeline(args)
    timeline: list[dict] = []

    def emit(decision, result) -> None:
        row = decision.to_dict()
        if row["decision"] == "PIN":      # only decision, track id and time: no name, no distance
            print(json.dumps(row), flush=True)
            return
        row["door"] = None if result is None else {"ok": result.ok, "message": result.message}
        row["log_lost"] = check.lost_log_entries if check is not None else 0
        timeline.append(row)
        print(json.dumps(row), flush=True)

    frames, first_face = 0, None
    gallery = Gallery.open()
    watcher = check = None
    try:
        check = DoorCheck(pipeline, gallery, settings, seed=args.seed)
        watcher = start_site_watcher(gallery)   # None unless this door joined a site
        refused = check.claim(args.claim, 0.0) if args.claim else None   # (the id as stored)
        if refused is not None:         # an unknown or inactive id: DENIED (logged), nothing to check
            emit(refused, None)
            check.close()
            return 0
        with source:
            frames, first_face = _run_frames(check, source, args, emit)
        for d, r in check.close():
            emit(d, r)
    finally:
        if watcher is not None:
            watcher.stop()       # sends this run's events now, when the site is up
        gallery.close()
    if args.timeline:
        _print_timeline(frames, first_face, timeline)
    problem = source.end_problem()
    if problem:
        raise FaceGuardError(problem)
    if source.status == "ended":
        print(f"faceguard: {source.describe()} ended after {frames} frames", file=sys.stderr)
    lost = getattr(check, "lost_log_entries", 0)
    if lost:
        print(f"faceguard: {lost} decision(s) were NOT written to the access log "
              f"({getattr(check, 'last_log_error', '')}); free disk space", file=sys.stderr)
        return 3
    return 0


def register(sub) -> None:
    p = command(sub, "gui", cmd_gui, parents=[CAMERA], help="open the door-check window (the default)")
    p.add_argument("--fullscreen", action="store_true", help="kiosk mode (Esc asks for the PIN)")

    p = command(sub, "door", cmd_door, parents=[CAMERA, ENGINE],
                help="run the door check (--headless: no window, JSON lines)")
    p.add_argument("--headless", action="store_true", help="no window; print decisions as JSON")
    p.add_argument("--fullscreen", action="store_true", help="(with a window) kiosk mode")
    p.add_argument("--loop", action="store_true", help="loop a video file")
    p.add_argument("--threshold", type=distance_threshold, default=None, help="override the threshold")
    p.add_argument("--claim", metavar="EMPID", help="verify mode: check the face against this id")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--timeline", action="store_true", help="summary of decisions on stderr")
    p.add_argument("--photo-check", choices=("on", "off"), default=None,
                   help="this run only: the photo check (and its challenge) on or off")
    p.add_argument("--seed", type=int, default=None,
                   help="make the challenge directions reproducible (tests, benchmarks)")
