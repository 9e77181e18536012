"""load_image on real and deliberately broken files: RGB uint8 out, or an ImageError naming the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.errors import FaceGuardError, ImageError
from faceguard.vision.image import MAX_SIDE, list_images, load_image, shrink_to, to_rgb8

LFW_PHOTO = "images/Abel_Pacheco/Abel_Pacheco_0001.jpg"


def expect_image_error(path: Path, words: str) -> str:
    with pytest.raises(ImageError) as info:
        load_image(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    assert words in msg, msg
    assert "\n" not in msg
    return msg


def test_real_lfw_photo_is_rgb_uint8(lfw):
    rgb = load_image(lfw / LFW_PHOTO)
    assert rgb.shape == (250, 250, 3) and rgb.dtype == np.uint8
    assert rgb.flags["C_CONTIGUOUS"]
    bgr = cv2.imread(str(lfw / LFW_PHOTO), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])  # same pixels, channels swapped


def test_truncated_jpeg(lfw, tmp_path):
    data = (lfw / LFW_PHOTO).read_bytes()
    cut = tmp_path / "half.jpg"
    cut.write_bytes(data[: len(data) // 2])
    expect_image_error(cut, "truncated")


def test_truncated_png(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:-200])
    expect_image_error(cut, "truncated")


def test_text_file_named_jpg(tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is a shopping list, not a photo\n" * 20)
    expect_image_error(fake, "not an image")


def test_zero_size_file(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    expect_image_error(empty, "empty")


def test_missing_file(tmp_path):
    expect_image_error(tmp_path / "nobody.jpg", "not found")


def test_folder(tmp_path):
    folder = tmp_path / "photos.jpg"
    folder.mkdir()
    expect_image_error(folder, "folder")


def test_tiny_image(tmp_path):
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((8, 8, 3), np.uint8))
    expect_image_error(tiny, "too small")


def test_grayscale_png(tmp_path):
    gray = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (40, 1))  # 40x50 ramp
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), gray)
    rgb = load_image(path)
    assert rgb.shape == (40, 50, 3) and rgb.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(rgb[:, :, c], gray)


def test_rgba_png_keeps_colour_order(tmp_path):
    bgra = np.zeros((32, 32, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 200, 77  # B, G, R, alpha
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), bgra)
    rgb = load_image(path)
    assert rgb.shape == (32, 32, 3)
    assert rgb[5, 5].tolist() == [200, 20, 10]  # red first, alpha dropped


def test_16bit_png_scaled_to_8bit(tmp_path):
    bgr16 = np.zeros((20, 30, 3), np.uint16)
    bgr16[..., 0], bgr16[..., 1], bgr16[..., 2] = 0, 32896, 65535  # B, G, R
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), bgr16)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really 16-bit on disk
    rgb = load_image(path)
    assert rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 128, 0]


def test_huge_image_is_shrunk_to_max_side(tmp_path):
    # 12000x12000 grey with one white square: ~170 KB on disk, 144 M pixels decoded.
    big = np.full((12000, 12000), 128, np.uint8)
    big[6000:6600, 3000:3600] = 255
    path = tmp_path / "huge.png"
    assert cv2.imwrite(str(path), big)
    assert path.stat().st_size < 2_000_000
    del big
    rgb = load_image(path)
    assert rgb.shape == (MAX_SIDE, MAX_SIDE, 3) and rgb.dtype == np.uint8
    f = MAX_SIDE / 12000  # the square lands at 1/3 of its coordinates
    assert rgb[int(6300 * f), int(3300 * f)].tolist() == [255, 255, 255]
    assert rgb[int(5900 * f), int(3300 * f)].tolist() == [128, 128, 128]


def test_image_error_is_a_faceguard_error():
    assert issubclass(ImageError, FaceGuardError)


def test_to_rgb8_float_and_shrink_keep_aspect():
    f = np.full((10, 20, 3), 0.5, np.float32)
    assert to_rgb8(f)[0, 0].tolist() == [127, 127, 127]
    wide = np.zeros((100, 400, 3), np.uint8)
    assert shrink_to(wide, 200).shape == (50, 200, 3)
    assert shrink_to(wide, 400) is wide  # nothing to do: the same array back


def test_list_images_recursive_and_sorted(tmp_path):
    for rel in ("b/2.JPG", "a/1.png", "a/deeper/3.jpeg", "a/readme.txt"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    (tmp_path / "c.jpg").mkdir()  # a folder with an image suffix is not an image
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a/1.png", "a/deeper/3.jpeg", "b/2.JPG"]
