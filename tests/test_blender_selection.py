"""Masks on cameras become a selection in Blender: the real operators, the real backend."""

from __future__ import annotations

import numpy as np
import pytest
from camera_writers import save_cameras_json
from scenes import SAMPLE, fruit_cameras, fruit_labels, label_masks

from masksplat_blender.core.images import write_png
from masksplat_blender.core.masks import iou_and_accuracy
from masksplat_blender.core.splat_io import read_splats

TARGET = 4  # the hand-painted letter group with the most Gaussians


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """cameras.json and a folder of ground-truth masks for 8 views."""
    folder = tmp_path_factory.mktemp("capture")
    cameras = fruit_cameras(8)
    save_cameras_json(folder / "cameras.json", cameras)
    (folder / "masks").mkdir()
    for cam, mask in zip(cameras, label_masks(cameras, fruit_labels() == TARGET), strict=True):
        write_png(folder / "masks" / f"{cam.name}.png", mask)
    return folder


def _setup(blend, capture):
    assert blend.ops.masksplat.import_splats(filepath=str(SAMPLE)) == {"FINISHED"}
    obj = blend.context.active_object
    assert blend.ops.masksplat.import_cameras(filepath=str(capture / "cameras.json")) == {"FINISHED"}
    assert blend.ops.masksplat.load_masks(directory=str(capture / "masks")) == {"FINISHED"}
    return obj


def _selected(obj):
    values = np.zeros(len(obj.data.vertices), bool)
    obj.data.vertices.foreach_get("select", values)
    return values


def test_compute_selection_selects_the_masked_part(blend, capture):
    obj = _setup(blend, capture)
    assert blend.ops.masksplat.compute_selection(device="cpu") == {"FINISHED"}
    fg = np.empty(len(obj.data.vertices), np.float32)
    bg = np.empty_like(fg)
    obj.data.attributes["ms_fg"].data.foreach_get("value", fg)
    obj.data.attributes["ms_bg"].data.foreach_get("value", bg)
    truth = fruit_labels() == TARGET
    chosen = _selected(obj)
    weight = fg + bg  # contribution-weighted agreement: what the views can see
    agreement = (weight * (chosen == truth)).sum() / weight.sum()
    assert agreement > 0.95, agreement
    # held-out views: the selection rendered as a label matches the ground truth
    held_out = fruit_cameras(3, name_prefix="held", elevation=(45.0, 70.0))
    ious = [iou_and_accuracy(p > 0, t > 0)[0] for p, t in zip(label_masks(held_out, chosen), label_masks(held_out, truth), strict=True)]
    # Letter strokes are a few pixels wide at 96x96 and their Gaussians blend with the card's,
    # so the paper's rule reaches only ~0.6-0.75 IoU here (measured); far above chance.
    assert min(ious) > 0.5, ious

    # beta re-selects at once from the stored votes
    obj.masksplat.beta = 0.2
    loose = _selected(obj).sum()
    obj.masksplat.beta = 2.0
    strict = _selected(obj).sum()
    assert loose > chosen.sum() >= strict


def test_votes_are_cached_per_camera(blend, capture, installed_addon):
    obj = _setup(blend, capture)
    selection = installed_addon.scene.selection
    selection._CACHE.clear()
    plan = selection.VotePlan(obj, blend.context.scene)
    assert len(plan.todo) == 8
    blend.ops.masksplat.compute_selection(device="cpu")
    assert selection.VotePlan(obj, blend.context.scene).todo == []
    cam = obj.masksplat.camera_collection.objects[0]
    mask, _ = installed_addon.scene.masks.camera_mask(cam)
    installed_addon.scene.masks.set_camera_mask(cam, 1.0 - mask)
    assert len(selection.VotePlan(obj, blend.context.scene).todo) == 1


