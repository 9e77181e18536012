"""Issue 15, item 7: hostile inputs end in one clear line (exit 2), never a traceback, a hang or
gigabytes of memory. Real files, real zips, real FIFOs; the CLI runs as a user would run it."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.cli import main
from faceguard.errors import ImageError
from faceguard.vision.image import load_image

REPO = Path(__file__).resolve().parent.parent
LFW_PHOTO = "images/Abel_Pacheco/Abel_Pacheco_0001.jpg"


def cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI in this process; assert exit 2 with one line and no traceback."""
    code = main(argv)
    out = capsys.readouterr()
    assert code == 2, (code, out.out, out.err)
    assert "Traceback" not in out.err and len(out.err.strip().splitlines()) == 1, out.err
    return out.err


def cli_subprocess(argv: list[str], timeout: float = 30) -> str:
    """The CLI as a separate program (for inputs that could hang or eat the test's memory)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "faceguard.cli", *argv], capture_output=True,
                       text=True, timeout=timeout, env=env)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def png_declaring(width: int, height: int, depth: int = 16, colour: int = 2) -> bytes:
    """A small, well-formed PNG header that declares a huge picture (the IDAT is tiny)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
            + chunk(b"IEND", b""))


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an APP1 Exif segment whose IFD0 holds one Orientation tag, as a phone writes."""
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) \
        + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


# -- images -------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(40000, 30000), (20000, 20000)])
def test_image_declaring_too_many_pixels_is_refused_from_its_header(tmp_path, capsys, size):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(*size))
    assert path.stat().st_size < 10_000
    err = cli_error(capsys, ["identify", str(path)])
    assert "too large" in err and f"{size[0]}x{size[1]}" in err and str(path) in err


def test_non_regular_files_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "camera.jpg"
    os.mkfifo(fifo)                      # opening it would block until a writer comes: never
    for target in (fifo, Path("/dev/zero")):
        err = cli_subprocess(["identify", str(target)], timeout=20)
        assert "not a regular file" in err and str(target) in err


def test_oversized_file_is_refused(tmp_path):
    big = tmp_path / "big.jpg"
    with open(big, "wb") as fh:
        fh.truncate(70 << 20)            # sparse: 70 MB on paper, nothing on disk
    with pytest.raises(ImageError, match="too large"):
        load_image(big)


def test_unknown_format_is_refused(tmp_path):
    pgm = tmp_path / "face.pgm"
    cv2.imwrite(str(pgm), np.zeros((50, 50), np.uint8))
    with pytest.raises(ImageError, match="not an image FaceGuard can read"):
        load_image(pgm)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(lfw, tmp_path, orientation):
    from faceguard.vision.image import upright

    upright_rgb = load_image(lfw / LFW_PHOTO)[:, 20:]            # not square: a turn shows
    inverse = {6: 8, 8: 6}.get(orientation, orientation)       # the others undo themselves
    stored = upright(upright_rgb, inverse)
    if orientation == 6:                                       # anchored on numpy, not on upright()
        assert np.array_equal(stored, np.rot90(upright_rgb, 1))
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(stored[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 98])
    path = tmp_path / "portrait.jpg"
    path.write_bytes(with_exif_orientation(buf.tobytes(), orientation))
    rgb = load_image(path)
    assert rgb.shape == upright_rgb.shape
    assert np.abs(rgb.astype(int) - upright_rgb.astype(int)).mean() < 4


def test_phone_portrait_rotated_by_exif_enrols_upright(lfw, tmp_path, pipeline):
    """Stored sideways with Orientation 8 (turn left to show): enrols, and the gallery keeps
    the photo as the phone shows it (the door's and the gallery's pictures are upright)."""
    from faceguard.gallery.enrol import enrol
    from faceguard.gallery.store import Gallery

    upright_rgb = load_image(lfw / LFW_PHOTO)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(np.rot90(upright_rgb, -1)[:, :, ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, 98])
    path = tmp_path / "portrait.jpg"
    path.write_bytes(with_exif_orientation(buf.tobytes(), 8))
    with Gallery.open() as g:
        enrol(g, pipeline, load_image(path), "Abel Pacheco", "E1", consent=True)
        kept = g.photo("E1")
    assert np.abs(kept.astype(int) - upright_rgb.astype(int)).mean() < 6


# -- settings, split files, export targets -----------------------------------------------------
@pytest.mark.parametrize("content, words", [
    ('{"door": 5}', "Setting 'door'"),
    ('{"door": [1, 2]}', "Setting 'door'"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"camera": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),
    ('{"threshold": NaN}', "threshold"),
    ('{"door": {"timeout_s": Infinity}}', "door.timeout_s"),
    ("\xff\xfe not utf-8", "cannot be read"),
])
def test_hostile_settings_file_is_one_line(content, words, capsys):
    from faceguard import paths

    paths.settings_file().write_bytes(content.encode("latin-1") if content.startswith("\xff") else content.encode())
    err = cli_error(capsys, ["gallery", "check"])        # reads the settings first
    assert words in err, err


def test_settings_file_that_is_a_fifo_does_not_hang():
    from faceguard import paths

    os.mkfifo(paths.settings_file())
    err = cli_subprocess(["gallery", "check"], timeout=20)
    assert "not a regular file" in err


def test_split_without_a_role_column_is_one_line(tmp_path, capsys, pipeline, monkeypatch):
    from faceguard.cli import common

    monkeypatch.setattr(common, "load_pipeline", lambda args: pipeline)
    split = tmp_path / "split.tsv"
    split.write_text("path\tidentity\na.jpg\tAna\n")
    err = cli_error(capsys, ["eval", "identify", str(tmp_path), str(split)])
    assert "no role column" in err and str(split) in err
