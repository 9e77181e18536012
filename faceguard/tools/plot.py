"""The one chart helper: small PNG charts drawn with OpenCV (matplotlib is no dependency).

``distance_histograms`` (calibrate --plot) and ``line_panels`` (training curves) share the
text, axis and file-writing code below.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from faceguard.errors import FaceGuardError

FONT = cv2.FONT_HERSHEY_SIMPLEX
BLACK, GREY = (0, 0, 0), (170, 170, 170)


def _text(img: np.ndarray, text: str, at: tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(img, text, (int(at[0]), int(at[1])), FONT, scale, BLACK, 1, cv2.LINE_AA)


def save_png(img: np.ndarray, out: Path) -> Path:
    """Write `img` (BGR) as a PNG; a path OpenCV cannot write is a FaceGuardError naming it."""
    out = Path(out)
    if not cv2.imwrite(str(out), img):  # OpenCV returns False (no exception) for a bad path
        raise FaceGuardError(f"Cannot write the chart to {out}: is the folder there and writable?")
    return out


def distance_histograms(genuine, strangers, threshold: float, out: Path, *, bins: int = 60,
                        size=(900, 420),
                        xlabel: str = "squared L2 distance to the best gallery match") -> Path:
    """Overlaid histograms of best-match distances (enrolled people vs strangers) with the
    threshold drawn as a vertical line. Axis: squared L2 distance, 0..max."""
    w, h = size
    pad = 50
    img = np.full((h, w, 3), 255, np.uint8)
    lo = float(min(np.min(genuine, initial=0), np.min(strangers, initial=0), 0.0))  # margin < 0
    hi = float(max(np.max(genuine, initial=0), np.max(strangers, initial=0), threshold)) * 1.05 or 1.0
    edges = np.linspace(lo, hi, bins + 1)
    hg = np.histogram(genuine, edges)[0] / max(len(genuine), 1)
    hs = np.histogram(strangers, edges)[0] / max(len(strangers), 1)
    top = max(hg.max(initial=0), hs.max(initial=0)) or 1.0
    x = lambda v: int(pad + (w - 2 * pad) * (v - lo) / (hi - lo))  # noqa: E731
    y = lambda f: int(h - pad - (h - 2 * pad) * f / top)  # noqa: E731
    for counts, colour in ((hg, (60, 160, 60)), (hs, (40, 40, 200))):
        for i, f in enumerate(counts):
            if f > 0:
                cv2.rectangle(img, (x(edges[i]), y(f)), (x(edges[i + 1]) - 1, h - pad), colour, 1)
    cv2.line(img, (pad, h - pad), (w - pad, h - pad), BLACK, 1)
    cv2.line(img, (x(threshold), pad // 2), (x(threshold), h - pad), BLACK, 2)
    for v in np.linspace(lo, hi, 6):
        _text(img, f"{v:.2f}", (x(v) - 15, h - pad + 20))
    _text(img, f"enrolled (green, n={len(genuine)})  strangers (red, n={len(strangers)})  "
               f"threshold {threshold:.3f}", (pad, 25), 0.5)
    _text(img, xlabel, (w // 2 - 4 * len(xlabel), h - 10))
    return save_png(img, out)


def line_panels(panels: Sequence[tuple[str, Sequence[tuple[float, float]]]], out: Path, *,
                panel: tuple[int, int] = (360, 260), xlabel: str = "epoch") -> Path:
    """One line chart per (title, [(x, y), ...]) side by side; an empty series says 'no data'."""
    w, h = panel
    canvas = np.full((h, w * max(len(panels), 1), 3), 255, np.uint8)
    for k, (title, pts) in enumerate(panels):
        _line_panel(canvas[:, k * w:(k + 1) * w], list(pts), title, xlabel)
    return save_png(canvas, out)


def _line_panel(img: np.ndarray, pts: list[tuple[float, float]], title: str, xlabel: str) -> None:
    h, w = img.shape[:2]
    left, right, top, bottom = 50, 12, 28, 30
    _text(img, title, (left, 18), 0.5)
    cv2.rectangle(img, (left, top), (w - right, h - bottom), GREY, 1)
    if not pts:
        cv2.putText(img, "no data", (left + 10, h // 2), FONT, 0.45, GREY, 1, cv2.LINE_AA)
        return
    xs, ys = np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)
    x0, x1 = xs.min(), max(xs.max(), xs.min() + 1)
    y0, y1 = ys.min(), ys.max()
    pad = (y1 - y0) * 0.1 or abs(y1) * 0.1 or 0.1  # a flat series still gets a visible band
    y0, y1 = y0 - pad, y1 + pad
    px = left + (xs - x0) / (x1 - x0) * (w - left - right)
    py = (h - bottom) - (ys - y0) / (y1 - y0) * (h - top - bottom)
    for val, ypix in ((y1, top), (y0, h - bottom)):
        _text(img, f"{val:.3g}", (2, ypix + 4), 0.35)
    _text(img, f"{xlabel} {x0:g}", (left, h - 10), 0.35)
    _text(img, f"{x1:g}", (w - right - 20, h - 10), 0.35)
    line = np.stack([px, py], 1).round().astype(np.int32)
    cv2.polylines(img, [line], False, (200, 90, 20), 2, cv2.LINE_AA)
    for x, y in line:
        cv2.circle(img, (int(x), int(y)), 3, (200, 90, 20), -1, cv2.LINE_AA)
