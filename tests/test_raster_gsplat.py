"""gsplat on CUDA against the CPU reference (runs only where CUDA and gsplat are present), and
its torch mirror of the vote weights against core.votes.vote_weights (runs on the CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scenes import mask_weights, scene_and_views

from masksplat_blender.backend import raster_gsplat
from masksplat_blender.backend.raster_cpu import CpuRasterizer
from masksplat_blender.core.votes import vote_weights

ok, reason = raster_gsplat.available()
needs_cuda = pytest.mark.skipif(not ok, reason=f"gsplat CUDA path not testable here: {reason}")


def _masks_and_ignores(size=24, views=3):
    rng = np.random.default_rng(3)
    uint8 = [rng.integers(0, 256, (size, size), dtype=np.uint8) for _ in range(views)]
    soft = [rng.uniform(size=(size, size)).astype(np.float32) for _ in range(views)]
    labels = [rng.integers(0, 256, (size, size, 4), dtype=np.uint8) for _ in range(views)]
    ignores = [None, rng.integers(0, 2, (size, size)).astype(bool), rng.integers(0, 3, (size, size), dtype=np.uint8)][:views]
    return uint8, soft, labels, ignores


@pytest.mark.parametrize("kind", ["uint8", "float32", "labels"])
def test_torch_vote_weights_mirror_the_numpy_rule(kind):
    """The GPU path makes its weights in torch; on CPU tensors they equal core's, bit for bit."""
    uint8, soft, labels, ignores = _masks_and_ignores()
    masks, mode = {"uint8": (uint8, "two_class"), "float32": (soft, "two_class"), "labels": (labels, "labels")}[kind]
    expected = np.stack([vote_weights(m, i, mode) for m, i in zip(masks, ignores, strict=True)])
    for chosen in (ignores, [None] * len(masks)):
        got = raster_gsplat.torch_vote_weights(masks, chosen, mode, "cpu")
        reference = expected if chosen is ignores else np.stack([vote_weights(m, None, mode) for m in masks])
        assert got.dtype == torch.float32 and tuple(got.shape) == reference.shape
        np.testing.assert_array_equal(got.numpy(), reference)
    with pytest.raises(ValueError, match="unknown vote mode"):
        raster_gsplat.torch_vote_weights(masks, ignores, "three_class", "cpu")


@needs_cuda
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


@needs_cuda
def test_batched_uint8_masks_equal_single_views():
    g, views = scene_and_views(size=64, n_views=5)
    gpu = raster_gsplat.GsplatRasterizer(batch=3)
    masks = [(mask_weights(64, i)[:, :, 0] * 255).astype(np.uint8) for i in range(5)]
    ignores = [None, np.zeros((64, 64), bool), None, None, None]
    ignores[1][:10] = True
    batched = np.zeros((g.count, 2))
    gpu.votes_masks(g, views, masks, ignores, "two_class", batched)
    single = np.zeros((g.count, 2))
    for view, m, ignore in zip(views, masks, ignores, strict=True):
        gpu.votes(g, view, vote_weights(m, ignore), single)
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-4)


@needs_cuda
def test_gsplat_render_agrees_with_cpu_render():
    g, views = scene_and_views(size=64, n_views=2)
    for view in views:
        a, alpha_a = raster_gsplat.GsplatRasterizer().render(g, view)
        b, alpha_b = CpuRasterizer().render(g, view)
        assert np.abs(alpha_a - alpha_b).max() < 2e-2
        assert np.abs(a - np.clip(b, 0, 1)).mean() < 2e-3
