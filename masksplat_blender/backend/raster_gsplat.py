"""gsplat on CUDA: votes as real gradients, as the paper computes them.

Colours are a zero tensor that requires grad; `L = sum(weights * render)` and
`L.backward()` leave dL/dc_i = sum_p weights(p) w_i(p) in `colors.grad`, for K channels
in one pass (gsplat splits channels itself). Views of one size go through one
`rasterization` call in batches; uint8 masks travel to the GPU as uint8 and become
weights there (`torch_vote_weights`, a mirror of core.votes.vote_weights tested against
it). torch and gsplat are imported lazily so this module loads anywhere.
"""

from __future__ import annotations

import numpy as np

from ..core.cameras import Camera
from ..core.votes import MODES, TWO_CLASS
from .rasterizer import Gaussians, weights_hwk

NEAR, FAR, EPS2D = 0.01, 1e10, 0.3
_STATE: dict = {}


def available(progress=None) -> tuple[bool, str]:
    """Whether gsplat can run here; compiles its CUDA code on first use (minutes, once)."""
    if "available" in _STATE:
        return _STATE["available"]
    try:
        import torch
    except ImportError:
        result = (False, "torch is not installed")
    else:
        if not torch.cuda.is_available():
            result = (False, "no CUDA device")
        else:
            try:
                import gsplat  # noqa: F401
                from gsplat.cuda._backend import _C  # noqa: F401 - triggers the JIT build if needed
            except Exception as err:  # noqa: BLE001 - any failure means: fall back to the CPU
                result = (False, f"gsplat is not usable ({type(err).__name__}: {err})")
            else:
                result = (True, "")
                if _C is None:
                    result = (False, "gsplat's CUDA extension did not build")
    _STATE["available"] = result
    return result


def torch_vote_weights(masks, ignores, mode: str, device):
    """torch [C, H, W, K] float32 on `device`: core.votes.vote_weights of C views of one
    size, stacked. Masks move to the device as stored (uint8 is 4x smaller than weights)
    and become weights there; any device works (the tests compare on the CPU)."""
    import torch

    if mode not in MODES:
        raise ValueError(f"unknown vote mode {mode!r} (one of {', '.join(MODES)})")
    m = torch.stack([torch.as_tensor(np.asarray(x), device=device) for x in masks])
    m = m.float() / 255.0 if m.dtype == torch.uint8 else m.float()
    if m.ndim == 3:
        m = m[..., None]
    weights = torch.cat([m, 1.0 - m], dim=-1) if mode == TWO_CLASS else m
    if any(ignore is not None for ignore in ignores):
        keep = torch.stack([
            torch.ones(m.shape[1:3], dtype=torch.bool, device=device) if ignore is None
            else torch.as_tensor(np.asarray(ignore), device=device) == 0
            for ignore in ignores
        ])  # fmt: skip
        weights = weights * keep[..., None].float()
    return weights


class GsplatRasterizer:
    name = "gsplat-cuda"

    def __init__(self, batch: int = 8):
        import torch

        self.torch = torch
        self.device = torch.device("cuda")
        self.batch = batch
        self._cache_key = None
        self._tensors = None

    def _gaussian_tensors(self, gaussians: Gaussians):
        key = (id(gaussians.means), gaussians.count)
        if self._cache_key != key:
            t = self.torch
            dev = self.device
            means = t.as_tensor(np.ascontiguousarray(gaussians.means), device=dev)
            quats = t.as_tensor(np.ascontiguousarray(gaussians.quats), device=dev)
            scales = t.exp(t.as_tensor(np.ascontiguousarray(gaussians.log_scales), device=dev))
            opacities = t.sigmoid(t.as_tensor(np.ascontiguousarray(gaussians.opacity_logits), device=dev))
            sh = None if gaussians.sh is None else t.as_tensor(np.ascontiguousarray(gaussians.sh), device=dev)
            self._tensors = (means, quats, scales, opacities, sh)
            self._cache_key = key
        return self._tensors

    def _rasterize(self, gaussians, views, colors, sh_degree=None, backgrounds=None):
        from gsplat import rasterization

        t = self.torch
        means, quats, scales, opacities, _ = self._gaussian_tensors(gaussians)
        viewmats = t.as_tensor(np.stack([v.world_to_camera for v in views]).astype(np.float32), device=self.device)
        ks = t.as_tensor(np.stack([v.K() for v in views]).astype(np.float32), device=self.device)
        return rasterization(
            means, quats, scales, opacities, colors, viewmats, ks, views[0].width, views[0].height,
            near_plane=NEAR, far_plane=FAR, eps2d=EPS2D, radius_clip=0.0, sh_degree=sh_degree,
            packed=False, rasterize_mode="classic", backgrounds=backgrounds,
        )  # fmt: skip

    def _accumulate(self, gaussians, views, weights, out: np.ndarray) -> None:
        """weights: torch [C, H, W, K] on the GPU."""
        t = self.torch
        colors = t.zeros((gaussians.count, weights.shape[-1]), device=self.device, requires_grad=True)
        render, _, _ = self._rasterize(gaussians, views, colors)
        (render * weights).sum().backward()
        out += colors.grad.double().cpu().numpy()

    def votes(self, gaussians: Gaussians, view: Camera, weights: np.ndarray, out: np.ndarray) -> None:
        self._accumulate(gaussians, [view], self.torch.as_tensor(weights_hwk(weights)[None], device=self.device), out)

    def votes_masks(self, gaussians: Gaussians, views, masks, ignores, mode: str, out: np.ndarray) -> None:
        """Votes for views of one size from their masks as stored, `batch` views a rasterization."""
        for start in range(0, len(views), self.batch):
            chunk = slice(start, start + self.batch)
            weights = torch_vote_weights(masks[chunk], ignores[chunk], mode, self.device)
            self._accumulate(gaussians, views[chunk], weights, out)

    def render(self, gaussians: Gaussians, view: Camera, background: np.ndarray | None = None):
        t = self.torch
        *_, sh = self._gaussian_tensors(gaussians)
        degree = int(round(np.sqrt(sh.shape[1]))) - 1
        bg = None if background is None else t.as_tensor(np.asarray(background, np.float32)[None, :3], device=self.device)
        with t.no_grad():
            image, alpha, _ = self._rasterize(gaussians, [view], sh, sh_degree=degree, backgrounds=bg)
        return image[0].clamp(0, 1).cpu().numpy(), alpha[0, ..., 0].cpu().numpy()
