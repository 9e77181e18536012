"""dlib's binary serialization of its face-recognition ResNet, read with numpy (written from
the format's description, no dlib code involved), and the network's ``anet_type`` topology.
The serialization facts are listed in dlib_convert.py's docstring."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
