"""Cameras placed around a point: the orbit views Prune Splats can add (tests and benchmarks
use the same rig)."""

from __future__ import annotations

import math

import numpy as np

from .cameras import Camera, look_at


def orbit_cameras(
    center, radius: float, n: int, width: int = 256, height: int = 256, fov_deg: float = 50.0,
    up=(0.0, 0.0, 1.0), elevation_deg: tuple[float, float] = (-30.0, 60.0), name_prefix: str = "orbit",
) -> list[Camera]:  # fmt: skip
    """`n` cameras on a sphere band around `center` (a golden spiral), all looking at it.

    `fov_deg` is the horizontal field of view; `elevation_deg` the band's lowest and highest
    elevation above the plane normal to `up`. Deterministic: the same arguments give the same cameras.
    """
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(up, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    low, high = np.radians(elevation_deg)
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
    cameras = []
    for i in range(n):
        s = (i + 0.5) / n
        elevation = math.asin(math.sin(low) + s * (math.sin(high) - math.sin(low)))
        azimuth = i * math.pi * (3.0 - math.sqrt(5.0))
        direction = math.cos(elevation) * (math.cos(azimuth) * e1 + math.sin(azimuth) * e2) + math.sin(elevation) * up
        eye = np.asarray(center, dtype=np.float64) + radius * direction
        name = f"{name_prefix}_{i:03d}"
        cameras.append(Camera(name, f"{name}.png", look_at(eye, center, up), f, f, width / 2.0, height / 2.0, width, height))
    return cameras
