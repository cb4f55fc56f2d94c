"""The demo's pieces: the bundled donut-and-plant scene, SAM-like masks, the naive baseline
and the contact sheet (its bitmap font and layout). The demo itself runs as `bash .ci/demo`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contact_sheet import (
    ADVANCE,
    FONT,
    GLYPH_H,
    ContactSheet,
    difference,
    draw_text,
    fewer_colours,
    half_size,
    text_width,
)
from scenes import (
    DONUT_PLANT_DIR,
    DONUT_PLANT_HELD_OUT,
    DONUT_PLANT_LOOK_AT,
    DONUT_PLANT_TRAIN,
    centre_in_mask,
    donut_plant_cameras,
    donut_plant_scene,
    object_masks,
    sam_like,
)

from masksplat_blender.client import compute_votes, render_views
from masksplat_blender.core.images import read_png, write_png
from masksplat_blender.core.masks import label_sh, morph
from masksplat_blender.core.splat_io import read_splats
from masksplat_blender.core.votes import fill_never_seen, never_seen, select_two_class

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_splats_are_small_attributed_and_share_one_layout():
    files = {name: DONUT_PLANT_DIR / f"{name}.ply" for name in ("donut", "plant")}
    sizes = {name: path.stat().st_size for name, path in files.items()}
    assert all(size < 3 * 2**20 for size in sizes.values()), sizes
    assert sum(sizes.values()) < 4 * 2**20
    donut, plant = (read_splats(path) for path in files.values())
    assert (donut.count, plant.count) == (12_000, 36_000)
    assert donut.vertices.dtype == plant.vertices.dtype and donut.sh_degree == plant.sh_degree == 0
    assert "MIT" in donut.comments[0] and "CC-BY-4.0" in plant.comments[0]
    attribution = (DONUT_PLANT_DIR / "ATTRIBUTION.md").read_text()
    for needed in ("douglas0406/GSHairLoD", "MIT", "Marcel Padilla", "CC BY 4.0", "creativecommons.org/licenses/by/4.0"):
        assert needed in attribution
    docs_picture = ROOT / "docs" / "demo_contact_sheet.png"
    assert docs_picture.stat().st_size < 300 * 1024


def test_scene_stands_the_plant_up_with_the_donut_in_front_of_its_pot():
    data, donut = donut_plant_scene()
    assert data.count == 48_000 and donut.dtype == bool and donut.sum() == 12_000 and donut[:12_000].all()
    means = data.means()
    plant_lo, plant_hi = np.percentile(means[~donut], [0.5, 99.5], axis=0)
    assert plant_lo[2] == pytest.approx(0.0, abs=1e-3) and plant_hi[2] == pytest.approx(1.0, abs=1e-3)
    pot = means[~donut & (means[:, 2] < 0.3)]
    donut_means = means[donut]
    # On the ground in front of the pot (towards -y, the cameras' side), below the pot's rim.
    assert np.median(donut_means[:, 1]) < np.percentile(pot[:, 1], 5)
    assert donut_means[:, 2].min() > -0.02 and np.percentile(donut_means[:, 2], 99) < 0.35
    again, _ = donut_plant_scene()
    assert np.array_equal(again.vertices, data.vertices)


def test_cameras_look_at_the_plant_from_the_donut_side():
    train = donut_plant_cameras(DONUT_PLANT_TRAIN, "view")
    held = donut_plant_cameras(DONUT_PLANT_HELD_OUT, "held_out")
    assert [c.name for c in train] == [f"view_{i:03d}" for i in range(len(DONUT_PLANT_TRAIN))]
    for cam in train + held:
        uv, depth = cam.project(np.array([DONUT_PLANT_LOOK_AT]))
        assert np.allclose(uv[0], (cam.width / 2, cam.height / 2)) and depth[0] > 0
        assert cam.center()[1] < 0  # the donut's side
    assert not {tuple(c.center().round(6)) for c in held} & {tuple(c.center().round(6)) for c in train}


def test_sam_like_masks_move_the_edge_both_ways_by_at_most_the_given_pixels():
    mask = np.zeros((120, 100), bool)
    yy, xx = np.mgrid[:120, :100]
    mask[(yy - 60) ** 2 + (xx - 50) ** 2 < 35**2] = True
    out = sam_like(mask, 2, seed=3)
    assert (out <= morph(mask, 2, True)).all() and (out >= morph(mask, 2, False)).all()
    assert (out & ~mask).sum() > 20 and (mask & ~out).sum() > 20  # bleeds out here, cuts in there
    assert np.array_equal(out, sam_like(mask, 2, seed=3)) and not np.array_equal(out, sam_like(mask, 2, seed=4))
    assert np.array_equal(sam_like(mask, 0, seed=3), mask)


def test_the_donut_hides_the_pot_and_the_naive_selection_takes_what_is_behind(client):
    """The demo's case is real occlusion: in every masked view part of the donut's mask
    covers the plant, the centre-in-mask baseline takes plant Gaussians hidden behind the
    donut, and MaskSplat's votes leave (almost all of) them out."""
    data, donut = donut_plant_scene()
    cameras = donut_plant_cameras(DONUT_PLANT_TRAIN, "view", width=96, height=112)
    masks = [m > 0 for m in object_masks(data, donut, cameras, client)]
    plant_only = {k: v[~donut] for k, v in data.gaussian_arrays().items()}
    plant_alpha = [alpha for _, alpha in render_views(client, plant_only, label_sh(np.ones(int((~donut).sum()))), cameras)]
    covering = [np.count_nonzero(mask & (alpha > 127)) / np.count_nonzero(mask) for mask, alpha in zip(masks, plant_alpha, strict=True)]
    assert min(covering) > 0.08 and np.mean(covering) > 0.25, covering  # 0.12 to 0.54 when written
    naive = centre_in_mask(data.means(), cameras, masks)
    votes, _ = compute_votes(client, data.gaussian_arrays(), cameras, [m.astype(np.uint8) * 255 for m in masks])
    chosen = fill_never_seen(data.means(), select_two_class(votes[:, 0], votes[:, 1]), ~never_seen(votes[:, 0], votes[:, 1]))
    # When written: naive 1,226 plant Gaussians, MaskSplat 162 of the plant's and 11,229 of the donut's 12,000.
    assert (naive & ~donut).sum() > 600
    assert (chosen & ~donut).sum() < 0.3 * (naive & ~donut).sum()
    assert (chosen & donut).sum() > 0.9 * donut.sum()


