"""The ONNX runtime comes with exactly one extra: '.[cpu]' (the README's run command) gives
onnxruntime, '.[gpu]' gives onnxruntime-gpu and nothing that shadows it (issue 25: a base
requirement "onnxruntime; extra != 'gpu'" was installed with '.[gpu]' as well)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
RUNTIMES = {"onnxruntime", "onnxruntime-gpu"}


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def _readme_run_command() -> str:
    setup = (REPO / "README.md").read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    (command,) = [ln.strip() for ln in setup.splitlines()
                  if ln.startswith("    python3 ") and "pytest" not in ln]
    return command


def test_each_runtime_comes_with_its_own_extra_only():
    project = _project()
    extras = project["optional-dependencies"]
    assert not _names(project["dependencies"]) & RUNTIMES
    assert _names(extras["cpu"]) & RUNTIMES == {"onnxruntime"}
    assert _names(extras["gpu"]) & RUNTIMES == {"onnxruntime-gpu"}
    assert "[cpu]" in _readme_run_command()


def test_without_a_runtime_the_error_says_which_extra_to_install(tmp_path):
    """Installed with neither extra: a message a person can act on, not an ImportError."""
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "from faceguard.errors import RuntimeProviderError\n"
            "from faceguard.vision.runtime import available_providers\n"
            "try:\n    available_providers()\nexcept RuntimeProviderError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "No ONNX runtime is installed" in out.stdout and "'.[cpu]'" in out.stdout


def _dry_run(target: str, report: Path) -> set[str]:
    """What pip would install for ``target`` into an empty environment (its own report)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), target],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}


@pytest.mark.heavy   # pip resolves every dependency from the package index: about 2 minutes
def test_pip_installs_one_runtime_for_gpu_and_for_the_readme_command(tmp_path):
    gpu = _dry_run(".[gpu]", tmp_path / "gpu.json")
    assert gpu & RUNTIMES == {"onnxruntime-gpu"}
    run_target = _readme_run_command().split("&&")[0].split()[-1].strip("'\"")
    assert run_target == ".[cpu]"
    cpu = _dry_run(run_target, tmp_path / "cpu.json")
    assert cpu & RUNTIMES == {"onnxruntime"}
    assert "faceguard" in gpu and "faceguard" in cpu
