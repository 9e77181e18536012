"""The one progress bar: a stderr line rewritten in place, for the CLI and the benchmarks.

Library code takes a ``progress`` callback (``progress(done, total)``, default None: quiet) and
never draws; the command that wants a bar passes a ``ProgressBar``. The bar draws only on a
terminal: a service's or a test's captured stderr gets nothing (the log file has the facts).
"""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """``bar(done, total)`` after each step: ``label [#####.....] done/total 3.2/s eta 10s note``.

    A run ends when ``done == total``: the line is finished with a newline and the clock
    restarts, so one bar can show several runs in turn (e.g. one per training epoch).
    """

    width = 30

    def __init__(self, label: str = "", stream=None, *, every_s: float = 0.2):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn = 0  # length of the line on screen: a shorter one must blank its tail

    def __call__(self, done: int, total: int | None = None, *, label: str | None = None,
                 note: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        finished = total is not None and done >= total
        # Redrawing every step would cost more than a fast step itself.
        if not finished and now - self._last < self.every_s:
            return
        self._last = now
        rate = done / max(now - self._start, 1e-9)
        text = label if label is not None else self.label
        if total:
            filled = int(self.width * min(done, total) / total)
            eta = (total - done) / rate if rate else 0.0
            line = (f"{text} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
                    f"{rate:.1f}/s eta {eta:.0f}s")
        else:
            line = f"{text} {done} {rate:.1f}/s"
        line = f"{line} {note}".rstrip()
        self.stream.write("\r" + line.ljust(self._drawn))
        self._drawn = len(line)
        if finished:
            self.stream.write("\n")
            self._start, self._drawn = now, 0
        self.stream.flush()
