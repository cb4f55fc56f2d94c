"""Compressed splat formats without any peer tool: round trips within each format's stated
steps, the SPZ coordinate-system extension, real PlayCanvas files against their shipped
decompressions, the format dispatch, and one clear error for each kind of bad file."""

from __future__ import annotations

import gzip
import json
import struct
import zipfile

import numpy as np
import pytest
from conftest import data_file
from synthetic import make_splat_data, tiny_sog

from masksplat_blender.core import spz
from masksplat_blender.core.compressed_ply import morton_order
from masksplat_blender.core.sh_rotation import eval_sh
from masksplat_blender.core.splat_io import (
    SplatFileError,
    output_format,
    read_splats,
    sigmoid,
    splat_name,
    write_splats,
)
from masksplat_blender.core.transform import quat_to_matrix


def _data(n: int, degree: int, seed: int = 0, extra=()):
    data = make_splat_data(n, degree, seed=seed, normals=False, extra=extra)
    for i in range(3):  # SPZ's colour byte covers f_dc in about +-3.3
        data.vertices[f"f_dc_{i}"] = np.clip(data.vertices[f"f_dc_{i}"], -3.0, 3.0)
    return data


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = (q / np.linalg.norm(q, axis=1, keepdims=True) for q in (a.astype(np.float64), b.astype(np.float64)))
    return np.degrees(2 * np.arccos(np.clip(np.abs(np.einsum("ij,ij->i", a, b)), 0, 1)))


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_spz_round_trip_within_the_formats_steps(tmp_path, degree):
    data = _data(3000, degree, seed=degree)
    notes = write_splats(tmp_path / "s.spz", data)
    assert len(notes) == 1 and "24-bit fixed point (1/4096 unit steps)" in notes[0]
    back = read_splats(tmp_path / "s.spz")
    assert back.sh_degree == degree and back.count == data.count
    assert list(back.vertices.dtype.names) == [n for n in data.vertices.dtype.names]
    assert np.abs(back.means() - data.means()).max() <= 0.5 / 4096 + 1e-7
    assert np.abs(back.f_dc() - data.f_dc()).max() <= 0.5 / (0.15 * 255) + 1e-6
    assert np.abs(back.log_scales() - data.log_scales()).max() <= 1 / 32 + 1e-6
    assert np.abs(sigmoid(back.opacity_logits()) - sigmoid(data.opacity_logits())).max() <= 0.5 / 255 + 1e-6
    assert _angles(back.quats_wxyz(), data.quats_wxyz()).max() < 0.3
    assert back.f_rest().shape == (data.count, (degree + 1) ** 2 - 1, 3)
    if degree:
        error = np.abs(back.f_rest() - data.f_rest())
        assert error[:, :3].max() <= 4.5 / 128 and error.max() <= 8.5 / 128  # 5 and 4 bits
    write_splats(tmp_path / "again.spz", back)  # decoded values re-encode to the same codes
    (head, first), (head_again, again) = _streams(tmp_path / "s.spz"), _streams(tmp_path / "again.spz")
    assert head == head_again and [s for i, s in enumerate(first) if i != 4] == [s for i, s in enumerate(again) if i != 4]
    assert _angles(read_splats(tmp_path / "again.spz").quats_wxyz(), back.quats_wxyz()).max() < 0.3  # 9-bit magnitudes


def test_spz_gives_far_positions_fewer_fraction_bits_instead_of_wrapping(tmp_path):
    data = _data(500, 0)
    data.vertices["x"] *= 10_000  # +-5000 units: 12 fraction bits would overflow 24 bits
    (note,) = write_splats(tmp_path / "far.spz", data)
    assert "1/1024 unit steps" in note
    assert np.abs(read_splats(tmp_path / "far.spz").means() - data.means()).max() <= 0.5 / 1024 + 1e-6


