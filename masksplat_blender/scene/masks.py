"""Masks on Blender cameras: a Blender image per camera at its own resolution.

The image is `camera_object.masksplat.mask`, packed so it is saved with the .blend. Red
holds the mask (1 = object), blue the "ignore" region (1 = casts no vote). Blender
images are stored bottom row first; everything here returns top row first, like files
and the backend.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..core.masks import MaskError, check_mask_size, mask_from_pixels
from .cameras import camera_resolution
from .images import image_pixels

VERSION_KEY = "masksplat_version"


def read_image_file(path) -> np.ndarray:
    """Pixels [H, W, C] float32 (top row first) of any image Blender reads (PNG, JPG, EXR, ...)."""
    try:
        pixels = image_pixels(path)
    except ValueError as err:
        raise MaskError(str(err)) from None
    if pixels.shape[2] == 4 and np.all(pixels[:, :, 3] == 1.0):
        pixels = pixels[:, :, :3]
    return np.ascontiguousarray(pixels)


def load_mask_file(path) -> np.ndarray:
    """[H, W] float32 mask from an image file (mean of RGB, times alpha)."""
    return mask_from_pixels(read_image_file(path))


def set_camera_mask(cam_obj: bpy.types.Object, mask: np.ndarray, ignore: np.ndarray | None = None) -> bpy.types.Image:
    """Store `mask` ([H, W] in [0, 1]) and optional `ignore` ([H, W] bool) on the camera."""
    width, height, _, _ = camera_resolution(cam_obj, bpy.context.scene)
    check_mask_size(cam_obj.name, mask, width, height)
    image = store_camera_image(cam_obj, "mask", "MaskSplat Mask", mask, ignore)
    image[VERSION_KEY] = int(image.get(VERSION_KEY, 0)) + 1
    return image


def store_camera_image(cam_obj, prop: str, prefix: str, red: np.ndarray, blue: np.ndarray | None = None) -> bpy.types.Image:
    """Write [H, W] channels (top row first) into the camera's packed, non-colour image
    `cam_obj.masksplat.<prop>`, made anew when missing or of another size."""
    height, width = red.shape
    image = getattr(cam_obj.masksplat, prop)
    if image is None or tuple(image.size) != (width, height):
        image = bpy.data.images.new(f"{prefix} {cam_obj.name}", width, height, alpha=True)
        image.colorspace_settings.name = "Non-Color"
        setattr(cam_obj.masksplat, prop, image)
    rgba = np.zeros((height, width, 4), dtype=np.float32)
    rgba[:, :, 0] = red
    if blue is not None:
        rgba[:, :, 2] = np.asarray(blue, dtype=np.float32)
    rgba[:, :, 3] = 1.0
    image.pixels.foreach_set(np.ascontiguousarray(rgba[::-1]).ravel())
    image.update()
    image.pack()
    return image


def camera_image(cam_obj: bpy.types.Object, prop: str) -> np.ndarray | None:
    """The pixels [H, W, C] float32, top row first, of the image in `cam_obj.masksplat.<prop>`
    (as store_camera_image wrote them), or None when there is none."""
    image = getattr(cam_obj.masksplat, prop)
    if image is None:
        return None
    width, height = image.size
    pixels = np.empty(width * height * image.channels, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    return pixels.reshape(height, width, image.channels)[::-1]


def camera_mask(cam_obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(mask [H, W] float32, ignore [H, W] bool or None) of a camera, or None without a mask."""
    pixels = camera_image(cam_obj, "mask")
    if pixels is None:
        return None
    ignore = pixels[:, :, 2] > 0.5
    return np.ascontiguousarray(pixels[:, :, 0]), (ignore if ignore.any() else None)


def mask_fingerprint(cam_obj: bpy.types.Object) -> str:
    """Changes whenever the mask's pixels change (for the per-camera vote cache).

    Masks written here carry a version number, so an unchanged mask costs nothing to
    recognise; one edited elsewhere (e.g. Blender's image editor: the image is dirty)
    is hashed in full.
    """
    import hashlib

    image = cam_obj.masksplat.mask
    if image is None:
        return ""
    if VERSION_KEY in image and not image.is_dirty:
        return f"{image.name_full}:v{image[VERSION_KEY]}:{image.size[0]}x{image.size[1]}:{image.packed_file.size if image.packed_file else 0}"
    pixels = np.empty(len(image.pixels), dtype=np.float32)
    image.pixels.foreach_get(pixels)
    return hashlib.blake2b(pixels.tobytes(), digest_size=16).hexdigest()
