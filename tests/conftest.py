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
def split(lfw) -> dict[str, dict[str, list[str]]]:
    """identity → {"gallery": [paths], "probe": [paths]} from identification_split.tsv."""
    out: dict[str, dict[str, list[str]]] = {}
    for line in (lfw / "identification_split.tsv").read_text().splitlines()[1:]:
        path, identity, role = line.split("\t")
        out.setdefault(identity, {"gallery": [], "probe": []})[role].append(path)
    return out


@pytest.fixture(scope="session")
def pipeline():
    """The real shipped models through onnxruntime (CPU), loaded once per test session."""
    from faceguard.vision.pipeline import FacePipeline

    return FacePipeline.load(provider="cpu")


@pytest.fixture(scope="session")
def print_attack_video(shared_data, tmp_path_factory) -> Path:
    """4 s of the enrolment portrait printed and waved ±25° in front of a 30 fps webcam, as a
    video file (benchmarks/photo_attack.py renders it)."""
    import sys

    import cv2

    from faceguard.vision.image import load_image

    sys.path.insert(0, str(REPO / "benchmarks"))
    from photo_attack import waved

    photo = load_image(shared_data / "video" / "lin-manuel-miranda.png")
    path = tmp_path_factory.mktemp("attack") / "print_attack.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for rgb in waved(photo, 120, yaw=25, pitch=15, distance_m=0.45):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture
def lin_enrolled(shared_data, pipeline) -> str:
    """Lin-Manuel Miranda enrolled from the clip's enrolment photo, as employee E001."""
    from faceguard.gallery.enrol import enrol
    from faceguard.gallery.store import Gallery
    from faceguard.vision.image import load_image

    with Gallery.open() as gallery:
        rgb = load_image(shared_data / "video" / "lin-manuel-miranda.png")
        enrol(gallery, pipeline, rgb, "Lin-Manuel Miranda", "E001", consent=True,
              threshold=pipeline.threshold_for(1))
    return "E001"
