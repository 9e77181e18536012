"""Open-set search of a probe embedding against the gallery (numpy only).

Embeddings are float32 unit vectors; distances are squared L2 in [0, 4]. For unit vectors
``||q - g||² = ||q||² + ||g||² - 2 q·g = 2 - 2 q·g``, so one matrix-vector product scores the
whole gallery and the nearest person is the one with the largest dot product.

Two scoring rules turn the nearest distance ``d1`` and the runner-up distance ``d2`` into a score
that is compared with the threshold (lower is better; accepted when ``score <= threshold``):

* ``"distance"``: ``score = d1``; the plain open-set rule.
* ``"margin"``: ``score = d1 - a·(d2 - d1)`` (``a = 0.5`` by default): a probe that stands well
  ahead of the runner-up is more trustworthy than one sitting between two people. Measured in
  issue 6, this helps large galleries (100+ people) and hurts small ones (20), so
  ``rule_for_gallery_size`` picks the rule per gallery size.

A threshold is only meaningful for the rule it was calibrated with: calibrate with the same rule
the door uses.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from faceguard.errors import GalleryError

RULES = ("distance", "margin")
DEFAULT_MARGIN_WEIGHT = 0.5
# Gallery size from which the margin rule is used: measured on the dev set with 200 random
# galleries per size (`faceguard calibrate --curve`), the margin rule loses at 20 people and
# wins from 100 on, as on issue 6's held-out set. The shipped manifest carries the same value.
DEFAULT_MARGIN_MIN_GALLERY = 100
# A single probe is scored in blocks of this many rows. One big matrix-vector product lets
# OpenBLAS split it over threads that spin-wait for each other; on a busy 2-core machine (the
# camera and the networks run at the same time) that turned 0.3 ms into 12-16 ms for 10,000
# people. Blocks this small stay on the calling thread and in cache, so the time is predictable.
_BLOCK_ROWS = 1024
# Rows further than this from unit length mean the caller mixed in non-normalised vectors.
_UNIT_TOLERANCE = 1e-3


def open_set_score(d1, d2, rule: str = "distance", weight: float = DEFAULT_MARGIN_WEIGHT):
    """The score compared with the threshold (scalars or arrays; lower = more alike).

    "distance": d1. "margin": d1 − weight·(d2 − d1), and d1 where there is no runner-up.
    """
    if rule == "distance":
        return d1
    if rule == "margin":
        return np.where(np.isfinite(d2), d1 - weight * (d2 - d1), d1)
    raise GalleryError(f"The scoring rule must be one of {', '.join(RULES)}, not '{rule}'.")


def rule_for_gallery_size(n: int, min_gallery_for_margin: int = DEFAULT_MARGIN_MIN_GALLERY) -> str:
    """The scoring rule for a gallery of ``n`` people: "margin" from the cut-over on, else
    "distance" (with fewer than two people there is no runner-up, so always "distance")."""
    return "margin" if n >= max(2, min_gallery_for_margin) else "distance"


@dataclass(frozen=True)
class MatchResult:
    """The outcome of one probe. ``index``/``id``/``name`` name the nearest gallery entry even
    when it is rejected (``accepted`` False), so a stranger's explanation can say who was nearest.
    Missing values (empty gallery, no runner-up) are ``None`` / ``math.inf``."""

    index: int | None
    id: Hashable | None
    name: str | None
    distance: float                  # d1, squared L2 to the nearest entry; inf when none
    runner_up_index: int | None
    runner_up_id: Hashable | None
    runner_up_distance: float        # d2; inf when the gallery holds fewer than two entries
    score: float                     # what the threshold is compared with (see the rule)
    threshold: float
    rule: str
    accepted: bool

    @property
    def margin(self) -> float:
        """How far the runner-up stands behind the nearest entry (d2 - d1); inf when none."""
        return self.runner_up_distance - self.distance

    @property
    def person(self) -> Hashable | None:
        """The recognised person's id, or None for a stranger."""
        return self.id if self.accepted else None

    @property
    def label(self) -> str:
        """How to call the nearest entry in text: its name, else its id."""
        return self.name if self.name else str(self.id)

    def explain_unnamed(self) -> str:
        """The frame's explanation without the nearest person's name (the face may still need
        a PIN, or is a stranger's: nobody learns whom they resemble)."""
        return f"distance {self.distance:.2f} to the nearest enrolled face"

    def explain(self) -> str:
        """One line for the door window and the log, with the numbers that decided it."""
        if self.index is None:
            return "stranger: the gallery is empty"
        if self.rule == "margin" and math.isfinite(self.runner_up_distance):
            detail = (f"score {self.score:.2f} (distance {self.distance:.2f}, "
                      f"runner-up at {self.runner_up_distance:.2f})")
            if self.accepted:
                return f"{self.label}: {detail} ≤ threshold {self.threshold:.2f}"
            return f"stranger: nearest {self.label} with {detail} > {self.threshold:.2f}"
        if self.accepted:
            return f"{self.label}: distance {self.distance:.2f} ≤ threshold {self.threshold:.2f}"
        return f"stranger: nearest {self.label} at {self.distance:.2f} > {self.threshold:.2f}"


