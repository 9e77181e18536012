"""Fine-tune the shipped ResNet-29 with semi-hard triplets on part of the LFW fold-1 people and
measure pairs accuracy on the others (split by identity), before and after.

    python benchmarks/train.py [--epochs 3] [--train-share 0.6] [--json benchmarks/results/train.json]

Accuracy: the pairs of pairs_dev.txt whose two people are both in the held-out half, 10-fold
(threshold chosen on 9 folds, scored on the 10th), no flip averaging. Prints the numbers, writes
JSON and the curves PNG (epoch 0 = before fine-tuning), and reports seconds per epoch on this CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from faceguard.train.data import scan_identities
from faceguard.train.loop import TrainConfig, train
from faceguard.vision.pipeline import FacePipeline

ROOT = Path(__file__).resolve().parent.parent
LFW = ROOT.parent / "shared" / "data" / "lfw_dev_fold1"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=LFW)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-share", type=float, default=0.6)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="training folder (default: a temporary one; the checkpoint is not kept)")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "train.json")
    args = ap.parse_args(argv)

    people = sorted(scan_identities(args.data))
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(people))
    n_train = int(round(args.train_share * len(people)))
    train_people = sorted(people[i] for i in order[:n_train])
    held_out = set(people) - set(train_people)

    def held_out_pair(a: str, b: str) -> bool:
        return Path(a).parent.name in held_out and Path(b).parent.name in held_out

    args.out = args.out or Path(tempfile.mkdtemp(prefix="faceguard-bench-train-"))
    pipeline = FacePipeline.load(provider="cpu", flip=False)
    config = TrainConfig(data=args.data, out=args.out, people=train_people, mining="semihard",
                         margin=0.2, epochs=args.epochs, lr=args.lr, seed=args.seed,
                         pairs=args.data / "pairs_dev.txt")
    ckpt = args.out / "last.pt"
    if ckpt.exists():
        ckpt.unlink()  # a fresh run each time
    t0 = time.monotonic()
    result = train(config, pipeline.manifest, pipeline, keep_pair=held_out_pair)
    total = time.monotonic() - t0
    hist = result.history
    before, after = hist[0], hist[-1]
    epochs = [r for r in hist if r["epoch"] > 0]
    report = {
        "benchmark": "fine-tune shipped ResNet-29, semi-hard triplets, split by identity",
        "train_people": len(train_people), "held_out_people": len(held_out),
        "held_out_pairs": _count_pairs(args.data / "pairs_dev.txt", held_out_pair),
        "accuracy_before": before["val_accuracy"], "accuracy_after": after["val_accuracy"],
        "threshold_before": before["val_threshold"], "threshold_after": after["val_threshold"],
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in epochs])),
        "seconds_total": round(total, 1), "history": hist,
        "config": {"epochs": args.epochs, "lr": args.lr, "P": config.people_per_batch,
                   "K": config.images_per_person, "margin": config.margin, "seed": args.seed},
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "torch_threads": torch.get_num_threads()},
        "curves": str(args.json.with_suffix(".png")),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    shutil.copy2(args.out / "curves.png", args.json.with_suffix(".png"))
    print(f"people: {len(train_people)} train / {len(held_out)} held out; "
          f"held-out pairs: {report['held_out_pairs']}")
    print(f"pairs accuracy (10-fold) before {report['accuracy_before']:.4f} -> after "
          f"{report['accuracy_after']:.4f}")
    for r in epochs:
        print(f"  epoch {r['epoch']}: loss {r['loss']:.4f} active {r['active_fraction']:.2f} "
              f"val {r['val_accuracy']:.4f} ({r['seconds']:.1f} s)")
    print(f"seconds per epoch: {report['seconds_per_epoch']:.1f}; json: {args.json}")
    return 0


def _count_pairs(pairs_file: Path, keep) -> int:
    from faceguard.tools.evaluate import read_pairs

    return sum(1 for p in read_pairs(pairs_file) if keep(p.a, p.b))


if __name__ == "__main__":
    sys.exit(main())
