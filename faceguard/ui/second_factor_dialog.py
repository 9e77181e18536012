"""One person's second factor (issue 21), opened from the gallery dialog: their PIN (typed twice,
never shown), how they are let in (auth mode) and their learned templates (date, the visit's face,
Remove). The PIN goes straight to gallery/pins.py, which keeps only its salted scrypt hash."""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from faceguard.errors import FaceGuardError
from faceguard.gallery import pins, templates
from faceguard.ui.video import rgb_to_qimage

MODE_WORDS = {"face": "Face only (a doubtful face is denied)",
              "grey-pin": "Face, and the PIN when the face is doubtful (default)",
              "face+pin": "Face and PIN, always (e.g. a server room)"}


class SecondFactorDialog(QDialog):
    def __init__(self, gallery, employee_id: str, name: str, parent=None):
        super().__init__(parent)
        self.gallery = gallery
        self.employee_id = employee_id
        self.setWindowTitle(f"PIN and access: {name}")
        self.pin = QLineEdit()
        self.again = QLineEdit()
        for box in (self.pin, self.again):
            box.setEchoMode(QLineEdit.EchoMode.Password)
            box.setMaxLength(pins.MAX_DIGITS)
            box.setPlaceholderText(f"{pins.MIN_DIGITS}-{pins.MAX_DIGITS} digits")
        self.pin_state = QLabel()
        self.message = QLabel()
        self.message.setWordWrap(True)
        set_pin = QPushButton("Set PIN")
        self.clear_pin_btn = QPushButton("Remove PIN")
        self.mode = QComboBox()
        for key, words in MODE_WORDS.items():
            self.mode.addItem(words, key)
        self.mode.setCurrentIndex(list(MODE_WORDS).index(pins.auth_mode(gallery, employee_id)))
        self.templates = QListWidget()
        self.templates.setIconSize(QSize(48, 48))
        self.remove_btn = QPushButton("Remove template")
        close = QPushButton("Close")

        form = QFormLayout()
        form.addRow("New PIN", self.pin)
        form.addRow("Again", self.again)
        buttons = QHBoxLayout()
        buttons.addWidget(set_pin)
        buttons.addWidget(self.clear_pin_btn)
        buttons.addStretch(1)
        body = QVBoxLayout(self)
        body.addWidget(self.pin_state)
        body.addLayout(form)
        body.addLayout(buttons)
        body.addWidget(self.message)
        body.addWidget(QLabel("How this person is let in"))
        body.addWidget(self.mode)
        body.addWidget(QLabel("Learned from PIN-confirmed visits (at most 3)"))
        body.addWidget(self.templates, 1)
        body.addWidget(self.remove_btn)
        body.addWidget(close)

        set_pin.clicked.connect(lambda: self.set_pin())
        self.clear_pin_btn.clicked.connect(lambda: self.clear_pin())
        self.mode.currentIndexChanged.connect(lambda _: self.set_mode(self.mode.currentData()))
        self.remove_btn.clicked.connect(lambda: self.remove_template())
        close.clicked.connect(self.accept)
        self._refresh()
        self.resize(460, 520)

    def _refresh(self) -> None:
        has = pins.has_pin(self.gallery, self.employee_id)
        self.pin_state.setText("A PIN is set." if has else "No PIN set yet.")
        self.clear_pin_btn.setEnabled(has)
        self.templates.clear()
        for t in templates.templates(self.gallery, self.employee_id):
            item = QListWidgetItem(time.strftime("%Y-%m-%d %H:%M", time.localtime(t.created)))
            item.setData(Qt.ItemDataRole.UserRole, t.id)
            face = templates.snapshot(self.gallery, self.employee_id, t.id) if t.has_snapshot else None
            if face is not None:
                item.setIcon(QIcon(QPixmap.fromImage(rgb_to_qimage(face))))
            self.templates.addItem(item)
        self.remove_btn.setEnabled(self.templates.count() > 0)

    def set_pin(self) -> bool:
        typed, again = self.pin.text(), self.again.text()
        self.pin.clear()
        self.again.clear()
        if typed != again:
            self.message.setText("The two PINs differ; nothing was changed.")
            return False
        try:
            pins.set_pin(self.gallery, self.employee_id, typed)
        except FaceGuardError as exc:
            self.message.setText(str(exc))
            return False
        warning = pins.pin_warning(typed.strip())
        self.message.setText(f"PIN set. {warning}" if warning else "PIN set.")
        self._refresh()
        return True

    def clear_pin(self) -> None:
        pins.set_pin(self.gallery, self.employee_id, None)
        self.message.setText("PIN removed.")
        self._refresh()

    def set_mode(self, mode: str) -> None:
        pins.set_auth_mode(self.gallery, self.employee_id, mode)
        if mode != "face" and not pins.has_pin(self.gallery, self.employee_id):
            self.message.setText("Set a PIN too: without one, a face that needs it is denied.")

    def remove_template(self) -> bool:
        item = self.templates.currentItem() or self.templates.item(0)
        if item is None:
            return False
        templates.remove_template(self.gallery, self.employee_id, int(item.data(Qt.ItemDataRole.UserRole)))
        self._refresh()
        return True
