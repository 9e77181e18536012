"""`faceguard train` and `faceguard export`: sub-commands that faceguard.cli registers only
where the training package is shipped (the desktop bundle leaves it out).

torch is imported only when one of these commands runs, so the rest of the CLI works without
the `train` extra. Errors are FaceGuardErrors, printed by the CLI's one error boundary.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from faceguard.errors import FaceGuardError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    t = subparsers.add_parser("train", help="train or fine-tune an embedding network (triplet loss)")
    t.add_argument("--data", type=Path, required=True, help="folder with one sub-folder per person")
    t.add_argument("--arch", choices=["resnet29", "inception-resnet-v1"], default="resnet29")
    t.add_argument("--init", choices=["shipped", "scratch"], default="shipped")
    t.add_argument("--mining", choices=["semihard", "batch-all", "hardest"], default="semihard")
    t.add_argument("--margin", type=float, default=0.2, help="triplet margin α (squared L2)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--out", type=Path, default=Path("faceguard-train"))
    t.add_argument("--pairs", type=Path, default=None,
                   help="LFW-format pairs file for validation after each epoch")
    t.add_argument("--people-per-batch", type=int, default=8, help="P identities per batch")
    t.add_argument("--images-per-person", type=int, default=4, help="K images per identity")
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--no-augment", action="store_true")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=run_train)

    e = subparsers.add_parser("export", help="turn a checkpoint or facenet-pytorch weights into "
                                             "an ONNX model with a manifest entry")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("checkpoint", nargs="?", type=Path, help="a `faceguard train` checkpoint")
    src.add_argument("--facenet-pytorch", type=Path, metavar="FILE.pt",
                     help="facenet-pytorch Inception-ResNet-v1 state dict (VGGFace2 / CASIA)")
    e.add_argument("--out", type=Path, default=None, help="FILE.onnx (default: user models folder)")
    e.add_argument("--id", dest="model_id", default=None, help="model id in the manifest")
    e.add_argument("--add-to-shipped", action="store_true",
                   help="allow adding the entry to the shipped models/manifest.json")
    e.set_defaults(func=run_export)


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise FaceGuardError("Training needs PyTorch: install FaceGuard with the 'train' extra "
                             "(pip install 'faceguard[train]').") from exc


def run_train(args: argparse.Namespace) -> int:
    _require_torch()
    from faceguard.tools.progress import ProgressBar
    from faceguard.train.loop import TrainConfig, train
    from faceguard.vision.pipeline import FacePipeline

    config = TrainConfig(
        data=args.data, out=args.out, arch=args.arch, init=args.init, mining=args.mining,
        margin=args.margin, epochs=args.epochs, max_steps=args.max_steps, pairs=args.pairs,
        people_per_batch=args.people_per_batch, images_per_person=args.images_per_person,
        lr=args.lr, augment=not args.no_augment, seed=args.seed)
    pipeline = FacePipeline.load(provider="cpu", flip=False)
    bar = ProgressBar()

    def on_step(p) -> None:  # one bar line per epoch
        bar(p.step_in_epoch, p.steps_in_epoch, label=f"epoch {p.epoch}/{p.epochs}",
            note=f"loss {p.loss:.4f} active {p.active_fraction:.0%}")

    result = train(config, pipeline.manifest, pipeline, resume=args.resume, on_step=on_step)
    last = result.history[-1] if result.history else {}
    summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float))
    print(f"checkpoint: {result.checkpoint}\nlast epoch: {summary}")
    print(f"curves: {Path(result.checkpoint).parent / 'curves.png'}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    _require_torch()
    from faceguard.train.export import export_checkpoint, export_facenet_pytorch

    if args.facenet_pytorch:
        res = export_facenet_pytorch(args.facenet_pytorch, args.out, args.model_id,
                                     add_to_shipped=args.add_to_shipped)
    else:
        res = export_checkpoint(args.checkpoint, args.out, args.model_id,
                                add_to_shipped=args.add_to_shipped)
    print(f"model: {res.onnx_file}\nmanifest: {res.manifest} (id {res.model_id})\n"
          f"parity with torch: max |diff| {res.max_abs_diff:.2e}\n"
          f"use it: FACEGUARD_MODELS_DIR={res.manifest.parent} faceguard, then pick "
          f"'{res.model_id}' in Settings")
    return 0
