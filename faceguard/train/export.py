"""Export a trained network to ONNX for the app: dynamic batch, parity-checked, with a manifest.

The exported graph takes ``input`` float32 [N, 3, S, S] RGB in 0..255 and returns ``embedding``
[N, D], unit length; normalisation is inside the graph, so the manifest entry says mean 0 /
std 1, like the shipped model's. The entry goes into ``manifest.json`` next to the ONNX file.
When that folder has no manifest yet, the shipped manifest's detector and embedders are copied
there with their files, so the folder is a complete models folder (FACEGUARD_MODELS_DIR) in which
the app can switch between the shipped and the exported model. The shipped manifest itself is
only changed when asked explicitly (``add_to_shipped``).
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from faceguard import paths
from faceguard.atomic import atomic_path, write_text_atomic
from faceguard.errors import FaceGuardError, ModelError
from faceguard.train import nets
from faceguard.train.data import FACENET_TEMPLATE_160
from faceguard.train.loop import load_checkpoint, model_from_checkpoint
from faceguard.vision.models import MANIFEST_NAME, load_manifest, sha256_of

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-5
OPSET = 17
# Starting thresholds (squared L2) when no validation ran; `faceguard calibrate` sets real ones.
DEFAULT_THRESHOLDS = {nets.ResNet29.arch: 0.3, nets.InceptionResnetV1.arch: 1.1}


@dataclass
class ExportResult:
    onnx_file: Path
    manifest: Path
    model_id: str
    max_abs_diff: float


def export_onnx(model: torch.nn.Module, path: Path, input_size: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dummy = torch.rand(2, 3, input_size, input_size) * 255
    # a killed export never leaves half a model where the app would load it
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # the zero-padding shapes are Python ints during tracing: right for a fixed chip size
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is the legacy path
        torch.onnx.export(model, dummy, str(tmp), input_names=["input"],
                          output_names=["embedding"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input": {0: "N"}, "embedding": {0: "N"}})
    return path


def parity(model: torch.nn.Module, onnx_file: Path, input_size: int, chips: np.ndarray | None = None,
           seed: int = 0) -> float:
    """Max |torch − onnxruntime| over a batch of 3 (random pixels, or the given uint8 chips);
    raises ModelError above PARITY_TOLERANCE."""
    import onnxruntime as ort

    if chips is None:
        x = np.random.default_rng(seed).uniform(0, 255, (3, 3, input_size, input_size))
    else:
        x = np.asarray(chips).transpose(0, 3, 1, 2)
    x = x.astype(np.float32)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    diff = float(np.abs(got - ref).max())
    if not diff <= PARITY_TOLERANCE:
        raise ModelError(f"The exported {onnx_file.name} differs from the trained network by "
                         f"{diff:.2e} (allowed {PARITY_TOLERANCE:.0e}); it was not registered.")
    return diff


def _is_shipped(folder: Path) -> bool:
    return (folder.resolve() / MANIFEST_NAME) == (paths.models_dir().resolve() / MANIFEST_NAME)


def write_manifest_entry(onnx_file: Path, model_id: str, entry: dict, *,
                         add_to_shipped: bool = False) -> Path:
    """Add (or replace) embedders[model_id] in the manifest beside `onnx_file`."""
    folder = Path(onnx_file).parent
    manifest_path = folder / MANIFEST_NAME
    if _is_shipped(folder) and not add_to_shipped:
        raise FaceGuardError(
            f"{folder} holds the shipped models; export to another folder with --out, or pass "
            "--add-to-shipped to change the shipped manifest on purpose.")
    if manifest_path.is_file():
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    else:
        raw = _seed_from_shipped(folder)
    if model_id in raw.get("embedders", {}):
        log.info("replacing the manifest entry %s in %s", model_id, manifest_path)
    raw.setdefault("embedders", {})[model_id] = {"file": Path(onnx_file).name, **entry}
    raw.setdefault("sha256", {})[Path(onnx_file).name] = sha256_of(Path(onnx_file))
    write_text_atomic(manifest_path, json.dumps(raw, indent=2), 0o644)
    return manifest_path


def _seed_from_shipped(folder: Path) -> dict:
    """The shipped manifest with its files copied into `folder` (a complete models folder)."""
    shipped = paths.models_dir()
    try:
        raw = json.loads((shipped / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.warning("no shipped manifest in %s; writing an embedders-only manifest", shipped)
        return {"format": 1, "embedders": {}, "sha256": {}}
    for name in raw.get("sha256", {}):
        if not (folder / name).exists():
            shutil.copy2(shipped / name, folder / name)
    return raw


def _entry(input_size: int, template, embedding_size: int, threshold: float, source: str) -> dict:
    return {"input_size": int(input_size), "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
            "landmark_template": np.asarray(template, float).round(3).tolist(),
            "embedding_size": int(embedding_size), "default_threshold": round(float(threshold), 4),
            "source": source}


def _default_out(model_id: str) -> Path:
    return paths.data_dir() / "models" / f"{model_id}.onnx"


def _finish(model, out: Path, model_id: str, input_size: int, template, threshold: float,
            source: str, add_to_shipped: bool) -> ExportResult:
    if _is_shipped(out.parent) and not add_to_shipped:  # refuse before writing anything there
        raise FaceGuardError(
            f"{out.parent} holds the shipped models; export to another folder with --out, or "
            "pass --add-to-shipped to change the shipped manifest on purpose.")
    onnx_file = export_onnx(model, out, input_size)
    try:
        diff = parity(model, onnx_file, input_size)
    except ModelError:
        onnx_file.unlink(missing_ok=True)  # never leave an unchecked model behind
        raise
    entry = _entry(input_size, template, model.embedding_size, threshold, source)
    manifest = write_manifest_entry(onnx_file, model_id, entry, add_to_shipped=add_to_shipped)
    if "detector" in json.loads(manifest.read_text(encoding="utf-8")):
        load_manifest(manifest.parent).embedder(model_id)  # the app can read what was written
    return ExportResult(onnx_file, manifest, model_id, diff)


def export_checkpoint(checkpoint: Path, out: Path | None = None, model_id: str | None = None,
                      *, add_to_shipped: bool = False) -> ExportResult:
    """A `faceguard train` checkpoint → ONNX + manifest entry (threshold from its validation)."""
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt)
    model_id = model_id or f"{ckpt['arch']}-{Path(checkpoint).resolve().parent.name}-e{ckpt['epoch']}"
    thresholds = [r["val_threshold"] for r in ckpt.get("history", []) if "val_threshold" in r]
    threshold = thresholds[-1] if thresholds else DEFAULT_THRESHOLDS[ckpt["arch"]]
    source = f"faceguard train checkpoint {Path(checkpoint).name}, epoch {ckpt['epoch']}"
    return _finish(model, Path(out) if out else _default_out(model_id), model_id,
                   ckpt["input_size"], ckpt["template"], threshold, source, add_to_shipped)


def export_facenet_pytorch(state_file: Path, out: Path | None = None, model_id: str | None = None,
                           *, add_to_shipped: bool = False) -> ExportResult:
    """facenet-pytorch's Inception-ResNet-v1 state dict (VGGFace2 / CASIA-WebFace) → ONNX with
    its 160-px alignment and (x − 127.5) / 128 normalisation inside the graph."""
    try:
        state = torch.load(Path(state_file), map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise ModelError(f"The file {state_file} does not exist.") from exc
    except Exception as exc:
        raise ModelError(f"{state_file} is not a PyTorch state dict ({exc}).") from exc
    if not isinstance(state, dict) or "last_linear.weight" not in state:
        raise ModelError(f"{state_file} is not a facenet-pytorch Inception-ResNet-v1 state dict.")
    size = int(state["last_linear.weight"].shape[0])
    model = nets.load_facenet_pytorch_state(nets.InceptionResnetV1(embedding_size=size), state).eval()
    model_id = model_id or f"facenet-{Path(state_file).stem}"
    source = f"facenet-pytorch Inception-ResNet-v1 state dict {Path(state_file).name}"
    return _finish(model, Path(out) if out else _default_out(model_id), model_id,
                   nets.InceptionResnetV1.input_size, FACENET_TEMPLATE_160,
                   DEFAULT_THRESHOLDS[nets.InceptionResnetV1.arch], source, add_to_shipped)
