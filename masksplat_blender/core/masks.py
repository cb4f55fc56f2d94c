"""Masks: one channel at the camera's resolution (1 = object, 0 = not), from files or painting.

From an RGB(A) image the channel is the mean of RGB, times alpha when there is one.
Files are matched to cameras by file stem (core.cameras.image_stem: the camera's image
name without folders and extension), with any image extension (`0001.png` for the camera
of `images/0001.jpg`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cameras import image_stem

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".bmp", ".webp")


class MaskError(ValueError):
    """Masks that do not fit the cameras; the message says which and why."""


def mask_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """[H, W] float32 in [0, 1] from [H, W] or [H, W, C] pixels (uint8 or float in [0, 1])."""
    pixels = np.asarray(pixels)
    values = pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels.astype(np.float32)
    if values.ndim == 2:
        return np.clip(values, 0.0, 1.0)
    channels = values.shape[2]
    if channels in (1, 2):
        mask = values[:, :, 0] * (values[:, :, 1] if channels == 2 else 1.0)
    else:
        mask = values[:, :, :3].mean(axis=2)
        if channels == 4:
            mask = mask * values[:, :, 3]
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def match_mask_files(folder, camera_names) -> dict[str, Path]:
    """{camera file stem: mask file}. Two files for one camera is an error; cameras without a
    file are simply absent (the caller reports them); files for no camera are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MaskError(f"mask folder {folder} does not exist")
    wanted = set(camera_names)
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        stem = image_stem(path.name)
        if path.suffix.lower() in IMAGE_EXTENSIONS and stem in wanted:
            found.setdefault(stem, []).append(path)
    doubles = {name: paths for name, paths in found.items() if len(paths) > 1}
    if doubles:
        name, paths = next(iter(sorted(doubles.items())))
        raise MaskError(f"camera '{name}' has {len(paths)} mask files in {folder}: {', '.join(p.name for p in paths)}")
    if not found:
        raise MaskError(
            f"no mask in {folder} is named after a camera (expected e.g. {sorted(wanted)[0] if wanted else 'NAME'}.png)"
        )
    return {name: paths[0] for name, paths in found.items()}


def check_mask_size(name: str, mask: np.ndarray, width: int, height: int, what: str = "mask") -> None:
    if mask.shape[:2] != (height, width):
        raise MaskError(f"the {what} for camera '{name}' is {mask.shape[1]}x{mask.shape[0]}, the camera is {width}x{height}")


def iou_and_accuracy(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """IoU of the object class and pixel accuracy of two boolean masks (NVOS / SPIn-NeRF)."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    union = np.count_nonzero(predicted | truth)
    iou = np.count_nonzero(predicted & truth) / union if union else 1.0
    return float(iou), float(np.mean(predicted == truth))


def label_sh(values: np.ndarray) -> np.ndarray:
    """SH [N, 1, 3] whose render is `values` (0..1) in every channel: renders a per-Gaussian
    label occlusion-aware, the way ground-truth masks are made from labels."""
    values = np.asarray(values, dtype=np.float32)
    return colour_sh(np.repeat(values[:, None], 3, axis=1))


def colour_sh(colours: np.ndarray) -> np.ndarray:
    """SH [N, 1, 3] (DC only) that renders as `colours` [N, 3] in 0..1 from every side."""
    c0 = 0.28209479177387814
    return ((np.asarray(colours, dtype=np.float32) - 0.5) / c0)[:, None, :].astype(np.float32)


def morph(mask: np.ndarray, radius: int, grow: bool) -> np.ndarray:
    """Binary dilation (grow) or erosion of a bool mask by a disc of `radius` pixels.

    Pixels beyond the image count as "not object" for dilation and "object" for erosion,
    so an object cut by the frame is not eaten from the border.
    """
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0:
        return mask.copy()
    padded = np.pad(mask, radius, constant_values=not grow)
    out = padded.copy()
    h, w = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            shifted = padded[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
            view = out[radius : radius + h, radius : radius + w]
            if grow:
                view |= shifted
            else:
                view &= shifted
    return out[radius : radius + h, radius : radius + w]


def edge_band(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within `radius` of the mask's edge (both sides): where a mask that is off by
    a few pixels (SAM at object borders) is unsure, so they can cast no vote."""
    solid = np.asarray(mask) > 0.5
    return morph(solid, radius, True) & ~morph(solid, radius, False)
