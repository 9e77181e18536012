"""Issues 13 and 20: the follow-the-target challenge a replayed video cannot follow, on by default.

(The rules on generated landmark tracks: test_follow_target.py.) The attacks on real material:
the shared clip replayed as the camera at 5, 10 and 30 processed frames per second (20 seeds
each), the waved print; the genuine side with the synthetic 3-D head that follows the door's
moving dot (benchmarks/head3d.py); the window's marker and DENIED reason."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import HANG_MS, REPO
from conftest import challenge_visit as visit

from faceguard.access.decide import DENIED, GRANTED, Decider
from faceguard.camera import FrameSource
from faceguard.doorcheck import DoorCheck
from faceguard.gallery.events import EventLog
from faceguard.gallery.store import Gallery
from faceguard.settings import Settings
from faceguard.vision.image import load_image

sys.path.insert(0, str(REPO / "benchmarks"))
from challenge import clip_fidget  # noqa: E402
from head3d import Follower, Head  # noqa: E402

FPS = 30.0


def _decide(results, seed: int, matcher, photo_check=True, challenge=True, step: int = 1):
    """Replay cached clip frames (every ``step``-th: 30 fps / step processed) through a Decider."""
    decider = Decider.from_settings(Settings(photo_check=photo_check, challenge=challenge),
                                    threshold=matcher.threshold, seed=seed)
    out, paths = [], set()
    for frame in results[::step]:
        faces = frame.results
        obs = [(f.box, matcher.nearest(f.embedding)) for f in faces]
        out += decider.update(frame.t, obs, [f.landmarks for f in faces], [f.embedding for f in faces])
        paths |= {s.target for s in decider.statuses if s.target is not None}
    _decide.paths = paths       # the paths the door showed in this run
    return out


@pytest.fixture(scope="module")
def lin_matcher(shared_data, pipeline):
    from faceguard.gallery.match import Matcher

    enrolled = pipeline.process(load_image(shared_data / "video" / "lin-manuel-miranda.png"))[0]
    return Matcher(["E001"], enrolled.embedding[None, :], pipeline.threshold_for(1),
                   names=["Lin-Manuel Miranda"]), enrolled


@pytest.mark.parametrize("fps", [30, 10, 5])
def test_the_shared_clip_replayed_as_an_attack_is_denied_at_any_frame_rate(clip_results, lin_matcher, fps):
    """The clip is a real video of the enrolled man: without the check it opens the door; with
    the default check it may open in at most 1 of 20 seeded runs, at 30, 10 or 5 processed
    frames per second (issue 20: 14/20 and 13/20 at 5 and 10 fps with the old LEFT/RIGHT)."""
    matcher, _ = lin_matcher
    step = 30 // fps
    assert any(d.kind == GRANTED for d in _decide(clip_results, 0, matcher, photo_check=False, step=step))
    granted = 0
    for seed in range(20):
        decisions = _decide(clip_results, seed, matcher, step=step)
        granted += any(d.kind == GRANTED for d in decisions)
        assert len(_decide.paths) >= 2          # the door showed paths, and the clip failed the first
        judged = [c for d in decisions for c in (d.challenges or ())]
        assert all(c["outcome"] != "too slow" and c["samples_per_s"] >= 4 for c in judged if "score" in c)
    assert granted <= 1, f"the replayed clip opened the door in {granted} of 20 runs at {fps} fps"


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


@pytest.mark.parametrize("fps", [30, 5])
def test_a_person_who_follows_the_dot_is_let_in(pipeline, lin_matcher, shared_data, fps):
    """The synthetic 3-D head (real people must confirm this) follows the moving dot with a
    human lag: let in, within 4 s of the time it is recognised, at 30 and at 5 frames/s."""
    matcher, enrolled = lin_matcher
    head = Head(load_image(shared_data / "video" / "lin-manuel-miranda.png")[..., :3], enrolled.landmarks)
    for seed in range(2):
        # (a clear follower: the parallax bar smooths over 5 frames, which at 5 fps is a whole
        # second and shaves a small follower's motion below 0.3; see the report of issue 20)
        person = Follower(np.random.default_rng(seed), deg_per_unit=(16.0, 20.0))
        decider = Decider.from_settings(Settings(), threshold=matcher.threshold, seed=seed)
        asked_at, decision, t = None, None, 0.0
        while decision is None and t < 10.0:
            faces = pipeline.process(head.render(*person.pose(t)))
            obs = [(f.box, matcher.nearest(f.embedding)) for f in faces]
            got = decider.update(t, obs, [f.landmarks for f in faces], [f.embedding for f in faces])
            # (the renderer's edges now and then make a tiny extra "face": a stranger of its own)
            decision = next((d for d in got if d.person_id == "E001"), None)
            for s in decider.statuses:
                if s.target is not None and asked_at is None:
                    asked_at = t
                person.see(s.target)
            t += 1 / fps
        assert decision is not None and decision.kind == GRANTED, (seed, decision)
        assert decision.time - asked_at <= 4.0
        c = decision.challenges[-1]
        assert c["outcome"] == "passed" and c["z"] >= 1.1 and 0.15 <= c["lag_s"] <= 0.7
        assert c["path"]["directions"] and c["samples_per_s"] >= 4
        assert "path " in decision.reason and "passed" in decision.reason


def test_the_window_shows_the_moving_dot_then_the_denied_reason(qtbot, pipeline, lin_enrolled,
                                                                print_attack_video):
    """With the default settings, a waved print of an enrolled man: the window shows the moving
    dot (amber pixels where the path puts it, and it moves), and ends on DENIED saying why (the
    path, the score, the motion)."""
    from conftest import screenshot
    from PySide6.QtGui import QImage

    from faceguard.ui.door_window import DoorWindow
    from faceguard.ui.presentation import FOLLOW_TEXT
    from faceguard.ui.sounds import SoundPlayer
    from faceguard.ui.target_marker import DOT

    def dot_pixels(marker) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """The grabbed colour at the dot's expected position, and at the marker's centre."""
        t = marker.now()
        marker.now = lambda: t                       # hold the dot still while grabbing
        try:
            pixmap = marker.grab()
            img = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB888)
            rgb = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(
                img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), img.width(), 3)
            ratio = pixmap.devicePixelRatio()
            spots = [marker.dot_position(t), marker.to_pixels(0.0, 0.0)]
            colour = [rgb[int(p.y() * ratio) + 2, int(p.x() * ratio) + 2] for p in spots]
        finally:
            del marker.now
        return tuple(tuple(int(v) for v in c) for c in colour)

    with Gallery.open() as gallery:
        settings = Settings(camera=str(print_attack_video), loop_video=True, photo_check_timeout_s=3.0)
        w = DoorWindow(settings, pipeline, gallery, sounds=SoundPlayer(enabled=False), save=False,
                       make_check=lambda: DoorCheck(pipeline, gallery, settings, seed=1))
        qtbot.addWidget(w)
        w.resize(1100, 760)
        w.show()
        w.start()
        marker = w.banner.marker
        qtbot.waitUntil(lambda: marker.isVisible() and marker.path is not None
                        and marker.now() > marker.path.shown_at + 0.3, timeout=HANG_MS)
        assert w.banner.title.text() == FOLLOW_TEXT
        assert "Lin-Manuel Miranda" not in w.banner.detail.text()   # not let in: no name
        dot, centre = dot_pixels(marker)
        assert dot == (DOT.red(), DOT.green(), DOT.blue()) and centre != dot
        start = marker.dot_position(marker.path.shown_at)
        now = marker.dot_position()
        assert (now - start).manhattanLength() > 10          # it has moved off the centre
        screenshot(w, "door_window_challenge")
        qtbot.waitUntil(lambda: any(r.startswith("DENIED") for r in w.event_rows()), timeout=HANG_MS)
        w.stop()
        (row,) = [r for r in w.event_rows() if r.startswith("DENIED")]
        assert row.startswith("DENIED  not let in") and "Lin-Manuel" not in row
        assert w.banner.title.text() == "Not recognised" and not marker.isVisible()
        screenshot(w, "door_window_challenge_denied")
        (event,) = EventLog(gallery).events(limit=None)
        assert event.decision == "DENIED" and event.evidence["motion"] < 0.3
        assert event.evidence["attempts"]["state"] == "ok" and event.evidence["challenges"]


@pytest.fixture(scope="module")
def clip_head_movement(clip_results, lin_matcher):
    """The shared clip's real head movement (the enrolled man's, in degrees, as the benchmark's
    fidget): ``at(offset)`` gives (yaw, pitch) over time, looping over the clip."""
    matcher, _ = lin_matcher
    return clip_fidget([(f.t, f.results) for f in clip_results], matcher)


def fidgeting_person(movement, seed: int, follow: bool = True):
    """The benchmark's genuine responder (head3d.Follower: lag 0.2-0.6 s, 12-20° per marker
    unit) on top of the clip's head movement at FULL strength, as landmark tracks: yaw/pitch in
    degrees to pose units as the benchmark's clip_fidget reads them (0.2 of u per 10° yaw,
    0.12 of v per 10° pitch). ``follow=False``: the clip's movement alone, a replayed video."""
    at, length = movement
    rng = np.random.default_rng(500 + seed)
    fidget, lag, gain = at(float(rng.uniform(0, length))), rng.uniform(0.2, 0.6), rng.uniform(12.0, 20.0)
    shown: list = []

    def motion(t, run):
        if run.current is not None and (not shown or shown[-1] is not run.current.path):
            shown.append(run.current.path)
        yaw, pitch = fidget(t)
        seen = [p for p in shown if p.shown_at <= t - lag]
        if seen and follow:
            x, y = seen[-1].position(t - lag)
            yaw, pitch = yaw - gain * x, pitch - gain * y
        return np.array([-yaw / 50.0, -1.6 * pitch / 83.0])
    return motion


