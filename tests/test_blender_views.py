"""Painting from any view, headless: cameras made from viewport views, the paint rule in the
operator, a clean 3D selection from three views of a real splat, and the selection shown
(tinted points, tinted preview, a preview that follows Delete)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import data_file
from scenes import SAMPLE, fruit_cameras

from masksplat_blender.client import render_views
from masksplat_blender.core.cameras import look_at
from masksplat_blender.core.masks import label_sh
from masksplat_blender.core.splat_io import SH_C0, read_splats
from masksplat_blender.core.tint import tint_colours
from masksplat_blender.core.views import BLENDER_TO_OPENCV, viewport_projection

DONUT = "gshairlod_donut/fused.ply"


def _selected(obj):
    values = np.zeros(len(obj.data.vertices), bool)
    obj.data.vertices.foreach_get("select", values)
    return values


def _import(blend, path):
    assert blend.ops.masksplat.import_splats(filepath=str(path)) == {"FINISHED"}
    return blend.context.active_object


def _view(eye, target):
    """Blender's view matrix (world to view) of a viewport looking from `eye` at `target`."""
    return BLENDER_TO_OPENCV @ look_at(eye, target)


@pytest.mark.parametrize("tool", ["BRUSH", "LASSO"])
@pytest.mark.parametrize("mode", ["OBJECT", "ERASE", "IGNORE"])
def test_windowless_paint_sets_the_state_it_paints(blend, installed_addon, mode, tool):
    """The operator's windowless stroke follows core/paint's one rule: erase clears the ignore
    region too (it did not, before), object paint over ignore makes it count."""
    masks = installed_addon.scene.masks
    obj = _import(blend, SAMPLE)
    cam = installed_addon.scene.cameras.add_view_camera(obj, blend.context.scene, _view((0, -1, 1), (0, 0, 0)),
                                                        viewport_projection(50, 64, 48), 64, 48)  # fmt: skip
    before = np.zeros((48, 64), np.float32)
    before[:, :32] = 1.0
    masks.set_camera_mask(cam, before, np.fliplr(before) > 0.5)  # left half object, right half ignore
    points = [(20.0, 24.0), (44.0, 24.0)] if tool == "BRUSH" else [(18.0, 18.0), (46.0, 18.0), (46.0, 30.0), (18.0, 30.0)]
    stroke = [{"name": "", "location": p} for p in points]
    assert blend.ops.masksplat.paint_mask(camera=cam.name, tool=tool, mode=mode, camera_radius=4.0, stroke=stroke) == {"FINISHED"}
    mask, ignore = masks.camera_mask(cam)
    ignore = np.zeros_like(mask, bool) if ignore is None else ignore
    want = {"OBJECT": (1.0, False), "ERASE": (0.0, False), "IGNORE": (0.0, True)}[mode]
    assert (mask[22:27, 22:42] == want[0]).all() and (ignore[22:27, 22:42] == want[1]).all()
    assert mask[2, 2] == 1.0 and ignore[2, 60] and not ignore[2, 2]  # outside the stroke nothing changed


def test_a_view_becomes_a_camera_in_the_objects_collection(blend, installed_addon):
    scene_cameras = installed_addon.scene.cameras
    scene = blend.context.scene
    obj = _import(blend, SAMPLE)
    outside = blend.data.objects.new("Render Camera", blend.data.cameras.new("Render Camera"))
    scene.collection.objects.link(outside)
    installed_addon.scene.masks.set_camera_mask(outside, np.ones((1080, 1920), np.float32))
    assert obj.masksplat.camera_collection is None
    view = _view((0.3, -0.4, 0.5), (0.0, 0.0, 0.0))
    projection = viewport_projection(50.0, 1100, 740)
    cam = scene_cameras.add_view_camera(obj, scene, view, projection, 1100, 740, max_size=512)
    collection = obj.masksplat.camera_collection
    assert collection.name == f"{obj.name} Cameras" and cam.name == f"{obj.name}_view_001"
    assert cam.name in collection.objects and outside.name in collection.objects  # a masked camera is kept in use
    model = scene_cameras.camera_from_object(cam, scene)
    assert (model.width, model.height) == (512, 344)
    points = np.random.default_rng(0).uniform(-0.1, 0.1, (20, 3))
    clip = np.c_[points, np.ones(20)] @ (projection @ view).T
    expected = np.stack([(clip[:, 0] / clip[:, 3] + 1) / 2, (1 - clip[:, 1] / clip[:, 3]) / 2], axis=1)
    np.testing.assert_allclose(model.project(points)[0] / [512, 344], expected, atol=2e-3)  # what the viewport showed
    again = scene_cameras.add_view_camera(obj, scene, view, projection, 1100, 740)
    assert again.name == f"{obj.name}_view_002" and again.name in collection.objects
    copied = scene_cameras.add_camera_for(obj, scene, scene_cameras.camera_from_object(outside, scene))
    np.testing.assert_allclose(scene_cameras.camera_from_object(copied, scene).world_to_camera,
                               scene_cameras.camera_from_object(outside, scene).world_to_camera, atol=1e-6)  # fmt: skip


