"""Enrolment, identification, re-embedding and export/import with the real models on LFW photos."""

from __future__ import annotations

import json
import time
import zipfile

import cv2
import numpy as np
import pytest

from faceguard import cli
from faceguard.cli import common as cli_common
from faceguard.cli.gallery import identify_faces
from faceguard.errors import GalleryError, NoFaceError
from faceguard.gallery import crypto
from faceguard.gallery.enrol import DuplicatePersonError, enrol, replace_photo
from faceguard.gallery.events import EventLog
from faceguard.gallery.portable import export_zip, import_zip
from faceguard.gallery.recognise import gallery_matcher
from faceguard.gallery.store import Gallery
from faceguard.settings import Settings, save_settings
from faceguard.vision.image import load_image

# Chosen so that, with the shipped model, each one's probes lie within 0.1 of their gallery photo
# and every two of them (gallery and probe photos) lie more than 0.3 apart.
STAFF = ["Antony_Leung", "William_Macy", "Zico", "Nestor_Kirchner"]
STRANGER = "Kristin_Davis"
# Between those two bands. The product's default threshold comes from calibration (another
# part of issue 3); these tests must not depend on where it currently stands.
THRESHOLD = 0.2


@pytest.fixture(scope="module")
def split(lfw) -> dict[str, dict[str, list[str]]]:
    """identity → {"gallery": [paths], "probe": [paths]} from identification_split.tsv."""
    out: dict[str, dict[str, list[str]]] = {}
    lines = (lfw / "identification_split.tsv").read_text().splitlines()[1:]
    for line in lines:
        path, identity, role = line.split("\t")
        out.setdefault(identity, {"gallery": [], "probe": []})[role].append(path)
    return out


@pytest.fixture(scope="module")
def photos(lfw, split):
    def get(identity: str, role: str = "gallery", k: int = 0) -> np.ndarray:
        return load_image(lfw / split[identity][role][k])
    return get


@pytest.fixture
def threshold() -> float:
    return THRESHOLD


def enrol_staff(gallery, pipeline, photos, threshold):
    for i, who in enumerate(STAFF):
        enrol(gallery, pipeline, photos(who), who.replace("_", " "), f"E{i}", True, threshold)


def test_enrol_then_identify(gallery, pipeline, photos, threshold):
    enrol_staff(gallery, pipeline, photos, threshold)
    assert [p.employee_id for p in gallery.people()] == ["E0", "E3", "E1", "E2"]   # by name
    assert all(p.model_id == pipeline.model_id for p in gallery.people())
    distances = []
    for i, who in enumerate(STAFF):
        faces = identify_faces(gallery_matcher(gallery, pipeline, threshold), pipeline, photos(who, "probe", 0))
        assert len(faces) == 1
        assert faces[0]["person"] == {"name": who.replace("_", " "), "employee_id": f"E{i}"}
        assert faces[0]["distance"] < threshold
        distances.append(faces[0]["distance"])
    stranger = identify_faces(gallery_matcher(gallery, pipeline, threshold), pipeline, photos(STRANGER, "probe", 0))
    assert stranger[0]["person"] is None and stranger[0]["distance"] > threshold
    assert stranger[0]["nearest"] is not None
    print(f"\nenrolled-person probe distances {np.round(distances, 3)}, stranger "
          f"{stranger[0]['distance']:.3f}, threshold {threshold:.3f}")


def test_duplicate_person_is_refused_with_their_name(gallery, pipeline, photos, threshold):
    enrol(gallery, pipeline, photos("Hugo_Chavez"), "Hugo Chavez", "E1", True, threshold)
    second_photo = photos("Hugo_Chavez", "probe", 0)
    with pytest.raises(DuplicatePersonError, match="Hugo Chavez") as err:
        enrol(gallery, pipeline, second_photo, "H. Chavez", "E2", True, threshold)
    assert err.value.employee_id == "E1" and err.value.distance <= threshold
    assert "E1" in str(err.value) and isinstance(err.value, GalleryError)
    assert len(gallery) == 1
    person = enrol(gallery, pipeline, second_photo, "H. Chavez", "E2", True, threshold,
                   override_duplicate=True)
    assert person.employee_id == "E2" and len(gallery) == 2


