"""Tracking and door decisions: N-of-M confirmation, strangers, cool-down, verify mode."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from conftest import mr

from faceguard.access.decide import DENIED, GRANTED, Decider
from faceguard.access.track import IouTracker, iou_matrix
from faceguard.errors import SettingsError
from faceguard.gallery.match import Matcher
from faceguard.settings import Settings


def box(x: float, y: float = 100.0, w: float = 100.0) -> tuple[float, float, float, float]:
    return (x, y, x + w, y + 1.25 * w)


def run(decider: Decider, frames, t0: float = 0.0, dt: float = 0.1):
    """Feed frames (each a list of (box, MatchResult)); return [(frame index, Decision)]."""
    out = []
    for i, obs in enumerate(frames):
        out += [(i, d) for d in decider.update(t0 + i * dt, obs)]
    return out


# -- tracker ---------------------------------------------------------------------------------
def test_iou_matrix_values():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [50, 50, 60, 60]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_track_ids_are_stable_survive_short_gaps_and_are_never_reused():
    tr = IouTracker(min_iou=0.3, max_missed=2)
    assert tr.update([box(0)]) == [1]
    assert tr.update([box(5)]) == [1]
    assert tr.update([]) == [] and tr.update([]) == []        # missed 2: still alive
    assert tr.update([box(10)]) == [1] and tr.ended == []
    for _ in range(3):
        tr.update([])
    assert tr.ended == [1] and tr.tracks == {}                # missed 3 > 2: ended
    assert tr.update([box(10)]) == [2]                        # a new visit, a new id


def test_far_jump_starts_a_new_track():
    tr = IouTracker(min_iou=0.3)
    assert tr.update([box(0)]) == [1]
    assert tr.update([box(300)]) == [2]


def test_the_iou_floor_follows_time_not_frames():
    """Two frames 0.2 s apart (5 frames/s) whose boxes overlap by IoU 0.2: one face that moved
    further in the longer gap, so one track; 1/30 s apart the same overlap is another face."""
    shift = 100 * (1 - 0.2) / (1 + 0.2)                    # IoU 0.2 for 100 px boxes
    assert iou_matrix([box(0)], [box(shift)])[0, 0] == pytest.approx(0.2)
    slow, fast = IouTracker(), IouTracker()
    assert slow.update([box(0)], 0.0) == [1] and slow.update([box(shift)], 0.2) == [1]
    assert fast.update([box(0)], 0.0) == [1] and fast.update([box(shift)], 1 / 30) == [2]
    never = IouTracker()                                    # a long gap: still a third of the floor
    assert never.update([box(0)], 0.0) == [1] and never.update([box(90)], 0.15) == [2]


@pytest.mark.parametrize("step", [1, 3, 6])
def test_the_singer_is_one_track_at_30_10_and_5_fps(clip_results, step):
    """The shared clip's singer gestures; at 5 frames/s (every 6th frame) the frame-counted IoU
    floor broke his face into 2-3 tracks, each starting its photo check anew. Every frame phase
    keeps him on one track as long as at 30 frames/s."""
    for phase in range(min(step, 3)):
        tracker, frames = IouTracker(), {}
        for f in clip_results[phase::step]:
            for tid, r in zip(tracker.update([r.face.box for r in f.results], f.t), f.results, strict=True):
                if r.face.box[2] - r.face.box[0] >= 60:
                    frames[tid] = frames.get(tid, 0) + 1
        assert max(frames.values()) * step >= 190, (step, phase, sorted(frames.values()))


def crossing_frames(steps: int = 11):
    """Ana walks right, Bob walks left, one head a little higher; their boxes overlap heavily
    (IoU up to 0.54) in the middle frames. Detector order is shuffled every frame."""
    rng = random.Random(3)
    frames = []
    for t in range(steps):
        people = [("E1", box(40 * t, y=100)), ("E2", box(420 - 40 * t, y=115))]
        rng.shuffle(people)
        frames.append(people)
    return frames


def test_tracker_keeps_people_apart_when_they_cross():
    tr = IouTracker()
    owner: dict[int, str] = {}
    max_iou = 0.0
    for people in crossing_frames():
        ids = tr.update([b for _, b in people])
        max_iou = max(max_iou, iou_matrix([people[0][1]], [people[1][1]])[0, 0])
        for tid, (who, _) in zip(ids, people, strict=True):
            assert owner.setdefault(tid, who) == who, "a track changed person"
    assert sorted(owner.values()) == ["E1", "E2"] and len(owner) == 2
    assert max_iou > 0.5          # the test really has them overlap


# -- identify mode ---------------------------------------------------------------------------
def test_granted_after_n_of_last_m_frames_with_numbers():
    dec = Decider(confirm_frames=3, window_frames=5, stranger_frames=5)
    frames = [[(box(0), mr("E1", 0.30))], [(box(2), mr("E1", 0.60))],
              [(box(4), mr("E1", 0.25))], [(box(6), mr("E1", 0.35))], [(box(8), mr("E1", 0.2))]]
    texts = []
    decisions = []
    for i, obs in enumerate(frames):
        decisions += dec.update(i * 0.1, obs)
        texts.append([s.text for s in dec.statuses])
    assert texts == [["recognising Ana 1/3"], ["unknown 1/5"], ["recognising Ana 2/3"],
                     ["Ana: granted"], ["Ana: granted"]]
    (d,) = decisions                                  # one decision per track
    assert (d.kind, d.person_id, d.name, d.track_id) == (GRANTED, "E1", "Ana", 1)
    assert d.time == pytest.approx(0.3) and d.frames_used == 3
    assert d.distance == pytest.approx(0.30) and d.threshold == 0.4   # median of .30 .25 .35
    assert d.box == box(6)
    assert d.reason == "Ana recognised in 3 of the last 4 frames (median distance 0.30 ≤ threshold 0.40)"


def test_hits_spread_wider_than_the_window_never_grant():
    dec = Decider(confirm_frames=3, window_frames=4, stranger_frames=100)
    pattern = [0.3, 0.6, 0.6] * 10                    # at most 2 hits in any 4 frames
    assert run(dec, [[(box(0), mr("E1", d))] for d in pattern]) == []
    assert dec.statuses[0].text == "unknown 20/100"


def test_votes_for_two_people_on_one_track_do_not_add_up():
    dec = Decider(confirm_frames=3, window_frames=5, stranger_frames=100)
    frames = [[(box(0), mr(p, 0.3))] for p in ["E1", "E2", "E1", "E2", "E3", "E1", "E2"]]
    assert run(dec, frames) == []                     # nobody has 3 of the last 5


def test_stranger_denied_after_k_frames_with_numbers():
    dec = Decider(confirm_frames=3, window_frames=5, stranger_frames=5)
    dists = [0.6, 0.7, 0.5, 0.8, 0.9, 0.65, 0.7]
    got = run(dec, [[(box(0), mr("E1", d))] for d in dists])
    assert len(got) == 1
    i, d = got[0]
    assert i == 4 and d.kind == DENIED and d.person_id is None and d.name is None
    assert d.frames_used == 5 and d.distance == pytest.approx(0.7) and d.threshold == 0.4
    assert d.reason == "stranger: no one within threshold 0.40 in 5 frames (nearest Ana, median distance 0.70)"
    assert dec.statuses[0].state == "denied"


def test_empty_gallery_denies_and_serialises():
    dec = Decider(stranger_frames=2)
    (_, d), = run(dec, [[(box(0), mr(None))]] * 2)
    assert d.kind == DENIED and d.distance == math.inf
    assert d.reason == "stranger: the gallery is empty (2 frames)"
    data = json.loads(json.dumps(d.to_dict()))
    assert data["distance"] is None and data["decision"] == "DENIED" and data["frames_used"] == 2


def test_cooldown_makes_one_event_per_visit():
    dec = Decider(confirm_frames=2, window_frames=3, cooldown_s=10.0,
                  tracker=IouTracker(max_missed=1))
    ana = [(box(0), mr("E1", 0.2))]
    first = run(dec, [ana, ana], t0=0.0)
    assert [(d.kind, d.track_id) for _, d in first] == [(GRANTED, 1)]
    run(dec, [[], []], t0=1.0)                        # face lost: track 1 ends
    again = run(dec, [ana, ana, ana], t0=3.0)         # back 3 s later: same visit
    assert again == []
    assert dec.statuses[0].state == "cooldown" and dec.statuses[0].track_id == 2
    assert dec.statuses[0].text == "Ana: already let in 3 s ago"
    run(dec, [[], []], t0=4.0)
    later = run(dec, [ana, ana], t0=12.0)             # a new visit after the cool-down
    assert [(d.kind, d.person_id, d.track_id, d.time) for _, d in later] == [(GRANTED, "E1", 3, 12.1)]


def test_decider_threshold_rejudges_scores():
    dec = Decider(threshold=0.3, stranger_frames=3)
    got = run(dec, [[(box(0), mr("E1", 0.35))]] * 3)      # accepted at 0.4, not at 0.3
    assert [(d.kind, d.threshold, d.frames_used) for _, d in got] == [(DENIED, 0.3, 3)]


def test_two_people_side_by_side_get_their_own_decisions():
    dec = Decider(confirm_frames=3, window_frames=5)
    rng = random.Random(7)
    frames = []
    for t in range(4):
        jitter = [rng.uniform(-4, 4) for _ in range(2)]
        people = [(box(100 + 5 * t + jitter[0]), mr("E1", 0.25)),
                  (box(205 + 5 * t + jitter[1]), mr("E2", 0.3))]   # 5 px apart
        rng.shuffle(people)
        frames.append(people)
    got = run(dec, frames)
    assert sorted((d.person_id, d.kind, d.frames_used, i) for i, d in got) == \
        [("E1", GRANTED, 3, 2), ("E2", GRANTED, 3, 2)]
    by_person = {d.person_id: d for _, d in got}
    assert by_person["E1"].track_id != by_person["E2"].track_id
    assert by_person["E1"].box[0] < 130 < 190 < by_person["E2"].box[0]


def test_names_never_swap_when_people_cross():
    # Every one of 11 frames must agree, so one swapped frame would block both grants.
    dec = Decider(confirm_frames=11, window_frames=11, stranger_frames=20)
    frames = [[(b, mr(who, 0.2)) for who, b in people] for people in crossing_frames(11)]
    got = run(dec, frames)
    assert sorted((i, d.person_id, d.frames_used) for i, d in got) == [(10, "E1", 11), (10, "E2", 11)]
    final = {d.person_id: d.box for _, d in got}
    assert final == {"E1": box(400, y=100), "E2": box(20, y=115)}


def test_matcher_to_decider_end_to_end():
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((3, 128)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    matcher = Matcher(["E1", "E2", "E3"], gallery, threshold=0.4, names=["Ana", "Bob", "Cid"])
    dec = Decider(confirm_frames=3, window_frames=5, stranger_frames=4)

    def noisy(v):
        p = v + 0.03 * rng.standard_normal(128).astype(np.float32)
        return p / np.linalg.norm(p)

    stranger = rng.standard_normal(128).astype(np.float32)
    stranger /= np.linalg.norm(stranger)
    got = []
    for i in range(4):
        obs = [(box(50), matcher.search(noisy(gallery[1]))), (box(300), matcher.search(noisy(stranger)))]
        got += dec.update(i * 0.1, obs)
    assert [(d.kind, d.person_id, d.frames_used) for d in got] == [(GRANTED, "E2", 3), (DENIED, None, 4)]
    assert got[0].distance < 0.4 < got[1].distance


# -- verify mode -----------------------------------------------------------------------------
def test_verify_grants_the_claimed_person():
    dec = Decider(mode="verify", confirm_frames=3, window_frames=5)
    assert dec.update(0.0, [(box(0), mr("E1", 0.3))]) == []
    assert dec.statuses[0].text == "waiting for an employee id"
    dec.claim("E1", t=1.0, name="Ana")
    assert dec.claimed_id == "E1"
    got = run(dec, [[(box(0), mr("E1", d))] for d in (0.3, 0.5, 0.2, 0.25)], t0=1.1)
    assert [(i, d.kind, d.mode, d.person_id, d.frames_used) for i, d in got] == \
        [(3, GRANTED, "verify", "E1", 3)]
    assert got[0][1].distance == pytest.approx(0.25)
    assert got[0][1].reason == "Ana verified in 3 of the last 4 frames (median distance 0.25 ≤ threshold 0.40)"
    assert dec.claimed_id is None                     # one claim, one decision


def test_verify_denies_another_face_with_the_distance():
    dec = Decider(mode="verify", stranger_frames=5)
    dec.claim("E1", t=0.0, name="Ana")
    got = run(dec, [[(box(0), mr("E1", 0.7))]] * 6)
    assert [(i, d.kind, d.person_id, d.frames_used) for i, d in got] == [(4, DENIED, "E1", 5)]
    assert got[0][1].reason == "not Ana: distance 0.70 > threshold 0.40 in 5 frames"


def test_verify_with_identify_results_names_who_it_looks_like():
    dec = Decider(mode="verify", stranger_frames=3)
    dec.claim("E1", t=0.0, name="Ana")
    got = run(dec, [[(box(0), mr("E2", 0.2))]] * 3)   # Bob, clearly
    assert got[0][1].kind == DENIED
    assert got[0][1].reason == "not Ana: the face looks nearer to Bob (3 frames)"


def test_verify_binds_to_the_largest_face():
    dec = Decider(mode="verify", confirm_frames=2, stranger_frames=3)
    dec.claim("E1", t=0.0, name="Ana")
    # Ana's face is small (further away); the big face in front is someone else.
    frames = [[(box(0, w=60), mr("E1", 0.2)), (box(300, w=150), mr("E1", 0.9))]] * 3
    got = run(dec, frames)
    assert [(d.kind, d.box) for _, d in got] == [(DENIED, box(300, w=150))]


def test_verify_claim_times_out_without_a_face():
    dec = Decider(mode="verify", claim_timeout_s=10.0)
    dec.claim("E1", t=0.0, name="Ana")
    assert run(dec, [[]] * 5, t0=9.0) == []
    (d,) = dec.update(10.5, [])
    assert d.kind == DENIED and d.frames_used == 0 and d.track_id == -1
    assert d.reason == "no face seen within 10 s of the claim for Ana"


def test_claim_outside_verify_mode_is_refused():
    with pytest.raises(SettingsError, match="verify mode"):
        Decider().claim("E1", t=0.0)


# -- parameters ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, key", [
    (dict(confirm_frames=6, window_frames=5), "confirm_frames"),
    (dict(window_frames=0), "window_frames"),
    (dict(stranger_frames=0), "stranger_frames"),
    (dict(cooldown_s=-1), "cooldown_s"),
    (dict(mode="open-sesame"), "mode"),
    (dict(threshold=4.5), "threshold"),
])
def test_bad_parameters_name_the_setting(kwargs, key):
    with pytest.raises(SettingsError, match=f"'{key}'"):
        Decider(**kwargs)


def test_from_settings():
    s = Settings(confirm_frames=2, window_frames=4, stranger_frames=7, cooldown_s=3.0, mode="verify")
    dec = Decider.from_settings(s, threshold=0.33)
    assert (dec.threshold, dec.confirm_frames, dec.window_frames, dec.stranger_frames,
            dec.cooldown_s, dec.mode) == (0.33, 2, 4, 7, 3.0, "verify")
    assert Decider.from_settings(Settings(threshold=0.35)).threshold == 0.35


def test_verify_timeout_after_unconvincing_frames_reports_the_distance():
    dec = Decider(mode="verify", stranger_frames=50, claim_timeout_s=1.0)
    dec.claim("E1", t=0.0, name="Ana")
    got = run(dec, [[(box(0), mr("E1", 0.55))]] * 12, dt=0.1)     # t = 0.0 … 1.1
    assert [(i, d.kind, d.frames_used) for i, d in got] == [(11, DENIED, 5)]   # window of 5
    assert got[0][1].reason == ("no face matched Ana within 1 s of the claim "
                                "(median distance 0.55 > threshold 0.40)")
    assert got[0][1].distance == pytest.approx(0.55)


@pytest.mark.parametrize("fps", [5, 10, 30])
def test_a_track_ends_after_the_same_time_at_any_frame_rate(fps):
    """Lost for 0.3 s (a head turned away from the detector): the same track at 5, 10 and 30
    frames a second (after 5 missed frames it ended at 30 but not at 5); lost for 0.8 s: ended."""
    for gap, same in ((0.3, True), (0.8, False)):
        tr, t = IouTracker(), 0.0
        assert tr.update([box(0)], t) == [1]
        while t + 1 / fps < gap:
            t += 1 / fps
            tr.update([], t)
        assert tr.update([box(0)], gap + 0.01) == ([1] if same else [2]), (fps, gap)
