"""The door check, without any UI: frame → faces → gallery match → decision → door → log.

One `DoorCheck` runs in one thread (the UI's worker, or `faceguard door --headless`); it owns the
gallery's matcher, the Decider's tracks, the door output and the building's outputs (outputs/).
The UI only paints the `FrameReport`s it returns."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from faceguard.access.challenge import TargetPath
from faceguard.access.decide import Decider
from faceguard.access.door import AsyncDoor, DoorOutput, DoorResult, make_door
from faceguard.access.lazy_flip import match_deciding
from faceguard.access.records import DENIED, GRANTED, PIN, Decision, TrackState, TrackStatus, as_box
from faceguard.access.track import distinct_faces
from faceguard.camera import Frame
from faceguard.errors import FaceGuardError
from faceguard.gallery import pin_backoff, pins, reserve, templates
from faceguard.gallery.credentials import get_credential
from faceguard.gallery.events import EventLog
from faceguard.gallery.ids import printable
from faceguard.gallery.match import Matcher, MatchResult
from faceguard.gallery.recognise import gallery_matcher, visit_zones, zone_thresholds
from faceguard.gallery.store import Gallery
from faceguard.gallery.suspension import GallerySuspensions
from faceguard.instance import claim_data_folder
from faceguard.outputs.hub import Outputs
from faceguard.settings import Settings, load_settings, save_settings
from faceguard.site.stale import stale_reason
from faceguard.vision.guided import GuidedDetector
from faceguard.vision.pipeline import FacePipeline, FaceResult
from faceguard.vision.texture import scorer_for

log = logging.getLogger(__name__)

SNAPSHOT_MARGIN = 0.3  # face crop for the access log: box plus 30 % on every side
RETENTION_EVERY_S = 24 * 3600  # old access-log entries are dropped at start and then daily
WAL_CHECKPOINT_S = 600.0       # the WAL is checkpointed and truncated this often


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
    withheld: bool = False          # matched this frame, name withheld until let in (issue 21)


@dataclass
class FrameReport:
    frame: Frame
    faces: list[FaceReport]
    decisions: list[Decision]
    infer_ms: float
    door_results: list[tuple[Decision, DoorResult]] = field(default_factory=list)
    # Decisions so far whose access-log entry could not be written (a full disk): the window
    # shows it, the JSON line carries it (issue 22 item 10).
    log_lost: int = 0


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
                 log_events: bool = True, door: DoorOutput | None = None, seed: int | None = None,
                 outputs: Outputs | None = None):
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
        self._last_rgb: np.ndarray | None = None
        self.lost_log_entries = 0        # decisions whose log entry could not be written
        self.last_log_error = ""
        self._wal_due = time.monotonic() + WAL_CHECKPOINT_S
        if log_events:
            reserve.ensure(gallery.root)   # disk space held back for the log (item 10)
        self._enforce_retention()
        self._gallery_version = gallery.db.data_version()
        self.matcher = self._build_matcher()
        # The texture signal: evidence inside the photo check, so loaded only while it is on.
        self.texture = scorer_for(pipeline) if self.settings.photo_check else None
        self.decider.texture_threshold = None if self.texture is None else self.texture.threshold
        # Every decision also goes to the building (webhook, MQTT, OSDP), as configured.
        self.face_unlock = settings.face_unlock
        self.outputs = outputs if outputs is not None else Outputs(
            settings, gallery.root, credential_of=self._credential_of)
        self.guide: GuidedDetector | None = None   # made by the first frame (_detect_and_embed)

    def _credential_of(self, employee_id: str) -> str | None:
        try:
            return get_credential(self.gallery, employee_id)
        except FaceGuardError as exc:
            log.error("credential not read: %s", exc)
            return None

    def _enforce_retention(self) -> None:
        now = time.monotonic()
        if now >= self._wal_due:       # the WAL is folded back and truncated: bounded (item 10)
            self._wal_due = now + WAL_CHECKPOINT_S
            self.gallery.db.checkpoint()
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
                                  mode=self.settings.mode, damaged=self.damaged, templates=self.settings.learn_templates)
        self.rule, self.threshold = matcher.rule, matcher.threshold
        self.decider.threshold = self.threshold
        self._use_zones(matcher)
        self._next_expiry = self.gallery.next_expiry()   # issue 22 item 3: rebuilt when it passes
        return matcher

    def _use_zones(self, matcher: Matcher) -> None:
        """The face zones and second-factor settings for the identify rule (issue 21)."""
        rule = self.decider.identify
        rule.zones = visit_zones(self.gallery, self.pipeline, matcher, self.settings.threshold,
                                 self.damaged, learned=self.settings.learn_templates)
        rule.require_pin = self.settings.require_pin
        rule.factor.badge_accepted, rule.factor.store = self.settings.badge_as_factor, pin_backoff.GalleryPinBackoff(self.gallery)
        # A claim is one comparison: the zones of one person (with their templates, the most any has).
        size = max((len(v) for v in rule.zones.vectors.values()), default=1)
        strict, normal = zone_thresholds(self.pipeline, size, self.settings.threshold)
        self.decider.verify.zones = replace(rule.zones, strict=strict, normal=normal, size=size)
        self.decider.verify.require_pin = self.settings.require_pin

    def waiting_for_pin(self) -> list[int]:
        """Track ids of faces waiting for a PIN, oldest first (the keypad answers the first)."""
        return self.decider.identify.factor.waiting()

    def answer_pin(self, track_id: int, typed: str | None, t: float) -> Decision | None:
        """What was typed on the keypad (or stdin, or a badge reader) for the face waiting on
        ``track_id``, at frame time ``t``: its final decision, logged and acted on like any
        other (a GRANTED opens the door); None when no face waits there. The typed text is
        never logged or kept."""
        answered = self.decider.answer_factor(
            track_id, typed, t, lambda person, pin: pins.verify_pin(self.gallery, str(person), pin))
        if answered is None:
            return None
        decision, asked = answered
        decision = self._stale_veto(decision)
        if decision.kind == GRANTED and decision.factor == "pin" and asked.fused is not None:
            self._learn(decision, asked.fused)
        self._act(decision, self._last_rgb if self._last_rgb is not None else np.zeros((1, 1, 3), np.uint8))
        return decision

    def _learn(self, decision: Decision, fused: np.ndarray) -> None:
        """A PIN-confirmed visit with the photo check passed: its fused embedding as a learned
        template, when anchored within normal(1) of the enrolment photo (templates.py)."""
        if not (self.settings.learn_templates and self.settings.photo_check) or decision.zone != "grey":
            return
        anchor = zone_thresholds(self.pipeline, 1)[1]
        crop = None if self._last_rgb is None else face_crop(self._last_rgb, decision.box)
        try:
            templates.add_template(self.gallery, str(decision.person_id), fused, self.pipeline.model_id,
                                   anchor, crop)
        except FaceGuardError as exc:
            log.warning("learned template not stored: %s", exc)

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
            elif time.time() >= self._next_expiry:
                log.info("an end date passed; reloading the gallery")
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
                            self.threshold, 0, f"claimed id '{printable(employee_id)}': {why}", -1,
                            (0.0, 0.0, 0.0, 0.0), mode="verify")
        self._log(decision, None, DoorResult(True, "door stays closed"))
        self.outputs.publish(decision)
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
        results = self._detect_and_embed(frame.rgb)
        # One face found twice by the detector is one face: one track, one decision.
        keep = distinct_faces([r.box for r in results], [r.score for r in results])
        results = [results[i] for i in keep]
        results, matches = match_deciding(self.pipeline, results, self._match, self.decider)
        # texture scores only for faces being decided, only while the photo check is on
        textures = (self.texture.scores(frame.rgb, [r.box for r in results],
                                        self.decider.deciding([r.box for r in results], matches))
                    if self.texture is not None and self.decider.photo_check else None)
        infer_ms = (time.perf_counter() - started) * 1000.0
        refused, self._claim_decisions = self._claim_decisions, []   # logged when refused
        decisions: list[Decision] = []
        statuses: list[TrackStatus | None] = [None] * len(results)
        outside = door_commands(self)   # Home Assistant's switch and lock, since the last frame
        if not self.gallery_empty and self.face_unlock:   # empty: no DENIED for every passer-by
            decisions = self.decider.update(
                frame.t, [(r.box, m) for r, m in zip(results, matches, strict=True)],
                [r.landmarks for r in results], [r.embedding for r in results], textures)
            statuses = list(self.decider.statuses)
        faces = []
        for r, m, st in zip(results, matches, statuses, strict=True):
            if st is None and not self.face_unlock:
                st_state, st_text, direction, target = TrackState.NO_GALLERY, FACE_UNLOCK_OFF, None, None
            elif st is None:
                st_state, st_text, direction, target = TrackState.NO_GALLERY, "nobody is enrolled yet", None, None
            else:
                st_state, st_text, direction, target = st.state, st.text, st.direction, st.target
            # The name painted: this frame's answer, unless it may need a PIN (issue 21) and is not let in.
            let_in = st_state in (TrackState.GRANTED, TrackState.COOLDOWN)
            hide = not let_in and (self.decider.identify.unnamed(m.id if m.accepted else None, m.distance)
                                   or (not m.accepted and self.decider.identify.zones is not None))
            faces.append(FaceReport(
                box=as_box(r.box), landmarks=r.landmarks,
                name=m.name if m.accepted and not hide else None,
                employee_id=str(m.id) if m.accepted and not hide else None,
                distance=float(m.distance), threshold=self.threshold, state=st_state, status=st_text,
                explanation=m.explain_unnamed() if hide else m.explain(), direction=direction,
                target=target, withheld=hide and m.accepted))
        self._last_rgb = frame.rgb
        decisions = [self._stale_veto(d) for d in decisions]
        for d in decisions:
            self._act(d, frame.rgb)
        self._enforce_retention()
        return FrameReport(frame, faces, refused + outside + decisions, infer_ms, self._finish_door(),
                           self.lost_log_entries)

    def _stale_veto(self, decision: Decision) -> Decision:
        """A site door whose copy is older than ``site_max_stale_s`` lets nobody in (item 9)."""
        why = stale_reason(self.gallery.root, self.settings.site_max_stale_s) if decision.kind == GRANTED else None
        if why is None:
            return decision
        return replace(decision, kind=DENIED, person_id=None, name=None, reason=why)

    def _detect_and_embed(self, rgb: np.ndarray) -> list[FaceResult]:
        """A camera's frames are one stream (detection follows faces); test stand-ins: whole frames."""
        if not isinstance(self.pipeline, FacePipeline):
            return self.pipeline.process(rgb)
        if self.guide is None:
            self.guide = self.pipeline.guided(self.settings.full_detect_every, self.settings.min_face_px)
        plain = self.settings.lazy_flip      # the mirror pass later, where it decides (lazy_flip)
        return self.pipeline.process(rgb, guide=self.guide, tracks=self._followed(), plain=plain)

    def _followed(self) -> list[np.ndarray]:
        """Where the faces the Decider follows should be in this frame (those seen last frame:
        a track already missed has left, or the full search finds it again)."""
        return [t.predicted() for t in self.decider.tracker.tracks.values() if t.missed == 0]

    def _act(self, decision: Decision, rgb: np.ndarray) -> None:
        """Log the decision now (a slow or hanging door must not lose it), then open the door;
        its result is added to the entry when it arrives."""
        if decision.kind == PIN:          # not final: the keypad answers (answer_pin)
            self.outputs.publish(decision)   # "PIN asked" names no one and carries no face
            return
        snapshot = face_crop(rgb, decision.box) if self.settings.keep_snapshots else None
        self.outputs.publish(decision, snapshot)
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
        for last_try in (False, True):
            try:
                return self.events.log_event(
                    str(decision.kind), name=decision.name,
                    employee_id=None if decision.person_id is None else str(decision.person_id),
                    distance=decision.distance if math.isfinite(decision.distance) else None,
                    threshold=decision.threshold, reason=decision.reason,
                    door_result=self._door_text(result), snapshot_rgb=snapshot, when=time.time(),
                    evidence=decision.evidence()).id
            except FaceGuardError as exc:
                if not last_try and reserve.release(self.gallery.root):
                    self.gallery.db.checkpoint()      # the reserve's space for this entry
                    snapshot = None
                    continue
                # A full disk must not stop the door: the decision stands, the entry is lost,
                # and that is counted (the JSON line, the window and the exit code say so).
                self.lost_log_entries += 1
                self.last_log_error = str(exc)
                log.error("access log entry not written: %s", exc)
                return None
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
        self.outputs.close()
        done = self._finish_door()
        for decision, event_id in self._pending:
            result = DoorResult(False, f"door result not known: still running {timeout:g} s after "
                                       "the door check stopped")
            self._door_result(decision, event_id, result)
            done.append((decision, result))
        self._pending.clear()
        return done

    def remote_unlock(self, source: str) -> Decision:
        """Open the door on a remote command (Home Assistant's lock): logged with its source,
        sent to the outputs like any decision. Called from the frame thread."""
        decision = Decision(time.monotonic(), GRANTED, None, "remote unlock", math.inf, self.threshold, 0,
                            f"remote unlock from {source}", -1, (0.0, 0.0, 0.0, 0.0))
        self.outputs.publish(decision)
        if self.door.submit(decision):
            self._pending.append((decision, self._log(decision, None, None)))
        else:
            self._log(decision, None, DoorResult(False, "door output busy; not opened"))
        return decision

    def set_face_unlock(self, on: bool) -> None:
        """Face unlock on or off (off: nights, holidays): remembered in the settings."""
        self.face_unlock = self.settings.face_unlock = bool(on)
        log.info("face unlock %s", "on" if on else "off")
        try:
            saved = load_settings()
            saved.face_unlock = bool(on)
            save_settings(saved)
        except FaceGuardError as exc:
            log.error("face unlock not remembered: %s", exc)
        self.outputs.face_unlock_changed(bool(on))


FACE_UNLOCK_OFF = "face unlock is off: the door decides nothing"


def door_commands(check: DoorCheck) -> list[Decision]:
    """Apply what came from outside since the last frame; the remote unlocks' decisions."""
    out = []
    for command in check.outputs.take_commands():
        if command.what == "face_unlock":
            check.set_face_unlock(bool(command.value))
        elif command.what == "unlock":
            out.append(check.remote_unlock(str(command.value)))
    return out

