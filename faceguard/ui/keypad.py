"""The PIN keypad the door window shows when a face needs a second factor (issue 21).

Big touch buttons (0-9, clear, OK); the digits are never echoed (one dot per digit typed), and
the keypad names no one: the face it confirms was matched but not yet let in, and a stranger
must not learn whom they resemble. A badge reader that types an employee id + Enter works as a
keyboard: printable keys go into the entry, Enter sends it. What was typed leaves the widget only
through ``entered`` and is cleared at once.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

MAX_TYPED = 32              # a PIN is 8 digits at most; a badge id is short too
BUTTON_PX = 72              # a finger's width and more, for a touch screen
CLEAR, OK = "⌫", "OK"


class Keypad(QWidget):
    entered = Signal(int, str)          # (track id, what was typed)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("keypad")
        self.track_id: int | None = None
        self._typed = ""
        self.title = QLabel("Enter your PIN")
        self.title.setObjectName("keypadTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.dots = QLabel("")
        self.dots.setObjectName("keypadDots")
        self.dots.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.dots.setStyleSheet("font-size: 28px; letter-spacing: 6px;")
        grid = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        for k, key in enumerate(["1", "2", "3", "4", "5", "6", "7", "8", "9", CLEAR, "0", OK]):
            b = QPushButton(key)
            b.setMinimumSize(BUTTON_PX, BUTTON_PX)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            b.setStyleSheet("font-size: 26px;")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, key=key: self.press(key))
            self.buttons[key] = b
            grid.addWidget(b, k // 3, k % 3)
        box = QVBoxLayout(self)
        box.addWidget(self.title)
        box.addWidget(self.dots)
        box.addLayout(grid)
        self.setVisible(False)

    def ask(self, track_id: int) -> None:
        """Show the keypad for the face on ``track_id`` (a new request replaces an open one)."""
        self.track_id = track_id
        self._set("")
        self.setVisible(True)
        self.setFocus()

    def close_request(self) -> None:
        self.track_id = None
        self._set("")
        self.setVisible(False)

    @property
    def typed_count(self) -> int:
        return len(self._typed)

    def press(self, key: str) -> None:
        if key == CLEAR:
            self._set("")
        elif key == OK:
            self._send()
        elif len(self._typed) < MAX_TYPED:
            self._set(self._typed + key)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._send()
        elif event.key() == Qt.Key.Key_Backspace:
            self._set(self._typed[:-1])
        elif event.text() and event.text().isprintable():
            self.press(event.text())
        else:
            super().keyPressEvent(event)

    def _set(self, typed: str) -> None:
        self._typed = typed
        self.dots.setText("●" * len(typed))

    def _send(self) -> None:
        if self.track_id is None:
            return
        typed, track_id = self._typed, self.track_id
        self.close_request()
        self.entered.emit(track_id, typed)
