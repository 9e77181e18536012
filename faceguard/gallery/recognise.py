"""The one rule for "who is this face": the gallery's matcher, with the scoring rule and
threshold sized by the people it compares against.

The door, `faceguard identify`, and the enrolment duplicate check (dialog and CLI) all build
their Matcher here, so one face gets one answer everywhere. The threshold follows the number of
ACTIVE people (each one is another chance for a stranger to match); a threshold the user set
in Settings replaces the calibrated one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from faceguard.gallery.factor_schema import DEFAULT_AUTH_MODE
from faceguard.gallery.match import Matcher

if TYPE_CHECKING:   # types only: the callers hand in the objects
    from faceguard.gallery.store import Gallery
    from faceguard.vision.pipeline import FacePipeline

log = logging.getLogger(__name__)


def bring_up_to_date(gallery: Gallery, pipeline: FacePipeline) -> dict[str, str]:
    """Re-embed, from their stored photos, the people another model embedded (never compare
    across models). Returns {employee id: problem} for those that failed (logged too)."""
    if not gallery.stale_count(pipeline.model_id):
        return {}
    problems = gallery.reembed(pipeline)
    for employee_id, problem in problems.items():
        log.warning("re-embedding %s failed: %s", employee_id, problem)
    return problems


def gallery_matcher(gallery: Gallery, pipeline: FacePipeline, threshold_setting: float | None = None, *,
                    mode: str = "identify", include_inactive: bool = False,
                    damaged: dict[str, str] | None = None, templates: bool = False) -> Matcher:
    """The Matcher over the gallery's embeddings of the pipeline's model.

    ``mode="verify"`` is one comparison with a claimed person, so it takes the one-person
    threshold whatever the gallery size. ``include_inactive`` (the enrolment duplicate check:
    an inactive person is still that person) searches everyone but sizes the rule and threshold
    by the active people, as the door does. ``damaged`` (the door): people whose stored face
    data cannot be read are left out and listed there instead of failing the whole gallery.
    ``templates`` (the door, learning on): each person's learned templates are matched beside
    their enrolment photo (the nearest of their vectors counts), and the threshold is sized by
    all the vectors (docs/decision-rule.md: more templates, more chances for a stranger).
    """
    bring_up_to_date(gallery, pipeline)
    everyone = gallery.people(active_only=False)
    active = sum(p.active for p in everyone)   # sizes the rule; reads no face data
    ids, matrix = gallery.embeddings(pipeline.model_id, active_only=not include_inactive, damaged=damaged)
    extra = _templates_of(gallery, pipeline, ids, damaged) if templates else {}
    if mode == "verify":   # a claim: the claimed person's vectors, at most one photo + templates
        most = 1 + max((len(v) for v in extra.values()), default=0)
        rule, threshold = "distance", pipeline.threshold_for(most, threshold_setting)
    else:
        rule, threshold = pipeline.scoring_for(max(1, active), threshold_setting)
        if extra and not threshold_setting:
            threshold = pipeline.embedder.spec.threshold_for(max(1, active) + sum(map(len, extra.values())), rule)
    names = {p.employee_id: p.name for p in everyone}
    return Matcher(ids, matrix, threshold, rule=rule, names=[names.get(i, i) for i in ids],
                   dim=pipeline.embedder.spec.embedding_size, templates=extra)


def _templates_of(gallery: Gallery, pipeline: FacePipeline, ids: list, damaged: dict[str, str] | None) -> dict:
    from faceguard.gallery import templates

    return templates.template_vectors(gallery, pipeline.model_id, [str(i) for i in ids], damaged)


# -- the face zone of a visit (issue 21; docs/decision-rule.md "The face zone") -----------------
AT_ONCE, GREY, STRANGER = "at-once", "grey", "stranger"


@dataclass(frozen=True)
class VisitZones:
    """The three zones of a visit for the gallery as loaded: a visit's fused embedding (the
    mean of its deciding frames, re-normalised) is scored against the matched person's
    enrolment embedding and learned templates (the nearest of them), then
    ``score ≤ strict`` → AT_ONCE, ``≤ normal`` → GREY (a second factor), else STRANGER."""

    strict: float
    normal: float
    vectors: dict[str, np.ndarray] = field(default_factory=dict)   # employee id → [k, D]
    modes: dict[str, str] = field(default_factory=dict)            # employee id → auth mode
    size: int = 1                       # gallery vectors the thresholds were sized for

    def score(self, person: Hashable, fused: np.ndarray) -> float:
        vecs = self.vectors.get(str(person))
        if vecs is None or not len(vecs):
            return math.inf
        d = 2.0 - 2.0 * (vecs @ np.asarray(fused, np.float32))
        return float(max(0.0, float(np.min(d))))

    def zone(self, person: Hashable, fused: np.ndarray) -> tuple[str, float]:
        """(zone, score) of a visit matched to ``person``."""
        s = self.score(person, fused)
        return (AT_ONCE if s <= self.strict else GREY if s <= self.normal else STRANGER), s

    def mode(self, person: Hashable) -> str:
        return self.modes.get(str(person), DEFAULT_AUTH_MODE)


def fuse(embeddings: list[np.ndarray]) -> np.ndarray:
    """A visit's embedding: the mean of its deciding frames' embeddings, re-normalised."""
    m = np.mean(np.stack([np.asarray(e, np.float32) for e in embeddings]), axis=0)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


def zone_thresholds(pipeline: FacePipeline, size: int, threshold_setting: float | None = None) -> tuple[float, float]:
    """(strict, normal) per visit for ``size`` gallery vectors (people + templates), from the
    manifest's ``visit_zones``. Without them (a model not calibrated per visit) the normal
    threshold is the per-frame one and strict equals it: no grey zone. A threshold the user set
    replaces normal, and caps strict."""
    spec = pipeline.embedder.spec
    per_frame = pipeline.threshold_for(size)
    normal = spec.threshold_for(size, "visit-normal") if spec.visit_normal_curve else per_frame
    strict = spec.threshold_for(size, "visit-strict") if spec.visit_strict_curve else normal
    if threshold_setting:
        normal = float(threshold_setting)
    return min(strict, normal), normal


def visit_zones(gallery: Gallery, pipeline: FacePipeline, matcher: Matcher,
                threshold_setting: float | None = None, damaged: dict[str, str] | None = None,
                learned: bool = True) -> VisitZones:
    """The zones for the door's matcher: its people's enrolment vectors plus (``learned``)
    their templates; the thresholds sized by all of them."""
    from faceguard.gallery import pins, templates

    ids = [str(i) for i in matcher.ids]
    extra = templates.template_vectors(gallery, pipeline.model_id, ids, damaged) if learned else {}
    vectors = {pid: np.concatenate([matcher.matrix[k:k + 1], extra[pid]]) if pid in extra
               else matcher.matrix[k:k + 1] for k, pid in enumerate(ids)}
    size = max(1, len(ids) + sum(len(v) for v in extra.values()))
    strict, normal = zone_thresholds(pipeline, size, threshold_setting)
    return VisitZones(strict, normal, vectors, pins.auth_modes(gallery), size)
