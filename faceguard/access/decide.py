"""From per-frame matches to door decisions, one tracked face at a time.

The frame loop calls ``Decider.update(t, observations, landmarks, embeddings)`` once per
processed frame with one ``(box, MatchResult)`` per face. Faces are tracked across frames
(``IouTracker``) so that every person's frames are counted on their own track and two people
side by side never lend each other votes. The rules themselves live in identify.py (N of M,
strangers, cool-downs), verify.py (the claim state machine) and photo_gate.py (the photo check).

A track is a person only while its faces are that person. Every frame is judged again, and the
track is split (the face gets a new track id and a fresh decision) when
* the face's embedding jumps from the previous frame's by more than ``same_face_distance``
  (another face now stands there), or
* a decided track shows ``split_frames`` frames in a row that are not the person it was decided
  for (a stranger stepped into a granted employee's place; an employee into a stranger's).
So nobody rides on another face's GRANTED, and an employee queuing behind another is let in
as themselves. The cool-down belongs to the person, not to the place in the picture.

``statuses`` holds one ``TrackStatus`` per visible face after each update, for the UI to paint;
a decided track's status is shown only while the current frame supports it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from faceguard.access.attempts import Attempts
from faceguard.access.identify import IdentifyRule
from faceguard.access.photo_gate import PhotoGate
from faceguard.access.records import (
    DENIED,
    GRANTED,
    MODES,
    Decision,
    TrackState,
    TrackStatus,
    as_box,
)
from faceguard.access.second_factor import Asked
from faceguard.access.texture_vote import TextureVote
from faceguard.access.track import IouTracker, iou_matrix
from faceguard.access.track_state import FaceTrack, StatusBoard, Vote
from faceguard.access.verify import VerifyRule
from faceguard.errors import SettingsError
from faceguard.gallery.match import MatchResult
from faceguard.settings import DEFAULT_MIN_MOTION, Settings, check_confirm_frames, check_range

__all__ = ["DENIED", "GRANTED", "MODES", "Decider", "Decision", "TrackState", "TrackStatus"]

# Squared L2 between the embeddings of one face in consecutive frames: on the shared clip
# (454 consecutive pairs on IoU tracks) median 0.011, 99th percentile 0.10, max 0.22. Two
# different people are usually 0.25-0.5 apart with this model (some pairs less: the mismatch
# rule below catches those by their matches). A larger jump means another face took the place.
SAME_FACE_DISTANCE = 0.25
SPLIT_FRAMES = 2


class Decider:
    def __init__(
        self,
        threshold: float | None = None,
        confirm_frames: int = 3,
        window_frames: int = 5,
        stranger_frames: int = 5,
        cooldown_s: float = 10.0,
        mode: str = "identify",
        *,
        claim_timeout_s: float = 10.0,
        photo_check: bool = False,
        min_motion: float = DEFAULT_MIN_MOTION,
        photo_check_timeout_s: float = 12.0,
        challenge: bool = False,
        seed: int | None = None,
        attempts: Attempts | None = None,
        same_face_distance: float = SAME_FACE_DISTANCE,
        split_frames: int = SPLIT_FRAMES,
        tracker: IouTracker | None = None,
        texture_threshold: float | None = None,
    ):
        """``threshold`` None = trust each MatchResult's own ``accepted``/``threshold``; a value
        re-judges each result's score against it (one threshold for the whole door)."""
        if threshold is not None:
            check_range("threshold", threshold)
        check_range("window_frames", window_frames)
        check_confirm_frames(confirm_frames, window_frames)
        check_range("stranger_frames", stranger_frames)
        check_range("cooldown_s", cooldown_s)
        check_range("claim_timeout_s", claim_timeout_s)
        check_range("photo_check_min_motion", min_motion)
        check_range("photo_check_timeout_s", photo_check_timeout_s)
        if mode not in MODES:
            raise SettingsError(f"Setting 'mode': must be one of {', '.join(MODES)}, not '{mode}'.")
        self.threshold = threshold
        self.window_frames = window_frames
        self.mode = mode
        self.same_face_distance = same_face_distance
        self.split_frames = split_frames
        self.tracker = tracker or IouTracker()
        self.board = StatusBoard()
        self.photo = PhotoGate(photo_check, min_motion, photo_check_timeout_s, self.board,
                               challenge=challenge, seed=seed, attempts=attempts)
        self.identify = IdentifyRule(confirm_frames, stranger_frames, cooldown_s, self.photo, self.board)
        self.verify = VerifyRule(confirm_frames, window_frames, stranger_frames, claim_timeout_s,
                                 self.photo, self.board)
        self.verify.factor = self.identify.factor     # one second factor per door (issue 21)
        self._tracks: dict[int, FaceTrack] = {}
        # The texture vote's threshold (the manifest's; DoorCheck sets it with the scorer).
        self.texture_threshold = texture_threshold

    @classmethod
    def from_settings(cls, settings: Settings, threshold: float | None = None, **kw: Any) -> Decider:
        """From a ``Settings``; ``threshold`` overrides ``settings.threshold`` (pass the model's
        default when the setting is None)."""
        kw.setdefault("attempts", Attempts(wait_s=settings.photo_retry_wait_s, suspend_s=settings.face_suspend_s))
        return cls(
            threshold=settings.threshold if threshold is None else threshold,
            confirm_frames=settings.confirm_frames, window_frames=settings.window_frames,
            stranger_frames=settings.stranger_frames, cooldown_s=settings.cooldown_s,
            mode=settings.mode, photo_check=settings.photo_check,
            min_motion=settings.photo_check_min_motion,
            photo_check_timeout_s=settings.photo_check_timeout_s, challenge=settings.challenge, **kw)

    @property
    def statuses(self) -> list[TrackStatus]:
        return self.board.statuses

    # The rules own their settings; these read them back (e.g. for the Settings dialog).
    @property
    def photo_check(self) -> bool:
        return self.photo.enabled

    @property
    def confirm_frames(self) -> int:
        return self.identify.confirm_frames

    @property
    def stranger_frames(self) -> int:
        return self.identify.stranger_frames

    @property
    def cooldown_s(self) -> float:
        return self.identify.cooldown_s

    @property
    def claim_timeout_s(self) -> float:
        return self.verify.claim_timeout_s

    # -- verify mode -----------------------------------------------------------------------
    def claim(self, person_id: Hashable, t: float, name: str | None = None) -> None:
        """Start checking the face in front of the camera against ``person_id`` (verify mode).
        A new claim replaces an open one."""
        if self.mode != "verify":
            raise SettingsError("Setting 'mode': an employee id can only be checked in verify mode.")
        self.verify.open(person_id, t, name)

    @property
    def claimed_id(self) -> Hashable | None:
        """The open claim's person id (the frame loop verifies against it), or None."""
        return None if self.verify.claim is None else self.verify.claim.person_id

    # -- the frame loop --------------------------------------------------------------------
    def update(self, t: float, observations: Sequence[tuple[Sequence[float] | np.ndarray, MatchResult]],
               landmarks: Sequence[np.ndarray] | None = None,
               embeddings: Sequence[np.ndarray] | None = None,
               textures: Sequence[float | None] | None = None) -> list[Decision]:
        """One processed frame at time ``t`` (seconds): every face's box and match, its five
        landmarks (needed by the photo check) and its embedding (to see a face change places
        with another; without them only the matches tell). ``textures``: one live score per
        face (None where the scorer abstained or did not run), voted on the track's
        ``texture`` for frames recognised as a person, until the track is decided."""
        if self.photo.enabled and (landmarks is None or len(landmarks) != len(observations)):
            raise ValueError("the photo check needs the landmarks of every face")
        if embeddings is not None and len(embeddings) != len(observations):
            raise ValueError("one embedding per face, or none")
        if textures is not None and (len(textures) != len(observations) or self.texture_threshold is None):
            raise ValueError("one texture score per face, or none, and a texture threshold")
        boxes = [as_box(box) for box, _ in observations]
        track_ids = self.tracker.update(boxes, t)
        for tid in self.tracker.ended:
            ended = self._tracks.pop(tid, None)
            if ended is not None:
                self.photo.left(t, ended)
        self.board.clear()
        seen = []
        for k, (tid, box, (_, result)) in enumerate(zip(track_ids, boxes, observations, strict=True)):
            vote = self._vote(result)
            embedding = None if embeddings is None else np.asarray(embeddings[k], np.float32)
            tid = self._same_face_or_split(tid, vote, embedding)
            track = self._tracks.setdefault(tid, FaceTrack(deque(maxlen=self.window_frames)))
            track.box, track.embedding = box, embedding
            track.landmarks = landmarks[k] if landmarks is not None and self.photo.enabled else None
            if textures is not None:
                self._vote_texture(t, track, vote, textures[k])
            seen.append((tid, track, result, vote))
        if self.mode == "identify":
            decisions = []
            for tid, track, result, vote in seen:
                self.board.next_face()
                decisions.append(self.identify.step(t, tid, track, result, vote, self._threshold_of(result)))
            decisions += self.identify.expire(t, self._tracks)    # PINs not typed in time
        else:
            decisions = [self.verify.step(t, [(tid, track, result, self._threshold_of(result))
                                              for tid, track, result, _ in seen],
                                          self._tracks, self.tracker.tracks)]
        return [self._with_texture(d) for d in decisions if d is not None]

    def answer_factor(self, track_id: int, typed: str | None, t: float,
                      check: Callable[[Hashable, str], bool]) -> tuple[Decision, Asked] | None:
        """The PIN (or badge id) typed for the face waiting on ``track_id`` (second_factor.py):
        its final decision and what was asked; None when no face waits there."""
        return self.identify.answer(track_id, typed, t, check, self._tracks.get(track_id))

    def reset(self) -> None:
        """Forget every track, claim and cool-down (e.g. after the camera changes)."""
        self.tracker.reset()
        self._tracks.clear()
        self.identify.reset()
        self.verify.reset()
        self.board.clear()

    def deciding(self, boxes: Sequence[Sequence[float] | np.ndarray], results: Sequence[MatchResult]) -> list[bool]:
        """Before ``update``: which of this frame's faces are being decided, i.e. matched to a
        person and not where a track already decided for that person was last seen (IoU ≥ 0.5)
        (DoorCheck computes the texture only for these)."""
        done = [(t.box, t.settled.person_id) for t in self._tracks.values() if t.settled is not None]
        overlap = (iou_matrix(np.asarray([as_box(b) for b in boxes]), np.asarray([b for b, _ in done]))
                   if done and len(boxes) else np.zeros((len(boxes), 0)))
        out = []
        for k, result in enumerate(results):
            person = self._vote(result).person
            out.append(person is not None and not any(
                pid == person and overlap[k, j] >= 0.5 for j, (_, pid) in enumerate(done)))
        return out

    # -- one face --------------------------------------------------------------------------
    def _vote_texture(self, t: float, track: FaceTrack, vote: Vote, score: float | None) -> None:
        """Only the frames recognised as a person, before the decision: a stranger's frames
        (or a decided track's later ones) say nothing about this visit."""
        if vote.person is None or track.settled is not None or self.texture_threshold is None:
            return
        if track.texture is None:
            track.texture = TextureVote(self.texture_threshold)
        track.texture.add(t, score)

    def _with_texture(self, decision: Decision) -> Decision:
        track = self._tracks.get(decision.track_id)
        if track is None or track.texture is None or decision.texture is not None:
            return decision          # (the photo gate already put the vote it acted on)
        return replace(decision, texture=track.texture.evidence())

    def _threshold_of(self, result: MatchResult) -> float:
        return result.threshold if self.threshold is None else self.threshold

    def _vote(self, result: MatchResult) -> Vote:
        if self.threshold is None:
            accepted = result.accepted
        else:
            accepted = result.index is not None and result.score <= self.threshold
        label = None if result.index is None else result.label
        return Vote(result.id if accepted else None, label, result.distance, result.score)

    def _same_face_or_split(self, tid: int, vote: Vote, embedding: np.ndarray | None) -> int:
        """The track id this face's frame belongs to: ``tid``, or a new one when the face on the
        track is no longer the face the track has been deciding about."""
        track = self._tracks.get(tid)
        if track is None:
            return tid
        jumped = (embedding is not None and track.embedding is not None
                  and float(np.sum((embedding - track.embedding) ** 2)) > self.same_face_distance)
        if not jumped and track.settled is not None:
            track.mismatches = 0 if vote.person == track.settled.person_id else track.mismatches + 1
        if not jumped and track.mismatches < self.split_frames:
            return tid
        del self._tracks[tid]
        return self.tracker.split(tid)
