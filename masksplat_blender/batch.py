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

import numpy as np

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


class BadInput(Exception):
    """The command line or an input file is wrong: exit 2 with a one-line reason."""


def _ensure_addon():
    """Register the add-on unless its operators are already there (an installed extension)."""
    import bpy

    if hasattr(bpy.types, "MASKSPLAT_OT_import_splats"):
        return bpy
    importlib.import_module(__package__).register()
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


def _atomic_write(path: Path, write) -> None:
    """Write through `write(temp_path)` beside `path`, then rename: never a half-written output."""
    # A name that does not exist yet: Blender would keep a .blend1 backup of an existing file.
    tmp = str(path.parent / f".{path.stem}.{os.getpid()}.{time.monotonic_ns()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _mask_files(folder) -> list[str]:
    from .core.masks import IMAGE_EXTENSIONS

    folder = Path(folder)
    return [str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS] if folder.is_dir() else []


def _load_scene(bpy, ply, cameras):
    for path, what in ((ply, "splat file"), (cameras, "camera file or folder")):
        if not Path(path).exists():
            raise BadInput(f"{path}: no such {what}")
    bpy.ops.wm.read_homefile(use_empty=True)
    _run_operator(bpy.ops.masksplat.import_splats, filepath=str(ply))
    obj = bpy.context.active_object
    _run_operator(bpy.ops.masksplat.import_cameras, filepath=str(cameras), assign_to_active=True)
    bpy.context.view_layer.objects.active = obj
    return obj


def segment_one(job: dict) -> dict:
    """One scene: import, load masks, compute the selection, write the outputs."""
    bpy = _ensure_addon()
    inputs = [job["ply"], job["cameras"], *_mask_files(job["masks"])]
    outputs = {key: _output_path(job[key], inputs, job.get("overwrite", False))
               for key in ("out", "rest", "votes", "save_blend") if job.get(key)}  # fmt: skip
    if len({str(p) for p in outputs.values()}) != len(outputs):
        raise BadInput("two outputs name the same file")
    obj = _load_scene(bpy, job["ply"], job["cameras"])
    if not Path(job["masks"]).is_dir():
        raise BadInput(f"{job['masks']}: no such mask folder")
    _run_operator(bpy.ops.masksplat.load_masks, directory=str(job["masks"]))
    obj.masksplat.beta = float(job.get("beta", 1.0))
    obj.masksplat.fill_unseen = not job.get("no_fill", False)
    obj.masksplat.edge_band = int(job.get("edge_band", 0))
    start = time.perf_counter()
    _run_long_operator(bpy.ops.masksplat.compute_selection, "Compute Selection", device=job.get("device", "auto"))
    seconds = time.perf_counter() - start
    selected = np.zeros(len(obj.data.vertices), dtype=bool)
    obj.data.vertices.foreach_get("select", selected)
    if not selected.any():
        raise RuntimeError("no Gaussian was selected: check that the masks show the object (white = object)")
    _run_operator(bpy.ops.masksplat.export_splats, filepath=str(outputs["out"]), gaussians="SELECTED", apply_transform=False)
    if "rest" in outputs:
        if selected.all():
            raise RuntimeError("every Gaussian was selected, so REST.ply would be empty")
        _run_operator(bpy.ops.masksplat.export_splats, filepath=str(outputs["rest"]), gaussians="UNSELECTED", apply_transform=False)
    if "votes" in outputs:
        fg = np.empty(len(selected), np.float32)
        bg = np.empty(len(selected), np.float32)
        obj.data.attributes["ms_fg"].data.foreach_get("value", fg)
        obj.data.attributes["ms_bg"].data.foreach_get("value", bg)
        _atomic_write(outputs["votes"], lambda tmp: np.savez(tmp, fg=fg, bg=bg))
    if "save_blend" in outputs:
        _atomic_write(outputs["save_blend"], lambda tmp: bpy.ops.wm.save_as_mainfile(filepath=tmp, copy=True))
    masked = sum(1 for cam in obj.masksplat.camera_collection.all_objects if cam.type == "CAMERA" and cam.masksplat.mask)
    return {
        "gaussians": int(selected.size),
        "selected": int(selected.sum()),
        "views": masked,
        "seconds": round(seconds, 3),
        **{key: str(path) for key, path in outputs.items()},
    }


def cmd_segment(args) -> dict:
    if args.jobs:
        try:
            jobs = json.loads(Path(args.jobs).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise BadInput(f"{args.jobs}: cannot read the jobs file ({err})") from None
        if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
            raise BadInput(f"{args.jobs}: expected a list of objects with ply, cameras, masks, out")
        results = []
        for index, job in enumerate(jobs):
            missing = [k for k in ("ply", "cameras", "masks", "out") if k not in job]
            if missing:
                raise BadInput(f"job {index}: missing {', '.join(missing)}")
            job.setdefault("overwrite", args.overwrite)
            job.setdefault("device", args.device)
            results.append(segment_one(job))
        return {"command": "segment", "jobs": results}
    missing = [f"--{k}" for k in ("ply", "cameras", "masks", "out") if not getattr(args, k)]
    if missing:
        raise BadInput(f"segment needs {', '.join(missing)} (or --jobs)")
    job = {"ply": args.ply, "cameras": args.cameras, "masks": args.masks, "out": args.out, "rest": args.rest,
           "votes": args.votes, "save_blend": args.save_blend, "beta": args.beta, "device": args.device, "no_fill": args.no_fill, "edge_band": args.edge_band,
           "overwrite": args.overwrite}  # fmt: skip
    return {"command": "segment", **segment_one(job)}


def cmd_prune(args) -> dict:
    """Remove the Gaussians no view needs; write PRUNED.ply and the quality report."""
    bpy = _ensure_addon()
    from .core.prune import PruneError, parse_criterion

    try:
        kind, value = parse_criterion(args.criterion)
    except PruneError as err:
        raise BadInput(str(err)) from None
    outputs = [_output_path(args.out, [args.ply, args.cameras], args.overwrite)]
    report_path = _output_path(args.report, [args.ply, args.cameras], args.overwrite) if args.report else None
    obj = _load_scene(bpy, args.ply, args.cameras)
    options = {"ZERO": {}, "THRESHOLD": {"threshold": value}, "FRACTION": {"fraction": value, "min_psnr": args.min_psnr or 0.0}}
    criterion = {"zero": "ZERO", "threshold": "THRESHOLD", "fraction": "FRACTION"}[kind]
    _run_long_operator(bpy.ops.masksplat.prune_splats, "Prune Splats", criterion=criterion, orbit_views=args.orbit_views,
                       orbit_size=args.orbit_size, device=args.device, **options[criterion])  # fmt: skip
    report = json.loads(obj.masksplat.prune_report)
    _run_operator(bpy.ops.masksplat.export_splats, filepath=str(outputs[0]), apply_transform=False)
    if report_path:
        _atomic_write(report_path, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2) + "\n"))
    return {"command": "prune", "output": str(outputs[0]), **{k: v for k, v in report.items() if k != "views"}}


