"""The passive texture signal: MiniFASNet rebuilt from its state dicts, its ONNX twins, the crops
as trained, abstaining on faces it cannot judge, and the per-visit vote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import mr

from faceguard.access.decide import GRANTED, Decider
from faceguard.access.texture_vote import LIVE, SCREEN, UNSURE, TextureVote
from faceguard.errors import ModelError
from faceguard.vision.image import load_image
from faceguard.vision.models import MANIFEST_NAME, load_manifest, sha256_of
from faceguard.vision.texture import TextureScorer, crop_rect, texture_crop

MODELS = Path(__file__).resolve().parents[1] / "models"
WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "models" / "silent-face"
EXAMPLES = {"T1": "live", "F1": "print", "F2": "screen"}   # the publication's own examples


@pytest.fixture(scope="module")
def scorer() -> TextureScorer:
    return TextureScorer.load("cpu", models_dir=MODELS)


@pytest.fixture(scope="module")
def examples(pipeline) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each published example (RGB) and the one face MTCNN finds in it."""
    if not WEIGHTS.is_dir():
        pytest.fail(f"The shared Silent-Face folder is missing: expected it at {WEIGHTS}")
    out = {}
    for name in EXAMPLES:
        rgb = load_image(WEIGHTS / f"sample_image_{name}.jpg")
        faces = pipeline.detect(rgb)
        assert len(faces) == 1, name
        out[name] = (rgb, faces[0].box)
    return out


# -- the network and its ONNX export (torch) ------------------------------------------------
def test_onnx_matches_the_state_dict_and_the_examples_classify_as_published(examples, scorer):
    torch = pytest.importorskip("torch")
    from faceguard.train.minifasnet import NETWORKS, load_network

    spec = scorer.spec
    for (source, onnx_name, scale), net, session in zip(NETWORKS, spec.nets, scorer.sessions,
                                                        strict=True):
        assert net.file.name == onnx_name and net.scale == scale
        model = load_network(WEIGHTS / source)
        x = np.stack([texture_crop(rgb, box, scale, spec) for rgb, box in examples.values()])
        x = x.transpose(0, 3, 1, 2).astype(np.float32)
        with torch.no_grad():
            want = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
        got = session.run(None, {"input": x})[0]
        assert np.max(np.abs(got - want)) < 1e-5, onnx_name
        # each network on its own: T1 live (class 1), F1 and F2 not
        assert [int(k) for k in np.argmax(want, axis=1)].count(1) == 1, (onnx_name, want)
        assert int(np.argmax(want[0])) == 1, (onnx_name, want)


