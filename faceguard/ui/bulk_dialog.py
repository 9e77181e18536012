"""Enrol many people at once: a folder of photos (one per person, the name from the file name)
or a CSV with photo,name,id; a progress bar while it runs and a report line per photo.

The enrolments run in a QThread (gallery/bulk.enrol_all, the same code as
`faceguard enroll --folder`); the window stays responsive and Stop ends it between two photos.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from faceguard.errors import FaceGuardError
from faceguard.gallery.bulk import enrol_all, items_from

log = logging.getLogger(__name__)

REPORT_COLUMNS = ("Photo", "Name", "Employee id", "Result")


class BulkJob(QThread):
    progressed = Signal(int, int)
    finished_with = Signal(object)       # list[Outcome]
    failed = Signal(str)

    def __init__(self, gallery, pipeline, items, threshold, parent=None):
        super().__init__(parent)
        self.args = (gallery, pipeline, items)
        self.threshold = threshold
        self.stop_asked = False

    def run(self) -> None:
        try:
            outcomes = enrol_all(*self.args, consent=True, threshold=self.threshold,
                                 progress=lambda d, t: self.progressed.emit(d, t),
                                 cancelled=lambda: self.stop_asked)
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
        self.outcomes: list = []
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
        hh = self.table.horizontalHeader()
        for col, width in enumerate((200, 170, 170)):
            hh.resizeSection(col, width)
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        self.summary = QLabel("")
        self.summary.setObjectName("summary")
        self.summary.setWordWrap(True)
        self.start_btn = QPushButton("Enrol all")
        self.start_btn.setObjectName("primary")
        self.stop_btn = QPushButton("Stop")
        self.close_btn = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        for b in (self.start_btn, self.stop_btn, self.close_btn):
            buttons.addWidget(b)

        body = QVBoxLayout(self)
        for w in (intro,):
            body.addWidget(w)
        body.addLayout(pick)
        body.addWidget(self.consent)
        body.addWidget(self.progress)
        body.addWidget(self.table, 1)
        body.addLayout(buttons)

        self.folder_btn.clicked.connect(self._pick_folder)
        self.csv_btn.clicked.connect(self._pick_csv)
        self.consent.toggled.connect(lambda *_: self._update())
        self.start_btn.clicked.connect(self.start)
        self.stop_btn.clicked.connect(self.stop)
        self.close_btn.clicked.connect(self.accept)
        self._update()
        self.resize(860, 560)

    @property
    def running(self) -> bool:
        return self.job is not None

    def _update(self) -> None:
        self.start_btn.setEnabled(bool(self.items) and self.consent.isChecked() and not self.running)
        self.start_btn.setToolTip("" if self.consent.isChecked() else "Consent is required.")
        self.stop_btn.setEnabled(self.running)
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
        self.table.setRowCount(len(self.items))
        for r, item in enumerate(self.items):
            for c, text in enumerate((item.photo.name, item.name, item.employee_id, "waiting")):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.progress.setRange(0, len(self.items))
        self.progress.setValue(0)
        self.summary.setText("")
        self._update()
        return True

    def start(self) -> bool:
        if not self.items or not self.consent.isChecked() or self.running:
            return False
        self.outcomes = []
        self.job = BulkJob(self.gallery, self.pipeline, self.items, self.threshold, self)
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
        self.outcomes = outcomes
        for r, o in enumerate(outcomes):
            cell = QTableWidgetItem("enrolled" if o.ok else o.message)
            cell.setToolTip(o.message)
            cell.setForeground(QColor(30, 140, 60) if o.ok else QColor(190, 50, 40))
            self.table.setItem(r, 3, cell)
        for r in range(len(outcomes), len(self.items)):
            self.table.setItem(r, 3, QTableWidgetItem("not tried (stopped)"))
        ok = sum(o.ok for o in outcomes)
        self.summary.setText(f"{ok} of {len(self.items)} enrolled, {len(outcomes) - ok} refused"
                             + ("" if len(outcomes) == len(self.items) else ", the rest not tried")
                             + ". Refused photos say why; fix them and enrol those again.")

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
