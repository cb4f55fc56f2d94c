"""SPZ, compressed PLY and SOG checked against real peers: splat-transform makes each format
from real splats (SH degree 0 and 3), our decode must equal its decode of the same file, and
our exports must come back through splat-transform no worse than its own encode/decode."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import data_file
from peers import (
    decoded_by_splat_transform,
    needs_splat_transform,
    needs_spz_library,
    splat_transform,
    write_with_spz_library,
)

from masksplat_blender.core.compressed_ply import morton_order
from masksplat_blender.core.splat_io import read_splats, sigmoid, write_ply, write_splats

pytestmark = needs_splat_transform
PEER_FORMATS = {"spz4": ("spz", []), "spz3": ("spz", ["--spz-version", "3"]), "compressed": ("compressed.ply", []), "sog": ("sog", ["-g", "cpu", "-i", "1"])}  # no GPU here: CPU k-means, one pass
SH0_SUBSET = 20_000  # of the plant's 113,648 Gaussians: enough chunks and texels, quick to convert


def _sources(folder):
    plant = read_splats(data_file("padilla_plant/plant_inria_sh0.ply"))
    write_ply(folder / "sh0.ply", plant, keep=np.arange(plant.count) < SH0_SUBSET)
    write_ply(folder / "sh3.ply", read_splats(data_file("supersplat_fruit_drops/fruit_drops_minimal.ply")))
    return {"sh0": folder / "sh0.ply", "sh3": folder / "sh3.ply"}


@pytest.fixture(scope="module")
def peer_files(tmp_path_factory):
    """{source: {"source": ply, format: (file splat-transform wrote, its decode of it)}}."""
    folder = tmp_path_factory.mktemp("peer_formats")
    files = {}
    for key, source in _sources(folder).items():
        files[key] = {"source": source}
        for name, (suffix, options) in PEER_FORMATS.items():
            path = folder / f"{key}_{name}.{suffix}"
            splat_transform(*options, source, path)
            files[key][name] = (path, decoded_by_splat_transform(path, folder))
    return files


def _webp():
    from masksplat_blender.scene.images import decode_webp  # Blender's own decoder (needs bpy)

    return decode_webp


def _assert_same(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    assert ours.shape[0] == theirs.shape[0], what
    for name in ours.dtype.names:
        a, b = ours[name].astype(np.float64), theirs[name].astype(np.float64)
        if name == "opacity":  # 0 and 255 decode to -inf/+inf there, to +-13.8 here
            a, b = sigmoid(a), sigmoid(b)
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-6, err_msg=f"{what} {name}")
        else:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=f"{what} {name}")


@pytest.mark.parametrize("source", ["sh0", "sh3"])
@pytest.mark.parametrize("fmt", list(PEER_FORMATS))
def test_import_equals_splat_transforms_decode(peer_files, source, fmt):
    path, theirs = peer_files[source][fmt]
    ours = read_splats(path, decode_webp=_webp())
    assert ours.sh_degree == (3 if source == "sh3" else 0)
    assert set(ours.vertices.dtype.names) <= set(theirs.dtype.names)
    _assert_same(ours.vertices, theirs, f"{source} {fmt}")


def _errors(decoded, source: np.ndarray) -> dict[str, float]:
    """Largest error per property against the source: abs for values, alpha for opacity, angle for rotations."""
    out = {}
    for name in source.dtype.names:
        if name.startswith("rot") or name not in decoded.dtype.names:
            continue
        a, b = decoded[name].astype(np.float64), source[name].astype(np.float64)
        if name == "opacity":
            a, b = sigmoid(a), sigmoid(b)
        out[name] = float(np.abs(a - b).max())
    q_dec = np.stack([decoded[f"rot_{i}"] for i in range(4)], 1).astype(np.float64)
    q_src = np.stack([source[f"rot_{i}"] for i in range(4)], 1).astype(np.float64)
    dots = np.abs(np.einsum("ij,ij->i", q_dec / np.linalg.norm(q_dec, axis=1, keepdims=True),
                            q_src / np.linalg.norm(q_src, axis=1, keepdims=True)))  # fmt: skip
    out["rotation_degrees"] = float(np.degrees(2 * np.arccos(np.clip(dots, 0, 1))).max())
    return out


@pytest.mark.parametrize("source", ["sh0", "sh3"])
@pytest.mark.parametrize(("suffix", "peer"), [(".spz", "spz3"), (".compressed.ply", "compressed")])
def test_our_export_reads_back_in_splat_transform_as_well_as_its_own(peer_files, tmp_path, source, suffix, peer):
    data = read_splats(peer_files[source]["source"])
    out = tmp_path / f"ours{suffix}"
    (note,) = write_splats(out, data)
    assert "bits" in note
    order = morton_order(data.means()) if suffix == ".compressed.ply" else np.arange(data.count)
    expected = data.vertices[order]
    ours = _errors(decoded_by_splat_transform(out, tmp_path), expected)
    theirs = _errors(peer_files[source][peer][1], expected)
    extent = float(np.ptp(data.means(), axis=0).max())
    assert theirs["x"] < 1e-3 * extent, "splat-transform's own round trip is not in our Morton order any more"
    for name, error in ours.items():
        assert error <= theirs[name] * (1 + 1e-6) + 1e-6, f"{source} {suffix} {name}: ours {error}, theirs {theirs[name]}"


def test_our_spz_is_the_reference_encoders_bytes(peer_files, tmp_path):
    """Version 3 from us and from Niantic's encoder (inside splat-transform) decompress to the same bytes."""
    import gzip

    data = read_splats(peer_files["sh3"]["source"])
    write_splats(tmp_path / "ours.spz", data)
    ours = gzip.decompress((tmp_path / "ours.spz").read_bytes())
    theirs = gzip.decompress(peer_files["sh3"]["spz3"][0].read_bytes())
    assert ours == theirs


@needs_spz_library
@pytest.mark.parametrize("version", [2, 3, 4])
def test_spz_from_niantics_library_every_version(peer_files, tmp_path, version):
    """Version 2 stores rotations as three bytes, 3 and 4 as smallest three; 4 is zstd."""
    data = read_splats(peer_files["sh3"]["source"])
    path = tmp_path / f"v{version}.spz"
    write_with_spz_library(data, path, version, tmp_path)
    ours = read_splats(path)
    assert ours.comments[0] == f"converted from SPZ version {version} by MaskSplat"
    _assert_same(ours.vertices, decoded_by_splat_transform(path, tmp_path), f"spz v{version}")
    assert _errors(ours.vertices, data.vertices)["rotation_degrees"] < (5.0 if version == 2 else 0.5)  # v2: 8-bit x y z
