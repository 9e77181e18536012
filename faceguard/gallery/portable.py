"""A gallery in one zip, to move it to another door or keep a copy: ``export_zip``/``import_zip``.

The zip holds ``gallery.json`` (format, version, one entry per person: name, employee id,
consent time, active flag, the photo's member name) and ``photos/NNNNN.jpg``, the stored photos
as plain JPEG. It is NOT encrypted and holds faces: keep it as safe as the people's photos.
Embeddings are not exported; the importing side makes them with its own model, so a zip moves
between doors that run different models.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from faceguard.atomic import atomic_open
from faceguard.errors import FaceGuardError, GalleryError
from faceguard.gallery.db import decode_jpeg, iso, parse_iso
from faceguard.gallery.store import Gallery, clean_text, single_embedding

log = logging.getLogger(__name__)

EXPORT_FORMAT = "faceguard-gallery"
EXPORT_VERSION = 1
_MAX_IMPORT_PHOTO_BYTES = 30 << 20   # refuse zip members bigger than this (zip bombs)


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)      # employee ids
    updated: list[str] = field(default_factory=list)    # existing ids whose photo/name were replaced
    failed: dict[str, str] = field(default_factory=dict)  # employee id (or entry) -> reason


def export_zip(gallery: Gallery, path: Path) -> int:
    """Write every person of ``gallery`` (photo as plain JPEG + gallery.json) to the zip
    ``path``, replacing it only once complete; returns the number of people."""
    path = Path(path)
    entries = []
    try:
        # 0600: the zip holds unencrypted faces
        with atomic_open(path, 0o600) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
            for i, p in enumerate(gallery.people(active_only=False)):
                member = f"photos/{i:05d}.jpg"
                zf.writestr(member, gallery.photo_jpeg(p.employee_id))
                entries.append({**p.to_dict(), "photo": member})
            doc = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported_at": iso(time.time()),
                   "people": entries}
            zf.writestr("gallery.json", json.dumps(doc, indent=2, ensure_ascii=False))
    except OSError as exc:
        raise GalleryError(f"The export {path} could not be written ({exc.strerror or exc}).") from exc
    log.info("Exported %d people to %s", len(entries), path)
    return len(entries)


def import_zip(gallery: Gallery, path: Path, pipeline) -> ImportReport:
    """Add the people of an exported zip to ``gallery``, embedding their photos with
    ``pipeline``. An employee id already there is the same person: their name, photo and
    active flag are replaced. Each person is added on their own; a bad entry is reported, not
    fatal."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise GalleryError(f"{path} is not a readable zip file ({exc}).") from exc
    report = ImportReport()
    with zf:
        try:
            doc = json.loads(zf.read("gallery.json"))
        except KeyError:
            raise GalleryError(f"{path} holds no gallery.json; it is not a FaceGuard gallery export.") from None
        except (ValueError, zipfile.BadZipFile) as exc:
            raise GalleryError(f"The gallery.json in {path} is damaged ({exc}).") from exc
        if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT or not isinstance(doc.get("people"), list):
            raise GalleryError(f"{path} is not a FaceGuard gallery export.")
        for n, entry in enumerate(doc["people"], 1):
            label = str(entry.get("employee_id") or f"entry {n}") if isinstance(entry, dict) else f"entry {n}"
            try:
                _import_one(gallery, zf, entry, pipeline, report)
            except (FaceGuardError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
                report.failed[label] = str(exc) if isinstance(exc, FaceGuardError) else f"bad entry ({exc!r})"
    log.info("Imported %s: %d added, %d updated, %d failed", path, len(report.added),
             len(report.updated), len(report.failed))
    return report


def _import_one(gallery: Gallery, zf: zipfile.ZipFile, entry: dict, pipeline, report: ImportReport) -> None:
    employee_id = clean_text(str(entry["employee_id"]), "employee id")
    name = clean_text(str(entry["name"]), "name")
    info = zf.getinfo(str(entry["photo"]))
    if info.file_size > _MAX_IMPORT_PHOTO_BYTES:
        raise GalleryError(f"The photo of {employee_id} is too large ({info.file_size} bytes).")
    rgb = decode_jpeg(zf.read(info), "photo in the zip")
    embedding = single_embedding(pipeline, rgb)
    consent_at = parse_iso(entry["consent_at"]) if entry.get("consent_at") else None
    if consent_at is None:
        raise GalleryError(f"The entry of {employee_id} records no consent; it was not imported.")
    if gallery.person(employee_id) is None:
        gallery.add_person(name, employee_id, rgb, embedding, pipeline.model_id, consent_at=consent_at)
        report.added.append(employee_id)
    else:
        gallery.replace_photo(employee_id, rgb, embedding, pipeline.model_id)
        gallery.rename(employee_id, name)
        report.updated.append(employee_id)
    if not entry.get("active", True):
        gallery.set_active(employee_id, False)