def test_font_draws_each_glyph_bit_for_bit_at_any_scale():
    assert all(g.shape == (7, 5) for g in FONT.values())
    shapes = {g.tobytes() for g in FONT.values()}
    assert len(shapes) == len(FONT)  # no two characters look the same
    for scale in (1, 2, 3):
        canvas = np.zeros((GLYPH_H * scale, text_width("A7", scale), 3), np.uint8)
        draw_text(canvas, 0, 0, "a7", scale, colour=(255, 0, 0))  # lower case draws as upper case
        ink = canvas[:, :, 0] > 0
        expected = np.concatenate([FONT["A"], np.zeros((7, 1), bool), FONT["7"]], axis=1)
        assert np.array_equal(ink, expected.repeat(scale, 0).repeat(scale, 1))
        assert not canvas[:, :, 1:].any()
    canvas = np.zeros((10, 10, 3), np.uint8)
    draw_text(canvas, -3, 6, "~W", 2)  # unknown characters draw as '?', and text is clipped
    assert canvas.any()


def test_contact_sheet_places_tiles_unchanged_with_captions_above(tmp_path):
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), rng.integers(0, 256, (50, 20), dtype=np.uint8) > 127]
    sheet = ContactSheet(scale=1, gap=4)
    sheet.heading("HI", 2)
    sheet.row(tiles, ["ONE\nIOU 0.5", "TWO"])
    image = sheet.image()
    assert image.shape[1] == 4 + (30 + 4) + (20 + 4)
    found = np.argwhere((image[:, :, 0] == tiles[0][0, 0, 0]) & (image[:, :, 1] == tiles[0][0, 0, 1]))
    positions = [(y, x) for y, x in found if np.array_equal(image[y : y + 40, x : x + 30], tiles[0])]
    assert len(positions) == 1
    y, x = positions[0]
    assert x == 4 and image[y - 2 * (GLYPH_H + 3) : y, x : x + 30].max() == 235  # two caption lines above it
    assert np.array_equal(image[y : y + 50, x + 34 : x + 54, 0], tiles[1].astype(np.uint8) * 255)
    write_png(tmp_path / "sheet.png", image)
    assert np.array_equal(read_png(tmp_path / "sheet.png"), image)
    with pytest.raises(ValueError, match="captions"):
        sheet.row(tiles, ["only one"])
    with pytest.raises(ValueError, match="empty"):
        ContactSheet().image()
    assert text_width("ABC", 2) == (3 * ADVANCE - 1) * 2


def test_tile_helpers():
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    small = half_size(image)
    assert small.shape == (2, 3, 3)
    assert small[0, 0, 0] == round(image[:2, :2, 0].mean())
    before = np.zeros((2, 2, 3), np.uint8)
    after = before.copy()
    after[0, 1] = (0, 10, 3)
    assert difference(before, after, 8).tolist() == [[0, 80], [0, 0]]
    rounded = fewer_colours(np.array([[[0, 255, 130]]], np.uint8), 6)
    assert rounded.tolist() == [[[2, 254, 130]]]
    assert np.array_equal(fewer_colours(image, 8), image)