def test_bad_enrolment_input_is_refused(gallery, pipeline, photos, threshold):
    enrol(gallery, pipeline, photos("Tom_Ridge"), "Tom Ridge", "E1", True, threshold)
    a, b = photos("Jennifer_Garner"), photos("Trent_Lott")
    with pytest.raises(GalleryError, match="name is empty"):
        enrol(gallery, pipeline, a, "  ", "E2", True, threshold)
    with pytest.raises(GalleryError, match="employee id is empty"):
        enrol(gallery, pipeline, a, "Jen", "", True, threshold)
    with pytest.raises(GalleryError, match="already enrolled as Tom Ridge"):
        enrol(gallery, pipeline, a, "Jen", "E1", True, threshold)
    with pytest.raises(GalleryError, match="consent"):
        enrol(gallery, pipeline, a, "Jen", "E2", False, threshold)
    with pytest.raises(NoFaceError, match="no face was found"):
        enrol(gallery, pipeline, np.full((300, 300, 3), 128, np.uint8), "Jen", "E2", True, threshold)
    with pytest.raises(NoFaceError, match="two faces: crop the photo to one person"):
        enrol(gallery, pipeline, np.hstack([a, b]), "Jen", "E2", True, threshold)
    small = cv2.resize(a, (120, 120), interpolation=cv2.INTER_AREA)      # face ≈ 45 px across
    with pytest.raises(NoFaceError, match=r"the face is \d\d px wide; use a photo where it is at least 80 px"):
        enrol(gallery, pipeline, small, "Jen", "E2", True, threshold)
    assert [p.employee_id for p in gallery.people()] == ["E1"]
    assert len(list(gallery.photos_dir.iterdir())) == 1


def test_replace_photo_and_reembed(gallery, pipeline, photos, threshold):
    enrol(gallery, pipeline, photos("Tom_Ridge"), "Tom Ridge", "E1", True, threshold)
    with pytest.raises(NoFaceError):
        replace_photo(gallery, pipeline, "E1", np.hstack([photos("Tom_Ridge"), photos("Trent_Lott")]))
    replace_photo(gallery, pipeline, "E1", photos("Tom_Ridge", "probe", 2))
    # Pretend the gallery was made by an older model: a wrong vector under another id.
    stale = np.zeros(128, np.float32)
    stale[0] = 1
    gallery.add_person("Jen", "E2", photos("Jennifer_Garner"), stale, "old-model")
    assert gallery.stale_count(pipeline.model_id) == 1
    assert gallery.check(pipeline.model_id)[0].startswith("Jen (E2)")
    calls = []
    assert gallery.reembed(pipeline, progress=lambda done, total: calls.append((done, total))) == {}
    assert calls == [(1, 1)] and gallery.stale_count(pipeline.model_id) == 0
    ids, matrix = gallery.embeddings(pipeline.model_id)
    expected = pipeline.process(gallery.photo("E2"))[0].embedding
    np.testing.assert_allclose(matrix[ids.index("E2")], expected, atol=1e-5)
    probe = identify_faces(gallery_matcher(gallery, pipeline, threshold), pipeline, photos("Jennifer_Garner", "probe", 0))
    assert probe[0]["person"]["employee_id"] == "E2"
    assert gallery.check(pipeline.model_id) == []


def test_export_import_round_trip(gallery, pipeline, photos, threshold, tmp_path):
    enrol_staff(gallery, pipeline, photos, threshold)
    gallery.set_active("E3", False)
    out = tmp_path / "gallery.zip"
    assert export_zip(gallery, out) == 4
    with zipfile.ZipFile(out) as zf:
        doc = json.loads(zf.read("gallery.json"))
        assert sorted(p["employee_id"] for p in doc["people"]) == ["E0", "E1", "E2", "E3"]
        assert all(zf.read(p["photo"]).startswith(b"\xff\xd8\xff") for p in doc["people"])

    other = Gallery.open(tmp_path / "office2", tmp_path / "office2.key")
    # enrolled here after the export (a minute later: the zip's times are whole seconds)
    other.add_person("Someone Else", "E1", photos("Trent_Lott"), pipeline.process(photos("Trent_Lott"))[0].embedding,
                     pipeline.model_id, created=time.time() + 60)
    report = import_zip(other, out, pipeline, threshold=threshold)
    # E1 is someone else here: kept as they are, and reported (issue 15, item 3)
    assert sorted(report.added) == ["E0", "E2", "E3"] and report.updated == [] and report.failed == {}
    assert list(report.conflicts) == ["E1"] and "--update" in report.conflicts["E1"]
    names = {f"E{i}": who.replace("_", " ") for i, who in enumerate(STAFF)}
    assert {p.employee_id: p.name for p in other.people(active_only=False)} == {**names, "E1": "Someone Else"}
    assert not other.person("E3").active
    for e in ("E0", "E2"):   # the enrolment and consent times travel with the person
        assert other.person(e).consent_at == pytest.approx(gallery.person(e).consent_at, abs=1)
        assert other.person(e).created == pytest.approx(gallery.person(e).created, abs=1)
    faces = identify_faces(gallery_matcher(other, pipeline, threshold), pipeline, photos("Zico", "probe", 0))
    assert faces[0]["person"]["employee_id"] == "E2"
    assert other.check(pipeline.model_id) == []
    # importing twice resolves by employee id: nobody is added twice; with --update the people
    # from the zip are refreshed, and the later local enrolment of E1 still wins
    again = import_zip(other, out, pipeline, update=True, threshold=threshold)
    assert again.added == [] and sorted(again.updated) == ["E0", "E2", "E3"] and len(other) == 4
    assert list(again.conflicts) == ["E1"] and "newer local enrolment" in again.conflicts["E1"]
    assert other.person("E1").name == "Someone Else"
    other.close()


