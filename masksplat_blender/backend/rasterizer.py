"""One interface over the two rasterizers: our compiled CPU tile loop and gsplat on CUDA.

Both follow gsplat 1.5's projection and blending rules, so votes and renders agree
between them; the CPU one is the reference the CUDA path is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class Gaussians:
    """Splat geometry as the backend receives it (all float32, native byte order).

    means: [N, 3]; quats: [N, 4] wxyz, not necessarily normalised; log_scales: [N, 3];
    opacity_logits: [N]; sh: [N, (d+1)^2, 3] or None (only needed for renders).
    """

    means: np.ndarray
    quats: np.ndarray
    log_scales: np.ndarray
    opacity_logits: np.ndarray
    sh: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.means.shape[0])


@dataclass
class View:
    """One camera in OpenCV convention (x right, y down, z forward).

    viewmat: [4, 4] world-to-camera; K: [3, 3] with fx, fy, cx, cy in pixels
    (pixel centres at +0.5); width, height in pixels.
    """

    viewmat: np.ndarray
    K: np.ndarray
    width: int
    height: int


class Rasterizer(Protocol):
    """What both rasterizers offer. `name` is reported to the user ("cpu", "gsplat-cuda")."""

    name: str

    def votes(self, gaussians: Gaussians, view: View, weights: np.ndarray, out: np.ndarray) -> None:
        """Add sum_p weights[p, k] * alpha_i(p) * T_i(p) to out[i, k] for one view.

        weights: [H, W, K] float32 (e.g. K=2: mask*(1-ignore), (1-mask)*(1-ignore));
        out: [N, K] float64 accumulator, updated in place (views are streamed one by one).
        """
        ...

    def render(self, gaussians: Gaussians, view: View, background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Render RGB [H, W, 3] float32 (SH evaluated for this view, clamped at 0 like gsplat)
        and alpha [H, W] float32."""
        ...
