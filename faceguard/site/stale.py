"""How long a site door has decided from its copy without hearing from the site (issue 22 item 9).

Deciding from the local replica while the site is unreachable is the design (the door keeps
working), but a revocation made meanwhile does not reach it. This makes that visible (the
window's status bar, ``site status``) and, with the ``site_max_stale_s`` setting, bounded: past
the cap the door lets nobody in, saying why, until it is in step again.
"""

from __future__ import annotations

import time
from pathlib import Path

from faceguard.site import SiteError
from faceguard.site.config import ReplicaState, SiteConfig

_CACHE_S = 1.0
_cache: dict[Path, tuple[float, float | None, bool, int | None]] = {}


def last_heard(data_dir: Path) -> tuple[bool, float | None]:
    """(joined a site, time of the last successful catch-up or None), read at most once a second
    unless the replica state file changed meanwhile (a catch-up, or a door started anew)."""
    root = Path(data_dir)
    now = time.monotonic()
    stamp = _stamp(root)
    hit = _cache.get(root)
    if hit is not None and now - hit[0] < _CACHE_S and hit[3] == stamp:
        return hit[2], hit[1]
    try:
        config = SiteConfig.load()
        joined = config is not None
        heard = ReplicaState.load(root, config.site_id).last_sync if config is not None else None
    except SiteError:
        joined, heard = True, None        # a damaged state: as never heard
    _cache[root] = (now, heard, joined, stamp)
    return joined, heard


def _stamp(root: Path) -> int | None:
    try:
        return ReplicaState.path(root).stat().st_mtime_ns
    except OSError:
        return None


def stale_reason(data_dir: Path, cap_s: float, now: float | None = None) -> str | None:
    """Why this door must not let anyone in now (its copy is older than ``cap_s``), or None."""
    if not cap_s or cap_s <= 0:
        return None
    joined, heard = last_heard(data_dir)
    if not joined:
        return None
    now = time.time() if now is None else now
    if heard is not None and now - heard <= cap_s:
        return None
    since = "never" if heard is None else time.strftime("%H:%M:%S", time.localtime(heard))
    return (f"this door has not heard from the site since {since} (more than {cap_s:g} s, the "
            "most the settings allow): it lets nobody in until it is back in step")
