"""Reading image files into RGB uint8 arrays, with a clear message for every bad file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceguard.errors import ImageError

# Larger images are accepted but shrunk to this many pixels on the long side: nothing in a
# door-check needs more, and a 12000x12000 photo would otherwise cost seconds per detect.
MAX_SIDE = 4000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _looks_truncated(data: bytes) -> bool:
    if data[:3] == b"\xff\xd8\xff":  # JPEG: must end with the EOI marker (some add trailing bytes)
        return b"\xff\xd9" not in data[-4096:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-64:]
    return False


def to_rgb8(img: np.ndarray) -> np.ndarray:
    """Any OpenCV-decoded array (gray, BGR, BGRA, 16-bit, float) → contiguous RGB uint8."""
    if img.dtype == np.uint16:
        img = (img / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return np.ascontiguousarray(img[:, :, 2::-1])


def shrink_to(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img
    f = max_side / max(h, w)
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3]; raises ImageError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: file not found.") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{path}: is a folder, not an image.") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror}).") from exc
    if not data:
        raise ImageError(f"{path}: the file is empty (0 bytes).")
    if _looks_truncated(data):
        raise ImageError(f"{path}: the image file is truncated (incomplete download or copy?).")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageError(f"{path}: not an image FaceGuard can read (use JPEG or PNG).")
    if min(img.shape[:2]) < 16:
        raise ImageError(f"{path}: the image is too small ({img.shape[1]}x{img.shape[0]} pixels).")
    # Shrink before the colour conversion: on a 12000x12000 grey PNG that is 20x faster and
    # never allocates the full-size 3-channel copy (430 MB).
    return to_rgb8(shrink_to(img, MAX_SIDE))


def list_images(root: Path) -> list[Path]:
    """Every image file under root, recursively, in a stable order."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
