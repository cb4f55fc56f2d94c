"""Interactive update: one more painted view on a 200,000-Gaussian object with 8 views done.

    .venv/bin/python benchmarks/bench_interactive.py [--size 512]

Runs the real operators in Blender (bpy module) with the CPU backend: Compute Selection
over 8 masked views, then one more mask, then Compute Selection again (only the new view
is computed; the others come from the per-camera cache). Prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--size", type=int, nargs="+", default=[512, 1024])
    args = parser.parse_args()
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="msbench-"))
    import bpy
    from camera_writers import save_cameras_json
    from synthetic import make_splat_data

    import masksplat_blender
    from masksplat_blender.core.orbit import orbit_cameras
    from masksplat_blender.core.splat_io import write_ply
    from masksplat_blender.scene import masks as scene_masks

    masksplat_blender.register()
    work = Path(tempfile.mkdtemp(prefix="msbench-int-"))
    data = make_splat_data(args.n, 0, seed=3)
    write_ply(work / "scene.ply", data)
    rows = []
    for size in args.size:
        cams = orbit_cameras([0, 0, 0], 1.8, 9, size, size, fov_deg=50)
        save_cameras_json(work / "cameras.json", cams)
        bpy.ops.wm.read_homefile(use_empty=True)
        bpy.ops.masksplat.import_splats(filepath=str(work / "scene.ply"))
        obj = bpy.context.active_object
        bpy.ops.masksplat.import_cameras(filepath=str(work / "cameras.json"))
        bpy.context.view_layer.objects.active = obj
        yy, xx = np.mgrid[:size, :size]
        disc = (((xx - size / 2) ** 2 + (yy - size / 2) ** 2) < (size / 4) ** 2).astype(np.float32)
        cam_objs = sorted(obj.masksplat.camera_collection.objects, key=lambda o: o.name)
        for cam in cam_objs[:8]:
            scene_masks.set_camera_mask(cam, disc)
        bpy.ops.masksplat.compute_selection(device="cpu")  # warm backend + numba
        start = time.perf_counter()
        for cam in cam_objs[:8]:
            scene_masks.set_camera_mask(cam, 1 - disc)
        first = time.perf_counter()
        bpy.ops.masksplat.compute_selection(device="cpu")
        eight = time.perf_counter() - first
        scene_masks.set_camera_mask(cam_objs[8], disc)
        start = time.perf_counter()
        bpy.ops.masksplat.compute_selection(device="cpu")
        one_more = time.perf_counter() - start
        start = time.perf_counter()
        obj.masksplat.beta = 0.7
        beta = time.perf_counter() - start
        rows.append((size, eight, one_more, beta))
    print(f"\n{args.n:,} Gaussians, CPU backend (warm), this machine (2 cores); real operators in bpy\n")
    print("| view size | Compute Selection, 8 new views (s) | one more painted view (s) | beta change (s) |")
    print("|---|---|---|---|")
    for size, eight, one_more, beta in rows:
        print(f"| {size}x{size} | {eight:.3f} | {one_more:.3f} | {beta:.4f} |")
    from masksplat_blender.client import shutdown_client

    shutdown_client()
    return 0


if __name__ == "__main__":
    sys.exit(main())
