"""Prune Splats on every real splat: removed fraction and PSNR on used and held-out views.

    .venv/bin/python benchmarks/bench_prune.py [--views 32] [--size 256]

For each splat in ../shared/data (donut, plant, guitar, biker, fruit_drops): 32 orbit
views at 256x256 are used for pruning, 8 other orbit views are held out. Criteria:
"zero" (the paper), "threshold" (1e-8 blending weight per view pixel) and "fraction:0.1".
Beside each, the simplest common alternative removes the same number of Gaussians with
the lowest opacity: which keeps more PSNR? CPU backend; times include votes and renders.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
SPLATS = {
    "donut": "gshairlod_donut/fused.ply",
    "plant": "padilla_plant/plant_inria_sh0.ply",
    "guitar": "playcanvas_guitar/guitar_inria_sh0.ply",
    "biker": "playcanvas_biker/biker_inria_sh0.ply",
    "fruit_drops": "supersplat_fruit_drops/fruit_drops_minimal.ply",
}

from masksplat_blender.client import BackendClient, compute_votes, render_views  # noqa: E402
from masksplat_blender.core.orbit import orbit_cameras  # noqa: E402
from masksplat_blender.core.prune import choose_removal, compare_views, never_contributes, parse_criterion  # noqa: E402
from masksplat_blender.core.splat_io import read_splats  # noqa: E402


def orbit_for(means, n, size, prefix, offset=0.0):
    lo, hi = np.percentile(means, [1, 99], axis=0)
    radius = 0.5 * float(np.linalg.norm(hi - lo)) / np.sin(np.radians(25)) * 1.05
    cams = orbit_cameras(
        (lo + hi) / 2,
        radius,
        n,
        size,
        size,
        50.0,
        elevation_deg=(-60.0 + offset, 75.0 - offset),
        name_prefix=prefix,
    )
    return cams


def _psnrs(rows_) -> tuple[float, float]:
    """Mean PSNR over used and over held-out views (identical renders count as 99 dB)."""
    return tuple(
        float(np.mean([min(r["psnr"], 99.0) for r in rows_ if r["used"] == flag])) for flag in (True, False)
    )


def prune_case(
    client,
    path,
    views=32,
    size=256,
    held=8,
    criteria=("zero", "threshold:1e-8", "fraction:0.1"),
    baseline=True,
):
    """Rows of (criterion, removed, psnr_used, psnr_held, max_diff_used, opacity_psnr_used, opacity_psnr_held, seconds)."""
    data = read_splats(path)
    arrays = data.gaussian_arrays()
    sh = data.sh()
    used = orbit_for(arrays["means"], views, size, "used")
    held_out = orbit_for(arrays["means"], held, size, "held", offset=7.0)
    start = time.perf_counter()
    ones = [np.full((size, size), 255, np.uint8) for _ in used]
    contribution = compute_votes(client, arrays, used, ones, mode="labels")[0][:, 0]
    never = never_contributes(arrays["opacity_logits"], arrays["log_scales"])
    all_views = used + held_out
    before = [rgb for rgb, _ in render_views(client, arrays, sh, all_views)]
    base_seconds = time.perf_counter() - start
    flags = [True] * len(used) + [False] * len(held_out)
    rows = []
    for criterion in criteria:
        t0 = time.perf_counter()
        kind, value = parse_criterion(criterion)
        remove = choose_removal(contribution, views * size * size, kind, value, never)
        keep = ~remove
        after = [
            rgb
            for rgb, _ in render_views(client, {k: v[keep] for k, v in arrays.items()}, sh[keep], all_views)
        ]
        ours = compare_views([c.name for c in all_views], before, after, flags)
        seconds = base_seconds + time.perf_counter() - t0
        if not baseline:
            rows.append(
                (
                    criterion,
                    int(remove.sum()),
                    *_psnrs(ours),
                    max(r["max_diff"] for r in ours if r["used"]),
                    None,
                    None,
                    seconds,
                )
            )
            continue
        # the opacity baseline: the same number of Gaussians, lowest opacity first
        by_opacity = np.zeros(len(keep), bool)
        by_opacity[np.argsort(arrays["opacity_logits"], kind="stable")[: int(remove.sum())]] = True
        keep_o = ~by_opacity
        after_o = [
            rgb
            for rgb, _ in render_views(
                client, {k: v[keep_o] for k, v in arrays.items()}, sh[keep_o], all_views
            )
        ]
        base = compare_views([c.name for c in all_views], before, after_o, flags)

        rows.append(
            (
                criterion,
                int(remove.sum()),
                *_psnrs(ours),
                max(r["max_diff"] for r in ours if r["used"]),
                *_psnrs(base),
                seconds,
            )
        )
    return data.count, rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--views", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found: this benchmark needs ../shared/data")
    client = BackendClient(sys.executable, device="cpu")
    print(f"\n{args.views} used + 8 held-out orbit views at {args.size}x{args.size}, CPU backend; PSNR capped at 99 dB "
          "(identical renders); opacity baseline removes the same count, lowest opacity first\n")  # fmt: skip
    print(
        "| splat | Gaussians | criterion | removed | PSNR used | PSNR held-out | max diff used | opacity baseline PSNR used | opacity baseline PSNR held-out | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, relative in SPLATS.items():
        count, rows = prune_case(client, DATA / relative, args.views, args.size)
        for criterion, removed, p_used, p_held, max_diff, o_used, o_held, seconds in rows:
            print(f"| {name} | {count:,} | {criterion} | {removed:,} ({100 * removed / count:.1f}%) | {p_used:.1f} | {p_held:.1f} | "
                  f"{max_diff:.4f} | {o_used:.1f} | {o_held:.1f} | {seconds:.1f} |")  # fmt: skip
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