def _render_labels(backend, ply_path, cameras, values):
    """Label maps (float [H, W] in [0, 1]) of per-Gaussian `values`, occlusion-aware."""
    from .client import render_views
    from .core.masks import label_sh
    from .core.splat_io import read_splats

    data = read_splats(ply_path)
    arrays = {"means": data.means(), "quats": data.quats_wxyz(), "log_scales": data.log_scales(), "opacity_logits": data.opacity_logits()}
    return [rgb[:, :, 0].astype(np.float32) / 255.0 for rgb, _ in render_views(backend, arrays, label_sh(values), cameras)]


def _batch_backend(device: str):
    from .client import find_backend_python, get_client

    python, _ = find_backend_python(None, None)
    return get_client(python, device)


def cmd_render(args) -> dict:
    """A PNG per camera of the splat (SH included), through the backend."""
    bpy = _ensure_addon()
    from .client import render_views
    from .core.images import write_png
    from .scene.cameras import camera_from_object
    from .scene.selection import scene_cameras, world_gaussians, world_sh

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} exists and is not a folder")
    obj = _load_scene(bpy, args.ply, args.cameras)
    cameras = [camera_from_object(cam, bpy.context.scene) for cam in scene_cameras(obj, bpy.context.scene)]
    out.mkdir(parents=True, exist_ok=True)
    existing = [c.name for c in cameras if (out / f"{c.name}.png").exists()]
    if existing and not args.overwrite:
        raise BadInput(f"{out / existing[0]}.png exists; pass --overwrite to replace renders")
    images = render_views(_batch_backend(args.device), world_gaussians(obj), world_sh(obj), cameras,
                          background=args.background)  # fmt: skip
    for cam, (rgb, _) in zip(cameras, images, strict=True):
        _atomic_write(out / f"{cam.name}.png", lambda tmp, rgb=rgb: write_png(tmp, rgb))
    return {"command": "render", "renders": len(images), "out": str(out)}


