"""`faceguard enroll | identify | gallery ...`: the gallery from the command line.

JSON shapes (``--json``; kept stable, times are ISO 8601 UTC, distances squared L2):

``enroll --json``::

    {"enrolled": {"name": str, "employee_id": str, "created": str, "consent_at": str,
                  "active": true, "last_seen": null, "model_id": str,
                  "valid_until": str | null}}   # "active": the deactivate switch

``enroll --folder DIR --json`` (exit 1 when any photo was refused)::

    {"photos": [{"photo": str, "name": str, "employee_id": str, "enrolled": bool,
                 "message": str}, ...], "enrolled": int, "refused": int}

``identify --json``::

    {"image": str, "model_id": str, "threshold": float, "gallery_size": int,
     "faces": [{"box": [x1, y1, x2, y2],            # pixels of the input image
                "person": {"name": str, "employee_id": str} | null,   # null = stranger
                "distance": float | null,           # to the nearest enrolled person
                "nearest": {"name": str, "employee_id": str} | null,  # even when rejected
                "threshold": float}]}

``gallery list --json``::

    {"people": [Person, ...]}   # each as in "enrolled" above, plus "refused": str | null
                                # (why the door refuses the row: edited without the key)

``gallery check --json``::

    {"ok": bool, "people": int, "problems": [str, ...]}

Exit codes: 0 done, 1 ``gallery check`` found problems or ``gallery import`` left people out
(conflicts or failures, each listed), 2 a FaceGuardError (printed).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from faceguard.cli import common, gallery_factor
from faceguard.cli.common import ENGINE, FLIP, JSON_STDOUT, command

log = logging.getLogger(__name__)


def _threshold_setting() -> float | None:
    """The user's threshold from Settings (None = the calibrated one for the gallery size)."""
    from faceguard.settings import load_settings

    return load_settings().threshold


def _current_model_id(args) -> str:
    """The embedding id the pipeline would use, read from the manifest without loading nets."""
    from faceguard.settings import load_settings
    from faceguard.vision.embed import embedding_id
    from faceguard.vision.models import load_manifest

    settings = load_settings()
    flip = common.flip_setting(args, settings)
    return embedding_id(load_manifest().embedder(settings.model_id or None).id, flip)


# -- enroll / identify -------------------------------------------------------------------------
def cmd_enroll(args) -> int:
    from faceguard.errors import GalleryError

    if not args.consent:
        raise GalleryError("Enrolment needs the person's consent: add --consent once they agreed.")
    if args.folder is not None:
        return _enroll_folder(args)
    if args.photo is None or not args.name or not args.id:
        raise common.Refused("needs PHOTO, --name and --id (or --folder DIR for many people)")
    if args.use_anyway:
        raise common.Refused("--use-anyway is for --folder; one photo is judged as the dialog does")
    from faceguard.gallery.enrol import DuplicatePersonError, enrol
    from faceguard.vision.image import load_image

    rgb = load_image(args.photo)
    pipeline = common.load_pipeline(args)
    with common.open_gallery() as gallery:
        try:
            person = enrol(gallery, pipeline, rgb, args.name, args.id, consent=True,
                           threshold=_threshold_setting(), override_duplicate=args.force)
        except DuplicatePersonError as exc:
            raise GalleryError(f"{exc.summary} If they are different people, run the command "
                               "again with --force.") from exc
    if args.json:
        print(json.dumps({"enrolled": person.to_dict()}))
    else:
        print(f"enrolled {person.name} ({person.employee_id})")
    return 0


