"""`prune`: remove the Gaussians no view needs; write PRUNED.ply and the quality report."""

from __future__ import annotations

import json

from ..core.errors import BadInput
from .common import ensure_addon, export, load_scene, option, require, run_operator, write_json

CRITERIA = {"zero": "ZERO", "threshold": "THRESHOLD", "fraction": "FRACTION"}


def inputs(args) -> list:
    return [require(args.ply, "--ply"), require(args.cameras, "--cameras", "any")]


def run(args, outputs) -> dict:
    from ..core.prune import PruneError, parse_criterion

    try:
        kind, value = parse_criterion(args.criterion)
    except PruneError as err:
        raise BadInput(str(err)) from None
    out = outputs.file(args.out, "--out")
    report_file = outputs.file(args.report, "--report") if args.report else None
    bpy = ensure_addon()
    prune = bpy.ops.masksplat.prune_splats
    min_psnr = option(prune, "min_psnr", args.min_psnr, "--min-psnr") if args.min_psnr is not None else 0.0
    orbit_views = option(prune, "orbit_views", args.orbit_views, "--orbit-views")
    orbit_size = option(prune, "orbit_size", args.orbit_size, "--orbit-size")
    obj = load_scene(bpy, args.ply, args.cameras)
    criterion = CRITERIA[kind]
    options = {"ZERO": {}, "THRESHOLD": {"threshold": value}, "FRACTION": {"fraction": value, "min_psnr": min_psnr}}[criterion]
    run_operator(prune, criterion=criterion, orbit_views=orbit_views, orbit_size=orbit_size,
                 device=args.device, **options)  # fmt: skip
    report = json.loads(obj.masksplat.prune_report)
    export(bpy, out, apply_transform=False)
    if report_file is not None:
        write_json(report_file, report)
    return {"command": "prune", "output": str(args.out), **{k: v for k, v in report.items() if k != "views"}}
