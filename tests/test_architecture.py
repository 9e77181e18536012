"""The layering rules of DESIGN.md and the lint, checked with every test run (and so in CI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is not installed: pip install -e '.[dev]'")
    result = _run(exe)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_ruff_is_clean():
    result = _run(sys.executable, "-m", "ruff", "check", "faceguard", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_app_imports_without_torch():
    """`faceguard` (CLI, gallery, door check, UI modules) must not need torch at run time."""
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name == 'torch' or name.startswith('torch.'):\n"
        "        raise ImportError('torch is not allowed here')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import faceguard.cli, faceguard.doorcheck, faceguard.ui.door_window\n"
        "faceguard.cli.build_parser()\n"
        "print('torch' in sys.modules)\n"
    )
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_ci_runs_the_readme_test_command_word_for_word():
    """README has two set-up commands; CI must run the test one exactly as a new user would."""
    readme = (REPO / "README.md").read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = [ln.strip() for ln in readme.splitlines() if ln.startswith("    python3 ")]
    assert len(commands) == 2, commands                  # start the app; run the tests
    (test_command,) = [c for c in commands if "pytest" in c]
    ci_lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines
