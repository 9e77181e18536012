"""Before Qt starts: are the system libraries its platform plugin needs on this machine?

The PySide6 wheel brings Qt itself but not the system libraries Qt's platform plugins load
(OpenGL, fontconfig, xkbcommon, and for a real X11 window a dozen libxcb-* ones). When one is
missing, Qt aborts with "Could not load the Qt platform plugin ... even though it was found",
which names neither the library nor the fix. :func:`qt_problem` finds out first and says which
Debian/Ubuntu package to install, in one line.

Call it before importing anything from PySide6 (importing QtGui already needs libGL and
friends); this module imports no Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

# (shared library as the dynamic loader looks it up, Debian/Ubuntu package that installs it)
# QtGui and every platform plugin, offscreen included (DESIGN.md, "Testing").
COMMON: tuple[tuple[str, str], ...] = (
    ("libGL.so.1", "libgl1"),
    ("libGLX.so.0", "libglx0"),
    ("libGLdispatch.so.0", "libglvnd0"),
    ("libEGL.so.1", "libegl1"),
    ("libfontconfig.so.1", "libfontconfig1"),
    ("libfreetype.so.6", "libfreetype6"),
    ("libxkbcommon.so.0", "libxkbcommon0"),
    ("libdbus-1.so.3", "libdbus-1-3"),
    ("libglib-2.0.so.0", "libglib2.0-0"),
    ("libgthread-2.0.so.0", "libglib2.0-0"),
    ("libX11.so.6", "libx11-6"),
    ("libxcb.so.1", "libxcb1"),
)

# What Qt's platform plugins link on top (from `ldd` of PySide6's plugins/platforms/*.so).
PLATFORM: dict[str, tuple[tuple[str, str], ...]] = {
    "xcb": (
        ("libxcb-cursor.so.0", "libxcb-cursor0"),
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxcb-image.so.0", "libxcb-image0"),
        ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
        ("libxcb-render-util.so.0", "libxcb-render-util0"),
        ("libxcb-shape.so.0", "libxcb-shape0"),
        ("libxcb-util.so.1", "libxcb-util1"),
        ("libxcb-randr.so.0", "libxcb-randr0"),
        ("libxcb-render.so.0", "libxcb-render0"),
        ("libxcb-shm.so.0", "libxcb-shm0"),
        ("libxcb-sync.so.1", "libxcb-sync1"),
        ("libxcb-xfixes.so.0", "libxcb-xfixes0"),
        ("libxcb-xkb.so.1", "libxcb-xkb1"),
        ("libX11-xcb.so.1", "libx11-xcb1"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ),
    "wayland": (
        ("libwayland-client.so.0", "libwayland-client0"),
        ("libwayland-cursor.so.0", "libwayland-cursor0"),
    ),
}


def _load(soname: str) -> object:
    """Load a shared library the way Qt's plugin loader will find it; OSError when it is not there."""
    return ctypes.CDLL(soname)


def chosen_platforms(environ: dict[str, str] | None = None) -> list[str]:
    """The platform plugins Qt will try, in order: QT_QPA_PLATFORM ("wayland;xcb", plugin
    arguments after ':' dropped), else wayland in a Wayland session and xcb otherwise."""
    env = os.environ if environ is None else environ
    asked = env.get("QT_QPA_PLATFORM", "").strip()
    if asked:
        return [p.split(":", 1)[0].strip() for p in asked.split(";") if p.strip()]
    if env.get("WAYLAND_DISPLAY"):
        return ["wayland", "xcb"]
    return ["xcb"]


def missing_libraries(platform: str, load: Callable[[str], object] = _load) -> list[tuple[str, str]]:
    """(library, package) for every library `platform` needs that cannot be loaded."""
    missing = []
    for soname, package in COMMON + PLATFORM.get(platform, ()):
        try:
            load(soname)
        except OSError:
            missing.append((soname, package))
    return missing


def describe(platform: str, missing: list[tuple[str, str]]) -> str:
    """One line a person can act on: what is missing, and the apt-get command that installs it."""
    libs = [soname for soname, _ in missing]
    packages = list(dict.fromkeys(package for _, package in missing))
    if len(libs) == 1:
        what = f"{libs[0]} is missing"
    else:
        what = f"{', '.join(libs[:-1])} and {libs[-1]} are missing"
    them = "it" if len(packages) == 1 else "them"
    return (f"Qt cannot start ({platform} platform): {what}. "
            f"Install {them} with: sudo apt-get install {' '.join(packages)}")


def qt_problem(platform: str | None = None, load: Callable[[str], object] = _load,
               system: str = sys.platform, environ: dict[str, str] | None = None) -> str | None:
    """None when Qt can start here; otherwise one line naming the missing libraries and the
    apt package(s) to install (or, for X11, the missing display).

    ``platform``: the Qt platform plugin ("xcb", "offscreen", "wayland", ...); by default the
    ones QT_QPA_PLATFORM or the session asks for (Qt tries each in turn, so one that has all
    its libraries is enough). ``load`` opens a library by name and raises OSError when it is
    missing (tests pass a fake); ``environ`` defaults to os.environ. Only Linux is checked:
    the macOS and Windows wheels carry what Qt needs.
    """
    if not system.startswith("linux"):
        return None
    env = os.environ if environ is None else environ
    problems = []
    for name in [platform] if platform else chosen_platforms(env):
        missing = missing_libraries(name, load)
        if missing:
            problems.append(describe(name, missing))
        elif name == "xcb" and not env.get("DISPLAY"):
            problems.append("Qt cannot start (xcb platform): there is no X display (DISPLAY is not "
                            "set). Start FaceGuard from the desktop, or run the door check without "
                            "a window: python3 -m faceguard door --camera 0 --headless")
        else:
            return None
    return problems[0] if problems else None
