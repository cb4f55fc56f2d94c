"""The paint tool's pure parts: region-to-camera mapping, brush stamps, lasso fill."""

from __future__ import annotations

import numpy as np
import pytest

from masksplat_blender.core.paint import (
    fill_polygon,
    region_radius_to_camera,
    region_to_camera,
    stamp_disc,
    stamp_stroke,
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
