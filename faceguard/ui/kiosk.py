"""Kiosk mode of the door window (issue 24): the screen faces visitors.

It shows the camera, the banner and what the person must do (the id box in verify mode);
nothing about anyone else (no recent events, no numbers on the faces: door_window paints the
boxes with ``numbers=not self.kiosk``) and no admin things (menu, checklist, status bar, the
status line, the no-camera page's choices and the camera's address): those come back only
after the admin PIN (Escape). A mixin of DoorWindow.
"""

from __future__ import annotations

from PySide6.QtCore import Qt


class KioskMode:
    """Needs of the window: kiosk, settings, checklist, side_panel, events_title, events,
    status_line, no_camera, refresh_checklist(), admin_ok(), menuBar(), statusBar()."""

    def set_kiosk(self, on: bool) -> None:
        self.kiosk = on
        self.menuBar().setVisible(not on)
        self.statusBar().setVisible(not on)
        for w in (self.events_title, self.events, self.status_line):
            w.setVisible(not on)
        self.side_panel.setVisible(not on or self.settings.mode == "verify")
        self.no_camera.set_locked(on)
        if on:
            self.checklist.hide()
            self.showFullScreen()
        else:
            self.refresh_checklist()
            self.showNormal()

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.key() == Qt.Key.Key_Escape and self.kiosk:
            if self.admin_ok("leave kiosk mode"):
                self.set_kiosk(False)
            return
        super().keyPressEvent(event)
