"""`evaluate`: mIoU and mAcc of a selection (OBJECT.ply within SCENE.ply) against ground-truth masks."""

from __future__ import annotations

import sys

import numpy as np

from ..core.errors import BadInput
from .common import backend_for, ensure_addon, require, write_json


def inputs(args) -> list:
    return [require(args.ply, "--ply"), require(args.scene, "--scene"), require(args.cameras, "--cameras", "any"),
            require(args.masks, "--masks", "folder")]  # fmt: skip


def run(args, outputs) -> dict:
    report_file = outputs.file(args.report, "--report") if args.report else None
    ensure_addon()  # ground-truth images are read with Blender (PNG, JPG, EXR)
    from ..core.camera_files import load_cameras
    from ..core.masks import match_mask_files
    from ..core.metrics import selected_in_scene, view_scores, view_table
    from ..core.splat_io import read_splats
    from ..scene.masks import load_mask_file

    scene, part = read_splats(args.scene), read_splats(args.ply)
    if scene.vertices.dtype != part.vertices.dtype:
        raise BadInput(f"{args.ply} and {args.scene} have different properties: is it a selection of that scene?")
    selected = selected_in_scene(scene.vertices, part.vertices)
    cameras = {c.name: c for c in load_cameras(args.cameras)}
    files = match_mask_files(args.masks, cameras)
    views = [cameras[name] for name in sorted(files)]
    truths = [load_mask_file(files[cam.name]) for cam in views]
    for cam, truth in zip(views, truths, strict=True):
        if truth.shape != (cam.height, cam.width):
            raise BadInput(f"ground truth for '{cam.name}' is {truth.shape[1]}x{truth.shape[0]}, the camera is {cam.width}x{cam.height}")
    predicted = render_labels(backend_for(args.device), scene, views, selected.astype(np.float32))
    scores = view_scores([cam.name for cam in views], predicted, truths)
    report = {"command": "evaluate", "selected": int(selected.sum()), "gaussians": int(selected.size), **scores}
    print(view_table(scores), file=sys.stderr)
    if report_file is not None:
        write_json(report_file, report)
    return report


def render_labels(backend, data, cameras, values) -> list[np.ndarray]:
    """Label maps (float [H, W] in [0, 1]) of per-Gaussian `values` of splat data, occlusion-aware."""
    from ..client import render_views
    from ..core.masks import label_sh

    return [rgb[:, :, 0].astype(np.float32) / 255.0 for rgb, _ in render_views(backend, data.gaussian_arrays(), label_sh(values), cameras)]
