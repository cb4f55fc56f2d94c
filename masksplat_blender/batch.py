"""Headless MaskSplat: the same operators as the UI, for pipelines.

    blender -b --python masksplat_blender/batch.py -- <command> ...
    python -m masksplat_blender.batch <command> ...          (with the bpy module)

Exit codes: 0 success, 1 failure, 2 bad input (one-line reason), 130 cancelled.
Outputs are written atomically and never over an input; an existing output needs
--overwrite. Nothing here imports drawing code (the gpu module is absent in -b).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


class BadInput(Exception):
    """The command line or an input file is wrong: exit 2 with a one-line reason."""


def _ensure_addon():
    """Register the add-on unless its operators are already there (an installed extension)."""
    import bpy

    if hasattr(bpy.types, "MASKSPLAT_OT_import_splats"):
        return bpy
    if __package__:
        package = importlib.import_module(__package__)
    else:  # run by file path from a checkout: import the folder as a package
        folder = Path(__file__).resolve().parent
        sys.path.insert(0, str(folder.parent))
        package = importlib.import_module(folder.name)
    package.register()
    return bpy


def _output_path(path: str, inputs: list[str], overwrite: bool) -> Path:
    out = Path(path)
    for source in inputs:
        if source and out.exists() and Path(source).exists() and os.path.samefile(source, out):
            raise BadInput(f"output {out} is also an input; choose another file")
    if out.exists() and not overwrite:
        raise BadInput(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.exists():
        raise BadInput(f"folder {out.parent} does not exist")
    return out


def _run_operator(op, **kwargs) -> None:
    """Call an operator; turn Blender's RuntimeError (the operator's report) into BadInput."""
    try:
        result = op(**kwargs)
    except RuntimeError as err:
        raise BadInput(str(err).replace("Error: ", "", 1).strip()) from None
    if "FINISHED" not in result:
        raise BadInput(f"{op.idname_py()} did not finish ({', '.join(result)})")


def cmd_convert(args) -> dict:
    """Import a splat file and write it back out: a round trip through Blender."""
    bpy = _ensure_addon()
    if not Path(args.ply).is_file():
        raise BadInput(f"{args.ply}: no such file")
    out = _output_path(args.out, [args.ply], args.overwrite)
    bpy.ops.wm.read_homefile(use_empty=True)
    start = time.perf_counter()
    _run_operator(bpy.ops.masksplat.import_splats, filepath=str(args.ply), drop_invalid=args.drop_invalid)
    obj = bpy.context.active_object
    imported = time.perf_counter()
    _run_operator(bpy.ops.masksplat.export_splats, filepath=str(out))
    done = time.perf_counter()
    return {
        "command": "convert",
        "input": str(args.ply),
        "output": str(out),
        "gaussians": len(obj.data.vertices),
        "sh_degree": obj.masksplat.sh_degree,
        "properties": len(json.loads(obj.masksplat.layout_json)["fields"]),
        "import_seconds": round(imported - start, 3),
        "export_seconds": round(done - imported, 3),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masksplat", description="MaskSplat batch commands")
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("convert", help="import a splat file into Blender and export it again")
    convert.add_argument("--ply", required=True, help="input splat file (.ply or .splat)")
    convert.add_argument("--out", required=True, help="output .ply")
    convert.add_argument("--drop-invalid", action="store_true", help="drop Gaussians with NaN/Inf values")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    convert.add_argument("--summary", help="also write the summary as JSON to this file")
    convert.set_defaults(func=cmd_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_BAD_INPUT if exit_.code else EXIT_OK
    try:
        summary = args.func(args)
    except BadInput as err:
        print(f"masksplat: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("masksplat: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as err:  # noqa: BLE001 - a batch job must end with a clear line and exit 1
        import traceback

        traceback.print_exc()
        print(f"masksplat: failed: {err}", file=sys.stderr)
        return EXIT_FAILURE
    text = json.dumps(summary, indent=2)
    print(text)
    if getattr(args, "summary", None):
        Path(args.summary).write_text(text + "\n")
    return EXIT_OK


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Under `blender -b --python`, an explicit exit carries the code out of Blender.
    sys.exit(code)