def test_import_rejects_bad_files(gallery, pipeline, tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(GalleryError, match="not a readable zip"):
        import_zip(gallery, junk, pipeline)
    no_json = tmp_path / "nojson.zip"
    with zipfile.ZipFile(no_json, "w") as zf:
        zf.writestr("x.txt", "hello")
    with pytest.raises(GalleryError, match="no gallery.json"):
        import_zip(gallery, no_json, pipeline)
    bad_entry = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad_entry, "w") as zf:
        zf.writestr("gallery.json", json.dumps({"format": "faceguard-gallery", "people": [
            {"employee_id": "E9", "name": "Nobody", "photo": "photos/missing.jpg",
             "consent_at": "2024-01-01T00:00:00+00:00"}]}))
    report = import_zip(gallery, bad_entry, pipeline)
    assert list(report.failed) == ["E9"] and report.added == [] and len(gallery) == 0


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_commands(lfw, split, pipeline, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli_common, "load_pipeline", lambda args: pipeline)   # load the models once per session
    save_settings(Settings(threshold=THRESHOLD))
    enrolled = lfw / split["Hugo_Chavez"]["gallery"][0]
    code, out, _ = _cli(capsys, "enroll", str(enrolled), "--name", "Hugo Chavez", "--id", "E7",
                        "--consent", "--json")
    assert code == 0 and json.loads(out)["enrolled"]["employee_id"] == "E7"
    code, _, err = _cli(capsys, "enroll", str(enrolled), "--name", "Hugo", "--id", "E8")
    assert code == 2 and "consent" in err
    code, _, err = _cli(capsys, "enroll", str(lfw / split["Hugo_Chavez"]["probe"][0]), "--name", "Hugo",
                        "--id", "E8", "--consent")
    assert code == 2 and "looks like Hugo Chavez" in err

    code, out, _ = _cli(capsys, "identify", str(lfw / split["Hugo_Chavez"]["probe"][2]), "--json")
    result = json.loads(out)
    assert code == 0 and result["gallery_size"] == 1 and len(result["faces"]) == 1
    face = result["faces"][0]
    assert face["person"] == {"name": "Hugo Chavez", "employee_id": "E7"}
    assert face["distance"] < face["threshold"] == result["threshold"] == THRESHOLD and len(face["box"]) == 4

    code, out, _ = _cli(capsys, "gallery", "list", "--json")
    assert [p["name"] for p in json.loads(out)["people"]] == ["Hugo Chavez"]
    code, out, _ = _cli(capsys, "gallery", "check", "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "people": 1, "problems": []}
    zip_path = tmp_path / "g.zip"
    assert _cli(capsys, "gallery", "export", str(zip_path))[0] == 0 and zip_path.exists()

    with Gallery.open() as g:
        EventLog(g).log_event("GRANTED", employee_id="E7", distance=0.2, threshold=0.4)
        (g.photos_dir / ("ab" * 16 + ".txt")).write_bytes(b"stray")
    code, out, _ = _cli(capsys, "gallery", "check")
    assert code == 1 and "belongs to no one" in out
    csv_path = tmp_path / "log.csv"
    assert _cli(capsys, "log", "export", str(csv_path))[0] == 0
    assert "GRANTED,E7,Hugo Chavez" in csv_path.read_text()

    code, out, _ = _cli(capsys, "gallery", "remove", "E7")
    assert code == 0 and "removed Hugo Chavez" in out
    code, _, err = _cli(capsys, "gallery", "remove", "E7")
    assert code == 2 and "No person" in err
    code, out, _ = _cli(capsys, "gallery", "import", str(zip_path))
    assert code == 0 and "1 added" in out

    crypto.default_key_file().unlink()
    code, _, err = _cli(capsys, "gallery", "list")
    assert code == 2 and "key file" in err and "missing" in err
