"""The access log window: who came in when, filtered by days, person and decision, with the
face snapshot of the selected event and a CSV export of what is shown. At a site door it can
show every door's events too (read from the site, with a Door column, tools/today.site_log).

Snapshots are decrypted into memory only (a QPixmap); nothing decrypted is written to disk.
Times are local, as the office's clock shows them; the CSV adds the UTC offset.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path

from PySide6.QtCore import QDate, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from faceguard.errors import FaceGuardError
from faceguard.gallery.events import DISPLAY_COLUMNS, EventLog, display_row, write_csv
from faceguard.ui.video import rgb_to_qimage

log = logging.getLogger(__name__)

DEFAULT_DAYS = 7          # the window opens on the last week
SNAPSHOT_PX = 240
ALL, STRANGERS = "", "\x00stranger"   # person filter values besides an employee id
HERE, EVERY_DOOR = "", "\x00site"     # where filter: this door's log, or the site's


def day_start(d: date) -> float:
    """Local midnight at the start of ``d``, as epoch seconds."""
    return datetime.combine(d, time()).timestamp()


class LogWindow(QDialog):
    def __init__(self, gallery, parent=None, today: date | None = None, load_site=None):
        """`load_site(since, until)`: every door's (door, Event) pairs (tools/today.site_log;
        None: from this door's site when it joined one)."""
        super().__init__(parent)
        self.setWindowTitle("FaceGuard · Access log")
        self.log = EventLog(gallery)
        self.gallery = gallery
        self.events: list = []
        self.doors: list[str] = []            # each shown event's door ("" = this door)
        today = today or date.today()
        self.load_site = load_site or self._default_site()
        self.where = QComboBox()
        self.where.addItem("This door", HERE)
        if self.load_site is not None:
            self.where.addItem("Every door (site)", EVERY_DOOR)
        self.where.setVisible(self.load_site is not None)

        self.from_day = QDateEdit(QDate(today - timedelta(days=DEFAULT_DAYS - 1)))
        self.to_day = QDateEdit(QDate(today))
        for box in (self.from_day, self.to_day):
            box.setCalendarPopup(True)
            box.setDisplayFormat("yyyy-MM-dd")
        self.person = QComboBox()
        self.decision = QComboBox()
        self.person.setMaximumWidth(260)
        self.today_btn = QPushButton("Today")
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.setToolTip("The door keeps logging while this window is open.")
        filters = QHBoxLayout()
        for label, w in (("From", self.from_day), ("to", self.to_day), ("Person", self.person),
                         ("Decision", self.decision), ("Doors", self.where)):
            if w is not self.where or self.load_site is not None:
                filters.addWidget(QLabel(label))
            filters.addWidget(w)
        filters.addWidget(self.today_btn)
        filters.addStretch(1)
        filters.addWidget(self.refresh_btn)

        self.table = QTableWidget(0, len(DISPLAY_COLUMNS) + 1)
        self.table.setHorizontalHeaderLabels([*DISPLAY_COLUMNS, "Entrance"])   # "Door" is the output's result
        self.table.setColumnHidden(len(DISPLAY_COLUMNS), True)     # shown for the site's events
        self.table.horizontalHeader().moveSection(len(DISPLAY_COLUMNS), 1)   # beside the time
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        for col, width in enumerate((165, 190, 90, 160, 220)):
            hh.resizeSection(col, width)
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col in (0, 2, 3):   # times, decisions and numbers are short: never cut them
            hh.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        hh.setStretchLastSection(True)

        self.snapshot = QLabel("Select an event to see its snapshot.")
        self.snapshot.setObjectName("snapshot")
        self.snapshot.setFixedSize(SNAPSHOT_PX, SNAPSHOT_PX)
        self.snapshot.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.snapshot.setWordWrap(True)
        self.snapshot_note = QLabel("")
        self.snapshot_note.setWordWrap(True)
        self.snapshot_note.setFixedWidth(SNAPSHOT_PX)
        self.snapshot_note.setMinimumHeight(60)
        self.snapshot_note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        side = QVBoxLayout()
        side.addWidget(self.snapshot)
        side.addWidget(self.snapshot_note)
        side.addStretch(1)
        middle = QHBoxLayout()
        middle.addWidget(self.table, 1)
        middle.addLayout(side)

        self.count = QLabel()
        self.export_btn = QPushButton("Export CSV…")
        close = QPushButton("Close")
        bottom = QHBoxLayout()
        bottom.addWidget(self.count)
        bottom.addStretch(1)
        bottom.addWidget(self.export_btn)
        bottom.addWidget(close)

        body = QVBoxLayout(self)
        body.addLayout(filters)
        body.addLayout(middle, 1)
        body.addLayout(bottom)

        self._fill_choices()
        self.from_day.dateChanged.connect(lambda *_: self.reload())
        self.to_day.dateChanged.connect(lambda *_: self.reload())
        self.person.currentIndexChanged.connect(lambda *_: self.reload())
        self.decision.currentIndexChanged.connect(lambda *_: self.reload())
        self.where.currentIndexChanged.connect(lambda *_: self.reload())
        self.today_btn.clicked.connect(lambda: self.set_days(today, today))
        self.refresh_btn.clicked.connect(self.reload)
        self.table.itemSelectionChanged.connect(self._show_snapshot)
        self.export_btn.clicked.connect(lambda: self.export_to())
        close.clicked.connect(self.accept)
        self.reload()
        self.resize(1240, 640)

    def _fill_choices(self) -> None:
        self.person.addItem("Everyone", ALL)
        self.person.addItem("Strangers", STRANGERS)
        try:
            people = self.gallery.people(active_only=False)
            decisions = self.log.decisions()
        except FaceGuardError as exc:
            log.warning("log filters: %s", exc)
            people, decisions = [], []
        for p in people:
            self.person.addItem(f"{p.name} ({p.employee_id})", p.employee_id)
        self.decision.addItem("All decisions", "")
        for d in decisions:
            self.decision.addItem(d, d)

    # -- filters ----------------------------------------------------------------------------
    def set_days(self, first: date, last: date) -> None:
        self.from_day.blockSignals(True)
        self.from_day.setDate(QDate(first))
        self.from_day.blockSignals(False)
        self.to_day.setDate(QDate(last))
        self.reload()

    def set_person(self, employee_id: str | None) -> None:
        """None: strangers; "": everyone."""
        value = STRANGERS if employee_id is None else employee_id
        self.person.setCurrentIndex(max(0, self.person.findData(value)))

    def set_decision(self, decision: str) -> None:
        self.decision.setCurrentIndex(max(0, self.decision.findData(decision)))

    def _default_site(self):
        from faceguard.site.config import SiteConfig
        try:
            joined = SiteConfig.load() is not None
        except FaceGuardError:
            joined = False
        if not joined:
            return None
        from faceguard.tools.today import site_log
        return lambda since, until: site_log(self.gallery, since, until)

    def set_where(self, where: str) -> bool:
        """HERE (this door's log) or EVERY_DOOR (the site's); False when not at a site."""
        i = self.where.findData(where)
        if i < 0:
            return False
        self.where.setCurrentIndex(i)
        return True

    def query(self) -> list:
        """The events the filters ask for; `self.doors` gets each one's door."""
        first, last = self.from_day.date().toPython(), self.to_day.date().toPython()
        if last < first:
            first, last = last, first
        person = self.person.currentData() or ALL
        since, until = day_start(first), day_start(last + timedelta(days=1))
        decision = self.decision.currentData() or None
        if self.where.currentData() == EVERY_DOOR and self.load_site is not None:
            pairs = [(d, e) for d, e in self.load_site(since, until)
                     if (person == ALL or (person == STRANGERS and e.employee_id is None)
                         or (e.employee_id or "").casefold() == person.casefold())
                     and (decision is None or e.decision == decision)]
            self.doors = [d for d, _ in pairs]
            return [e for _, e in pairs]
        events = self.log.query(since, until, employee_id=None if person in (ALL, STRANGERS) else person,
                                strangers=person == STRANGERS, decision=decision)
        self.doors = [""] * len(events)
        return events

    def reload(self) -> None:
        try:
            self.events = self.query()
        except FaceGuardError as exc:
            self.events = []
            self.count.setText(str(exc))
            return
        self.table.setRowCount(len(self.events))
        self.table.setColumnHidden(len(DISPLAY_COLUMNS), not any(self.doors))
        for r, e in enumerate(self.events):
            for c, text in enumerate((*display_row(e), self.doors[r])):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(r, c, item)
        self.count.setText(f"{len(self.events)} event{'' if len(self.events) == 1 else 's'}")
        self.export_btn.setEnabled(bool(self.events))
        self.snapshot.setPixmap(QPixmap())
        self.snapshot.setText("Select an event to see its snapshot.")
        self.snapshot_note.setText("")

    def rows(self) -> list[list[str]]:
        """The rows as shown (the Door column only when it is)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())
                 if not self.table.isColumnHidden(c)] for r in range(self.table.rowCount())]

    # -- snapshot ---------------------------------------------------------------------------
    def _show_snapshot(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        e = self.events[rows[0].row()]
        self.snapshot_note.setText("\n".join(display_row(e)[:3]))
        if self.doors[rows[0].row()]:
            self.snapshot.setPixmap(QPixmap())
            self.snapshot.setText("Snapshots of the site's events stay at each door.")
            return
        try:
            rgb = self.log.snapshot(e.id) if e.has_snapshot else None
        except FaceGuardError as exc:
            self.snapshot.setPixmap(QPixmap())
            self.snapshot.setText(str(exc))
            return
        if rgb is None:
            self.snapshot.setPixmap(QPixmap())
            self.snapshot.setText("No snapshot kept for this event.")
            return
        self.snapshot.setPixmap(QPixmap.fromImage(rgb_to_qimage(rgb)).scaled(
            SNAPSHOT_PX, SNAPSHOT_PX, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    # -- export -----------------------------------------------------------------------------
    def ask_save(self) -> str | None:
        """Where to write the CSV (tests replace this)."""
        path, _ = QFileDialog.getSaveFileName(self, "Export the access log",
                                              str(Path.home() / "faceguard-access-log.csv"),
                                              "CSV files (*.csv)")
        return path or None

    def export_to(self, path: str | None = None) -> int | None:
        """The events shown (with the filters as they are) as CSV; the row count, or None."""
        path = path or self.ask_save()
        if not path:
            return None
        try:
            n = write_csv(self.events, Path(path))
        except FaceGuardError as exc:
            QMessageBox.warning(self, "Access log", str(exc))
            return None
        self.count.setText(f"{len(self.events)} events · exported {n} to {path}")
        return n
