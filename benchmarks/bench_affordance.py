"""Label transfer as the paper evaluates it: per-class IoU and recall of the 2D-to-2D transfer
and of the 3D result rendered back into each view, against ground-truth label maps.

    .venv/bin/python benchmarks/bench_affordance.py [--views 8] [--size 160] [--model rgb-patches|DIR]

Scene: the bundled fruit_drops sample with its 9 hand-painted labels (letter groups of
"MIXED DROPS"); ground-truth label maps are rendered from those labels. One view's labels
are the source; the other views are the targets. No DINOv2 weights exist on this machine,
so the default features are `rgb-patches` (known answers: patch colours) on (a) the sample
recoloured by its labels, where colour identifies the label, and (b) the sample as
captured. Pass --model DIR for real DINOv2 weights. Also: the lifting check of the issue
(ground-truth maps of N views lifted back, contribution-weighted agreement with the hand
labels) for 8, 12 and 16 views.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from scenes import (  # noqa: E402
    SAMPLE,
    fruit_cameras,
    fruit_label_maps,
    fruit_labels,
    write_affordance_scene,
)

from masksplat_blender.client import BackendClient, compute_votes  # noqa: E402
from masksplat_blender.core.labels import one_hot, weighted_agreement  # noqa: E402
from masksplat_blender.core.splat_io import read_splats  # noqa: E402
from masksplat_blender.core.votes import argmax_labels  # noqa: E402


def run_transfer(paths: dict, model: str, feature_size: int, out: Path) -> tuple[dict, float]:
    report = out / "report.json"
    command = [sys.executable, "-m", "masksplat_blender.batch", "affordance", "--ply", paths["ply"], "--cameras", paths["cameras"],
               "--source-image", paths["source_image"], "--source-labels", paths["source_labels"],
               "--source-camera", paths["source_camera"], "--model", model, "--feature-size", str(feature_size),
               "--labels-npz", out / "labels.npz", "--gt-labels", paths["gt"], "--report", report, "--device", "cpu", "--overwrite"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in command], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"affordance failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(report.read_text())
    labels = np.load(out / "labels.npz", allow_pickle=False)
    result["agreement"] = weighted_agreement(labels["labels"], fruit_labels(), labels["votes"].sum(axis=1))
    return result, seconds


def lifting_check(views: list[int], size: int) -> list[tuple[int, float, float, float]]:
    data = read_splats(SAMPLE)
    truth = fruit_labels()
    client = BackendClient(sys.executable, device="cpu")
    rows = []
    try:
        for n in views:
            cams = fruit_cameras(n, size=size, elevation=(20.0, 85.0))
            maps = fruit_label_maps(cams, client=client)
            start = time.perf_counter()
            votes, _ = compute_votes(
                client, data.gaussian_arrays(), cams, [one_hot(m, 9) for m in maps], mode="labels"
            )
            seconds = time.perf_counter() - start
            labels = argmax_labels(votes)
            seen = labels >= 0
            rows.append(
                (
                    n,
                    weighted_agreement(labels, truth, votes.sum(axis=1)),
                    float(np.mean(labels[seen] == truth[seen])),
                    seconds,
                )
            )
    finally:
        client.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--model", default="rgb-patches")
    parser.add_argument("--feature-size", type=int, default=448)
    args = parser.parse_args()

    print(f"## Label transfer, fruit_drops, 9 labels, 1 source view -> {args.views - 1} targets at {args.size}x{args.size}, "
          f"features: {args.model} at {args.feature_size}px (CPU)\n")  # fmt: skip
    cameras = fruit_cameras(args.views, size=args.size, elevation=(20.0, 85.0))
    with tempfile.TemporaryDirectory() as tmp:
        for recolour, what in ((True, "recoloured by label (colour = label)"), (False, "as captured")):
            folder = Path(tmp) / ("recoloured" if recolour else "captured")
            paths = write_affordance_scene(folder, cameras, recolour=recolour)
            result, seconds = run_transfer(paths, args.model, args.feature_size, folder)
            ev = result["evaluation"]
            print(
                f"### {what}: {seconds:.1f} s for the whole batch job (import, renders, features, votes, evaluation)\n"
            )
            print(
                "| label | 2D transfer IoU | 2D recall | 3D lifted IoU | 3D recall |\n|---|---|---|---|---|"
            )
            names = ["background"] + [f"letters {k}" for k in range(1, 9)]
            for k, name in enumerate(names):
                cells = [ev[c][m][k] for c in ("2D transfer", "3D lifted") for m in ("iou", "recall")]
                print(f"| {name} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in cells) + " |")
            print(f"| **mean** | **{ev['2D transfer']['mIoU']:.3f}** | **{ev['2D transfer']['mRecall']:.3f}** | "
                  f"**{ev['3D lifted']['mIoU']:.3f}** | **{ev['3D lifted']['mRecall']:.3f}** |")  # fmt: skip
            print(f"\n3D labels vs the hand labels, contribution-weighted: {result['agreement']:.4f}\n")

    print(
        f"## Lifting check: ground-truth label maps of N views at {args.size}x{args.size} lifted back (K=9 votes, one pass)\n"
    )
    print("| views | contribution-weighted agreement | by count (seen) | votes (s) |\n|---|---|---|---|")
    for n, weighted, counted, seconds in lifting_check([8, 12, 16], args.size):
        print(f"| {n} | {weighted:.4f} | {counted:.4f} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
