"""Grow / Shrink Selection and Select by Value on about 1M real Gaussians.

    .venv/bin/python benchmarks/bench_selection.py [--copies 7] [--fraction 0.1]

The scene is the biker capture (../shared/data, 152,746 Gaussians) placed `copies` times side
by side; the selection is a ball holding `fraction` of the first copy's Gaussians. Times the
plain functions (core/selection, numpy voxel hash) and the operators in Blender (bpy module:
attribute reads and the selection write included), and the baseline: brute-force distances
in numpy (chunked), on a 100,000-Gaussian part (it grows with N x selected; on 1M it takes minutes).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
DATA = Path(os.environ.get("MASKSPLAT_DATA", ROOT.parent / "shared" / "data"))


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _brute_grow(means, selected, reach):
    """Every unselected Gaussian within reach_i + reach_j of a selected one: chunked all-pairs distances."""
    inside, outside = np.flatnonzero(selected), np.flatnonzero(~selected)
    hit = np.zeros(len(outside), bool)
    for start in range(0, len(inside), 256):
        block = inside[start : start + 256]
        d2 = ((means[block, None, :] - means[None, outside, :]) ** 2).sum(axis=2)
        hit |= (d2 <= (reach[block, None] + reach[None, outside]) ** 2).any(axis=0)
    out = selected.copy()
    out[outside[hit]] = True
    return out


def core_rows(data, fraction: float) -> list[tuple]:
    from masksplat_blender.core.selection import grow, splat_sizes, splat_values, threshold

    means, sizes = data.means().astype(np.float64), splat_sizes(data.log_scales())
    first = means[: len(means) // 7]
    centre = np.median(first, axis=0)
    d = np.linalg.norm(means - centre, axis=1)
    selected = d <= np.quantile(np.linalg.norm(first - centre, axis=1), fraction)
    rows = []
    for label, kwargs in (("radius 1.0 in splat sizes", {"radius": 1.0, "sizes": sizes}),
                          ("radius (world units)", {"radius": float(np.median(sizes)) * 2}),
                          ("k = 8 nearest", {"k": 8})):  # fmt: skip
        t_grow, grown = _timed(lambda kw=kwargs: grow(means, selected, **kw))
        t_shrink, shrunk = _timed(lambda kw=kwargs: grow(means, selected, shrink=True, **kw))
        rows.append(
            (f"Grow, {label}", len(means), int(selected.sum()), t_grow, int(grown.sum() - selected.sum()))
        )
        rows.append(
            (
                f"Shrink, {label}",
                len(means),
                int(selected.sum()),
                t_shrink,
                int(selected.sum() - shrunk.sum()),
            )
        )
    for kind, limit, above in (("OPACITY", 0.1, False), ("SCALE", 5.0, True), ("COLOUR", 0.1, False)):
        t, chosen = _timed(lambda k=kind, li=limit, a=above: threshold(
            splat_values(k, data.opacity_logits(), data.log_scales(), data.f_dc(), np.full(3, 0.5)), li, a))  # fmt: skip
        rows.append((f"Select by {kind.lower()}", len(means), 0, t, int(chosen.sum())))
    part = slice(0, 100_000)
    reach = np.full(100_000, float(np.median(sizes)))
    t_fast, fast = _timed(lambda: grow(means[part], selected[part], radius=2 * float(np.median(sizes))))
    t_brute, brute = _timed(lambda: _brute_grow(means[part], selected[part], reach))
    assert np.array_equal(fast, brute), "voxel hash and brute force disagree"
    rows.append(
        (
            "Grow, radius (world units): voxel hash",
            100_000,
            int(selected[part].sum()),
            t_fast,
            int(fast.sum() - selected[part].sum()),
        )
    )
    rows.append(
        (
            "Grow, radius (world units): brute force (baseline)",
            100_000,
            int(selected[part].sum()),
            t_brute,
            int(brute.sum() - selected[part].sum()),
        )
    )
    return rows


def operator_rows(data, fraction: float) -> list[tuple]:
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="msbench-"))
    import bpy

    import masksplat_blender
    from masksplat_blender.core.splat_io import write_ply
    from masksplat_blender.scene import selection

    masksplat_blender.register()
    work = Path(tempfile.mkdtemp(prefix="msbench-sel-"))
    write_ply(work / "scene.ply", data)
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.masksplat.import_splats(filepath=str(work / "scene.ply"))
    obj = bpy.context.active_object
    means = data.means()
    first = means[: len(means) // 7]
    centre = np.median(first, axis=0)
    seed = np.linalg.norm(means - centre, axis=1) <= np.quantile(
        np.linalg.norm(first - centre, axis=1), fraction
    )
    rows = []
    for label, run in (
        ("set_vertex_selection (tint attribute included)", lambda: selection.set_vertex_selection(obj, seed)),
        ("selected count (the panel, per redraw)", lambda: selection.selected_count(obj)),
        (
            "masksplat.grow_selection (radius 1.0, splat sizes)",
            lambda: bpy.ops.masksplat.grow_selection(radius=1.0),
        ),
        (
            "masksplat.grow_selection (shrink)",
            lambda: bpy.ops.masksplat.grow_selection(radius=1.0, shrink=True),
        ),
        (
            "masksplat.select_by_value (opacity)",
            lambda: bpy.ops.masksplat.select_by_value(value="OPACITY", opacity=0.1),
        ),
    ):
        t, _ = _timed(run)
        rows.append((label, len(means), int(seed.sum()), t, selection.selected_count(obj)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=7)
    parser.add_argument("--fraction", type=float, default=0.1)
    args = parser.parse_args()
    if not (DATA / "playcanvas_biker" / "biker_inria_sh0.ply").exists():
        print(f"needs the real splats in {DATA}")
        return 1
    from scenes import biker_copies

    data = biker_copies(DATA, args.copies)
    rows = core_rows(data, args.fraction) + operator_rows(data, args.fraction)
    print(f"\nbiker x {args.copies} ({len(data.vertices):,} Gaussians), this machine (2 shared cores)\n")
    print("| what | Gaussians | selected before | seconds | changed / result |")
    print("|---|---|---|---|---|")
    for what, n, before, seconds, result in rows:
        print(f"| {what} | {n:,} | {before:,} | {seconds:.3f} | {result:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
