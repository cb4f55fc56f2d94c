"""Random but plausible splat data for tests and benchmarks (seeded, no files needed)."""

from __future__ import annotations

import numpy as np

from masksplat_blender.core.splat_io import SplatData, inria_dtype


def make_splat_data(
    n: int, sh_degree: int = 0, seed: int = 0, extra=(), byte_order: str = "<", normals: bool = True
) -> SplatData:
    """`n` Gaussians in a unit cube with small scales, mixed opacities and random SH."""
    rng = np.random.default_rng(seed)
    vertices = np.zeros(n, dtype=inria_dtype(sh_degree, normals, byte_order, extra))
    for name in ("x", "y", "z"):
        vertices[name] = rng.uniform(-0.5, 0.5, n)
    for i in range(3):
        vertices[f"f_dc_{i}"] = rng.normal(0.0, 1.0, n)
        vertices[f"scale_{i}"] = rng.normal(np.log(0.01), 0.5, n)
    for i in range(3 * ((sh_degree + 1) ** 2 - 1)):
        vertices[f"f_rest_{i}"] = rng.normal(0.0, 0.1, n)
    vertices["opacity"] = rng.normal(0.0, 2.0, n)
    quats = rng.normal(size=(n, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    for i in range(4):
        vertices[f"rot_{i}"] = quats[:, i]
    for name, dtype in extra:
        kind = np.dtype(dtype).kind
        vertices[name] = rng.integers(0, 100, n) if kind in "iu" else rng.normal(size=n)
    return SplatData(vertices, sh_degree, "", byte_order, ["made by tests/synthetic.py"])
