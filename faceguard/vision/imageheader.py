"""Image dimensions (and EXIF orientation) from a file's header, without decoding any pixel.

load_image caps the size of what it decodes from these numbers, so a small file that declares
a gigantic picture is refused before OpenCV allocates it. Only the formats FaceGuard reads are
understood (JPEG, PNG, BMP, WebP, TIFF); anything else is ``None`` and refused, because a
format whose size cannot be checked cannot be decoded safely. The layouts are the formats'
own specifications (JPEG SOF and APP1/Exif segments, the PNG IHDR chunk, the BMP info header,
the WebP VP8/VP8L/VP8X chunks, TIFF image file directories).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_BITS, _TIFF_ORIENTATION, _TIFF_SAMPLES = 256, 257, 258, 274, 277


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    channels: int = 4          # as OpenCV decodes it (at most); 4 where unknown
    bytes_per_sample: int = 1
    orientation: int = 1       # EXIF Orientation, 1 = upright

    @property
    def decoded_bytes(self) -> int:
        return self.width * self.height * self.channels * self.bytes_per_sample


def read_header(data: bytes) -> Header | None:
    """The header of an image in ``data``, or None when it is not one FaceGuard understands."""
    try:
        if data[:3] == b"\xff\xd8\xff":
            return _jpeg(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png(data)
        if data[:2] == b"BM":
            return _bmp(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _checked(h: Header) -> Header | None:
    return h if h.width > 0 and h.height > 0 else None


def _png(data: bytes) -> Header | None:
    if data[12:16] != b"IHDR":
        return None
    w, h, depth, colour = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}.get(colour, 4)
    return _checked(Header(w, h, channels, 2 if depth > 8 else 1))


def _jpeg(data: bytes) -> Header | None:
    pos, orientation = 2, 1
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:          # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):   # markers without a length
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and segment[:6] == b"Exif\x00\x00":
            orientation = _tiff_fields(segment[6:]).get(_TIFF_ORIENTATION, 1)
        elif marker in _SOF:
            precision, h, w, components = struct.unpack(">BHHB", segment[:6])
            return _checked(Header(w, h, max(components, 1) if components <= 4 else 4,
                                   2 if precision > 8 else 1, orientation if 1 <= orientation <= 8 else 1))
        elif marker == 0xDA:        # image data before any frame header: not a JPEG we read
            return None
        pos += 2 + length
    return None


def _bmp(data: bytes) -> Header | None:
    dib = struct.unpack("<I", data[14:18])[0]
    if dib == 12:
        w, h = struct.unpack("<HH", data[18:22])
        bpp = struct.unpack("<H", data[24:26])[0]
    else:
        w, h = struct.unpack("<ii", data[18:26])
        bpp = struct.unpack("<H", data[28:30])[0]
    return _checked(Header(abs(w), abs(h), 4 if bpp == 32 else 3, 1))


def _webp(data: bytes) -> Header | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack("<HH", data[26:30])
        return _checked(Header(w & 0x3FFF, h & 0x3FFF))
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        bits = struct.unpack("<I", data[21:25])[0]
        return _checked(Header((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return _checked(Header(w, h))
    return None


def _tiff(data: bytes) -> Header | None:
    f = _tiff_fields(data)
    if _TIFF_WIDTH not in f or _TIFF_HEIGHT not in f:
        return None
    samples = f.get(_TIFF_SAMPLES, 4)
    orientation = f.get(_TIFF_ORIENTATION, 1)
    return _checked(Header(f[_TIFF_WIDTH], f[_TIFF_HEIGHT], min(max(samples, 1), 4) if samples <= 4 else 4,
                           # bytes per sample as stored: a 32-bit float sample is 4, not 2
                           max(1, min(8, (f.get(_TIFF_BITS, 16) + 7) // 8)),
                           orientation if 1 <= orientation <= 8 else 1))


def _tiff_fields(tiff: bytes) -> dict[int, int]:
    """The short/long values of the first image file directory of a TIFF structure (a TIFF
    file, or the body of a JPEG's Exif segment): {tag: first value}."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or struct.unpack(order + "H", tiff[2:4])[0] != 42:
        return {}
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    count = struct.unpack(order + "H", tiff[ifd:ifd + 2])[0]
    fields: dict[int, int] = {}
    for i in range(min(count, 512)):
        entry = tiff[ifd + 2 + 12 * i: ifd + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, kind, n = struct.unpack(order + "HHI", entry[:8])
        if kind == 3:      # SHORT: the first value sits in the entry's first two value bytes
            value = struct.unpack(order + "H", entry[8:10])[0]
            if n > 2:      # stored elsewhere (e.g. bits per sample of three channels)
                off = struct.unpack(order + "I", entry[8:12])[0]
                value = struct.unpack(order + "H", tiff[off:off + 2])[0]
        elif kind == 4:    # LONG
            value = struct.unpack(order + "I", entry[8:12])[0]
            if n > 1:
                off = value
                value = struct.unpack(order + "I", tiff[off:off + 4])[0]
        else:
            continue
        fields.setdefault(tag, value)
    return fields