@pytest.mark.parametrize("fps", [30, 10, 5])
def test_a_follower_fidgeting_as_much_as_the_clip_is_let_in_within_the_visit(clip_head_movement, fps):
    """Issue 20's genuine case: the clip's natural head movement at full strength is as fast as
    the following itself, so one path proves little; the evidence over the visit's paths lets
    them in within the 12 s photo check (6 paths, the bar raised from the 5th): measured 19 of 20
    at 30, 10 and 5 fps (13 of 20 within 8 s and 4 paths; the old rule, one path at a time,
    correlation ≥ 0.7 per path: 12/11/11)."""
    runs = [visit(fps, seed, fidgeting_person(clip_head_movement, seed), limit_s=12.0) for seed in range(20)]
    assert sum(r.passed for r in runs) >= 18, [r.summary() for r in runs if not r.passed]
    late = 0
    for r in runs:
        if r.passed:
            ev = r.done[-1].result
            late += len(r.done) > 4                  # let in on the 5th path or later: the higher bar
            assert ev.z >= (1.25 if len(r.done) > 4 else 1.1) and ev.z >= ev.rival + 0.3
            assert ev.moves >= 1.3 and 0.15 <= ev.lag_s <= 0.7
    assert late >= 1


@pytest.mark.parametrize("fps", [30, 10, 5])
def test_the_clips_head_movement_alone_is_not_let_in(clip_head_movement, fps):
    """The null: the same movement without a follower (a recording) against 20 visits' random
    paths: at most 1 let in (measured 0 of 20 at each rate)."""
    runs = [visit(fps, seed, fidgeting_person(clip_head_movement, seed, follow=False), limit_s=12.0)
            for seed in range(20)]
    assert sum(r.passed for r in runs) <= 1, [r.summary() for r in runs if r.passed]
    # (within 12 s: the photo check's time limit ends a visit whose last path is still running)
    assert all({c.outcome for c in r.done} <= {"continued", "not followed"} for r in runs if not r.passed)


