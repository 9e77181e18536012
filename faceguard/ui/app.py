"""Starting the desktop app: logging, the never-a-traceback hook, the style, the door window.

`faceguard` (no arguments) and `faceguard gui [--camera SRC] [--fullscreen]` call `run`.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from faceguard import paths
from faceguard.errors import FaceGuardError
from faceguard.settings import Settings, load_settings

log = logging.getLogger(__name__)

_hook_dialog_open = False


def setup_logging(level: int = logging.INFO) -> None:
    """Rotating log file in the log folder (5 × 2 MB); library code only uses `logging`."""
    root = logging.getLogger()
    target = str(paths.log_file())
    if any(isinstance(h, logging.handlers.RotatingFileHandler) and h.baseFilename == target
           for h in root.handlers):
        return
    from faceguard.logfile import PrivateRotatingFileHandler

    # 0600: the log names the people let in
    handler = PrivateRotatingFileHandler(target, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(min(root.level or level, level))


def short_message(exc: BaseException) -> str:
    if isinstance(exc, FaceGuardError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"Something unexpected went wrong ({type(exc).__name__}{': ' + text[:200] if text else ''})."


def show_error(message: str, parent=None) -> None:
    """The dialog users see instead of a traceback."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("FaceGuard")
    box.setText(message)
    box.setInformativeText(f"FaceGuard keeps running. Details are in the log file:\n{paths.log_file()}")
    box.exec()


def exception_hook(exc_type, exc, tb) -> None:
    """sys.excepthook: log the traceback, show a short message, keep the window alive.

    PySide6 routes exceptions raised in slots and event handlers here, so this covers Qt too.
    """
    global _hook_dialog_open
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    log.error("unexpected error:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
    app = QApplication.instance()
    if app is None or _hook_dialog_open:
        return
    message = short_message(exc)
    if threading.current_thread() is not threading.main_thread():
        QTimer.singleShot(0, app, lambda: _show_from_hook(message))   # widgets only on the UI thread
    else:
        _show_from_hook(message)


def _show_from_hook(message: str) -> None:
    global _hook_dialog_open
    _hook_dialog_open = True   # an error inside the dialog must not open a second one
    try:
        show_error(message, QApplication.activeWindow())
    finally:
        _hook_dialog_open = False


def install_exception_hook() -> None:
    sys.excepthook = exception_hook
    threading.excepthook = lambda args: exception_hook(args.exc_type, args.exc_value, args.exc_traceback)


def load_style(app: QApplication) -> None:
    qss = paths.assets_dir() / "style.qss"
    if qss.is_file():
        # url(ASSETS/…) in the sheet: the assets folder wherever it is installed.
        app.setStyleSheet(qss.read_text(encoding="utf-8").replace("url(ASSETS/", f"url({qss.parent.as_posix()}/"))


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("FaceGuard")
    app.setOrganizationName("FaceGuard")
    icon = paths.assets_dir() / "icon.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    load_style(app)
    return app


def open_gallery(pipeline) -> tuple[object | None, str]:
    """(the gallery, "") or (None, why not) with the reason logged and shown: the door window
    still opens, says the door check is off and why, and its menus work."""
    from faceguard.site.replica import open_gallery as open_site_aware
    try:
        # At a door that joined a site, gallery edits go to the site (SiteGallery).
        return open_site_aware(), ""
    except FaceGuardError as exc:
        log.error("the gallery cannot be opened: %s", exc)
        show_error(str(exc))
        return None, str(exc)


def run(camera: str | None = None, fullscreen: bool = False) -> int:
    """Open the door-check window; returns the process exit code."""
    setup_logging()
    app = make_app()
    install_exception_hook()
    try:
        settings = load_settings()
    except FaceGuardError as exc:
        show_error(f"{exc}\nFaceGuard starts with the default settings.")
        settings = Settings()
    if camera is not None:
        settings.camera = str(camera)
        from pathlib import Path
        settings.loop_video = Path(str(camera)).is_file()
    from faceguard.vision.pipeline import FacePipeline
    try:
        pipeline = FacePipeline.load(settings.provider, model_id=settings.model_id or None,
                                     flip=settings.flip_average)
    except FaceGuardError as exc:
        log.error("cannot load the models: %s", exc)
        show_error(f"{exc}\nFaceGuard cannot check faces without its models.")
        return 2
    log.info("models loaded: %s on %s", pipeline.model_id, pipeline.provider)
    gallery, problem = open_gallery(pipeline)

    from faceguard.ui.door_window import DoorWindow
    window = DoorWindow(settings, pipeline, gallery, gallery_problem=problem)
    if fullscreen:
        window.set_kiosk(True)
    else:
        window.show()
    window.start()
    code = app.exec()
    window.stop()
    return int(code)
