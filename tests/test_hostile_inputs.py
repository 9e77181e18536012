"""Issue 22 item 14: inputs that ended in a traceback (exit 70), a hang or an allocation of
terabytes now end in one sentence and exit 2, fast."""

from __future__ import annotations

import os
import struct
import time

import pytest

from faceguard.cli import main
from faceguard.errors import FaceGuardError, GalleryError
from faceguard.gallery.bulk import items_from
from faceguard.settings import DoorSettings, Settings
from faceguard.vision.image import decode_image


@pytest.mark.parametrize("argv", [
    ["log", "list", "--limit", "100000000000000000000"],
    ["gallery", "valid-until", "E001", "0001-01-01"],
    ["bench", "--batch", "100000000"],
    ["gallery", "remove", "E\udc80"],
])
def test_overflowing_or_broken_arguments_are_a_sentence_not_a_traceback(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unexpected error" not in err and "Traceback" not in err and err.strip()


@pytest.mark.parametrize("what", ["huge index", "fifo", "missing"])
def test_a_camera_that_cannot_be_one_is_refused_at_once(what, tmp_path, capsys):
    source = {"huge index": "100000000000000000000", "fifo": str(tmp_path / "pipe"),
              "missing": str(tmp_path / "nowhere.mp4")}[what]
    if what == "fifo":
        os.mkfifo(source)
    t0 = time.monotonic()
    assert main(["door", "--headless", "--camera", source, "--max-seconds", "30"]) == 2
    assert time.monotonic() - t0 < 20          # not a hang, not retried until --max-seconds
    err = capsys.readouterr().err
    assert "unexpected error" not in err and ("camera" in err or "file" in err)


def test_a_tiff_of_32_bit_samples_is_sized_as_such():
    # A little-endian TIFF header: 8190 x 8190, 4 samples of 32 bits (float RGBA), no pixels.
    entries = [(256, 3, 1, 8190), (257, 3, 1, 8190), (258, 3, 1, 32), (277, 3, 1, 4)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    data = b"II" + struct.pack("<HI", 42, 8) + ifd + b"\0" * 1024
    with pytest.raises(FaceGuardError, match="too large|pixels|memory|big"):
        decode_image(data, "float.tif")


def test_a_300_mb_csv_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "people.csv"
    with open(big, "wb") as fh:
        fh.truncate(300 << 20)                 # sparse: no 300 MB written
    with pytest.raises(GalleryError, match="too large"):
        items_from(big)


@pytest.mark.parametrize("settings", [
    lambda: Settings(cooldown_s=float("nan")), lambda: Settings(cooldown_s=-1.0),
    lambda: Settings(threshold=float("nan")), lambda: Settings(door=DoorSettings(open_seconds=1e9)),
    lambda: Settings(door=DoorSettings(open_seconds=float("inf"))), lambda: Settings(site_max_stale_s=-5.0),
])
def test_settings_refuse_nan_negative_and_absurd_values(settings):
    with pytest.raises(FaceGuardError):
        settings().validate()
