"""The training loop: P×K batches, online triplet mining, checkpoints, resume, validation, plot.

Output folder layout (``--out``):
  last.pt        checkpoint after the latest epoch (model, optimiser, sampler state, history)
  history.json   one record per epoch: loss, active fraction, validation accuracy, seconds
  curves.png     loss / active-triplet fraction / validation accuracy per epoch
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from faceguard.atomic import atomic_open
from faceguard.errors import FaceGuardError, ModelError
from faceguard.tools.evaluate import kfold_accuracy, read_pairs
from faceguard.tools.plot import line_panels
from faceguard.train import nets
from faceguard.train.data import (
    FACENET_TEMPLATE_160,
    ChipAligner,
    ChipSet,
    PKSampler,
    augment,
    load_chipset,
    person_root,
    scan_identities,
    to_tensor,
)
from faceguard.train.triplet import MININGS, triplet_loss
from faceguard.vision.models import Manifest

log = logging.getLogger(__name__)
CHECKPOINT = "last.pt"


@dataclass
class TrainConfig:
    data: Path
    out: Path
    arch: str = "resnet29"
    init: str = "shipped"              # shipped | scratch
    mining: str = "semihard"
    margin: float = 0.2
    epochs: int = 10
    max_steps: int | None = None       # stop after this many optimiser steps in total
    pairs: Path | None = None          # LFW-format pairs file for validation each epoch
    people_per_batch: int = 8          # P
    images_per_person: int = 4         # K
    lr: float | None = None            # default: 1e-5 when fine-tuning, 1e-3 from scratch
    augment: bool = True
    seed: int = 0
    max_per_person: int | None = None  # cap images per person (small, quick runs)
    people: list[str] | None = None    # train on these people only (a split by identity)
    embedding_size: int | None = None  # inception-resnet-v1: 128 or 512 (default 512)

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-5 if self.init == "shipped" else 1e-3)


@dataclass
class Progress:
    epoch: int
    epochs: int
    step_in_epoch: int
    steps_in_epoch: int
    loss: float
    active_fraction: float


@dataclass
class TrainResult:
    checkpoint: Path
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# model, alignment


def model_geometry(arch: str, manifest: Manifest) -> tuple[np.ndarray, int]:
    """(landmark template, chip size) the network is trained and used with."""
    if arch == nets.ResNet29.arch:
        spec = manifest.embedder()
        return spec.landmark_template, spec.input_size
    return FACENET_TEMPLATE_160, nets.InceptionResnetV1.input_size


def make_model(config: TrainConfig, manifest: Manifest) -> torch.nn.Module:
    model = nets.build(config.arch, config.embedding_size)
    if config.init == "scratch":
        return model
    if config.init != "shipped":
        raise FaceGuardError(f"--init must be 'shipped' or 'scratch', not '{config.init}'.")
    if config.arch != nets.ResNet29.arch:
        raise FaceGuardError(
            "Only the ResNet-29 has shipped weights; train Inception-ResNet-v1 with --init scratch, "
            "or convert facenet-pytorch weights with `faceguard export --facenet-pytorch FILE.pt`.")
    return nets.load_dlib_onnx(model, manifest.embedder().file)


@torch.no_grad()
def embed(model: torch.nn.Module, chips: np.ndarray, batch: int = 32) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = [model(to_tensor(chips[i:i + batch])).numpy() for i in range(0, len(chips), batch)]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


# ---------------------------------------------------------------------------------------------
# validation on a pairs file


class PairValidator:
    """Aligned chips for every image of an LFW-format pairs file, scored with 10-fold accuracy."""

    def __init__(self, pairs_file: Path, data: Path, aligner: ChipAligner,
                 keep: Callable[[str, str], bool] | None = None):
        pairs = read_pairs(pairs_file)
        if keep is not None:
            pairs = [p for p in pairs if keep(p.a, p.b)]
        if not pairs or all(p.same for p in pairs) or not any(p.same for p in pairs):
            raise FaceGuardError(f"{pairs_file}: validation needs matched and mismatched pairs.")
        self.pairs = pairs
        files = sorted({p.a for p in pairs} | {p.b for p in pairs})
        self.index = {f: i for i, f in enumerate(files)}
        root = Path(data)
        chips = []
        for rel in files:
            # read_pairs names files as images/<person>/<file>; --data may be either level
            path = root / rel
            if not path.is_file():
                path = person_root(root) / Path(*Path(rel).parts[1:])
            if not path.is_file():
                raise FaceGuardError(f"The pairs file names {rel}, which is not in {root}.")
            chips.append(aligner.chip(path, centre_fallback=True))
        self.chips = np.stack(chips)

    def evaluate(self, model: torch.nn.Module) -> dict:
        emb = embed(model, self.chips)
        a = np.array([self.index[p.a] for p in self.pairs])
        b = np.array([self.index[p.b] for p in self.pairs])
        dist = ((emb[a] - emb[b]) ** 2).sum(1)
        same = np.array([p.same for p in self.pairs])
        res = kfold_accuracy(dist, same)
        res["pairs"] = len(self.pairs)
        return res


# ---------------------------------------------------------------------------------------------
# the loop


def _save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_open(path, 0o644) as fh:   # a crash mid-save keeps the previous checkpoint intact
        torch.save(payload, fh)


def load_checkpoint(path: Path) -> dict:
    try:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise ModelError(f"The checkpoint {path} does not exist.") from exc
    except Exception as exc:  # pickle and zip errors come in many types
        raise ModelError(f"{path} is not a FaceGuard training checkpoint ({exc}).") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "arch" not in ckpt:
        raise ModelError(f"{path} is not a FaceGuard training checkpoint.")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> torch.nn.Module:
    model = nets.build(ckpt["arch"], ckpt["embedding_size"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def train(config: TrainConfig, manifest: Manifest, pipeline, *, resume: bool = False,
          on_step: Callable[[Progress], None] | None = None,
          keep_pair: Callable[[str, str], bool] | None = None) -> TrainResult:
    """Train (or resume) and return the checkpoint path and per-epoch history.

    `keep_pair(a, b)` selects the validation pairs (e.g. only held-out people)."""
    if config.mining not in MININGS:
        raise FaceGuardError(f"--mining must be one of {', '.join(MININGS)}, not '{config.mining}'.")
    if not 0 < config.margin < 4:
        raise FaceGuardError("--margin is a squared distance between unit vectors: use 0 < margin < 4.")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise FaceGuardError(f"{out} already holds a checkpoint; pass --resume to continue it "
                             "or choose another --out folder.")
    torch.manual_seed(config.seed)
    template, size = model_geometry(config.arch, manifest)
    aligner = ChipAligner(pipeline, template, size)
    people = scan_identities(config.data)
    if config.people is not None:
        people = {k: v for k, v in people.items() if k in set(config.people)}
    train_set: ChipSet = load_chipset(people, aligner, config.max_per_person)
    validator = (PairValidator(config.pairs, config.data, aligner, keep_pair)
                 if config.pairs else None)
    model = make_model(config, manifest)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate())
    sampler = PKSampler(train_set.labels, config.people_per_batch, config.images_per_person,
                        config.seed)
    history: list[dict] = []
    start_epoch, step = 0, 0
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["arch"] != config.arch:
            raise FaceGuardError(f"The checkpoint in {out} is a {ckpt['arch']}, not {config.arch}.")
        model.load_state_dict(ckpt["state_dict"])
        optimiser.load_state_dict(ckpt["optimizer"])
        sampler.rng.bit_generator.state = ckpt["sampler_rng"]
        start_epoch, step, history = ckpt["epoch"], ckpt["step"], ckpt["history"]
    aug_rng = np.random.default_rng(config.seed + 1 + step)
    if validator and not history:
        history.append({"epoch": 0, "step": 0, **_val_fields(validator.evaluate(model))})
    for epoch in range(start_epoch + 1, config.epochs + 1):
        if config.max_steps is not None and step >= config.max_steps:
            break
        record, step = _run_epoch(config, model, optimiser, sampler, train_set, aug_rng, epoch, step,
                                  on_step)
        if validator:
            record.update(_val_fields(validator.evaluate(model)))
        history.append(record)
        log.info("epoch %d: %s", epoch, record)
        if not math.isfinite(record["loss"]):
            raise FaceGuardError("Training diverged (the loss is not a number); lower --lr.")
        _save_checkpoint(ckpt_path, {
            "format": 1, "arch": config.arch, "embedding_size": model.embedding_size,
            "input_size": size, "template": np.asarray(template).tolist(),
            "state_dict": model.state_dict(), "optimizer": optimiser.state_dict(),
            "sampler_rng": sampler.rng.bit_generator.state, "epoch": epoch, "step": step,
            "history": history, "config": {k: _plain(v) for k, v in asdict(config).items()},
        })
        (out / "history.json").write_text(json.dumps(history, indent=1))
        plot_history(history, out / "curves.png")
    return TrainResult(ckpt_path, history)


def _run_epoch(config: TrainConfig, model, optimiser, sampler, train_set: ChipSet, aug_rng,
               epoch: int, step: int, on_step) -> tuple[dict, int]:
    """One pass over the P×K batches; (the epoch's record, the step count after it)."""
    t0 = time.monotonic()
    model.train()
    losses, actives = [], []
    for i, idx in enumerate(sampler):
        chips = train_set.chips[idx]
        if config.augment:
            chips = np.stack([augment(c, aug_rng) for c in chips])
        res = triplet_loss(model(to_tensor(chips)), torch.from_numpy(train_set.labels[idx]),
                           config.margin, config.mining)
        optimiser.zero_grad()
        res.loss.backward()
        optimiser.step()
        step += 1
        losses.append(float(res.loss.detach()))
        actives.append(res.active_fraction)
        if on_step:
            on_step(Progress(epoch, config.epochs, i + 1, len(sampler), losses[-1], actives[-1]))
        if config.max_steps is not None and step >= config.max_steps:
            break
    record = {"epoch": epoch, "step": step, "loss": float(np.mean(losses)),
              "active_fraction": float(np.mean(actives)), "seconds": round(time.monotonic() - t0, 2)}
    return record, step


def _val_fields(res: dict) -> dict:
    return {"val_accuracy": res["accuracy"], "val_threshold": res["threshold"]}


def _plain(v):
    if isinstance(v, Path):
        return str(v)
    return v


# ---------------------------------------------------------------------------------------------
# the curves


def plot_history(history: list[dict], path: Path) -> None:
    """curves.png: training loss, active-triplet fraction and validation accuracy per epoch."""
    keys = [("loss", "training loss"), ("active_fraction", "active triplets"),
            ("val_accuracy", "validation accuracy")]
    line_panels([(title, [(r["epoch"], r[key]) for r in history if r.get(key) is not None])
                 for key, title in keys], path)