def _streams(path):
    """Header fields and the six attribute streams of one of our version 3 files."""
    raw = gzip.decompress(path.read_bytes())
    count, degree = struct.unpack_from("<IB", raw, 8)
    sizes = [9 * count, count, 3 * count, 3 * count, 4 * count, 3 * ((degree + 1) ** 2 - 1) * count]
    offsets = np.cumsum([16, *sizes])
    return raw[:16], [raw[offsets[i] : offsets[i + 1]] for i in range(6)]


def _as_version_4(path, out, truncate_toc: bool = False):
    """Repack a version 3 file as version 4 (32-byte header, table of contents, zstd streams)."""
    import zstandard

    head, streams = _streams(path)
    streams = [s for s in streams if s]
    blobs = [zstandard.ZstdCompressor(level=3).compress(s) for s in streams]
    header = b"NGSP" + struct.pack("<I", 4) + head[8:14] + struct.pack("<BBI", 0, len(blobs), 32) + bytes(12)
    toc = b"".join(struct.pack("<QQ", len(b), len(s)) for b, s in zip(blobs, streams, strict=True))
    out.write_bytes((header + toc)[: 40 if truncate_toc else None] + (b"" if truncate_toc else b"".join(blobs)))


def test_spz_version_4_reads_with_every_zstd_decoder_here(tmp_path):
    data = _data(2000, 3)
    write_splats(tmp_path / "v3.spz", data)
    _as_version_4(tmp_path / "v3.spz", tmp_path / "v4.spz")
    expected = read_splats(tmp_path / "v3.spz").vertices
    decoders = spz.zstd_decompressors()
    assert decoders, "no zstd decoder: neither compression.zstd, zstandard nor libzstd"
    raw, (_, streams) = (tmp_path / "v4.spz").read_bytes(), _streams(tmp_path / "v3.spz")
    first = struct.unpack_from("<Q", raw, 32)[0]  # the positions stream follows 6 table entries
    for name, decompress in decoders.items():
        assert bytes(decompress(raw[32 + 16 * 6 : 32 + 16 * 6 + first], 9 * data.count)) == streams[0], name
    assert read_splats(tmp_path / "v4.spz").vertices.tobytes() == expected.tobytes()


def _with_coordinate_extension(path, out, code: int):
    head, streams = _streams(path)
    head = head[:14] + bytes([head[14] | spz.FLAG_EXTENSIONS]) + head[15:]
    record = struct.pack("<III", spz.COORDINATE_EXTENSION, 4, code)
    out.write_bytes(gzip.compress(head + b"".join(streams) + record))


