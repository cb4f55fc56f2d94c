"""Minimal PNG writing and reading of 8-bit images with numpy and zlib (no imaging library),
and the size of a PNG or JPEG from its header.

Blender's Python has no PIL, and the backend must not need one, so renders and masks
are written here; Blender-side code may also use bpy images.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float in [0, 1] (clipped) or uint8 to uint8."""
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_png(path, image: np.ndarray) -> None:
    """Write [H, W] or [H, W, C] (C = 1..4) uint8 or float [0, 1] as PNG."""
    pixels = to_uint8(np.asarray(image))
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, channels = pixels.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, width * channels)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    data = _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b"")
    Path(path).write_bytes(data)


def read_png(path) -> np.ndarray:
    """Read an 8-bit, non-interlaced PNG (as written by `write_png` and most tools) to [H, W, C] uint8."""
    raw = Path(path).read_bytes()
    if not raw.startswith(_SIGNATURE):
        raise ValueError(f"{Path(path).name}: not a PNG file")
    offset, idat, header = 8, [], None
    while offset < len(raw):
        (length,) = struct.unpack_from(">I", raw, offset)
        kind = raw[offset + 4 : offset + 8]
        payload = raw[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            idat.append(payload)
    if header is None:
        raise ValueError(f"{Path(path).name}: PNG has no header")
    width, height, depth, color_type, _, _, interlace = header
    channels = {v: k for k, v in _COLOR_TYPES.items()}.get(color_type)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{Path(path).name}: only 8-bit non-interlaced grey/RGB(A) PNGs are supported")
    data = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), np.int32)
    prev = np.zeros(width * channels, np.int32)
    for y in range(height):
        kind, line = data[y, 0], data[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 255
        else:  # filters 1, 3, 4 depend on the left neighbour: pixel by pixel
            cur = np.zeros_like(line)
            for x in range(line.size):
                left = cur[x - channels] if x >= channels else 0
                up, up_left = prev[x], prev[x - channels] if x >= channels else 0
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - up_left
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                cur[x] = (line[x] + pred) & 255
        out[y], prev = cur, cur
    return out.astype(np.uint8).reshape(height, width, channels)


def image_size(path) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, or None for anything else."""
    try:
        with open(path, "rb") as file:
            head = file.read(1 << 16)
    except OSError:
        return None
    if head[:8] == _SIGNATURE and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:2] == b"\xff\xd8":
        offset = 2
        while offset + 9 < len(head):
            if head[offset] != 0xFF:
                return None
            marker = head[offset + 1]
            if marker == 0xFF:  # fill byte
                offset += 1
                continue
            (length,) = struct.unpack(">H", head[offset + 2 : offset + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
                height, width = struct.unpack(">HH", head[offset + 5 : offset + 9])
                return width, height
            offset += 2 + length
    return None
