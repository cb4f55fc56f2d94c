"""The paint tool's pure parts: region-to-camera mapping, brush stamps, lasso fill."""

from __future__ import annotations

import numpy as np
import pytest

from masksplat_blender.core.paint import (
    ERASE,
    IGNORE,
    OBJECT,
    PaintError,
    fill_polygon,
    paint,
    paint_writes,
    region_radius_to_camera,
    region_to_camera,
    stamp_disc,
    stamp_stroke,
    windowless_stroke,
)

# A 200x100 camera drawn zoomed and panned in the region: frame from (50, 20) to (450, 220).
FRAME = [(450, 220), (450, 20), (50, 20), (50, 220)]


def test_region_to_camera_maps_the_frame_corners_and_centre():
    pts = region_to_camera([(50, 220), (450, 20), (250, 120)], FRAME, 200, 100)
    np.testing.assert_allclose(pts, [(0, 0), (200, 100), (100, 50)])
    assert region_radius_to_camera(10, FRAME, 200) == pytest.approx(5.0)


def test_frame_out_of_view_is_refused():
    with pytest.raises(ValueError, match="not visible"):
        region_to_camera([(0, 0)], [(5, 5)] * 4, 10, 10)


def test_disc_and_stroke_cover_the_expected_pixels():
    mask = np.zeros((20, 30), np.float32)
    stamp_disc(mask, (10, 10), 3, 1.0)
    assert mask[10, 10] == 1 and mask[10, 13] == 0 and mask[10, 12] == 1
    assert mask.sum() == pytest.approx(np.pi * 9, rel=0.2)
    stamp_disc(mask, (10, 10), 1.5, 0.0)  # erase
    assert mask[10, 10] == 0
    stroke = np.zeros((20, 30), np.float32)
    stamp_stroke(stroke, (2, 5), (27, 5), 2, 1.0)
    assert stroke[5, 2:28].all() and not stroke[12].any()
    stamp_disc(stroke, (-50, -50), 3, 1.0)  # off-image: nothing, no error


def test_lasso_fills_the_inside():
    mask = np.zeros((20, 20), np.float32)
    fill_polygon(mask, [(2, 2), (18, 2), (18, 18), (2, 18)], 1.0)
    assert mask[3:17, 3:17].all() and not mask[0].any() and not mask[:, 19].any()
    tri = np.zeros((20, 20), np.float32)
    fill_polygon(tri, [(0, 0), (20, 0), (0, 20)], 1.0)
    assert tri[2, 2] == 1 and tri[18, 18] == 0


def test_morphology_and_edge_band():
    from masksplat_blender.core.masks import edge_band, morph

    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    grown, shrunk = morph(mask, 2, True), morph(mask, 2, False)
    assert grown.sum() > mask.sum() > shrunk.sum()
    assert grown[3, 10] and not grown[2, 10] and shrunk[7, 10] and not shrunk[6, 10]
    band = edge_band(mask.astype(np.float32), 2)
    assert band[5, 10] and band[3, 10] and not band[10, 10] and not band[0, 0]
    edge = np.zeros((10, 10), bool)
    edge[:, :5] = True  # touches the frame: erosion does not eat it from the border
    assert morph(edge, 2, False)[:, :3].all()


# One stroke, drawn by each tool: the brush along a line and the lasso around a square, both over
# the pixels [8:12, 8:12] at least, and well away from (1, 1) and (18, 18).
TOOLS = {
    "brush": lambda value_target: stamp_stroke(value_target[0], (8, 10), (12, 10), 3, value_target[1]),
    "lasso": lambda value_target: fill_polygon(value_target[0], [(7, 7), (13, 7), (13, 13), (7, 13)], value_target[1]),
}
# What each mode leaves in (mask, ignore) where a pixel was object, ignore, or nothing before.
EXPECTED = {OBJECT: (1.0, 0.0), ERASE: (0.0, 0.0), IGNORE: (0.0, 1.0)}


def _painted_before():
    """Mask buffers whose stroke area is half object, half ignore; and untouched corners marked."""
    mask, ignore = np.zeros((20, 20), np.float32), np.zeros((20, 20), np.float32)
    mask[:, :10], ignore[:, 10:] = 1.0, 1.0
    return {"mask": mask, "ignore": ignore}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("mode", [OBJECT, ERASE, IGNORE])
def test_each_mode_and_tool_writes_the_same_buffers(mode, tool):
    """One rule (paint_writes) for the windowless stroke, the brush and the lasso: a stroke sets
    the state it paints wherever it goes, whatever the pixel was; outside it nothing changes."""
    buffers = _painted_before()
    before = {k: v.copy() for k, v in buffers.items()}
    paint(buffers, lambda buffer, value: TOOLS[tool]((buffer, value)), mode)
    want_mask, want_ignore = EXPECTED[mode]
    assert (buffers["mask"][9:12, 8:12] == want_mask).all() and (buffers["ignore"][9:12, 8:12] == want_ignore).all()
    for name in buffers:
        assert buffers[name][1, 1] == before[name][1, 1] and buffers[name][18, 18] == before[name][18, 18]


@pytest.mark.parametrize("tool", ["BRUSH", "LASSO"])
@pytest.mark.parametrize("mode", [OBJECT, ERASE, IGNORE])
def test_windowless_strokes_follow_the_same_rule(mode, tool):
    points = [(8, 10), (12, 10)] if tool == "BRUSH" else [(7, 7), (13, 7), (13, 13), (7, 13)]
    buffers = _painted_before()
    paint(buffers, windowless_stroke(points, tool, 3.0), mode)
    assert (buffers["mask"][9:12, 8:12] == EXPECTED[mode][0]).all() and (buffers["ignore"][9:12, 8:12] == EXPECTED[mode][1]).all()


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_label_maps_paint_the_label_or_background_and_have_no_ignore(tool):
    ids = np.full((20, 20), 3, np.int32)
    paint({"ids": ids}, lambda buffer, value: TOOLS[tool]((buffer, value)), OBJECT, "LABELS", label=5)
    assert (ids[9:12, 8:12] == 5).all() and ids[1, 1] == 3
    paint({"ids": ids}, lambda buffer, value: TOOLS[tool]((buffer, value)), ERASE, "LABELS", label=5)
    assert (ids[9:12, 8:12] == 0).all() and ids[18, 18] == 3
    with pytest.raises(PaintError, match="no ignore region"):
        paint({"ids": ids}, lambda buffer, value: TOOLS[tool]((buffer, value)), IGNORE, "LABELS", label=5)
    assert paint_writes(OBJECT, "LABELS", 7) == (("ids", 7),)
    with pytest.raises(PaintError, match="unknown paint mode"):
        paint_writes("SMUDGE")
