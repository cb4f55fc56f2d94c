"""The installed extension's splat operators in real Blender (bpy from PyPI)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, data_file

SAMPLE = ROOT / "tests" / "data" / "fruit_drops" / "fruit_drops_minimal.ply"

INRIA_FILES = [
    "gshairlod_donut/fused.ply",
    "inria_sh3_sample/point_cloud_iteration_7000.ply",
    "padilla_plant/plant_inria_sh0.ply",
    "playcanvas_guitar/guitar_inria_sh0.ply",
    "playcanvas_biker/biker_inria_sh0.ply",
    "supersplat_fruit_drops/fruit_drops_minimal.ply",
]


def _body(path) -> bytes:
    raw = path.read_bytes()
    end = raw.index(b"end_header") + len(b"end_header")
    end = raw.index(b"\n", end) + 1
    return raw[end:]


def _data_counts(bpy):
    return (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials), len(bpy.data.node_groups))


def test_operators_come_from_installed_extension(installed_addon, blend):
    assert installed_addon.__name__ == "bl_ext.user_default.masksplat"
    for op in ("import_splats", "export_splats", "import_cameras"):
        assert hasattr(blend.ops.masksplat, op)
        assert getattr(blend.ops.masksplat, op).poll() in (True, False)


@pytest.mark.parametrize("relative", INRIA_FILES)
def test_import_export_is_byte_identical(blend, tmp_path, relative):
    source = data_file(relative)
    assert blend.ops.masksplat.import_splats(filepath=str(source)) == {"FINISHED"}
    obj = blend.context.active_object
    assert obj.type == "MESH" and obj.masksplat.is_splat
    assert len(obj.data.polygons) == 0 and len(obj.data.edges) == 0
    assert "opacity" in obj.data.attributes and "f_dc_0" in obj.data.attributes
    out = tmp_path / "out.ply"
    assert blend.ops.masksplat.export_splats(filepath=str(out)) == {"FINISHED"}
    assert _body(out) == _body(source)


def test_import_sets_up_point_display(blend, installed_addon):
    blend.ops.masksplat.import_splats(filepath=str(data_file("gshairlod_donut/fused.ply")))
    obj = blend.context.active_object
    obj.masksplat.show_splats = False  # the points as the display (under the splat display they shrink)
    modifier = obj.modifiers["MaskSplat Display"]
    assert modifier.type == "NODES" and modifier.node_group.name == "MaskSplat Display"
    depsgraph = blend.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    geometry = evaluated.evaluated_geometry()  # keep the geometry set alive while reading it
    points = geometry.pointcloud
    assert points is not None, "display modifier produced no point cloud"
    n = len(obj.data.vertices)
    assert len(points.points) == n
    colours = np.empty(n * 3, dtype=np.float32)
    points.attributes["ms_color"].data.foreach_get("vector", colours)
    f_dc = np.empty(n, dtype=np.float32)
    obj.data.attributes["f_dc_1"].data.foreach_get("value", f_dc)
    np.testing.assert_allclose(colours.reshape(n, 3)[:, 1], 0.5 + 0.28209479 * f_dc, rtol=1e-5, atol=1e-6)
    alpha = np.empty(n, dtype=np.float32)
    points.attributes["ms_alpha"].data.foreach_get("value", alpha)
    logits = np.empty(n, dtype=np.float32)
    obj.data.attributes["opacity"].data.foreach_get("value", logits)
    np.testing.assert_allclose(alpha, 1 / (1 + np.exp(-logits.astype(np.float64))), rtol=1e-4, atol=1e-6)
    radii = np.empty(n, dtype=np.float32)
    points.attributes["radius"].data.foreach_get("value", radii)
    scales = np.stack([_attr(obj, f"scale_{i}") for i in range(3)], axis=1)
    np.testing.assert_allclose(radii, 1.5 * np.exp(scales.max(axis=1)), rtol=1e-4)


def _attr(obj, name):
    values = np.empty(len(obj.data.vertices), dtype=np.float32)
    obj.data.attributes[name].data.foreach_get("value", values)
    return values


BAD_FILES = {
    "not_ply.ply": b"hello world\n",
    "ascii.ply": b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n1\n",
    "empty.ply": b"",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_reports_and_leaves_scene_unchanged(blend, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    before = _data_counts(blend)
    with pytest.raises(RuntimeError) as err:
        blend.ops.masksplat.import_splats(filepath=str(path))
    assert name in str(err.value)
    assert "Traceback" not in str(err.value)
    assert _data_counts(blend) == before


def test_nan_refused_then_dropped_on_request(blend, tmp_path):
    source = data_file("gshairlod_donut/fused.ply")
    raw = bytearray(source.read_bytes())
    header_end = raw.index(b"end_header\n") + len(b"end_header\n")
    stride = 14 * 4
    for index in (3, 10, 500):  # opacity (property 6) of three Gaussians
        offset = header_end + index * stride + 6 * 4
        raw[offset : offset + 4] = np.array([np.nan], dtype="<f4").tobytes()
    bad = tmp_path / "nan.ply"
    bad.write_bytes(bytes(raw))
    before = _data_counts(blend)
    with pytest.raises(RuntimeError, match="3 Gaussians"):
        blend.ops.masksplat.import_splats(filepath=str(bad))
    assert _data_counts(blend) == before
    assert blend.ops.masksplat.import_splats(filepath=str(bad), drop_invalid=True) == {"FINISHED"}
    assert len(blend.context.active_object.data.vertices) == 45624 - 3


def test_deleting_vertices_exports_the_rest_bit_identical(blend, tmp_path, installed_addon):
    import bmesh

    source = SAMPLE
    blend.ops.masksplat.import_splats(filepath=str(source))
    obj = blend.context.active_object
    drop = np.arange(0, len(obj.data.vertices), 7)
    bm = bmesh.new()
    bm.from_mesh(obj.data)
    bm.verts.ensure_lookup_table()
    bmesh.ops.delete(bm, geom=[bm.verts[i] for i in drop], context="VERTS")
    bm.to_mesh(obj.data)
    bm.free()
    out = tmp_path / "rest.ply"
    assert blend.ops.masksplat.export_splats(filepath=str(out)) == {"FINISHED"}
    io = installed_addon.core.splat_io
    original = io.read_splats(str(source))
    exported = io.read_splats(str(out))
    keep = np.ones(original.count, dtype=bool)
    keep[drop] = False
    assert exported.vertices.dtype == original.vertices.dtype
    assert exported.vertices.tobytes() == original.vertices[keep].tobytes()


def test_moved_object_bakes_transform_and_mirroring_is_refused(blend, tmp_path, installed_addon):
    from mathutils import Euler, Matrix, Vector

    source = SAMPLE
    blend.ops.masksplat.import_splats(filepath=str(source))
    obj = blend.context.active_object
    matrix = Matrix.LocRotScale(Vector((0.3, -1.0, 2.0)), Euler((0.4, -0.2, 1.1)), Vector((2.0, 2.0, 2.0)))
    obj.matrix_world = matrix
    out = tmp_path / "moved.ply"
    assert blend.ops.masksplat.export_splats(filepath=str(out)) == {"FINISHED"}
    core = installed_addon.core
    original = core.splat_io.read_splats(str(source))
    moved = core.splat_io.read_splats(str(out))
    expected = core.transform.apply_transform_to_vertices(original.vertices, original.sh_degree, np.array(matrix))
    for name in original.vertices.dtype.names:
        np.testing.assert_allclose(moved.vertices[name], expected[name], rtol=1e-5, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(moved.means(), original.means() @ np.array(matrix)[:3, :3].T + [0.3, -1.0, 2.0], atol=1e-4)

    obj.scale = (-1.0, 1.0, 1.0)
    before = out.read_bytes()
    with pytest.raises(RuntimeError, match="[Mm]irror"):
        blend.ops.masksplat.export_splats(filepath=str(out))
    assert out.read_bytes() == before


def test_up_axis_option_turns_object_and_round_trips(blend, tmp_path):
    source = data_file("padilla_plant/plant_inria_sh0.ply")
    blend.ops.masksplat.import_splats(filepath=str(source), axes="NEG_Y_UP")
    obj = blend.context.active_object
    up = np.array(obj.matrix_world)[:3, :3] @ np.array([0.0, -1.0, 0.0])
    np.testing.assert_allclose(up, [0.0, 0.0, 1.0], atol=1e-7)
    out = tmp_path / "plant.ply"
    blend.ops.masksplat.export_splats(filepath=str(out))
    assert _body(out) == _body(source)


def test_splat_file_import_matches_inria_conversion(blend):
    blend.ops.masksplat.import_splats(filepath=str(data_file("padilla_plant/plant.splat")))
    obj = blend.context.active_object
    assert len(obj.data.vertices) == 113648
    assert obj.masksplat.sh_degree == 0


def test_int_and_double_properties_survive_blender(blend, tmp_path):
    from synthetic import make_splat_data

    from masksplat_blender.core.splat_io import read_splats, write_ply

    extra = (("segment_id", "u1"), ("track", "i4"), ("bits", "u4"), ("weight", "f8"))
    data = make_splat_data(300, 2, seed=9, extra=extra, byte_order=">")
    data.vertices["bits"][:3] = [0, 2**31 + 5, 2**32 - 1]
    source = tmp_path / "extra.ply"
    write_ply(source, data)
    assert blend.ops.masksplat.import_splats(filepath=str(source)) == {"FINISHED"}
    obj = blend.context.active_object
    assert obj.data.attributes["track"].data_type == "INT" and obj.data.attributes["weight"].data_type == "FLOAT"
    out = tmp_path / "out.ply"
    assert blend.ops.masksplat.export_splats(filepath=str(out)) == {"FINISHED"}
    back = read_splats(out)
    assert back.vertices.dtype == data.vertices.dtype and back.byte_order == ">"
    for name in data.vertices.dtype.names:
        if name == "weight":  # float64 travels through Blender as float32
            np.testing.assert_array_equal(back.vertices[name], data.vertices[name].astype(np.float32).astype(np.float64))
        else:
            np.testing.assert_array_equal(back.vertices[name], data.vertices[name], err_msg=name)
