"""The Settings dialog's second-factor fields (issue 21), on its Photo check tab: a PIN from
everyone at this door, a badge reader instead of the PIN, and learning extra templates from
PIN-confirmed visits. The same keys as `faceguard settings set`."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QWidget

from faceguard.settings import Settings


class FactorFields:
    def __init__(self, s: Settings):
        self.require_pin = QCheckBox("Ask everyone for their PIN at this door (face and PIN)")
        self.require_pin.setChecked(s.require_pin)
        self.badge = QCheckBox("A badge reader typing the employee id counts as the PIN")
        self.badge.setChecked(s.badge_as_factor)
        self.learn = QCheckBox("Learn from visits the PIN confirmed (up to 3 extra face templates)")
        self.learn.setChecked(s.learn_templates)

    def rows(self) -> list[tuple[str | None, str, QWidget, str]]:
        return [
            ("require_pin", "Second factor", self.require_pin, "For a server room. Otherwise the "
             "PIN is asked only when the face alone is not sure enough (or a person's own setting "
             "says so: Gallery → PIN and access…)."),
            ("badge_as_factor", "", self.badge, "The reader must type the id and Enter, like a "
             "keyboard."),
            ("learn_templates", "", self.learn, "Each kept only if it is close to the enrolment "
             "photo; listed, and removable, in Gallery → PIN and access…"),
        ]

    def apply(self, s: Settings) -> None:
        s.require_pin = self.require_pin.isChecked()
        s.badge_as_factor = self.badge.isChecked()
        s.learn_templates = self.learn.isChecked()
