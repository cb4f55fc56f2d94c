"""CPU vote benchmark: the guitar (90,854 Gaussians), 16 orbit views at 256x256, K=2.

    .venv/bin/python benchmarks/bench_votes.py [--baseline-views 2] [--no-backend]

Cameras orbit the guitar's centre (golden spiral, elevations -40..50 degrees about its
long axis), each at the distance where the guitar's 1..99 % extent fills 95 % of the
frame. Weights: a disk mask m and 1 - m. Prints a table:

- warm: CpuRasterizer.votes over the 16 views in this process (imported, compiled), best
  of 3, with the process CPU time beside it (other jobs on this 2-core machine show up
  as wall > CPU / 2);
- cold: a fresh Python process that imports the backend and runs the 16 views, once with
  numba's on-disk cache (the usual case) and once with an empty cache (first install);
- a float64 per-tile PyTorch compositor (tests/reference_compositor.py) on the first
  --baseline-views views, extrapolated to 16 (it is that slow);
- the warm backend process (client -> backend, request files included) and its peak
  memory for 16 vs 64 views, unless --no-backend.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
GUITAR = ROOT.parent / "shared" / "data" / "playcanvas_guitar" / "guitar_inria_sh0.ply"
SIZE, FOV_DEG = 256, 50.0


def look_at(eye, target, up) -> np.ndarray:
    """World-to-camera, OpenCV axes (x right, y down, z forward)."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:
        right = np.cross(forward, np.roll(up, 1))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward])
    viewmat = np.eye(4)
    viewmat[:3, :3], viewmat[:3, 3] = rot, -rot @ eye
    return viewmat


def fitted_orbit(means: np.ndarray, n: int, size=SIZE, fov_deg=FOV_DEG, fill=0.95, seed=0):
    """`n` (viewmat, K) looking at the object's centre, each as close as lets it fill `fill` of the frame."""
    rng = np.random.default_rng(seed)
    pts = means[rng.choice(len(means), min(len(means), 20000), replace=False)].astype(np.float64)
    lo, hi = np.percentile(pts, [1, 99], axis=0)
    pts = pts[np.all((pts >= lo) & (pts <= hi), axis=1)]
    centre = (lo + hi) / 2
    up = np.zeros(3)
    up[np.argmax(hi - lo)] = -1.0  # the long axis is up in the image
    e1 = np.cross(up, np.roll(up, 1))
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    tan_half = np.tan(np.radians(fov_deg) / 2)
    focal = 0.5 * size / tan_half
    K = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]])
    low, high = np.radians(-40.0), np.radians(50.0)
    views = []
    for i in range(n):
        s = (i + 0.5) / n
        elevation = np.arcsin(np.sin(low) + s * (np.sin(high) - np.sin(low)))
        azimuth = i * np.pi * (3 - np.sqrt(5))
        d = np.cos(elevation) * (np.cos(azimuth) * e1 + np.sin(azimuth) * e2) + np.sin(elevation) * up
        near, far = 0.01, 1000.0
        for _ in range(60):  # bisection on the distance
            mid = 0.5 * (near + far)
            vm = look_at(centre + mid * d, centre, up)
            pc = pts @ vm[:3, :3].T + vm[:3, 3]
            span = np.max(np.abs(pc[:, :2]) / pc[:, 2:3]) if (pc[:, 2] > 1e-3).all() else np.inf
            near, far = (mid, far) if span > fill * tan_half else (near, mid)
        views.append((look_at(centre + far * d, centre, up), K))
    return views


def disk_weights(size=SIZE) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    m = (((xx - size * 0.5) ** 2 + (yy - size * 0.45) ** 2) < (size * 0.27) ** 2).astype(np.float32)
    return np.stack([m, 1 - m], -1)


def load_scene(n_views=16):
    from masksplat_blender.backend.rasterizer import Gaussians
    from masksplat_blender.core.splat_io import read_splats

    data = read_splats(GUITAR)
    g = Gaussians(data.means(), data.quats_wxyz(), data.log_scales(), data.opacity_logits())
    return data, g, fitted_cameras(g.means, n_views)


def fitted_cameras(means: np.ndarray, n: int, seed=0, first=0) -> list:
    """`fitted_orbit` as cameras named v<first>, v<first + 1>, ..."""
    from masksplat_blender.core.cameras import Camera

    return [Camera(f"v{i}", f"v{i}.png", vm, K[0, 0], K[1, 1], K[0, 2], K[1, 2], SIZE, SIZE)
            for i, (vm, K) in enumerate(fitted_orbit(means, n, seed=seed), start=first)]  # fmt: skip


def child() -> None:
    """Cold start: import the CPU rasterizer (numba) and run the 16 views; the PLY and the
    cameras are read and built before the clock starts."""
    _, g, views = load_scene()
    w = disk_weights()
    assert "numba" not in sys.modules
    start = time.perf_counter()
    from masksplat_blender.backend.raster_cpu import CpuRasterizer

    loaded = time.perf_counter()
    out = np.zeros((g.count, 2))
    raster = CpuRasterizer()
    for view in views[:16]:
        raster.votes(g, view, w, out)
    end = time.perf_counter()
    print(json.dumps({"total": end - start, "import": loaded - start}))