def _row_keys(vertices) -> np.ndarray:
    """A 64-bit key per Gaussian from its bytes, to find a subset's rows in the full scene."""
    import numpy as np

    raw = np.ascontiguousarray(vertices).view(np.uint8).reshape(len(vertices), -1)
    pad = (-raw.shape[1]) % 8
    words = np.pad(raw, ((0, 0), (0, pad))).view(np.uint64)
    weights = np.random.default_rng(12345).integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        return (words * weights).sum(axis=1, dtype=np.uint64)


def cmd_evaluate(args) -> dict:
    """mIoU and mAcc of a selection (OBJECT.ply within SCENE.ply) against ground-truth masks."""
    _ensure_addon()  # ground-truth images are read with Blender (PNG, JPG, EXR)

    from .core.cameras import load_cameras
    from .core.masks import MaskError, iou_and_accuracy, match_mask_files
    from .core.splat_io import read_splats
    from .scene.masks import load_mask_file

    for path in (args.ply, args.scene, args.cameras, args.masks):
        if not Path(path).exists():
            raise BadInput(f"{path}: not found")
    report_path = _output_path(args.report, [args.ply, args.scene], args.overwrite) if args.report else None
    scene, selected_part = read_splats(args.scene), read_splats(args.ply)
    if scene.vertices.dtype != selected_part.vertices.dtype:
        raise BadInput(f"{args.ply} and {args.scene} have different properties: is it a selection of that scene?")
    selected = np.isin(_row_keys(scene.vertices), _row_keys(selected_part.vertices))
    cameras = {c.name: c for c in load_cameras(args.cameras)}
    try:
        files = match_mask_files(args.masks, cameras)
    except MaskError as err:
        raise BadInput(str(err)) from None
    views = [cameras[name] for name in sorted(files)]
    predicted = _render_labels(_batch_backend(args.device), args.scene, views, selected.astype(np.float32))
    rows = []
    for cam, pred in zip(views, predicted, strict=True):
        truth = load_mask_file(files[cam.name])
        if truth.shape != pred.shape:
            raise BadInput(f"ground truth for '{cam.name}' is {truth.shape[1]}x{truth.shape[0]}, the camera is {cam.width}x{cam.height}")
        iou, acc = iou_and_accuracy(pred > 0.5, truth > 0.5)
        rows.append({"view": cam.name, "iou": round(iou, 5), "accuracy": round(acc, 5)})
    report = {
        "command": "evaluate", "selected": int(selected.sum()), "gaussians": int(selected.size),
        "mIoU": round(float(np.mean([r["iou"] for r in rows])), 5), "mAcc": round(float(np.mean([r["accuracy"] for r in rows])), 5),
        "views": rows,
    }  # fmt: skip
    print("| view | IoU | accuracy |\n|---|---|---|", file=sys.stderr)
    for r in rows:
        print(f"| {r['view']} | {r['iou']:.4f} | {r['accuracy']:.4f} |", file=sys.stderr)
    print(f"| **mean** | **{report['mIoU']:.4f}** | **{report['mAcc']:.4f}** |", file=sys.stderr)
    if report_path:
        _atomic_write(report_path, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2) + "\n"))
    return report


def _run_long_operator(op, what: str, **kwargs) -> None:
    """Run a backend operator; its report becomes the batch exit: cancelled -> 130, an
    unusable feature model (an input) -> 2, anything else -> 1."""
    try:
        result = op(**kwargs)
    except RuntimeError as err:
        message = str(err).replace("Error: ", "", 1).strip()
        if "cancelled" in message:
            raise KeyboardInterrupt from None
        if "feature model" in message:
            raise BadInput(message) from None
        raise RuntimeError(message) from None
    if "FINISHED" not in result:
        raise RuntimeError(f"{what} did not finish")