def _enroll_folder(args) -> int:
    """``enroll --folder DIR|FILE.csv --consent``: one line per photo, exit 1 if any refused."""
    from faceguard.gallery.bulk import enrol_all, items_from
    from faceguard.tools.progress import ProgressBar

    if args.photo is not None or args.name or args.id or args.force:
        raise common.Refused("PHOTO, --name, --id and --force cannot be used with --folder")
    items = items_from(args.folder)
    wanted = {Path(n).name for n in args.use_anyway}
    unknown = wanted - {i.photo.name for i in items}
    if unknown:
        raise common.Refused(f"--use-anyway {', '.join(sorted(unknown))}: not a photo of {args.folder}")
    anyway = {i.photo for i in items if i.photo.name in wanted}
    pipeline = common.load_pipeline(args)
    with common.open_gallery() as gallery:
        outcomes = enrol_all(gallery, pipeline, items, consent=True, threshold=_threshold_setting(),
                             progress=ProgressBar("Enrolling"), use_anyway=anyway)
    enrolled = sum(o.ok for o in outcomes)
    if args.json:
        print(json.dumps({"photos": [{"photo": str(o.item.photo), "name": o.item.name,
                                      "employee_id": o.item.employee_id, "enrolled": o.ok,
                                      "message": o.message} for o in outcomes],
                          "enrolled": enrolled, "refused": len(outcomes) - enrolled}))
    else:
        for o in outcomes:
            print(o.line())
        print(f"{enrolled} of {len(outcomes)} enrolled, {len(outcomes) - enrolled} refused")
    return 0 if enrolled == len(outcomes) else 1


def identify_faces(matcher, pipeline, rgb) -> list[dict]:
    """One dict per face in ``rgb`` (the ``faces`` items of ``identify --json``), judged by the
    door's rule (``gallery_matcher``)."""
    faces = []
    for result in pipeline.process(rgb):
        m = matcher.nearest(result.embedding)
        nearest = None if m.id is None else {"name": m.name, "employee_id": m.id}
        faces.append({
            "box": [round(float(v), 1) for v in result.box],
            "person": nearest if m.accepted else None,
            "distance": None if m.id is None else round(m.distance, 4),
            "nearest": nearest,
            "threshold": matcher.threshold,
        })
    return faces


def cmd_identify(args) -> int:
    from faceguard.gallery.recognise import gallery_matcher
    from faceguard.vision.image import load_image

    rgb = load_image(args.image)
    pipeline = common.load_pipeline(args)
    with common.open_gallery() as gallery:
        matcher = gallery_matcher(gallery, pipeline, _threshold_setting())
        faces = identify_faces(matcher, pipeline, rgb)
        threshold, size = matcher.threshold, len(matcher)
    if args.json:
        print(json.dumps({"image": str(args.image), "model_id": pipeline.model_id,
                          "threshold": threshold, "gallery_size": size, "faces": faces}))
        return 0
    if not faces:
        print("no face found")
    for f in faces:
        box = ", ".join(f"{v:.0f}" for v in f["box"])
        if f["person"]:
            p = f["person"]
            print(f"[{box}] {p['name']} ({p['employee_id']}): distance {f['distance']:.3f} "
                  f"≤ threshold {threshold:.3f}")
        elif f["nearest"]:
            print(f"[{box}] stranger: nearest {f['nearest']['name']} at {f['distance']:.3f} "
                  f"> threshold {threshold:.3f}")
        else:
            print(f"[{box}] stranger: the gallery is empty")
    return 0


# -- gallery -----------------------------------------------------------------------------------
def _noted(p) -> str:
    """"  (inactive)", "  (until 2027-03-31)" …; nothing for someone simply active."""
    status = p.access_status()
    return "" if status == "active" else f"  ({status})"


def cmd_gallery_list(args) -> int:
    from faceguard.gallery.ids import printable

    with common.open_gallery() as gallery:
        people = gallery.people(active_only=False)
        refused = gallery.refused_rows()      # rows edited without the key: never matched
    if args.json:
        print(json.dumps({"people": [dict(p.to_dict(), refused=refused.get(p.employee_id)) for p in people]}))
        return 0
    from faceguard.gallery.events import local_iso

    for p in people:
        state = _noted(p) + (f" — REFUSED at the door: {refused[p.employee_id]}" if p.employee_id in refused else "")
        seen = local_iso(p.last_seen) if p.last_seen else "never"   # local time, as the log's
        print(f"{printable(p.employee_id)}\t{printable(p.name)}\tlast seen {seen}{state}")
    print(f"{len(people)} people")
    return 0




