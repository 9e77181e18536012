"""ONNX export: parity with torch, manifest entries the app can load, facenet-pytorch weights."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.heavy  # torch → ONNX export and parity
torch = pytest.importorskip("torch")

from faceguard.errors import FaceGuardError, ModelError  # noqa: E402
from faceguard.train import nets  # noqa: E402
from faceguard.train.export import export_checkpoint, export_facenet_pytorch  # noqa: E402
from faceguard.train.loop import load_checkpoint  # noqa: E402
from faceguard.vision.models import load_manifest  # noqa: E402


def _facenet_pytorch_class():
    """facenet-pytorch's own InceptionResnetV1, imported without its package __init__ (which
    needs torchvision, not installed): stub packages point at the installed folders."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("facenet-pytorch is not installed")
    root = Path(spec.submodule_search_locations[0])
    saved = {k: v for k, v in sys.modules.items() if k.startswith("facenet_pytorch")}
    try:
        for name, path in (("facenet_pytorch", root), ("facenet_pytorch.models", root / "models")):
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(path)]
            sys.modules[name] = pkg
        module = importlib.import_module("facenet_pytorch.models.inception_resnet_v1")
        return module.InceptionResnetV1
    except ImportError as exc:
        pytest.skip(f"facenet-pytorch's module cannot be imported here ({exc})")
    finally:
        for k in [k for k in sys.modules if k.startswith("facenet_pytorch")]:
            del sys.modules[k]
        sys.modules.update(saved)


def _randomise(state: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in state.items():
        if not v.is_floating_point():
            out[k] = v.clone()
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=g) * 0.05
    return out


def test_facenet_pytorch_state_dict_loads_and_exports(tmp_path):
    reference_cls = _facenet_pytorch_class()
    ref = reference_cls(classify=True, num_classes=10).eval()  # has logits.* like the real files
    state = _randomise(ref.state_dict(), seed=0)
    ref.load_state_dict(state)
    ref.classify = False
    pt = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(state, pt)

    # same network: our module with their weights equals their module on (x − 127.5) / 128
    ours = nets.load_facenet_pytorch_state(nets.InceptionResnetV1(), state).eval()
    x = torch.rand(2, 3, 160, 160) * 255
    with torch.no_grad():
        assert torch.abs(ours(x) - ref((x - 127.5) / 128)).max() <= 1e-5

    res = export_facenet_pytorch(pt, tmp_path / "models" / "facenet.onnx")
    assert res.max_abs_diff <= 1e-5
    assert res.model_id == "facenet-20180402-114759-vggface2"
    manifest = load_manifest(res.manifest.parent)
    spec = manifest.embedder(res.model_id)
    assert (spec.input_size, spec.embedding_size) == (160, 512)
    assert spec.landmark_template.shape == (5, 2)
    assert spec.landmark_template[0, 0] < spec.landmark_template[1, 0]  # image-left eye first
    # the shipped model stays listed (and its files copied), so the folder is complete
    assert manifest.default_embedder in manifest.embedders and manifest.detector.pnet.is_file()

    # and the app runs it: 512-D unit vectors through the Embedder
    from faceguard.vision.pipeline import FacePipeline

    pipe = FacePipeline.load(provider="cpu", model_id=res.model_id, models_dir=res.manifest.parent)
    chips = np.random.default_rng(0).integers(0, 255, (2, 160, 160, 3), dtype=np.uint8)
    emb = pipe.embed_chips(chips)
    assert emb.shape == (2, 512) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_facenet_export_rejects_other_files(tmp_path):
    bad = tmp_path / "x.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(ModelError, match="facenet-pytorch"):
        export_facenet_pytorch(bad, tmp_path / "m.onnx")
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="state dict"):
        export_facenet_pytorch(tmp_path / "junk.pt", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def _fake_checkpoint(path: Path, pipeline) -> Path:
    """A checkpoint as `faceguard train` writes it: the shipped weights, slightly changed."""
    spec = pipeline.embedder.spec
    net = nets.load_dlib_onnx(nets.ResNet29(), spec.file)
    with torch.no_grad():
        net.fc.weight.mul_(1.01)
    torch.save({"format": 1, "arch": "resnet29", "embedding_size": 128, "input_size": 150,
                "template": spec.landmark_template.tolist(), "state_dict": net.state_dict(),
                "epoch": 3, "step": 30, "history": [{"epoch": 3, "val_threshold": 0.42}]}, path)
    return path


def test_checkpoint_export_parity_and_manifest(pipeline, tmp_path):
    ckpt = _fake_checkpoint(tmp_path / "last.pt", pipeline)
    out = tmp_path / "mine" / "ft.onnx"
    res = export_checkpoint(ckpt, out, "resnet29-office")
    assert res.onnx_file == out and res.max_abs_diff <= 1e-5
    raw = json.loads(res.manifest.read_text())
    entry = raw["embedders"]["resnet29-office"]
    assert entry["default_threshold"] == 0.42
    assert entry["mean"] == [0.0, 0.0, 0.0] and entry["std"] == [1.0, 1.0, 1.0]
    assert np.allclose(entry["landmark_template"], pipeline.embedder.spec.landmark_template, atol=1e-3)
    # dynamic batch, real chips: ONNX through the app's Embedder matches torch within 1e-5
    from faceguard.vision.pipeline import FacePipeline

    pipe = FacePipeline.load(provider="cpu", model_id="resnet29-office", flip=False,
                             models_dir=res.manifest.parent)
    rng = np.random.default_rng(1)
    chips = rng.integers(0, 255, (5, 150, 150, 3), dtype=np.uint8)
    model = nets.ResNet29()
    model.load_state_dict(load_checkpoint(ckpt)["state_dict"])
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(chips.transpose(0, 3, 1, 2).astype(np.float32))).numpy()
    assert np.abs(pipe.embed_chips(chips) - ref).max() <= 1e-5
    # a second export adds to the same manifest instead of replacing it
    res2 = export_checkpoint(ckpt, tmp_path / "mine" / "ft2.onnx", "resnet29-office-2")
    ids = set(json.loads(res2.manifest.read_text())["embedders"])
    assert {"resnet29-office", "resnet29-office-2", "dlib-resnet29-v1"} <= ids


def test_export_never_touches_the_shipped_manifest_silently(pipeline, tmp_path):
    shipped = pipeline.manifest.root / "manifest.json"
    before = shipped.read_bytes()
    ckpt = _fake_checkpoint(tmp_path / "last.pt", pipeline)
    target = pipeline.manifest.root / "pytest-should-not-stay.onnx"
    try:
        with pytest.raises(FaceGuardError, match="shipped"):
            export_checkpoint(ckpt, target, "x")
    finally:
        target.unlink(missing_ok=True)
    assert shipped.read_bytes() == before


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pt").write_text("hello")
    with pytest.raises(ModelError, match="checkpoint"):
        export_checkpoint(tmp_path / "x.pt", tmp_path / "y.onnx")
