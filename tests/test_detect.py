"""MTCNN detector (faceguard.vision.detect) on real photos, and ONNX/torch parity of its nets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_same_onnx

from faceguard.vision.detect import Face, MtcnnDetector, nms

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
NETS = ("pnet", "rnet", "onet")


def shared_data() -> Path:
    """../shared/data beside the checkout; missing data fails the tests (never skips them)."""
    return REPO.parent / "shared" / "data"


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"cannot read {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def lfw_sample(count: int = 60) -> list[Path]:
    """A fixed, spread-out sample of the LFW dev images (every k-th in sorted order)."""
    images = sorted((shared_data() / "lfw_dev_fold1" / "images").rglob("*.jpg"))
    assert len(images) >= count
    step = len(images) // count
    return images[::step][:count]


@pytest.fixture(scope="module")
def sessions():
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    out = {}
    for name in NETS:
        path = MODELS / f"mtcnn_{name}.onnx"
        assert path.is_file(), f"{path} missing: run python -m faceguard.train.mtcnn_export models"
        out[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return out


@pytest.fixture(scope="module")
def detector(sessions) -> MtcnnDetector:
    return MtcnnDetector(sessions["pnet"], sessions["rnet"], sessions["onet"])


def subject_face(faces: list[Face]) -> Face:
    """The photographed person: the largest face (LFW frames sometimes hold a bystander whose
    face scores as high as the subject's; a door check would also take the closest person)."""
    return max(faces, key=lambda f: float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1])))


def plausible_geometry(face: Face) -> bool:
    lm = face.landmarks
    left_eye, right_eye, _nose, left_mouth, right_mouth = lm
    eyes_above_mouth = max(left_eye[1], right_eye[1]) < min(left_mouth[1], right_mouth[1])
    return bool(eyes_above_mouth and left_eye[0] < right_eye[0] and left_mouth[0] < right_mouth[0])


def test_lfw_faces_found_centred_with_sane_landmarks(detector):
    images = lfw_sample(60)
    found = centred = top_centred = 0
    for path in images:
        rgb = read_rgb(path)
        assert rgb.shape == (250, 250, 3)
        faces = detector.detect(rgb)
        if not faces:
            continue
        found += 1
        scores = [f.score for f in faces]
        assert scores == sorted(scores, reverse=True)
        for f in faces:
            assert f.box.dtype == np.float32 and f.box.shape == (4,)
            assert f.landmarks.dtype == np.float32 and f.landmarks.shape == (5, 2)
            assert 0.7 < f.score <= 1.0
            assert f.box[2] > f.box[0] and f.box[3] > f.box[1]
        face = subject_face(faces)
        centre = (face.box[:2] + face.box[2:]) / 2
        if np.hypot(*(centre - 125.0)) <= 30.0 and plausible_geometry(face):
            centred += 1
        top = faces[0]
        top_centre = (top.box[:2] + top.box[2:]) / 2
        top_centred += bool(np.hypot(*(top_centre - 125.0)) <= 30.0)
        # Landmarks of the subject lie inside (or very near) its box.
        assert np.all(face.landmarks >= face.box[:2] - 5)
        assert np.all(face.landmarks <= face.box[2:] + 5)
    n = len(images)
    assert found / n >= 0.98, f"face found in {found}/{n}"
    assert centred / n >= 0.98, f"subject face centred with sane landmarks in {centred}/{n}"
    # Bystanders sometimes outscore the subject (about 2 % of all 587 images, 4 of these 60),
    # so the top-scoring face gets a looser bound; it still catches a broken score order.
    assert top_centred / n >= 0.9, f"best-scoring face centred in {top_centred}/{n}"


def test_onnx_matches_torch(sessions):
    torch = pytest.importorskip("torch")
    from faceguard.train.mtcnn_export import load_nets

    nets = load_nets()  # .ci/run installs facenet-pytorch for its weight files
    rng = np.random.default_rng(0)
    shapes = {"pnet": (2, 3, 61, 83), "rnet": (7, 3, 24, 24), "onet": (7, 3, 48, 48)}
    for name, shape in shapes.items():
        x = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        got = sessions[name].run(None, {"image": x})
        with torch.no_grad():
            want = [t.numpy() for t in nets[name](torch.from_numpy(x))]
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)


def test_export_reproduces_the_committed_files(tmp_path):
    """A fresh export is the shipped network (graph and weights); not byte for byte, which
    holds only with the torch that wrote the shipped files."""
    pytest.importorskip("torch")
    from faceguard.train.mtcnn_export import export_mtcnn

    paths = export_mtcnn(tmp_path)
    assert sorted(paths) == sorted(NETS)
    for path in paths.values():
        assert_same_onnx(path, MODELS / path.name)


