"""`segment`: select the Gaussians the masks show; write OBJECT.ply, REST.ply, the votes and a .blend.

With --jobs, many scenes in one process: every job is checked (inputs, settings and
outputs) before the first one runs, and all their outputs are published together.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import BadInput, MaskSplatError
from .common import ensure_addon, export, load_scene, require, run_operator, setting, write_npz

REQUIRED = ("ply", "cameras", "masks", "out")
OUTPUTS = {"out": "--out", "rest": "--rest", "votes": "--votes", "save_blend": "--save-blend"}


@dataclass
class Job:
    ply: Path
    cameras: Path
    masks: Path
    beta: float
    edge_band: int
    fill: bool
    device: str
    outputs: dict = field(default_factory=dict)  # key -> core.outputs.Output
    given: dict = field(default_factory=dict)  # key -> the path as the user gave it


def inputs(args) -> list:
    """Every job's inputs, checked; the jobs (one without --jobs) are kept on `args.job_list`."""
    if args.jobs:
        args.job_list = _read_jobs(args)
        found = [Path(args.jobs)]
    else:
        missing = [f"--{k}" for k in REQUIRED if not getattr(args, k)]
        if missing:
            raise BadInput(f"segment needs {', '.join(missing)} (or --jobs)")
        raw = {key: getattr(args, key) for key in (*REQUIRED, "rest", "votes", "save_blend", "beta", "edge_band", "device")}
        args.job_list = [{**raw, "no_fill": args.no_fill}]
        found = []
    for index, raw in enumerate(args.job_list):
        where = f"job {index}: " if args.jobs else ""
        if not Path(raw["masks"]).is_dir():
            raise BadInput(f"{where}{raw['masks']}: no such mask folder")
        found += [require(raw["ply"], f"{where}--ply"), require(raw["cameras"], f"{where}--cameras", "any"), Path(raw["masks"])]
    return found


def run(args, outputs) -> dict:
    bpy = ensure_addon()
    jobs = [_job(bpy, raw, outputs, f"job {index}: " if args.jobs else "") for index, raw in enumerate(args.job_list)]
    results = [segment_one(bpy, job) for job in jobs]
    return {"command": "segment", "jobs": results} if args.jobs else {"command": "segment", **results[0]}


def _read_jobs(args) -> list[dict]:
    require(args.jobs, "--jobs")
    try:
        jobs = json.loads(Path(args.jobs).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadInput(f"{args.jobs}: cannot read the jobs file ({err})") from None
    if not isinstance(jobs, list) or not jobs or not all(isinstance(j, dict) for j in jobs):
        raise BadInput(f"{args.jobs}: expected a non-empty list of objects with ply, cameras, masks, out")
    for index, job in enumerate(jobs):
        missing = [k for k in REQUIRED if not job.get(k)]
        if missing:
            raise BadInput(f"job {index}: missing {', '.join(missing)}")
        job.setdefault("device", args.device)
        if job["device"] not in ("auto", "cpu", "cuda"):
            raise BadInput(f"job {index}: device must be auto, cpu or cuda, not {job['device']!r}")
    return jobs


def _job(bpy, raw: dict, outputs, where: str) -> Job:
    """One job's settings and outputs, checked; nothing is read or written yet."""
    job = Job(
        ply=Path(raw["ply"]), cameras=Path(raw["cameras"]), masks=Path(raw["masks"]),
        beta=setting(bpy, "beta", raw.get("beta", 1.0), f"{where}--beta"),
        edge_band=setting(bpy, "edge_band", raw.get("edge_band", 0), f"{where}--edge-band"),
        fill=not raw.get("no_fill", False), device=raw.get("device", "auto"),
    )  # fmt: skip
    overwrite = bool(raw.get("overwrite", outputs.overwrite))
    for key, flag in OUTPUTS.items():
        if raw.get(key):
            job.outputs[key] = outputs.file(raw[key], f"{where}{flag}", overwrite=overwrite)
            job.given[key] = str(raw[key])
    return job


def segment_one(bpy, job: Job) -> dict:
    """One scene: import, load masks, compute the selection, write the outputs to their temporaries."""
    obj = load_scene(bpy, job.ply, job.cameras)
    run_operator(bpy.ops.masksplat.load_masks, directory=str(job.masks))
    obj.masksplat.beta = job.beta
    obj.masksplat.fill_unseen = job.fill
    obj.masksplat.edge_band = job.edge_band
    start = time.perf_counter()
    run_operator(bpy.ops.masksplat.compute_selection, device=job.device)
    seconds = time.perf_counter() - start
    selected = _selection(obj, "rest" in job.outputs)
    export(bpy, job.outputs["out"], gaussians="SELECTED", apply_transform=False)
    if "rest" in job.outputs:
        export(bpy, job.outputs["rest"], gaussians="UNSELECTED", apply_transform=False)
    if "votes" in job.outputs:
        write_npz(job.outputs["votes"], **dict(zip(("fg", "bg"), _votes(obj), strict=True)))
    if "save_blend" in job.outputs:
        with job.outputs["save_blend"].writing() as temp:
            run_operator(bpy.ops.wm.save_as_mainfile, filepath=str(temp), copy=True)
    masked = sum(1 for cam in obj.masksplat.camera_collection.all_objects if cam.type == "CAMERA" and cam.masksplat.mask)
    return {
        "gaussians": int(selected.size), "selected": int(selected.sum()), "views": masked,
        "seconds": round(seconds, 3), **job.given,
    }  # fmt: skip


def _selection(obj, with_rest: bool) -> np.ndarray:
    selected = np.zeros(len(obj.data.vertices), dtype=bool)
    obj.data.vertices.foreach_get("select", selected)
    if not selected.any():
        fg, bg = _votes(obj)
        if not (fg + bg).any():
            raise MaskSplatError("no camera sees any Gaussian: check that the cameras belong to this splat file")
        raise MaskSplatError("no Gaussian was selected: check that the masks show the object (white = object)")
    if with_rest and selected.all():
        raise MaskSplatError("every Gaussian was selected, so REST.ply would be empty")
    return selected


def _votes(obj) -> tuple[np.ndarray, np.ndarray]:
    from ..scene.selection import stored_votes

    fg, bg = stored_votes(obj)
    return fg.astype(np.float32), bg.astype(np.float32)
