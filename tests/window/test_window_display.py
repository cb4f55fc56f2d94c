"""Real Blender windows (4.3 and 5.2): the true splat display matches the splat render from a
camera (offscreen and on screen, Solid and Material Preview) and follows selection, a move
with real keys and Blender's own Delete."""

from __future__ import annotations

import numpy as np
import pytest
from camera_writers import save_cameras_json
from conftest import data_file
from display_views import display_cameras, offscreen_psnr, render, viewport_psnr
from harness import OUT, SUITES, assert_passed, ensure_suite, run_scenario, unavailable

from masksplat_blender.core.splat_io import read_splats

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")
WIDTH, HEIGHT = 320, 240
MOVE = 0.03  # along x, about a seventh of the donut


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_splat_display_matches_the_render_and_follows_edits(suite, extension_zip, client, tmp_path):
    ply = data_file("gshairlod_donut/fused.ply")
    data = read_splats(ply)
    cams = display_cameras(data, 2, WIDTH, HEIGHT)
    cameras = tmp_path / "cameras.json"
    save_cameras_json(cameras, cams)
    ensure_suite(suite)
    result = run_scenario(suite, "display", {"zip": str(extension_zip), "ply": str(ply), "cameras": str(cameras),
                                             "cameras_named": [c.name for c in cams], "width": WIDTH, "move": MOVE, "height": HEIGHT},
                          timeout=600, size="1280x800")  # fmt: skip
    assert_passed(result)
    out = OUT / suite / "display"
    image = {p.stem: np.load(p) for p in out.glob("*.npy")}
    selected = data.means()[:, 0] > np.median(data.means()[:, 0])
    assert result["values"]["selected"] == int(selected.sum())
    (rgb0, alpha0), (rgb1, _) = render(client, data, cams)
    scores = {
        "offscreen": min(offscreen_psnr(image[f"offscreen_{cams[0].name}"], rgb0), offscreen_psnr(image[f"offscreen_{cams[1].name}"], rgb1)),
        "solid": viewport_psnr(image["viewport_solid"], rgb0, alpha0, image["background_solid"]),
        "material": viewport_psnr(image["viewport_material"], rgb0, alpha0, image["background_material"]),
        "points": viewport_psnr(image["viewport_points"], rgb0, alpha0, image["background_solid"]),
    }  # fmt: skip
    edits = {
        "selected": render(client, data, cams[:1], selected=selected)[0],
        "moved": render(client, data, cams[:1], selected=selected, offset=(MOVE, 0, 0))[0],
        "deleted": render(client, data, cams[:1], offset=(MOVE, 0, 0), keep=~selected)[0],
    }
    for tag, (rgb, alpha) in edits.items():
        scores[f"{tag} offscreen"] = offscreen_psnr(image[f"offscreen_{tag}"], rgb)
        scores[f"{tag} viewport"] = viewport_psnr(
            image[f"viewport_{tag}"], rgb, alpha, image["background_solid"]
        )
    print(f"Blender {SUITES[suite]} splat display PSNR (dB): {scores}")
    assert scores["offscreen"] >= 30 and scores["solid"] >= 25 and scores["material"] >= 25, scores
    assert all(scores[f"{tag} offscreen"] >= 30 and scores[f"{tag} viewport"] >= 25 for tag in edits), scores
    assert scores["solid"] > scores["points"] + 3, scores  # the old point display is what this replaces