def test_separate_delete_and_export_selected(blend, capture, tmp_path):
    obj = _setup(blend, capture)
    blend.ops.masksplat.compute_selection(device="cpu")
    chosen = _selected(obj)
    n = len(chosen)
    out_sel, out_rest = tmp_path / "sel.ply", tmp_path / "rest.ply"
    assert blend.ops.masksplat.export_splats(filepath=str(out_sel), gaussians="SELECTED") == {"FINISHED"}
    assert blend.ops.masksplat.export_splats(filepath=str(out_rest), gaussians="UNSELECTED") == {"FINISHED"}
    original = read_splats(SAMPLE)
    assert read_splats(out_sel).vertices.tobytes() == original.vertices[chosen].tobytes()
    assert read_splats(out_rest).vertices.tobytes() == original.vertices[~chosen].tobytes()

    assert blend.ops.masksplat.separate_selected() == {"FINISHED"}
    new = blend.data.objects[f"{obj.name}.selected"]
    assert len(new.data.vertices) == chosen.sum() and len(obj.data.vertices) == n - chosen.sum()
    blend.context.view_layer.objects.active = new
    assert blend.ops.masksplat.export_splats(filepath=str(tmp_path / "new.ply")) == {"FINISHED"}
    assert read_splats(tmp_path / "new.ply").vertices.tobytes() == original.vertices[chosen].tobytes()

    blend.context.view_layer.objects.active = obj
    blend.ops.masksplat.select_by_votes(action="SELECT")
    before = len(obj.data.vertices)
    selected_now = _selected(obj).sum()
    if selected_now:
        assert blend.ops.masksplat.delete_selected() == {"FINISHED"}
        assert len(obj.data.vertices) == before - selected_now


def test_compute_without_masks_reports_and_changes_nothing(blend):
    blend.ops.masksplat.import_splats(filepath=str(SAMPLE))
    obj = blend.context.active_object
    with pytest.raises(RuntimeError, match="no camera .* has a mask"):
        blend.ops.masksplat.compute_selection(device="cpu")
    assert "ms_fg" not in obj.data.attributes


def test_load_masks_refuses_wrong_sizes(blend, capture, tmp_path):
    blend.ops.masksplat.import_splats(filepath=str(SAMPLE))
    blend.ops.masksplat.import_cameras(filepath=str(capture / "cameras.json"))
    write_png(tmp_path / "view_000.png", np.zeros((10, 12), np.uint8))
    with pytest.raises(RuntimeError, match="is 12x10, the camera is 96x96"):
        blend.ops.masksplat.load_masks(directory=str(tmp_path))
    assert blend.context.active_object.masksplat.camera_collection.objects["view_000"].masksplat.mask is None


def test_paint_mask_without_a_window_and_preview(blend, capture, installed_addon):
    obj = _setup(blend, capture)
    cam = obj.masksplat.camera_collection.objects["view_002"]
    op = blend.ops.masksplat.paint_mask
    stroke = [{"name": "", "location": (10.0, 10.0)}, {"name": "", "location": (40.0, 10.0)}]
    assert op(camera=cam.name, mode="IGNORE", camera_radius=3.0, stroke=stroke) == {"FINISHED"}
    mask, ignore = installed_addon.scene.masks.camera_mask(cam)
    assert ignore is not None and ignore[10, 10:40].all() and not ignore[50].any()
    lasso = [{"name": "", "location": p} for p in ((50.0, 50.0), (90.0, 50.0), (90.0, 90.0), (50.0, 90.0))]
    assert op(camera=cam.name, tool="LASSO", mode="OBJECT", stroke=lasso) == {"FINISHED"}
    mask, _ = installed_addon.scene.masks.camera_mask(cam)
    assert mask[60:85, 60:85].min() == 1.0

    assert blend.ops.masksplat.preview_splats(camera=cam.name) == {"FINISHED"}
    image = blend.data.images[f"MaskSplat Preview {cam.name}"]
    assert tuple(image.size) == (96, 96)
    assert cam.data.show_background_images and cam.data.background_images[0].image == image
    pixels = np.empty(96 * 96 * 4, np.float32)
    image.pixels.foreach_get(pixels)
    assert pixels.reshape(-1, 4)[:, :3].max() > 0.3


