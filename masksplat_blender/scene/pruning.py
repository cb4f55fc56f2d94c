"""Prune Splats on a Blender object: gather cameras and Gaussians, then (off the main
thread) contributions, the removal set and the quality report."""

from __future__ import annotations

import json

import bpy
import numpy as np

from ..core.cameras import Camera
from ..core.orbit import orbit_cameras
from ..core.prune import (
    PruneError,
    QualityReport,
    choose_removal,
    compare_views,
    never_contributes,
    parse_criterion,
)
from .cameras import camera_from_object
from .selection import scene_cameras, world_gaussians, world_sh
from .splat_object import keep_vertices


def _orbit(obj, n: int, size: int, arrays) -> list[Camera]:
    lo, hi = np.percentile(arrays["means"], [1, 99], axis=0)
    radius = 0.5 * float(np.linalg.norm(hi - lo))
    return orbit_cameras((lo + hi) / 2, radius / np.sin(np.radians(25)) * 1.05, n, size, size, 50.0,
                         elevation_deg=(-60.0, 75.0), name_prefix="prune_orbit")  # fmt: skip


class PrunePlan:
    """Everything pruning needs from Blender, gathered on the main thread (a plan as
    scene.selection.VotePlan describes: run, then apply)."""

    def __init__(self, obj, scene, cameras: str = "ALL", orbit_views: int = 0, orbit_size: int = 256,
                 criterion: str = "zero", min_psnr: float = 0.0, held_out=()):  # fmt: skip
        self.kind, self.value = parse_criterion(criterion)
        self.criterion, self.min_psnr = criterion, float(min_psnr)
        if cameras == "SELECTED":
            objects = [o for o in bpy.context.selected_objects if o.type == "CAMERA"]
        else:
            objects = scene_cameras(obj, scene)
        self.arrays = world_gaussians(obj)
        self.sh = world_sh(obj)
        self.cameras = [camera_from_object(o, scene) for o in objects]
        if orbit_views > 0:
            self.cameras += _orbit(obj, orbit_views, orbit_size, self.arrays)
        if not self.cameras:
            raise PruneError(f"'{obj.name}' has no cameras to prune for: import its cameras or add orbit views")
        self.held_out = list(held_out)
        layout = json.loads(obj.masksplat.layout_json)
        self.itemsize = int(np.dtype([(n, np.dtype(c)) for n, c in layout["fields"]]).itemsize)
        self.header = 60 + 30 * len(layout["fields"])

    def run(self, backend, progress=None, cancelled=None) -> tuple[np.ndarray, QualityReport]:
        """(which Gaussians to remove [N] bool, the quality report of removing them)."""
        n = len(self.arrays["means"])
        ones = [np.full((c.height, c.width), 255, np.uint8) for c in self.cameras]
        contribution = backend.votes(self.arrays, self.cameras, ones, mode="labels", cancelled=cancelled)[:, 0]
        if progress:
            progress(1, 3)
        never = never_contributes(self.arrays["opacity_logits"], self.arrays["log_scales"])
        pixels = sum(c.width * c.height for c in self.cameras)
        views = self.cameras + self.held_out
        used = [True] * len(self.cameras) + [False] * len(self.held_out)
        before = backend.renders(self.arrays, self.sh, views, cancelled=cancelled)
        if progress:
            progress(2, 3)
        value = self.value
        while True:
            remove = choose_removal(contribution, pixels, self.kind, value, never)
            if remove.all():
                raise PruneError("this criterion would remove every Gaussian")
            keep = ~remove
            after = backend.renders({k: v[keep] for k, v in self.arrays.items()}, self.sh[keep], views, cancelled=cancelled)
            rows = compare_views([c.name for c in views], before, after, used)
            report = QualityReport(n, int(remove.sum()), int(never.sum()), rows,
                                   self.header + n * self.itemsize, self.header + int(keep.sum()) * self.itemsize,
                                   self.criterion)  # fmt: skip
            if self.kind == "fraction":
                report.criterion = f"fraction:{value:g}" + (f" (min PSNR {self.min_psnr:g} dB)" if self.min_psnr else "")
            if self.kind != "fraction" or not self.min_psnr or report.mean_psnr >= self.min_psnr or value < 1e-4:
                break
            value /= 2.0  # the quality floor is not met: remove half as many
        if progress:
            progress(3, 3)
        return remove, report

    def apply(self, obj, scene, result) -> str:
        """Keep the report on the object and remove the chosen Gaussians (one Undo step)."""
        remove, report = result
        obj.masksplat.prune_report = json.dumps(report.as_dict())
        if remove.any():
            keep_vertices(obj, ~remove)
        return f"Pruned: {report.summary()}"
