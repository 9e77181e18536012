"""The door window's words and colours, from real FaceReport and Decision records, no widgets:
face boxes and labels, the banner's texts, the event rows, and which banner wins the screen."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from faceguard.access.decide import DENIED, GRANTED, Decision
from faceguard.doorcheck import FaceReport
from faceguard.ui.presentation import (
    AMBER,
    EMPTY_GALLERY_TEXT,
    GREEN,
    GREY,
    IDLE_TEXT,
    RED,
    TURN_HEAD_TEXT,
    BannerRule,
    BannerView,
    decision_banner,
    event_row,
    explanation_of,
    face_overlay,
    idle_banner,
    row_color,
)

BOX = (100.0, 50.0, 180.0, 150.0)
LANDMARKS = np.array([[120, 80], [160, 80], [140, 100], [125, 125], [155, 125]], np.float32)


def face(name, distance, state, status, employee_id=None, threshold=0.18) -> FaceReport:
    return FaceReport(box=BOX, landmarks=LANDMARKS, name=name,
                      employee_id=employee_id if employee_id or name is None else "E1",
                      distance=distance, threshold=threshold, state=state, status=status,
                      explanation="")


def decision(kind, name=None, person_id=None, distance=0.08, threshold=0.18, reason="", track_id=1,
             mode="identify") -> Decision:
    return Decision(time=10.0, kind=kind, person_id=person_id, name=name, distance=distance,
                    threshold=threshold, frames_used=3, reason=reason, track_id=track_id, box=BOX,
                    mode=mode)


ANA = decision(GRANTED, "Ana", "E1", 0.08, reason="Ana recognised in 3 of the last 5 frames "
               "(median distance 0.08 ≤ threshold 0.18)")
BOB = decision(GRANTED, "Bob", "E2", 0.11, reason="Bob recognised in 3 of the last 5 frames "
               "(median distance 0.11 ≤ threshold 0.18)", track_id=2)
STRANGER = decision(DENIED, distance=0.52, reason="stranger: no one within threshold 0.18 in 5 frames "
                    "(nearest Ana, median distance 0.52)", track_id=3)


# -- face boxes ----------------------------------------------------------------------------
@pytest.mark.parametrize("state, status, label, color", [
    ("granted", "Ana: granted", "Ana  0.08 · granted", GREEN),
    ("cooldown", "Ana: already let in 4 s ago", "Ana  0.08 · already let in 4 s ago", GREEN),
    # Matched but not (yet) let in: the box says what is going on, never whom it resembles.
    ("recognising", "recognising Ana 2/3", "recognising 2/3  0.08", AMBER),
    ("verifying", "checking Ana 1/3", "checking 1/3  0.08", AMBER),
    ("turn_head", "Ana: turn your head a little", "turn your head  0.08", AMBER),
    ("denied", "Ana: denied", "denied  0.08", RED),
])
def test_a_face_shows_a_name_only_once_let_in_as_that_person(state, status, label, color):
    ov = face_overlay(face("Ana", 0.08, state, status))
    assert (ov.label, ov.color) == (label, color)
    assert ov.box == BOX and ov.landmarks is LANDMARKS
    # Kiosk mode: no numbers on the faces either.
    assert face_overlay(face("Ana", 0.08, state, status), numbers=False).label == label.replace("  0.08", "")


@pytest.mark.parametrize("state, status, label", [
    ("stranger", "unknown 3/5", "unknown  0.41 · 3/5"),
    ("denied", "stranger: denied", "unknown  0.41 · denied"),
    # The track was let in (or is being recognised) on earlier frames; this frame's face is
    # not accepted as anyone: no name on the box, not even inside the status.
    ("granted", "Ana: granted", "unknown  0.41"),
    ("recognising", "recognising Ana 2/3", "unknown  0.41"),
    ("cooldown", "Ana: already let in 2 s ago", "unknown  0.41"),
    ("looking", "looking", "unknown  0.41"),
])
def test_a_face_not_recognised_this_frame_is_unknown_and_red(state, status, label):
    ov = face_overlay(face(None, 0.41, state, status))
    assert ov.label == label and ov.color == RED
    assert "Ana" not in ov.label


@pytest.mark.parametrize("state, status", [("recognising", "recognising face 2/3"),
                                           ("turn_head", "face: follow the moving dot with your nose")])
def test_a_face_matched_but_not_yet_named_is_being_checked_not_a_stranger(state, status):
    """Issue 21 withholds the name of a face that may still need a PIN; the employee standing
    there is being checked (amber), not refused as unknown (red), and still named nowhere."""
    f = face(None, 0.08, state, status)
    ov = face_overlay(replace(f, withheld=True))
    assert ov.label == "checking  0.08" and ov.color == AMBER
    assert face_overlay(f).color == RED              # not matched this frame: unknown, as before


def test_a_status_naming_someone_else_is_not_painted_on_this_face():
    """This frame's face is Bob, but the track's votes were Ana's: Bob's name only."""
    ov = face_overlay(face("Bob", 0.12, "recognising", "recognising Ana 2/3", employee_id="E2"))
    assert ov.label == "recognising 2/3  0.12" and ov.color == AMBER
    assert face_overlay(face("Bob", 0.12, "granted", "Ana: granted")).label == "Bob  0.12 · granted"


def test_with_nobody_to_compare_a_face_is_grey_and_has_no_distance():
    ov = face_overlay(face(None, math.inf, "stranger", "unknown 1/5"))
    assert ov.label == "unknown · 1/5" and ov.color == GREY


# -- decisions in words --------------------------------------------------------------------
def test_every_decision_text_carries_distance_and_threshold():
    assert explanation_of(ANA) == ANA.reason
    assert explanation_of(decision(DENIED, distance=0.41, reason="stranger")) == \
        "stranger (distance 0.41 > threshold 0.18)"
    assert explanation_of(decision(DENIED, distance=math.inf, reason="")) == "threshold 0.18"
    assert explanation_of(decision(DENIED, distance=0.3, threshold=math.nan, reason="")) == "distance 0.30"
    assert explanation_of(decision(DENIED, distance=math.inf, threshold=math.nan, reason="")) == \
        "no distance measured"


def test_banner_and_row_texts_of_a_decision():
    granted = decision_banner(ANA)
    assert (granted.state, granted.title, granted.detail, granted.sound, granted.person_id) == \
        ("granted", "Welcome, Ana", "Please come in.", "granted", "E1")
    denied = decision_banner(STRANGER)
    assert (denied.state, denied.title, denied.detail, denied.sound) == \
        ("denied", "Not recognised", "Please ask a member of staff to let you in.", "denied")
    assert event_row(ANA, "12:00:01") == f"GRANTED  Ana\n12:00:01  ·  0.08\n{ANA.reason}"
    # The numbers stay in the row; the nearest enrolled person's name does not.
    assert event_row(STRANGER, "12:00:02") == ("DENIED  not let in\n12:00:02  ·  0.52\nstranger: no one within "
                                               "threshold 0.18 in 5 frames (nearest enrolled person, median "
                                               "distance 0.52)")
    # A verify-mode refusal does not name the claimed person; no distance when none was measured.
    claimed = decision(DENIED, "Abel Pacheco", "E002", math.inf, reason="not Abel Pacheco: the face "
                       "looks nearer to Hugo Chavez (5 frames)", mode="verify")
    assert event_row(claimed, "12:00:03") == ("DENIED  not let in\n12:00:03\nnot the claimed person: the face "
                                              "looks nearer to enrolled person (5 frames) (threshold 0.18)")
    assert row_color(ANA) == GREEN and row_color(STRANGER) == RED


def test_idle_banner_says_how_to_enrol_when_nobody_is():
    assert idle_banner(3).title == IDLE_TEXT and idle_banner(None).title == IDLE_TEXT
    notice = idle_banner(0)
    assert notice.title == EMPTY_GALLERY_TEXT == "Nobody is enrolled yet"
    assert "Ctrl+E" in notice.detail and notice.state == "problem" and notice.role == "notice"


# -- which banner is on show ---------------------------------------------------------------
def test_a_granted_holds_the_banner_against_a_bystanders_denied():
    rule = BannerRule(hold_s=4.0)
    assert rule.decision(ANA, now=100.0).title == "Welcome, Ana"
    assert rule.decision(STRANGER, now=101.5) is None          # no banner, no sound
    assert rule.shown.title == "Welcome, Ana"
    shown = rule.decision(BOB, now=102.0)                      # another GRANTED does take it
    assert shown.title == "Welcome, Bob" and rule.until == 106.0
    assert rule.decision(STRANGER, now=105.9) is None          # Bob's hold counts from his grant
    assert rule.decision(STRANGER, now=106.0).title == "Not recognised"   # the hold is over


def test_a_denied_gives_way_to_the_next_decision_and_the_hold_ends_in_idle():
    rule = BannerRule(hold_s=4.0)
    assert rule.decision(STRANGER, now=0.0).state == "denied"
    assert rule.decision(STRANGER, now=1.0).state == "denied"   # a newer refusal replaces it
    assert rule.decision(ANA, now=2.0).state == "granted"
    assert rule.expire(now=6.0).title == IDLE_TEXT
    assert rule.expire(now=7.0) is None                         # idle stays idle


def test_turn_your_head_is_never_hidden_by_another_persons_decision():
    rule = BannerRule(hold_s=4.0)
    ana_waits = face("Ana", 0.09, "turn_head", "Ana: turn your head a little")
    stranger_face = face(None, 0.5, "stranger", "unknown 2/5")
    prompt = rule.faces([stranger_face, ana_waits], now=0.0)
    assert prompt.title == TURN_HEAD_TEXT and "Ana" not in prompt.detail
    assert prompt.person_id == "E1"
    assert rule.faces([ana_waits], now=0.1) is None              # unchanged: nothing to repaint
    assert rule.decision(STRANGER, now=0.5) is None              # a bystander's DENIED
    assert rule.decision(BOB, now=0.6) is None                   # and someone else's GRANTED
    assert rule.expire(now=4.6) is None and rule.shown.title == TURN_HEAD_TEXT
    photo = decision(DENIED, "Ana", "E1", 0.09, reason="within 8 s the face did not move like a real "
                     "head (photo check: motion 0.01 < 0.05); a photo or a screen?")
    shown = rule.decision(photo, now=1.0)                      # her own decision replaces it
    assert (shown.title, shown.detail) == ("Not recognised", "Please ask a member of staff to let you in.")


def test_turn_your_head_waits_for_a_granted_and_goes_when_nobody_waits():
    rule = BannerRule(hold_s=4.0)
    rule.decision(BOB, now=0.0)
    ana_waits = face("Ana", 0.09, "turn_head", "Ana: turn your head a little")
    assert rule.faces([ana_waits], now=1.0) is None              # Bob's welcome stays up
    assert rule.faces([ana_waits], now=4.5).title == TURN_HEAD_TEXT
    assert rule.faces([face(None, 0.5, "stranger", "unknown 1/5")], now=5.0).title == IDLE_TEXT
    # A prompt for a face this frame does not name does not name anyone either.
    unnamed = face(None, 0.2, "turn_head", "Ana: turn your head a little")
    assert "Ana" not in rule.faces([unnamed], now=6.0).detail


def test_a_claim_prompt_waits_for_the_decision_on_that_claim():
    """Verify mode: "Abel: look at the camera" stays until Abel's claim is decided; a refused
    id typed just before (its DENIED comes a frame later) does not cover it."""
    rule = BannerRule(hold_s=4.0)
    prompt = BannerView("problem", "Abel Pacheco: look at the camera", "Your face is checked…", "claim",
                        person_id="E002")
    rule.force(prompt)
    unknown = decision(DENIED, None, None, math.inf, reason="claimed id 'E999': no employee has this id",
                       track_id=-1, mode="verify")
    assert rule.decision(unknown, now=0.1) is None and rule.shown == prompt
    abel = decision(DENIED, "Abel Pacheco", "E002", 0.61, reason="not Abel Pacheco: distance 0.61 > "
                    "threshold 0.18 in 5 frames", mode="verify")
    assert rule.decision(abel, now=0.5).title == "Not recognised"
    assert event_row(unknown, "09:00:00").startswith("DENIED  unknown employee id\n09:00:00\n")


def test_track_states_as_text_enums_are_read_by_their_values():
    from faceguard.access.records import TrackState
    ov = face_overlay(face("Ana", 0.08, TrackState.COOLDOWN, "Ana: already let in 4 s ago"))
    assert ov.label == "Ana  0.08 · already let in 4 s ago" and ov.color == GREEN
    other = face_overlay(face("Bob", 0.12, TrackState.RECOGNISING, "recognising Ana 2/3"))
    assert other.label == "recognising 2/3  0.12"
    nobody = face_overlay(face(None, math.inf, TrackState.NO_GALLERY, "nobody is enrolled yet"))
    assert nobody.label == "unknown" and nobody.color == GREY
    waiting = face("Ana", 0.09, TrackState.TURN_HEAD, "Ana: turn your head a little")
    assert BannerRule().faces([waiting], now=0.0).title == TURN_HEAD_TEXT


def test_a_denied_never_covers_the_empty_gallery_notice():
    rule = BannerRule()
    assert rule.set_enrolled(0).title == EMPTY_GALLERY_TEXT
    assert rule.decision(STRANGER, now=0.0) is None
    assert rule.shown.title == EMPTY_GALLERY_TEXT
    assert rule.set_enrolled(0) is None                            # nothing changed
    assert rule.set_enrolled(1).title == IDLE_TEXT                 # someone was enrolled
    assert rule.decision(STRANGER, now=1.0).title == "Not recognised"
    assert rule.set_enrolled(0) is None                            # the DENIED finishes its hold
    assert rule.expire(now=5.0).title == EMPTY_GALLERY_TEXT


def test_forced_notices_replace_whatever_is_up():
    rule = BannerRule(hold_s=4.0)
    rule.decision(ANA, now=0.0)
    lost = BannerView("problem", "Camera disconnected, retrying…", "Check the cable.", "camera")
    assert rule.force(lost) == lost and not rule.held(0.5)
    assert rule.decision(STRANGER, now=0.6).title == "Not recognised"     # nothing holds a notice
    claim = BannerView("denied", "DENIED", "No active employee with id 'E9'.", "decision")
    rule.force(claim, now=1.0)
    assert rule.held(4.9) and not rule.held(5.0)
