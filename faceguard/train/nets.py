"""The embedding networks FaceGuard trains: both map RGB 0..255 chips to unit 128/512-D vectors.

* ``ResNet29``: the geometry of the shipped model (dlib's ``dlib_face_recognition_resnet_model_v1``,
  150×150 chips), able to load the shipped weights from ``models/dlib_resnet_v1.onnx`` so it can
  be fine-tuned. Batch norm is folded into per-channel ``Affine`` layers, as in dlib's file.
* ``InceptionResnetV1``: FaceNet (Schroff et al. 2015; 160×160 chips), with module names equal to
  facenet-pytorch's so its VGGFace2 / CASIA state dicts load key for key.

Both take float32 NCHW RGB in 0..255 and normalise inside ``forward`` (so an exported ONNX file
needs mean 0 / std 1 in the manifest), and both end in the L2 layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceguard.errors import ModelError

DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
DLIB_SCALE = 1.0 / 256.0
FACENET_MEAN = 127.5
FACENET_SCALE = 1.0 / 128.0


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b where the smaller one is zero-padded at the end (channels, bottom rows, right
    columns), as dlib's add_prev layer does when the two branches differ in shape."""
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        dc, dh, dw = c - t.shape[1], h - t.shape[2], w - t.shape[3]
        return F.pad(t, (0, dw, 0, dh, 0, dc)) if dc or dh or dw else t

    return pad(a) + pad(b)


class Affine(nn.Module):
    """Per-channel scale and bias (dlib's affine layer: a batch norm folded after training)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ResBlock(nn.Module):
    """conv3×3 → affine → relu → conv3×3 → affine, plus the shortcut, then relu.

    A downsampling block uses stride 2 without padding in its first convolution and a 2×2/2
    average pool on the shortcut; the branches are then zero-padded to a common shape.
    """

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.aff1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.aff2 = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_zero_padded(shortcut, y))


# (channels, downsample first, number of plain blocks after it), input end first:
# level4 = 3× ares<32>; level3 = ares_down<64> + 3× ares<64>; level2 = ares_down<128> + 2×;
# level1 = ares_down<256> + 2×; level0 = ares_down<256>.
_RESNET29_STAGES = ((32, False, 3), (64, True, 3), (128, True, 2), (256, True, 2), (256, True, 0))


class ResNet29(nn.Module):
    arch = "resnet29"
    input_size = 150

    def __init__(self, embedding_size: int = 128):
        super().__init__()
        self.embedding_size = embedding_size
        self.register_buffer("mean", torch.tensor(DLIB_MEAN_RGB).view(1, 3, 1, 1), persistent=False)
        self.conv0 = nn.Conv2d(3, 32, 7, stride=2)
        self.aff0 = Affine(32)
        blocks, cin = [], 32
        for cout, down, plain in _RESNET29_STAGES:
            if down:
                blocks.append(ResBlock(cin, cout, down=True))
            blocks += [ResBlock(cout, cout, down=False) for _ in range(plain)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, embedding_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) * DLIB_SCALE
        x = F.max_pool2d(F.relu(self.aff0(self.conv0(x))), 3, 2)
        x = self.blocks(x)
        x = self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return F.normalize(x, p=2, dim=1)

    def ordered_layers(self) -> list[nn.Module]:
        """Conv, Affine and Linear layers in the order the ONNX graph computes them."""
        layers: list[nn.Module] = [self.conv0, self.aff0]
        for b in self.blocks:
            layers += [b.conv1, b.aff1, b.conv2, b.aff2]
        return layers + [self.fc]


def _onnx_weight_records(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """('conv', [w, b]) / ('affine', [gamma, beta]) / ('fc', [w]) in graph order.

    Affine layers appear as Mul by a [1, C, 1, 1] initializer followed by Add of another; the
    input scaling Mul has a scalar initializer and the shortcut Adds have no initializer, so
    neither is picked up.
    """
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises several types for unreadable files
        raise ModelError(f"Cannot read the model file {path} ({exc}).") from exc
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    records: list[tuple[str, list[np.ndarray]]] = []
    for node in model.graph.node:
        params = [inits[n] for n in node.input if n in inits]
        if node.op_type == "Conv":
            records.append(("conv", params))
        elif node.op_type == "Mul" and params and params[0].ndim == 4:
            records.append(("affine", [params[0]]))
        elif node.op_type == "Add" and params and params[0].ndim == 4 and records \
                and records[-1][0] == "affine" and len(records[-1][1]) == 1:
            records[-1][1].append(params[0])
        elif node.op_type == "MatMul":
            records.append(("fc", params))
    return records


def load_dlib_onnx(net: ResNet29, path: Path) -> ResNet29:
    """Copy the shipped model's weights (ONNX initializers) into `net`, layer by layer."""
    records = _onnx_weight_records(Path(path))
    layers = net.ordered_layers()
    kinds = ["conv" if isinstance(m, nn.Conv2d) else "affine" if isinstance(m, Affine) else "fc"
             for m in layers]
    if [k for k, _ in records] != kinds:
        raise ModelError(f"{path} does not have the ResNet-29 layout FaceGuard can fine-tune.")
    with torch.no_grad():
        for layer, (kind, arrays) in zip(layers, records, strict=True):
            if kind == "fc":
                targets, arrays = [layer.weight], [arrays[0].T]  # MatMul stores [in, out]
            else:
                targets = [layer.weight, layer.bias]
            for t, a in zip(targets, arrays, strict=True):
                a = torch.from_numpy(np.array(a, dtype=np.float32))  # a writable copy
                if a.numel() != t.numel() or (kind != "affine" and a.shape != t.shape):
                    raise ModelError(f"{path}: a {kind} layer has shape {tuple(a.shape)}, "
                                     f"expected {tuple(t.shape)}.")
                t.copy_(a.reshape(t.shape))
    return net


