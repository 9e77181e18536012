"""Training on real faces (CPU): the shipped ResNet-29 loads exactly, and a short fine-tune with
semi-hard triplets lowers the training loss without collapsing the embedding."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.heavy  # training: about 30 s on 2 cores
torch = pytest.importorskip("torch")

from faceguard.errors import FaceGuardError  # noqa: E402
from faceguard.train import nets  # noqa: E402
from faceguard.train.data import (  # noqa: E402
    ChipAligner,
    PKSampler,
    augment,
    load_chipset,
    scan_identities,
)
from faceguard.train.loop import (  # noqa: E402
    TrainConfig,
    embed,
    load_checkpoint,
    model_from_checkpoint,
    plot_history,
    train,
)
from faceguard.train.triplet import triplet_loss  # noqa: E402


@pytest.fixture(scope="module")
def few_people(lfw):
    """The 10 people with the most photos (up to 6 each): about a minute of CPU training."""
    people = scan_identities(lfw)
    top = sorted(people, key=lambda k: (-len(people[k]), k))[:10]
    return top


def test_resnet29_reproduces_the_shipped_onnx_on_real_chips(pipeline, lfw):
    import onnxruntime as ort

    spec = pipeline.embedder.spec
    net = nets.load_dlib_onnx(nets.ResNet29(), spec.file).eval()
    aligner = ChipAligner(pipeline, spec.landmark_template, spec.input_size)
    people = scan_identities(lfw)
    files = [p for name in sorted(people)[:4] for p in people[name][:2]]
    chips = np.stack([aligner.chip(f, centre_fallback=True) for f in files])
    x = chips.transpose(0, 3, 1, 2).astype(np.float32)
    ref = ort.InferenceSession(str(spec.file), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    got = embed(net, chips)
    assert np.abs(got - ref).max() <= 1e-5
    # and the chips are the app's: the pipeline (flip off) gives the same vectors
    assert np.abs(pipeline.embedder._run(chips) - ref).max() == 0


def test_sampler_gives_p_people_times_k_images():
    labels = np.repeat(np.arange(7), [2, 3, 5, 2, 4, 6, 2])
    sampler = PKSampler(labels, p=4, k=3, seed=1)
    batches = list(sampler)
    assert len(batches) == len(labels) // 12
    for idx in batches:
        ids, counts = np.unique(labels[idx], return_counts=True)
        assert len(ids) == 4 and set(counts) == {3}


def test_scan_refuses_a_folder_without_people(tmp_path):
    (tmp_path / "alice").mkdir()
    with pytest.raises(FaceGuardError, match="two person folders"):
        scan_identities(tmp_path)


def test_augment_keeps_shape_and_changes_pixels_a_little():
    rng = np.random.default_rng(0)
    chip = np.full((150, 150, 3), 120, np.uint8)
    chip[40:110, 40:110] = 200
    out = augment(chip, rng)
    assert out.shape == chip.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - chip.astype(int)).mean()
    assert 0 < diff < 40


def _training_loss(model, chips, labels) -> tuple[float, float]:
    """Batch-all triplet loss over the whole (un-augmented) set, and the mean pairwise
    squared distance (collapse shows as distances near 0)."""
    emb = torch.from_numpy(embed(model, chips))
    res = triplet_loss(emb, torch.from_numpy(labels), 0.2, "batch-all")
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    return float(res.loss), float(d.sum() / (len(emb) * (len(emb) - 1)))


def test_short_training_lowers_loss_without_collapse(pipeline, lfw, few_people, tmp_path):
    torch.set_num_threads(2)
    spec = pipeline.embedder.spec
    config = TrainConfig(data=lfw, out=tmp_path / "run", people=few_people, max_per_person=6,
                         mining="semihard", margin=0.2, epochs=2, max_steps=6,
                         people_per_batch=5, images_per_person=4, seed=0)
    aligner = ChipAligner(pipeline, spec.landmark_template, spec.input_size)
    data = load_chipset({k: v for k, v in scan_identities(lfw).items() if k in few_people},
                        aligner, 6)
    before_model = nets.load_dlib_onnx(nets.ResNet29(), spec.file)
    loss0, spread0 = _training_loss(before_model, data.chips, data.labels)

    t0 = time.monotonic()
    result = train(config, pipeline.manifest, pipeline)
    seconds = time.monotonic() - t0
    after = model_from_checkpoint(load_checkpoint(result.checkpoint))
    loss1, spread1 = _training_loss(after, data.chips, data.labels)
    print(f"training loss {loss0:.4f} -> {loss1:.4f}, mean pairwise d² {spread0:.3f} -> "
          f"{spread1:.3f}, {seconds:.0f} s")
    assert loss0 > 0
    assert loss1 <= 0.7 * loss0
    # no collapse: the faces stay spread over the sphere (f(x) = const would give 0)
    assert spread1 > 0.5 * spread0
    assert [r["step"] for r in result.history] == [3, 6]
    assert all(0 <= r["active_fraction"] <= 1 for r in result.history)
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved == result.history
    png = cv2.imread(str(tmp_path / "run" / "curves.png"))
    assert png is not None and png.shape[1] > png.shape[0] and png.std() > 5

    # a second run into the same folder is refused without --resume ...
    with pytest.raises(FaceGuardError, match="--resume"):
        train(config, pipeline.manifest, pipeline)


def test_resume_continues_from_the_checkpoint(pipeline, lfw, few_people, tmp_path):
    torch.set_num_threads(2)
    base = dict(data=lfw, out=tmp_path / "run", people=few_people[:4], max_per_person=3,
                people_per_batch=3, images_per_person=2, lr=1e-5, augment=False)
    first = train(TrainConfig(epochs=1, max_steps=1, **base), pipeline.manifest, pipeline)
    ckpt1 = load_checkpoint(first.checkpoint)
    resumed = train(TrainConfig(epochs=2, max_steps=2, **base), pipeline.manifest, pipeline,
                    resume=True)
    ckpt2 = load_checkpoint(resumed.checkpoint)
    assert (ckpt1["epoch"], ckpt1["step"]) == (1, 1)
    assert (ckpt2["epoch"], ckpt2["step"]) == (2, 2)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    changed = [not torch.equal(ckpt1["state_dict"][k], ckpt2["state_dict"][k])
               for k in ckpt1["state_dict"]]
    assert any(changed)


def test_plot_handles_missing_validation(tmp_path):
    history = [{"epoch": 1, "loss": 0.1, "active_fraction": 0.5},
               {"epoch": 2, "loss": 0.05, "active_fraction": 0.3}]
    plot_history(history, tmp_path / "c.png")
    img = cv2.imread(str(tmp_path / "c.png"))
    assert img is not None and img.shape == (260, 3 * 360, 3)
