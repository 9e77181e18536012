"""Triplet loss and selection against brute-force numpy loops on random unit embeddings."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceguard.train.triplet import pairwise_sq_dist, select_triplets, triplet_loss  # noqa: E402

MARGIN = 0.2


def _batch(seed: int, n_ids: int = 6, k: int = 4, dim: int = 8):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_ids), k)
    # people as clusters of different spread, so every selection case occurs
    centres = rng.normal(size=(n_ids, dim))
    emb = centres[labels] + rng.normal(scale=0.9, size=(len(labels), dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float64), labels


def _ref_dist(emb):
    n = len(emb)
    return np.array([[float(np.sum((emb[i] - emb[j]) ** 2)) for j in range(n)] for i in range(n)])


def _ref_triplets(emb, labels, mining, margin=MARGIN):
    d = _ref_dist(emb)
    n = len(labels)
    out = []
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [q for q in range(n) if labels[q] != labels[a]]
        if not positives or not negatives:
            continue
        if mining == "batch-all":
            out += [(a, p, q) for p in positives for q in negatives]
        elif mining == "hardest":
            p = max(positives, key=lambda j: d[a, j])
            q = min(negatives, key=lambda j: d[a, j])
            out.append((a, p, q))
        elif mining == "semihard":
            for p in positives:
                band = [q for q in negatives if d[a, p] < d[a, q] < d[a, p] + margin]
                farther = [q for q in negatives if d[a, q] > d[a, p]]
                if band:
                    q = min(band, key=lambda j: d[a, j])
                elif farther:
                    q = min(farther, key=lambda j: d[a, j])
                else:
                    q = max(negatives, key=lambda j: d[a, j])
                out.append((a, p, q))
    losses = [max(d[a, p] - d[a, q] + margin, 0.0) for a, p, q in out]
    return out, np.array(losses)


def _run(emb, labels, mining):
    t = torch.tensor(emb, dtype=torch.float64)
    return triplet_loss(t, torch.tensor(labels), margin=MARGIN, mining=mining)


def test_pairwise_distance_matches_loops():
    emb, _ = _batch(0)
    got = pairwise_sq_dist(torch.tensor(emb)).numpy()
    np.testing.assert_allclose(got, _ref_dist(emb), atol=1e-12)


@pytest.mark.parametrize("mining", ["batch-all", "semihard", "hardest"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_selection_and_loss_match_brute_force(mining, seed):
    emb, labels = _batch(seed)
    ref_trip, ref_losses = _ref_triplets(emb, labels, mining)
    res = _run(emb, labels, mining)
    got = [tuple(int(v) for v in row) for row in res.triplets]
    assert sorted(got) == sorted(ref_trip)
    order = {t: i for i, t in enumerate(got)}
    mine = res.losses.numpy()[[order[t] for t in ref_trip]]
    np.testing.assert_allclose(mine, ref_losses, atol=1e-12)
    assert float(res.loss) == pytest.approx(ref_losses.mean(), abs=1e-12)
    assert float(res.total) == pytest.approx(ref_losses.sum(), abs=1e-12)
    assert res.active_fraction == pytest.approx(float(np.mean(ref_losses > 0)))


def test_batch_all_counts():
    emb, labels = _batch(4, n_ids=5, k=3)
    res = _run(emb, labels, "batch-all")
    # each of 15 anchors: 2 positives × 12 negatives
    assert len(res.triplets) == 15 * 2 * 12


def test_semihard_picks_exactly_the_band_when_one_exists():
    emb, labels = _batch(5, n_ids=8, k=4, dim=6)
    d = _ref_dist(emb)
    res = _run(emb, labels, "semihard")
    seen_band = seen_fallback = 0
    for a, p, q in res.triplets.tolist():
        negatives = [j for j in range(len(labels)) if labels[j] != labels[a]]
        band = [j for j in negatives if d[a, p] < d[a, j] < d[a, p] + MARGIN]
        if band:
            seen_band += 1
            assert d[a, p] < d[a, q] < d[a, p] + MARGIN
            assert q == min(band, key=lambda j: d[a, j])
        else:
            seen_fallback += 1
            assert not d[a, p] < d[a, q] < d[a, p] + MARGIN
    assert seen_band > 0 and seen_fallback > 0  # both branches were exercised
    band_share = np.mean([d[a, p] < d[a, q] < d[a, p] + MARGIN for a, p, q in res.triplets.tolist()])
    assert res.semihard_fraction == pytest.approx(band_share)


def test_semihard_fallback_takes_easiest_negative_when_all_are_harder():
    # anchor 0 and positive 1 far apart; both negatives nearer to the anchor than the positive
    emb = np.array([[1.0, 0.0], [-1.0, 0.0], [0.9, 0.1], [0.6, 0.8]])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    res = _run(emb, np.array([0, 0, 1, 2]), "semihard")
    rows = {(a, p): q for a, p, q in res.triplets.tolist()}
    assert rows[(0, 1)] == 3  # the farther of the two negatives


def test_single_identity_batch_gives_zero_loss_and_gradient():
    emb = torch.nn.functional.normalize(torch.randn(4, 8, requires_grad=True), dim=1)
    res = triplet_loss(emb, torch.zeros(4, dtype=torch.long))
    assert len(res.triplets) == 0 and float(res.loss.detach()) == 0.0
    res.loss.backward()  # must not raise


def test_unknown_mining_is_rejected():
    emb, labels = _batch(0)
    with pytest.raises(ValueError, match="mining"):
        select_triplets(torch.tensor(emb), torch.tensor(labels), MARGIN, "random")
