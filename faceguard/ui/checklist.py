"""The first-run checklist on the door window: enrol staff, set an admin PIN, choose a door
output. Shown until all three are done (or put away for this session with "Not now"); each
open item has a button that goes straight to where it is done."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QPushButton, QVBoxLayout

from faceguard.errors import FaceGuardError

DONE, TODO = "✓", "○"
# What to pick, under the item: a manager meeting "door output" for the first time has no idea.
HINTS = {"door": "How FaceGuard unlocks the door: a USB relay board, a command, or a web "
                 "address your door controller listens on (Settings ▸ Door; 'Test door' tries it). "
                 "To try FaceGuard out first, choose 'No door output (log only)'."}


@dataclass(frozen=True)
class Progress:
    enrolled: int
    pin_set: bool
    door_set: bool

    @property
    def done(self) -> bool:
        return self.enrolled > 0 and self.pin_set and self.door_set


def progress_of(settings, gallery) -> Progress:
    try:
        enrolled = len(gallery) if gallery is not None else 0
    except FaceGuardError:   # a gallery that cannot be read is reported elsewhere; here: not done
        enrolled = 0
    return Progress(enrolled, bool(settings.admin_pin_hash), settings.door.kind != "none")


class FirstRunChecklist(QFrame):
    enrol_wanted = Signal()
    settings_wanted = Signal()

    ITEMS = (("enrol", "Enrol your staff", "Enrol…"),
             ("pin", "Set an admin PIN", "Settings…"),
             ("door", "Choose a door output", "Settings…"))

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("checklist")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.dismissed = False
        title = QLabel("Getting started")
        title.setObjectName("sideTitle")
        grid = QGridLayout()
        self.marks: dict[str, QLabel] = {}
        self.texts: dict[str, QLabel] = {}
        self.buttons: dict[str, QPushButton] = {}
        self.hints: dict[str, QLabel] = {}
        for row, (key, text, button) in enumerate(self.ITEMS):
            self.marks[key] = QLabel(TODO)
            self.texts[key] = QLabel(text)
            self.texts[key].setWordWrap(True)
            self.buttons[key] = QPushButton(button)
            self.buttons[key].clicked.connect(self.enrol_wanted if key == "enrol" else self.settings_wanted)
            grid.addWidget(self.marks[key], 2 * row, 0)
            grid.addWidget(self.texts[key], 2 * row, 1)
            grid.addWidget(self.buttons[key], 2 * row, 2)
            if key in HINTS:
                self.hints[key] = QLabel(HINTS[key])
                self.hints[key].setObjectName("help")
                self.hints[key].setWordWrap(True)
                self.hints[key].setStyleSheet("color: #5f6670; font-size: 11px;")
                self.buttons[key].setToolTip(HINTS[key])
                grid.addWidget(self.hints[key], 2 * row + 1, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        self.later = QPushButton("Not now")
        self.later.setFlat(True)
        self.later.clicked.connect(self.dismiss)
        box = QVBoxLayout(self)
        box.addWidget(title)
        box.addLayout(grid)
        box.addWidget(self.later)

    def show_progress(self, p: Progress) -> None:
        states = {"enrol": p.enrolled > 0, "pin": p.pin_set, "door": p.door_set}
        for key, done in states.items():
            self.marks[key].setText(DONE if done else TODO)
            self.buttons[key].setVisible(not done)
            if key in self.hints:
                self.hints[key].setVisible(not done)
        if p.enrolled:
            self.texts["enrol"].setText(f"Enrol your staff ({p.enrolled} enrolled)")
        else:
            self.texts["enrol"].setText("Enrol your staff")
        self.setVisible(not p.done and not self.dismissed)

    def items_done(self) -> dict[str, bool]:
        return {key: self.marks[key].text() == DONE for key, _, _ in self.ITEMS}

    def dismiss(self) -> None:
        self.dismissed = True
        self.hide()
