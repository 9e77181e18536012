"""int8 embedding network: quantize models/dlib_resnet_v1.onnx with onnxruntime's static
quantization, calibrated on face chips of the shared clip (not the dev data it is scored on),
then score fp32 and int8 (each plain and with the flip pass, and the door's mixed use) on the
LFW dev fold with the project's scorer (tools/evaluate.py, as `faceguard eval` does).

    python benchmarks/int8.py [--out benchmarks/results/int8.json] [--write models/dlib_resnet_v1_int8.onnx]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from engine import LFW, VIDEO, accuracy, all_files

from faceguard.camera import FrameSource
from faceguard.tools import evaluate as ev
from faceguard.vision.embed import l2_normalise
from faceguard.vision.image import load_image
from faceguard.vision.main_face import main_face
from faceguard.vision.pipeline import FacePipeline
from faceguard.vision.runtime import create_session

REPO = Path(__file__).resolve().parent.parent


def clip_chips(pipeline: FacePipeline, limit: int = 200) -> np.ndarray:
    chips = []
    with FrameSource(VIDEO) as src:
        while (f := src.read()) is not None and len(chips) < limit:
            chips += [pipeline.align(f.rgb, face) for face in pipeline.detect(f.rgb)]
    return np.stack(chips)


def quantize(src: Path, dst: Path, chips: np.ndarray, embedder) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = embedder.input_name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter([chips[i:i + 8] for i in range(0, len(chips), 8)])

        def get_next(self):
            part = next(self._batches, None)
            if part is None:
                return None
            x = part.transpose(0, 3, 1, 2).astype(np.float32)
            return {name: (x - embedder._mean) * embedder._inv_std}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre))
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)


def dev_chips(pipeline: FacePipeline, files: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Aligned chips of the dev files exactly as ev.embed_files makes them."""
    chips, found = [], []
    spec = pipeline.embedder.spec
    for rel in files:
        rgb = load_image(LFW / rel)
        face = main_face(pipeline.detect(rgb), rgb.shape)
        found.append(face is not None)
        chips.append(pipeline.align(rgb, face or ev.centre_face(rgb.shape, spec.landmark_template, spec.input_size)))
    return np.stack(chips), np.array(found)


def raw_embeddings(embedder, chips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings of the chips and of their mirror images."""
    out, mirror = [], []
    for i in range(0, len(chips), 32):
        part = chips[i:i + 32]
        out.append(l2_normalise(embedder._run(part)))
        mirror.append(l2_normalise(embedder._run(part[:, :, ::-1])))
    return np.concatenate(out), np.concatenate(mirror)


def ms_per_face(embedder, chips: np.ndarray, runs: int = 15) -> float:
    one = chips[:1]
    embedder._run(one)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        embedder._run(one)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "int8.json")
    ap.add_argument("--write", type=Path, default=Path(tempfile.gettempdir()) / "dlib_resnet_v1_int8.onnx")
    args = ap.parse_args()
    pipeline = FacePipeline.load("cpu", flip=False)
    if not args.write.exists():
        quantize(pipeline.embedder.spec.file, args.write, clip_chips(pipeline), pipeline.embedder)
    fp32 = pipeline.embedder
    int8 = type(fp32)(fp32.spec, create_session(args.write, "cpu"), flip=False)
    pairs, split, labels, files = all_files()
    chips, found = dev_chips(pipeline, files)
    names = np.array(files, dtype=str)
    results = {"int8_file_bytes": args.write.stat().st_size,
               "fp32_file_bytes": fp32.spec.file.stat().st_size}
    for label, emb in (("fp32", fp32), ("int8", int8)):
        plain, mirror = raw_embeddings(emb, chips)
        flip = l2_normalise(plain + mirror)
        for mode, vectors in (("plain", plain), ("flip", flip)):
            results[f"{label}_{mode}"] = accuracy(ev.EmbeddedSet(names, vectors, found), pairs, split, labels)
        results[f"{label}_ms_per_face_batch1"] = ms_per_face(emb, chips)
        if label == "fp32":
            reference = flip
        else:   # int8 probes against an fp32 gallery: what mixing them would mean
            results["int8_flip_vs_fp32_flip_distance_median"] = float(np.median(np.sum((flip - reference) ** 2, 1)))
    for k, v in results.items():
        print(k, {m: round(x, 4) for m, x in v.items() if isinstance(x, float)} if isinstance(v, dict) else v)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
