"""Benchmark: import and export of a 1M-Gaussian SH3 scene in every splat format, beside our
PLY import of the same Gaussians and PlayCanvas splat-transform converting the same files.

    .venv/bin/python benchmarks/bench_formats.py [--n 1000000] [--repeat 3]

The scene is the real SH3 sample (fruit_drops, 4,721 Gaussians) tiled on a grid to --n
Gaussians. splat-transform writes .spz (version 4) and .compressed.ply from its PLY; MaskSplat
writes .spz (version 3) and .compressed.ply. A 1M SH3 SOG needs splat-transform's k-means on
a GPU (none here), so the SOG is the sample's own SOG (splat-transform, CPU k-means) with its
texels tiled to --n (codes jittered by a step or two) through Blender's lossless WebP encoder, and its import is compared with
the PLY import of exactly its Gaussians. Every MaskSplat case runs in a fresh process (best of
--repeat, page cache warm); splat-transform converts each file to/from PLY once (node start
included). Prints a table.
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
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "fruit_drops" / "fruit_drops_minimal.ply"
TOOL = os.environ.get("MASKSPLAT_SPLAT_TRANSFORM") or str(
    ROOT / ".ci" / "node_modules" / ".bin" / "splat-transform"
)


def child(operation: str, path: str, out: str) -> dict:
    """One import or export in this fresh process: seconds of the operator alone."""
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="msbench-"))
    import bpy

    sys.path.insert(0, str(ROOT))
    import masksplat_blender

    masksplat_blender.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    if operation == "export":
        bpy.ops.masksplat.import_splats(filepath=path)
    start = time.perf_counter()
    if operation == "import":
        result = bpy.ops.masksplat.import_splats(filepath=path)
    else:
        result = bpy.ops.masksplat.export_splats(filepath=out)
    seconds = time.perf_counter() - start
    assert result == {"FINISHED"}, result
    return {"seconds": seconds, "gaussians": len(bpy.context.active_object.data.vertices)}


def _best(operation: str, path: Path, out: Path, repeat: int) -> float:
    best = None
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", operation, str(path), str(out)],
            capture_output=True,
            text=True,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise SystemExit(f"{operation} {path.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        seconds = json.loads(lines[-1][7:])["seconds"]
        best = seconds if best is None else min(best, seconds)
    return best


def _tool(*args) -> float | None:
    """Seconds splat-transform takes for one conversion (None where it fails)."""
    start = time.perf_counter()
    proc = subprocess.run([TOOL, "-w", "-q", *map(str, args)], capture_output=True, text=True)
    return time.perf_counter() - start if proc.returncode == 0 else None


def tiled_sample(n: int):
    """The SH3 sample repeated on a grid of tiles (each shifted by its own extent) to n Gaussians;
    every other property gets noise of a tenth of its spread, so compressors meet no exact repeats."""
    from masksplat_blender.core.splat_io import SplatData, read_splats

    sample = read_splats(SAMPLE)
    tiles = -(-n // sample.count)
    side = int(np.ceil(tiles ** (1 / 3)))
    extent = np.ptp(sample.means(), axis=0) * 1.1
    vertices = np.concatenate([sample.vertices] * tiles)[:n]
    index = np.arange(n) // sample.count
    for axis, name in enumerate("xyz"):
        cell = (index // side**axis) % side
        vertices[name] = vertices[name] + (cell * extent[axis]).astype(np.float32)
    rng = np.random.default_rng(0)
    for name in vertices.dtype.names:
        if name not in ("x", "y", "z") and vertices.dtype.fields[name][0].kind == "f":
            vertices[name] += rng.normal(0, 0.1 * float(np.std(sample.vertices[name])) + 1e-6, n).astype(
                np.float32
            )
    return SplatData(vertices, 3, "", "<", ["fruit_drops sample tiled by benchmarks/bench_formats.py"])


def tiled_sog(small_sog: Path, n: int, out: Path) -> None:
    """Repeat every per-Gaussian texel of a SOG to n Gaussians (palette and codebooks unchanged)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import bpy  # noqa: F401 - Blender's WebP codec
    from synthetic import encode_webp

    from masksplat_blender.scene.images import decode_webp

    rng = np.random.default_rng(0)
    folder = out.with_suffix(".parts")
    folder.mkdir(exist_ok=True)
    with zipfile.ZipFile(small_sog) as bundle:
        meta = json.loads(bundle.read("meta.json"))
        count = meta["count"]
        width = int(np.ceil(np.sqrt(n) / 4) * 4)
        height = int(np.ceil(n / width / 4) * 4)
        per_gaussian = [
            *meta["means"]["files"],
            *meta["quats"]["files"],
            *meta["scales"]["files"],
            *meta["sh0"]["files"],
        ]
        per_gaussian.append(meta["shN"]["files"][1])
        for name in bundle.namelist():
            if name == "meta.json":
                continue
            pixels = decode_webp(bundle.read(name), name)
            if name in per_gaussian:
                texels = np.resize(pixels.reshape(-1, 4)[:count], (n, 4))
                # Jitter the codes by a step or two (labels: any palette entry) so that WebP meets
                # no exact repeats, as in a real capture; the tag byte of quats stays valid.
                jitter = rng.integers(-2, 3, (n, 3))
                if name == meta["shN"]["files"][1]:
                    label = rng.integers(0, meta["shN"]["count"], n)
                    texels[:, 0], texels[:, 1] = label & 255, label >> 8
                else:
                    texels[:, :3] = np.clip(texels[:, :3].astype(np.int64) + jitter, 0, 255)
                texels[:, 3] = np.maximum(texels[:, 3], 1)  # libwebp drops the colour of alpha-0 texels
                pixels = np.zeros((height * width, 4), np.uint8)
                pixels[:n] = texels
                pixels = pixels.reshape(height, width, 4)
            encode_webp(pixels, folder / name)
    meta["count"] = n
    (folder / "meta.json").write_text(json.dumps(meta))
    with zipfile.ZipFile(out, "w") as bundle:
        for file in sorted(folder.iterdir()):
            bundle.write(file, file.name)
    shutil.rmtree(folder)


