"""A 3,000,000-Gaussian SH-degree-3 object on this machine: import, compute, delete, undo (memory).

    .venv/bin/python benchmarks/bench_large.py [--n 3000000] [--size 512]

Real operators in bpy with the CPU backend; peak resident memory of Blender's process and
of the backend process are reported. (Undo needs a window, which bpy in the background has
not: it is not measured here.)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3_000_000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--views", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="msbench-"))
    import bpy
    from camera_writers import save_cameras_json
    from synthetic import make_splat_data

    import masksplat_blender
    from masksplat_blender import client
    from masksplat_blender.core.orbit import orbit_cameras
    from masksplat_blender.core.splat_io import write_ply
    from masksplat_blender.scene import masks as scene_masks

    masksplat_blender.register()
    work = Path(tempfile.mkdtemp(prefix="msbench-large-"))
    path = work / "large.ply"
    write_ply(path, make_splat_data(args.n, 3, seed=5))
    cams = orbit_cameras([0, 0, 0], 1.8, args.views, args.size, args.size, fov_deg=50)
    save_cameras_json(work / "cameras.json", cams)
    rows = []

    def step(name, fn):
        start = time.perf_counter()
        fn()
        rows.append(
            (
                name,
                time.perf_counter() - start,
                rss_mb(),
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            )
        )

    base = rss_mb()
    step("import", lambda: bpy.ops.masksplat.import_splats(filepath=str(path)))
    obj = bpy.context.active_object
    step("import cameras", lambda: bpy.ops.masksplat.import_cameras(filepath=str(work / "cameras.json")))
    bpy.context.view_layer.objects.active = obj
    yy, xx = np.mgrid[: args.size, : args.size]
    disc = (((xx - args.size / 2) ** 2 + (yy - args.size / 2) ** 2) < (args.size / 4) ** 2).astype(np.float32)
    for cam in obj.masksplat.camera_collection.objects:
        scene_masks.set_camera_mask(cam, disc)
    bpy.ops.ed.undo_push(message="masks painted")
    # "EXEC_DEFAULT", True: push each operator's Undo step as the UI does
    step(f"compute selection ({args.views} views, {args.size}px, CPU)",
         lambda: bpy.ops.masksplat.compute_selection("EXEC_DEFAULT", True, device="cpu"))  # fmt: skip
    backend = client._SHARED["client"]
    selected = int(np.count_nonzero(masksplat_blender.scene.selection.vertex_selection(obj)))
    name, total = obj.name, len(obj.data.vertices)
    step(f"delete selected ({selected:,})", lambda: bpy.ops.masksplat.delete_selected("EXEC_DEFAULT", True))
    step("undo the delete", lambda: bpy.ops.ed.undo())
    obj = bpy.data.objects[name]
    if len(obj.data.vertices) != total:
        raise SystemExit(f"undo left {len(obj.data.vertices):,} Gaussians, expected {total:,}")
    step("redo the delete", lambda: bpy.ops.ed.redo())
    obj = bpy.data.objects[name]
    bpy.context.view_layer.objects.active = obj
    step("export", lambda: bpy.ops.masksplat.export_splats(filepath=str(work / "out.ply")))
    print(
        f"\n{args.n:,} Gaussians, SH degree 3 ({path.stat().st_size / 2**20:.0f} MB file); Blender RSS before import {base:.0f} MB\n"
    )
    print("| step | seconds | Blender RSS after (MB) | Blender peak RSS (MB) |")
    print("|---|---|---|---|")
    for name, seconds, rss, peak in rows:
        print(f"| {name} | {seconds:.2f} | {rss:.0f} | {peak:.0f} |")
    # VmHWM belongs to the backend's own address space (ru_maxrss would carry Blender's over fork)
    status = Path(f"/proc/{backend.pid}/status").read_text() if backend.pid else ""
    hwm = next(
        (int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0
    )
    print(f"\nbackend process peak RSS (VmHWM): {hwm:.0f} MB")
    client.shutdown_client()
    return 0


if __name__ == "__main__":
    sys.exit(main())
