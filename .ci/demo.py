"""MaskSplat demo on the bundled sample: cameras, masks for one part, headless segmentation,
before/after renders and the evaluation table, all in demo_out/.

The masks are rendered from the sample's hand-painted per-Gaussian labels (letter group
4 of "MIXED DROPS"), the way SAM masks would arrive from outside: one PNG per camera.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from scenes import SAMPLE, fruit_cameras, fruit_labels, label_masks, write_affordance_scene  # noqa: E402

from masksplat_blender.core.cameras import save_cameras_json  # noqa: E402
from masksplat_blender.core.images import write_png  # noqa: E402

OUT = ROOT / "demo_out"
PART = 4


def batch(*args) -> dict:
    summary = OUT / f".summary_{args[0]}.json"
    command = [sys.executable, "-m", "masksplat_blender.batch", *map(str, args), "--overwrite", "--summary", str(summary)]
    print("$ masksplat", " ".join(Path(a).name if "/" in str(a) else str(a) for a in command[3:-3]), flush=True)
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"batch {args[0]} failed with exit code {proc.returncode}")
    if args[0] in ("evaluate", "affordance"):
        sys.stdout.write("".join(line + "\n" for line in proc.stderr.splitlines() if line.startswith("|")))
    return json.loads(summary.read_text())


def main() -> int:
    OUT.mkdir(exist_ok=True)
    labels = fruit_labels() == PART
    train, held_out = fruit_cameras(8, size=160), fruit_cameras(4, size=160, name_prefix="held", elevation=(45.0, 70.0))
    save_cameras_json(OUT / "cameras.json", train)
    save_cameras_json(OUT / "cameras_held_out.json", held_out)
    for folder, cams in (("masks", train), ("gt_held_out", held_out)):
        (OUT / folder).mkdir(exist_ok=True)
        for cam, mask in zip(cams, label_masks(cams, labels), strict=True):
            write_png(OUT / folder / f"{cam.name}.png", mask)
    print(f"sample: {SAMPLE.name}, part {PART}: {int(labels.sum())} of {labels.size} Gaussians; "
          f"{len(train)} masked views, {len(held_out)} held-out views\n")  # fmt: skip
    seg = batch("segment", "--ply", SAMPLE, "--cameras", OUT / "cameras.json", "--masks", OUT / "masks",
                "--out", OUT / "OBJECT.ply", "--rest", OUT / "REST.ply", "--votes", OUT / "votes.npz", "--device", "cpu")  # fmt: skip
    print(f"  selected {seg['selected']} of {seg['gaussians']} Gaussians from {seg['views']} views in {seg['seconds']} s")
    batch("render", "--ply", SAMPLE, "--cameras", OUT / "cameras_held_out.json", "--out", OUT / "renders_before", "--device", "cpu")
    batch("render", "--ply", OUT / "OBJECT.ply", "--cameras", OUT / "cameras_held_out.json", "--out", OUT / "renders_object", "--device", "cpu")
    batch("render", "--ply", OUT / "REST.ply", "--cameras", OUT / "cameras_held_out.json", "--out", OUT / "renders_rest", "--device", "cpu")
    print("\nheld-out views, selection rendered as a label vs ground truth:")
    report = batch("evaluate", "--ply", OUT / "OBJECT.ply", "--scene", SAMPLE, "--cameras", OUT / "cameras_held_out.json",
                   "--masks", OUT / "gt_held_out", "--report", OUT / "evaluate.json", "--device", "cpu")  # fmt: skip
    print(f"\ndemo: wrote OBJECT.ply, REST.ply, votes.npz, renders and evaluate.json to {OUT} (mIoU {report['mIoU']:.3f})")

    # Part labels: the 9 letter groups annotated on one view, carried to the 7 others and
    # lifted to 3D. No DINOv2 weights ship with the demo, so it uses `rgb-patches` (patch
    # colours) on a copy of the sample coloured by its labels; pass a DINOv2 folder as
    # --model for real photos.
    print("\npart labels from one annotated view (affordance transfer, rgb-patches features):")
    paths = write_affordance_scene(OUT / "labels", fruit_cameras(8, size=160, elevation=(20.0, 85.0)))
    result = batch("affordance", "--ply", paths["ply"], "--cameras", paths["cameras"], "--source-image", paths["source_image"],
                   "--source-camera", paths["source_camera"], "--source-labels", paths["source_labels"], "--model", "rgb-patches",
                   "--labels-npz", OUT / "labels" / "labels.npz", "--out", OUT / "labels" / "LABELED.ply", "--label-property",
                   "--masks-out", OUT / "labels" / "maps", "--gt-labels", paths["gt"], "--device", "cpu")  # fmt: skip
    ev = result["evaluation"]
    print(f"\ndemo: labelled {result['labelled']} of {result['gaussians']} Gaussians; mIoU 2D transfer "
          f"{ev['2D transfer']['mIoU']:.3f}, 3D lifted {ev['3D lifted']['mIoU']:.3f} (LABELED.ply, labels.npz, maps/ in {OUT / 'labels'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
