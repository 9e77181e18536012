"""A dependency-free progress bar on stderr (CLI and benchmarks only; library code stays quiet)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, label: str = "", stream=None,
             enabled: bool = True) -> Iterator[T]:
    stream = stream or sys.stderr
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    show = enabled and getattr(stream, "isatty", lambda: False)()
    start = time.monotonic()
    last = 0.0
    n = 0
    for n, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if show and (now - last > 0.2 or n == total):
            last = now
            rate = n / max(now - start, 1e-9)
            if total:
                width = 30
                done = int(width * n / total)
                eta = (total - n) / rate if rate else 0
                stream.write(f"\r{label} [{'#' * done}{'.' * (width - done)}] {n}/{total} "
                             f"{rate:.1f}/s eta {eta:.0f}s ")
            else:
                stream.write(f"\r{label} {n} {rate:.1f}/s ")
            stream.flush()
    if show:
        stream.write("\n")
    elif enabled and n:
        stream.write(f"{label} {n} done in {time.monotonic() - start:.1f}s\n")
