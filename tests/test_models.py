"""The model manifest: hashes checked on load, and every bad file named in a ModelError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from faceguard.errors import ModelError
from faceguard.vision.models import MANIFEST_NAME, load_manifest, sha256_of, verify_file
from faceguard.vision.pipeline import FacePipeline

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture
def models_copy(tmp_path) -> Path:
    """A private copy of models/ that a test may damage."""
    dst = tmp_path / "models"
    shutil.copytree(MODELS, dst)
    return dst


def test_shipped_manifest_matches_the_files():
    m = load_manifest(MODELS)
    assert set(m.sha256) >= {"mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx",
                             "dlib_resnet_v1.onnx"}
    for name, digest in m.sha256.items():
        assert sha256_of(MODELS / name) == digest, name
    spec = m.embedder()
    assert spec.id == m.default_embedder
    assert spec.input_size == 150 and spec.embedding_size == 128
    assert spec.landmark_template.shape == (5, 2)
    assert 0 < spec.default_threshold < 4
    # the template puts the image-left eye left of the image-right eye, the mouth below
    t = spec.landmark_template
    assert t[0, 0] < t[1, 0] and t[3, 1] > t[2, 1] > t[0, 1]
    assert m.detector.pnet == MODELS / "mtcnn_pnet.onnx"


def test_changed_byte_is_named(models_copy):
    target = models_copy / "mtcnn_pnet.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError) as info:
        FacePipeline.load("cpu", models_dir=models_copy)
    msg = str(info.value)
    assert "mtcnn_pnet.onnx" in msg and "SHA-256" in msg
    assert "mtcnn_rnet.onnx" not in msg


def test_untouched_copy_loads_and_embeds_like_the_original(models_copy, pipeline):
    copy = FacePipeline.load("cpu", models_dir=models_copy)
    chip = np.random.default_rng(3).integers(0, 255, (2, 150, 150, 3), dtype=np.uint8)
    np.testing.assert_allclose(copy.embed_chips(chip), pipeline.embed_chips(chip), atol=1e-6)
    assert copy.model_id == pipeline.model_id


def test_missing_model_file_is_named(models_copy):
    (models_copy / "dlib_resnet_v1.onnx").unlink()
    with pytest.raises(ModelError, match=r"dlib_resnet_v1\.onnx.*missing"):
        FacePipeline.load("cpu", models_dir=models_copy)


def test_damaged_manifest_json(models_copy):
    manifest = models_copy / MANIFEST_NAME
    manifest.write_text(manifest.read_text()[:-40])  # cut off mid-JSON
    with pytest.raises(ModelError) as info:
        FacePipeline.load("cpu", models_dir=models_copy)
    assert str(manifest) in str(info.value) and "damaged" in str(info.value)


def test_manifest_missing_a_key(models_copy):
    manifest = models_copy / MANIFEST_NAME
    raw = json.loads(manifest.read_text())
    del raw["detector"]
    manifest.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="damaged.*detector"):
        load_manifest(models_copy)


def test_missing_manifest(tmp_path):
    with pytest.raises(ModelError, match=r"manifest\.json is missing"):
        load_manifest(tmp_path)


def test_file_not_listed_and_unknown_model_id(models_copy):
    m = load_manifest(models_copy)
    stray = models_copy / "extra.onnx"
    stray.write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match=r"extra\.onnx is not listed"):
        verify_file(m, stray)
    with pytest.raises(ModelError, match="Unknown embedding model 'arcface'.*dlib"):
        m.embedder("arcface")
    assert verify_file(m, models_copy / "mtcnn_onet.onnx") == models_copy / "mtcnn_onet.onnx"


def test_file_changed_after_a_good_check_is_caught(models_copy):
    """The hash cache is keyed on size and mtime: rewriting a verified file re-checks it."""
    m = load_manifest(models_copy)
    target = models_copy / "mtcnn_onet.onnx"
    verify_file(m, target)
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"mtcnn_onet\.onnx is corrupt"):
        verify_file(m, target)
