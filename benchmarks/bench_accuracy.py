"""Segmentation accuracy on scenes composed from real splats, against the centre baseline.

    .venv/bin/python benchmarks/bench_accuracy.py [--size 192]

Two real splats from ../shared/data (the donut and the houseplant), each scaled to the
same size, make two scenes: "all-around" (side by side, cameras on all sides) and
"forward" (the donut in front of the plant, every camera on one side, as in phone
captures and NVOS). Ground-truth masks are the object ids rendered occlusion-aware and
thresholded at 0.5. Each object is segmented from N masked views and judged on held-out
views: the selection rendered as a label vs the ground truth (mIoU over objects and
held-out views). Methods: the paper's rule (A_fg > A_bg), MaskSplat's default (the
paper's rule + Fill Unseen), the robust mode (an ignore band along mask edges + fill),
and the centre baseline (a Gaussian is selected when its projected centre falls inside
the mask in more views than outside: what centre-based brush selection does).
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

from masksplat_blender.client import BackendClient, compute_votes, render_views  # noqa: E402
from masksplat_blender.core.cameras import Camera, look_at  # noqa: E402
from masksplat_blender.core.masks import edge_band, iou_and_accuracy, label_sh, morph  # noqa: E402
from masksplat_blender.core.orbit import orbit_cameras  # noqa: E402
from masksplat_blender.core.splat_io import read_splats  # noqa: E402
from masksplat_blender.core.transform import bake_transform  # noqa: E402
from masksplat_blender.core.votes import centre_votes, fill_never_seen, never_seen, select_two_class  # noqa: E402


def normalised(path: Path, centre) -> dict:
    data = read_splats(path)
    lo, hi = np.percentile(data.means(), [1, 99], axis=0)
    scale = 1.0 / float(np.linalg.norm(hi - lo))
    matrix = np.eye(4)
    matrix[:3, :3] *= scale
    matrix[:3, 3] = np.asarray(centre) - scale * (lo + hi) / 2
    means, quats, log_scales, _ = bake_transform(
        data.means(), data.quats_wxyz(), data.log_scales(), None, matrix
    )
    return {"means": means.astype(np.float32), "quats": quats.astype(np.float32),
            "log_scales": log_scales.astype(np.float32), "opacity_logits": data.opacity_logits()}  # fmt: skip


def compose(parts: list[dict]) -> tuple[dict, np.ndarray]:
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ids = np.concatenate([np.full(len(p["means"]), i) for i, p in enumerate(parts)])
    return arrays, ids


def cap_cameras(centre, distance, n, size, axis, max_deg, prefix, seed) -> list[Camera]:
    """`n` cameras within `max_deg` of `axis` around `centre` (forward-facing captures)."""
    rng = np.random.default_rng(seed)
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    cams = []
    f = 0.5 * size / np.tan(np.radians(25))
    for i in range(n):
        theta, phi = np.radians(max_deg) * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        direction = np.cos(theta) * axis + np.sin(theta) * (np.cos(phi) * e1 + np.sin(phi) * e2)
        eye = np.asarray(centre) + distance * direction
        cams.append(
            Camera(
                f"{prefix}_{i:03d}",
                f"{prefix}_{i:03d}.png",
                look_at(eye, centre, (0, 0, 1)),
                f,
                f,
                size / 2,
                size / 2,
                size,
                size,
            )
        )
    return cams


def label_maps(client, arrays, values, cameras) -> list[np.ndarray]:
    return [
        rgb[:, :, 0] > 127
        for rgb, _ in render_views(client, arrays, label_sh(values.astype(np.float32)), cameras)
    ]


def held_out_iou(client, arrays, selected, truth_maps, held) -> float:
    predicted = label_maps(client, arrays, selected, held)
    return float(np.mean([iou_and_accuracy(p, t)[0] for p, t in zip(predicted, truth_maps, strict=True)]))


def segment(client, arrays, ids, k, train, masks, method, band=0):
    if method == "centre":
        hit = np.zeros(len(ids), np.float32)
        miss = np.zeros(len(ids), np.float32)
        for cam, mask in zip(train, masks, strict=True):
            uv, depth = cam.project(arrays["means"])
            h, m = centre_votes(uv, depth, mask)
            hit += h
            miss += m
        return hit > miss
    ignores = [None] * len(masks)
    if band:
        ignores = [edge_band(m, band) for m in masks]
    votes, _ = compute_votes(client, arrays, train, [m.astype(np.uint8) * 255 for m in masks], ignores)
    selected = select_two_class(votes[:, 0], votes[:, 1])
    if method in ("default", "robust"):
        selected = fill_never_seen(arrays["means"], selected, ~never_seen(votes[:, 0], votes[:, 1]))
    return selected


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=192)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found: this benchmark needs ../shared/data")
    start = time.perf_counter()
    client = BackendClient(sys.executable, device="cpu")
    donut, plant = DATA / "gshairlod_donut" / "fused.ply", DATA / "padilla_plant" / "plant_inria_sh0.ply"
    scenes = {
        "all-around": (compose([normalised(donut, (-0.6, 0, 0)), normalised(plant, (0.6, 0, 0))]),
                       lambda n, p, s: orbit_cameras((0, 0, 0), 3.0, n, args.size, args.size, 50, elevation_deg=(-25, 55), name_prefix=p)),
        "forward": (compose([normalised(donut, (0.15, -0.55, 0)), normalised(plant, (-0.1, 0.55, 0))]),
                    lambda n, p, s: cap_cameras((0, 0, 0), 3.0, n, args.size, (0, -1, 0.25), 30, p, s)),
    }  # fmt: skip
    methods = ("paper", "default", "robust", "centre")
    rows = []
    for scene_name, ((arrays, ids), make_cams) in scenes.items():
        held = make_cams(7, "held", 99)
        if scene_name == "all-around":
            held = [c for c in held][::1]
        for k in range(2):
            truth_train_cache = {}
            truth_held = label_maps(client, arrays, ids == k, held)
            for condition, n in (
                ("exact", 8),
                ("exact", 3),
                ("exact", 2),
                ("eroded 2px", 8),
                ("dilated 2px", 8),
            ):
                train = (
                    make_cams(n, f"train{n}", n)
                    if scene_name == "forward"
                    else orbit_cameras(
                        (0, 0, 0),
                        3.0,
                        n,
                        args.size,
                        args.size,
                        50,
                        elevation_deg=(-10, 40),
                        name_prefix=f"train{n}",
                    )
                )
                key = (n,)
                if key not in truth_train_cache:
                    truth_train_cache[key] = label_maps(client, arrays, ids == k, train)
                masks = truth_train_cache[key]
                if condition.startswith("eroded"):
                    masks = [morph(m, 2, False) for m in masks]
                elif condition.startswith("dilated"):
                    masks = [morph(m, 2, True) for m in masks]
                for method in methods:
                    selected = segment(
                        client, arrays, ids, k, train, masks, method, band=3 if method == "robust" else 0
                    )
                    rows.append(
                        (
                            scene_name,
                            condition,
                            n,
                            k,
                            method,
                            held_out_iou(client, arrays, selected, truth_held, held),
                        )
                    )
    client.close()
    print(f"\nheld-out mIoU (mean over both objects and 7 held-out views), {args.size}x{args.size}, CPU; "
          f"{time.perf_counter() - start:.0f} s\n")  # fmt: skip
    print("| scene | masks | views | " + " | ".join(methods) + " |")
    print("|---|---|---|" + "---|" * len(methods))
    keys = sorted({(r[0], r[1], r[2]) for r in rows}, key=lambda t: (t[0], t[1] != "exact", -t[2]))
    for scene_name, condition, n in keys:
        values = []
        for method in methods:
            ious = [r[5] for r in rows if r[:3] == (scene_name, condition, n) and r[4] == method]
            values.append(f"{np.mean(ious):.4f}")
        print(f"| {scene_name} | {condition} | {n} | " + " | ".join(values) + " |")
    print("\nper object, exact masks:\n\n| scene | views | object | " + " | ".join(methods) + " |")
    print("|---|---|---|" + "---|" * len(methods))
    for scene_name, condition, n in keys:
        if condition != "exact":
            continue
        for k, name in enumerate(("donut", "plant")):
            values = [
                f"{next(r[5] for r in rows if r[:4] == (scene_name, condition, n, k) and r[4] == m):.4f}"
                for m in methods
            ]
            print(f"| {scene_name} | {n} | {name} | " + " | ".join(values) + " |")
    print("\npaper = A_fg > A_bg; default = paper + Fill Unseen; robust = 3 px ignore band along mask edges + fill;"
          " centre = projected centre inside the mask in more views than outside")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
