"""Random but plausible splat data for tests and benchmarks (seeded, no files needed)."""

from __future__ import annotations

import json

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


def encode_webp(pixels: np.ndarray, path, lossless: bool = True) -> None:
    """Write [H, W, 4] uint8 (top row first) as WebP with Blender's encoder (quality 100 is lossless).

    libwebp drops the colour of fully transparent texels, so keep alpha above 0 where colour matters.
    """
    import bpy

    height, width, _ = pixels.shape
    image = bpy.data.images.new("webp", width, height, alpha=True)
    try:
        image.colorspace_settings.name = "Non-Color"
        image.alpha_mode = "CHANNEL_PACKED"
        image.pixels.foreach_set((pixels[::-1].reshape(-1) / 255.0).astype(np.float32))
        image.filepath_raw = str(path)
        image.file_format = "WEBP"
        image.save(filepath=str(path), quality=100 if lossless else 80)
    finally:
        bpy.data.images.remove(image)


def tiny_sog(folder, encode, count=5, width=4, height=2, lossy=None):
    """A hand-made SOG: known codes in every image, so the decode can be checked by the spec."""
    rng = np.random.default_rng(4)
    texels = np.zeros((height * width, 4), np.uint8)

    def image(name, rgba):
        pixels = texels.copy()
        pixels[:count] = rgba
        encode(pixels.reshape(height, width, 4), folder / name, lossless=name != lossy)

    codes = {
        "means_l.webp": np.c_[rng.integers(0, 256, (count, 3)), np.full(count, 255)],
        "means_u.webp": np.c_[rng.integers(0, 256, (count, 3)), np.full(count, 255)],
        "quats.webp": np.c_[rng.integers(0, 256, (count, 3)), 252 + np.arange(count) % 4],
        "scales.webp": np.c_[rng.integers(0, 256, (count, 3)), np.full(count, 255)],
        "sh0.webp": np.c_[rng.integers(0, 256, (count, 3)), rng.integers(1, 256, count)],
        "shN_labels.webp": np.c_[np.arange(count) % 2, np.zeros((count, 2)), np.full(count, 255)],
    }
    for name, rgba in codes.items():
        image(name, rgba.astype(np.uint8))
    palette = rng.integers(0, 256, (2 * 3, 4)).astype(np.uint8)  # 2 entries x 3 coefficients (degree 1)
    palette[:, 3] = 255
    row = np.zeros((1, 64 * 3, 4), np.uint8)
    row[0, :6] = palette
    encode(row, folder / "shN_centroids.webp")
    books = {key: sorted(rng.normal(size=256).tolist()) for key in ("scales", "sh0", "shN")}
    meta = {
        "version": 2, "count": count,
        "means": {"mins": [-1.0, -2.0, 0.0], "maxs": [1.0, 2.0, 0.5], "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": books["scales"], "files": ["scales.webp"]}, "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": books["sh0"], "files": ["sh0.webp"]},
        "shN": {"count": 2, "bands": 1, "codebook": books["shN"], "files": ["shN_centroids.webp", "shN_labels.webp"]},
    }  # fmt: skip
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta, codes, palette
