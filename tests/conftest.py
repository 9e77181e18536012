"""Shared test set-up: private data/config dirs, offscreen Qt, the real data and models."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Before anything imports Qt or platformdirs: no screen, and no test touches the user's files.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_runtime = Path(tempfile.mkdtemp(prefix="faceguard-xdg-runtime-"))
_runtime.chmod(0o700)
atexit.register(shutil.rmtree, _runtime, ignore_errors=True)
os.environ["XDG_RUNTIME_DIR"] = str(_runtime)
os.environ.setdefault("FACEGUARD_THREADS", "2")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    """Every test gets its own data, config, state and cache folders."""
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        d = tmp_path / var.lower()
        d.mkdir()
        monkeypatch.setenv(var, str(d))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "lfw_dev_fold1").is_dir():
        pytest.fail(f"The shared test data is missing: expected it at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def lfw(shared_data) -> Path:
    return shared_data / "lfw_dev_fold1"


@pytest.fixture(scope="session")
def pipeline():
    """The real shipped models through onnxruntime (CPU), loaded once per test session."""
    from faceguard.vision.pipeline import FacePipeline

    return FacePipeline.load(provider="cpu")
