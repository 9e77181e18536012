"""SYNTHETIC screen replays for the texture benchmark: a face image shown on a phone or monitor
held up to the camera, rendered, not filmed. What a screen adds that a live face lacks, made
up from its physics, not measured on any real screen:

* the display's pixel grid: every image pixel becomes three vertical R, G, B sub-pixel stripes
  with dark gaps, which the camera resamples at another pitch (aliasing: moiré);
* the display's tone: a backlight's raised blacks, a steeper gamma and a cool white point;
* a bezel (a black frame round the picture) and a specular glare band across the glass;
* perspective (the screen held at an angle), then the camera's noise and JPEG compression.

These frames stand in for attack material the repository does not have; numbers measured on
them are said to be synthetic wherever they are reported.
"""

from __future__ import annotations

import cv2
import numpy as np

FRAME_W, FRAME_H = 640, 480
SUBPIXEL = 3                      # stripes per display pixel


def _pixel_grid(rgb: np.ndarray, display_px: int, strength: float) -> np.ndarray:
    """The image as a display of ``display_px`` pixels wide shows it, sub-pixels drawn: float
    RGB at SUBPIXEL × the display resolution. ``strength`` (0..1): how much of the stripe
    pattern survives the camera lens's own blur (mixed with the plain picture)."""
    h, w = rgb.shape[:2]
    dh = max(8, round(display_px * h / w))
    shown = cv2.resize(rgb, (display_px, dh), interpolation=cv2.INTER_AREA).astype(np.float32)
    big = np.repeat(np.repeat(shown, SUBPIXEL, axis=0), SUBPIXEL, axis=1)
    mask = np.zeros((SUBPIXEL, SUBPIXEL, 3), np.float32)
    for c in range(3):                       # stripe c of each pixel lights channel c only
        mask[:-1, c, c] = 3.0 * SUBPIXEL / (SUBPIXEL - 1)   # the last row: the gap between rows
    tiled = np.tile(mask, (dh, display_px, 1))     # mean 1 per channel: brightness kept
    return big * (1 - strength + strength * tiled)


def _tone(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    black = rng.uniform(12, 30)              # backlight bleed
    gamma = rng.uniform(1.1, 1.35)
    white = np.array([rng.uniform(0.88, 0.95), rng.uniform(0.95, 1.0), 1.0], np.float32)
    y = black + (255 - black) * np.clip(x / 255.0, 0, 1) ** gamma
    return y * white


def _glare(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    d = (xx - w * rng.uniform(0.2, 0.8)) * np.cos(angle) + (yy - h * rng.uniform(0.2, 0.8)) * np.sin(angle)
    width = rng.uniform(0.05, 0.2) * max(h, w)
    return (rng.uniform(20, 80) * np.exp(-(d / width) ** 2))[..., None]


def screen_frame(rgb: np.ndarray, rng: np.random.Generator, *, face_frac: float = 0.55,
                 grid: tuple[float, float] = (0.2, 0.5)) -> np.ndarray:
    """One camera frame (RGB uint8, FRAME_W×FRAME_H) of ``rgb`` shown on a held-up screen that
    fills about ``face_frac`` of the frame height (above 1: a monitor close up, its bezel out of
    the picture); ``grid``: the range of the sub-pixel pattern's strength."""
    display_px = int(rng.integers(180, 420))
    screen = _tone(_pixel_grid(rgb, display_px, rng.uniform(*grid)), rng)
    gh, gw = screen.shape[:2]
    bezel = int(0.06 * gw)
    framed = np.zeros((gh + 2 * bezel, gw + 2 * bezel, 3), np.float32)
    framed[bezel:bezel + gh, bezel:bezel + gw] = screen
    framed += _glare(*framed.shape[:2], rng)
    fh, fw = framed.shape[:2]
    out_h = face_frac * FRAME_H / (gh / fh)
    out_w = out_h * fw / fh
    cx, cy = FRAME_W / 2 + rng.uniform(-60, 60), FRAME_H / 2 + rng.uniform(-30, 30)
    tilt = rng.uniform(-0.12, 0.12, size=(4, 2)) * [out_w, out_h]
    dst = np.array([[cx - out_w / 2, cy - out_h / 2], [cx + out_w / 2, cy - out_h / 2],
                    [cx + out_w / 2, cy + out_h / 2], [cx - out_w / 2, cy + out_h / 2]]) + tilt
    src = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    room = np.full((FRAME_H, FRAME_W, 3), rng.uniform(60, 140), np.float32)
    # the camera integrates the sub-pixels over its own pixels: area-like resampling (moiré)
    shot = cv2.warpPerspective(np.clip(framed, 0, 255), m, (FRAME_W, FRAME_H), dst=room,
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    shot = cv2.GaussianBlur(shot, (0, 0), 0.6)
    noisy = np.clip(shot + rng.normal(0, 3, shot.shape), 0, 255).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)   # channel order kept: RGB in, RGB out
