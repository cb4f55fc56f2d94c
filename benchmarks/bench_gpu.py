"""GPU benchmark (needs CUDA and gsplat): MaskSplat's gsplat votes vs bare gsplat and the paper's loop.

    python benchmarks/bench_gpu.py [--n 1000000] [--views 100] [--width 1920] [--height 1080]

1,000,000 synthetic Gaussians, 100 views at 1920x1080 with uint8 masks. "ours" is
GsplatRasterizer.votes_masks (masks to the GPU as uint8, K=2 channels, batched);
"bare gsplat" is rasterization forward+backward for the same batches with the weights
already on the GPU; "paper loop" is one view at a time with two backward passes
(foreground and background separately), as the paper's reference code does. Also the
whole backend request (reading 100 masks from the request folder) and CPU/CUDA
agreement on the bundled real splat.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--views", type=int, default=100)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    import torch
    from gsplat import rasterization
    from synthetic import make_splat_data

    from masksplat_blender.backend import raster_gsplat
    from masksplat_blender.backend.rasterizer import Gaussians
    from masksplat_blender.core.orbit import orbit_cameras

    ok, reason = raster_gsplat.available()
    if not ok:
        raise SystemExit(f"gsplat not usable: {reason}")
    data = make_splat_data(args.n, 0, seed=1)
    g = Gaussians(data.means(), data.quats_wxyz(), data.log_scales(), data.opacity_logits())
    cams = orbit_cameras([0, 0, 0], 1.6, args.views, args.width, args.height, fov_deg=60)
    views = cams
    yy, xx = np.mgrid[: args.height, : args.width]
    rng = np.random.default_rng(0)
    masks = []
    for _ in views:
        cx, cy = rng.uniform(0.3, 0.7) * args.width, rng.uniform(0.3, 0.7) * args.height
        masks.append((((xx - cx) ** 2 + (yy - cy) ** 2) < (0.25 * args.height) ** 2).astype(np.uint8) * 255)
    ignores = [None] * len(views)
    ours = raster_gsplat.GsplatRasterizer(batch=args.batch)
    dev = torch.device("cuda")

    def timed(fn, repeat=3):
        fn()
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        return best

    out = np.zeros((g.count, 2))
    t_ours = timed(lambda: ours.votes_masks(g, views, masks, ignores, "two_class", out))

    means, quats, scales, opac, _ = ours._gaussian_tensors(g)
    viewmats = torch.as_tensor(np.stack([v.world_to_camera for v in views]).astype(np.float32), device=dev)
    ks = torch.as_tensor(np.stack([v.K() for v in views]).astype(np.float32), device=dev)
    weights_gpu = []
    for start in range(0, len(views), args.batch):
        m = torch.as_tensor(np.stack(masks[start : start + args.batch]), device=dev).float() / 255
        weights_gpu.append(torch.stack([m, 1 - m], -1))

    def bare():
        for i, start in enumerate(range(0, len(views), args.batch)):
            colors = torch.zeros((g.count, 2), device=dev, requires_grad=True)
            render, _, _ = rasterization(means, quats, scales, opac, colors, viewmats[start : start + args.batch],
                                         ks[start : start + args.batch], args.width, args.height, eps2d=0.3, packed=False)  # fmt: skip
            (render * weights_gpu[i]).sum().backward()

    t_bare = timed(bare)
    masks_gpu = [torch.as_tensor(m, device=dev).float()[None, :, :, None] / 255 for m in masks]

    def paper():
        for i in range(len(views)):
            for target in (masks_gpu[i], 1 - masks_gpu[i]):
                colors = torch.zeros((g.count, 3), device=dev, requires_grad=True)
                render, _, _ = rasterization(means, quats, scales, opac, colors, viewmats[i : i + 1], ks[i : i + 1],
                                             args.width, args.height, eps2d=0.3, packed=False)  # fmt: skip
                (render * target).mean().backward()

    t_paper = timed(paper, repeat=1)

    # The whole backend request, reading uint8 masks from the request folder.
    from masksplat_blender.backend.server import handle
    from masksplat_blender.core.request import make_request_dir, write_request

    folder = make_request_dir()
    arrays = {
        "means": g.means,
        "quats": g.quats,
        "log_scales": g.log_scales,
        "opacity_logits": g.opacity_logits,
    }
    write_request(folder, "votes", arrays, cams, masks)
    rasterizers: dict = {}
    handle(folder, "cuda", lambda *a: None, lambda: False, rasterizers)
    t_request = timed(lambda: handle(folder, "cuda", lambda *a: None, lambda: False, rasterizers), repeat=2)

    print(f"\n{args.n:,} Gaussians, {args.views} views at {args.width}x{args.height}, uint8 masks, "
          f"{torch.cuda.get_device_name()}; best of 3 (paper loop: 1 run)\n")  # fmt: skip
    print("| method | seconds | vs bare gsplat |")
    print("|---|---|---|")
    for name, t in (("MaskSplat gsplat votes (K=2, batched)", t_ours), ("whole backend request (masks read from disk)", t_request),
                    ("bare gsplat.rasterization fwd+bwd", t_bare), ("paper's loop (2 backward passes a view)", t_paper)):  # fmt: skip
        print(f"| {name} | {t:.3f} | {t / t_bare:.2f}x |")

    # CPU/CUDA agreement on the bundled real splat.
    from scenes import mask_weights, scene_and_views

    from masksplat_blender.backend.raster_cpu import CpuRasterizer

    print("\n| CPU vs CUDA, fruit_drops, 16 views 256x256 | value |")
    print("|---|---|")
    sg, sviews = scene_and_views(size=256, n_views=16)
    a, b = np.zeros((sg.count, 2)), np.zeros((sg.count, 2))
    gpu = raster_gsplat.GsplatRasterizer()
    for i, view in enumerate(sviews):
        w = mask_weights(256, i)
        gpu.votes(sg, view, w, a)
        CpuRasterizer().votes(sg, view, w, b)
    scale = np.abs(b).max()
    seen = b.sum(1) > 0
    print(f"| max abs difference / max vote | {np.abs(a - b).max() / scale:.2e} |")
    print(f"| relative L1 difference | {np.abs(a - b).sum() / np.abs(b).sum():.2e} |")
    print(
        f"| fg>bg decision agreement (seen Gaussians) | {((a[:, 0] > a[:, 1]) == (b[:, 0] > b[:, 1]))[seen].mean():.5f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
