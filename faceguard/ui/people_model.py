"""The gallery table's model: one row per Person, with lazy thumbnails. The model asks for a
photo only when a row is painted, decodes a few per timer tick and keeps the most recent ones,
so a gallery of 1,000 people opens at once and scrolls without stalls."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import cv2
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPixmap

from faceguard.errors import FaceGuardError
from faceguard.ui.video import rgb_to_qimage

log = logging.getLogger(__name__)

THUMB_PX = 48
THUMB_CACHE = 400          # thumbnails kept in memory (a few screens' worth)
THUMBS_PER_TICK = 6        # decoded per 10 ms timer tick: the UI never waits for more than that
_ROOT = QModelIndex()     # the invisible root: a flat table has no parents
COLUMNS = ("Photo", "Name", "Employee id", "Status", "Enrolled", "Last seen")


def when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "never"




class PeopleModel(QAbstractTableModel):
    def __init__(self, gallery, parent=None):
        super().__init__(parent)
        self.gallery = gallery
        self.people: list = []
        self._thumbs: OrderedDict[str, QPixmap] = OrderedDict()
        self._wanted: OrderedDict[str, None] = OrderedDict()
        self._timer = QTimer(self, interval=10)
        self._timer.timeout.connect(self._load_some)
        self.thumbs_loaded = 0
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self.people = sorted(self.gallery.people(active_only=False), key=lambda p: p.name.lower())
        self._thumbs.clear()
        self._wanted.clear()
        self.endResetModel()

    def rowCount(self, parent=_ROOT) -> int:  # noqa: N802 (Qt name)
        return 0 if parent.isValid() else len(self.people)

    def columnCount(self, parent=_ROOT) -> int:  # noqa: N802 (Qt name)
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        p = self.people[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return ("", p.name, p.employee_id, p.access_status(), when(p.created), when(p.last_seen))[col]
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            return self._thumb(p.employee_id)
        if role == Qt.ItemDataRole.ForegroundRole and not p.active:
            return QColor(150, 150, 150)
        if role == Qt.ItemDataRole.UserRole:
            return p
        if role == Qt.ItemDataRole.SizeHintRole and col == 0:
            return QSize(THUMB_PX + 8, THUMB_PX + 8)
        return None

    def _thumb(self, employee_id: str) -> QPixmap | None:
        pix = self._thumbs.get(employee_id)
        if pix is not None:
            self._thumbs.move_to_end(employee_id)
            return pix
        self._wanted[employee_id] = None
        if not self._timer.isActive():
            self._timer.start()
        return None

    def _load_some(self) -> None:
        for _ in range(THUMBS_PER_TICK):
            if not self._wanted:
                self._timer.stop()
                return
            employee_id, _ = self._wanted.popitem(last=True)   # newest request = visible now
            try:
                rgb = self.gallery.photo(employee_id)
            except FaceGuardError as exc:
                log.warning("no photo for %s: %s", employee_id, exc)
                continue
            h, w = rgb.shape[:2]
            f = THUMB_PX / max(h, w)
            small = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
            self._thumbs[employee_id] = QPixmap.fromImage(rgb_to_qimage(small))
            self.thumbs_loaded += 1
            while len(self._thumbs) > THUMB_CACHE:
                self._thumbs.popitem(last=False)
            row = next((i for i, p in enumerate(self.people) if p.employee_id == employee_id), None)
            if row is not None:
                idx = self.index(row, 0)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
