"""What the door window says and in which colour, as pure functions of the door check's records.

No widgets here: a `FaceReport` becomes an `Overlay` (box colour, label), a `Decision` becomes a
`BannerView` and an event-list row, and `BannerRule` decides which banner is on show when
several things want the screen at once. The window only lays these out; the tests check the
strings and colours on real records.

Priority of the banner (`BannerRule`):
* a decision holds the banner for `hold_s` seconds, then it goes back to idle;
* a GRANTED is not replaced during its hold by anything but another GRANTED (a bystander's
  DENIED still gets its row in the event list, but neither the banner nor the sound);
* "Please turn your head" is never hidden by another person's decision; only a decision about
  the face that is asked to turn replaces it (the same for "Ana: look at the camera" after an
  employee id was typed in verify mode: only the decision on that claim replaces it);
* with nobody enrolled, the idle banner says so and how to enrol, and a DENIED does not
  replace that notice (there is no one a passer-by could have been).

Words for the person at the door (issue 24): the banner says what to do or what happened in a
few words ("Welcome, Ana", "Not recognised"); the numbers go to the event list, the access log
and the manager's log window. No enrolled person's name is shown for a face that was not let in
as that person: not on the banner, not on the face's box, not in the event list's row (a
stranger would learn who is enrolled and whom they resemble).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtGui import QColor

from faceguard.access.records import GRANTED, Decision
from faceguard.doorcheck import FaceReport

GREEN = QColor(34, 160, 90)
RED = QColor(210, 50, 50)
AMBER = QColor(230, 160, 30)
GREY = QColor(140, 140, 140)

BANNER_HOLD_S = 4.0     # a decision stays on screen this long, then "look at the camera"

IDLE_TEXT = "Look at the camera"
IDLE_DETAIL = "Stand in front of the camera and look at it for a moment."
PAUSED_TEXT = "Paused while enrolling"
CAMERA_LOST_TEXT = "Camera disconnected, retrying…"
TURN_HEAD_TEXT = "Please turn your head a little"
FOLLOW_TARGET_TEXT = "Please look at the screen and follow the dot"
NOT_RECOGNISED_TEXT = "Not recognised"
NOT_RECOGNISED_DETAIL = "Please ask a member of staff to let you in."
WELCOME_DETAIL = "Please come in."
CLAIM_TEXT = "Look at the camera"
CLAIM_DETAIL = "Your face is checked against the photo enrolled for this id."
EMPTY_GALLERY_TEXT = "Nobody is enrolled yet"
EMPTY_GALLERY_DETAIL = ("The door lets no one in until a person is enrolled. Press Ctrl+E "
                        "(FaceGuard ▸ Enrol a person…) to enrol the first person.")

# What a face's track is doing, in words, for when the Decider's status text cannot be shown
# (it may name someone this frame's face is not).
STATE_WORDS = {"recognising": "recognising", "verifying": "checking", "granted": "granted",
               "cooldown": "already let in", "denied": "denied", "turn_head": "turn your head"}
_COUNT = re.compile(r"\d+/\d+$")   # "recognising Ana 2/3" → "2/3"
LET_IN = ("granted", "cooldown")   # the only states in which a face's box may carry a name


@dataclass
class Overlay:
    """One face drawn on the video: box in frame pixels, a label and a colour."""
    box: tuple[float, float, float, float]
    label: str = ""
    color: QColor = field(default_factory=lambda: GREY)
    landmarks: np.ndarray | None = None


def face_overlay(face: FaceReport, numbers: bool = True) -> Overlay:
    """Box colour and label for one face of this frame.

    The name comes only from this frame's match, and only once the face was let in as that
    person (`face.name` is None unless this frame's face is accepted as them): green once let
    in, amber while being checked, red when refused. A face this frame does not recognise is
    "unknown", red when it was compared with someone, grey when there was no one to compare
    with (empty gallery); a face matched but not yet named (its name withheld until it is let
    in: it may still need a PIN) is "checking", amber; the Decider's status is shown only where it names nobody. Without
    `numbers` (kiosk mode: the screen faces visitors) the label has no distance."""
    # str(): a TrackState is a text enum; its value is what the lookups below know.
    name, state, text = face.name, str(face.state), face.status or ""
    if name is not None and state in LET_IN:
        color = GREEN
        if text.startswith(name):          # "Ana: granted" → "granted", the name once
            text = text[len(name):].lstrip(" :·")
        elif name not in text:             # a status about someone else: its state in words
            text = _word(state, text)
        who = name
    elif name is not None:                 # matched, not (yet) let in: no name on the box
        color = RED if state == "denied" else AMBER
        who = _word(state, text) if state in STATE_WORDS else "checking"
        text = ""
    else:
        color, who = (RED if math.isfinite(face.distance) else GREY), "unknown"
        if state == "stranger":            # "unknown 3/5": the count of stranger frames
            text = text.removeprefix("unknown").strip(" :·")
        elif state == "denied":
            text = "denied"
        elif state == "pin":               # issue 21: matched, unnamed, waiting for the PIN
            text, color = "enter your PIN", AMBER
        elif face.withheld:                # matched, name withheld while checked: not a stranger
            who, text, color = "checking", "", AMBER
        else:
            text = ""                      # e.g. "recognising Ana 2/3" from earlier frames
    label = f"{who}  {face.distance:.2f}" if numbers and math.isfinite(face.distance) else who
    if text and text not in label:
        label = f"{label} · {text}"
    return Overlay(face.box, label, color, face.landmarks)


def _word(state: str, status: str) -> str:
    count = _COUNT.search(status)
    return f"{STATE_WORDS[state]} {count.group()}" if count else STATE_WORDS[state]


def explanation_of(decision: Decision) -> str:
    """Why the door decided this, with the numbers: the Decider's reason (e.g. "Ana recognised
    in 3 of the last 5 frames (median distance 0.11 ≤ threshold 0.18)"); when a reason lacks
    them, distance and threshold are added so no decision is shown without its evidence."""
    reason = decision.reason.strip()
    dist, thr = decision.distance, decision.threshold
    if "threshold" in reason or not (math.isfinite(dist) or math.isfinite(thr)):
        return reason or "no distance measured"
    if math.isfinite(dist) and math.isfinite(thr):
        numbers = f"distance {dist:.2f} {'≤' if dist <= thr else '>'} threshold {thr:.2f}"
    elif math.isfinite(thr):
        numbers = f"threshold {thr:.2f}"
    else:
        numbers = f"distance {dist:.2f}"
    return f"{reason} ({numbers})" if reason else numbers


def who_of(decision: Decision) -> str:
    """The person a decision is about, as the event list names them (nobody, for a face
    denied after a PIN or in the grey zone: a stranger must not learn whom they resemble)."""
    if decision.identity_hidden:
        return "face (not let in)"
    if decision.name:
        return decision.name
    if decision.kind == GRANTED:
        return "unknown person"
    return "unknown employee id" if decision.mode == "verify" and decision.person_id is None else "stranger"


def door_who(decision: Decision) -> str:
    """Who a decision is about, as the door window may say it: the name only when the face was
    let in as that person."""
    if decision.kind == GRANTED:
        return who_of(decision)
    return "unknown employee id" if decision.mode == "verify" and decision.person_id is None else "not let in"


_NEAREST = re.compile(r"\b(nearest|nearer to) [^,()]+?(?=,| \()")


def door_reason(decision: Decision) -> str:
    """`explanation_of` with its numbers, for the door window's event list: a refusal names no
    enrolled person (not the nearest, not the one the face resembled); the access log and the
    manager's log window keep the names."""
    why = explanation_of(decision)
    if decision.kind == GRANTED:
        return why
    if decision.name:
        why = why.replace(decision.name, "the claimed person" if decision.mode == "verify" else "the matched person")
    return _NEAREST.sub(lambda m: f"{m.group(1)} enrolled person", why)


def event_row(decision: Decision, when: str) -> str:
    """One row of the recent events: "GRANTED  Ana\\n12:00:01  ·  0.08\\n<why>"."""
    dist = f"  ·  {decision.distance:.2f}" if math.isfinite(decision.distance) else ""
    return f"{decision.kind}  {door_who(decision)}\n{when}{dist}\n{door_reason(decision)}"


def row_color(decision: Decision) -> QColor:
    return GREEN if decision.kind == GRANTED else RED


# -- the banner ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BannerView:
    """What the banner shows: `state` picks the style sheet's colours (idle | granted | denied |
    problem); `role` says why it is up (idle, notice, decision, turn_head, claim, camera,
    paused, problem)."""
    state: str
    title: str
    detail: str
    role: str = "problem"
    sound: str | None = None               # "granted" | "denied" | "prompt": played when shown
    person_id: Hashable | None = None      # whose decision, or who is asked to turn
    decision: Decision | None = None
    arrow: str | None = None               # a big arrow beside the text (the challenge)
    target: Any = None                     # the moving dot's path (challenge.TargetPath)


def idle_banner(enrolled: int | None = None) -> BannerView:
    """"Look at the camera", or, with nobody enrolled (`enrolled == 0`), how to enrol."""
    if enrolled == 0:
        return BannerView("problem", EMPTY_GALLERY_TEXT, EMPTY_GALLERY_DETAIL, role="notice")
    return BannerView("idle", IDLE_TEXT, IDLE_DETAIL, role="idle")


def decision_banner(decision: Decision) -> BannerView:
    """Words for the person at the door, no numbers: "Welcome, Ana" or "Not recognised"."""
    if decision.kind == GRANTED:
        title = f"Welcome, {decision.name}" if decision.name else "Welcome"
        return BannerView("granted", title, WELCOME_DETAIL, "decision", "granted", decision.person_id, decision)
    return BannerView("denied", NOT_RECOGNISED_TEXT, NOT_RECOGNISED_DETAIL, "decision", "denied",
                      decision.person_id, decision)


# The person faces the screen, so the screen's left is their left: ← means "turn LEFT".
ARROWS = {"LEFT": "←", "RIGHT": "→", "UP": "↑", "DOWN": "↓", "UP-LEFT": "↖", "UP-RIGHT": "↗",
          "DOWN-LEFT": "↙", "DOWN-RIGHT": "↘"}
CHALLENGE_WORDS = {"LEFT": "to your LEFT", "RIGHT": "to your RIGHT", "UP": "UP"}
FOLLOW_TEXT = FOLLOW_TARGET_TEXT     # issue 24's words for the person at the door


def turn_head_banner(face: FaceReport) -> BannerView:
    """What the person must do now, in words (no name: the face is not let in yet)."""
    if "please wait" in face.status:      # the 2nd failed photo check within minutes: a wait
        wait = re.search(r"please wait \d+ s", face.status)
        detail = (wait.group(0).capitalize() if wait else "Please wait a moment") + ", then try again."
        return BannerView("problem", "Please wait", detail, "turn_head", person_id=face.employee_id)
    if face.target is not None:
        return BannerView("problem", FOLLOW_TEXT, "Point your nose at the moving dot and follow it "
                          "until it stops.", "turn_head", sound="prompt",
                          person_id=face.employee_id, target=face.target)
    if face.direction in CHALLENGE_WORDS:
        return BannerView("problem", f"Turn your head {CHALLENGE_WORDS[face.direction]}",
                          "Then look back at the camera.", "turn_head", sound="prompt",
                          person_id=face.employee_id, arrow=ARROWS[face.direction])
    if face.direction:                    # a moving target on the screen
        return BannerView("problem", FOLLOW_TARGET_TEXT, "Keep your head in view and follow it with "
                          "your eyes and head.", "turn_head", sound="prompt", person_id=face.employee_id)
    return BannerView("problem", TURN_HEAD_TEXT, "Turn your head slowly left and right, then look "
                      "at the camera.", "turn_head", person_id=face.employee_id)


def claim_banner(person_id: Hashable) -> BannerView:
    """Verify mode, an id typed: look at the camera (the id's name is not shown before the face
    is let in as that person)."""
    return BannerView("problem", CLAIM_TEXT, CLAIM_DETAIL, "claim", person_id=person_id)


def unknown_id_banner(employee_id: str) -> BannerView:
    return BannerView("denied", NOT_RECOGNISED_TEXT, f"No active employee has the id '{employee_id}'. "
                      "Check it and try again.", "decision")


# Issue 21: a face waiting for its PIN; names no one (the keypad beside asks for the digits).
PIN_BANNER = BannerView("problem", "Enter your PIN", "Type your PIN on the keypad, then press OK.", "pin",
                        sound="prompt")


class BannerRule:
    """Which banner is on show. Pure: every call gets the time (seconds, any monotonic clock);
    each returns the BannerView to paint now, or None when the banner stays as it is."""

    def __init__(self, hold_s: float = BANNER_HOLD_S):
        self.hold_s = hold_s
        self.enrolled: int | None = None     # active people in the gallery; None = not known
        self.shown = idle_banner()
        self.until = -math.inf               # the shown decision holds the banner until then

    def held(self, now: float) -> bool:
        return self.shown.role == "decision" and now < self.until

    def _show(self, view: BannerView, until: float = -math.inf) -> BannerView:
        self.shown, self.until = view, until
        return view

    def takes_banner(self, view: BannerView, now: float) -> bool:
        """Whether a decision's banner may replace the one on show (see the module doc)."""
        shown = self.shown
        if shown.role in ("turn_head", "claim"):
            return view.person_id is not None and view.person_id == shown.person_id
        if view.state == "denied" and (self.enrolled == 0 or (self.held(now) and shown.state == "granted")):
            return False
        return True

    def decision(self, decision: Decision, now: float) -> BannerView | None:
        """A new decision: its banner when it takes the screen (then it holds for `hold_s` and
        its sound plays), else None (it only goes to the event list)."""
        view = decision_banner(decision)
        if not self.takes_banner(view, now):
            return None
        return self._show(view, now + self.hold_s)

    def faces(self, faces: Sequence[FaceReport], now: float) -> BannerView | None:
        """This frame's faces: ask a recognised face waiting for the photo check to turn its
        head (unless a GRANTED is on hold); take the request down once no face waits."""
        waiting = [f for f in faces if str(f.state) == "turn_head"]
        if waiting:
            if self.held(now) and self.shown.state == "granted":
                return None
            view = turn_head_banner(waiting[0])
            return None if view == self.shown else self._show(view)
        if any(str(f.state) == "pin" for f in faces) and not (self.held(now) and self.shown.state == "granted"):
            return None if self.shown == PIN_BANNER else self._show(PIN_BANNER)
        if self.shown.role in ("turn_head", "pin"):
            return self._show(idle_banner(self.enrolled))
        return None

    def expire(self, now: float) -> BannerView | None:
        """The hold timer ran out: a decision on show gives way to the idle banner."""
        if self.shown.role != "decision":
            return None
        return self._show(idle_banner(self.enrolled))

    def set_enrolled(self, count: int | None) -> BannerView | None:
        """The gallery's size changed: the idle banner (or the empty-gallery notice) follows."""
        self.enrolled = count
        if self.shown.role in ("idle", "notice"):
            view = idle_banner(count)
            return None if view == self.shown else self._show(view)
        return None

    def idle(self) -> BannerView:
        return self._show(idle_banner(self.enrolled))

    def force(self, view: BannerView, now: float | None = None) -> BannerView:
        """A notice the window must show whatever is up (camera lost, paused, a claim);
        with `now`, it holds like a decision."""
        return self._show(view, -math.inf if now is None else now + self.hold_s)


# -- the status line under the banner (issue 24): what must not be cut off -------------------
def site_words(status: str) -> tuple[str, str]:
    """The site watcher's status (site/watch.status_line) as a few words and a level (ok |
    problem) for the line under the banner; the whole text goes in its tooltip."""
    if not status:
        return "", "ok"
    if status.startswith("site unreachable"):
        return "⚠ Site unreachable: this door decides from its own copy", "problem"
    if "connecting" in status:
        return "Site: connecting…", "ok"
    return "✓ Site: in step", "ok"


def rate_words(checked_fps: float, camera_fps: float) -> str:
    return f"Checking {checked_fps:.1f} frames/s (camera {camera_fps:.0f}/s)"
