"""Benchmark: splat import/export in Blender vs Blender's native PLY importer/exporter.

    .venv/bin/python benchmarks/bench_io.py [--n 1000000] [--repeat 3]

Writes a synthetic SH-degree-3 INRIA PLY (62 float properties a Gaussian), then times,
each in a fresh process (so caches and peak memory don't leak between cases):
`bpy.ops.wm.ply_import` / `wm.ply_export` and `masksplat.import_splats` /
`masksplat.export_splats`. Peak memory is the process's high-water mark during the
operator minus its resident size just before it. Prints a table; best of --repeat runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("native_import", "masksplat_import", "native_export", "masksplat_export")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _measure(fn) -> tuple[float, float]:
    before = _status_kb("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    peak = max(_status_kb("VmHWM") - before, 0)
    return seconds, peak / 1024.0


def child(case: str, path: str, out_dir: str) -> dict:
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="msbench-"))
    import bpy

    sys.path.insert(0, str(ROOT))
    import masksplat_blender

    masksplat_blender.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    out = str(Path(out_dir) / f"{case}.ply")
    if case == "native_import":
        seconds, peak = _measure(lambda: bpy.ops.wm.ply_import(filepath=path))
    elif case == "masksplat_import":
        seconds, peak = _measure(lambda: bpy.ops.masksplat.import_splats(filepath=path))
    elif case == "native_export":
        bpy.ops.wm.ply_import(filepath=path)
        seconds, peak = _measure(
            lambda: bpy.ops.wm.ply_export(filepath=out, export_attributes=True, ascii_format=False)
        )
    elif case == "masksplat_export":
        bpy.ops.masksplat.import_splats(filepath=path)
        seconds, peak = _measure(lambda: bpy.ops.masksplat.export_splats(filepath=out))
    else:
        raise SystemExit(f"unknown case {case}")
    obj = bpy.context.active_object
    return {"case": case, "seconds": seconds, "peak_mb": peak, "vertices": len(obj.data.vertices)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=CASES)
    parser.add_argument("--file")
    parser.add_argument("--out-dir")
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.file, args.out_dir)), flush=True)
        return 0

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from synthetic import make_splat_data

    from masksplat_blender.core.splat_io import write_ply

    work = Path(tempfile.mkdtemp(prefix="msbench-io-"))
    path = work / "bench_sh3.ply"
    write_ply(str(path), make_splat_data(args.n, sh_degree=3, seed=0))
    size_mb = path.stat().st_size / 2**20
    path.read_bytes()  # page cache warm for every case alike
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for case in CASES:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", case, "--file", str(path), "--out-dir", str(work)],
                capture_output=True,
                text=True,
            )
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{case} failed")
            result = json.loads(lines[-1][7:])
            if case not in best or result["seconds"] < best[case]["seconds"]:
                best[case] = result
    print(
        f"\n{args.n:,} Gaussians, SH degree 3, {size_mb:.0f} MB; best of {args.repeat} runs, fresh process each\n"
    )
    print(
        f"| {'operation':<18} | {'native (s)':>10} | {'MaskSplat (s)':>13} | {'ratio':>6} | {'native peak MB':>14} | {'MaskSplat peak MB':>17} |"
    )
    print(f"|{'-' * 20}|{'-' * 12}|{'-' * 15}|{'-' * 8}|{'-' * 16}|{'-' * 19}|")
    for op in ("import", "export"):
        native, ours = best[f"native_{op}"], best[f"masksplat_{op}"]
        print(
            f"| {op:<18} | {native['seconds']:>10.3f} | {ours['seconds']:>13.3f} | {ours['seconds'] / native['seconds']:>5.2f}x"
            f" | {native['peak_mb']:>14.0f} | {ours['peak_mb']:>17.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
