"""One interface over the two rasterizers: our compiled CPU tile loop and gsplat on CUDA.

Both follow gsplat 1.5's projection and blending rules, so votes and renders agree
between them; the CPU one is the reference the CUDA path is tested against.
`select_rasterizer` picks one for a device setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..core.cameras import Camera
from ..core.request import RequestError


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


class Rasterizer(Protocol):
    """What both rasterizers offer. `name` is reported to the user ("cpu", "gsplat-cuda");
    `batch` is how many views of one size `votes_masks` takes at once to best effect.
    A view is a core.cameras.Camera (OpenCV axes: world_to_camera [4, 4], fx, fy, cx, cy in
    pixels with pixel centres at +0.5, width, height); each rasterizer makes its own arrays
    or tensors from it."""

    name: str
    batch: int

    def votes(self, gaussians: Gaussians, view: Camera, weights: np.ndarray, out: np.ndarray) -> None:
        """Add sum_p weights[p, k] * alpha_i(p) * T_i(p) to out[i, k] for one view.

        weights: [H, W, K] (or [H, W]) float32, e.g. core.votes.vote_weights;
        out: [N, K] float64 accumulator, updated in place (views are streamed one by one).
        """
        ...

    def votes_masks(self, gaussians: Gaussians, views: list[Camera], masks: list, ignores: list, mode: str, out: np.ndarray) -> None:
        """`votes` for views of one size from their masks and ignore regions as a request
        stores them (core.votes.vote_weights says what they mean; an ignore may be None)."""
        ...

    def render(self, gaussians: Gaussians, view: Camera, background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Render RGB [H, W, 3] float32 (SH evaluated for this view, clamped at 0 like gsplat)
        and alpha [H, W] float32."""
        ...


def weights_hwk(weights: np.ndarray) -> np.ndarray:
    """Vote weights as the rasterizers take them: [H, W, K] float32 in C order ([H, W] is K = 1)."""
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    return weights[:, :, None] if weights.ndim == 2 else weights


class CudaUnavailable(Exception):
    """CUDA was asked for explicitly and cannot be used."""


def select_rasterizer(device: str, progress=None) -> tuple[Rasterizer, str]:
    """(rasterizer, note): gsplat on CUDA when asked or when `auto` finds it, else the CPU one."""
    if device not in ("auto", "cpu", "cuda"):
        raise RequestError(f"unknown device {device!r} (auto, cpu or cuda)")
    if device in ("auto", "cuda"):
        from . import raster_gsplat

        if progress is not None and _cuda_present():
            progress(0, 0, "loading gsplat's CUDA code (it compiles on first use, which can take several minutes)")
        ok, reason = raster_gsplat.available(progress)
        if ok:
            return raster_gsplat.GsplatRasterizer(), "gsplat on CUDA"
        if device == "cuda":
            raise CudaUnavailable(f"CUDA was requested but cannot be used: {reason}")
        note = f"CPU rasterizer ({reason})"
    else:
        note = "CPU rasterizer"
    from .raster_cpu import CpuRasterizer

    return CpuRasterizer(), note


def _cuda_present() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
