"""Triplet loss on unit embeddings and online triplet selection (Schroff et al. 2015).

For a triplet (anchor a, positive p of the same person, negative n of another person) the loss
is [d(a, p) − d(a, n) + α]₊ with d the squared L2 distance. The reported loss is the mean over
the selected triplets (the paper's Σ divided by the number of triplets, so the learning rate
does not depend on the batch size); ``total`` is the Σ itself.

Selection strategies, all on the distances of one P×K batch:

* ``batch-all``: every valid (a, p, n).
* ``semihard``: for every anchor–positive pair, the semi-hard negative
  d(a, p) < d(a, n) < d(a, p) + α closest to the anchor. Fallback when the pair has none:
  the nearest negative that is still farther than the positive (its loss is 0: the pair is
  already separated by the margin); and when every negative is nearer than the positive, the
  farthest of them (the easiest hard negative). Never the hardest one, which the paper found
  to collapse training to f(x) = 0 early on.
* ``hardest``: per anchor, its farthest positive and nearest negative ("batch hard").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MININGS = ("semihard", "batch-all", "hardest")


@dataclass
class TripletResult:
    loss: torch.Tensor        # scalar, mean over the selected triplets (0 when there are none)
    total: torch.Tensor       # scalar, the sum
    triplets: torch.Tensor    # [T, 3] long: anchor, positive, negative indices
    losses: torch.Tensor      # [T] per-triplet loss values
    active_fraction: float    # share of selected triplets with a loss > 0
    semihard_fraction: float  # share of selected triplets inside the semi-hard band


def pairwise_sq_dist(emb: torch.Tensor) -> torch.Tensor:
    """[N, D] → [N, N] squared L2 distances (differences, not the Gram shortcut, so that the
    gradient stays exact for near-identical embeddings)."""
    diff = emb[:, None, :] - emb[None, :, :]
    return (diff * diff).sum(-1)


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def select_triplets(dist: torch.Tensor, labels: torch.Tensor, margin: float,
                    mining: str) -> torch.Tensor:
    """[T, 3] long tensor of (anchor, positive, negative) indices for the given strategy."""
    dist = dist.detach()
    pos, neg = _masks(labels)
    if mining == "batch-all":
        return torch.nonzero(pos[:, :, None] & neg[:, None, :])
    if mining == "hardest":
        anchors = torch.nonzero(pos.any(1) & neg.any(1)).flatten()
        d = dist[anchors]
        p = torch.where(pos[anchors], d, torch.full_like(d, -1.0)).argmax(1)
        n = torch.where(neg[anchors], d, torch.full_like(d, float("inf"))).argmin(1)
        return torch.stack([anchors, p, n], 1)
    if mining == "semihard":
        ap = torch.nonzero(pos)
        ap = ap[neg[ap[:, 0]].any(1)]  # anchors with at least one negative in the batch
        a, p = ap[:, 0], ap[:, 1]
        d_an = dist[a]                               # [T, N]
        d_ap = dist[a, p][:, None]                   # [T, 1]
        is_neg = neg[a]
        farther = is_neg & (d_an > d_ap)
        inf = torch.full_like(d_an, float("inf"))
        nearest_farther = torch.where(farther, d_an, inf).argmin(1)
        farthest = torch.where(is_neg, d_an, -inf).argmax(1)
        n = torch.where(farther.any(1), nearest_farther, farthest)
        return torch.stack([a, p, n], 1)
    raise ValueError(f"unknown mining '{mining}', expected one of {MININGS}")


def triplet_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float = 0.2,
                 mining: str = "semihard") -> TripletResult:
    """Select triplets in the batch and compute the loss; `emb` must be unit vectors."""
    dist = pairwise_sq_dist(emb)
    trip = select_triplets(dist, labels, margin, mining)
    if len(trip) == 0:
        zero = emb.sum() * 0.0  # keeps the graph connected so backward() still works
        return TripletResult(zero, zero, trip, emb.new_zeros(0), 0.0, 0.0)
    d_ap = dist[trip[:, 0], trip[:, 1]]
    d_an = dist[trip[:, 0], trip[:, 2]]
    losses = torch.clamp(d_ap - d_an + margin, min=0.0)
    band = (d_an > d_ap) & (d_an < d_ap + margin)
    return TripletResult(
        loss=losses.mean(),
        total=losses.sum(),
        triplets=trip,
        losses=losses,
        active_fraction=float((losses > 0).float().mean()),
        semihard_fraction=float(band.float().mean()),
    )
