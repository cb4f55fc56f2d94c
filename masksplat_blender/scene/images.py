"""Blender's own image loader for every image file MaskSplat reads (masks, label maps, SOG's WebP)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import numpy as np


def image_pixels(path, as_data: bool = False) -> np.ndarray:
    """Pixels [H, W, C] float32 (top row first) of any image Blender reads (PNG, JPG, EXR, WebP, ...).

    With `as_data` the file's values come through untouched (no colour transform, colour
    and alpha independent), as codes packed into images need. Raises ValueError.
    """
    path = Path(path)
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError as err:
        raise ValueError(f"{path.name}: cannot be read as an image ({err})") from None
    try:
        if as_data:
            image.colorspace_settings.name = "Non-Color"
            image.alpha_mode = "CHANNEL_PACKED"
        width, height = image.size
        channels = image.channels
        if width == 0 or height == 0:
            raise ValueError(f"{path.name}: cannot be read as an image")
        pixels = np.empty(width * height * channels, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return np.ascontiguousarray(pixels.reshape(height, width, channels)[::-1])


def decode_webp(data: bytes, name: str) -> np.ndarray:
    """[H, W, 4] uint8 (top row first) of WebP file bytes, through Blender's own decoder."""
    with tempfile.TemporaryDirectory(prefix="masksplat-webp-") as folder:
        path = Path(folder) / f"{Path(name).stem or 'image'}.webp"
        path.write_bytes(data)
        pixels = image_pixels(path, as_data=True)
    if pixels.shape[2] == 3:
        pixels = np.concatenate([pixels, np.ones_like(pixels[:, :, :1])], axis=2)
    return np.rint(pixels * 255.0).astype(np.uint8)
