"""Silent-Face's MiniFASNet anti-spoofing networks, rebuilt from their state dicts, to ONNX.

    python -m faceguard.train.minifasnet models [--weights ../shared/models/silent-face]

The two published state dicts (minivision-ai/Silent-Face-Anti-Spoofing at b6d5f04a, Apache-2.0;
provenance in ../shared/models/silent-face/README.md and models/README.md) are small
MobileFaceNet-style CNNs on an 80×80 face crop. The layout below is read off the keys and shapes
of the state dicts (every width is taken from them, so the same code builds both variants):

* ``conv1``: 3×3 stride-2 conv + BN + PReLU (80 → 40); ``conv2_dw``: 3×3 depthwise, same size;
* ``conv_23``, ``conv_34``, ``conv_45``: bottleneck blocks (1×1 expand + PReLU, 3×3 depthwise
  stride 2 + PReLU, 1×1 project, no activation) that halve the map (40 → 20 → 10 → 5);
* ``conv_3``, ``conv_4``, ``conv_5``: residual groups of stride-1 bottlenecks (``model.i``);
  in the "SE" variant a block may carry ``se_module`` (global pool, 1×1 squeeze + BN + ReLU,
  1×1 excite + BN + sigmoid, scales the projected map before the shortcut is added);
* ``conv_6_sep``: 1×1 conv to 512 + PReLU; ``conv_6_dw``: 5×5 depthwise over the whole 5×5 map,
  BN, no activation (a learned global pooling);
* ``linear`` 512 → 128 (no bias), ``bn`` (BatchNorm1d), ``prob`` 128 → 3 (no bias).

Class 1 is "live" (the README's facts). The exported graph takes ``input`` float32
[N, 3, 80, 80], BGR, raw 0..255 (as the networks were trained), and returns ``probs`` [N, 3],
the softmax: faceguard.vision.texture fuses the two networks' class-1 probabilities.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from faceguard.atomic import atomic_path

OPSET = 17
INPUT_SIZE = 80
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "silent-face"
# (state dict file, shipped ONNX file, crop scale around the face box)
NETWORKS = (
    ("2.7_80x80_MiniFASNetV2.pth", "minifasnet_v2_2.7.onnx", 2.7),
    ("4_0_0_80x80_MiniFASNetV1SE.pth", "minifasnet_v1se_4.0.onnx", 4.0),
)
TEXTURE_ID = "silent-face-minifasnet-b6d5f04a"
# MTCNN's box → the networks' detector's box: width ×1.09, height ×0.90, centre 6 % of the
# height lower (the weights' README; measured there to separate live from print better).
BOX_RESHAPE = {"width": 1.09, "height": 0.90, "down": 0.06}
# Fused live score below which a frame looks like an attack: about 5 % of genuine frames of the
# project's own material fall below it (benchmarks/texture.py, models/README.md).
THRESHOLD = 0.296
SOURCE = ("github.com/minivision-ai/Silent-Face-Anti-Spoofing at commit b6d5f04a, "
          "resources/anti_spoof_models/ (2.7_80x80_MiniFASNetV2.pth, 4_0_0_80x80_MiniFASNetV1SE.pth)")
LICENCE = "Apache-2.0 (models/LICENSE.silent-face); Copyright minivision-ai"
SOURCE_SHA256 = {
    "2.7_80x80_MiniFASNetV2.pth": "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
    "4_0_0_80x80_MiniFASNetV1SE.pth": "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
}


class ConvBN(nn.Module):
    """conv (no bias) + BatchNorm, then PReLU unless ``act`` is False (a linear block)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(squeezed)
        self.fc2 = nn.Conv2d(squeezed, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.mean(x, dim=(2, 3), keepdim=True)
        w = torch.relu(self.bn1(self.fc1(w)))
        return x * torch.sigmoid(self.bn2(self.fc2(w)))


class Bottleneck(nn.Module):
    """1×1 expand, 3×3 depthwise, 1×1 project; a shortcut (and maybe SE) when ``residual``."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, residual: bool,
                 se: int | None = None):
        super().__init__()
        self.conv = ConvBN(cin, mid)
        self.conv_dw = ConvBN(mid, mid, 3, stride, 1, groups=mid)
        self.project = ConvBN(mid, cout, act=False)
        self.se_module = SqueezeExcite(cout, se) if se else None
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if not self.residual:
            return y
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y


class ResidualGroup(nn.Module):
    def __init__(self, blocks: list[Bottleneck]):
        super().__init__()
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _shape(state: dict, key: str) -> tuple[int, ...]:
    return tuple(state[key].shape)


def _bottleneck(state: dict, prefix: str, stride: int, residual: bool) -> Bottleneck:
    mid, cin = _shape(state, f"{prefix}.conv.conv.weight")[:2]
    cout = _shape(state, f"{prefix}.project.conv.weight")[0]
    se_key = f"{prefix}.se_module.fc1.weight"
    se = _shape(state, se_key)[0] if se_key in state else None
    return Bottleneck(cin, mid, cout, stride, residual, se)


def _group(state: dict, prefix: str) -> ResidualGroup:
    pattern = re.compile(re.escape(prefix) + r"\.model\.(\d+)\.")
    count = 1 + max(int(m.group(1)) for k in state if (m := pattern.match(k)))
    return ResidualGroup([_bottleneck(state, f"{prefix}.model.{i}", 1, True) for i in range(count)])


class MiniFASNet(nn.Module):
    """One network, every width read from ``state`` (keys without the ``module.`` prefix)."""

    def __init__(self, state: dict):
        super().__init__()
        c1 = _shape(state, "conv1.conv.weight")[0]
        self.conv1 = ConvBN(3, c1, 3, 2, 1)
        self.conv2_dw = ConvBN(c1, c1, 3, 1, 1, groups=c1)
        self.conv_23 = _bottleneck(state, "conv_23", 2, False)
        self.conv_3 = _group(state, "conv_3")
        self.conv_34 = _bottleneck(state, "conv_34", 2, False)
        self.conv_4 = _group(state, "conv_4")
        self.conv_45 = _bottleneck(state, "conv_45", 2, False)
        self.conv_5 = _group(state, "conv_5")
        c6, c5 = _shape(state, "conv_6_sep.conv.weight")[:2]
        self.conv_6_sep = ConvBN(c5, c6)
        k = _shape(state, "conv_6_dw.conv.weight")[-1]
        self.conv_6_dw = ConvBN(c6, c6, k, groups=c6, act=False)
        emb, _ = _shape(state, "linear.weight")
        self.linear = nn.Linear(c6, emb, bias=False)
        self.bn = nn.BatchNorm1d(emb)
        self.prob = nn.Linear(emb, _shape(state, "prob.weight")[0], bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, 3] of a BGR 0..255 batch [N, 3, 80, 80]."""
        x = self.conv_5(self.conv_45(self.conv_4(self.conv_34(self.conv_3(self.conv_23(
            self.conv2_dw(self.conv1(x))))))))
        x = self.conv_6_dw(self.conv_6_sep(x)).flatten(1)
        return self.prob(self.bn(self.linear(x)))


class WithSoftmax(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def load_state(path: Path) -> dict:
    """The state dict without DataParallel's ``module.`` prefix."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_network(path: Path) -> MiniFASNet:
    """The network of one published state dict, every key used (strict), in eval mode."""
    state = load_state(path)
    net = MiniFASNet(state)
    net.load_state_dict(state, strict=True)
    return net.eval()


def export_network(net: nn.Module, path: Path, scale: float) -> Path:
    """``net`` (with a softmax on top) as ONNX: ``input`` [N, 3, 80, 80] → ``probs`` [N, 3]."""
    import onnx  # local: only needed to validate what was written

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE) * 255
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is the legacy path
        torch.onnx.export(WithSoftmax(net).eval(), (dummy,), str(tmp), input_names=["input"],
                          output_names=["probs"], opset_version=OPSET, do_constant_folding=True,
                          dynamo=False, dynamic_axes={"input": {0: "N"}, "probs": {0: "N"}})
        model = onnx.load(str(tmp))
        onnx.checker.check_model(model)
        model.doc_string = (
            f"Silent-Face MiniFASNet (minivision-ai, Apache-2.0), crop {scale:g}x the face box. "
            "Input 'input': BGR NCHW float32 80x80, raw 0..255. Output 'probs': softmax, "
            "class 1 = live.")
        onnx.save(model, str(tmp))
    return path


def export_all(out_dir: Path, weights_dir: Path = DEFAULT_WEIGHTS_DIR) -> dict[str, Path]:
    """Both networks into ``out_dir``; {ONNX file name: path}."""
    from faceguard.errors import ModelError
    from faceguard.vision.models import sha256_of

    out: dict[str, Path] = {}
    for source, onnx_name, scale in NETWORKS:
        src = Path(weights_dir) / source
        if not src.is_file():
            raise ModelError(f"{src} is missing: pass --weights with the folder of the "
                             "Silent-Face state dicts.")
        if sha256_of(src) != SOURCE_SHA256[source]:
            raise ModelError(f"{src} is not the published state dict (SHA-256 differs).")
        out[onnx_name] = export_network(load_network(src), Path(out_dir) / onnx_name, scale)
    return out


def manifest_entry() -> dict:
    """The manifest's ``texture`` entry (faceguard.vision.models.TextureSpec reads it)."""
    return {
        "id": TEXTURE_ID,
        "networks": [{"file": onnx_name, "scale": scale, "source_file": source,
                      "source_sha256": SOURCE_SHA256[source]} for source, onnx_name, scale in NETWORKS],
        "input_size": INPUT_SIZE, "channel_order": "BGR", "value_range": "0..255", "live_class": 1,
        "box_reshape": dict(BOX_RESHAPE), "threshold": THRESHOLD,
        "source": SOURCE, "licence": LICENCE,
    }


def add_to_manifest(models_dir: Path) -> Path:
    """Write the ``texture`` entry and its files' SHA-256 into models_dir/manifest.json."""
    import json

    from faceguard.atomic import write_text_atomic
    from faceguard.vision.models import MANIFEST_NAME, sha256_of

    path = Path(models_dir) / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["texture"] = manifest_entry()
    for _, onnx_name, _ in NETWORKS:
        manifest["sha256"][onnx_name] = sha256_of(Path(models_dir) / onnx_name)
    manifest["sha256"] = dict(sorted(manifest["sha256"].items()))
    write_text_atomic(path, json.dumps(manifest, indent=2) + "\n", mode=0o644)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m faceguard.train.minifasnet",
                                 description="Convert the Silent-Face MiniFASNet weights to ONNX.")
    ap.add_argument("out_dir", type=Path, nargs="?", default=Path("models"))
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS_DIR,
                    help="folder with the two published .pth state dicts")
    ap.add_argument("--manifest-only", action="store_true",
                    help="only rewrite the manifest's texture entry for the ONNX files in out_dir")
    args = ap.parse_args(argv)
    if not args.manifest_only:
        for name, path in export_all(args.out_dir, args.weights).items():
            print(f"{name}: {path} ({path.stat().st_size} bytes)")
    print(add_to_manifest(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