def test_export_rebuilds_the_shipped_files_byte_for_byte(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from faceguard.train.minifasnet import add_to_manifest, export_all

    shutil.copy(MODELS / MANIFEST_NAME, tmp_path / MANIFEST_NAME)
    written = export_all(tmp_path, WEIGHTS)
    add_to_manifest(tmp_path)
    shipped = load_manifest(MODELS).sha256
    for name, path in written.items():
        assert sha256_of(path) == shipped[name], name
    assert (json.loads((tmp_path / MANIFEST_NAME).read_text())
            == json.loads((MODELS / MANIFEST_NAME).read_text()))


# -- the scorer (onnxruntime only) -----------------------------------------------------------
def test_published_examples_get_the_published_verdicts(examples, scorer):
    scores = {name: scorer.score(rgb, box) for name, (rgb, box) in examples.items()}
    assert scores["T1"] is not None and scores["T1"] > 0.95
    assert scores["F1"] is not None and scores["F1"] < scorer.threshold
    assert scores["F2"] is not None and scores["F2"] < scorer.threshold
    assert scores["T1"] >= scorer.threshold


def test_faces_it_cannot_judge_abstain(examples, scorer):
    rgb, box = examples["T1"]
    small = cv2.resize(rgb, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    dark = (rgb * 0.15).astype(np.uint8)
    blurred = cv2.GaussianBlur(rgb, (0, 0), 4)
    readings = scorer.read(rgb, [box]) + scorer.read(small, [np.asarray(box) * 0.25]) \
        + scorer.read(dark, [box]) + scorer.read(blurred, [box])
    assert [r.why for r in readings] == ["", "small", "dark", "blurred"]
    assert readings[0].score is not None and readings[0].score > 0.95
    assert [r.score for r in readings[1:]] == [None, None, None]
    # one frame, two faces: the judged one keeps its own score
    both = scorer.read(rgb, [np.asarray(box) * 0.25, box])
    assert both[0].score is None and both[1].score == pytest.approx(readings[0].score, abs=1e-6)


def test_crop_is_scaled_around_the_box_and_shifted_inside_the_image():
    # 100×100 box centred at (60, 200) in a 640×480 image, scale 2.7: 270 px wide, shifted right
    assert crop_rect((60.0, 200.0, 100.0, 100.0), 2.7, 640, 480) == (0, 65, 270, 335)
    # near the bottom-right corner: shifted up and left, size kept
    assert crop_rect((600.0, 450.0, 100.0, 100.0), 2.7, 640, 480) == (369, 209, 639, 479)
    # a box too big for 4× the image: the scale is capped so the crop fits the image height
    x1, y1, x2, y2 = crop_rect((320.0, 240.0, 200.0, 200.0), 4.0, 640, 480)
    assert (y1, y2) == (0, 479) and (x1, x2) == (80, 559)


def test_a_corrupt_texture_model_is_named(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    shutil.copy(MODELS / MANIFEST_NAME, root / MANIFEST_NAME)
    for net in load_manifest(MODELS).texture.nets:
        shutil.copy(net.file, root / net.file.name)
    assert TextureScorer.load("cpu", models_dir=root).threshold == load_manifest(MODELS).texture.threshold
    target = root / "minifasnet_v1se_4.0.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"minifasnet_v1se_4\.0\.onnx is corrupt"):
        TextureScorer.load("cpu", models_dir=root)


def test_a_models_folder_without_texture_networks_says_so(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    raw = json.loads((MODELS / MANIFEST_NAME).read_text())
    del raw["texture"]
    (root / MANIFEST_NAME).write_text(json.dumps(raw))
    assert load_manifest(root).texture is None
    with pytest.raises(ModelError, match="no texture networks"):
        TextureScorer.load("cpu", models_dir=root)


# -- the per-visit vote -----------------------------------------------------------------------
def test_the_vote_decides_over_the_visit_not_one_frame():
    vote = TextureVote(threshold=0.3)
    vote.add(0.0, 0.9)
    vote.add(0.1, None)                        # abstained: counted, not scored
    vote.add(0.2, 0.05)                        # one bad frame of a real person
    assert vote.verdict() == UNSURE            # two judged frames: too few to say
    vote.add(0.3, 0.8)
    assert vote.verdict() == LIVE and vote.mean() == pytest.approx(0.5833, abs=1e-4)
    ev = vote.evidence()
    assert json.loads(json.dumps(ev)) == ev    # JSON-safe as it is
    assert ev == {"verdict": "live", "mean": 0.5833, "threshold": 0.3, "judged": 3, "abstained": 1,
                  "min_scores": 3, "lowest": 0.05, "recent": [0.9, 0.05, 0.8], "seconds": 0.3}
    screen = TextureVote(threshold=0.3)
    for i, s in enumerate([0.2, 0.4, 0.1, 0.25]):
        screen.add(i * 0.2, s)
    assert screen.verdict() == SCREEN and screen.evidence()["mean"] == pytest.approx(0.2375)
    empty = TextureVote(threshold=0.3).evidence()
    assert empty["verdict"] == UNSURE and empty["mean"] is None and empty["lowest"] is None


def test_the_decider_votes_only_on_recognised_frames_and_puts_the_vote_in_the_decision():
    decider = Decider(confirm_frames=4, window_frames=5, texture_threshold=0.3)
    box = (100.0, 100.0, 200.0, 220.0)
    got = []
    # a stranger frame, then Ana three times: only Ana's frames are voted
    for i, (match, score) in enumerate([(mr("E2", 0.9), 0.01), (mr("E1", 0.1), 0.9),
                                        (mr("E1", 0.1), None), (mr("E1", 0.1), 0.7),
                                        (mr("E1", 0.1), 0.8)]):
        got += decider.update(i * 0.1, [(box, match)], textures=[score])
    granted = [d for d in got if d.kind == GRANTED]
    assert len(granted) == 1 and granted[0].person_id == "E1"
    texture = granted[0].evidence()["texture"]
    assert (texture["verdict"], texture["judged"], texture["abstained"]) == ("live", 3, 1)
    assert texture["mean"] == pytest.approx(0.8) and texture["lowest"] == pytest.approx(0.7)
    assert granted[0].to_dict()["texture"] == texture
    # decided: the same person at the same place needs no more scores; a stranger or someone
    # else there is not (yet) decided by that decision
    near = (104.0, 102.0, 204.0, 222.0)
    assert decider.deciding([near, near, near], [mr("E1", 0.1), mr("E2", 0.9), mr("E3", 0.1)]) \
        == [False, False, True]
    assert decider.deciding([(400.0, 100.0, 500.0, 220.0)], [mr("E1", 0.1)]) == [True]
    with pytest.raises(ValueError, match="texture"):
        Decider().update(0.0, [(box, mr("E1", 0.1))], textures=[0.9])   # no threshold


# -- the door check on the shared clip ---------------------------------------------------------
def test_the_door_check_votes_texture_for_the_face_it_decides(shared_data, clip_pipeline, lin_enrolled):
    from faceguard.camera import FrameSource
    from faceguard.doorcheck import DoorCheck
    from faceguard.gallery.events import EventLog
    from faceguard.gallery.store import Gallery
    from faceguard.settings import Settings

    with Gallery.open() as gallery, FrameSource(shared_data / "video" / "short_hamilton_clip.mp4") as src:
        # the photo check is on; Lin cannot follow a dot he never saw, so he is denied after 3 s
        check = DoorCheck(clip_pipeline, gallery, Settings(photo_check_timeout_s=3.0), seed=1)
        assert check.texture is not None and check.decider.texture_threshold == check.texture.threshold
        decisions, tracks = [], {}
        for frame in iter(src.read, None):
            decisions += check.process(frame).decisions
            tracks.update({tid: t for tid, t in check.decider._tracks.items() if t.texture is not None})
        check.close()
        events = EventLog(gallery).events(limit=None)
    lin = [d for d in decisions if d.person_id == "E001"]
    assert lin, [d.reason for d in decisions]
    texture = lin[0].evidence()["texture"]
    # Lin's close-ups are judged live; his small, distant frames abstain
    assert texture["verdict"] == LIVE and texture["judged"] >= 3
    assert texture["mean"] > texture["threshold"] == check.texture.threshold
    assert all(s >= texture["threshold"] for s in texture["recent"])
    # strangers are never scored, and only Lin's tracks carry a vote
    assert all("texture" not in d.evidence() for d in decisions if d.person_id is None)
    assert tracks and all(t.settled is None or t.settled.person_id == "E001" for t in tracks.values())
    assert max(t.texture.judged for t in tracks.values()) >= texture["judged"]
    logged = [e for e in events if e.employee_id == "E001"]
    assert logged and logged[0].evidence["texture"] == texture


def test_no_texture_is_computed_while_the_photo_check_is_off(shared_data, clip_pipeline, lin_enrolled):
    from faceguard.camera import FrameSource
    from faceguard.doorcheck import DoorCheck
    from faceguard.gallery.store import Gallery
    from faceguard.settings import Settings

    with Gallery.open() as gallery, FrameSource(shared_data / "video" / "short_hamilton_clip.mp4") as src:
        check = DoorCheck(clip_pipeline, gallery, Settings(photo_check=False))
        decisions = [d for _ in range(40) for d in check.process(src.read()).decisions]
        check.close()
    assert check.texture is None
    assert any(d.person_id == "E001" for d in decisions)
    assert all("texture" not in d.evidence() for d in decisions)