class Matcher:
    """Nearest-person search over a fixed gallery matrix.

    ``ids`` identify the people (the door's ``{employee_id}``: pass employee ids where possible),
    ``matrix`` holds one unit embedding per row in the same order, ``names`` (optional) are shown
    in explanations. ``rule`` is "distance", "margin" or "auto" (= ``rule_for_gallery_size``).
    Build a new Matcher when the gallery changes; construction copies nothing it need not.
    """

    def __init__(
        self,
        ids: Sequence[Hashable],
        matrix: np.ndarray,
        threshold: float,
        rule: str = "distance",
        *,
        names: Sequence[str] | None = None,
        margin_weight: float = DEFAULT_MARGIN_WEIGHT,
        min_gallery_for_margin: int = DEFAULT_MARGIN_MIN_GALLERY,
        dim: int | None = None,
        templates: Mapping[Hashable, np.ndarray] | None = None,
    ):
        ids = list(ids)
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.size == 0:
            matrix = matrix.reshape(0, dim or (matrix.shape[-1] if matrix.ndim == 2 else 0))
        if matrix.ndim != 2:
            raise GalleryError(f"The gallery matrix must have one embedding per row; got shape {matrix.shape}.")
        if len(ids) != matrix.shape[0]:
            raise GalleryError(f"The gallery has {len(ids)} ids but {matrix.shape[0]} embeddings.")
        if len(set(ids)) != len(ids):
            raise GalleryError("The gallery lists the same person id more than once.")
        if names is not None and len(names) != len(ids):
            raise GalleryError(f"The gallery has {len(ids)} ids but {len(names)} names.")
        if len(ids):
            norms = np.linalg.norm(matrix, axis=1)
            bad = np.flatnonzero(np.abs(norms - 1.0) > _UNIT_TOLERANCE)
            if bad.size:
                raise GalleryError(
                    f"The embedding of '{ids[bad[0]]}' is not unit length (norm {norms[bad[0]]:.3f}); "
                    "re-embed the gallery.")
        if not (math.isfinite(threshold) and 0.0 < threshold < 4.0):
            raise GalleryError(f"The threshold must be a squared L2 distance between 0 and 4, not {threshold}.")
        if rule == "auto":
            rule = rule_for_gallery_size(len(ids), min_gallery_for_margin)
        if rule not in RULES:
            raise GalleryError(f"The scoring rule must be one of {', '.join(RULES)} or auto, not '{rule}'.")
        self.ids = ids
        self.names = list(names) if names is not None else None
        self.matrix = np.ascontiguousarray(matrix)
        self.threshold = float(threshold)
        self.rule = rule
        self.margin_weight = float(margin_weight)
        self._row = {pid: i for i, pid in enumerate(ids)}
        self._extra_owner, self._extra = self._templates(templates or {})

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    # -- search ----------------------------------------------------------------------------
    def search(self, query: np.ndarray) -> MatchResult | list[MatchResult]:
        """Nearest person for a [D] probe (→ one MatchResult) or each of [Q, D] probes (→ list)."""
        q = self._check_query(query)
        single = q.ndim == 1
        q2 = q[None, :] if single else q
        n = len(self.ids)
        if n == 0:
            results = [self._result(None, math.inf, None, math.inf) for _ in range(q2.shape[0])]
            return results[0] if single else results
        if n == 1:                                                  # no runner-up
            d1 = np.maximum(2.0 - 2.0 * self._with_templates(q2, q2 @ self.matrix[:1].T)[:, 0], 0.0)
            results = [self._result(0, float(d), None, math.inf) for d in d1]
            return results[0] if single else results
        if single:
            # Two argmax passes beat a partition of the whole row (~15 µs vs ~300 µs at 100k).
            dots = self._with_templates(q, self._dots_one(q))
            i1 = int(np.argmax(dots))
            best = dots[i1]
            dots[i1] = -np.inf                                      # our own buffer
            i2 = int(np.argmax(dots))
            top2 = np.array([[i1, i2]])
            top_dots = np.array([[best, dots[i2]]], dtype=np.float32)
        else:
            dots = self._with_templates(q2, q2 @ self.matrix.T)     # [Q, N]
            # Top 2 by dot product without sorting whole rows.
            top2 = np.argpartition(dots, n - 2, axis=1)[:, n - 2:]  # [Q, 2], unordered
            rows = np.arange(q2.shape[0])[:, None]
            top_dots = dots[rows, top2]
            order = np.argsort(-top_dots, axis=1)
            top2 = np.take_along_axis(top2, order, axis=1)
            top_dots = np.take_along_axis(top_dots, order, axis=1)
        dist = np.maximum(2.0 - 2.0 * top_dots, 0.0)                # rounding can dip below 0
        results = [self._result(int(top2[k, 0]), float(dist[k, 0]), int(top2[k, 1]), float(dist[k, 1]))
                   for k in range(q2.shape[0])]
        return results[0] if single else results

    def nearest(self, query: np.ndarray) -> MatchResult:
        """``search`` for one [D] probe, typed as the one MatchResult it returns."""
        if np.ndim(query) != 1:
            raise GalleryError(f"One probe is a [D] embedding; got shape {np.shape(query)}.")
        result = self.search(query)
        assert isinstance(result, MatchResult)   # search gives one result for one probe
        return result

    def verify(self, query: np.ndarray, person_id: Hashable) -> MatchResult:
        """1:1 check of a [D] probe against one claimed person (always the distance rule: a
        claim has no runner-up). Raises GalleryError when the person is not in the gallery."""
        q = self._check_query(query)
        if q.ndim != 1:
            raise GalleryError("verify() takes one embedding, not a batch.")
        row = self._row.get(person_id)
        if row is None:
            raise GalleryError(f"No person with id '{person_id}' is enrolled.")
        dot = float(q @ self.matrix[row])
        if self._extra is not None and np.any(mine := self._extra_owner == row):
            dot = max(dot, float(np.max(self._extra[mine] @ q)))   # the person's nearest template
        d = max(2.0 - 2.0 * dot, 0.0)
        return MatchResult(
            index=row, id=person_id, name=self._name(row), distance=d,
            runner_up_index=None, runner_up_id=None, runner_up_distance=math.inf,
            score=d, threshold=self.threshold, rule="distance", accepted=d <= self.threshold)

    # -- helpers ---------------------------------------------------------------------------
    def _templates(self, templates: Mapping[Hashable, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(owner row of each extra vector, the vectors [T, D]) from ``templates``: a person's
        learned templates (issue 21) beside their enrolment row. A person's distance is then the
        nearest of their vectors; size the threshold by all of them (more vectors, more chances)."""
        owner, vecs = [], []
        for pid, block in templates.items():
            row = self._row.get(pid)
            if row is None:
                raise GalleryError(f"A template belongs to '{pid}', who is not in the gallery.")
            for v in np.asarray(block, np.float32).reshape(-1, self.dim):
                if abs(float(np.linalg.norm(v)) - 1.0) > _UNIT_TOLERANCE:
                    raise GalleryError(f"A template of '{pid}' is not unit length; re-embed the gallery.")
                owner.append(row)
                vecs.append(v)
        if not vecs:
            return np.zeros(0, np.intp), None
        return np.asarray(owner, np.intp), np.ascontiguousarray(np.stack(vecs))

    def _with_templates(self, q: np.ndarray, dots: np.ndarray) -> np.ndarray:
        """``dots`` (q · each person's enrolment row; [N] or [Q, N], changed in place) raised to
        q · the person's nearest template where that is nearer."""
        if self._extra is None:
            return dots
        extra = q @ self._extra.T                                   # [T] or [Q, T]
        np.maximum.at(dots.T, self._extra_owner, extra.T)            # per person: the nearest vector
        return dots

    def _dots_one(self, q: np.ndarray) -> np.ndarray:
        """q · every gallery row, block by block (see _BLOCK_ROWS)."""
        n = len(self.ids)
        if n <= _BLOCK_ROWS:
            return self.matrix @ q
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, _BLOCK_ROWS):
            stop = min(start + _BLOCK_ROWS, n)
            np.dot(self.matrix[start:stop], q, out=out[start:stop])
        return out

    def _check_query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32)
        # An empty gallery built without a known dimension takes probes of any size.
        dim_ok = q.shape[-1] == self.dim or (self.dim == 0 and not self.ids) if q.ndim else False
        if q.ndim not in (1, 2) or not dim_ok:
            raise GalleryError(
                f"The probe embedding has shape {q.shape}, but the gallery holds {self.dim}-value "
                "embeddings; the gallery was made with a different model and must be re-embedded.")
        if not np.isfinite(q).all():
            raise GalleryError("The probe embedding contains NaN or infinite values.")
        return q

    def _name(self, row: int | None) -> str | None:
        return None if row is None or self.names is None else self.names[row]

    def _score(self, d1: float, d2: float) -> float:
        return float(open_set_score(d1, d2, self.rule, self.margin_weight))

    def _result(self, i1: int | None, d1: float, i2: int | None, d2: float) -> MatchResult:
        score = self._score(d1, d2)
        return MatchResult(
            index=i1, id=None if i1 is None else self.ids[i1], name=self._name(i1), distance=d1,
            runner_up_index=i2, runner_up_id=None if i2 is None else self.ids[i2],
            runner_up_distance=d2, score=score, threshold=self.threshold, rule=self.rule,
            accepted=i1 is not None and score <= self.threshold)