def test_onnx_comparison_notices_a_changed_weight_attribute_or_op(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    shipped = MODELS / "mtcnn_rnet.onnx"
    assert_same_onnx(shipped, shipped)

    def changed(edit) -> Path:
        model = onnx.load(str(shipped))
        edit(model.graph)
        path = tmp_path / "changed.onnx"
        onnx.save(model, str(path))
        return path

    def nudge_weight(graph):
        (w,) = [t for t in graph.initializer if t.name == "dense4.weight"]
        arr = numpy_helper.to_array(w).copy()
        arr[3, 5] += 1e-3
        w.CopyFrom(numpy_helper.from_array(arr, w.name))

    def stride_2(graph):
        conv = next(n for n in graph.node if n.op_type == "Conv")
        next(a for a in conv.attribute if a.name == "strides").ints[:] = [2, 2]

    def softmax_to_sigmoid(graph):
        next(n for n in graph.node if n.op_type == "Softmax").op_type = "Sigmoid"

    def rename_weight(graph):
        # an exporter's own name ("onnx::PRelu_47") may change; the network's names may not
        (w,) = [t for t in graph.initializer if t.name == "conv1.bias"]
        w.name = "conv1.b"
        for n in graph.node:
            n.input[:] = ["conv1.b" if i == "conv1.bias" else i for i in n.input]

    for edit, message in ((nudge_weight, "dense4.weight"), (stride_2, "strides"),
                          (softmax_to_sigmoid, "op types differ"), (rename_weight, "weight name")):
        with pytest.raises(AssertionError, match=message):
            assert_same_onnx(changed(edit), shipped)

    def rename_generated(graph):
        old = next(t.name for t in graph.initializer if t.name.startswith("onnx::"))
        next(t for t in graph.initializer if t.name == old).name = "onnx::PRelu_999"
        for n in graph.node:
            n.input[:] = ["onnx::PRelu_999" if i == old else i for i in n.input]

    assert_same_onnx(changed(rename_generated), shipped)


def test_two_faces_and_blank(detector):
    # Two LFW faces that are alone in their own central crop, pasted side by side.
    crops = []
    for path in lfw_sample(60):
        crop = read_rgb(path)[50:200, 50:200]
        if len(detector.detect(crop)) == 1:
            crops.append(crop)
        if len(crops) == 2:
            break
    assert len(crops) == 2
    pair = np.zeros((190, 340, 3), dtype=np.uint8)
    pair[20:170, 10:160] = crops[0]
    pair[20:170, 180:330] = crops[1]
    faces = detector.detect(pair)
    assert len(faces) == 2
    centres_x = sorted(float(f.box[0] + f.box[2]) / 2 for f in faces)
    assert 10 < centres_x[0] < 160 and 180 < centres_x[1] < 330

    assert detector.detect(np.full((480, 640, 3), 128, dtype=np.uint8)) == []
    assert detector.detect(np.zeros((8, 8, 3), dtype=np.uint8)) == []  # smaller than P-Net's cell


def test_video_first_frames_and_portrait(detector, sessions):
    video = shared_data() / "video"
    cap = cv2.VideoCapture(str(video / "short_hamilton_clip.mp4"))
    assert cap.isOpened()
    try:
        for _ in range(3):
            ok, bgr = cap.read()
            assert ok
            assert bgr.shape == (360, 640, 3)
            faces = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            assert len(faces) >= 1
            assert faces[0].score > 0.9
    finally:
        cap.release()

    bgra = cv2.imread(str(video / "lin-manuel-miranda.png"), cv2.IMREAD_UNCHANGED)
    assert bgra.shape == (612, 704, 4)
    rgb = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)
    # An enrolment portrait: faces under 40 px are not of interest. (At the default 20 px a
    # 58x75 px patch of hair scores 0.956 and is reported as a second face.)
    portrait = MtcnnDetector(sessions["pnet"], sessions["rnet"], sessions["onet"], min_face_size=40)
    faces = portrait.detect(rgb)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.99
    width = face.box[2] - face.box[0]
    assert 200 < width < 400  # the face fills a large part of the 704x612 portrait
    assert plausible_geometry(face)


def test_nms_union_and_min():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [2, 2, 6, 6], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, 3]  # box 2 is inside box 0, IoU only 0.16
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [0, 3]


def test_rejects_non_rgb(detector):
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10, 3), np.float32))


def test_a_larger_smallest_face_drops_only_the_finest_pyramid_levels(detector):
    """The door's smallest face (settings.min_face_px) searches the detector's own pyramid less
    the levels that can only find smaller faces: the same levels, not a shifted grid."""
    own = detector._scales(480, 640, detector.min_face_size)
    door = detector._scales(480, 640, 60)
    assert door == own[len(own) - len(door):] and len(door) < len(own)
    assert door == [s for s in own if 12 / s >= 60 * detector.scale_factor]
    assert 12 / door[0] <= 60 and 12 / door[0] >= 60 * detector.scale_factor
    assert detector._scales(480, 640, 100) == [s for s in own if 12 / s >= 100 * 0.709]