@pytest.mark.parametrize("system", ["RDF", "RUB", "RUF", "RFU", "LBD"])
def test_spz_coordinate_system_extension_converts_to_rdf(tmp_path, system):
    """Positions, covariances and view-dependent colour all land where the named frame says."""
    data = _data(400, 3, seed=7)
    write_splats(tmp_path / "plain.spz", data)
    code = next(c for c, name in spz.COORDINATE_SYSTEMS.items() if name == system)
    _with_coordinate_extension(tmp_path / "plain.spz", tmp_path / "framed.spz", code)
    stored, converted = read_splats(tmp_path / "plain.spz"), read_splats(tmp_path / "framed.spz")
    turn = spz.frame_to_rdf(system)
    np.testing.assert_allclose(converted.means(), stored.means() @ turn.T, atol=1e-5)

    def covariance(d):
        frames = quat_to_matrix(d.quats_wxyz().astype(np.float64))
        return frames * np.exp(2 * d.log_scales().astype(np.float64))[:, None, :] @ frames.transpose(0, 2, 1)

    np.testing.assert_allclose(covariance(converted), turn @ covariance(stored) @ turn.T, atol=1e-7, rtol=1e-4)
    dirs = np.random.default_rng(1).normal(size=(data.count, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    np.testing.assert_allclose(eval_sh(converted.sh(), dirs), eval_sh(stored.sh(), dirs @ turn), atol=1e-4)
    assert (system == "RDF") == (converted.comments == stored.comments)


@pytest.mark.parametrize("degree", [0, 3])
def test_compressed_ply_round_trip_in_morton_order(tmp_path, degree):
    data = _data(1000, degree, seed=3)  # not a multiple of 256: the last chunk is padded
    (note,) = write_splats(tmp_path / "c.compressed.ply", data, keep=np.arange(1000) < 900)
    assert "Morton order" in note
    kept = data.vertices[:900]
    back = read_splats(tmp_path / "c.compressed.ply")
    order = morton_order(np.stack([kept[a] for a in "xyz"], 1))
    assert sorted(order) == list(range(900))
    expected = kept[order]
    for axis in "xyz":  # at least 10 bits across each chunk of 256 neighbours
        chunks = [expected[axis][i : i + 256] for i in range(0, 900, 256)]
        half_step = np.repeat([np.ptp(c) / 1023 / 2 for c in chunks], [len(c) for c in chunks])
        assert (np.abs(back.vertices[axis] - expected[axis]) <= half_step + 1e-6).all(), axis
    alpha = np.abs(sigmoid(back.vertices["opacity"]) - sigmoid(expected["opacity"]))
    assert alpha.max() <= 0.5 / 255 + 1e-6
    assert _angles(back.quats_wxyz(), np.stack([expected[f"rot_{i}"] for i in range(4)], 1)).max() < 0.3
    if degree:
        rest = np.stack([back.vertices[f"f_rest_{i}"] - expected[f"f_rest_{i}"] for i in range(45)], 1)
        assert np.abs(rest).max() <= 8 / 256 + 1e-6


@pytest.mark.parametrize("name", ["playcanvas_guitar/guitar", "playcanvas_biker/biker"])
def test_real_compressed_plys_equal_their_shipped_decompression(name):
    import plyfile

    ours = read_splats(data_file(f"{name}.compressed.ply"))
    shipped = plyfile.PlyData.read(str(data_file(f"{name}_inria_sh0.ply")))["vertex"].data  # has +-inf opacities
    assert ours.count == len(shipped) and ours.comments == ["Generated by SuperSplat 2.7.1"]
    for field in ours.vertices.dtype.names:
        a, b = ours.vertices[field].astype(np.float64), shipped[field].astype(np.float64)
        if field == "opacity":
            a, b = sigmoid(a), sigmoid(b)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=2e-6, err_msg=field)


def test_formats_by_name_and_what_cannot_be_written(tmp_path):
    assert output_format("a.compressed.ply").key == "compressed_ply"
    assert output_format("A.PLY").key == "ply" and output_format("x.spz").key == "spz"
    with pytest.raises(SplatFileError, match="reads but does not write PlayCanvas SOG"):
        write_splats(tmp_path / "x.sog", _data(10, 0))
    with pytest.raises(SplatFileError, match="unknown splat file extension"):
        write_splats(tmp_path / "x.txt", _data(10, 0))
    assert not list(tmp_path.iterdir())
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "meta.json").write_text("{}")
    assert [splat_name(p) for p in ("a/plant.compressed.ply", "b.spz", tmp_path / "scan", tmp_path / "scan" / "meta.json")] == [
        "plant", "b", "scan", "scan"
    ]  # fmt: skip


def test_lossy_export_says_which_properties_it_leaves_out(tmp_path):
    data = _data(300, 1, extra=(("ms_label", "i4"), ("confidence", "f4")))
    (note,) = write_splats(tmp_path / "s.spz", data)
    assert note.startswith("Niantic SPZ: ") and "other 2 properties (ms_label, confidence)" in note


def _gzip_spz(header_fields, body=b""):
    return gzip.compress(struct.pack("<4sIIBBBB", *header_fields) + body)


