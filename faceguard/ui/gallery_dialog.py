"""The gallery: who is enrolled, with search, rename, change of id, deactivate / activate, a
valid-until date, replace photo (the enrolment photo checks), remove, export and import.

A QTableView over people_model.PeopleModel (lazy thumbnails).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import (
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from faceguard.errors import FaceGuardError
from faceguard.gallery import portable
from faceguard.gallery.person import last_day
from faceguard.gallery.suspension import resume, suspended_until
from faceguard.ui.people_model import THUMB_PX, PeopleModel
from faceguard.vision.image import load_image

log = logging.getLogger(__name__)

class GalleryDialog(QDialog):
    # Emitted after every change made here. The running door's check shares this connection,
    # so it cannot notice the write itself (SQLite's data_version counts other connections):
    # the window's controller reloads at once, as it does for the command line's writes.
    changed = Signal()

    def __init__(self, gallery, pipeline=None, settings=None, parent=None):
        super().__init__(parent)
        reload_now = getattr(getattr(parent, "controller", None), "gallery_changed", None)
        if callable(reload_now):
            self.changed.connect(reload_now)
        self.setWindowTitle("Gallery")
        self.gallery = gallery
        self.pipeline = pipeline
        self.threshold = getattr(settings, "threshold", None)   # the duplicate rule's, as enrolment
        self.model = PeopleModel(gallery, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by name or employee id")
        self.search.setClearButtonEnabled(True)
        self.count = QLabel()
        self.count.setObjectName("count")
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(THUMB_PX + 8)
        self.table.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.resizeSection(0, THUMB_PX + 16)
        hh.resizeSection(1, 200)
        hh.resizeSection(2, 110)
        hh.resizeSection(3, 130)
        hh.resizeSection(4, 130)
        hh.setStretchLastSection(True)

        self.rename_btn = QPushButton("Rename…")
        self.change_id_btn = QPushButton("Change id…")
        self.active_btn = QPushButton("Deactivate")
        self.active_btn.setToolTip("An inactive person stays enrolled but is never let in.")
        self.valid_btn = QPushButton("Valid until…")
        self.replace_btn = QPushButton("Replace photo…")
        self.remove_btn = QPushButton("Remove…")
        self.remove_btn.setObjectName("danger")
        self.factor_btn = QPushButton("PIN and access…")   # issue 21: PIN, auth mode, templates
        self.resume_btn = QPushButton("Resume face entry")
        self.resume_btn.setToolTip("Face entry was suspended after repeated failed photo checks "
                                   "(a video or photo held up?): let this person in by face again.")
        self.export_btn = QPushButton("Export…")
        self.import_btn = QPushButton("Import…")
        close = QPushButton("Close")

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.count)
        actions = QHBoxLayout()
        for b in self._person_buttons():
            actions.addWidget(b)
        actions.addWidget(self.resume_btn)
        actions.addStretch(1)
        for b in (self.export_btn, self.import_btn, close):
            actions.addWidget(b)
        body = QVBoxLayout(self)
        body.addLayout(top)
        body.addWidget(self.table, 1)
        body.addLayout(actions)

        self.search.textChanged.connect(self._filter)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.rename_btn.clicked.connect(lambda: self.rename_selected())
        self.change_id_btn.clicked.connect(lambda: self.change_id_selected())
        self.active_btn.clicked.connect(lambda: self.toggle_active_selected())
        self.valid_btn.clicked.connect(lambda: self.valid_until_selected())
        self.replace_btn.clicked.connect(lambda: self.replace_selected())
        self.remove_btn.clicked.connect(lambda: self.remove_selected())
        self.factor_btn.clicked.connect(lambda: self.second_factor_selected())
        self.resume_btn.clicked.connect(lambda: self.resume_selected())
        self.export_btn.clicked.connect(lambda: self.export_to())
        self.import_btn.clicked.connect(lambda: self.import_from())
        close.clicked.connect(self.accept)
        self._update_buttons()
        self.resize(1040, 560)

    def _person_buttons(self) -> tuple:
        return (self.rename_btn, self.change_id_btn, self.active_btn, self.valid_btn,
                self.replace_btn, self.factor_btn, self.remove_btn)

    def second_factor_selected(self, show: bool = True):
        """The selected person's PIN, auth mode and learned templates (second_factor_dialog)."""
        from faceguard.ui.second_factor_dialog import SecondFactorDialog

        p = self.selected()
        if p is None:
            return None
        dialog = SecondFactorDialog(self.gallery, p.employee_id, p.name, self)
        if show:
            dialog.exec()
        return dialog

    # -- helpers ----------------------------------------------------------------------------
    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self._update_buttons()

    def _update_buttons(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count.setText(f"{total} people" if shown == total else f"{shown} of {total} people")
        p = self.selected()
        for b in self._person_buttons():
            b.setEnabled(p is not None)
        self.active_btn.setText("Activate" if p is not None and not p.enabled else "Deactivate")
        # Shown only for a person whose face entry is suspended now (gallery/suspension.py).
        self.resume_btn.setVisible(p is not None and suspended_until(self.gallery, p.employee_id) is not None)
        self.export_btn.setEnabled(total > 0)

    def selected(self):
        rows = self.table.selectionModel().selectedRows()
        return self.proxy.data(rows[0], Qt.ItemDataRole.UserRole) if rows else None

    def select(self, employee_id: str) -> bool:
        for r in range(self.proxy.rowCount()):
            p = self.proxy.data(self.proxy.index(r, 0), Qt.ItemDataRole.UserRole)
            if p.employee_id == employee_id:
                self.table.selectRow(r)
                return True
        return False

    def _refresh(self, keep: str | None = None) -> None:
        self.changed.emit()          # first: the door stops letting a deactivated person in
        self.model.reload()
        if keep:
            self.select(keep)
        self._update_buttons()

    def _fail(self, exc: FaceGuardError) -> None:
        QMessageBox.warning(self, "Gallery", str(exc))

    # prompts (tests replace these)
    def ask_text(self, title: str, label: str, text: str = "") -> str | None:
        value, ok = QInputDialog.getText(self, title, label, QLineEdit.EchoMode.Normal, text)
        return value if ok else None

    def confirm(self, question: str) -> bool:
        return QMessageBox.question(self, "Gallery", question) == QMessageBox.StandardButton.Yes

    def ask_open(self, title: str, filt: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, title, str(Path.home()), filt)
        return path or None

    def ask_save(self, title: str, filt: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.home() / "faceguard-gallery.zip"), filt)
        return path or None

    # -- actions ----------------------------------------------------------------------------
    def resume_selected(self) -> bool:
        """Lift the selected person's suspension of face entry (the manager's decision)."""
        p = self.selected()
        if p is None:
            return False
        try:
            resume(self.gallery, p.employee_id)
        except FaceGuardError as exc:
            self._fail(exc)
            return False
        self._refresh(p.employee_id)
        return True

    def rename_selected(self, name: str | None = None) -> bool:
        p = self.selected()
        if p is None:
            return False
        name = name if name is not None else self.ask_text("Rename", f"New name for {p.name}:", p.name)
        if not name or name.strip() == p.name:
            return False
        try:
            self.gallery.rename(p.employee_id, name.strip())
        except FaceGuardError as exc:
            self._fail(exc)
            return False
        self._refresh(p.employee_id)
        return True

    def change_id_selected(self, new_id: str | None = None) -> bool:
        p = self.selected()
        if p is None:
            return False
        new_id = new_id if new_id is not None else self.ask_text(
            "Change id", f"New employee id for {p.name}:", p.employee_id)
        if not new_id or new_id.strip() == p.employee_id:
            return False
        try:
            person = self.gallery.change_id(p.employee_id, new_id.strip())
        except FaceGuardError as exc:
            self._fail(exc)
            return False
        self._refresh(person.employee_id)
        return True

    def toggle_active_selected(self) -> bool:
        p = self.selected()
        if p is None:
            return False
        try:
            self.gallery.set_active(p.employee_id, not p.enabled)
        except FaceGuardError as exc:
            self._fail(exc)
            return False
        self._refresh(p.employee_id)
        return True

    def valid_until_selected(self, day: str | None = None) -> bool:
        """``day`` YYYY-MM-DD (the last day let in), or "" for no end date."""
        p = self.selected()
        if p is None:
            return False
        if day is None:
            current = last_day(p.valid_until) if p.valid_until else ""
            day = self.ask_text("Valid until", f"Last day {p.name} is let in (YYYY-MM-DD; empty = "
                                "no end date):", current)
            if day is None:
                return False
        from datetime import datetime, timedelta
        try:
            until = None if not day.strip() else (
                datetime.strptime(day.strip(), "%Y-%m-%d") + timedelta(days=1)).timestamp()
        except ValueError:
            QMessageBox.warning(self, "Gallery", f"'{day}' is not a date: write it as YYYY-MM-DD, "
                                "e.g. 2027-03-31.")
            return False
        try:
            self.gallery.set_valid_until(p.employee_id, until)
        except FaceGuardError as exc:
            self._fail(exc)
            return False
        self._refresh(p.employee_id)
        return True

    def replace_selected(self, path: str | None = None) -> bool:
        p = self.selected()
        if p is None:
            return False
        path = path or self.ask_open(f"New photo for {p.name}", "Photos (*.jpg *.jpeg *.png *.bmp *.webp)")
        if not path:
            return False
        from faceguard.gallery.enrol import replace_photo
        try:
            replace_photo(self.gallery, self.pipeline, p.employee_id, load_image(path),
                          threshold=self.threshold)
        except FaceGuardError as exc:
            self._fail(exc)
            return False
        self._refresh(p.employee_id)
        return True

    def remove_selected(self, confirmed: bool | None = None) -> bool:
        p = self.selected()
        if p is None:
            return False
        if confirmed is None:
            confirmed = self.confirm(f"Remove {p.name} ({p.employee_id}) from the gallery?\n"
                                     "Their photo and face data are erased; this cannot be undone.")
        if not confirmed:
            return False
        try:
            self.gallery.remove(p.employee_id)
        except FaceGuardError as exc:
            self._fail(exc)
            return False
        self._refresh()
        return True

    def export_to(self, path: str | None = None) -> int | None:
        path = path or self.ask_save("Export the gallery", "Zip files (*.zip)")
        if not path:
            return None
        try:
            n = portable.export_zip(self.gallery, Path(path))
        except FaceGuardError as exc:
            self._fail(exc)
            return None
        QMessageBox.information(self, "Gallery", f"Exported {n} people to {path}.\n"
                                "The file holds face photos: keep it safe.")
        return n

    def import_from(self, path: str | None = None):
        path = path or self.ask_open("Import a gallery", "Zip files (*.zip)")
        if not path:
            return None
        try:
            report = portable.import_zip(self.gallery, Path(path), self.pipeline)
        except FaceGuardError as exc:
            self._fail(exc)
            return None
        self._refresh()
        lines = [f"Added {len(report.added)}, updated {len(report.updated)}."]
        lines += [f"Not imported: {who}: {why}" for who, why in list(report.failed.items())[:10]]
        QMessageBox.information(self, "Gallery", "\n".join(lines))
        return report
