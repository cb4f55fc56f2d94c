"""Pure functions behind the paint tool: region pixels to camera pixels, brush and lasso.

Looking through a camera, Blender draws the camera frame as a rectangle in the region;
`camera_frame_in_region` corners come from `view_frame` + `location_3d_to_region_2d`, so
zoom, pan and lens shift are already in them. Masks are [H, W] float32, top row first.
"""

from __future__ import annotations

import numpy as np


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
