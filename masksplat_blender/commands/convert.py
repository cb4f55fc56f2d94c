"""`convert`: import a splat file into Blender and export it again (a lossless round trip)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .common import ensure_addon, export, require, run_operator


def inputs(args) -> list:
    return [require(args.ply, "--ply")]


def run(args, outputs) -> dict:
    ply = Path(args.ply)
    out = outputs.file(args.out, "--out")
    bpy = ensure_addon()
    bpy.ops.wm.read_homefile(use_empty=True)
    start = time.perf_counter()
    run_operator(bpy.ops.masksplat.import_splats, filepath=str(ply), drop_invalid=args.drop_invalid)
    obj = bpy.context.active_object
    imported = time.perf_counter()
    export(bpy, out)
    done = time.perf_counter()
    return {
        "command": "convert",
        "input": str(args.ply),
        "output": str(args.out),
        "gaussians": len(obj.data.vertices),
        "sh_degree": obj.masksplat.sh_degree,
        "properties": len(json.loads(obj.masksplat.layout_json)["fields"]),
        "import_seconds": round(imported - start, 3),
        "export_seconds": round(done - imported, 3),
    }
