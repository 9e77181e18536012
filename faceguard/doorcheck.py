"""The door check, without any UI: frame → faces → gallery match → decision → door → log.

One `DoorCheck` runs in one thread (the UI's worker thread, or `faceguard door --headless`);
it owns the matcher built from the gallery, the Decider's per-face tracks and the asynchronous
door output. The UI only paints the `FrameReport`s it returns.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faceguard.access.challenge import TargetPath
from faceguard.access.decide import Decider
from faceguard.access.door import AsyncDoor, DoorOutput, DoorResult, make_door
from faceguard.access.records import DENIED, GRANTED, Decision, TrackState, TrackStatus, as_box
from faceguard.access.track import distinct_faces
from faceguard.camera import Frame
from faceguard.errors import FaceGuardError
from faceguard.gallery.events import EventLog
from faceguard.gallery.match import Matcher, MatchResult
from faceguard.gallery.recognise import gallery_matcher
from faceguard.gallery.store import Gallery
from faceguard.gallery.suspension import GallerySuspensions
from faceguard.instance import claim_data_folder
from faceguard.settings import Settings
from faceguard.vision.pipeline import FacePipeline

log = logging.getLogger(__name__)

SNAPSHOT_MARGIN = 0.3  # face crop for the access log: box plus 30 % on every side
RETENTION_EVERY_S = 24 * 3600  # old access-log entries are dropped at start and then daily


@dataclass(frozen=True)
class FaceReport:
    """One face in one frame, as the window paints it."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    name: str | None            # accepted person this frame, None = unknown
    employee_id: str | None
    distance: float             # to the nearest enrolled person (inf: empty gallery)
    threshold: float
    state: TrackState           # Decider's track state: looking | recognising | granted | ...
    status: str                 # e.g. "recognising Ana 2/3"
    explanation: str            # e.g. "Ana: distance 0.08 ≤ threshold 0.11"
    direction: str | None = None    # the photo check's challenge: the dot's move now (challenge.DIRECTIONS)
    target: TargetPath | None = None    # ... and the dot's whole path (frame times), for the marker


@dataclass
class FrameReport:
    frame: Frame
    faces: list[FaceReport]
    decisions: list[Decision]
    infer_ms: float
    door_results: list[tuple[Decision, DoorResult]] = field(default_factory=list)


def face_crop(rgb: np.ndarray, box: Sequence[float] | np.ndarray, margin: float = SNAPSHOT_MARGIN) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    h, w = rgb.shape[:2]
    xa, ya = max(0, int(x1 - mx)), max(0, int(y1 - my))
    xb, yb = min(w, int(math.ceil(x2 + mx))), min(h, int(math.ceil(y2 + my)))
    if xb <= xa or yb <= ya:
        return rgb
    return np.ascontiguousarray(rgb[ya:yb, xa:xb])


