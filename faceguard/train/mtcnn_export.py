"""Export the MTCNN face detector (P-Net, R-Net, O-Net) to three ONNX files.

The weights are facenet-pytorch's (MIT licence, Copyright (c) 2019 Timothy Esler), shipped in the
``facenet_pytorch/data/{pnet,rnet,onet}.pt`` state dicts. Only those files are read: the package
itself is never imported (it needs torchvision, which faceguard does not). The three networks are
re-declared here with the same layer names and shapes so that the state dicts load strictly.

Input convention (all three nets)
---------------------------------
* RGB, float32, NCHW, pixels normalised as ``(x - 127.5) / 128`` (i.e. ``* 0.0078125``).
* The image is NOT transposed: rows are image y, columns image x, exactly as
  facenet-pytorch feeds them. (The original Caffe MTCNN worked on transposed, column-major
  images; in the facenet-pytorch port that transposition is folded into the weights and into
  the ``permute(0, 3, 2, 1)`` before the first dense layer of R-Net and O-Net, which this module
  reproduces, so callers pass ordinary images.)
* Resampling used by facenet-pytorch is area interpolation (``cv2.INTER_AREA`` equivalent).

Outputs (names in the ONNX graphs, order as in facenet-pytorch)
--------------------------------------------------------------
* ``mtcnn_pnet.onnx``: input ``image`` [N, 3, H, W] (N, H, W dynamic, H, W >= 12) ->
  ``reg`` [N, 4, H', W'] box offsets (dx1, dy1, dx2, dy2) as fractions of the 12-px cell,
  ``prob`` [N, 2, H', W'] softmax (background, face). H' = ceil((H - 2) / 2) - 4; output cell
  (i, j) covers input pixels starting at (y, x) = (2 i, 2 j), 12 x 12 pixels.
* ``mtcnn_rnet.onnx``: input ``image`` [N, 3, 24, 24] -> ``reg`` [N, 4], ``prob`` [N, 2].
* ``mtcnn_onet.onnx``: input ``image`` [N, 3, 48, 48] -> ``reg`` [N, 4],
  ``landmarks`` [N, 10] = (x0..x4, y0..y4) as fractions of the crop's width/height,
  ``prob`` [N, 2]. The landmark order is image-left eye, image-right eye, nose,
  image-left mouth corner, image-right mouth corner (checked on LFW by tests/test_detect.py).

CLI: ``python -m faceguard.train.mtcnn_export OUT_DIR``
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 17
FILE_NAMES = {"pnet": "mtcnn_pnet.onnx", "rnet": "mtcnn_rnet.onnx", "onet": "mtcnn_onet.onnx"}


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refine net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The dense weights were ported from a transposed (W, H, C) layout: flatten that way.
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48x48 crops: box refinement, five landmarks and the final score."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # see RNet.forward
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


def facenet_data_dir() -> Path:
    """Folder holding facenet-pytorch's pnet.pt/rnet.pt/onet.pt, found without importing it."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "facenet-pytorch is not installed; install it with "
            "'pip install --no-deps facenet-pytorch' to get the MTCNN weights."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_nets(data_dir: Path | None = None) -> dict[str, nn.Module]:
    """The three nets with facenet-pytorch's weights, in eval mode, on the CPU."""
    data_dir = data_dir or facenet_data_dir()
    nets: dict[str, nn.Module] = {"pnet": PNet(), "rnet": RNet(), "onet": ONet()}
    for name, net in nets.items():
        state = torch.load(data_dir / f"{name}.pt", map_location="cpu", weights_only=True)
        # Softmax modules in the original carry no parameters, so strict loading still works.
        net.load_state_dict(state, strict=True)
        net.eval()
    return nets


def _export_one(
    net: nn.Module, example: torch.Tensor, path: Path, outputs: list[str], dynamic_hw: bool
) -> None:
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_hw else {0: "batch"}
    dynamic_axes: dict[str, dict[int, str]] = {"image": axes}
    for out in outputs:
        dynamic_axes[out] = (
            {0: "batch", 2: "out_height", 3: "out_width"} if dynamic_hw else {0: "batch"}
        )
    with torch.no_grad(), warnings.catch_warnings():
        # torch >= 2.9 warns that the TorchScript exporter is deprecated; it is still the one
        # that gives a plain single-file graph with dynamic_axes, so silence just that warning.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=["image"],
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,  # the legacy TorchScript exporter gives small, single-file graphs
        )


def export_mtcnn(out_dir: str | Path, data_dir: Path | None = None) -> dict[str, Path]:
    """Write mtcnn_pnet.onnx, mtcnn_rnet.onnx, mtcnn_onet.onnx into ``out_dir``.

    Returns ``{"pnet": path, "rnet": path, "onet": path}``.
    """
    import onnx  # local: only needed to validate what was written

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nets = load_nets(data_dir)
    specs = {
        "pnet": (torch.zeros(1, 3, 48, 64), ["reg", "prob"], True),
        "rnet": (torch.zeros(2, 3, 24, 24), ["reg", "prob"], False),
        "onet": (torch.zeros(2, 3, 48, 48), ["reg", "landmarks", "prob"], False),
    }
    paths: dict[str, Path] = {}
    for name, (example, outputs, dynamic_hw) in specs.items():
        path = out_dir / FILE_NAMES[name]
        _export_one(nets[name], example, path, outputs, dynamic_hw)
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        model.doc_string = (
            "MTCNN " + name + " (weights: facenet-pytorch, MIT). Input 'image': RGB NCHW float32, "
            "(x - 127.5) / 128, not transposed."
        )
        onnx.save(model, str(path))
        paths[name] = path
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export MTCNN P/R/O-Net to ONNX.")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    for name, path in export_mtcnn(args.out_dir).items():
        print(f"{name}: {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
