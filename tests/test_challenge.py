"""Issue 13: the challenge–response a replayed video cannot follow, on by default.

Unit rules on made-up landmarks; the attacks on real material: the shared clip replayed as the
camera (20 seeds), the waved print; the genuine side with the synthetic 3-D head that follows
the door's instruction (benchmarks/head3d.py); the window's arrow and DENIED reason."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
from conftest import REPO

from faceguard.access.challenge import TURN, ChallengeRun
from faceguard.access.decide import DENIED, GRANTED, Decider
from faceguard.camera import FrameSource
from faceguard.doorcheck import DoorCheck
from faceguard.gallery.events import EventLog
from faceguard.gallery.store import Gallery
from faceguard.settings import Settings
from faceguard.vision.image import load_image

sys.path.insert(0, str(REPO / "benchmarks"))
from head3d import Head, Responder  # noqa: E402

FPS = 30.0


def landmarks(u: float, v: float = 0.0) -> np.ndarray:
    """Five points whose nose sits at (u, v) in the eyes-and-mouth square (eyes 60 px apart)."""
    eyes_mouth = np.array([[100, 100], [160, 100], [100, 160], [160, 160]], np.float64)
    nose = [130 + 30 * u, 130 + 30 * v]
    return np.array([eyes_mouth[0], eyes_mouth[1], nose, eyes_mouth[2], eyes_mouth[3]])


def run_pose(direction: str, poses) -> ChallengeRun:
    """A run whose one challenge asks ``direction``; poses: (t, u, v) frames, started at t=0."""
    run = ChallengeRun(random.Random(0), directions=(direction,))
    run.observe(-0.1, landmarks(0.0))
    run.start(0.0)
    for t, u, v in poses:
        run.observe(t, landmarks(u, v))
    return run


@pytest.mark.parametrize(("direction", "poses", "outcome"), [
    ("LEFT", [(0.1 * i, 0.0 if i < 5 else 0.4, 0) for i in range(12)], "passed"),
    ("RIGHT", [(0.1 * i, 0.0 if i < 5 else -0.4, 0) for i in range(12)], "passed"),
    ("LEFT", [(0.1 * i, 0.0 if i < 5 else -0.4, 0) for i in range(12)], "wrong way"),
    ("LEFT", [(0.05 * i, 0.4, 0) for i in range(6)], "too early"),        # moving before anyone could react
    ("LEFT", [(0.1 * i, 0.05, 0) for i in range(40)], "too late"),
    # a small nod while turning is normal; a large one is not what was asked
    ("LEFT", [(0.1 * i, 0.0 if i < 5 else 0.4, 0.0 if i < 5 else 0.1) for i in range(12)], "passed"),
    ("LEFT", [(0.1 * i, 0.0, 0.0 if i < 5 else 0.3) for i in range(12)], "wrong way"),
])
def test_one_challenge_is_judged_by_direction_and_timing(direction, poses, outcome):
    run = run_pose(direction, poses)
    assert run.done and run.done[0].outcome == outcome
    assert (run.passed, run.done[0].direction) == (outcome == "passed", direction)
    if outcome == "passed":
        assert run.done[0].moved >= TURN[0]


def test_a_first_failure_asks_again_and_the_second_denies():
    run = ChallengeRun(random.Random(1), directions=("LEFT",), max_failures=2)
    run.observe(-0.1, landmarks(0.0))
    run.start(0.0)
    for i in range(10):                                  # the wrong way: one failure, asked again
        run.observe(0.3 + 0.1 * i, landmarks(-0.4))
    assert [c.outcome for c in run.done] == ["wrong way"] and run.current is not None
    assert not run.failed
    for i in range(40):                                  # never the asked way: the second failure
        run.observe(1.5 + 0.1 * i, landmarks(-0.4))
    assert run.failed and len(run.done) == 2


def _decide(results, seed: int, matcher, photo_check=True, challenge=True):
    decider = Decider.from_settings(Settings(photo_check=photo_check, challenge=challenge),
                                    threshold=matcher.threshold, seed=seed)
    out = []
    for frame in results:
        faces = frame.results
        obs = [(f.box, matcher.nearest(f.embedding)) for f in faces]
        out += decider.update(frame.t, obs, [f.landmarks for f in faces], [f.embedding for f in faces])
    return out


@pytest.fixture(scope="module")
def lin_matcher(shared_data, pipeline):
    from faceguard.gallery.match import Matcher

    enrolled = pipeline.process(load_image(shared_data / "video" / "lin-manuel-miranda.png"))[0]
    return Matcher(["E001"], enrolled.embedding[None, :], pipeline.threshold_for(1),
                   names=["Lin-Manuel Miranda"]), enrolled


def test_the_shared_clip_replayed_as_an_attack_is_denied_in_most_visits(clip_results, lin_matcher):
    """The clip is a real video of the enrolled man: without the check it opens the door; with
    the default check it must stay shut in at least 3 of 4 seeded runs (issue 13)."""
    matcher, _ = lin_matcher
    assert any(d.kind == GRANTED for d in _decide(clip_results, 0, matcher, photo_check=False))
    granted = [any(d.kind == GRANTED for d in _decide(clip_results, seed, matcher)) for seed in range(20)]
    assert sum(granted) <= 5, f"the replayed clip opened the door in {sum(granted)} of 20 runs"


def test_the_waved_print_is_denied_with_the_challenge_on(pipeline, lin_enrolled, print_attack_video):
    for seed in range(3):
        with Gallery.open() as gallery, FrameSource(print_attack_video) as src:
            check = DoorCheck(pipeline, gallery, Settings(photo_check_timeout_s=3.0), seed=seed)
            decisions = []
            while (frame := src.read()) is not None:
                decisions += check.process(frame).decisions
            check.close()
            rows = EventLog(gallery).events(limit=None)
        assert [d.kind for d in decisions] == [DENIED], seed
        assert rows[0].evidence["min_motion"] == 0.3 and rows[0].evidence["motion"] < 0.3


def test_a_person_who_follows_the_instruction_is_let_in_quickly(pipeline, lin_matcher, shared_data):
    """The synthetic 3-D head (real people must confirm this) turns the asked way after a
    human reaction time: let in, within 1.5 s of the time it is recognised, every seed tried."""
    matcher, enrolled = lin_matcher
    head = Head(load_image(shared_data / "video" / "lin-manuel-miranda.png")[..., :3], enrolled.landmarks)
    for seed in range(3):
        person = Responder(np.random.default_rng(seed))
        decider = Decider.from_settings(Settings(), threshold=matcher.threshold, seed=seed)
        asked_at, decision, t = None, None, 0.0
        while decision is None and t < 8.0:
            faces = pipeline.process(head.render(*person.pose(t)))
            obs = [(f.box, matcher.nearest(f.embedding)) for f in faces]
            got = decider.update(t, obs, [f.landmarks for f in faces], [f.embedding for f in faces])
            decision = got[0] if got else None
            for s in decider.statuses:
                if s.direction and asked_at is None:
                    asked_at = t
                person.ask(s.direction, t)
            t += 1 / FPS
        assert decision is not None and decision.kind == GRANTED, (seed, decision)
        assert decision.time - asked_at <= 1.5
        (c,) = decision.challenges
        assert c["outcome"] == "passed" and c["answered_after_s"] >= 0.3      # a human's reaction
        assert "asked " in decision.reason and "passed" in decision.reason


def test_the_window_shows_the_arrow_then_the_denied_reason(qtbot, pipeline, lin_enrolled,
                                                            print_attack_video):
    """With the default settings, a waved print of an enrolled man: the window asks for a
    head turn with a big arrow, and ends on DENIED saying why (the asked direction, the motion)."""
    from conftest import screenshot

    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.presentation import ARROWS
    from faceguard.ui.sounds import SoundPlayer

    with Gallery.open() as gallery:
        settings = Settings(camera=str(print_attack_video), loop_video=True, photo_check_timeout_s=3.0)
        w = DoorWindow(settings, pipeline, gallery, sounds=SoundPlayer(enabled=False), save=False,
                       make_check=lambda: DoorCheck(pipeline, gallery, settings, seed=1))
        qtbot.addWidget(w)
        w.resize(1100, 760)
        w.show()
        w.start()
        qtbot.waitUntil(lambda: w.banner.arrow.isVisible(), timeout=30000)
        assert w.banner.arrow.text() in ARROWS.values()
        assert w.banner.title.text().startswith("Turn your head to your ")
        assert "Lin-Manuel Miranda" not in w.banner.detail.text()   # not let in: no name
        screenshot(w, "door_window_challenge")
        qtbot.waitUntil(lambda: any(r.startswith("DENIED") for r in w.event_rows()), timeout=30000)
        w.stop()
        (row,) = [r for r in w.event_rows() if r.startswith("DENIED")]
        assert row.startswith("DENIED  not let in") and "asked " in row and "Lin-Manuel" not in row
        assert w.banner.title.text() == "Not recognised" and not w.banner.arrow.isVisible()
        screenshot(w, "door_window_challenge_denied")
        (event,) = EventLog(gallery).events(limit=None)
        assert event.decision == "DENIED" and event.evidence["challenges"]
        assert {c["direction"] for c in event.evidence["challenges"]} <= {"LEFT", "RIGHT"}
