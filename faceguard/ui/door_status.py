"""The line under the door window's banner (issue 24): the site's state in a few words and the
check's frame rate, where the status bar's narrow fields cannot cut them off (the site line is
the only sign of an outage). The whole site text is its tooltip."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QLabel

from faceguard.ui.presentation import rate_words, site_words

RATE_EVERY_S = 1.0     # the rate is read by a person: once a second is enough


class StatusLine(QLabel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("statusLine")
        self.setWordWrap(True)
        self.site_text = ""
        self.rate_text = ""
        self._rate_at = -1e9
        self.checked_fps: float | None = None    # the latest, for the Settings' frame words

    def show_site(self, status: str) -> None:
        """`status`: the site watcher's status line ("" for a door on its own)."""
        self.site_text, level = site_words(status)
        self.setToolTip(status)
        self.setProperty("state", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self._paint()

    def show_rate(self, checked_fps: float, camera_fps: float) -> None:
        self.checked_fps = checked_fps
        now = time.monotonic()
        if now - self._rate_at >= RATE_EVERY_S or not self.rate_text:
            self._rate_at = now
            self.rate_text = rate_words(checked_fps, camera_fps)
            self._paint()

    def _paint(self) -> None:
        self.setText("   ·   ".join(filter(None, [self.site_text, self.rate_text])))