def test_a_fidgeting_visit_gets_the_same_answer_at_5_10_and_30_fps(clip_head_movement):
    """The same person and movement in continuous time, checked at 5, 10 and 30 frames/s: the
    evidence is judged at the same check times on the same grid, so the answer is the same but
    for visits at the bar's edge (measured 18 of 20)."""
    same = 0
    for seed in range(20):
        answers = {visit(fps, seed, fidgeting_person(clip_head_movement, seed), limit_s=12.0).passed
                   for fps in (30, 10, 5)}
        same += len(answers) == 1
    assert same >= 16


def test_the_marker_shows_an_arrow_while_the_dot_moves_and_none_while_it_stops(qtbot):
    """The arrow hint points the way the dot moves; during a stop there is no way to point (a
    zero-length arrow used to paint a stray wedge beside the dot)."""
    import random

    from PySide6.QtGui import QColor

    from faceguard.access.challenge import HOLD, draw_path
    from faceguard.ui.target_marker import HINT, TargetMarker

    marker = TargetMarker()
    qtbot.addWidget(marker)
    marker.resize(150, 150)
    path = draw_path(random.Random(4), 0.0)
    starts = [sum(path.durations[:k]) for k in range(len(path.durations))]
    white = {}
    for k, name in enumerate(path.directions[:2]):
        marker.show_path(path, starts[k] + path.durations[k] / 2)
        image = marker.grab().toImage()
        white[name] = sum(QColor(image.pixel(x, y)) == HINT for x in range(0, 150, 2) for y in range(0, 150, 2))
    assert path.directions[1] == HOLD
    assert white[path.directions[0]] > 20 and white[HOLD] == 0, white