# ---------------------------------------------------------------------------------------------
# Inception-ResNet-v1. Names (conv2d_1a, repeat_1, mixed_6a, block8, last_linear, last_bn, ...)
# and shapes follow facenet-pytorch's state dict; batch norm eps 0.001 as in its weights.


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _Residual(nn.Module):
    """Branches concatenated, a 1×1 conv back to the input width, scaled, added, relu."""

    def __init__(self, width: int, branch_width: int, scale: float, relu: bool = True):
        super().__init__()
        self.scale = scale
        self.use_relu = relu
        self.conv2d = nn.Conv2d(branch_width, width, 1)

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d(torch.cat(self.branches(x), 1)) * self.scale + x
        return F.relu(out) if self.use_relu else out


class Block35(_Residual):
    def __init__(self, scale: float):
        super().__init__(256, 96, scale)
        self.branch0 = BasicConv2d(256, 32, 1)
        self.branch1 = nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1))
        self.branch2 = nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1),
                                     BasicConv2d(32, 32, 3, padding=1))

    def branches(self, x):
        return [self.branch0(x), self.branch1(x), self.branch2(x)]


class Block17(_Residual):
    def __init__(self, scale: float):
        super().__init__(896, 256, scale)
        self.branch0 = BasicConv2d(896, 128, 1)
        self.branch1 = nn.Sequential(BasicConv2d(896, 128, 1),
                                     BasicConv2d(128, 128, (1, 7), padding=(0, 3)),
                                     BasicConv2d(128, 128, (7, 1), padding=(3, 0)))

    def branches(self, x):
        return [self.branch0(x), self.branch1(x)]


class Block8(_Residual):
    def __init__(self, scale: float = 1.0, relu: bool = True):
        super().__init__(1792, 384, scale, relu)
        self.branch0 = BasicConv2d(1792, 192, 1)
        self.branch1 = nn.Sequential(BasicConv2d(1792, 192, 1),
                                     BasicConv2d(192, 192, (1, 3), padding=(0, 1)),
                                     BasicConv2d(192, 192, (3, 1), padding=(1, 0)))

    def branches(self, x):
        return [self.branch0(x), self.branch1(x)]


class Mixed6a(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, 3, stride=2)
        self.branch1 = nn.Sequential(BasicConv2d(256, 192, 1), BasicConv2d(192, 192, 3, padding=1),
                                     BasicConv2d(192, 256, 3, stride=2))

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), F.max_pool2d(x, 3, 2)], 1)


class Mixed7a(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2))
        self.branch2 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, padding=1),
                                     BasicConv2d(256, 256, 3, stride=2))

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x),
                          F.max_pool2d(x, 3, 2)], 1)


class InceptionResnetV1(nn.Module):
    arch = "inception-resnet-v1"
    input_size = 160

    def __init__(self, embedding_size: int = 512, dropout: float = 0.6):
        super().__init__()
        self.embedding_size = embedding_size
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*[Block35(0.17) for _ in range(5)])
        self.mixed_6a = Mixed6a()
        self.repeat_2 = nn.Sequential(*[Block17(0.10) for _ in range(10)])
        self.mixed_7a = Mixed7a()
        self.repeat_3 = nn.Sequential(*[Block8(0.20) for _ in range(5)])
        self.block8 = Block8(relu=False)
        self.dropout = nn.Dropout(dropout)
        self.last_linear = nn.Linear(1792, embedding_size, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_size, eps=0.001, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - FACENET_MEAN) * FACENET_SCALE
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
        x = F.max_pool2d(x, 3, 2)
        x = self.conv2d_4b(self.conv2d_4a(self.conv2d_3b(x)))
        x = self.mixed_6a(self.repeat_1(x))
        x = self.mixed_7a(self.repeat_2(x))
        x = self.block8(self.repeat_3(x))
        x = self.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return F.normalize(self.last_bn(self.last_linear(x)), p=2, dim=1)


def load_facenet_pytorch_state(net: InceptionResnetV1, state: dict) -> InceptionResnetV1:
    """Load a facenet-pytorch state dict; its classifier (``logits.*``) is not needed."""
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (missing[:3] and f"missing {missing[:3]}") or \
                 (unexpected[:3] and f"unexpected {unexpected[:3]}") or f"shape of {wrong[:3]}"
        raise ModelError(f"This is not a facenet-pytorch Inception-ResNet-v1 state dict ({detail}).")
    net.load_state_dict(state)
    return net


ARCHS = {ResNet29.arch: ResNet29, InceptionResnetV1.arch: InceptionResnetV1}


def build(arch: str, embedding_size: int | None = None) -> nn.Module:
    if arch not in ARCHS:
        raise ModelError(f"Unknown network '{arch}'; choose one of: {', '.join(ARCHS)}.")
    cls = ARCHS[arch]
    return cls() if embedding_size is None else cls(embedding_size=embedding_size)
