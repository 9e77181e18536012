"""Issue 20 item 3: repeated visits are counted. A stranger (matching nobody) who steps out of
view for 2 s and comes back, again and again, is counted by their face (the embedding): the 2nd
denied visit within 5 minutes means a wait (shown on the face, in the reason), the 3rd means
the face is not checked for 15 minutes. Another stranger, or an employee, right after is not
affected. A lookalike denied in the grey zone is counted against the person it matched.
Real embeddings of LFW people (dev fold) through the real pipeline and Matcher."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import photo

from faceguard.access.decide import DENIED, GRANTED, Decider
from faceguard.access.stranger_throttle import SAME_STRANGER_DISTANCE
from faceguard.gallery.match import Matcher
from faceguard.gallery.recognise import VisitZones
from faceguard.vision.image import load_image

BOX = (100.0, 100.0, 260.0, 260.0)
FPS = 10.0
ENROLLED = ["Abel_Pacheco", "Akhmed_Zakayev", "Amber_Tamblyn"]
STRANGER = "Anders_Fogh_Rasmussen"          # 4 photos in the dev fold: each visit another one
OTHER_STRANGER = "Angela_Bassett"


@pytest.fixture(scope="module")
def people(pipeline, lfw, split):
    """Embeddings: every photo of the stranger, one of the other stranger, the enrolled
    people's gallery photos and the employee's probe photo."""
    def emb(path):
        return pipeline.process(load_image(path))[0].embedding

    paths = split[STRANGER]["gallery"] + split[STRANGER]["probe"]
    return {"stranger": [emb(lfw / p) for p in paths],
            "other": emb(photo(lfw, split, OTHER_STRANGER)),
            "gallery": np.stack([emb(photo(lfw, split, who)) for who in ENROLLED]),
            "employee": emb(photo(lfw, split, "Akhmed_Zakayev", "probe")),
            "threshold": pipeline.embedder.spec.threshold_for(len(ENROLLED))}


def visit(dec: Decider, matcher: Matcher, emb: np.ndarray, t0: float, seconds: float, seed: int):
    """One face in view from t0 for ``seconds`` (a little frame-to-frame noise on its
    embedding); returns (decisions, [(t, status text)])."""
    rng = np.random.default_rng(seed)
    decisions, shown = [], []
    for t in np.arange(t0, t0 + seconds, 1 / FPS):
        e = emb + rng.normal(0, 0.007, emb.shape).astype(np.float32)
        e /= np.linalg.norm(e)
        decisions += dec.update(float(t), [(BOX, matcher.search(e))], embeddings=[e])
        shown.append((float(t), dec.statuses[0].text))
    return decisions, shown


def away(dec: Decider, t0: float, seconds: float) -> None:
    for t in np.arange(t0, t0 + seconds, 1 / FPS):
        assert dec.update(float(t), [], embeddings=[]) == []


def retry_for(dec, matcher, faces, minutes: float, t0: float = 0.0):
    """A face 1 s in view, 2 s away, again and again: every decision and every status shown."""
    decisions, shown, t, k = [], [], t0, 0
    while t < t0 + 60 * minutes:
        got, texts = visit(dec, matcher, faces[k % len(faces)], t, 1.0, seed=k)
        decisions += got
        shown += texts
        away(dec, t + 1.0, 2.0)
        t, k = t + 3.0, k + 1
    return decisions, shown, t


@pytest.fixture
def door(people):
    matcher = Matcher(ENROLLED, people["gallery"], people["threshold"])
    return Decider(stranger_frames=5, cooldown_s=10.0), matcher


def test_a_stranger_retrying_for_minutes_is_counted_and_made_to_wait(people, door, caplog):
    caplog.set_level("INFO", logger="faceguard.access.stranger_throttle")
    dec, matcher = door
    stranger = people["stranger"]
    # the premise: the stranger's photos match nobody, and lie within the threshold of each other
    assert all(not matcher.search(e).accepted for e in stranger)
    assert max(float(np.sum((stranger[0] - e) ** 2)) for e in stranger) <= SAME_STRANGER_DISTANCE

    decisions, shown, end = retry_for(dec, matcher, stranger, minutes=6)
    assert [(d.kind, d.person_id) for d in decisions] == [(DENIED, None)] * 3
    first, second, third = decisions
    assert first.time == pytest.approx(0.4) and first.attempts == {"state": "ok", "failures": 1}
    assert second.time == pytest.approx(3.4)         # back after 2 s: a new visit, counted
    assert second.attempts == {"state": "wait", "failures": 2, "seconds_left": 30.0}
    assert "the 2nd denied visit of this face within 5 min: wait 30 s" in second.reason
    # during the wait every visit is shown the seconds left, and not judged (no new row)
    waits = [(t, int(m.group(1))) for t, text in shown
             if (m := re.fullmatch(r"unknown: please wait (\d+) s, then try again", text))]
    assert waits and all(abs(left - (second.time + 30 - t)) <= 0.5 for t, left in waits)
    assert min(t for t, _ in waits) == pytest.approx(6.0) and max(t for t, _ in waits) < second.time + 30
    # the first visit after the wait: the 3rd, and the face is not checked for 15 minutes
    assert second.time + 30 < third.time < second.time + 34
    assert third.attempts["state"] == "suspended" and third.attempts["seconds_left"] == 900.0
    assert "the 3rd denied visit of this face within 5 min: this face is not checked again for 15 min" \
        in third.reason
    held = [text for t, text in shown if t > third.time + 2]
    assert held and all(text.startswith("unknown: too many tries: not checked for") for text in held)
    # each held visit (a new track) is logged once, with the wait left
    logged = [r.getMessage() for r in caplog.records if "is back; held" in r.getMessage()]
    held_visits = [t for t, text in shown if abs(t / 3 - round(t / 3)) < 1e-6
                   and ("please wait" in text or "too many tries" in text)]
    assert len(held_visits) > 100 and len(logged) == len(held_visits)
    assert "held (wait) for 27 s more" in logged[0] and "held (suspended)" in logged[-1]

    # the suspension ends: the face is judged again, and its count starts again
    away(dec, end, third.time + 900 - end)
    again, _, _ = retry_for(dec, matcher, stranger, minutes=0.1, t0=third.time + 900)
    assert [d.attempts for d in again] == [{"state": "ok", "failures": 1},
                                           {"state": "wait", "failures": 2, "seconds_left": 30.0}]


def test_another_stranger_and_an_employee_right_after_are_not_held(people, door):
    dec, matcher = door
    stranger, other, employee = people["stranger"], people["other"], people["employee"]
    radius = min(people["threshold"], SAME_STRANGER_DISTANCE)
    assert float(np.sum((stranger[0] - other) ** 2)) > radius       # two different people
    assert matcher.search(employee).id == "Akhmed_Zakayev" and matcher.search(employee).accepted

    decisions, _, t = retry_for(dec, matcher, stranger, minutes=1)
    assert decisions[-1].attempts["state"] == "suspended"
    got, shown = visit(dec, matcher, other, t, 1.0, seed=99)
    assert [(d.kind, d.attempts) for d in got] == [(DENIED, {"state": "ok", "failures": 1})]
    assert "wait" not in got[0].reason and not any("wait" in s or "tries" in s for _, s in shown)
    away(dec, t + 1.0, 2.0)
    got, shown = visit(dec, matcher, employee, t + 3.0, 1.0, seed=100)
    assert [(d.kind, d.person_id) for d in got] == [(GRANTED, "Akhmed_Zakayev")]
    assert got[0].time == pytest.approx(t + 3.2)     # 3 frames, as for anyone
    # and the stranger, back after them, is still held
    got, shown = visit(dec, matcher, stranger[1], t + 6.0, 1.0, seed=101)
    assert got == [] and all(s.startswith("unknown: too many tries") for _, s in shown)


def test_a_stranger_who_stays_in_view_is_one_visit():
    """The track lost for a moment (0.8 s) while the face stays in front of the camera: the
    same visit, no new attempt and no new row, even for minutes."""
    emb = np.eye(128, dtype=np.float32)[5]
    matcher = Matcher(["E1"], np.eye(128, dtype=np.float32)[:1], 0.4)
    dec = Decider(stranger_frames=5)
    decisions, t = [], 0.0
    for k in range(40):
        got, _ = visit(dec, matcher, emb, t, 5.0, seed=k)
        decisions += got
        away(dec, t + 5.0, 0.8)
        t += 5.8
    assert [d.attempts for d in decisions] == [{"state": "ok", "failures": 1}]


def test_a_lookalike_denied_in_the_grey_zone_is_counted_against_the_person_it_matched():
    """E1 (auth mode face only) and a lookalike whose visits land in the grey zone: each denied
    visit counts against E1, the 2nd makes a wait, shown on the face unnamed; the 3rd suspends
    E1's face entry. Leaving the camera for 2 s between tries changes nothing."""
    rng = np.random.default_rng(7)
    e1 = np.eye(128, dtype=np.float32)[0]
    look = e1 + 0.3 * rng.normal(size=128).astype(np.float32) / np.sqrt(128)
    look /= np.linalg.norm(look)
    d = float(np.sum((look - e1) ** 2))
    assert 0.05 < d < 0.12                         # within the threshold, beyond strict: grey
    matcher = Matcher(["E1"], e1[None, :], 0.15)
    dec = Decider(stranger_frames=5)
    dec.identify.zones = VisitZones(0.02, 0.15, {"E1": e1[None, :]}, {"E1": "face"}, 1)
    decisions, shown, _ = retry_for(dec, matcher, [look], minutes=2)
    assert [(d.kind, d.zone) for d in decisions[:3]] == [(DENIED, "grey")] * 3
    first, second, third = decisions[:3]
    assert first.attempts == {"state": "ok", "failures": 1}
    assert second.attempts == {"state": "wait", "failures": 2, "seconds_left": 30.0}
    assert "wait 30 s before the next try" in second.reason and "E1" not in second.reason
    # (each visit is recognised first, unnamed, then told to wait)
    waits = [text for t, text in shown if second.time + 1 < t < second.time + 29 and "recognising" not in text]
    assert waits and all(re.fullmatch(r"face: please wait \d+ s, then try again", s) for s in waits)
    assert third.attempts["state"] == "suspended" and "face entry for that person is suspended" in third.reason
    # while suspended, each later visit is denied and says so, and counts nothing more
    assert decisions[3:] and all(d.kind == DENIED and "stays suspended" in d.reason for d in decisions[3:])
    assert dec.photo.attempts.standing("E1", third.time + 60).state == "suspended"