def cmd_gallery_active(args) -> int:
    with common.open_gallery() as gallery:
        person = gallery.set_active(args.employee_id, args.gallery_command == "activate")
    if person.enabled:
        print(f"activated {person.name} ({person.employee_id}): let in again{_noted(person)}")
    else:
        print(f"deactivated {person.name} ({person.employee_id}): never let in, still enrolled")
    return 0


def cmd_gallery_valid_until(args) -> int:
    from faceguard.cli.accesslog import local_date
    from faceguard.gallery.person import last_day

    until = None
    if args.date.lower() not in ("never", "none", ""):
        try:
            until = local_date(args.date) + 86400.0   # valid through the whole day given
        except argparse.ArgumentTypeError as exc:
            raise common.Refused(str(exc)) from None
    import time
    if until is not None and until <= time.time() and not args.force:
        # A date gone by takes effect at once: the person is refused from now on. Say so first.
        raise common.Refused(f"{args.date} is in the past: {args.employee_id} would be refused at the "
                             "door from now on; run it again with --force to do that (or use "
                             "'gallery deactivate')")
    with common.open_gallery() as gallery:
        person = gallery.set_valid_until(args.employee_id, until)
    print(f"{person.name} ({person.employee_id}): "
          + (f"let in through {last_day(until)}" if until else "no end date"))
    return 0


def cmd_gallery_resume(args) -> int:
    """Lift a suspension of face entry (after repeated failed photo checks)."""
    from faceguard.gallery.suspension import resume, suspended_until

    with common.open_gallery() as gallery:
        person = gallery.person(args.employee_id)   # any letter case
        was = person is not None and suspended_until(gallery, person.employee_id) is not None
        employee_id = resume(gallery, args.employee_id)
    print(f"{employee_id}: face entry resumed" if was else f"{employee_id}: face entry was not suspended")
    return 0


def cmd_gallery_change_id(args) -> int:
    with common.open_gallery() as gallery:
        person = gallery.change_id(args.employee_id, args.new_id)
    print(f"{person.name} now has employee id {person.employee_id}")
    return 0


def cmd_gallery_replace_photo(args) -> int:
    from faceguard.errors import GalleryError
    from faceguard.gallery.enrol import DuplicatePersonError, replace_photo
    from faceguard.vision.image import load_image

    rgb = load_image(args.photo)
    pipeline = common.load_pipeline(args)
    with common.open_gallery() as gallery:
        try:
            person = replace_photo(gallery, pipeline, args.employee_id, rgb,
                                   threshold=_threshold_setting(), override_duplicate=args.force)
        except DuplicatePersonError as exc:
            raise GalleryError(f"{exc.summary} The photo was not replaced; if it really is "
                               "this person, run the command again with --force.") from exc
    print(f"replaced the photo of {person.name} ({person.employee_id})")
    return 0


def cmd_gallery_remove(args) -> int:
    with common.open_gallery() as gallery:
        person = gallery.person(args.employee_id)
        gallery.remove(args.employee_id)
    print(f"removed {person.name} ({person.employee_id}): photo, face data and log snapshots erased")
    return 0


def cmd_gallery_export(args) -> int:
    from faceguard.gallery import portable

    with common.open_gallery() as gallery:
        n = portable.export_zip(gallery, args.file)
    print(f"exported {n} people to {args.file} (unencrypted photos: keep the file safe)")
    return 0


def cmd_gallery_import(args) -> int:
    from faceguard.gallery import portable

    portable.open_export(args.file)[0].close()   # a bad zip is refused before the models load
    pipeline = common.load_pipeline(args)
    with common.open_gallery() as gallery:
        report = portable.import_zip(gallery, args.file, pipeline, update=args.update,
                                     threshold=_threshold_setting())
    print(f"imported {args.file}: {len(report.added)} added, {len(report.updated)} updated, "
          f"{len(report.conflicts)} kept as they were, {len(report.failed)} failed")
    for who, why in report.conflicts.items():
        print(f"  {who}: {why}")
    for who, why in report.failed.items():
        print(f"  {who}: {why}")
    return 1 if report.failed or report.conflicts else 0


