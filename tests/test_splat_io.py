"""Splat file I/O: lossless round trips and one clear error for each kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA_DIR, data_file
from synthetic import make_splat_data

from masksplat_blender.core.splat_io import (
    SplatFileError,
    inria_dtype,
    read_splats,
    write_ply,
    write_ply_columns,
)

INRIA = sorted(p.relative_to(DATA_DIR).as_posix() for p in DATA_DIR.glob("*/*.ply") if "compressed" not in p.name) or [
    "gshairlod_donut/fused.ply"
]


def _body(path):
    raw = path.read_bytes()
    return raw[raw.index(b"end_header\n") + len(b"end_header\n") :]


@pytest.mark.parametrize("relative", INRIA)
def test_real_files_round_trip_byte_identical(tmp_path, relative):
    source = data_file(relative)
    data = read_splats(source)
    out = tmp_path / "out.ply"
    write_ply(out, data)
    assert _body(out) == _body(source)
    again = read_splats(out)
    assert again.vertices.dtype == data.vertices.dtype
    assert again.sh_degree == data.sh_degree


def test_sh_degree_and_extra_property_of_real_file():
    data = read_splats(data_file("supersplat_fruit_drops/fruit_drops_minimal.ply"))
    assert data.sh_degree == 3 and data.count == 4721
    assert data.vertices.dtype.names[-1] == "transform"
    assert data.f_rest().shape == (4721, 15, 3)
    assert data.sh().shape == (4721, 16, 3)
    # channel-major in the file: f_rest_15 is green's first coefficient
    np.testing.assert_array_equal(data.f_rest()[:, 0, 1], data.vertices["f_rest_15"])


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_synthetic_round_trip_all_degrees_both_byte_orders(tmp_path, degree, byte_order):
    extra = (("label", "u1"), ("track_id", "i4"), ("weight", "f8"), ("bits", "u4"))
    data = make_splat_data(500, degree, seed=degree, extra=extra, byte_order=byte_order, normals=degree % 2 == 0)
    path = tmp_path / "s.ply"
    write_ply(path, data)
    back = read_splats(path)
    assert back.sh_degree == degree and back.byte_order == byte_order
    assert back.vertices.dtype == data.vertices.dtype
    assert back.vertices.tobytes() == data.vertices.tobytes()
    assert any("double-precision" in w for w in back.warnings)
    np.testing.assert_array_equal(back.means(), data.means())


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_streaming_column_writer_writes_the_same_bytes(tmp_path, byte_order):
    """Export streams one array per property to the file in blocks: same bytes as write_ply,
    also across block borders, with a keep mask and for every property type."""
    extra = (("label", "u1"), ("track_id", "i4"), ("weight", "f8"), ("bits", "u4"))
    data = make_splat_data(1000, 2, seed=7, extra=extra, byte_order=byte_order)
    columns = {name: data.vertices[name].astype(data.vertices.dtype.fields[name][0].newbyteorder("=")) for name in data.vertices.dtype.names}
    keep = np.arange(1000) % 7 != 3
    write_ply(tmp_path / "table.ply", data, keep=keep)
    write_ply_columns(tmp_path / "columns.ply", data.vertices.dtype, columns, byte_order, data.comments, keep=keep, block=64)
    assert (tmp_path / "columns.ply").read_bytes() == (tmp_path / "table.ply").read_bytes()
    with pytest.raises(SplatFileError, match="zero Gaussians"):
        write_ply_columns(tmp_path / "none.ply", data.vertices.dtype, columns, keep=np.zeros(1000, bool))
    assert not (tmp_path / "none.ply").exists()


def test_keep_mask_writes_the_rest_in_order(tmp_path):
    data = make_splat_data(100, 1)
    keep = np.arange(100) % 3 != 0
    write_ply(tmp_path / "k.ply", data, keep=keep)
    back = read_splats(tmp_path / "k.ply")
    assert back.vertices.tobytes() == data.vertices[keep].tobytes()
    with pytest.raises(SplatFileError, match="keep must be a bool"):
        write_ply(tmp_path / "k.ply", data, keep=keep[:10])
    with pytest.raises(SplatFileError, match="zero Gaussians"):
        write_ply(tmp_path / "k.ply", data, keep=np.zeros(100, bool))


def test_splat_format_matches_its_inria_conversion():
    splat = read_splats(data_file("padilla_plant/plant.splat"))
    ply = read_splats(data_file("padilla_plant/plant_inria_sh0.ply"))
    assert splat.count == ply.count == 113648
    np.testing.assert_array_equal(splat.means(), ply.means())
    np.testing.assert_allclose(splat.log_scales(), ply.log_scales(), atol=1e-5)
    np.testing.assert_allclose(splat.colors_rgb(), ply.colors_rgb(), atol=1e-6)
    sig = lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))  # noqa: E731
    np.testing.assert_allclose(sig(splat.opacity_logits()), sig(ply.opacity_logits()), atol=1 / 255)
    q1, q2 = splat.quats_wxyz(), ply.quats_wxyz()
    q2 = q2 / np.linalg.norm(q2, axis=1, keepdims=True)
    assert np.abs(np.abs((q1 * q2).sum(1)) - 1).max() < 1e-5


def _ply(header_lines, body=b""):
    return ("\n".join(["ply", *header_lines, "end_header"]) + "\n").encode() + body


GOOD = ["format binary_little_endian 1.0", "element vertex 2"] + [
    f"property float {n}" for n in inria_dtype(0, False).names
]
BODY = np.zeros(2, dtype=inria_dtype(0, False)).tobytes()

BAD = {
    "not a PLY": (b"solid cube\nfacet normal\n", "not a PLY"),
    "ascii": (_ply(["format ascii 1.0", *GOOD[1:]], b"0 " * 28), "ASCII"),
    "truncated": (_ply(GOOD, BODY[:-7]), "truncated"),
    "count past end": (_ply([GOOD[0], "element vertex 1000", *GOOD[2:]], BODY), "promises 1,000"),
    "missing": (_ply([g for g in GOOD if "rot_3" not in g and "opacity" not in g], BODY[:-16]), "opacity, rot_3"),
    "int type": (_ply([g.replace("float opacity", "int opacity") for g in GOOD], BODY), "must be float"),
    "zero": (_ply([GOOD[0], "element vertex 0", *GOOD[2:]]), "zero Gaussians"),
    "face": (_ply([*GOOD, "element face 1", "property list uchar int vertex_indices"], BODY), "list property"),
    "face2": (_ply([*GOOD, "element face 1", "property int a"], BODY + b"\0" * 4), "unexpected element"),
    "rest count": (_ply([*GOOD, "property float f_rest_0"], b""), "f_rest"),
    "empty": (b"", "empty"),
    "no end": (b"ply\nformat binary_little_endian 1.0\n", "end_header"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_get_clear_errors(tmp_path, case):
    raw, expected = BAD[case]
    path = tmp_path / "bad_file.ply"
    path.write_bytes(raw)
    with pytest.raises(SplatFileError) as err:
        read_splats(path)
    assert "bad_file.ply" in str(err.value)
    assert expected in str(err.value)


def test_missing_file_and_bad_splat(tmp_path):
    with pytest.raises(SplatFileError, match="not found"):
        read_splats(tmp_path / "nope.ply")
    (tmp_path / "odd.splat").write_bytes(b"\0" * 33)
    with pytest.raises(SplatFileError, match="multiple of 32"):
        read_splats(tmp_path / "odd.splat")


def test_nan_and_inf_refused_with_count_or_dropped(tmp_path):
    data = make_splat_data(50, 2)
    data.vertices["opacity"][3] = np.nan
    data.vertices["f_rest_7"][10] = np.inf
    data.vertices["x"][10] = np.nan
    data.vertices["scale_2"][20] = -np.inf
    write_ply(tmp_path / "n.ply", data)
    with pytest.raises(SplatFileError, match="^n.ply: 3 Gaussians have NaN or Inf"):
        read_splats(tmp_path / "n.ply")
    dropped = read_splats(tmp_path / "n.ply", drop_invalid=True)
    assert dropped.count == 47 and dropped.n_dropped == 3
    keep = np.ones(50, bool)
    keep[[3, 10, 20]] = False
    assert dropped.vertices.tobytes() == data.vertices[keep].tobytes()


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    data = make_splat_data(10, 0)
    target = tmp_path / "a.ply"
    target.write_bytes(b"old")
    with pytest.raises(SplatFileError):
        write_ply(target, data, keep=np.zeros(10, bool))
    assert target.read_bytes() == b"old"
    write_ply(target, data)
    assert [p.name for p in tmp_path.iterdir()] == ["a.ply"]


@pytest.mark.parametrize("byte_order", ["<", ">"])
@pytest.mark.parametrize("extra", [(), (("label", "u1"), ("w", "f8"))])
def test_iter_columns_gives_every_field_natively(byte_order, extra):
    from masksplat_blender.core.splat_io import iter_columns

    data = make_splat_data(20_000, 1, extra=extra, byte_order=byte_order)
    names = list(data.vertices.dtype.names)
    seen = []
    for name, column in iter_columns(data.vertices, names, block=5, rows=999):
        assert column.dtype.isnative and column.flags.c_contiguous
        np.testing.assert_array_equal(column, data.vertices[name])
        seen.append(name)
    assert seen == names
    picked = [names[5], names[2]]
    assert [n for n, _ in iter_columns(data.vertices, picked)] == picked
