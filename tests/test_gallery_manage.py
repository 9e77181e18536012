"""Managing the gallery from the command line and the core: deactivate / activate, valid-until,
ids unique whatever their case, change of id, replace-photo through the enrolment gate and the
duplicate check, `enroll` with the same gate and --force, two enrolments of one face at once,
and bulk enrolment of 20 dev-set people from a folder or a CSV."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import threading
import time

import numpy as np
import pytest
from conftest import blurred, dev_people, photo

from faceguard import cli
from faceguard.cli import common as cli_common
from faceguard.errors import GalleryError
from faceguard.gallery.enrol import DuplicatePersonError, enrol, replace_photo
from faceguard.gallery.recognise import gallery_matcher
from faceguard.gallery.store import Gallery
from faceguard.settings import Settings, save_settings
from faceguard.vision.image import load_image


@pytest.fixture
def run(capsys, monkeypatch, pipeline):
    monkeypatch.setattr(cli_common, "load_pipeline", lambda args: pipeline)

    def _run(*argv):
        code = cli.main(list(map(str, argv)))
        out = capsys.readouterr()
        return code, out.out, out.err
    return _run


def rows(sql):
    from faceguard import paths
    with sqlite3.connect(paths.data_dir() / "gallery.db") as con:
        return con.execute(sql).fetchall()


def test_cli_manages_people(run, lfw, split, tmp_path, pipeline):
    save_settings(Settings(threshold=pipeline.threshold_for(1)))
    hugo, tom = photo(lfw, split, "Hugo_Chavez"), photo(lfw, split, "Tom_Ridge")
    assert run("enroll", hugo, "--name", "Hugo Chavez", "--id", "E7", "--consent")[0] == 0
    code, _, err = run("enroll", tom, "--name", "Tom Ridge", "--id", "e7", "--consent")
    assert code == 2 and "'e7' is already enrolled as Hugo Chavez (E7)" in err    # case-insensitive
    assert run("enroll", tom, "--name", "Tom Ridge", "--id", "T1", "--consent")[0] == 0

    code, out, _ = run("gallery", "deactivate", "t1")                       # any case finds him
    assert code == 0 and "deactivated Tom Ridge (T1)" in out
    assert rows("SELECT employee_id, active FROM people ORDER BY id") == [("E7", 1), ("T1", 0)]
    probe = load_image(photo(lfw, split, "Tom_Ridge", "probe"))
    with Gallery.open() as g:
        faces = cli.gallery.identify_faces(gallery_matcher(g, pipeline), pipeline, probe)
    assert faces[0]["person"] is None                                       # inactive: never matched
    code, out, _ = run("gallery", "list")
    assert "T1\tTom Ridge\tlast seen never  (inactive)" in out
    assert run("gallery", "activate", "T1")[0] == 0
    assert rows("SELECT active FROM people WHERE employee_id='T1'") == [(1,)]

    code, out, err = run("gallery", "valid-until", "T1", "2020-01-31")     # a date gone by: asked first
    assert code == 2 and "2020-01-31 is in the past: T1 would be refused at the door from now on" in err
    assert rows("SELECT valid_until FROM people WHERE employee_id='T1'") == [(None,)]
    code, out, _ = run("gallery", "valid-until", "T1", "2020-01-31", "--force")
    assert code == 0 and "let in through 2020-01-31" in out
    with Gallery.open() as g:
        t1 = g.person("T1")
        assert t1.expired and not t1.active and t1.enabled
        assert [p.employee_id for p in g.people()] == ["E7"]                # expired: not let in
        assert g.embeddings(pipeline.model_id)[0] == ["E7"]
    assert "(expired 2020-01-31)" in run("gallery", "list")[1]
    assert run("gallery", "valid-until", "T1", "never")[0] == 0
    assert rows("SELECT valid_until FROM people WHERE employee_id='T1'") == [(None,)]
    assert run("gallery", "valid-until", "T1", "soon")[0] == 2

    code, _, err = run("gallery", "change-id", "T1", "e7")
    assert code == 2 and "already enrolled as 'E7'" in err
    code, out, _ = run("gallery", "change-id", "T1", "T-0001")
    assert code == 0 and rows("SELECT employee_id FROM people ORDER BY id") == [("E7",), ("T-0001",)]

    # Replace photo: the gate and the duplicate check, as enrolment.
    code, _, err = run("gallery", "replace-photo", "T-0001", hugo)
    assert code == 2 and "looks like Hugo Chavez" in err and "--force" in err
    code, _, err = run("gallery", "replace-photo", "T-0001", blurred(photo(lfw, split, "Tom_Ridge", "probe"), tmp_path))
    assert code == 2 and "the photo is blurred" in err
    before = rows("SELECT photo_file FROM people WHERE employee_id='T-0001'")
    assert run("gallery", "replace-photo", "t-0001", photo(lfw, split, "Tom_Ridge", "probe"))[0] == 0
    assert rows("SELECT photo_file FROM people WHERE employee_id='T-0001'") != before

    # enroll: the dialog's gate, and the option the message names exists.
    code, _, err = run("enroll", blurred(photo(lfw, split, "Jennifer_Garner"), tmp_path), "--name", "Jen",
                       "--id", "J1", "--consent")
    assert code == 2 and "This photo cannot be used: the photo is blurred; use a sharp one." in err
    second = photo(lfw, split, "Hugo_Chavez", "probe")
    code, _, err = run("enroll", second, "--name", "H. Chavez", "--id", "E8", "--consent")
    assert code == 2 and "looks like Hugo Chavez" in err and "run the command again with --force" in err
    code, out, _ = run("enroll", second, "--name", "H. Chavez", "--id", "E8", "--consent", "--force", "--json")
    assert code == 0 and json.loads(out)["enrolled"]["employee_id"] == "E8"


def test_replace_photo_refuses_another_enrolled_face(gallery_with_two, lfw, split, pipeline):
    g, threshold = gallery_with_two
    with pytest.raises(DuplicatePersonError, match="Hugo Chavez"):
        replace_photo(g, pipeline, "T1", load_image(photo(lfw, split, "Hugo_Chavez", "probe")), threshold)
    # their own new photo is no duplicate of themselves
    replace_photo(g, pipeline, "T1", load_image(photo(lfw, split, "Tom_Ridge", "probe", 1)), threshold)


@pytest.fixture
def gallery_with_two(lfw, split, pipeline):
    g = Gallery.open()
    threshold = pipeline.threshold_for(2)
    enrol(g, pipeline, load_image(photo(lfw, split, "Hugo_Chavez")), "Hugo Chavez", "E7", True, threshold)
    enrol(g, pipeline, load_image(photo(lfw, split, "Tom_Ridge")), "Tom Ridge", "T1", True, threshold)
    yield g, threshold
    g.close()


def test_two_enrolments_of_one_face_at_once_do_not_both_succeed(lfw, split, pipeline):
    rgb = load_image(photo(lfw, split, "Hugo_Chavez"))
    Gallery.open().close()                               # created once, before the race
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def enrol_as(employee_id):
        with Gallery.open() as g:                        # its own connection, as another program
            start.wait()
            try:
                results[employee_id] = enrol(g, pipeline, rgb, "Hugo", employee_id, True,
                                             pipeline.threshold_for(1))
            except GalleryError as exc:
                results[employee_id] = exc
    threads = [threading.Thread(target=enrol_as, args=(i,)) for i in ("A1", "A2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    kinds = sorted(type(r).__name__ for r in results.values())
    assert kinds == ["DuplicatePersonError", "Person"], results
    assert len(rows("SELECT * FROM people")) == 1


def test_bulk_enrolment_of_20_dev_set_photos(run, lfw, split, tmp_path):
    folder = tmp_path / "staff"
    folder.mkdir()
    people = dev_people(split, 20)
    for who in people:
        shutil.copy(photo(lfw, split, who), folder)
    # A clear second photo (0.04 from the first; Abel Pacheco's two are 0.137 apart, above the
    # threshold a batch of 20 reaches once the main-face rule takes the photos with a background face).
    twin = people[1]
    shutil.copy(photo(lfw, split, twin, "probe"), folder / "Second_Photo_Of_Someone.jpg")
    (folder / "notes.txt").write_text("not a photo")
    code, out, _ = run("enroll", "--folder", folder, "--consent")
    lines = out.splitlines()
    report, summary = lines[:-1], lines[-1]
    assert len(report) == 21                             # one line per photo, none for notes.txt
    stored = dict(rows("SELECT employee_id, name FROM people"))
    enrolled = [ln for ln in report if ln.startswith("enrolled")]
    refused = [ln for ln in report if ln.startswith("refused")]
    assert summary == f"{len(stored)} of 21 enrolled, {len(refused)} refused"
    assert code == 1 and len(enrolled) == len(stored) >= 15
    dup = next(ln for ln in report if "Second_Photo_Of_Someone.jpg" in ln)
    assert dup.startswith("refused") and f"looks like {twin.replace('_', ' ')}" in dup
    assert "override" not in dup           # one photo of a batch: no option to name
    first = split[people[0]]["gallery"][0].rsplit("/", 1)[1]
    assert stored[first[:-4]] == people[0].replace("_", " ")          # name from the file name
    for ln in refused:
        assert ": " in ln                                # each refusal says why
    print("\n" + out)


def test_bulk_enrolment_from_a_csv(run, lfw, split, tmp_path):
    people = ["Abel_Pacheco", "Akhmed_Zakayev", "Angela_Bassett"]   # photos that pass the gate
    sheet = tmp_path / "people.csv"
    with open(sheet, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["photo", "name", "id"])
        for i, who in enumerate(people):
            w.writerow([str(photo(lfw, split, who)), who.replace("_", " ") + " Jr", f"S{i}"])
        w.writerow(["missing.jpg", "Nobody", "S9"])
    code, out, _ = run("enroll", "--folder", sheet, "--consent", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["enrolled"] == 3 and doc["refused"] == 1
    assert [p["employee_id"] for p in doc["photos"]] == ["S0", "S1", "S2", "S9"]
    assert "file not found" in doc["photos"][3]["message"]
    assert sorted(rows("SELECT employee_id FROM people")) == [("S0",), ("S1",), ("S2",)]
    code, _, err = run("enroll", "--folder", sheet)
    assert code == 2 and "consent" in err


def test_expired_date_is_in_the_past_and_future_one_is_active(lfw, split, pipeline):
    with Gallery.open() as g:
        enrol(g, pipeline, load_image(photo(lfw, split, "Tom_Ridge")), "Tom Ridge", "T1", True)
        assert g.set_valid_until("T1", time.time() + 3600).active
        assert not g.set_valid_until("T1", time.time() - 1).active
        assert g.people() == [] and g.people(active_only=False)[0].employee_id == "T1"
        np.testing.assert_equal(g.embeddings(pipeline.model_id)[1].shape, (0, 0))


def test_bulk_enrolment_use_anyway_for_a_turned_photo(run, lfw, split, tmp_path):
    folder = tmp_path / "staff"
    folder.mkdir()
    for who in ("Amber_Tamblyn", "Abel_Pacheco"):            # Amber's photo is turned (a soft reason)
        shutil.copy(photo(lfw, split, who), folder / f"{who}.jpg")
    code, out, _ = run("enroll", "--folder", folder, "--consent")
    amber = next(ln for ln in out.splitlines() if "Amber_Tamblyn.jpg" in ln)
    assert code == 1 and amber.startswith("refused") and amber.endswith('It may be taken anyway ("use anyway").')
    code, out, err = run("enroll", "--folder", folder, "--consent", "--use-anyway", "Nobody.jpg")
    assert code == 2 and "--use-anyway Nobody.jpg: not a photo of" in err
    code, out, _ = run("enroll", "--folder", folder, "--consent", "--use-anyway", "Amber_Tamblyn.jpg")
    amber = next(ln for ln in out.splitlines() if "Amber_Tamblyn.jpg" in ln)
    assert amber.startswith("enrolled") and "(taken anyway: the face is turned or tilted" in amber
    assert ("Amber_Tamblyn",) in rows("SELECT employee_id FROM people")
