"""How donut.ply and plant.ply were made from ../shared/data (run once; the demo uses the results).

    .venv/bin/python tests/data/donut_plant/make_donut_plant.py

Each splat keeps its most opaque Gaussians (ties in file order). Kept Gaussians are
bit-identical to the source, in source order; the plant's normals (all zero) are dropped
so both files share one 14-property layout and can be stacked into one scene.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

from masksplat_blender.core.splat_io import SplatData, inria_dtype, read_splats, write_ply  # noqa: E402

SOURCES = {  # name: (file under ../shared/data, Gaussians kept, provenance written into the file)
    "donut": ("gshairlod_donut/fused.ply", 12_000, "donut from github.com/douglas0406/GSHairLoD (MIT), thinned by MaskSplat"),
    "plant": ("padilla_plant/plant_inria_sh0.ply", 36_000, "Houseplant by Marcel Padilla (CC-BY-4.0), thinned by MaskSplat"),
}


def main() -> int:
    for name, (source, keep_count, comment) in SOURCES.items():
        data = read_splats(DATA / source)
        keep = np.zeros(data.count, bool)
        keep[np.argsort(-data.opacity_logits(), kind="stable")[:keep_count]] = True
        vertices = np.empty(keep_count, inria_dtype(0, normals=False))
        for field in vertices.dtype.names:
            vertices[field] = data.vertices[field][keep]
        write_ply(HERE / f"{name}.ply", SplatData(vertices, 0, comments=[comment]))
        print(f"{name}: kept the {keep_count:,} most opaque of {data.count:,} Gaussians")
    return 0


if __name__ == "__main__":
    sys.exit(main())
