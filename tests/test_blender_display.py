"""The Gaussian display in the bpy module (background mode): its settings, panel and
preference exist, nothing is drawn or registered and nothing fails, the points step back
under it, and what it packs is what the object holds. Drawing itself needs a window: the
window tests compare render_offscreen with the backend's render."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from conftest import ROOT

from masksplat_blender.core import splat_display as packing
from masksplat_blender.core.tint import tint_colours


def _display(installed_addon):
    return importlib.import_module(f"{installed_addon.__name__}.ui.splat_display")


def _import(blend, path):
    assert blend.ops.masksplat.import_splats(filepath=str(path)) == {"FINISHED"}
    return blend.context.active_object


def _first_ply(folder):
    plys = sorted(folder.glob("*.ply"))
    if not plys:
        pytest.skip(f"no splat file in {folder}")
    return plys[0]


def test_settings_panel_and_preference_exist(blend, installed_addon):
    obj = _import(blend, _first_ply(ROOT / "tests" / "data" / "donut_plant"))
    props = obj.masksplat
    assert props.show_splats is True and props.splat_scale == 1.0 and props.view_dependent is False
    assert props.bl_rna.properties["show_splats"].name == "Splat Display"
    assert props.bl_rna.properties["splat_scale"].name == "Splat Scale"
    assert props.bl_rna.properties["view_dependent"].name == "View-Dependent Colour"
    assert hasattr(blend.types, "MASKSPLAT_PT_display")
    prefs = blend.context.preferences.addons[installed_addon.__name__].preferences
    assert prefs.resort_angle == pytest.approx(np.radians(2.0))


def test_background_mode_registers_no_drawing_and_fails_nothing(blend, installed_addon):
    display = _display(installed_addon)
    assert blend.app.background
    assert display._STATE["handle"] is None, "no draw handler in background mode"
    assert display._on_depsgraph_update not in blend.app.handlers.depsgraph_update_post
    obj = _import(blend, _first_ply(ROOT / "tests" / "data" / "donut_plant"))
    obj.masksplat.splat_scale = 0.5
    obj.masksplat.show_splats = False
    obj.masksplat.show_splats = True
    blend.context.view_layer.update()
    with pytest.raises(RuntimeError, match="background mode"):
        display.render_offscreen([obj], np.eye(4), np.eye(4), 8, 8)
    stats = display.display_stats()
    assert stats["gaussians_drawn"] == 0 and stats["gpu_bytes"] == 0 and stats["busy"] is False


def _point_radii(blend, obj):
    geometry = obj.evaluated_get(blend.context.evaluated_depsgraph_get()).evaluated_geometry()
    radii = np.empty(len(obj.data.vertices), dtype=np.float32)
    geometry.pointcloud.attributes["radius"].data.foreach_get("value", radii)
    return radii


def test_points_step_back_under_the_splat_display(blend, installed_addon):
    from masksplat_blender.scene.display import POINTS_ALONE, POINTS_UNDER_SPLATS

    obj = _import(blend, _first_ply(ROOT / "tests" / "data" / "donut_plant"))
    scales = np.empty(len(obj.data.vertices) * 3, np.float32)
    for i in range(3):
        part = np.empty(len(obj.data.vertices), np.float32)
        obj.data.attributes[f"scale_{i}"].data.foreach_get("value", part)
        scales[i :: 3] = part
    largest = np.exp(scales.reshape(-1, 3).max(axis=1))
    np.testing.assert_allclose(_point_radii(blend, obj), POINTS_UNDER_SPLATS * largest, rtol=1e-4)
    obj.masksplat.show_splats = False
    np.testing.assert_allclose(_point_radii(blend, obj), POINTS_ALONE * largest, rtol=1e-4)
    assert len(obj.data.vertices) == len(_point_radii(blend, obj)), "the points stay for picking"


def test_packed_data_is_the_objects_with_tint_and_labels(blend, installed_addon):
    display = _display(installed_addon)
    obj = _import(blend, _first_ply(ROOT / "tests" / "data" / "donut_plant"))
    n = len(obj.data.vertices)
    selected = np.zeros(n, dtype=bool)
    selected[::7] = True
    installed_scene = importlib.import_module(f"{installed_addon.__name__}.scene.selection")
    installed_scene.set_vertex_selection(obj, selected)
    inputs = importlib.import_module(f"{installed_addon.__name__}.scene.display").display_inputs(obj)
    np.testing.assert_array_equal(inputs["selected"], selected)
    result = display._pack(inputs)
    texels = result["texels"]
    positions = np.empty(n * 3, np.float32)
    obj.data.attributes["position"].data.foreach_get("vector", positions)
    np.testing.assert_array_equal(texels[0, :n, :3], positions.reshape(n, 3))
    expected = tint_colours(packing.base_colours(inputs["f_dc"]), selected)
    np.testing.assert_allclose(texels[3, :n, :3], expected, atol=1e-6)
    obj.masksplat.show_selection = False
    assert importlib.import_module(f"{installed_addon.__name__}.scene.display").display_inputs(obj)["selected"] is None


def test_view_dependent_colour_reads_the_higher_bands(blend, installed_addon, tmp_path):
    from synthetic import make_splat_data

    from masksplat_blender.core.splat_io import write_ply

    path = tmp_path / "sh3.ply"
    data = make_splat_data(300, sh_degree=3, seed=2)
    write_ply(path, data)
    obj = _import(blend, path)
    scene_display = importlib.import_module(f"{installed_addon.__name__}.scene.display")
    assert scene_display.display_inputs(obj)["f_rest"] is None
    obj.masksplat.view_dependent = True
    inputs = scene_display.display_inputs(obj)
    np.testing.assert_array_equal(inputs["f_rest"], data.f_rest())
    eye = np.array([2.0, 1.0, -3.0])
    colours = _display(installed_addon)._colours(inputs, eye)
    np.testing.assert_allclose(colours, packing.sh_colours(data.sh(), data.means(), eye), atol=1e-6)


def _read_as_the_timer_does(display, obj):
    """The display timer's main-thread part for `obj` (reads spread over ticks, then the worker's
    pack); the upload needs a window. Returns the pack, or None when nothing was read."""
    display.mark_changed(obj.name)
    display._DIRTY.add(obj.name)
    display._start_packs()
    pending = display._PENDING.get(obj.name)
    while pending is not None and pending.steps is not None:
        display._read_steps(obj.name, pending, deadline=0.0)  # one step a tick at most
        pending = display._PENDING.get(obj.name)
    result = pending.job.result(timeout=60) if pending is not None else None
    display._PENDING.pop(obj.name, None)
    return result


def test_edit_mode_delete_reads_the_edited_points(blend, installed_addon):
    """Tab, select, X > Vertices: the display reads the evaluated points (no KeyError from the
    mesh's attributes, which live in the edit mesh then), and the mesh again after Edit Mode."""
    display = _display(installed_addon)
    obj = _import(blend, _first_ply(ROOT / "tests" / "data" / "donut_plant"))
    n = len(obj.data.vertices)
    blend.ops.object.mode_set(mode="EDIT")
    blend.ops.mesh.select_all(action="DESELECT")
    blend.ops.object.mode_set(mode="OBJECT")
    chosen = np.zeros(n, dtype=bool)
    chosen[::5] = True
    obj.data.vertices.foreach_set("select", chosen)
    blend.ops.object.mode_set(mode="EDIT")
    blend.ops.mesh.delete(type="VERT")
    blend.context.view_layer.update()
    edited = _read_as_the_timer_does(display, obj)
    assert edited is not None and len(edited["means"]) == n - chosen.sum(), "Delete in Edit Mode shows at once"
    blend.ops.object.mode_set(mode="OBJECT")
    after = _read_as_the_timer_does(display, obj)
    assert len(obj.data.vertices) == n - chosen.sum()
    np.testing.assert_array_equal(after["means"], edited["means"])
    positions = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.attributes["position"].data.foreach_get("vector", positions)
    np.testing.assert_array_equal(after["means"], positions.reshape(-1, 3))