def test_three_views_from_different_sides_give_a_clean_3d_selection(blend, installed_addon, client):
    """Three viewport views of a real splat (the donut), each masked where its right half shows,
    become cameras; Compute Selection over them selects that half in 3D."""
    path = data_file(DONUT)
    data = read_splats(path)
    means = data.means()
    centre = np.percentile(means, 50, axis=0)
    truth = means[:, 0] > centre[0]
    obj = _import(blend, path)
    scene = blend.context.scene
    cams = []
    for direction in ((1.0, -1.0, 0.8), (1.0, 1.0, 0.6), (0.2, 0.0, 1.0)):  # right-front, right-back, above
        eye = centre + 0.35 * np.asarray(direction) / np.linalg.norm(direction)
        cams.append(installed_addon.scene.cameras.add_view_camera(obj, scene, _view(eye, centre),
                                                                  viewport_projection(50.0, 160, 120), 160, 120))  # fmt: skip
    models = [installed_addon.scene.cameras.camera_from_object(c, scene) for c in cams]
    for cam, (rgb, _) in zip(cams, render_views(client, data.gaussian_arrays(), label_sh(truth.astype(np.float32)), models), strict=True):
        installed_addon.scene.masks.set_camera_mask(cam, (rgb[:, :, 0] > 127).astype(np.float32))
    assert blend.ops.masksplat.compute_selection(device="cpu") == {"FINISHED"}
    chosen = _selected(obj)
    fg, bg = installed_addon.scene.selection.stored_votes(obj)
    seen = (fg + bg) > 0
    visible = fg + bg
    weighted = (visible * (chosen == truth)).sum() / visible.sum()
    opaque = 1.0 / (1.0 + np.exp(-data.opacity_logits())) > 0.5
    print(f"3 views: weighted agreement {weighted:.3f}, opaque accuracy {(chosen == truth)[opaque].mean():.3f}, "
          f"seen {seen.mean():.3f}, selected {chosen.sum()} of {truth.sum()} true")
    assert weighted > 0.97, weighted
    assert (chosen == truth)[opaque].mean() > 0.9


def _displayed_colours(blend, obj) -> np.ndarray:
    """[N, 3] the colours the point display gives each point (the evaluated Geometry Nodes output)."""
    geometry = obj.evaluated_get(blend.context.evaluated_depsgraph_get()).evaluated_geometry()
    points = geometry.pointcloud
    shown = np.empty(len(obj.data.vertices) * 3, np.float32)
    points.attributes["ms_color"].data.foreach_get("vector", shown)
    return shown.reshape(-1, 3)


def test_the_selection_is_tinted_in_the_point_display_and_the_preview(blend, installed_addon, client):
    obj = _import(blend, SAMPLE)
    scene = blend.context.scene
    cam_model = fruit_cameras(1, size=64)[0]
    cam = installed_addon.scene.cameras.add_camera_for(obj, scene, cam_model)
    selection = installed_addon.scene.selection
    preview = installed_addon.ui.preview_ops
    assert blend.ops.masksplat.preview_splats(camera=cam.name) == {"FINISHED"}
    image = preview.camera_preview(cam)
    plain = np.empty(64 * 64 * 4, np.float32)
    image.pixels.foreach_get(plain)

    chosen = read_splats(SAMPLE).means()[:, 0] > np.median(read_splats(SAMPLE).means()[:, 0])
    selection.set_vertex_selection(obj, chosen)
    # the point display: Geometry Nodes mix the selected points' colours towards the tint
    own = 0.5 + SH_C0 * selection.base_colours(obj)
    np.testing.assert_allclose(_displayed_colours(blend, obj), tint_colours(own, chosen), atol=1e-5)
    obj.masksplat.show_selection = False
    np.testing.assert_allclose(_displayed_colours(blend, obj), own, atol=1e-5)
    obj.masksplat.show_selection = True

    # the preview: stale now, and rendered again (tinted) by the refresh the viewport's changes trigger
    area = next(a for a in blend.context.window_manager.windows[0].screen.areas if a.type == "VIEW_3D")
    area.spaces.active.region_3d.view_perspective = "CAMERA"
    scene.camera = cam
    assert preview.refresh_previews(blend.context) == [cam.name]
    tinted = np.empty_like(plain)
    image.pixels.foreach_get(tinted)
    plain, tinted = plain.reshape(-1, 4)[:, :3], tinted.reshape(-1, 4)[:, :3]
    moved = np.linalg.norm(tinted - plain, axis=1) > 0.05
    assert 0.05 < moved.mean() < 0.95  # part of the view, not all of it
    warmer = (tinted[:, 0] - tinted[:, 2]) > (plain[:, 0] - plain[:, 2])  # towards the orange tint: red up, blue down
    assert warmer[moved].mean() > 0.99
    assert preview.refresh_previews(blend.context) == []  # nothing changed since: no render

    assert blend.ops.masksplat.delete_selected() == {"FINISHED"}
    assert preview.refresh_previews(blend.context) == [cam.name]  # Delete shows at once
    after = np.empty(64 * 64 * 4, np.float32)
    image.pixels.foreach_get(after)
    assert np.linalg.norm(after.reshape(-1, 4)[:, :3] - tinted, axis=1)[moved].mean() > 0.05


