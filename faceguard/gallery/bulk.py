"""Bulk enrolment: a folder of photos (one per person, the name from the file name) or a CSV
with photo,name,id columns → one enrolment each, with a report line per photo.

Every photo goes through ``enrol.enrol`` (the id rule, the duplicate check), one at a time, so a
photo of someone enrolled earlier in the same batch is refused like any other duplicate. Nothing
stops at a bad photo: it is reported and the next one is tried.

Staff photos from a phone or an ID card often have a second face in the background and a slight
tilt, so the batch judges the photo's MAIN face (vision/main_face: the largest, most central)
alone, says which face it took (``Outcome.thumb``), and lets the manager take a photo refused
only for a soft reason (turned, blurred, too dark or bright: ``SOFT_REASONS``) anyway, photo by
photo (``use_anyway``). No face, or a face too small, is never taken.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceguard.errors import FaceGuardError, GalleryError, NoFaceError
from faceguard.gallery.enrol import DuplicatePersonError, enrol
from faceguard.inputs import check_regular_file
from faceguard.vision.main_face import main_face, main_faces
from faceguard.vision.quality import assess, photo_message

log = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CSV_COLUMNS = ("photo", "name", "id")
# The gate's reasons a manager may overrule for one photo: the face is still there and big
# enough, only not as good as the gate asks. "face" and "size" are never overruled.
SOFT_REASONS = frozenset({"pose", "sharpness", "brightness"})
THUMB_MARGIN = 0.25


@dataclass(frozen=True)
class Item:
    photo: Path
    name: str
    employee_id: str


@dataclass(frozen=True)
class Outcome:
    item: Item
    ok: bool
    message: str          # "enrolled …" or the whole reason why not
    soft: bool = False    # refused only for SOFT_REASONS: "use anyway" may take it
    note: str = ""        # e.g. which of several faces was taken
    thumb: np.ndarray | None = None   # the face taken (or judged), RGB, for the report

    def line(self) -> str:
        who = f"{self.item.name} ({self.item.employee_id})"
        state = "enrolled" if self.ok else "refused"
        why = f": {self.message}" if not self.ok else (f" ({self.note})" if self.note else "")
        return f"{state:8}  {self.item.photo.name}  {who}{why}"


class PhotoRefused(NoFaceError):
    """The photo's main face fails the gate; ``soft`` when only SOFT_REASONS failed."""

    def __init__(self, message: str, soft: bool, thumb: np.ndarray | None):
        super().__init__(message)
        self.soft = soft
        self.thumb = thumb


def thumbnail(rgb: np.ndarray, box) -> np.ndarray:
    """The face taken, with a margin: what the manager looks at to see it is the right one."""
    x1, y1, x2, y2 = (float(v) for v in box)
    pad = THUMB_MARGIN * max(x2 - x1, y2 - y1)
    h, w = rgb.shape[:2]
    top, left = max(0, int(y1 - pad)), max(0, int(x1 - pad))
    return np.ascontiguousarray(rgb[top:max(top + 1, min(h, int(y2 + pad))), left:max(left + 1, min(w, int(x2 + pad)))])


def main_face_of(pipeline, rgb: np.ndarray, use_anyway: bool = False):
    """(face, note, thumb): the photo's main face judged alone by the enrolment gate.
    PhotoRefused (with its soft flag and the face's thumbnail) when it fails, unless
    ``use_anyway`` and only soft reasons failed."""
    results = pipeline.process(rgb)
    face = main_face(results, rgb.shape)
    if face is None:
        raise PhotoRefused(f"This photo cannot be used: {photo_message(assess(rgb, results))}.", False, None)
    thumb = thumbnail(rgb, face.box)
    q = assess(rgb, [face])
    counted = len(main_faces(results))
    note = f"the central face of {counted} was taken" if counted > 1 else ""
    if not q.ok:
        soft = set(q.failed) <= SOFT_REASONS
        if not (soft and use_anyway):
            advice = " It may be taken anyway (\"use anyway\")." if soft else ""
            raise PhotoRefused(f"This photo cannot be used: {photo_message(q)}.{advice}", soft, thumb)
        note = "; ".join(filter(None, [note, f"taken anyway: {photo_message(q)}"]))
    return face, note, thumb


def name_from_file(path: Path) -> str:
    """'Abel_Pacheco_0001.jpg' → 'Abel Pacheco': separators become spaces, a trailing number
    (a camera's or a data set's counter) is dropped."""
    words = [w for w in re.split(r"[_\-\s.]+", path.stem) if w]
    while len(words) > 1 and words[-1].isdigit():
        words.pop()
    return " ".join(words)