def cmd_gallery_check(args) -> int:
    model_id = _current_model_id(args)
    with common.open_gallery() as gallery:
        problems = gallery.check(model_id)
        n = len(gallery)
    if args.json:
        print(json.dumps({"ok": not problems, "people": n, "problems": problems}))
    else:
        for line in problems:
            print(line)
        print(f"{n} people, {len(problems)} problem(s)" if problems else f"{n} people, all in order")
    return 1 if problems else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "enroll", cmd_enroll, parents=[ENGINE, JSON_STDOUT],
                help="enrol one person from one photo, or many from a folder")
    p.add_argument("photo", type=Path, nargs="?")
    p.add_argument("--name")
    p.add_argument("--id", help="employee id (unique, whatever the letter case)")
    p.add_argument("--consent", action="store_true", help="the person (every person) agreed to be enrolled")
    p.add_argument("--force", "--override-duplicate", dest="force", action="store_true",
                   help="enrol even when the face matches someone already enrolled")
    p.add_argument("--folder", type=Path, metavar="DIR",
                   help="enrol one person per photo in DIR (name from the file name, id = file "
                        "name), or per line of a CSV file with columns photo,name,id")
    p.add_argument("--use-anyway", action="append", default=[], metavar="PHOTO",
                   help="with --folder: enrol this photo (its file name) even if it is turned, "
                        "blurred or dark; repeat for more")

    p = command(sub, "identify", cmd_identify, parents=[ENGINE, JSON_STDOUT],
                help="who is in this photo?")
    p.add_argument("image", type=Path)

    g = sub.add_parser("gallery", help="list, change, remove, export, import or check the gallery")
    gsub = g.add_subparsers(dest="gallery_command", required=True)
    command(gsub, "list", cmd_gallery_list, parents=[JSON_STDOUT], help="everyone enrolled")
    p = command(gsub, "remove", cmd_gallery_remove,
                help="erase a person (photo, face data, log snapshots)")
    p.add_argument("employee_id")
    for name, what in (("deactivate", "never let this person in (they stay enrolled)"),
                       ("activate", "let a deactivated person in again")):
        p = command(gsub, name, cmd_gallery_active, help=what)
        p.add_argument("employee_id")
    p = command(gsub, "valid-until", cmd_gallery_valid_until,
                help="let a person in only through a date (YYYY-MM-DD, or 'never' for no end)")
    p.add_argument("employee_id")
    p.add_argument("date")
    p.add_argument("--force", action="store_true", help="accept a date in the past (refused at once)")
    p = command(gsub, "resume", cmd_gallery_resume,
                help="let a person in by face again after repeated failed photo checks suspended it")
    p.add_argument("employee_id")
    p = command(gsub, "change-id", cmd_gallery_change_id, help="give a person another employee id")
    p.add_argument("employee_id")
    p.add_argument("new_id")
    p = command(gsub, "replace-photo", cmd_gallery_replace_photo, parents=[ENGINE],
                help="a new photo for a person (the enrolment photo checks apply)")
    p.add_argument("employee_id")
    p.add_argument("photo", type=Path)
    p.add_argument("--force", action="store_true",
                   help="replace even when the face matches someone else enrolled")
    gallery_factor.register(gsub)
    p = command(gsub, "export", cmd_gallery_export, help="all people as one zip (photos + JSON)")
    p.add_argument("file", type=Path)
    p = command(gsub, "import", cmd_gallery_import, parents=[ENGINE],
                help="add people from an exported zip (re-embeds the photos)")
    p.add_argument("file", type=Path)
    p.add_argument("--update", action="store_true",
                   help="replace the name and photo of people already enrolled (unless enrolled "
                        "here later than in the zip); without it they are kept and reported")
    # --flip / --no-flip: which embedding id the stored vectors are checked against.
    command(gsub, "check", cmd_gallery_check, parents=[FLIP, JSON_STDOUT],
            help="verify photos, embeddings and files; exit 1 on problems")
