"""Bulk enrolment: a folder of photos (one per person, the name from the file name) or a CSV
with photo,name,id columns → one enrolment each, with a report line per photo.

Every photo goes through ``enrol.enrol`` (the gate, the id rule, the duplicate check), one at a
time, so a photo of someone enrolled earlier in the same batch is refused like any other
duplicate. Nothing stops at a bad photo: it is reported and the next one is tried.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faceguard.errors import FaceGuardError, GalleryError
from faceguard.gallery.enrol import DuplicatePersonError, enrol
from faceguard.inputs import check_regular_file

log = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CSV_COLUMNS = ("photo", "name", "id")


@dataclass(frozen=True)
class Item:
    photo: Path
    name: str
    employee_id: str


@dataclass(frozen=True)
class Outcome:
    item: Item
    ok: bool
    message: str          # "enrolled" or why not

    def line(self) -> str:
        who = f"{self.item.name} ({self.item.employee_id})"
        state = "enrolled" if self.ok else "refused"
        return f"{state:8}  {self.item.photo.name}  {who}{'' if self.ok else ': ' + self.message}"


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
              cancelled: Callable[[], bool] | None = None) -> list[Outcome]:
    """Enrol each item; one Outcome per item (in order). ``progress(done, total)`` after each."""
    from faceguard.vision.image import load_image

    if not consent:
        raise GalleryError("Bulk enrolment needs everyone's consent: confirm that each person "
                           "in the batch agreed.")
    outcomes: list[Outcome] = []
    for done, item in enumerate(items, 1):
        if cancelled is not None and cancelled():
            break
        try:
            person = enrol(gallery, pipeline, load_image(item.photo), item.name, item.employee_id,
                           consent=True, threshold=threshold)
            outcomes.append(Outcome(item, True, f"enrolled as {person.employee_id}"))
        except DuplicatePersonError as exc:
            # A batch has no "enrol anyway": that is one person's decision, made on their own.
            outcomes.append(Outcome(item, False, exc.summary))
        except FaceGuardError as exc:
            outcomes.append(Outcome(item, False, str(exc)))
        except OSError as exc:
            outcomes.append(Outcome(item, False, f"cannot be read ({exc.strerror or exc})"))
        if progress is not None:
            progress(done, len(items))
    enrolled = sum(o.ok for o in outcomes)
    log.info("Bulk enrolment: %d of %d enrolled", enrolled, len(items))
    return outcomes