BAD_SPZ = {
    "gzip without NGSP": (gzip.compress(b"hello world, not splats"), "not an SPZ file"),
    "unknown version": (_gzip_spz((b"NGSP", 7, 10, 0, 12, 0, 0)), "SPZ version 7 is not supported"),
    "SH degree 4": (_gzip_spz((b"NGSP", 3, 10, 4, 12, 0, 0)), "SH degree 4 is not supported"),
    "truncated": (_gzip_spz((b"NGSP", 3, 10, 0, 12, 0, 0), bytes(50)), "truncated: 10 Gaussians need 200 bytes"),
    "bomb": (_gzip_spz((b"NGSP", 3, 2_000_000_000, 0, 12, 0, 0)), "promises 2,000,000,000 Gaussians"),
    "corrupt gzip": (b"\x1f\x8b" + bytes(40), "corrupt gzip data"),
    "short NGSP": (b"NGSP" + bytes(10), "truncated SPZ header"),
}


@pytest.mark.parametrize("case", list(BAD_SPZ))
def test_bad_spz_files_get_one_clear_error(tmp_path, case):
    raw, expected = BAD_SPZ[case]
    (tmp_path / "bad.spz").write_bytes(raw)
    with pytest.raises(SplatFileError, match=f"^bad.spz: .*{expected}"):
        read_splats(tmp_path / "bad.spz")


def test_bad_spz_version_4_containers(tmp_path):
    write_splats(tmp_path / "v3.spz", _data(300, 1))
    _as_version_4(tmp_path / "v3.spz", tmp_path / "cut.spz", truncate_toc=True)
    with pytest.raises(SplatFileError, match="table of contents lies past the end"):
        read_splats(tmp_path / "cut.spz")
    _as_version_4(tmp_path / "v3.spz", tmp_path / "v4.spz")
    raw = bytearray((tmp_path / "v4.spz").read_bytes())
    struct.pack_into("<Q", raw, 32 + 8, 12345)  # the positions stream claims the wrong size
    (tmp_path / "lie.spz").write_bytes(bytes(raw))
    with pytest.raises(SplatFileError, match="stream 0 holds 12,345 bytes where 300 Gaussians need 2,700"):
        read_splats(tmp_path / "lie.spz")
    raw = (tmp_path / "v4.spz").read_bytes()
    (tmp_path / "damaged.spz").write_bytes(raw[: 32 + 16 * 6] + bytes(len(raw) - 32 - 16 * 6))
    with pytest.raises(SplatFileError, match="corrupt zstd stream"):
        read_splats(tmp_path / "damaged.spz")


def test_bad_compressed_plys(tmp_path):
    data = _data(600, 1)
    write_splats(tmp_path / "ok.compressed.ply", data)
    raw = (tmp_path / "ok.compressed.ply").read_bytes()
    (tmp_path / "cut.compressed.ply").write_bytes(raw[:-100])
    with pytest.raises(SplatFileError, match="^cut.compressed.ply: truncated"):
        read_splats(tmp_path / "cut.compressed.ply")
    (tmp_path / "chunks.compressed.ply").write_bytes(raw.replace(b"element chunk 3", b"element chunk 2", 1))
    with pytest.raises(SplatFileError, match="2 chunks for 600 Gaussians"):
        read_splats(tmp_path / "chunks.compressed.ply")
    (tmp_path / "odd.compressed.ply").write_bytes(raw.replace(b"packed_rotation", b"packed_rotatio_", 1))
    with pytest.raises(SplatFileError, match="vertex element needs uint properties"):
        read_splats(tmp_path / "odd.compressed.ply")


# --- SOG: images through Blender's own WebP encoder and decoder -------------------------------


def _bundle(folder, out, leave_out=()):
    with zipfile.ZipFile(out, "w") as bundle:
        for file in sorted(folder.iterdir()):
            if file.name not in leave_out:
                bundle.write(file, file.name)