def test_grow_shrink_and_select_by_value_with_undo(blend, installed_addon):
    from masksplat_blender.core.selection import splat_sizes

    selection = installed_addon.scene.selection
    obj = _import(blend, SAMPLE)
    name = obj.name
    data = read_splats(SAMPLE)
    means = data.means()
    assert not _selected(obj).any()  # a new splat starts with nothing selected
    assert blend.ops.masksplat.grow_selection() == {"CANCELLED"}  # nothing to grow from
    seed = np.linalg.norm(means - means[0], axis=1) < 0.2 * np.ptp(means[:, 0])
    selection.set_vertex_selection(obj, seed)
    blend.ops.ed.undo_push(message="seed")
    assert blend.ops.masksplat.grow_selection("EXEC_DEFAULT", True, radius=1.0) == {"FINISHED"}
    obj = blend.data.objects[name]
    grown = _selected(obj)
    assert grown.sum() > seed.sum() and (grown | ~seed).all()
    world = installed_addon.scene.selection.world_gaussians(obj)
    expected = installed_addon.core.selection.grow(world["means"], seed, 1.0, sizes=splat_sizes(world["log_scales"]))
    np.testing.assert_array_equal(grown, expected)  # the operator is the plain function
    assert blend.ops.masksplat.grow_selection("EXEC_DEFAULT", True, shrink=True, by="NEAREST", k=4, steps=2) == {"FINISHED"}
    shrunk = _selected(blend.data.objects[name])
    assert shrunk.sum() < grown.sum() and not (shrunk & ~grown).any()
    blend.ops.ed.undo()
    blend.ops.ed.undo()
    np.testing.assert_array_equal(_selected(blend.data.objects[name]), seed)  # each step undoes

    obj = blend.data.objects[name]
    opacity = 1.0 / (1.0 + np.exp(-data.opacity_logits()))
    assert blend.ops.masksplat.select_by_value(value="OPACITY", compare="BELOW", opacity=0.3, action="SET") == {"FINISHED"}
    np.testing.assert_array_equal(_selected(obj), opacity <= 0.3)
    sizes = splat_sizes(data.log_scales())
    big = sizes / np.median(sizes) > 3.0
    assert blend.ops.masksplat.select_by_value(value="SCALE", compare="ABOVE", scale=3.0, action="ADD") == {"FINISHED"}
    np.testing.assert_array_equal(_selected(obj), (opacity <= 0.3) | big)
    assert blend.ops.masksplat.select_by_value(value="COLOUR", splat=0, distance=0.1, action="REMOVE") == {"FINISHED"}
    colours = np.clip(0.5 + SH_C0 * data.f_dc(), 0, 1)
    similar = np.linalg.norm(colours - colours[0], axis=1) <= 0.1
    np.testing.assert_array_equal(_selected(obj), ((opacity <= 0.3) | big) & ~similar)
    assert similar[0] and 1 < similar.sum() < len(similar)
    assert selection.selected_count(obj) == int(_selected(obj).sum())


def test_menu_and_sub_panels_are_registered(blend, installed_addon):
    import bpy

    draws = [getattr(f, "__name__", "") for f in bpy.types.VIEW3D_MT_select_object._dyn_ui_initialize()]
    assert "_select_menu" in draws and hasattr(bpy.types, "MASKSPLAT_MT_select")
    for panel in ("MASKSPLAT_PT_masks", "MASKSPLAT_PT_selection", "MASKSPLAT_PT_labels", "MASKSPLAT_PT_prune", "MASKSPLAT_PT_export"):
        assert getattr(bpy.types, panel).bl_parent_id == "MASKSPLAT_PT_main"
