"""The PyInstaller spec builds a one-folder app that runs on its own bundled models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import tool

pytestmark = pytest.mark.heavy  # a PyInstaller build: minutes
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    exe = tool("pyinstaller")
    work = tmp_path_factory.mktemp("pyinstaller")
    result = subprocess.run(
        [exe, str(REPO / "packaging" / "faceguard.spec"), "--noconfirm", "--log-level", "ERROR",
         "--workpath", str(work / "build"), "--distpath", str(work / "dist")],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    app = work / "dist" / "faceguard" / "faceguard"
    assert app.is_file() and os.access(app, os.X_OK)
    return app


def _run(app: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("FACEGUARD_MODELS_DIR", None)  # the bundle must find its own models
    return subprocess.run([str(app), *args], capture_output=True, text=True, timeout=120, env=env)


def test_bundle_checks_its_own_models_and_leaves_torch_out(bundle, tmp_path):
    result = _run(bundle, "doctor", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    internal = bundle.parent / "_internal"
    assert f"models: {internal / 'models'}" in result.stdout
    assert result.stdout.count("  ok   ") == 6      # MTCNN x3, the embedding, the texture pair
    assert "  ok   minifasnet_v2_2.7.onnx" in result.stdout
    assert "runs on: CPU" in result.stdout
    assert not (internal / "torch").exists()


def test_bundle_verifies_two_photos(bundle, lfw, tmp_path):
    a = lfw / "images" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    b = lfw / "images" / "Abel_Pacheco" / "Abel_Pacheco_0004.jpg"
    result = _run(bundle, "verify", str(a), str(b), "--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["same"] is True and out["distance"] < out["threshold"]


def test_bundle_carries_the_tools_and_leaves_training_out(bundle, lfw, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(lfw / "images" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg", photos / "a.jpg")
    out = tmp_path / "emb.npz"
    result = _run(bundle, "embed", str(photos), "--out", str(out), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr        # faceguard.tools.evaluate is in the bundle
    assert out.is_file() and "1 images embedded" in result.stdout
    # the frozen app has the same error boundary: one line, exit 2
    missing = tmp_path / "nowhere" / "x.npz"
    result = _run(bundle, "embed", str(photos), "--out", str(missing), tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"faceguard: {missing}: the folder {missing.parent} does not exist."]
    # training is not shipped, so its commands are not offered
    result = _run(bundle, "train", "--data", str(photos), tmp_path=tmp_path)
    assert result.returncode == 2 and "invalid choice: 'train'" in result.stderr
