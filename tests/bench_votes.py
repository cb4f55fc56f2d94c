"""CPU vote benchmark: the guitar (90,854 Gaussians), 16 orbit views at 256x256.

    .venv/bin/python tests/bench_votes.py

Times the warm backend (a real backend process, modules imported and loops compiled by
a first request) against a plain float64 per-tile PyTorch compositor on the same views,
reports the cold start separately, and the backend's peak memory for 16 vs 64 views.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
GUITAR = ROOT.parent / "shared" / "data" / "playcanvas_guitar" / "guitar_inria_sh0.ply"


def main() -> int:
    from reference_compositor import tile_compositor_votes

    from masksplat_blender.backend.rasterizer import Gaussians, View
    from masksplat_blender.client import BackendClient, compute_votes
    from masksplat_blender.core.cameras import orbit_cameras
    from masksplat_blender.core.request import make_request_dir, write_request
    from masksplat_blender.core.splat_io import read_splats

    if not GUITAR.exists():
        raise SystemExit(f"{GUITAR} not found (../shared/data is needed for this benchmark)")
    data = read_splats(GUITAR)
    arrays = {"means": data.means(), "quats": data.quats_wxyz(), "log_scales": data.log_scales(), "opacity_logits": data.opacity_logits()}
    lo, hi = np.percentile(data.means(), [1, 99], axis=0)
    centre, radius = (lo + hi) / 2, 0.5 * float(np.linalg.norm(hi - lo))
    # The guitar lies along -y: orbit around y at a distance where it fills most of the view.
    cams = orbit_cameras(centre, radius / np.sin(np.radians(25)) * 0.75, 64, 256, 256, fov_deg=50, up=(0, -1, 0))
    yy, xx = np.mgrid[:256, :256]
    masks = [(((xx - 128) ** 2 + (yy - 128) ** 2) < 70**2).astype(np.uint8) * 255 for _ in cams]

    # Cold: a fresh backend process, first request (imports, numba cache load or compile).
    client = BackendClient(sys.executable, device="cpu")
    start = time.perf_counter()
    compute_votes(client, arrays, cams[:16], masks[:16])
    cold = time.perf_counter() - start
    client.close()

    client = BackendClient(sys.executable, device="cpu")
    compute_votes(client, arrays, cams[:1], masks[:1])  # warm-up
    folder = make_request_dir()
    write_request(folder, "votes", arrays, cams[:16], masks[:16])
    warm = []
    for _ in range(3):
        start = time.perf_counter()
        result = client.run(folder)
        warm.append(time.perf_counter() - start)
    votes = np.load(folder / "votes.npy")
    shutil.rmtree(folder)
    client.close()

    # Baseline on two views, extrapolated to 16 (it is that slow).
    g = Gaussians(**arrays)
    start = time.perf_counter()
    base = np.zeros((g.count, 2))
    for cam, mask in zip(cams[:2], masks[:2], strict=True):
        m = mask.astype(np.float32) / 255
        view = View(cam.world_to_camera.astype(np.float32), cam.K().astype(np.float32), 256, 256)
        base += tile_compositor_votes(g, view, np.stack([m, 1 - m], -1))
    baseline = (time.perf_counter() - start) * 8

    # Memory: peak resident size of a fresh backend for 16 and for 64 views.
    peaks = {}
    for n in (16, 64):
        folder = make_request_dir()
        write_request(folder, "votes", arrays, cams[:n], masks[:n])
        proc = subprocess.run([sys.executable, str(ROOT / "masksplat_blender/backend/__main__.py"), "--once", str(folder), "--device", "cpu"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        import json

        peaks[n] = json.loads(proc.stdout.splitlines()[-1])["peak_rss_mb"]
        shutil.rmtree(folder)

    seen = votes.sum(1) > 0
    print(f"\nguitar_inria_sh0.ply: {g.count:,} Gaussians, 16 views at 256x256, K=2, this machine (2 cores)\n")
    print("| what | seconds | vs ours |")
    print("|---|---|---|")
    print(f"| MaskSplat CPU backend, warm (best of 3) | {min(warm):.3f} | 1.0x |")
    print(f"| MaskSplat CPU backend, cold start (new process, first request) | {cold:.3f} | {cold / min(warm):.1f}x |")
    print(f"| float64 per-tile PyTorch compositor (2 views x 8) | {baseline:.1f} | {baseline / min(warm):.0f}x |")
    print(f"\nGaussians seen: {seen.sum():,} of {g.count:,}; backend reports {result['seconds']:.3f} s inside the process")
    print("\n| views | backend peak RSS (MB) |\n|---|---|")
    for n, peak in peaks.items():
        print(f"| {n} | {peak:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