def cmd_affordance(args) -> dict:
    """Transfer part labels from one annotated image to every camera (DINOv2 features) and
    lift them to the Gaussians; write the labels (npz, PLY) and the transferred 2D maps."""
    bpy = _ensure_addon()
    from .core.images import write_png
    from .core.labels import confusion, iou_and_recall, label_table, render_label_maps
    from .scene import labels as scene_labels
    from .scene.cameras import camera_from_object
    from .scene.selection import scene_cameras, world_gaussians

    images, label_files, source_cams = args.source_image, args.source_labels, args.source_camera or []
    if len(images) != len(label_files):
        raise BadInput(f"{len(images)} --source-image but {len(label_files)} --source-labels: give one label file per image")
    if source_cams and len(source_cams) != len(images):
        raise BadInput(f"{len(source_cams)} --source-camera for {len(images)} source images: give one per image, or none")
    inputs = [args.ply, args.cameras, *images, *label_files]
    for path in inputs:
        if not Path(path).exists():
            raise BadInput(f"{path}: no such file")
    if not (args.labels_npz or args.out or args.masks_out):
        raise BadInput("nothing to write: give --labels-npz, --out or --masks-out")
    if args.label_property and not args.out:
        raise BadInput("--label-property needs --out")
    outputs = {key: _output_path(getattr(args, key), inputs, args.overwrite)
               for key in ("labels_npz", "out", "report") if getattr(args, key)}  # fmt: skip
    if len({str(p) for p in outputs.values()}) != len(outputs):
        raise BadInput("two outputs name the same file")
    masks_out = Path(args.masks_out) if args.masks_out else None
    if masks_out is not None and masks_out.exists() and not masks_out.is_dir():
        raise BadInput(f"{masks_out} exists and is not a folder")
    obj = _load_scene(bpy, args.ply, args.cameras)
    scene = bpy.context.scene
    cams = {cam.name: cam for cam in scene_cameras(obj, scene)}
    for name in source_cams:
        if name not in cams:
            raise BadInput(f"--source-camera {name}: no such camera in {args.cameras} ({', '.join(sorted(cams)[:5])}, ...)")
    sources = [{"image": str(image), "labels": str(labels), "camera": source_cams[i] if source_cams else ""}
               for i, (image, labels) in enumerate(zip(images, label_files, strict=True))]  # fmt: skip
    for source in sources:
        try:
            scene_labels.load_source(source["image"], source["labels"], cams.get(source["camera"]), scene)
        except ValueError as err:
            raise BadInput(f"{Path(source['labels']).name}: {err}") from None
    if masks_out is not None:
        existing = [n for n in cams if (masks_out / f"{n}.png").exists()]
        if existing and not args.overwrite:
            raise BadInput(f"{masks_out / existing[0]}.png exists; pass --overwrite to replace label maps")
    start = time.perf_counter()
    _run_long_operator(bpy.ops.masksplat.transfer_labels, "Transfer Labels", sources_json=json.dumps(sources), model=args.model,
                       cache_dir=args.cache_dir or "", k=args.k, feature_size=args.feature_size, device=args.device)  # fmt: skip
    seconds = time.perf_counter() - start
    labels = scene_labels.stored_labels(obj)
    votes = scene_labels.stored_label_votes(obj)
    if "labels_npz" in outputs:
        _atomic_write(outputs["labels_npz"], lambda tmp: np.savez(tmp, labels=labels.astype(np.int32), votes=votes.astype(np.float32)))
    if "out" in outputs:
        _run_operator(bpy.ops.masksplat.export_splats, filepath=str(outputs["out"]), apply_transform=False,
                      label_property=bool(args.label_property))  # fmt: skip
    maps = {name: scene_labels.camera_label_map(cam) for name, cam in cams.items() if cam.masksplat.label_map is not None}
    if masks_out is not None:
        masks_out.mkdir(parents=True, exist_ok=True)
        for name, ids in maps.items():
            _atomic_write(masks_out / f"{name}.png", lambda tmp, ids=ids: write_png(tmp, ids.astype(np.uint8)))
    summary = {
        "command": "affordance", "gaussians": int(labels.size), "labelled": int((labels >= 0).sum()),
        "unseen": int((labels < 0).sum()), "num_labels": int(votes.shape[1]), "views": len(maps),
        "label_counts": np.bincount(labels[labels >= 0], minlength=votes.shape[1]).astype(int).tolist(),
        "seconds": round(seconds, 3), **{key: str(path) for key, path in outputs.items()},
    }  # fmt: skip
    if masks_out is not None:
        summary["masks_out"] = str(masks_out)
    if args.gt_labels:
        from .client import render_views
        names = scene_labels.label_names(obj)
        truth_files = {p.stem: p for p in Path(args.gt_labels).iterdir() if p.stem in cams and p.stem not in source_cams}
        if not truth_files:
            raise BadInput(f"{args.gt_labels}: no ground-truth label map is named after a target camera")
        views = sorted(truth_files)
        truths = {name: scene_labels.read_label_file(truth_files[name]) for name in views}
        k = max(votes.shape[1], *(int(t.max(initial=0)) + 1 for t in truths.values()))
        cameras = [camera_from_object(cams[name], scene) for name in views]
        backend = _batch_backend(args.device)
        arrays = world_gaussians(obj)
        lifted = render_label_maps(lambda sh: render_views(backend, arrays, sh, cameras), labels, k)
        matrices = {"2D transfer": np.zeros((k, k), np.int64), "3D lifted": np.zeros((k, k), np.int64)}
        for name, rendered in zip(views, lifted, strict=True):
            truth = truths[name]
            if truth.shape != rendered.shape:
                raise BadInput(f"ground truth for '{name}' is {truth.shape[1]}x{truth.shape[0]}, the camera is {rendered.shape[1]}x{rendered.shape[0]}")
            matrices["2D transfer"] += confusion(maps[name], truth, k)
            matrices["3D lifted"] += confusion(rendered, truth, k)
        scores = {column: iou_and_recall(matrix) for column, matrix in matrices.items()}
        print(label_table(names[:k] + [str(i) for i in range(len(names), k)], scores), file=sys.stderr)
        summary["evaluation"] = {
            "views": views,
            **{column: {"iou": [None if np.isnan(v) else round(float(v), 5) for v in iou],
                        "recall": [None if np.isnan(v) else round(float(v), 5) for v in recall],
                        "mIoU": round(float(np.nanmean(iou)), 5), "mRecall": round(float(np.nanmean(recall)), 5)}
               for column, (iou, recall) in scores.items()},
        }  # fmt: skip
    if "report" in outputs:
        _atomic_write(outputs["report"], lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masksplat", description="MaskSplat batch commands")
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("convert", help="import a splat file into Blender and export it again")
    convert.add_argument("--ply", required=True, help="input splat file (.ply, .compressed.ply, .spz, .sog or a SOG meta.json, .splat)")
    convert.add_argument("--out", required=True, help="output splat file; its extension picks the format (.ply, .compressed.ply, .spz)")
    convert.add_argument("--drop-invalid", action="store_true", help="drop Gaussians with NaN/Inf values")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    convert.add_argument("--summary", help="also write the summary as JSON to this file")
    convert.set_defaults(func=cmd_convert)

    seg = sub.add_parser("segment", help="select the Gaussians that masks show; write OBJECT.ply and REST.ply")
    seg.add_argument("--ply", help="the scene's splat file")
    seg.add_argument("--cameras", help="cameras.json, transforms.json or a COLMAP sparse folder")
    seg.add_argument("--masks", help="folder of masks named after the cameras (white = object)")
    seg.add_argument("--out", help="OBJECT.ply: the selected Gaussians")
    seg.add_argument("--rest", help="REST.ply: the other Gaussians")
    seg.add_argument("--beta", type=float, default=1.0, help="select when object votes > beta * background votes")
    seg.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    seg.add_argument("--edge-band", type=int, default=0, metavar="PX",
                     help="robust mode for masks off by a few pixels: pixels within PX of a mask edge cast no vote")
    seg.add_argument("--no-fill", action="store_true", help="leave Gaussians no view saw unselected (the paper's rule)")
    seg.add_argument("--votes", help="VOTES.npz with float32 fg and bg, one value per input Gaussian")
    seg.add_argument("--save-blend", help="also save the Blender scene")
    seg.add_argument("--jobs", help="JOBS.json: a list of {ply, cameras, masks, out, ...} run in one process")
    seg.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    seg.add_argument("--summary", help="also write the summary as JSON to this file")
    seg.set_defaults(func=cmd_segment)

    ren = sub.add_parser("render", help="render the splat from every camera to PNG")
    ren.add_argument("--ply", required=True)
    ren.add_argument("--cameras", required=True)
    ren.add_argument("--out", required=True, help="folder for <camera>.png")
    ren.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ren.add_argument("--background", type=float, nargs=3, default=(0.0, 0.0, 0.0), metavar=("R", "G", "B"))
    ren.add_argument("--overwrite", action="store_true")
    ren.add_argument("--summary")
    ren.set_defaults(func=cmd_render)

    pr = sub.add_parser("prune", help="remove the Gaussians no view needs, with a quality report")
    pr.add_argument("--ply", required=True)
    pr.add_argument("--cameras", required=True)
    pr.add_argument("--out", required=True, help="PRUNED.ply")
    pr.add_argument("--criterion", default="zero", help="zero | threshold:X (weight per view pixel) | fraction:F")
    pr.add_argument("--min-psnr", type=float, default=None, metavar="DB", help="with fraction: remove less to keep this PSNR")
    pr.add_argument("--orbit-views", type=int, default=0, metavar="N", help="add N orbit cameras around the object")
    pr.add_argument("--orbit-size", type=int, default=256)
    pr.add_argument("--report", help="REPORT.json")
    pr.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    pr.add_argument("--overwrite", action="store_true")
    pr.add_argument("--summary")
    pr.set_defaults(func=cmd_prune)

    aff = sub.add_parser("affordance", help="transfer part labels from one annotated image with DINOv2 and lift them to 3D")
    aff.add_argument("--ply", required=True, help="the scene's splat file")
    aff.add_argument("--cameras", required=True, help="cameras.json, transforms.json or a COLMAP sparse folder")
    aff.add_argument("--source-image", required=True, action="append", metavar="IMG",
                     help="the annotated image (a photo or a render); repeat for several, each with its --source-labels")
    aff.add_argument("--source-camera", action="append", metavar="NAME",
                     help="the camera IMG was taken from (its labels are then used as is); one per --source-image")
    aff.add_argument("--source-labels", required=True, action="append", metavar="LABELS.png",
                     help="label ids of IMG, single channel, same size (0 = background, 1..K the classes)")
    aff.add_argument("--model", required=True, metavar="PATH_OR_ID", help="DINOv2 folder (safetensors) or id in the local cache")
    aff.add_argument("--cache-dir", help="Hugging Face cache folder to look a model id up in")
    aff.add_argument("--k", type=int, default=5, help="nearest source patches per target patch (default 5)")
    aff.add_argument("--feature-size", type=int, default=448, metavar="PX", help="square input size for DINOv2, a multiple of 14 (the paper: 896)")
    aff.add_argument("--labels-npz", metavar="L.npz", help="int32 labels [N] (-1 unseen) and float32 votes [N, K]")
    aff.add_argument("--out", metavar="LABELED.ply", help="the splats, same properties (with --label-property: plus int32 ms_label last)")
    aff.add_argument("--label-property", action="store_true", help="append ms_label to --out")
    aff.add_argument("--masks-out", metavar="DIR", help="write each camera's transferred label map as <camera>.png (ids)")
    aff.add_argument("--gt-labels", metavar="DIR", help="ground-truth label maps named after the cameras: per-class IoU and recall")
    aff.add_argument("--report", help="write the summary (with the evaluation) as JSON")
    aff.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    aff.add_argument("--overwrite", action="store_true")
    aff.add_argument("--summary")
    aff.set_defaults(func=cmd_affordance)

    ev = sub.add_parser("evaluate", help="mIoU / mAcc of a selection against ground-truth masks")
    ev.add_argument("--ply", required=True, help="OBJECT.ply written by segment")
    ev.add_argument("--scene", required=True, help="the SCENE.ply it was selected from")
    ev.add_argument("--cameras", required=True)
    ev.add_argument("--masks", required=True, help="folder of ground-truth masks named after the cameras")
    ev.add_argument("--report", help="write the report as JSON")
    ev.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ev.add_argument("--overwrite", action="store_true")
    ev.add_argument("--summary")
    ev.set_defaults(func=cmd_evaluate)
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
    except (OSError, ValueError) as err:
        print(f"masksplat: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(err, (FileNotFoundError, ValueError)) else EXIT_FAILURE
    except Exception as err:  # noqa: BLE001 - a batch job must end with a clear line and exit 1
        import traceback

        traceback.print_exc()
        print(f"masksplat: failed: {err}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        from .client import shutdown_client

        shutdown_client()
    text = json.dumps(summary, indent=2)
    print(text)
    if getattr(args, "summary", None):
        Path(args.summary).write_text(text + "\n")
    return EXIT_OK


if __name__ == "__main__":
    if not __package__:  # run by file path (blender -b --python .../batch.py): import as a package
        _folder = Path(__file__).resolve().parent
        sys.path.insert(0, str(_folder.parent))
        main = importlib.import_module(f"{_folder.name}.batch").main
    code = main()
    sys.stdout.flush()
    # Under `blender -b --python`, an explicit exit carries the code out of Blender.
    sys.exit(code)
