"""Host side of the splat display comparisons (window test and benchmarks/bench_display.py):
cameras around a real splat, the backend's renders of what the display should show, and
the scores.

The viewport is compared over its own background: the backend renders over black (its RGB
is then the premultiplied colour) with alpha, and the expected viewport is that colour plus
(1 - alpha) times a crop of the empty viewport.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from masksplat_blender.client import render_views
from masksplat_blender.core.orbit import orbit_cameras
from masksplat_blender.core.prune import psnr
from masksplat_blender.core.splat_io import SplatData, read_splats
from masksplat_blender.core.tint import tint_sh

ROOT = Path(__file__).resolve().parents[2]


def display_cameras(data: SplatData, n: int, width: int, height: int, name_prefix: str = "display") -> list:
    """`n` training-style cameras on an orbit around the splat, looking at its middle."""
    lo, hi = np.percentile(data.means(), [2, 98], axis=0)
    radius = 1.1 * float(np.linalg.norm(hi - lo))
    up = np.zeros(3)
    up[int(np.argmin(hi - lo))] = 1.0  # the thinnest axis; any fixed choice works for an orbit
    return orbit_cameras((lo + hi) / 2, radius, n, width, height, fov_deg=50, up=tuple(up),
                         elevation_deg=(15.0, 40.0), name_prefix=name_prefix)  # fmt: skip


def render(
    client, data: SplatData, cams, *, degree: int = 0, selected=None, offset=(0.0, 0.0, 0.0), keep=None
):
    """The backend's (RGB uint8, alpha uint8) per camera of what the display should show:
    SH up to `degree`, `selected` tinted, moved by `offset`, only the `keep` rows."""
    arrays = data.gaussian_arrays()
    sh = data.sh()[:, : (degree + 1) ** 2]
    if selected is not None:
        sh = tint_sh(sh, selected)
    arrays["means"] = arrays["means"] + np.asarray(offset, np.float32)
    if keep is not None:
        arrays = {k: v[keep] for k, v in arrays.items()}
        sh = sh[keep]
    return render_views(client, arrays, np.ascontiguousarray(sh, np.float32), cams)


def offscreen_psnr(offscreen: np.ndarray, rgb: np.ndarray) -> float:
    """PSNR of an offscreen display image (float RGBA, top row first, over black) against
    the backend's render over black."""
    ours = np.clip(np.round(np.asarray(offscreen)[..., :3] * 255.0), 0, 255).astype(np.uint8)
    return psnr(rgb, ours)


def viewport_psnr(
    crop: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray, border: int = 2
) -> float:
    """PSNR of a viewport crop (uint8, the camera's pixels) against the render composited over
    the empty viewport's crop; `border` camera pixels are left out (the frame's outline)."""
    expected = rgb.astype(np.float64) + (
        1.0 - alpha.astype(np.float64)[..., None] / 255.0
    ) * background.astype(np.float64)
    expected = np.clip(np.round(expected), 0, 255).astype(np.uint8)
    inner = (slice(border, -border), slice(border, -border))
    return psnr(expected[inner], crop[inner])


def load(path: Path) -> SplatData:
    return read_splats(path)