def test_uncertain_edges_are_ignored_and_recomputed(blend, capture, installed_addon):
    obj = _setup(blend, capture)
    selection = installed_addon.scene.selection
    blend.ops.masksplat.compute_selection(device="cpu")
    fg_plain = np.empty(len(obj.data.vertices), np.float32)
    obj.data.attributes["ms_fg"].data.foreach_get("value", fg_plain)
    obj.masksplat.edge_band = 2
    assert len(selection.VotePlan(obj, blend.context.scene).todo) == 8  # a new setting: every view again
    blend.ops.masksplat.compute_selection(device="cpu")
    fg_band = np.empty_like(fg_plain)
    obj.data.attributes["ms_fg"].data.foreach_get("value", fg_band)
    assert fg_band.sum() < fg_plain.sum()  # edge pixels no longer vote


def test_other_splats_occlude_and_each_object_keeps_its_own_votes(blend, capture):
    target = _setup(blend, capture)
    blend.ops.masksplat.compute_selection(device="cpu")
    alone = np.empty(len(target.data.vertices), np.float32)
    target.data.attributes["ms_fg"].data.foreach_get("value", alone)

    blend.ops.masksplat.import_splats(filepath=str(SAMPLE))
    blocker = blend.context.active_object
    cams = [c for c in target.masksplat.camera_collection.objects]
    toward = np.mean([np.array(c.matrix_world.translation) for c in cams], axis=0)
    centre = np.array(target.data.vertices[0].co)
    blocker.location = tuple(0.3 * (toward - centre))  # moved part of the way towards the cameras
    blend.context.view_layer.objects.active = target
    blend.ops.masksplat.compute_selection(device="cpu")
    hidden = np.empty_like(alone)
    target.data.attributes["ms_fg"].data.foreach_get("value", hidden)
    assert hidden.sum() < 0.9 * alone.sum()  # the blocker takes part of the masked pixels
    assert "ms_fg" not in blocker.data.attributes  # the occluder's own data is untouched

    blocker.hide_set(True)  # hidden objects do not occlude
    blend.ops.masksplat.compute_selection(device="cpu")
    again = np.empty_like(alone)
    target.data.attributes["ms_fg"].data.foreach_get("value", again)
    np.testing.assert_allclose(again, alone, rtol=1e-5, atol=1e-4)


def test_undo_restores_delete_separate_and_votes(blend, capture):
    """Every data-changing operator is one Undo step (Blender's own undo stack, ed.undo; the
    second positional argument pushes the step as the UI does)."""
    obj_name = _setup(blend, capture).name
    blend.ops.ed.undo_push(message="masks loaded")
    n = len(blend.data.objects[obj_name].data.vertices)
    assert blend.ops.masksplat.compute_selection("EXEC_DEFAULT", True, device="cpu") == {"FINISHED"}
    obj = blend.data.objects[obj_name]
    chosen = int(_selected(obj).sum())
    assert 0 < chosen < n and "ms_fg" in obj.data.attributes

    assert blend.ops.masksplat.delete_selected("EXEC_DEFAULT", True) == {"FINISHED"}
    assert len(blend.data.objects[obj_name].data.vertices) == n - chosen
    blend.ops.ed.undo()
    obj = blend.data.objects[obj_name]  # undo reloads the data: look objects up again
    assert len(obj.data.vertices) == n and int(_selected(obj).sum()) == chosen

    assert blend.ops.masksplat.separate_selected("EXEC_DEFAULT", True) == {"FINISHED"}
    assert f"{obj_name}.selected" in blend.data.objects
    blend.ops.ed.undo()
    assert f"{obj_name}.selected" not in blend.data.objects
    assert len(blend.data.objects[obj_name].data.vertices) == n

    blend.ops.ed.undo()  # the votes themselves
    obj = blend.data.objects[obj_name]
    assert "ms_fg" not in obj.data.attributes and len(obj.data.vertices) == n
