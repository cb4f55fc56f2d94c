"""`affordance`: transfer part labels from annotated images to every camera (DINOv2 features) and
lift them to the Gaussians; write the labels (npz, PLY), the transferred 2D maps and, against
ground truth, per-class IoU and recall of the 2D transfer and of the 3D result."""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from ..core.errors import BadInput
from .common import (
    backend_for,
    ensure_addon,
    export,
    load_scene,
    option,
    require,
    run_operator,
    scene_cameras_by_stem,
    write_json,
    write_npz,
)

OUTPUTS = {"labels_npz": "--labels-npz", "out": "--out", "report": "--report"}


def run(args, outputs) -> dict:
    files = {key: outputs.file(getattr(args, key), flag) for key, flag in OUTPUTS.items() if getattr(args, key)}
    maps_folder = outputs.folder(args.masks_out, "--masks-out") if args.masks_out else None
    bpy = ensure_addon()
    transfer = bpy.ops.masksplat.transfer_labels
    k, feature_size = option(transfer, "k", args.k, "--k"), option(transfer, "feature_size", args.feature_size, "--feature-size")
    if feature_size % 14:
        raise BadInput(f"--feature-size must be a multiple of 14 (DINOv2's patch size), not {feature_size}")
    obj = load_scene(bpy, args.ply, args.cameras)
    cams = scene_cameras_by_stem(bpy, obj)
    sources = _sources(args, cams, bpy.context.scene)
    source_stems = [source["stem"] for source in sources if source["stem"]]
    map_files = {stem: maps_folder.file(f"{stem}.png") for stem in cams} if maps_folder is not None else {}
    truths = _ground_truth(args.gt_labels, bpy.context.scene, cams, source_stems) if args.gt_labels else None
    start = time.perf_counter()
    run_operator(transfer, sources_json=json.dumps([s["operator"] for s in sources]), model=args.model,
                 cache_dir=args.cache_dir or "", k=k, feature_size=feature_size, device=args.device)  # fmt: skip
    seconds = time.perf_counter() - start
    from ..scene import labels as scene_labels

    labels, votes = scene_labels.stored_labels(obj), scene_labels.stored_label_votes(obj)
    maps = {stem: scene_labels.camera_label_map(cam) for stem, cam in cams.items() if cam.masksplat.label_map is not None}
    _write(bpy, files, map_files, labels, votes, maps, args)
    summary = {
        "command": "affordance", "gaussians": int(labels.size), "labelled": int((labels >= 0).sum()),
        "unseen": int((labels < 0).sum()), "num_labels": int(votes.shape[1]), "views": len(maps),
        "label_counts": np.bincount(labels[labels >= 0], minlength=votes.shape[1]).astype(int).tolist(),
        "seconds": round(seconds, 3), **{key: str(getattr(args, key)) for key in files},
    }  # fmt: skip
    if maps_folder is not None:
        summary["masks_out"] = str(args.masks_out)
    if truths is not None:
        summary["evaluation"] = _evaluate(args.device, bpy, obj, cams, maps, labels, votes.shape[1], truths)
    if "report" in files:
        write_json(files["report"], summary)
    return summary


def inputs(args) -> list:
    """The inputs, after the checks that need no file read."""
    images, label_files, source_cams = args.source_image, args.source_labels, args.source_camera or []
    if len(images) != len(label_files):
        raise BadInput(f"{len(images)} --source-image but {len(label_files)} --source-labels: give one label file per image")
    if source_cams and len(source_cams) != len(images):
        raise BadInput(f"{len(source_cams)} --source-camera for {len(images)} source images: give one per image, or none")
    if not (args.labels_npz or args.out or args.masks_out):
        raise BadInput("nothing to write: give --labels-npz, --out or --masks-out")
    if args.label_property and not args.out:
        raise BadInput("--label-property needs --out")
    inputs = [require(args.ply, "--ply"), require(args.cameras, "--cameras", "any")]
    inputs += [require(path, "--source-image") for path in images] + [require(path, "--source-labels") for path in label_files]
    if args.gt_labels:
        inputs.append(require(args.gt_labels, "--gt-labels", "folder"))
    return inputs


