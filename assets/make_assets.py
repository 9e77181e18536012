"""Builds the app's icon and sounds from code (no third-party media):

    python assets/make_assets.py      # writes icon.png, arrow_up/down.png, granted/denied/prompt.wav
"""

from __future__ import annotations

import wave
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 22050


def tone(freqs: list[tuple[float, float]], volume: float = 0.4) -> np.ndarray:
    """Notes (frequency Hz, seconds) one after another, each with a soft attack and decay."""
    parts = []
    for f, dur in freqs:
        t = np.arange(int(RATE * dur)) / RATE
        env = np.minimum(1.0, t / 0.01) * np.exp(-3.0 * t / dur)
        wave_ = np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t)
        parts.append(volume * env * wave_ / 1.25)
    return np.concatenate(parts)


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def icon(size: int = 256) -> np.ndarray:
    """A blue shield with a white face outline and a green check (BGRA, drawn supersampled)."""
    s = size * 4
    img = np.zeros((s, s, 4), np.uint8)
    shield = np.array([[0.5, 0.06], [0.88, 0.2], [0.84, 0.58], [0.5, 0.95], [0.16, 0.58], [0.12, 0.2]])
    cv2.fillPoly(img, [(shield * s).astype(np.int32)], (160, 90, 30, 255), cv2.LINE_AA)
    white = (255, 255, 255, 255)
    cv2.ellipse(img, (s // 2, int(0.43 * s)), (int(0.17 * s), int(0.22 * s)), 0, 0, 360, white,
                int(0.035 * s), cv2.LINE_AA)
    for ex in (0.43, 0.57):
        cv2.circle(img, (int(ex * s), int(0.40 * s)), int(0.022 * s), white, -1, cv2.LINE_AA)
    cv2.ellipse(img, (s // 2, int(0.48 * s)), (int(0.07 * s), int(0.05 * s)), 0, 20, 160, white,
                int(0.02 * s), cv2.LINE_AA)
    cv2.circle(img, (int(0.72 * s), int(0.74 * s)), int(0.16 * s), (90, 170, 40, 255), -1, cv2.LINE_AA)
    check = np.array([[0.64, 0.74], [0.70, 0.80], [0.81, 0.67]])
    cv2.polylines(img, [(check * s).astype(np.int32)], False, white, int(0.04 * s), cv2.LINE_AA)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def arrow(up: bool, w: int = 10, h: int = 6) -> np.ndarray:
    """A small dark triangle for the number fields' up / down buttons (BGRA, supersampled)."""
    k = 8
    img = np.zeros((h * k, w * k, 4), np.uint8)
    tri = np.array([[0, h], [w, h], [w / 2, 0]] if up else [[0, 0], [w, 0], [w / 2, h]]) * k
    cv2.fillPoly(img, [tri.astype(np.int32)], (86, 70, 58, 255), cv2.LINE_AA)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def main() -> None:
    write_wav(HERE / "granted.wav", tone([(660, 0.12), (880, 0.22)]))
    write_wav(HERE / "denied.wav", tone([(300, 0.18), (220, 0.3)], volume=0.45))
    write_wav(HERE / "prompt.wav", tone([(520, 0.1), (520, 0.1)], volume=0.4))   # "look here"
    cv2.imwrite(str(HERE / "icon.png"), icon())
    cv2.imwrite(str(HERE / "arrow_up.png"), arrow(True))
    cv2.imwrite(str(HERE / "arrow_down.png"), arrow(False))


if __name__ == "__main__":
    main()
