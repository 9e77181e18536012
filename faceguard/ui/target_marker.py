"""The moving dot of the follow-the-target challenge (access/challenge.py), painted in the
banner: a square "screen" with a faint centre cross, the dot where the path puts it now, and an
arrow from the dot showing the way it is moving. The person points their nose at the dot.

The path is in the door check's frame times; the window tells the marker the time of each
frame it paints (``show``), and between frames the marker runs on from there by the wall
clock (a 30 Hz timer), so the dot glides smoothly even when the PC checks only 5 frames a
second. Marker units: the first move is 1 long; the box shows ±``REACH`` units.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QWidget

from faceguard.access.challenge import HOLD, MAX_REACH, VECTORS, TargetPath

REACH = MAX_REACH + 0.3
DOT = QColor(255, 200, 0)          # amber: readable on the red/amber/green banner styles
HINT = QColor(255, 255, 255)
BACKGROUND = QColor(25, 25, 25)


class TargetMarker(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(150, 150)
        self.path: TargetPath | None = None
        self._frame_t = 0.0           # the door's time of the last frame shown …
        self._wall = 0.0              # … and the wall-clock moment it was shown
        self._timer = QTimer(self, interval=33)
        self._timer.timeout.connect(self.update)

    def show_path(self, path: TargetPath | None, frame_t: float) -> None:
        """The path to follow (None: none) as of the frame at door time ``frame_t``."""
        self.path = path
        self._frame_t, self._wall = frame_t, time.monotonic()
        self.setVisible(path is not None)
        if path is None:
            self._timer.stop()
        elif not self._timer.isActive():
            self._timer.start()
        self.update()

    def now(self) -> float:
        """The door time the marker shows now."""
        return self._frame_t + (time.monotonic() - self._wall)

    def _square(self) -> QRectF:
        side = min(self.width(), self.height()) - 8
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_pixels(self, x: float, y: float) -> QPointF:
        """Marker units (x right, y down as the person sees the screen) → widget pixels."""
        box = self._square()
        scale = box.width() / (2 * REACH)
        return QPointF(box.center().x() + x * scale, box.center().y() + y * scale)

    def dot_position(self, t: float | None = None) -> QPointF | None:
        if self.path is None:
            return None
        x, y = self.path.position(self.now() if t is None else t)
        return self.to_pixels(float(x), float(y))

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        try:
            self._paint(p)
        finally:
            p.end()

    def _paint(self, p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        box = self._square()
        p.fillRect(box, BACKGROUND)
        p.setPen(QPen(QColor(90, 90, 90), 1))
        c = box.center()
        p.drawLine(QPointF(box.left(), c.y()), QPointF(box.right(), c.y()))
        p.drawLine(QPointF(c.x(), box.top()), QPointF(c.x(), box.bottom()))
        if self.path is None:
            return
        t = self.now()
        dot = self.dot_position(t)
        radius = box.width() / 14
        move = self.path.move_at(t)
        if move not in (None, HOLD):   # the arrow hint: from the dot, the way it moves
            dx, dy = VECTORS[move]
            tip = QPointF(dot.x() + dx * radius * 3.2, dot.y() + dy * radius * 3.2)
            pen = QPen(HINT)
            pen.setWidthF(max(3.0, radius / 3))
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            p.setPen(pen)
            p.drawLine(dot, tip)
            angle = math.atan2(dy, dx)
            wing = radius * 1.2
            head = QPolygonF([tip] + [QPointF(tip.x() - wing * math.cos(angle + s * 0.5),
                                              tip.y() - wing * math.sin(angle + s * 0.5)) for s in (1, -1)])
            p.setBrush(HINT)
            p.drawPolygon(head)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(DOT)
        p.drawEllipse(dot, radius, radius)
