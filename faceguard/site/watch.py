"""Keeping a running door in step with its site, in a background thread.

The thread syncs once at start, then waits on LISTEN for the site's NOTIFY of a gallery change
(delivered within milliseconds of the commit) or for ``interval`` seconds, whichever comes
first, and syncs again (sooner when the door logged an event: the log goes out within about
a second while the site is up): the notification makes changes arrive within seconds, the periodic
catch-up by change sequence makes sure nothing is missed after an outage (NOTIFY is not queued
for a door that is not listening). Events logged by the door go out with each sync.

The door's own thread never waits for the network. The watcher writes the replica through a
connection of its own to the door's gallery, so the door check notices each applied change as
it notices any other process's (SQLite's data_version, asked every frame) and rebuilds its
matcher; ``take_changed()`` also says so once, for callers that keep their own matcher. ``status_line()`` is the text for a status
bar. A site that is down only makes the status say so; the door keeps deciding.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from faceguard.site import SiteError
from faceguard.site.config import SiteConfig
from faceguard.site.schema import CHANNEL
from faceguard.site.store import SiteStore

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 10.0
PUSH_CHECK_S = 1.0   # how often the local log is looked at for events to send
_POLL_S = 0.25       # how often the listener looks at the stop flag


class SiteWatcher:
    def __init__(self, gallery, config: SiteConfig, interval: float = DEFAULT_INTERVAL_S,
                 on_change=None):
        from faceguard.gallery.store import Gallery
        from faceguard.site.replica import Replica

        self._own = Gallery.open(gallery.root, gallery.key_file)
        try:
            self.replica = Replica(self._own, config)
        except BaseException:
            self._own.close()
            raise
        self.interval = float(interval)
        self.on_change = on_change
        self.reachable: bool | None = None     # None: not tried yet
        self.problem: str | None = None
        self.last_sync: float | None = None
        self.syncs = 0
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._listen: Any = None          # the LISTEN connection (psycopg)
        self._store: SiteStore | None = None   # the sync connection, kept between syncs
        self._thread = threading.Thread(target=self._run, name="faceguard-site-sync", daemon=True)

    def start(self) -> SiteWatcher:
        self._thread.start()
        return self

    def take_changed(self) -> bool:
        """True once after the replica changed (the door then reloads its matcher)."""
        if self._changed.is_set():
            self._changed.clear()
            return True
        return False

    def status_line(self) -> str:
        door = self.replica.config.door
        if self.reachable is None:
            return f"site: door '{door}', connecting…"
        if self.reachable:
            state = self.replica.state()
            refused = (f"; {len(state.quarantined)} site row(s) NOT applied here (damaged or edited "
                       "without the key: see 'faceguard site status')") if state.quarantined else ""
            return f"site: door '{door}' in step (gallery version {state.seq}){refused}"
        pending = self.replica.pending()
        heard = self.replica.state().last_sync
        since = f" (last heard {time.strftime('%H:%M:%S', time.localtime(heard))})" if heard else ""
        return (f"site unreachable{since}: deciding from the local copy, {pending} event(s) "
                "waiting; gallery changes are refused until it is back")

    def sync_now(self, timeout: float = 5) -> None:
        try:
            if self._store is None:
                self._store = self.replica.connect(timeout)
            report = self.replica.sync(timeout, self._store)
        except SiteError as exc:
            self._close_store()
            if self.reachable is not False:
                log.warning("Site sync failed: %s", exc)
            self.reachable, self.problem = False, str(exc)
            return
        except Exception:  # noqa: BLE001 - a bug here must not stop the door; it is logged
            self._close_store()
            log.exception("Site sync failed unexpectedly")
            self.reachable, self.problem = False, "unexpected error (see the log)"
            return
        if self.reachable is False:
            log.info("The site is reachable again")
        self.reachable, self.problem, self.last_sync = True, None, time.time()
        self.syncs += 1
        if report.applied:
            self._changed.set()
            if self.on_change:
                self.on_change()

    def _wait_for_change(self) -> None:
        """Block until a NOTIFY, an event to send, ``interval`` seconds, or stop."""
        deadline = time.monotonic() + self.interval
        next_push_check = time.monotonic() + PUSH_CHECK_S
        try:
            if self._listen is None and self.reachable:
                import psycopg

                self._listen = psycopg.connect(self.replica.config.url, autocommit=True, connect_timeout=5)
                self._listen.execute(f"LISTEN {CHANNEL}")
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self.reachable and time.monotonic() >= next_push_check:
                    next_push_check = time.monotonic() + PUSH_CHECK_S
                    if self.replica.pending():
                        return
                if self._listen is None:
                    self._stop.wait(min(_POLL_S, max(0.0, deadline - time.monotonic())))
                    continue
                for _ in self._listen.notifies(timeout=_POLL_S, stop_after=1):
                    return
        except Exception as exc:  # noqa: BLE001 - a lost listener falls back to the timer
            log.info("Site listener lost (%s); catching up by timer", exc)
            self._close_listener()
            self._stop.wait(max(0.0, deadline - time.monotonic()))

    def _close_listener(self) -> None:
        if self._listen is not None:
            try:
                self._listen.close()
            except Exception:  # noqa: BLE001
                pass
            self._listen = None

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sync_now()
            self._wait_for_change()
        self._close_listener()

    def stop(self, flush_timeout: float = 3) -> None:
        """Stop the thread, then send what the door logged since the last sync (one short try;
        what does not go now goes with the next sync)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 30)
        if self._thread.is_alive():
            # Still in a long catch-up: leave it to end with the process (a daemon thread; an
            # interrupted sync resumes at the next start).
            log.warning("The site sync did not stop in time; it resumes at the next start")
            return
        if flush_timeout:
            self.sync_now(flush_timeout)
        self._close_store()
        self._own.close()


def start_for(gallery, interval: float = DEFAULT_INTERVAL_S, on_change=None) -> SiteWatcher | None:
    """A started watcher when this door has joined a site, else None. A site that cannot be set
    up (the [site] extra missing, a damaged key) is logged and the door runs on its own."""
    try:
        config = SiteConfig.load()
        if config is None:
            return None
        return SiteWatcher(gallery, config, interval, on_change).start()
    except SiteError as exc:
        log.error("The site sync is off: %s", exc)
        return None