def make_files(work: Path, n: int) -> dict:
    """{label: (file, baseline PLY of its Gaussians, seconds splat-transform took to write it)}."""
    from masksplat_blender.core.splat_io import read_splats, write_ply, write_splats

    source = work / "scene.ply"
    write_ply(source, tiled_sample(n))
    files = {"PLY (INRIA)": (source, source, None)}
    if Path(TOOL).exists():
        for label, name in (("SPZ v4", "st.spz"), ("compressed PLY", "st.compressed.ply")):
            files[f"{label} (splat-transform)"] = (work / name, source, _tool(source, work / name))
        _tool("-g", "cpu", "-i", "1", SAMPLE, work / "sample.sog")
        tiled_sog(work / "sample.sog", n, work / "scene.sog")
        from masksplat_blender.scene.images import decode_webp

        write_ply(work / "sog_gaussians.ply", read_splats(work / "scene.sog", decode_webp=decode_webp))
        files["SOG (tiled, see above)"] = (work / "scene.sog", work / "sog_gaussians.ply", None)
    data = read_splats(source)
    for label, name in (("SPZ v3", "ours.spz"), ("compressed PLY", "ours.compressed.ply")):
        write_splats(work / name, data)
        files[f"{label} (MaskSplat)"] = (work / name, source, None)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("OPERATION", "PATH", "OUT"))
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(*args.child)), flush=True)
        return 0
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="msbench-formats-"))
    files = make_files(work, args.n)
    ply_import = {}
    rows = []
    for label, (path, baseline, tool_write) in files.items():
        path.read_bytes()  # page cache warm for every case alike
        if baseline not in ply_import:
            ply_import[baseline] = _best("import", baseline, work / "unused.ply", args.repeat)
        ours = (
            ply_import[baseline]
            if path == baseline
            else _best("import", path, work / "unused.ply", args.repeat)
        )
        tool_read = _tool(path, work / "tool_out.ply") if Path(TOOL).exists() else None
        rows.append(
            (label, path.stat().st_size / 2**20, ours, ours / ply_import[baseline], tool_read, tool_write)
        )
    exports = {}
    source = files["PLY (INRIA)"][0]
    for suffix in (".ply", ".spz", ".compressed.ply"):
        exports[suffix] = _best("export", source, work / f"export{suffix}", args.repeat)
    tool_sog_write = "GPU only here" if Path(TOOL).exists() else "n/a"

    def show(value, width=9):
        return f"{value:>{width}.2f}" if isinstance(value, float) else f"{(value or '-'):>{width}}"

    print(
        f"\n{args.n:,} Gaussians, SH degree 3 (fruit_drops tiled); best of {args.repeat} runs, fresh process each\n"
    )
    print(
        "| file | MB | MaskSplat import (s) | vs PLY import of the same Gaussians | splat-transform file -> .ply (s) | splat-transform .ply -> file (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, size, ours, ratio, tool_read, tool_write in rows:
        write = tool_sog_write if label.startswith("SOG") else tool_write
        print(f"| {label} | {size:.1f} | {ours:.2f} | {ratio:.2f}x | {show(tool_read)} | {show(write)} |")
    print("\n| MaskSplat export of the PLY scene to | seconds | MB |")
    print("|---|---:|---:|")
    for suffix, seconds in exports.items():
        print(f"| {suffix} | {seconds:.2f} | {(work / f'export{suffix}').stat().st_size / 2**20:.1f} |")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
