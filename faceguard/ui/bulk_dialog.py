"""Enrol many people at once: a folder of photos (one per person, the name from the file name)
or a CSV with photo,name,id; a progress bar while it runs and a report line per photo.

Each row shows the face taken (the main-face rule picks it where a photo has a background face)
and, when refused, the whole reason in the row itself; a photo refused for a soft reason gets a
"Use anyway" tick. The closing report lists every refusal, and "Retry refused" runs those
photos again (with the ticks).

The enrolments run in a QThread (gallery/bulk.enrol_all, the same code as
`faceguard enroll --folder`); the window stays responsive and Stop ends it between two photos.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QThread, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from faceguard.errors import FaceGuardError
from faceguard.gallery.bulk import enrol_all, items_from, report
from faceguard.ui.video import rgb_to_qimage

log = logging.getLogger(__name__)

REPORT_COLUMNS = ("Face", "Photo", "Name", "Employee id", "Result", "Use anyway")
FACE, PHOTO, NAME, ID, RESULT, ANYWAY = range(len(REPORT_COLUMNS))
THUMB = 56


class BulkJob(QThread):
    progressed = Signal(int, int)
    finished_with = Signal(object)       # list[Outcome]
    failed = Signal(str)

    def __init__(self, gallery, pipeline, items, threshold, parent=None, use_anyway=frozenset()):
        super().__init__(parent)
        self.args = (gallery, pipeline, items)
        self.threshold = threshold
        self.use_anyway = frozenset(use_anyway)
        self.stop_asked = False

    def run(self) -> None:
        try:
            outcomes = enrol_all(*self.args, consent=True, threshold=self.threshold,
                                 progress=lambda d, t: self.progressed.emit(d, t),
                                 cancelled=lambda: self.stop_asked, use_anyway=self.use_anyway)
        except FaceGuardError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:   # never a traceback at the user; the log has it
            log.exception("bulk enrolment failed")
            self.failed.emit(f"Bulk enrolment stopped: {type(exc).__name__}: {exc}")
            return
        self.finished_with.emit(outcomes)


class BulkEnrolDialog(QDialog):
    def __init__(self, gallery, pipeline, settings=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("FaceGuard · Enrol many people")
        self.gallery = gallery
        self.pipeline = pipeline
        self.threshold = getattr(settings, "threshold", None)
        self.items: list = []
        self.outcomes: list = []               # the latest outcome of each row tried, by row
        self.results: dict[int, object] = {}   # row → its latest Outcome
        self._rows: list[int] = []             # the rows the running job enrols
        self.job: BulkJob | None = None

        intro = QLabel("Choose a folder with one photo per person (the file name becomes the "
                       "name, e.g. Ana_Lima.jpg → Ana Lima, and the employee id), or a CSV file "
                       "with the columns photo,name,id.")
        intro.setWordWrap(True)
        self.source = QLabel("Nothing chosen yet.")
        self.folder_btn = QPushButton("Folder…")
        self.csv_btn = QPushButton("CSV file…")
        pick = QHBoxLayout()
        pick.addWidget(self.source, 1)
        pick.addWidget(self.folder_btn)
        pick.addWidget(self.csv_btn)
        self.consent = QCheckBox("Every person in these photos has agreed to be enrolled")
        self.progress = QProgressBar()
        self.progress.setValue(0)
        self.table = QTableWidget(0, len(REPORT_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(REPORT_COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.setWordWrap(True)          # the whole reason in the row, not in a tooltip
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in ((FACE, THUMB + 16), (PHOTO, 170), (NAME, 140), (ID, 120), (RESULT, 330)):
            hh.resizeSection(col, width)
        hh.setStretchLastSection(True)
        self.report_box = QPlainTextEdit()
        self.report_box.setReadOnly(True)
        self.report_box.setObjectName("bulkReport")
        self.report_box.setVisible(False)
        self.summary = QLabel("")
        self.summary.setObjectName("summary")
        self.summary.setWordWrap(True)
        self.start_btn = QPushButton("Enrol all")
        self.start_btn.setObjectName("primary")
        self.stop_btn = QPushButton("Stop")
        self.retry_btn = QPushButton("Retry refused")
        self.close_btn = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        for b in (self.start_btn, self.stop_btn, self.retry_btn, self.close_btn):
            buttons.addWidget(b)

        body = QVBoxLayout(self)
        for w in (intro,):
            body.addWidget(w)
        body.addLayout(pick)
        body.addWidget(self.consent)
        body.addWidget(self.progress)
        body.addWidget(self.table, 3)
        body.addWidget(self.report_box, 2)
        body.addLayout(buttons)

        self.folder_btn.clicked.connect(self._pick_folder)
        self.csv_btn.clicked.connect(self._pick_csv)
        self.consent.toggled.connect(lambda *_: self._update())
        self.start_btn.clicked.connect(self.start)
        self.stop_btn.clicked.connect(self.stop)
        self.retry_btn.clicked.connect(self.retry)
        self.close_btn.clicked.connect(self.accept)
        self._update()
        self.resize(1000, 680)

    @property
    def running(self) -> bool:
        return self.job is not None

    def _update(self) -> None:
        self.start_btn.setEnabled(bool(self.items) and self.consent.isChecked() and not self.running)
        self.start_btn.setToolTip("" if self.consent.isChecked() else "Consent is required.")
        self.stop_btn.setEnabled(self.running)
        self.retry_btn.setEnabled(bool(self.refused_rows()) and self.consent.isChecked() and not self.running)
        for w in (self.folder_btn, self.csv_btn, self.consent, self.close_btn):
            w.setEnabled(not self.running)

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of photos", str(Path.home()))
        if path:
            self.choose(path)

    def _pick_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CSV file (photo,name,id)", str(Path.home()),
                                              "CSV files (*.csv)")
        if path:
            self.choose(path)

    def choose(self, path: str | Path) -> bool:
        """A folder or CSV file: lists what will be enrolled; False (and why) when unusable."""
        try:
            self.items = items_from(Path(path))
        except FaceGuardError as exc:
            self.items = []
            self.summary.setText(str(exc))
            self._update()
            return False
        self.source.setText(f"{path}: {len(self.items)} photo(s)")
        self.results = {}
        self.table.setRowCount(len(self.items))
        for r, item in enumerate(self.items):
            for c, text in ((FACE, ""), (PHOTO, item.photo.name), (NAME, item.name), (ID, item.employee_id),
                            (RESULT, "waiting"), (ANYWAY, "")):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.progress.setRange(0, len(self.items))
        self.progress.setValue(0)
        self.summary.setText("")
        self.report_box.clear()
        self.report_box.setVisible(False)
        self._update()
        return True

    def refused_rows(self) -> list[int]:
        """Rows to try again: refused, or not tried because the batch was stopped."""
        if not self.results:
            return []
        return [r for r in range(len(self.items)) if r not in self.results or not self.results[r].ok]

    def use_anyway(self, row: int, on: bool = True) -> bool:
        """Tick "Use anyway" on a row refused for a soft reason (False: the row has no tick)."""
        cell = self.table.item(row, ANYWAY)
        if cell is None or cell.data(Qt.ItemDataRole.CheckStateRole) is None:
            return False
        cell.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        return True

    def _ticked(self) -> frozenset:
        return frozenset(self.items[r].photo for r in range(self.table.rowCount())
                         if (c := self.table.item(r, ANYWAY)) is not None
                         and c.data(Qt.ItemDataRole.CheckStateRole) is not None
                         and c.checkState() == Qt.CheckState.Checked)

    def start(self) -> bool:
        if not self.items or not self.consent.isChecked() or self.running:
            return False
        self.results = {}
        return self._run(list(range(len(self.items))))

    def retry(self) -> bool:
        """Enrol the refused (and not tried) photos again, with their "Use anyway" ticks."""
        rows = self.refused_rows()
        if not rows or not self.consent.isChecked() or self.running:
            return False
        return self._run(rows)

    def _run(self, rows: list[int]) -> bool:
        self._rows = rows
        for r in rows:
            self.table.setItem(r, RESULT, QTableWidgetItem("waiting"))
        self.job = BulkJob(self.gallery, self.pipeline, [self.items[r] for r in rows], self.threshold, self,
                           use_anyway=self._ticked())
        self.job.progressed.connect(self._on_progress)
        self.job.finished_with.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.summary.setText("Enrolling…")
        self._update()
        self.job.start()
        return True

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop_asked = True
            self.summary.setText("Stopping after this photo…")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _end_job(self) -> None:
        job, self.job = self.job, None
        if job is not None:
            job.wait()
            job.deleteLater()
        self._update()

    def _on_done(self, outcomes) -> None:
        self._end_job()
        for r, o in zip(self._rows, outcomes, strict=False):
            self.results[r] = o
            self._show_outcome(r, o)
        for r in self._rows[len(outcomes):]:
            self.table.setItem(r, RESULT, QTableWidgetItem("not tried (stopped)"))
        self.outcomes = [self.results[r] for r in sorted(self.results)]
        self.table.resizeRowsToContents()
        text = report(self.outcomes, len(self.items))
        self.summary.setText(text.splitlines()[0])
        self.report_box.setPlainText(text)
        self.report_box.setVisible(True)
        self._update()

    def _show_outcome(self, r: int, o) -> None:
        cell = QTableWidgetItem(("enrolled" + (f": {o.note}" if o.note else "")) if o.ok else o.message)
        cell.setToolTip(o.message)
        cell.setForeground(QColor(30, 140, 60) if o.ok else QColor(190, 50, 40))
        self.table.setItem(r, RESULT, cell)
        face = QTableWidgetItem("")
        if o.thumb is not None:
            pix = QPixmap.fromImage(rgb_to_qimage(o.thumb)).scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            face.setIcon(QIcon(pix))
            face.setToolTip("The face taken from this photo")
        self.table.setItem(r, FACE, face)
        anyway = QTableWidgetItem("")
        anyway.setFlags(anyway.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)   # a tick only where it may be used
        if not o.ok and o.soft:
            anyway.setFlags(anyway.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            anyway.setCheckState(Qt.CheckState.Unchecked)
            anyway.setToolTip("Enrol this photo despite the reason on its row (then Retry refused)")
        self.table.setItem(r, ANYWAY, anyway)

    def _on_failed(self, message: str) -> None:
        self._end_job()
        self.summary.setText(message)

    def report(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def done(self, result: int) -> None:
        if self.running:
            return     # closing waits for the photo being enrolled: Stop first
        super().done(result)