def cold_start(empty_cache: bool) -> dict:
    env = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="masksplat-numba-") if empty_cache else None
    if tmp:
        env["NUMBA_CACHE_DIR"] = tmp
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child"], capture_output=True, text=True, env=env, check=True
        )
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def backend_rows(data, n_views: int) -> list[str]:
    from masksplat_blender.client import BackendClient, compute_votes
    from masksplat_blender.core.request import make_request_dir, write_request

    arrays = data.gaussian_arrays()
    cams = fitted_cameras(data.means(), 16) + fitted_cameras(data.means(), 48, seed=1, first=16)
    masks = [(disk_weights()[:, :, 0] * 255).astype(np.uint8) for _ in cams]
    client = BackendClient(sys.executable, device="cpu")
    try:
        compute_votes(client, arrays, cams[:1], masks[:1])  # warm-up
        folder = make_request_dir()
        write_request(folder, "votes", arrays, cams[:n_views], masks[:n_views])
        warm = []
        for _ in range(3):
            start = time.perf_counter()
            client.run(folder)
            warm.append(time.perf_counter() - start)
        shutil.rmtree(folder)
    finally:
        client.close()
    rows = [f"| backend process, warm (client request incl. files, best of 3) | {min(warm):.3f} | | |"]
    for n in (16, 64):
        folder = make_request_dir()
        write_request(folder, "votes", arrays, cams[:n], masks[:n])
        proc = subprocess.run([sys.executable, str(ROOT / "masksplat_blender/backend/__main__.py"), "--once", str(folder),
                               "--device", "cpu"], capture_output=True, text=True, check=True)  # fmt: skip
        peak = json.loads(proc.stdout.splitlines()[-1]).get("peak_rss_mb")
        shutil.rmtree(folder)
        rows.append(f"| backend peak RSS, {n} views (MB) | {peak:.0f} | | |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--baseline-views", type=int, default=2)
    parser.add_argument("--no-backend", action="store_true")
    args = parser.parse_args()
    if not GUITAR.exists():
        raise SystemExit(f"{GUITAR} not found (../shared/data is needed for this benchmark)")
    if args.child:
        child()
        return 0

    import numba
    import torch
    from reference_compositor import tile_compositor_votes

    from masksplat_blender.backend.raster_cpu import CpuRasterizer, project

    cold_cached = cold_start(empty_cache=False)  # also fills the cache if it was empty
    cold_compile = cold_start(empty_cache=True)

    data, g, views = load_scene()
    views = views[:16]
    w = disk_weights()
    raster = CpuRasterizer()
    out = np.zeros((g.count, 2))
    raster.votes(g, views[0], w, out)  # warm-up (compile or cache load)
    warm, cpu = [], []
    for _ in range(3):
        out[:] = 0
        start, cpu0 = time.perf_counter(), time.process_time()
        for view in views:
            raster.votes(g, view, w, out)
        warm.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu0)
    best = int(np.argmin(warm))

    _, alpha = zip(*(raster.render(type(g)(g.means, g.quats, g.log_scales, g.opacity_logits, np.zeros((g.count, 1, 3), np.float32)), v)
                     for v in views), strict=True)  # fmt: skip
    coverage = float(np.mean([a.mean() for a in alpha]))
    visible = float(np.mean([len(project(g, v).ids) for v in views]))

    nb = args.baseline_views
    start = time.perf_counter()
    base = np.zeros((g.count, 2))
    for view in views[:nb]:
        base += tile_compositor_votes(g, view, w)
    baseline = (time.perf_counter() - start) * 16 / nb
    ours_nb = np.zeros((g.count, 2))
    for view in views[:nb]:
        raster.votes(g, view, w, ours_nb)
    agree = np.abs(ours_nb - base).max() / np.abs(base).max()

    print(
        f"\nguitar_inria_sh0.ply: {g.count:,} Gaussians, 16 orbit views at {SIZE}x{SIZE}, K=2 (disk mask, 1 - mask)"
    )
    print(
        f"mean pixel coverage (alpha) {coverage:.2f}; Gaussians in view {visible:,.0f} on average; "
        f"numba {numba.__version__}, {numba.get_num_threads()} threads, torch {torch.__version__}\n"
    )
    print("| what | seconds (16 views) | CPU s | vs warm |")
    print("|---|---|---|---|")
    print(f"| CpuRasterizer.votes, warm (best of 3) | {warm[best]:.3f} | {cpu[best]:.3f} | 1.0x |")
    print(
        f"| cold: new process, import + 16 views, numba cache on disk | {cold_cached['total']:.3f} | | "
        f"{cold_cached['total'] / warm[best]:.1f}x |"
    )
    print(
        f"| cold: same with an empty numba cache (compile) | {cold_compile['total']:.3f} | | "
        f"{cold_compile['total'] / warm[best]:.1f}x |"
    )
    print(
        f"| float64 per-tile PyTorch compositor ({nb} views x {16 / nb:g}, extrapolated) | {baseline:.1f} | | "
        f"{baseline / warm[best]:.0f}x |"
    )
    if not args.no_backend:
        try:
            for row in backend_rows(data, 16):
                print(row)
        except Exception as exc:  # the backend process is another module; report, don't fail the table
            print(f"| backend process rows skipped: {type(exc).__name__}: {str(exc)[:120]} | | | |")
    print(f"\nlargest |ours - baseline| over the baseline's views: {agree:.1e} of the largest vote")
    return 0


if __name__ == "__main__":
    sys.exit(main())
