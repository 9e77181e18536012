"""Before Qt starts, a missing system library is one line naming the apt package."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faceguard.ui import preflight
from faceguard.ui.preflight import qt_problem


def loader_without(*missing: str):
    """A library loader for which the named libraries are not installed."""
    def load(soname: str) -> str:
        if soname in missing:
            raise OSError(f"{soname}: cannot open shared object file: No such file or directory")
        return soname
    return load


X11 = {"DISPLAY": ":0"}


def test_one_missing_xcb_library_names_its_package():
    assert qt_problem("xcb", loader_without("libxcb-cursor.so.0"), system="linux", environ=X11) == (
        "Qt cannot start (xcb platform): libxcb-cursor.so.0 is missing. "
        "Install it with: sudo apt-get install libxcb-cursor0")


def test_offscreen_does_not_need_the_xcb_libraries():
    assert qt_problem("offscreen", loader_without("libxcb-cursor.so.0", "libxcb-icccm.so.4"),
                      system="linux") is None
    assert qt_problem("offscreen", loader_without("libGL.so.1"), system="linux") == (
        "Qt cannot start (offscreen platform): libGL.so.1 is missing. "
        "Install it with: sudo apt-get install libgl1")


def test_several_missing_are_one_line_and_one_command():
    line = qt_problem("xcb", loader_without("libglib-2.0.so.0", "libgthread-2.0.so.0",
                                            "libxkbcommon-x11.so.0"), system="linux", environ=X11)
    assert "\n" not in line
    assert line == ("Qt cannot start (xcb platform): libglib-2.0.so.0, libgthread-2.0.so.0 and "
                    "libxkbcommon-x11.so.0 are missing. "
                    "Install them with: sudo apt-get install libglib2.0-0 libxkbcommon-x11-0")


def test_every_library_has_a_package_and_the_design_notes_are_covered():
    tables = preflight.COMMON + preflight.PLATFORM["xcb"] + preflight.PLATFORM["wayland"]
    assert len({so for so, _ in tables}) == len(tables)
    for soname, package in tables:
        assert re.fullmatch(r"lib[\w.+-]+\.so\.\d+", soname) and re.fullmatch(r"[a-z0-9.+-]+", package)
    # The packages DESIGN.md found by trying Qt on a bare bookworm are all checked for.
    design = Path(__file__).resolve().parents[1].parent / "shared" / "DESIGN.md"
    if not design.is_file():
        pytest.skip(f"{design} is not here")
    notes = design.read_text().split("System packages", 1)[1].split("\n- ", 1)[0]
    named = {p for quoted in re.findall(r"`([^`]+)`", notes) for p in quoted.split()} - {"xvfb", "xauth"}
    assert len(named) >= 13, named
    assert named <= {p for _, p in tables}, sorted(named - {p for _, p in tables})


def test_the_platform_comes_from_qt_qpa_platform_or_the_session():
    assert preflight.chosen_platforms({"QT_QPA_PLATFORM": "offscreen"}) == ["offscreen"]
    assert preflight.chosen_platforms({"QT_QPA_PLATFORM": "wayland;xcb:nomitshm"}) == ["wayland", "xcb"]
    assert preflight.chosen_platforms({"WAYLAND_DISPLAY": "wayland-0"}) == ["wayland", "xcb"]
    assert preflight.chosen_platforms({"DISPLAY": ":0"}) == ["xcb"]


def test_a_fallback_platform_with_its_libraries_is_enough(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "wayland;offscreen")
    no_wayland = loader_without("libwayland-cursor.so.0")
    assert qt_problem(load=no_wayland, system="linux") is None
    no_gl = loader_without("libwayland-cursor.so.0", "libGL.so.1")
    assert qt_problem(load=no_gl, system="linux") == (
        "Qt cannot start (wayland platform): libGL.so.1 and libwayland-cursor.so.0 are missing. "
        "Install them with: sudo apt-get install libgl1 libwayland-cursor0")


def test_xcb_without_a_display_says_so_after_the_libraries():
    everything = loader_without()
    assert qt_problem("xcb", everything, system="linux", environ=X11) is None
    line = qt_problem("xcb", everything, system="linux", environ={})
    assert line.startswith("Qt cannot start (xcb platform): there is no X display (DISPLAY is not set)")
    assert line.endswith("python3 -m faceguard door --camera 0 --headless")
    assert qt_problem(load=everything, system="linux", environ={}) == line   # the default is xcb
    # a missing library comes first: it has to be installed on a desktop, too
    assert "libxcb-shape0" in qt_problem("xcb", loader_without("libxcb-shape.so.0"), system="linux",
                                         environ={})
    assert qt_problem(load=everything, system="linux", environ={"QT_QPA_PLATFORM": "xcb;offscreen"}) is None


def test_only_linux_is_checked():
    assert qt_problem("xcb", loader_without("libGL.so.1"), system="darwin") is None
    assert qt_problem("windows", loader_without("libGL.so.1"), system="win32") is None


def test_on_this_machine_offscreen_qt_can_start():
    # conftest sets QT_QPA_PLATFORM=offscreen, as CI does
    assert qt_problem("offscreen") is None
    assert qt_problem() is None


def _ldd(plugin: Path) -> dict[str, bool]:
    """{library: found} for everything `plugin` loads, as the dynamic loader sees it."""
    out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=60).stdout
    libs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (not found|\S+)", line)
        if m:
            libs[m.group(1)] = m.group(2) != "not found"
    return libs


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ldd") is None,
                    reason="ldd on Linux tells what a Qt plugin really needs")
@pytest.mark.parametrize("platform", ["offscreen", "xcb", "wayland"])
def test_the_check_agrees_with_what_the_real_plugin_loads(platform):
    """With the real loader, qt_problem names exactly the libraries that ldd finds missing for
    PySide6's own plugin, and our table covers the X11/xcb/xkb/wayland ones it links."""
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    plugin = Path(spec.submodule_search_locations[0]) / "Qt" / "plugins" / "platforms" / f"libq{platform}.so"
    assert plugin.is_file(), plugin
    libs = _ldd(plugin)
    assert libs, f"ldd printed nothing for {plugin}"
    table = {so for so, _ in preflight.COMMON + preflight.PLATFORM.get(platform, ())}
    system_libs = {so for so in libs if re.match(r"lib(xcb|X11|xkbcommon|wayland|GL|EGL|fontconfig|dbus)", so)}
    assert system_libs <= table, f"not checked before Qt starts: {sorted(system_libs - table)}"
    missing = sorted(so for so, found in libs.items() if not found)
    problem = qt_problem(platform, environ=X11)   # the libraries, not whether a display is there
    if not missing:
        assert problem is None
    else:
        assert problem is not None and all(so in problem for so in missing), (missing, problem)
        reported = re.findall(r"lib[\w.+-]+\.so\.\d+", problem.split(". Install")[0])
        assert sorted(reported) == missing, (missing, problem)