def test_a_face_matched_to_an_employee_is_held_only_when_nearer_to_the_waiting_stranger():
    """A stranger S (0.20 from employee E, threshold 0.15) is suspended after three visits.
    E's own face, 0.04 from E's photo and 0.06 from S, is let in; a face 0.09 from E but 0.02
    from S (S again, matching E at a lucky angle) is held like S."""
    def at(angle: float) -> np.ndarray:
        return np.cos(angle) * np.eye(128, dtype=np.float32)[0] + np.sin(angle) * np.eye(128, dtype=np.float32)[1]

    a = float(np.arccos(0.9))                         # S lies 2 - 2·0.9 = 0.20 from E
    employee, stranger, lucky = at(0.0), at(a), at(a - 0.15)
    matcher = Matcher(["E"], employee[None, :], 0.15)
    dec = Decider(stranger_frames=5)
    decisions, _, t = retry_for(dec, matcher, [stranger], minutes=1)
    assert [d.attempts["state"] for d in decisions] == ["ok", "wait", "suspended"]
    assert matcher.search(lucky).accepted and float(np.sum((lucky - stranger) ** 2)) < 0.03
    got, shown = visit(dec, matcher, lucky, t, 1.0, seed=1)
    assert got == [] and all(s.startswith("unknown: too many tries") for _, s in shown)
    away(dec, t + 1.0, 2.0)
    own = at(0.2)
    assert float(np.sum((own - stranger) ** 2)) < SAME_STRANGER_DISTANCE   # within S's radius, nearer E
    got, _ = visit(dec, matcher, own, t + 3.0, 1.0, seed=2)
    assert [(d.kind, d.person_id) for d in got] == [(GRANTED, "E")]


def test_the_strangers_wait_and_suspension_follow_the_settings():
    from faceguard.settings import Settings

    dec = Decider.from_settings(Settings(photo_check=False, photo_retry_wait_s=10.0, face_suspend_s=120.0), threshold=0.15)
    matcher = Matcher(["E"], np.eye(128, dtype=np.float32)[:1], 0.15)
    decisions, _, _ = retry_for(dec, matcher, [np.eye(128, dtype=np.float32)[3]], minutes=0.5)
    assert [d.attempts for d in decisions] == [
        {"state": "ok", "failures": 1}, {"state": "wait", "failures": 2, "seconds_left": 10.0},
        {"state": "suspended", "failures": 3, "seconds_left": 120.0}]
