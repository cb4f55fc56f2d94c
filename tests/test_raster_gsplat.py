"""gsplat on CUDA against the CPU reference (runs only where CUDA and gsplat are present)."""

from __future__ import annotations

import numpy as np
import pytest
from test_raster_cpu import mask_weights, scene_and_views

from masksplat_blender.backend import raster_gsplat
from masksplat_blender.backend.raster_cpu import CpuRasterizer

ok, reason = raster_gsplat.available()
pytestmark = pytest.mark.skipif(not ok, reason=f"gsplat CUDA path not testable here: {reason}")


def test_gsplat_votes_agree_with_cpu_reference():
    g, views = scene_and_views(size=96, n_views=4)
    gpu, cpu = raster_gsplat.GsplatRasterizer(), CpuRasterizer()
    for i, view in enumerate(views):
        w = mask_weights(96, i)
        a, b = np.zeros((g.count, 2)), np.zeros((g.count, 2))
        gpu.votes(g, view, w, a)
        cpu.votes(g, view, w, b)
        scale = np.abs(b).max()
        assert scale > 1
        assert np.abs(a - b).max() / scale < 5e-3
        assert np.abs(a - b).sum() / np.abs(b).sum() < 5e-3
        seen = (b.sum(1) > 1e-3 * scale)
        agree = ((a[:, 0] > a[:, 1]) == (b[:, 0] > b[:, 1]))[seen].mean()
        assert agree > 0.995


def test_batched_uint8_masks_equal_single_views():
    g, views = scene_and_views(size=64, n_views=5)
    gpu = raster_gsplat.GsplatRasterizer(batch=3)
    masks = [(mask_weights(64, i)[:, :, 0] * 255).astype(np.uint8) for i in range(5)]
    keeps = [None, np.ones((64, 64), bool), None, None, None]
    keeps[1][:10] = False
    batched = np.zeros((g.count, 2))
    gpu.votes_masks(g, views, masks, keeps, "two_class", batched)
    single = np.zeros((g.count, 2))
    for view, m, k in zip(views, masks, keeps, strict=True):
        w = np.stack([m / 255.0, 1 - m / 255.0], -1).astype(np.float32)
        if k is not None:
            w *= k[:, :, None]
        gpu.votes(g, view, w, single)
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-4)


def test_gsplat_render_agrees_with_cpu_render():
    g, views = scene_and_views(size=64, n_views=2)
    for view in views:
        a, alpha_a = raster_gsplat.GsplatRasterizer().render(g, view)
        b, alpha_b = CpuRasterizer().render(g, view)
        assert np.abs(alpha_a - alpha_b).max() < 2e-2
        assert np.abs(a - np.clip(b, 0, 1)).mean() < 2e-3
