"""Issue 15, items 3, 7 and 9: gallery import never changes a person unless asked, runs the
duplicate-face check, keeps a manifest's first entry per id; hostile zips end in one line;
exports are private (0600). Real zips of real LFW photos through the real pipeline."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.cli import common, main
from faceguard.errors import GalleryError
from faceguard.gallery.events import EventLog
from faceguard.gallery.portable import export_zip, import_zip, open_export
from faceguard.gallery.store import Gallery
from faceguard.vision.image import load_image

THRESHOLD = 0.2
ANTONY = "images/Antony_Leung/Antony_Leung_0001.jpg"
ZICO = "images/Zico/Zico_0001.jpg"


def jpeg(lfw: Path, rel: str) -> bytes:
    return (lfw / rel).read_bytes()


def make_zip(path: Path, people: list[dict], photos: dict[str, bytes], **extra) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in photos.items():
            zf.writestr(name, data)
        zf.writestr("gallery.json", json.dumps({"format": "faceguard-gallery", "version": 1,
                                                 "people": people, **extra}))
    return path


def entry(employee_id: str, name: str, photo: str, created: str = "2024-01-01T00:00:00+00:00") -> dict:
    return {"employee_id": employee_id, "name": name, "photo": photo, "created": created,
            "consent_at": created, "active": True}


@pytest.fixture
def cli_pipeline(pipeline, monkeypatch):
    """The CLI's pipeline is the session's (models loaded once)."""
    monkeypatch.setattr(common, "load_pipeline", lambda args: pipeline)
    return pipeline


def test_import_never_changes_an_existing_person_unless_asked(gallery, pipeline, lfw, tmp_path, capsys,
                                                              cli_pipeline):
    antony = load_image(lfw / ANTONY)
    gallery.add_person("Antony Leung", "E1", antony, pipeline.process(antony)[0].embedding, pipeline.model_id)
    created = gallery.person("E1").created
    out = tmp_path / "g.zip"
    export_zip(gallery, out)
    # An impostor's zip: the same id with another face and name, enrolled "earlier"
    rogue = make_zip(tmp_path / "rogue.zip", [entry("E1", "Mallory", "photos/0.jpg")],
                     {"photos/0.jpg": jpeg(lfw, ZICO)})
    gallery.close()
    assert main(["gallery", "import", str(rogue)]) == 1
    text = capsys.readouterr().out
    assert "0 added, 0 updated, 1 kept as they were, 0 failed" in text and "--update" in text
    with Gallery.open() as g:
        assert g.person("E1").name == "Antony Leung" and g.person("E1").created == created
        ids, _ = g.embeddings(pipeline.model_id)
        before = g.photo_jpeg("E1")
    # --update replaces name and photo of an older local enrolment, keeping its enrolment date
    assert main(["gallery", "import", "--update", str(rogue)]) == 1
    assert "newer local enrolment was kept" in capsys.readouterr().out   # local is from today
    with Gallery.open() as g:
        g.rename("E1", "A. Leung")
        assert g.photo_jpeg("E1") == before
    assert main(["gallery", "import", "--update", str(out)]) == 0
    assert "0 added, 1 updated, 0 kept as they were, 0 failed" in capsys.readouterr().out
    with Gallery.open() as g:
        assert g.person("E1").name == "Antony Leung" and g.person("E1").created == created


def test_one_face_under_many_ids_is_refused(gallery, pipeline, lfw, tmp_path):
    n = 60
    people = [entry(f"E{i:02d}", f"Clone {i}", "photos/face.jpg") for i in range(n)]
    z = make_zip(tmp_path / "clones.zip", people, {"photos/face.jpg": jpeg(lfw, ANTONY)})
    # One photo named by many entries: the zip is refused as a whole (issue 22 item 14).
    with pytest.raises(GalleryError, match="name the same photo"):
        import_zip(gallery, z, pipeline, threshold=THRESHOLD)
    assert len(gallery) == 0
    # The same face in separate photo files: each later one fails the duplicate check.
    z = make_zip(tmp_path / "clones2.zip", [entry(f"E{i:02d}", f"Clone {i}", f"photos/{i}.jpg") for i in range(3)],
                 {f"photos/{i}.jpg": jpeg(lfw, ANTONY) for i in range(3)})
    report = import_zip(gallery, z, pipeline, threshold=THRESHOLD)
    assert report.added == ["E00"] and len(gallery) == 1 and len(report.failed) == 2
    assert all("looks like Clone 0 (employee id E00)" in why for why in report.failed.values())


def test_a_later_manifest_entry_does_not_replace_an_earlier_one(gallery, pipeline, lfw, tmp_path):
    z = make_zip(tmp_path / "twice.zip",
                 [entry("E7", "Antony Leung", "photos/a.jpg"), entry("E7", "Zico", "photos/z.jpg")],
                 {"photos/a.jpg": jpeg(lfw, ANTONY), "photos/z.jpg": jpeg(lfw, ZICO)})
    report = import_zip(gallery, z, pipeline, threshold=THRESHOLD)
    assert report.added == ["E7"] and list(report.failed) == ["E7 (entry 2)"]
    assert "more than once" in report.failed["E7 (entry 2)"]
    assert gallery.person("E7").name == "Antony Leung"


def test_exports_are_private_whatever_the_umask(gallery, pipeline, lfw, tmp_path):
    antony = load_image(lfw / ANTONY)
    gallery.add_person("Antony Leung", "E1", antony, pipeline.process(antony)[0].embedding, pipeline.model_id)
    EventLog(gallery).log_event("GRANTED", employee_id="E1")
    zpath, cpath = tmp_path / "g.zip", tmp_path / "log.csv"
    for p in (zpath, cpath):
        p.write_bytes(b"old")
        p.chmod(0o644)
    old = os.umask(0)
    try:
        export_zip(gallery, zpath)
        EventLog(gallery).export_csv(cpath)
    finally:
        os.umask(old)
    for p in (zpath, cpath):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


@pytest.mark.parametrize("command", [["gallery", "export"], ["log", "export"]])
@pytest.mark.parametrize("target", ["/", ".", "folder", "fifo"])
def test_export_to_a_folder_or_device_is_one_clear_line(command, target, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")      # as /dev/null would be: never replaced by a regular file
    assert main([*command, target]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "file name" in err, err
    assert stat.S_ISFIFO((tmp_path / "fifo").stat().st_mode)


# -- hostile zips (item 7) --------------------------------------------------------------------
def _zip_bytes(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return buf.getvalue()


def _manifest(n: int = 1) -> bytes:
    return json.dumps({"format": "faceguard-gallery", "people": [
        entry(f"E{i}", f"P {i}", f"photos/{i}.jpg") for i in range(n)]}).encode()


def _hostile_zips(lfw: Path) -> dict[str, tuple[bytes, str]]:
    """name → (zip bytes, a word the one-line refusal must contain)."""
    zips: dict[str, tuple[bytes, str]] = {}
    zips["bomb member"] = (_zip_bytes([("gallery.json", _manifest()), ("photos/0.jpg", b"\0" * (40 << 20))]),
                           "too large")
    zips["high ratio"] = (_zip_bytes([("gallery.json", _manifest()), ("photos/0.jpg", b"\0" * (20 << 20))]),
                          "zip bomb")
    zips["huge manifest"] = (_zip_bytes([("gallery.json", b" " * (40 << 20))]), "too large")
    zips["deep manifest"] = (_zip_bytes([("gallery.json", b"[" * 200_000 + b"]" * 200_000)]), "nested too deeply")
    zips["many members"] = (_zip_bytes([("gallery.json", _manifest())] +
                                       [(f"x/{i}", b"") for i in range(20_001)]), "at most")
    enc = bytearray(_zip_bytes([("gallery.json", _manifest())]))
    # the "encrypted" flag bit, in the local header (offset 6) and the central directory entry
    enc[6] |= 1
    cd = enc.rfind(b"PK\x01\x02")
    enc[cd + 8] |= 1
    zips["encrypted"] = (bytes(enc), "password-protected")
    odd = bytearray(_zip_bytes([("gallery.json", _manifest())]))
    for off in (8, odd.rfind(b"PK\x01\x02") + 10):      # compression method 99 (AES) everywhere
        odd[off:off + 2] = (99).to_bytes(2, "little")
    zips["unsupported method"] = (bytes(odd), "method")
    zips["not a zip"] = (b"PK\x03\x04 this is no zip" * 10, "not a readable zip")
    zips["truncated"] = (_zip_bytes([("gallery.json", _manifest())])[:-30], "not a readable zip")
    big_photo = cv2.imencode(".png", np.zeros((8000, 6000), np.uint8))[1].tobytes()
    zips["image bomb"] = (_zip_bytes([("gallery.json", _manifest()), ("photos/0.jpg", big_photo)]), "")
    return zips


def test_hostile_zips_end_in_one_line(lfw, tmp_path, capsys, cli_pipeline):
    for name, (data, words) in _hostile_zips(lfw).items():
        path = tmp_path / f"{name.replace(' ', '_')}.zip"
        path.write_bytes(data)
        code = main(["gallery", "import", str(path)])
        out = capsys.readouterr()
        assert "Traceback" not in out.err + out.out, name
        if name == "image bomb":   # refused per person: the import reports it and exits 1
            assert code == 1 and "too large to load" in out.out, (name, out)
            continue
        assert code == 2 and len(out.err.strip().splitlines()) == 1, (name, out)
        assert words in out.err, (name, out.err)


def test_a_fifo_is_not_opened_as_a_zip(tmp_path):
    fifo = tmp_path / "g.zip"
    os.mkfifo(fifo)
    with pytest.raises(GalleryError, match="not a regular file"):
        open_export(fifo)
