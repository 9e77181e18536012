"""The Today view: who came in today (first entry, last seen), entries per hour as a chart,
and the refusals with the suspected attacks; at a site door every door's, with a door column
and a door filter. Read-only: it reads tools/today.py's summary (the same as `faceguard log
today`) and changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceguard.errors import FaceGuardError
from faceguard.tools.today import Today, for_this_door

EVERY_DOOR = ""
PEOPLE_COLUMNS = ("Person", "Employee id", "First entry", "Last seen", "Entries", "Doors")
REFUSAL_COLUMNS = ("Time", "Door", "Who", "Suspected attack", "Reason")
ENTRY_COLOUR = QColor(34, 160, 90)
REFUSED_COLOUR = QColor(210, 50, 50)


def hm(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M")


class HourChart(QWidget):
    """24 bars, one per local hour: entries (green) with the refusals (red) on top."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries = [0] * 24
        self.denied = [0] * 24
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_counts(self, entries, denied) -> None:
        self.entries, self.denied = list(entries), list(denied)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        label_h, top = 18, 16
        step = w / 24
        peak = max(1, *(a + b for a, b in zip(self.entries, self.denied, strict=True)))
        usable = h - label_h - top
        p.setPen(self.palette().text().color())
        for hour in range(24):
            x = hour * step
            if hour % 3 == 0:
                p.drawText(QRectF(x, h - label_h, step * 3, label_h), Qt.AlignmentFlag.AlignLeft, f"{hour:02d}")
            y = h - label_h
            for count, colour in ((self.entries[hour], ENTRY_COLOUR), (self.denied[hour], REFUSED_COLOUR)):
                if count:
                    bar = usable * count / peak
                    p.fillRect(QRectF(x + 2, y - bar, step - 4, bar), colour)
                    y -= bar
            total = self.entries[hour] + self.denied[hour]
            if total:
                p.drawText(QRectF(x, y - top, step, top), Qt.AlignmentFlag.AlignHCenter, str(total))
        p.end()


def _table(columns) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(list(columns))
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def _fill(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(text))


class TodayView(QDialog):
    """`load` reads the day (tests give `load` a summary of their own day)."""

    def __init__(self, gallery, parent=None, load=None):
        super().__init__(parent)
        self.setWindowTitle("FaceGuard · Today")
        self.gallery = gallery
        self._load = load or (lambda door: for_this_door(gallery, date.today(), door or None))
        self.today: Today | None = None

        self.heading = QLabel()
        self.heading.setObjectName("sideTitle")
        self.totals = QLabel()
        self.note = QLabel()
        self.note.setObjectName("error")
        self.note.setWordWrap(True)
        self.door = QComboBox()
        self.door_label = QLabel("Door")
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.setToolTip("The door keeps logging while this window is open.")
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.door_label)
        top.addWidget(self.door)
        top.addWidget(self.refresh_btn)
        self.chart = HourChart()
        self.people = _table(PEOPLE_COLUMNS)
        self.refusals = _table(REFUSAL_COLUMNS)
        self.close_btn = QPushButton("Close")
        body = QVBoxLayout(self)
        body.addLayout(top)
        body.addWidget(self.totals)
        body.addWidget(self.note)
        body.addWidget(QLabel("Who came in"))
        body.addWidget(self.people, 2)
        body.addWidget(QLabel("Entries per hour (green) and refusals (red)"))
        body.addWidget(self.chart)
        body.addWidget(QLabel("Refused"))
        body.addWidget(self.refusals, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_btn)
        body.addLayout(buttons)

        self.refresh_btn.clicked.connect(self.refresh)
        self.door.currentIndexChanged.connect(lambda *_: self.refresh())
        self.close_btn.clicked.connect(self.accept)
        self.resize(900, 700)
        self.refresh()

    def set_door(self, door: str) -> bool:
        i = self.door.findData(door)
        if i < 0:
            return False
        self.door.setCurrentIndex(i)
        return True

    def refresh(self) -> None:
        wanted = self.door.currentData() or EVERY_DOOR
        try:
            today = self._load(wanted)
        except FaceGuardError as exc:
            self.note.setText(str(exc))
            return
        self.show_day(today)

    def show_day(self, today: Today) -> None:
        self.today = today
        at_site = bool(today.doors)
        where = (f"door {today.door}" if today.door else "every door" if at_site else "this door")
        self.heading.setText(f"Today, {today.day:%A %d %B %Y}: {where}")
        self.totals.setText(f"{today.entries} entries by {len(today.people)} people · {len(today.denials)} "
                            f"refused · {today.suspected_attacks} suspected attack"
                            f"{'' if today.suspected_attacks == 1 else 's'}")
        self.note.setText(today.note)
        self.note.setVisible(bool(today.note))
        self.door.blockSignals(True)
        self.door.clear()
        self.door.addItem("Every door", EVERY_DOOR)
        for d in today.doors:
            self.door.addItem(d, d)
        self.door.setCurrentIndex(max(0, self.door.findData(today.door or EVERY_DOOR)))
        self.door.blockSignals(False)
        for w in (self.door, self.door_label):
            w.setVisible(at_site)
        self.people.setColumnHidden(PEOPLE_COLUMNS.index("Doors"), not at_site)
        self.refusals.setColumnHidden(REFUSAL_COLUMNS.index("Door"), not at_site)
        _fill(self.people, [(p.name, p.employee_id, hm(p.first_entry), hm(p.last_seen), str(p.entries),
                             ", ".join(p.doors)) for p in today.people])
        _fill(self.refusals, [(hm(r.time), r.door, f"{r.name or r.employee_id} ({r.employee_id})"
                               if r.employee_id else "stranger", "yes" if r.suspected_attack else "",
                               r.reason) for r in today.denials])
        for r, row in enumerate(today.denials):
            if row.suspected_attack:
                for c in range(len(REFUSAL_COLUMNS)):
                    self.refusals.item(r, c).setForeground(REFUSED_COLOUR)
        self.chart.set_counts(today.entries_per_hour, today.denied_per_hour)

    def rows(self, table: QTableWidget) -> list[list[str]]:
        return [[table.item(r, c).text() for c in range(table.columnCount()) if not table.isColumnHidden(c)]
                for r in range(table.rowCount())]