class DoorCheck:
    def __init__(self, pipeline: FacePipeline, gallery: Gallery, settings: Settings, *,
                 log_events: bool = True, door: DoorOutput | None = None, seed: int | None = None):
        """``seed`` makes the photo check's challenge directions reproducible (tests,
        benchmarks); None draws them unpredictably."""
        self.pipeline = pipeline
        self.gallery = gallery
        self.settings = settings.validate()
        claim_data_folder(gallery.root)   # one door check per data folder
        self.decider = Decider.from_settings(settings, seed=seed)  # its threshold follows the gallery
        self.decider.photo.attempts.store = GallerySuspensions(gallery)   # a restart keeps a suspension
        self.events = EventLog(gallery) if log_events else None
        self.door = AsyncDoor(door or make_door(settings.door))
        self._pending: list[tuple[Decision, int | None]] = []   # door still opening: (decision, event id)
        self._claim_decisions: list[Decision] = []   # refused claims, reported with the next frame
        self._retention_due = 0.0
        self._enforce_retention()
        self._gallery_version = gallery.db.data_version()
        self.matcher = self._build_matcher()

    def _enforce_retention(self) -> None:
        now = time.monotonic()
        if self.events is None or now < self._retention_due:
            return
        self._retention_due = now + RETENTION_EVERY_S
        try:
            self.events.enforce_retention(self.settings.log_retention_days)
        except FaceGuardError as exc:
            log.error("access-log retention not applied: %s", exc)

    # -- the gallery -----------------------------------------------------------------------
    def _build_matcher(self) -> Matcher:
        """The gallery's matcher by the one rule (``gallery_matcher``); the Decider judges by
        its threshold."""
        # A person whose face data is damaged is left out (named in the log and in `damaged`,
        # which the window shows), not the reason nobody gets in.
        self.damaged: dict[str, str] = {}
        matcher = gallery_matcher(self.gallery, self.pipeline, self.settings.threshold,
                                  mode=self.settings.mode, damaged=self.damaged)
        self.rule, self.threshold = matcher.rule, matcher.threshold
        self.decider.threshold = self.threshold
        return matcher

    def reload_gallery(self) -> None:
        """Call after enrolment or removal so the next frame matches against the new gallery."""
        version = self.gallery.db.data_version()
        self.matcher = self._build_matcher()
        self._gallery_version = version   # only once built: a failed reload is tried again
        self.decider.photo.attempts.refresh()   # face entry may have been resumed

    def _follow_gallery(self) -> None:
        """Another process changed the gallery (an enrolment, a removal from the command line):
        match the next face against the gallery as it is now. Asked every frame, so a revoked
        person is never let in after the change."""
        try:
            if self.gallery.db.data_version() != self._gallery_version:
                log.info("the gallery changed; reloading it")
                self.reload_gallery()
        except FaceGuardError as exc:
            log.error("gallery not reloaded: %s", exc)

    @property
    def gallery_empty(self) -> bool:
        """Nobody (active) is enrolled: the door decides nothing and logs nothing."""
        return len(self.matcher) == 0

    def claim(self, employee_id: str, t: float) -> Decision | None:
        """Verify mode: the next face is checked against this employee only. An unknown or
        inactive id is itself a DENIED (logged, and reported with the next frame); returned."""
        person = self.gallery.person(employee_id)
        if person is not None and person.active:   # (active: enabled and not past valid-until)
            self.decider.claim(person.employee_id, t, name=person.name)   # the id as stored
            return None
        why = "no employee has this id" if person is None else f"{person.name} is not active"
        decision = Decision(t, DENIED, None, None if person is None else person.name, math.inf,
                            self.threshold, 0, f"claimed id '{employee_id}': {why}", -1,
                            (0.0, 0.0, 0.0, 0.0), mode="verify")
        self._log(decision, None, DoorResult(True, "door stays closed"))
        self._claim_decisions.append(decision)
        return decision

    # -- one frame -------------------------------------------------------------------------
    def _match(self, embedding: np.ndarray) -> MatchResult:
        claimed = self.decider.claimed_id
        if claimed is not None:
            return self.matcher.verify(embedding, claimed)
        return self.matcher.nearest(embedding)

    def process(self, frame: Frame) -> FrameReport:
        self._follow_gallery()
        started = time.perf_counter()
        results = self.pipeline.process(frame.rgb)
        # One face found twice by the detector is one face: one track, one decision.
        keep = distinct_faces([r.box for r in results], [r.score for r in results])
        results = [results[i] for i in keep]
        matches = [self._match(r.embedding) for r in results]
        infer_ms = (time.perf_counter() - started) * 1000.0
        refused, self._claim_decisions = self._claim_decisions, []   # logged when refused
        decisions: list[Decision] = []
        statuses: list[TrackStatus | None] = [None] * len(results)
        if not self.gallery_empty:   # empty: no DENIED (and no snapshot) for every passer-by
            decisions = self.decider.update(
                frame.t, [(r.box, m) for r, m in zip(results, matches, strict=True)],
                [r.landmarks for r in results], [r.embedding for r in results])
            statuses = list(self.decider.statuses)
        faces = []
        for r, m, st in zip(results, matches, statuses, strict=True):
            if st is None:
                st_state, st_text, direction, target = TrackState.NO_GALLERY, "nobody is enrolled yet", None, None
            else:
                st_state, st_text, direction, target = st.state, st.text, st.direction, st.target
            # The name painted is this frame's answer only, never a track's earlier one.
            faces.append(FaceReport(
                box=as_box(r.box), landmarks=r.landmarks,
                name=m.name if m.accepted else None,
                employee_id=str(m.id) if m.accepted else None,
                distance=float(m.distance), threshold=self.threshold,
                state=st_state, status=st_text, explanation=m.explain(), direction=direction,
                target=target))
        for d in decisions:
            self._act(d, frame.rgb)
        self._enforce_retention()
        return FrameReport(frame, faces, refused + decisions, infer_ms, self._finish_door())

    def _act(self, decision: Decision, rgb: np.ndarray) -> None:
        """Log the decision now (a slow or hanging door must not lose it), then open the door;
        its result is added to the entry when it arrives."""
        snapshot = face_crop(rgb, decision.box) if self.settings.keep_snapshots else None
        if decision.kind != GRANTED or decision.person_id is None:
            self._log(decision, snapshot, DoorResult(True, "door stays closed" if decision.kind == DENIED else ""))
            return
        try:
            self.gallery.touch_last_seen(str(decision.person_id))
        except FaceGuardError as exc:
            log.warning("last-seen not recorded: %s", exc)
        if not self.door.submit(decision):
            self._log(decision, snapshot, DoorResult(False, "door output busy; not opened"))
            return
        self._pending.append((decision, self._log(decision, snapshot, None)))

    def _finish_door(self) -> list[tuple[Decision, DoorResult]]:
        done = self.door.poll()
        for decision, result in done:
            for k, (d, event_id) in enumerate(self._pending):
                if d is decision:
                    del self._pending[k]
                    self._door_result(decision, event_id, result)
                    break
        return done

    @staticmethod
    def _door_text(result: DoorResult | None) -> str:
        if result is None:
            return "door opening…"
        return ("ok: " if result.ok else "FAILED: ") + result.message

    def _log(self, decision: Decision, snapshot: np.ndarray | None, result: DoorResult | None) -> int | None:
        """One access-log entry; its id (None when not logged). ``result`` None: the door is
        still opening."""
        if result is not None and not result.ok:
            log.warning("door output failed for %s: %s", decision.name, result.message)
        if self.events is None:
            return None
        try:
            return self.events.log_event(
                str(decision.kind), name=decision.name,
                employee_id=None if decision.person_id is None else str(decision.person_id),
                distance=decision.distance if math.isfinite(decision.distance) else None,
                threshold=decision.threshold, reason=decision.reason,
                door_result=self._door_text(result), snapshot_rgb=snapshot, when=time.time(),
                evidence=decision.evidence()).id
        except FaceGuardError as exc:
            # A full disk must not stop the door: the decision stands, the log entry is lost.
            log.error("access log entry not written: %s", exc)
            return None

    def _door_result(self, decision: Decision, event_id: int | None, result: DoorResult) -> None:
        if not result.ok:
            log.warning("door output failed for %s: %s", decision.name, result.message)
        if self.events is None or event_id is None:
            return
        try:
            self.events.set_door_result(event_id, self._door_text(result))
        except FaceGuardError as exc:
            log.error("door result not added to the access log: %s", exc)

    def close(self, timeout: float = 10.0) -> list[tuple[Decision, DoorResult]]:
        """Wait up to ``timeout`` s for door outputs still running and log them; one still
        running after that is logged too, as not known, so no decision is ever lost."""
        self.door.close(timeout)
        done = self._finish_door()
        for decision, event_id in self._pending:
            result = DoorResult(False, f"door result not known: still running {timeout:g} s after "
                                       "the door check stopped")
            self._door_result(decision, event_id, result)
            done.append((decision, result))
        self._pending.clear()
        return done
