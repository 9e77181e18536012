"""The one rule for "who is this face": the gallery's matcher, with the scoring rule and
threshold sized by the people it compares against.

The door, `faceguard identify`, and the enrolment duplicate check (dialog and CLI) all build
their Matcher here, so one face gets one answer everywhere. The threshold follows the number of
ACTIVE people (each one is another chance for a stranger to match); a threshold the user set
in Settings replaces the calibrated one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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
                    damaged: dict[str, str] | None = None) -> Matcher:
    """The Matcher over the gallery's embeddings of the pipeline's model.

    ``mode="verify"`` is one comparison with a claimed person, so it takes the one-person
    threshold whatever the gallery size. ``include_inactive`` (the enrolment duplicate check:
    an inactive person is still that person) searches everyone but sizes the rule and threshold
    by the active people, as the door does. ``damaged`` (the door): people whose stored face
    data cannot be read are left out and listed there instead of failing the whole gallery.
    """
    bring_up_to_date(gallery, pipeline)
    everyone = gallery.people(active_only=False)
    active = sum(p.active for p in everyone)   # sizes the rule; reads no face data
    ids, matrix = gallery.embeddings(pipeline.model_id, active_only=not include_inactive, damaged=damaged)
    if mode == "verify":
        rule, threshold = "distance", pipeline.threshold_for(1, threshold_setting)
    else:
        rule, threshold = pipeline.scoring_for(max(1, active), threshold_setting)
    names = {p.employee_id: p.name for p in everyone}
    return Matcher(ids, matrix, threshold, rule=rule, names=[names.get(i, i) for i in ids],
                   dim=pipeline.embedder.spec.embedding_size)
