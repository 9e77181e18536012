"""The door window's admin side: the admin PIN in front of every admin action (with its
back-off), and the dialogs it opens: enrol, gallery, settings, access log.

A mixin of DoorWindow (door_window.py lays out and paints the door; this is what a manager
does with it), so the window's file stays about the door.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox

from faceguard.ui.presentation import PAUSED_TEXT, BannerView

log = logging.getLogger(__name__)

CONFIRM_MS = 8000     # notices close themselves: the door must not stay covered


class AdminActions:
    """Needs of the window: settings, gallery, pipeline, controller, pin_guard, statusBar()."""

    def ask_pin(self, purpose: str = "continue") -> str | None:
        """Asks for the admin PIN (tests replace this)."""
        pin, ok = QInputDialog.getText(self, "Admin PIN", f"Enter the admin PIN to {purpose}:",
                                       QLineEdit.EchoMode.Password)
        return pin if ok else None

    def admin_ok(self, purpose: str = "continue") -> bool:
        """True when no admin PIN is set, or when the right one is given now. Wrong PINs back
        off (pin.PinGuard); what went wrong shows in the status bar, which kiosk mode keeps."""
        stored = self.settings.admin_pin_hash
        if not stored:
            return True
        if self.pin_guard.wait_s() > 0:
            self._admin_refused(self.pin_guard.locked_message())
            return False
        pin = self.ask_pin(purpose)
        if pin is None:
            return False
        ok, message = self.pin_guard.check(pin, stored)
        if not ok:
            self._admin_refused(message)
        return ok

    def _admin_refused(self, message: str) -> None:
        # The status bar alone is too narrow to read beside its permanent fields in kiosk mode.
        self.admin_message = message
        self.statusBar().showMessage(message, 10000)
        self._notice(QMessageBox.Icon.Warning, "Admin PIN", message)

    def _notice(self, icon, title: str, text: str) -> None:
        """A message that does not block the door check and closes itself (one at a time)."""
        old = getattr(self, "notice_box", None)
        if old is not None:
            try:
                old.close()
            except RuntimeError:   # it closed itself already (deleted on close)
                pass
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.NonModal)
        QTimer.singleShot(CONFIRM_MS, box, box.close)
        box.show()
        self.notice_box = box

    def request_quit(self) -> None:
        """Ctrl+Q: quitting stops the door check, so it needs the admin PIN when one is set."""
        if self.admin_ok("quit FaceGuard"):
            self._quit_ok = True
            self.close()

    # -- dialogs --------------------------------------------------------------------------
    def _need_gallery(self) -> bool:
        if self.gallery is None:
            QMessageBox.warning(self, "FaceGuard", "The gallery is not open, so people cannot be "
                                "enrolled or listed. See the log for why.")
            return False
        return True

    def open_enrol(self) -> None:
        if not self.admin_ok("enrol a person") or not self._need_gallery():
            return
        from faceguard.ui.enroll_dialog import EnrollDialog
        # One camera, one reader: most webcams cannot be opened twice, so the door check lets
        # go of it while the dialog's live preview uses the same source; it restarts after.
        # Both open it through the controller's OneReader: the preview gets the camera only
        # once the door's worker has closed it, however long its last frame takes.
        live = self.controller.running
        self.stop()
        if live:
            self._paint(self.rule.force(BannerView(
                "problem", PAUSED_TEXT, "The door check starts again when enrolment is closed.", "paused")))
            self.video.set_frame(None)
            self.video.set_placeholder(PAUSED_TEXT)
            self.camera_label.setText("Camera: paused (enrolling)")
        dialog = EnrollDialog(self.pipeline, self.gallery, self.settings, parent=self,
                              open_source=self.controller.camera, live=live)
        try:
            dialog.exec()
            self._confirm_enrolment(dialog)
        finally:
            dialog.deleteLater()   # a child of this window: else kept as long as the window
            if live:
                self.start()   # builds the check from the gallery as it is now
            else:
                self.controller.gallery_changed()
                self.refresh_checklist()

    def open_gallery(self) -> None:
        if not self.admin_ok("open the gallery") or not self._need_gallery():
            return
        from faceguard.ui.gallery_dialog import GalleryDialog
        GalleryDialog(self.gallery, self.pipeline, self.settings, parent=self).exec()
        self.controller.gallery_changed()
        self.refresh_checklist()

    def open_settings(self) -> None:
        if not self.admin_ok("change the settings"):
            return
        from faceguard.ui.settings_dialog import SettingsDialog
        dlg = SettingsDialog(self.settings, parent=self, save=self._save, **self.controller.calibration(),
                             checked_fps=self.status_line.checked_fps)
        if dlg.exec():
            self.settings = dlg.settings
            self.claim_box.setVisible(self.settings.mode == "verify")
            self.start()

    def open_log(self) -> None:
        if not self.admin_ok("see the access log") or not self._need_gallery():
            return
        from faceguard.ui.log_window import LogWindow
        LogWindow(self.gallery, parent=self).exec()

    def open_today(self) -> None:
        """Who came in today (ui/today_view.py), behind the admin PIN like the access log."""
        if not self.admin_ok("see who came in today") or not self._need_gallery():
            return
        from faceguard.ui.today_view import TodayView
        TodayView(self.gallery, parent=self).exec()

    def _confirm_enrolment(self, dialog) -> None:
        """Enrolment ends with a confirmation: who is in the gallery now, and that the door
        lets them in (a message that closes itself, and the status bar)."""
        people = [dialog.enrolled] if dialog.enrolled is not None else []
        names = [f"{p.name} ({p.employee_id})" for p in people]
        names += [f"{i.name} ({i.employee_id})" for i in getattr(dialog, "enrolled_many", [])]
        if not names:
            return
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        self.enrol_confirmation = (f"Enrolled {shown}. The door check lets "
                                   f"{'them' if len(names) > 1 else 'this person'} in from now on.")
        self.statusBar().showMessage(self.enrol_confirmation, 15000)
        self._notice(QMessageBox.Icon.Information, "Enrolled", self.enrol_confirmation)
