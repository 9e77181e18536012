"""Reading image files into RGB uint8 arrays, with a clear message for every bad file.

Hostile or broken files must end in one ImageError, never a hang, a traceback or gigabytes of
memory: only regular files are read (a FIFO or /dev/zero would block or never end), files are
capped in size, and the dimensions are read from the file's header (imageheader.py) and capped
BEFORE anything is decoded (a 3 MB PNG can declare 20000 x 20000 16-bit pixels). A phone
portrait stored sideways with an EXIF Orientation tag is turned upright, as the phone shows it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceguard.errors import ImageError
from faceguard.inputs import read_limited
from faceguard.vision.imageheader import read_header

# Larger images are accepted but shrunk to this many pixels on the long side: nothing in a
# door-check needs more, and a 12000x12000 photo would otherwise cost seconds per detect.
MAX_SIDE = 4000
MAX_FILE_BYTES = 64 << 20          # no photo of a face needs more
MAX_PIXELS = 150_000_000           # a 150 MP panorama still loads (then shrinks); 2^30 does not
MAX_DECODED_BYTES = 512 << 20      # pixels x channels x bytes per sample, as decoded
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


def upright(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF Orientation value (1-8) so the picture shows as the camera meant it."""
    if orientation == 2:
        img = img[:, ::-1]
    elif orientation == 3:
        img = img[::-1, ::-1]
    elif orientation == 4:
        img = img[::-1]
    elif orientation == 5:
        img = np.swapaxes(img, 0, 1)
    elif orientation == 6:
        img = np.rot90(img, -1)
    elif orientation == 7:
        img = np.rot90(np.swapaxes(img, 0, 1), 2)
    elif orientation == 8:
        img = np.rot90(img, 1)
    return np.ascontiguousarray(img)


def decode_image(data: bytes, label: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image bytes → RGB uint8 [H, W, 3], upright; ImageError starting with ``label``."""
    if not data:
        raise ImageError(f"{label}: the file is empty (0 bytes).")
    header = read_header(data)
    if header is None:
        raise ImageError(f"{label}: not an image FaceGuard can read (use JPEG or PNG).")
    if header.width * header.height > max_pixels or header.decoded_bytes > MAX_DECODED_BYTES:
        raise ImageError(f"{label}: the image is too large to load ({header.width}x{header.height} "
                         f"pixels; at most {max_pixels / 1e6:.0f} megapixels). Use a smaller photo.")
    if _looks_truncated(data):
        raise ImageError(f"{label}: the image file is truncated (incomplete download or copy?).")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise ImageError(f"{label}: not an image FaceGuard can read (use JPEG or PNG).")
    if min(img.shape[:2]) < 16:
        raise ImageError(f"{label}: the image is too small ({img.shape[1]}x{img.shape[0]} pixels).")
    # Shrink before the colour conversion: on a 12000x12000 grey PNG that is 20x faster and
    # never allocates the full-size 3-channel copy (430 MB). IMREAD_UNCHANGED ignores EXIF, so
    # the orientation the header names is applied here.
    return upright(to_rgb8(shrink_to(img, MAX_SIDE)), header.orientation)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3]; raises ImageError naming the file."""
    path = Path(path)
    return decode_image(read_limited(path, MAX_FILE_BYTES, "a photo file", ImageError), path)


def list_images(root: Path) -> list[Path]:
    """Every image file under root, recursively, in a stable order."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
