"""Embed what decides: the door's mirror (flip) pass only on the faces whose frame can go into
a decision.

A flip pipeline embeds each face together with its mirror image and averages the two: twice
the network's work for one face, for a vector that changes a nearest distance by at most 0.026
on the dev data (benchmarks/flip_at_door.py: median 0.005). The door still judges every face
every frame, but first with the plain pass; the mirror pass is added only where its answer
could differ or is kept:

* the face votes for a person on a track not yet decided (``Decider.deciding``): its
  embedding may be fused into the visit's zone score (docs/decision-rule.md), which the
  gallery's flip vectors were calibrated for;
* its score lies within ``FLIP_MARGIN`` of the threshold, on either side: there the mirror
  pass could turn the vote.

Everywhere else (strangers far from everyone, faces of decided tracks) the vote is the one the
flip pass would give, and the plain vector is never fused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from faceguard.access.decide import Decider
from faceguard.gallery.match import MatchResult
from faceguard.vision.pipeline import FacePipeline, FaceResult

# The largest change the mirror pass made to a nearest distance on the dev data was 0.026; the
# margin rule's score d1 − 0.5·(d2 − d1) moves by at most (1 + 2·0.5) times that (0.052).
FLIP_MARGIN = 0.06


def near_threshold(result: MatchResult, threshold: float | None = None) -> bool:
    """Whether the mirror pass could change this result's vote (``threshold``: the one the
    votes use, None: the matcher's)."""
    bar = result.threshold if threshold is None else threshold
    return result.index is not None and abs(result.score - bar) <= FLIP_MARGIN


def match_deciding(pipeline: FacePipeline, results: Sequence[FaceResult],
                   match: Callable[[np.ndarray], MatchResult],
                   decider: Decider) -> tuple[list[FaceResult], list[MatchResult]]:
    """Match every face; faces embedded plain (``FaceResult.complete`` False) that decide or lie
    near the threshold the ``decider`` votes with get the mirror pass and are matched again."""
    matches = [match(r.embedding) for r in results]
    if all(r.complete for r in results):
        return list(results), matches
    voting = decider.deciding([r.box for r in results], matches)
    which = [v or near_threshold(m, decider.threshold) for v, m in zip(voting, matches, strict=True)]
    done = pipeline.with_flip(results, which)
    return done, [match(d.embedding) if d is not r else m
                  for d, r, m in zip(done, results, matches, strict=True)]
