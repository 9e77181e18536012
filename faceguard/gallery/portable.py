"""A gallery in one zip, to move it to another door or keep a copy: ``export_zip``/``import_zip``.

The zip holds ``gallery.json`` (format, version, one entry per person: name, employee id,
enrolment and consent times, active flag, the photo's member name, the PIN's scrypt hash (never
the PIN), the auth mode and the learned templates' embeddings with their model id) and ``photos/NNNNN.jpg``,
the stored photos as plain JPEG. It is NOT encrypted and holds faces: it is written 0600; keep
it as safe as the people's photos. Embeddings are not exported; the importing side makes them
with its own model, so a zip moves between doors that run different models.

Importing never changes a person already enrolled unless asked (``update=True``), and even then
keeps a local enrolment newer than the zip's; every face passes the enrolment's duplicate check
(one face under two ids makes the door's answer a matter of chance); an employee id that
appears twice in gallery.json is imported from its first entry only. What was not imported is
reported with the reason. A zip is checked as a whole before anything is read from it: member
count, sizes, compression ratio, encryption and compression method, the size and depth of
gallery.json. Hostile zips end in one GalleryError.
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
from faceguard.gallery import pins, templates
from faceguard.gallery.db import iso, parse_iso
from faceguard.gallery.ids import clean_id, clean_text, normalise_id, same_id
from faceguard.gallery.person import single_embedding
from faceguard.gallery.recognise import gallery_matcher, zone_thresholds
from faceguard.gallery.store import Gallery
from faceguard.inputs import check_output_file, check_regular_file
from faceguard.vision.image import decode_image

log = logging.getLogger(__name__)

EXPORT_FORMAT = "faceguard-gallery"
EXPORT_VERSION = 1
MAX_ZIP_BYTES = 8 << 30            # the zip file itself
MAX_MEMBERS = 20_000               # 10 000 people and their photos
MAX_PHOTO_BYTES = 30 << 20         # one member
MAX_MANIFEST_BYTES = 32 << 20      # gallery.json; ~300 bytes a person
MAX_TOTAL_BYTES = 4 << 30          # all members, uncompressed
MAX_RATIO = 100                    # uncompressed / compressed, for members over 1 MB (JPEG ~1)
MAX_PHOTO_PIXELS = 40_000_000      # exported photos are at most 1024 px a side
_SUPPORTED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)      # employee ids
    updated: list[str] = field(default_factory=list)    # existing ids whose photo/name were replaced (update=True)
    conflicts: dict[str, str] = field(default_factory=dict)  # existing ids kept as they are -> why
    failed: dict[str, str] = field(default_factory=dict)  # employee id (or entry) -> reason


def export_zip(gallery: Gallery, path: Path) -> int:
    """Write every person of ``gallery`` (photo as plain JPEG + gallery.json) to the zip
    ``path`` (mode 0600), replacing it only once complete; returns the number of people."""
    path = Path(path)
    check_output_file(path, "the gallery export", GalleryError, "gallery.zip")
    entries = []
    try:
        # 0600: the zip holds unencrypted faces
        with atomic_open(path, 0o600) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
            for i, p in enumerate(gallery.people(active_only=False)):
                member = f"photos/{i:05d}.jpg"
                zf.writestr(member, gallery.photo_jpeg(p.employee_id))
                entries.append({**p.to_dict(), "photo": member, **pins.export_fields(gallery, p.employee_id),
                                **templates.export_fields(gallery, p.employee_id)})
            doc = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported_at": iso(time.time()),
                   "people": entries}
            zf.writestr("gallery.json", json.dumps(doc, indent=2, ensure_ascii=False))
    except OSError as exc:
        raise GalleryError(f"The export {path} could not be written ({exc.strerror or exc}).") from exc
    log.info("Exported %d people to %s", len(entries), path)
    return len(entries)


def open_export(path: Path) -> tuple[zipfile.ZipFile, dict]:
    """The zip and its parsed gallery.json, after every check on the archive as a whole;
    GalleryError naming the file otherwise. The caller closes the zip."""
    path = Path(path)
    check_regular_file(path, MAX_ZIP_BYTES, "a gallery export (.zip)", GalleryError)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as exc:
        raise GalleryError(f"{path} is not a readable zip file ({exc}).") from exc
    try:
        _check_members(zf, path)
        return zf, _manifest(zf, path)
    except BaseException:
        zf.close()
        raise


def _check_members(zf: zipfile.ZipFile, path: Path) -> None:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise GalleryError(f"{path} holds {len(infos)} files; a gallery export holds at most {MAX_MEMBERS}.")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise GalleryError(f"{path} is password-protected ({info.filename}); FaceGuard writes and "
                               "reads unencrypted exports only.")
        if info.compress_type not in _SUPPORTED:
            raise GalleryError(f"{path}: {info.filename} is compressed with a method FaceGuard does not "
                               "read (only stored or deflated); export the gallery again with FaceGuard.")
        limit = MAX_MANIFEST_BYTES if info.filename == "gallery.json" else MAX_PHOTO_BYTES
        if info.file_size > limit:
            raise GalleryError(f"{path}: {info.filename} is too large ({info.file_size} bytes; at most "
                               f"{limit}).")
        if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise GalleryError(f"{path}: {info.filename} expands {info.file_size // max(info.compress_size, 1)} "
                               "times when unpacked; that is a zip bomb, not a gallery export.")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise GalleryError(f"{path} unpacks to {total} bytes; a gallery export is at most {MAX_TOTAL_BYTES}.")


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    # The central directory's sizes are what was checked; reading stops there as well.
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise GalleryError(f"{info.filename} is larger than it says.")
    return data


def _manifest(zf: zipfile.ZipFile, path: Path) -> dict:
    try:
        info = zf.getinfo("gallery.json")
    except KeyError:
        raise GalleryError(f"{path} holds no gallery.json; it is not a FaceGuard gallery export.") from None
    try:
        doc = json.loads(_read(zf, info, MAX_MANIFEST_BYTES))
    except RecursionError:
        raise GalleryError(f"The gallery.json in {path} is nested too deeply; it is not a FaceGuard "
                           "gallery export.") from None
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise GalleryError(f"The gallery.json in {path} is damaged ({str(exc)[:200]}).") from exc
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT or not isinstance(doc.get("people"), list):
        raise GalleryError(f"{path} is not a FaceGuard gallery export.")
    return doc


def import_zip(gallery: Gallery, path: Path, pipeline, *, update: bool = False,
               threshold: float | None = None) -> ImportReport:
    """Add the people of an exported zip to ``gallery``, embedding their photos with
    ``pipeline``. An employee id already enrolled is left as it is (a conflict in the report)
    unless ``update``; with ``update`` their name, photo and active flag are replaced, unless
    the local enrolment is newer than the zip's entry. ``threshold`` is the user's threshold
    setting for the duplicate check (None = calibrated). Each person is imported on their
    own; a bad entry is reported, not fatal."""
    path = Path(path)
    zf, doc = open_export(path)
    report = ImportReport()
    seen: set[str] = set()
    _refuse_repeated_photos(doc["people"], path)
    with zf:
        for n, entry in enumerate(doc["people"], 1):
            raw = entry.get("employee_id") if isinstance(entry, dict) else None
            label = raw[:200] if isinstance(raw, str) and raw.strip() else f"entry {n}"
            key = normalise_id(label)
            if key in seen:
                report.failed[f"{label} (entry {n})"] = ("appears more than once in gallery.json; only "
                                                         "its first entry was imported")
                continue
            seen.add(key)
            try:
                _import_one(gallery, zf, entry, pipeline, report, update, threshold)
            except (FaceGuardError, KeyError, TypeError, ValueError, AttributeError, zipfile.BadZipFile,
                    EOFError, OSError) as exc:
                report.failed[label] = str(exc) if isinstance(exc, FaceGuardError) else f"bad entry ({exc!r:.200})"
    log.info("Imported %s: %d added, %d updated, %d kept as they were, %d failed", path,
             len(report.added), len(report.updated), len(report.conflicts), len(report.failed))
    return report


def _refuse_repeated_photos(people: list, path: Path) -> None:
    """One photo under two entries is one face under two ids: the whole zip is refused."""
    members = [e.get("photo") for e in people if isinstance(e, dict)]
    named = [m for m in members if isinstance(m, str)]
    if len(set(named)) != len(named):
        raise GalleryError(f"{path}: several entries of gallery.json name the same photo; it is not "
                           "a FaceGuard gallery export (one photo is one person).")


def _text(entry: dict, key: str) -> str:
    """A text field of the manifest; null, numbers, lists and booleans are refused (they would
    become ids like "None")."""
    value = entry.get(key)
    if not isinstance(value, str):
        raise GalleryError(f"the field '{key}' must be text, not {type(value).__name__}")
    return value


def _time(entry: dict, key: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise GalleryError(f"the field '{key}' must be a date as text, not {type(value).__name__}")
    try:
        return parse_iso(value) if value else None
    except ValueError:
        raise GalleryError(f"the field '{key}' is not a date ('{value[:40]}')") from None


def _active(entry: dict) -> bool:
    value = entry.get("active", True)
    if not isinstance(value, bool):   # "false" is a non-empty string, which Python calls true
        raise GalleryError(f"the field 'active' must be true or false, not {json.dumps(value)[:40]}")
    return value


def _import_one(gallery: Gallery, zf: zipfile.ZipFile, entry: dict, pipeline, report: ImportReport,
                update: bool, threshold: float | None) -> None:
    if not isinstance(entry, dict):
        raise GalleryError("the entry is not a person record")
    employee_id = clean_id(_text(entry, "employee_id"))
    name = clean_text(_text(entry, "name"), "name")
    created = _time(entry, "created")
    active, valid_until = _active(entry), _time(entry, "valid_until")
    existing = gallery.person(employee_id)
    if existing is not None and not update:
        report.conflicts[employee_id] = (f"already enrolled here as {existing.name}; kept as it is "
                                         "(import with --update to replace their name and photo)")
        return
    if existing is not None and created is not None and existing.created > created + 1:
        report.conflicts[employee_id] = (f"enrolled here on {iso(existing.created)}, later than the "
                                         f"zip's entry ({iso(created)}); the newer local enrolment was kept")
        return
    consent_at = _time(entry, "consent_at")
    if consent_at is None:
        raise GalleryError(f"The entry of {employee_id} records no consent; it was not imported.")
    info = zf.getinfo(_text(entry, "photo"))
    rgb = decode_image(_read(zf, info, MAX_PHOTO_BYTES), f"the photo of {employee_id} in the zip",
                       max_pixels=MAX_PHOTO_PIXELS)
    embedding = single_embedding(pipeline, rgb)
    near = gallery_matcher(gallery, pipeline, threshold, include_inactive=True).nearest(embedding)
    if near.accepted and not same_id(str(near.id), employee_id):
        raise GalleryError(f"the face looks like {near.name} (employee id {near.id}), who is already "
                           f"enrolled ({near.explain()}); not imported (enrol them one by one with "
                           "the duplicate override if they are different people)")
    if existing is None:
        gallery.add_person(name, employee_id, rgb, embedding, pipeline.model_id, consent_at=consent_at,
                           created=created)
        report.added.append(employee_id)
    else:
        gallery.replace_photo(employee_id, rgb, embedding, pipeline.model_id)
        if name != existing.name:
            gallery.rename(employee_id, name)
        report.updated.append(employee_id)
    pins.import_fields(gallery, employee_id, entry)   # PIN hash, auth mode
    templates.import_fields(gallery, employee_id, entry, pipeline.model_id, zone_thresholds(pipeline, 1)[1])
    if not active:
        gallery.set_active(employee_id, False)
    elif existing is not None and not existing.enabled:
        gallery.set_active(employee_id, True)
    if valid_until is not None or (existing is not None and existing.valid_until is not None):
        gallery.set_valid_until(employee_id, valid_until)
