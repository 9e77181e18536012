"""The layering rules of DESIGN.md and the lint, checked with every test run (and so in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tool

REPO = Path(__file__).resolve().parent.parent


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    result = _run(tool("lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Layers: cli on top" in result.stdout and "4 kept, 0 broken" in result.stdout


def test_no_import_cycles_in_faceguard():
    """No module reaches itself through its imports (the layers contract only sees packages)."""
    import grimp

    graph = grimp.build_graph("faceguard")
    cycles = [(a, b) for a in sorted(graph.modules) for b in graph.find_modules_directly_imported_by(a)
              if graph.find_shortest_chain(importer=b, imported=a) is not None]
    assert cycles == []


def test_ruff_is_clean():
    result = _run(sys.executable, "-m", "ruff", "check", "faceguard", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes():
    """pyproject's [tool.mypy]: strict on the door's decision, checked everywhere else but the
    modules listed as not yet clean."""
    result = _run(sys.executable, "-m", "mypy")
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


def _readme_commands() -> list[str]:
    readme = (REPO / "README.md").read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [ln.strip() for ln in readme.splitlines() if ln.startswith("    python3 ")]


def test_ci_runs_the_readme_test_command_word_for_word():
    """README has two set-up commands; CI must run the test one exactly as a new user would."""
    commands = _readme_commands()
    assert len(commands) == 2, commands                  # start the app; run the tests
    (test_command,) = [c for c in commands if "pytest" in c]
    ci_lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines
    # and CI pip-installs nothing on its own: a step only CI takes would hide one the README lacks
    pip_lines = [ln for ln in ci_lines if "pip install" in ln and not ln.startswith("#")]
    assert pip_lines == [test_command], "put every install step into the README's command"


def test_readme_commands_need_no_activated_virtualenv_and_no_cuda_torch():
    """Each step runs through the interpreter the user typed (`python3 -m ...`), never a script
    that is only on PATH in an activated virtualenv; the tests' torch is named and pinned
    before `.[train]` could pull an unpinned (CUDA, several GB) one, within the extra's range."""
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")
    run_command, test_command = sorted(_readme_commands(), key=lambda c: "pytest" in c)
    assert run_command == "python3 -m pip install '.[cpu]' && python3 -m faceguard"
    steps = [step.strip() for step in test_command.split("&&")]
    assert all(step.startswith("python3 -m ") for step in steps), steps
    first = steps[0].split()
    assert first[:4] == ["python3", "-m", "pip", "install"] and len(first) == 5, steps[0]
    pinned = Requirement(first[4])
    assert pinned.name == "torch" and str(pinned.specifier).startswith("=="), steps[0]
    assert any("[dev,train]" in step for step in steps[1:])
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (train_torch,) = [Requirement(r) for r in extras["train"] if Requirement(r).name == "torch"]
    assert train_torch.specifier.contains(str(pinned.specifier)[2:]), (pinned, train_torch)


def test_python_m_faceguard_is_the_command():
    from faceguard import __version__

    result = _run(sys.executable, "-m", "faceguard", "--version")
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout
    result = _run(sys.executable, "-m", "faceguard", "no-such-command")
    assert result.returncode == 2 and "faceguard" in result.stderr and "Traceback" not in result.stderr


def test_a_warning_from_faceguard_code_fails_the_tests():
    """pyproject's filterwarnings: FaceGuard's own UserWarning / RuntimeWarning are errors,
    another package's are only reported."""
    import warnings

    for category, module in ((UserWarning, "faceguard.vision.embed"), (RuntimeWarning, "faceguard")):
        with pytest.raises(category):
            warnings.warn_explicit("from our code", category, "x.py", 1, module=module)
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn_explicit("from theirs", UserWarning, "x.py", 1, module="faceguardian.x")
    assert [str(w.message) for w in seen] == ["from theirs"]


def test_test_modules_share_helpers_only_through_conftest():
    """Helpers live in conftest.py (plain `pytest` and `python -m pytest` then collect alike);
    a test module importing another one would run that module's tests' imports twice."""
    offenders = [f"{p.name}: {line.strip()}" for p in sorted((REPO / "tests").glob("test_*.py"))
                 for line in p.read_text().splitlines()
                 if line.lstrip().startswith(("from tests", "import tests", "from test_"))]
    assert offenders == []