def _sources(args, cams: dict, scene) -> list[dict]:
    """Each annotated source, loaded and checked: {"stem" (its camera's, or ""), "operator" (for sources_json)}."""
    from ..scene import labels as scene_labels

    by_object = {cam.name: stem for stem, cam in cams.items()}
    sources = []
    for index, (image, labels) in enumerate(zip(args.source_image, args.source_labels, strict=True)):
        name = args.source_camera[index] if args.source_camera else ""
        stem = name if name in cams else by_object.get(name, "")
        if name and not stem:
            raise BadInput(f"--source-camera {name}: no such camera in {args.cameras} ({', '.join(sorted(cams)[:5])}, ...)")
        try:
            scene_labels.load_source(str(image), str(labels), cams[stem] if stem else None, scene)
        except ValueError as err:
            raise BadInput(f"{labels}: {err}") from None
        sources.append({"stem": stem, "operator": {"image": str(image), "labels": str(labels), "camera": cams[stem].name if stem else ""}})
    return sources


def _write(bpy, files: dict, map_files: dict, labels, votes, maps: dict, args) -> None:
    """Every output to its temporary."""
    from ..core.images import write_png

    if "labels_npz" in files:
        write_npz(files["labels_npz"], labels=labels.astype(np.int32), votes=votes.astype(np.float32))
    if "out" in files:
        export(bpy, files["out"], apply_transform=False, label_property=bool(args.label_property))
    for stem, output in map_files.items():
        if stem not in maps:
            raise BadInput(f"camera '{stem}' got no label map")
        with output.writing() as temp:
            write_png(temp, maps[stem].astype(np.uint8))


def _ground_truth(folder, scene, cams: dict, source_stems) -> dict:
    """{camera stem: label ids} of the ground-truth maps named after the target cameras, checked against them."""
    from ..core.masks import match_mask_files
    from ..scene import labels as scene_labels
    from ..scene.cameras import camera_resolution

    files = match_mask_files(folder, [stem for stem in cams if stem not in source_stems])
    truths = {stem: scene_labels.read_label_file(files[stem]) for stem in sorted(files)}
    for stem, truth in truths.items():
        width, height, _, _ = camera_resolution(cams[stem], scene)
        if truth.shape != (height, width):
            raise BadInput(f"ground truth for '{stem}' is {truth.shape[1]}x{truth.shape[0]}, the camera is {width}x{height}")
    return truths


def _evaluate(device: str, bpy, obj, cams: dict, maps: dict, labels, num_labels: int, truths: dict) -> dict:
    """Per-class IoU and recall of the 2D transfer and of the lifted labels rendered back into
    each target view, against the ground truth; prints the table."""
    from ..client import render_views
    from ..core.labels import confusion, iou_and_recall, label_table, render_label_maps
    from ..scene import labels as scene_labels
    from ..scene.cameras import camera_from_object
    from ..scene.selection import world_gaussians

    views = list(truths)
    k = max(num_labels, *(int(t.max(initial=0)) + 1 for t in truths.values()))
    cameras = [camera_from_object(cams[stem], bpy.context.scene) for stem in views]
    backend, arrays = backend_for(device), world_gaussians(obj)
    lifted = render_label_maps(lambda sh: render_views(backend, arrays, sh, cameras), labels, k)
    matrices = {"2D transfer": np.zeros((k, k), np.int64), "3D lifted": np.zeros((k, k), np.int64)}
    for stem, rendered in zip(views, lifted, strict=True):
        matrices["2D transfer"] += confusion(maps[stem], truths[stem], k)
        matrices["3D lifted"] += confusion(rendered, truths[stem], k)
    scores = {column: iou_and_recall(matrix) for column, matrix in matrices.items()}
    names = scene_labels.label_names(obj)
    print(label_table(names[:k] + [str(i) for i in range(len(names), k)], scores), file=sys.stderr)
    return {
        "views": views,
        **{column: {"iou": [None if np.isnan(v) else round(float(v), 5) for v in iou],
                    "recall": [None if np.isnan(v) else round(float(v), 5) for v in recall],
                    "mIoU": round(float(np.nanmean(iou)), 5), "mRecall": round(float(np.nanmean(recall)), 5)}
           for column, (iou, recall) in scores.items()},
    }  # fmt: skip
