"""Every on-disk location FaceGuard uses, in one place.

platformdirs honours XDG_DATA_HOME / XDG_CONFIG_HOME / XDG_STATE_HOME on Linux, which is how
tests keep their data in temporary folders.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "FaceGuard"


def _dir(path: str) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p


def data_dir() -> Path:
    """Gallery database, photos, access-log snapshots."""
    return _dir(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """settings.json and the gallery key file."""
    return _dir(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    return _dir(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def log_file() -> Path:
    return log_dir() / "faceguard.log"


def settings_file() -> Path:
    return config_dir() / "settings.json"


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """The folder holding manifest.json and the ONNX files.

    Order: $FACEGUARD_MODELS_DIR, a source checkout's models/ (editable install), then the
    wheel's data files under <prefix>/share/faceguard/models.
    """
    override = os.environ.get("FACEGUARD_MODELS_DIR")
    if override:
        return Path(override)
    for candidate in (_repo_root() / "models", Path(sys.prefix) / "share" / "faceguard" / "models"):
        if (candidate / "manifest.json").is_file():
            return candidate
    return _repo_root() / "models"


def assets_dir() -> Path:
    for candidate in (_repo_root() / "assets", Path(sys.prefix) / "share" / "faceguard" / "assets"):
        if candidate.is_dir():
            return candidate
    return _repo_root() / "assets"
