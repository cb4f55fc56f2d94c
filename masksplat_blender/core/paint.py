"""Pure functions behind the paint tool: region pixels to camera pixels, brush and lasso,
and the one rule of which buffer a stroke writes.

Looking through a camera, Blender draws the camera frame as a rectangle in the region;
`camera_frame_in_region` corners come from `view_frame` + `location_3d_to_region_2d`, so
zoom, pan and lens shift are already in them. Masks are [H, W] float32, top row first.

A mask pixel is in one of three states: object (mask 1), not object (0) or ignore (casts
no vote). A stroke sets the state it paints and replaces whatever the pixel was, so what
the overlay shows is what votes: Object sets the mask and clears ignore, Erase clears
both, Ignore sets ignore and clears the mask. A label map has one buffer: Object paints
the label, Erase paints background (0); it has no ignore state.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

OBJECT, ERASE, IGNORE = "OBJECT", "ERASE", "IGNORE"
MASK, LABELS = "MASK", "LABELS"


class PaintError(ValueError):
    """A stroke that cannot be painted as asked (e.g. Ignore into a label map)."""


def paint_writes(mode: str, target: str = MASK, label: int = 1) -> tuple[tuple[str, float], ...]:
    """(buffer name, value) pairs a stroke in `mode` writes: "mask" and "ignore" for the
    MASK target, "ids" for LABELS. The windowless stroke, the brush and the lasso all ask here."""
    if target == LABELS:
        if mode == IGNORE:
            raise PaintError("label maps have no ignore region: paint label 0 (background) or erase")
        return (("ids", label if mode == OBJECT else 0),)
    if target != MASK:
        raise PaintError(f"unknown paint target {target!r} (MASK or LABELS)")
    rules = {OBJECT: (("mask", 1.0), ("ignore", 0.0)), ERASE: (("mask", 0.0), ("ignore", 0.0)), IGNORE: (("mask", 0.0), ("ignore", 1.0))}
    if mode not in rules:
        raise PaintError(f"unknown paint mode {mode!r} (OBJECT, ERASE or IGNORE)")
    return rules[mode]


def paint(buffers: dict[str, np.ndarray], draw: Callable[[np.ndarray, float], None], mode: str, target: str = MASK,
          label: int = 1) -> None:  # fmt: skip
    """Apply one stroke: `draw(buffer, value)` (a brush segment or a lasso fill) into every
    buffer `paint_writes` names, with its value."""
    for name, value in paint_writes(mode, target, label):
        draw(buffers[name], value)


def windowless_stroke(points, tool: str, radius: float) -> Callable[[np.ndarray, float], None]:
    """The draw function of a stroke given as camera pixels: a lasso fill, or brush discs
    along the polyline (a single point stamps one disc)."""
    points = [tuple(p) for p in points]
    if tool == "LASSO":
        return lambda buffer, value: fill_polygon(buffer, points, value)

    def brush(buffer, value):
        for start, end in zip(points, points[1:] or points, strict=False):
            stamp_stroke(buffer, start, end, radius, value)

    return brush


def region_to_camera(points, frame_corners, width: int, height: int) -> np.ndarray:
    """Camera pixel coordinates [N, 2] (x right, y down, origin top-left) of region points [N, 2].

    frame_corners: the camera frame's 4 corners in region coordinates (x right, y up), any order.
    """
    corners = np.asarray(frame_corners, dtype=np.float64)
    left, right = corners[:, 0].min(), corners[:, 0].max()
    bottom, top = corners[:, 1].min(), corners[:, 1].max()
    if right - left <= 0 or top - bottom <= 0:
        raise ValueError("the camera frame is not visible in this view")
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    u = (pts[:, 0] - left) / (right - left) * width
    v = (top - pts[:, 1]) / (top - bottom) * height
    return np.stack([u, v], axis=1)


def region_radius_to_camera(radius: float, frame_corners, width: int) -> float:
    """A brush radius in region pixels, in camera pixels."""
    corners = np.asarray(frame_corners, dtype=np.float64)
    span = corners[:, 0].max() - corners[:, 0].min()
    return float(radius) * width / span if span > 0 else float(radius)


def stamp_disc(mask: np.ndarray, centre, radius: float, value: float) -> None:
    """Set every pixel whose centre lies within `radius` of `centre` (camera pixels) to `value`."""
    h, w = mask.shape
    cx, cy = float(centre[0]), float(centre[1])
    x0, x1 = max(int(np.floor(cx - radius)), 0), min(int(np.ceil(cx + radius)) + 1, w)
    y0, y1 = max(int(np.floor(cy - radius)), 0), min(int(np.ceil(cy + radius)) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1]
    inside = (xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2 <= radius * radius
    mask[y0:y1, x0:x1][inside] = value


def stamp_stroke(mask: np.ndarray, start, end, radius: float, value: float) -> None:
    """A brush stroke from `start` to `end`: discs spaced a third of the radius apart."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    steps = max(int(np.ceil(np.linalg.norm(end - start) / max(radius / 3.0, 0.5))), 1)
    for t in np.linspace(0.0, 1.0, steps + 1):
        stamp_disc(mask, start + t * (end - start), radius, value)


def fill_polygon(mask: np.ndarray, polygon, value: float) -> None:
    """Set pixels whose centres lie inside the closed `polygon` [M, 2] (even-odd rule)."""
    poly = np.asarray(polygon, dtype=np.float64)
    if len(poly) < 3:
        return
    h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w]
    px, py = xs.ravel() + 0.5, ys.ravel() + 0.5
    inside = np.zeros(px.shape, dtype=bool)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for ax, ay, bx, by in zip(x0, y0, x1, y1, strict=True):
        crosses = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (px < x_cross)
    mask.reshape(-1)[inside] = value