def test_sog_decodes_by_the_spec_as_folder_meta_json_and_bundle(tmp_path, webp):
    encode, decode = webp
    folder = tmp_path / "scene"
    folder.mkdir()
    meta, codes, palette = tiny_sog(folder, encode)
    _bundle(folder, tmp_path / "scene.sog")
    results = [read_splats(p, decode_webp=decode) for p in (folder, folder / "meta.json", tmp_path / "scene.sog")]
    assert results[0].vertices.tobytes() == results[1].vertices.tobytes() == results[2].vertices.tobytes()
    got = results[0]
    assert got.count == 5 and got.sh_degree == 1
    encoded = (codes["means_l.webp"][:, :3] + 256 * codes["means_u.webp"][:, :3].astype(np.int64)) / 65535
    logged = np.array(meta["means"]["mins"]) + encoded * (np.array(meta["means"]["maxs"]) - meta["means"]["mins"])
    np.testing.assert_allclose(got.means(), np.sign(logged) * np.expm1(np.abs(logged)), rtol=1e-6)
    np.testing.assert_array_equal(got.log_scales(), np.float32(meta["scales"]["codebook"])[codes["scales.webp"][:, :3]])
    np.testing.assert_array_equal(got.f_dc(), np.float32(meta["sh0"]["codebook"])[codes["sh0.webp"][:, :3]])
    np.testing.assert_allclose(sigmoid(got.opacity_logits()), codes["sh0.webp"][:, 3] / 255, atol=1e-6)
    stored = (codes["quats.webp"][:, :3] / 255 * 2 - 1) / np.sqrt(2)
    for i, largest in enumerate(np.arange(5) % 4):  # the tag names the rebuilt, non-negative component
        others = [c for c in range(4) if c != largest]
        np.testing.assert_allclose(got.quats_wxyz()[i, others], stored[i], atol=1e-6)
        assert got.quats_wxyz()[i, largest] == pytest.approx(np.sqrt(max(0.0, 1 - stored[i] @ stored[i])), abs=1e-6)
    entry = palette[:, :3].reshape(2, 3, 3)[np.arange(5) % 2]  # [N, coefficient, rgb]
    np.testing.assert_array_equal(got.f_rest(), np.float32(meta["shN"]["codebook"])[entry])


@pytest.mark.parametrize(
    "case",
    ["no meta.json", "version 1", "version 3", "lossy image", "image too small", "image too large", "not webp", "bad json", "bad label"],
)
def test_bad_sog_files_get_one_clear_error(tmp_path, webp, case):
    encode, decode = webp
    folder = tmp_path / "scene"
    folder.mkdir()
    meta, codes, _ = tiny_sog(folder, encode, lossy="scales.webp" if case == "lossy image" else None)
    expected = {
        "no meta.json": "the bundle has no meta.json",
        "version 1": "SOG version 1 is not supported",
        "version 3": "SOG version 3 is not supported",
        "lossy image": "scales.webp is a lossy WebP",
        "image too small": "quats.webp is 2x2, not the size meta.json's count calls for",
        "image too large": "quats.webp is 400x400, not the size",
        "not webp": "sh0.webp is not a WebP image",
        "bad json": "meta.json is not valid JSON",
        "bad label": "an SH label points past the 2-entry palette",
    }[case]
    if case.startswith("version"):
        meta.pop("version") if case == "version 1" else meta.update(version=3)
        (folder / "meta.json").write_text(json.dumps(meta))
    elif case == "image too small":
        encode(np.full((2, 2, 4), 252, np.uint8), folder / "quats.webp")
    elif case == "image too large":  # 160,000 texels for 5 Gaussians: refused before decoding
        encode(np.full((400, 400, 4), 252, np.uint8), folder / "quats.webp")
    elif case == "not webp":
        (folder / "sh0.webp").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    elif case == "bad json":
        (folder / "meta.json").write_text("{'count': 5")
    elif case == "bad label":
        pixels = np.zeros((2, 4, 4), np.uint8)
        pixels[..., 0], pixels[..., 3] = 7, 255
        encode(pixels, folder / "shN_labels.webp")
    _bundle(folder, tmp_path / "bad.sog", leave_out=("meta.json",) if case == "no meta.json" else ())
    with pytest.raises(SplatFileError, match=f"^bad.sog: .*{expected}"):
        read_splats(tmp_path / "bad.sog", decode_webp=decode)