def items_from(source: Path) -> list[Item]:
    """The photos to enrol: a CSV (photo,name,id; photo paths relative to the CSV's folder) or
    a folder (every photo file in it, sorted; the id is the file name without its suffix)."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return _items_from_csv(source)
    if not source.is_dir():
        raise GalleryError(f"{source} is neither a folder of photos nor a CSV file.")
    photos = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise GalleryError(f"The folder {source} holds no photos ({', '.join(PHOTO_SUFFIXES)}).")
    return [Item(p, name_from_file(p), p.stem) for p in photos]


MAX_CSV_BYTES = 16 << 20     # ~100 000 people; a 300 MB file is refused before it is read


def _items_from_csv(path: Path) -> list[Item]:
    check_regular_file(path, MAX_CSV_BYTES, "a CSV list of photos", GalleryError)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeError, csv.Error) as exc:
        raise GalleryError(f"The CSV file {path} cannot be read ({exc}).") from exc
    if not rows or any(c not in rows[0] for c in CSV_COLUMNS):
        raise GalleryError(f"The CSV file {path} needs a header line with the columns "
                           f"{','.join(CSV_COLUMNS)} and one line per person.")
    return [Item(path.parent / (r["photo"] or "").strip(), (r["name"] or "").strip(), (r["id"] or "").strip())
            for r in rows]


def enrol_all(gallery, pipeline, items: list[Item], *, consent: bool, threshold: float | None = None,
              progress: Callable[[int, int], None] | None = None,
              cancelled: Callable[[], bool] | None = None,
              use_anyway: frozenset[Path] | set[Path] = frozenset()) -> list[Outcome]:
    """Enrol each item; one Outcome per item (in order). ``progress(done, total)`` after each.
    ``use_anyway``: the photos whose soft refusals the manager overruled."""
    from faceguard.vision.image import load_image

    if not consent:
        raise GalleryError("Bulk enrolment needs everyone's consent: confirm that each person "
                           "in the batch agreed.")
    outcomes: list[Outcome] = []
    for done, item in enumerate(items, 1):
        if cancelled is not None and cancelled():
            break
        thumb = None
        try:
            rgb = load_image(item.photo)
            face, note, thumb = main_face_of(pipeline, rgb, item.photo in use_anyway)
            person = enrol(gallery, pipeline, rgb, item.name, item.employee_id,
                           consent=True, threshold=threshold, face=face)
            outcomes.append(Outcome(item, True, f"enrolled as {person.employee_id}", note=note, thumb=thumb))
        except PhotoRefused as exc:
            outcomes.append(Outcome(item, False, str(exc), soft=exc.soft, thumb=exc.thumb))
        except DuplicatePersonError as exc:
            # A batch has no "enrol anyway": that is one person's decision, made on their own.
            outcomes.append(Outcome(item, False, exc.summary, thumb=thumb))
        except FaceGuardError as exc:
            outcomes.append(Outcome(item, False, str(exc), thumb=thumb))
        except OSError as exc:
            outcomes.append(Outcome(item, False, f"cannot be read ({exc.strerror or exc})"))
        if progress is not None:
            progress(done, len(items))
    enrolled = sum(o.ok for o in outcomes)
    log.info("Bulk enrolment: %d of %d enrolled", enrolled, len(items))
    return outcomes


def report(outcomes: list[Outcome], total: int) -> str:
    """The closing report: how many were enrolled, then EVERY refusal with its whole reason
    (and, for the soft ones, that "use anyway" can take them), then what was not tried."""
    ok = [o for o in outcomes if o.ok]
    refused = [o for o in outcomes if not o.ok]
    lines = [f"{len(ok)} of {total} enrolled, {len(refused)} refused"
             + (f", {total - len(outcomes)} not tried (stopped)" if len(outcomes) < total else "") + "."]
    taken = [o for o in ok if o.note]
    if taken:
        lines.append("")
        lines.append("Enrolled, with a note:")
        lines += [f"  {o.item.photo.name} ({o.item.name}): {o.note}" for o in taken]
    if refused:
        lines.append("")
        lines.append("Refused:")
        lines += [f"  {o.item.photo.name} ({o.item.name}, {o.item.employee_id}): {o.message}" for o in refused]
        lines.append("")
        lines.append("Fix or replace these photos and press \"Retry refused\"; tick \"Use anyway\" "
                     "for a photo whose reason you accept.")
    return "\n".join(lines)
