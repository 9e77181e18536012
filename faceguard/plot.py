"""Small PNG charts drawn with OpenCV (no matplotlib dependency in the app)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


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
    cv2.line(img, (pad, h - pad), (w - pad, h - pad), (0, 0, 0), 1)
    cv2.line(img, (x(threshold), pad // 2), (x(threshold), h - pad), (0, 0, 0), 2)
    for v in np.linspace(lo, hi, 6):
        cv2.putText(img, f"{v:.2f}", (x(v) - 15, h - pad + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.putText(img, f"enrolled (green, n={len(genuine)})  strangers (red, n={len(strangers)})  "
                f"threshold {threshold:.3f}", (pad, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, xlabel, (w // 2 - 4 * len(xlabel), h - 10),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    out = Path(out)
    if not cv2.imwrite(str(out), img):
        from faceguard.errors import FaceGuardError

        raise FaceGuardError(f"Cannot write the plot to {out}.")
    return out
