"""Prune Splats: criteria, the quality report, the operator and the batch command."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from camera_writers import save_cameras_json
from headless import run_batch
from scenes import SAMPLE, fruit_cameras

from masksplat_blender.core.prune import PruneError, choose_removal, never_contributes, parse_criterion, psnr
from masksplat_blender.core.splat_io import read_splats


def test_criteria_parse_and_choose():
    assert parse_criterion("zero") == ("zero", 0.0)
    assert parse_criterion("threshold:1e-5") == ("threshold", 1e-5)
    assert parse_criterion("fraction:0.1") == ("fraction", 0.1)
    for bad in ("fraction:2", "threshold:x", "most", "zero:1"):
        with pytest.raises(PruneError):
            parse_criterion(bad)
    contribution = np.array([0.0, 5.0, 1.0, 0.5, 100.0])
    never = np.array([False, False, False, False, True])
    np.testing.assert_array_equal(choose_removal(contribution, 10, "zero", 0, never), [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(choose_removal(contribution, 10, "threshold", 0.2, never), [1, 0, 1, 1, 1])
    np.testing.assert_array_equal(choose_removal(contribution, 10, "fraction", 0.4, never), [1, 0, 0, 1, 1])
    assert never_contributes(np.array([-10.0, 0.0]), np.zeros((2, 3))).tolist() == [True, False]
    assert psnr(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)) == float("inf")
    assert psnr(np.zeros((2, 2), np.uint8), np.full((2, 2), 255, np.uint8)) == pytest.approx(0.0)


@pytest.fixture(scope="module")
def cams(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prune")
    save_cameras_json(folder / "cameras.json", fruit_cameras(6, size=64))
    return folder / "cameras.json"


def test_zero_criterion_keeps_every_used_view_within_1_over_255(blend, cams, tmp_path):
    blend.ops.masksplat.import_splats(filepath=str(SAMPLE))
    obj = blend.context.active_object
    blend.ops.masksplat.import_cameras(filepath=str(cams))
    blend.context.view_layer.objects.active = obj
    n = len(obj.data.vertices)
    blend.ops.ed.undo_push(message="before prune")
    # pushed as the UI does (second positional argument): the removal is one Undo step
    assert blend.ops.masksplat.prune_splats("EXEC_DEFAULT", True, criterion="ZERO", device="cpu") == {"FINISHED"}
    name, removed = obj.name, len(obj.data.vertices)
    blend.ops.ed.undo()
    assert len(blend.data.objects[name].data.vertices) == n
    blend.ops.ed.redo()
    obj = blend.data.objects[name]
    assert len(obj.data.vertices) == removed
    report = json.loads(obj.masksplat.prune_report)
    assert 0 < report["removed"] < n and len(obj.data.vertices) == n - report["removed"]
    assert report["max_pixel_difference"] <= 1 / 255 + 1e-9
    assert all(v["used"] for v in report["views"]) and len(report["views"]) == 6
    # what is left exports as the original rows minus the removed ones, in order
    blend.ops.masksplat.export_splats(filepath=str(tmp_path / "pruned.ply"))
    pruned, original = read_splats(tmp_path / "pruned.ply"), read_splats(SAMPLE)
    rows = {r.tobytes() for r in original.vertices}
    assert all(r.tobytes() in rows for r in pruned.vertices) and pruned.count == n - report["removed"]


def test_fraction_with_psnr_floor_and_batch_command(cams, tmp_path):
    out, report = tmp_path / "PRUNED.ply", tmp_path / "REPORT.json"
    command = ["prune", "--ply", SAMPLE, "--cameras", cams, "--out", out, "--criterion", "fraction:0.5", "--min-psnr", "40",
               "--report", report, "--device", "cpu"]  # fmt: skip
    proc = run_batch(*command)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(report.read_text())
    assert result["mean_psnr_used_views"] is None or result["mean_psnr_used_views"] >= 40
    assert result["fraction_removed"] <= 0.5 and read_splats(out).count == result["gaussians"] - result["removed"]
    assert result["bytes_after"] < result["bytes_before"]
    bad = run_batch(*command[:5], "--criterion", "most", "--out", tmp_path / "x.ply")
    assert bad.returncode == 2 and "unknown criterion" in bad.stderr


def test_zero_criterion_on_a_real_splat_is_lossless_for_used_views():
    """The paper's criterion on a real capture (the donut; every splat is in benchmarks/bench_prune.py)."""
    from conftest import data_file

    from masksplat_blender.client import BackendClient, compute_votes, render_views
    from masksplat_blender.core.orbit import orbit_cameras
    from masksplat_blender.core.prune import compare_views

    data = read_splats(data_file("gshairlod_donut/fused.ply"))
    arrays = data.gaussian_arrays()
    lo, hi = np.percentile(arrays["means"], [1, 99], axis=0)
    radius = 0.5 * float(np.linalg.norm(hi - lo)) / np.sin(np.radians(25)) * 1.05
    views = orbit_cameras((lo + hi) / 2, radius, 16, 128, 128, 50.0, elevation_deg=(-60.0, 75.0))
    client = BackendClient(sys.executable, device="cpu")
    try:
        ones = [np.full((128, 128), 255, np.uint8) for _ in views]
        contribution = compute_votes(client, arrays, views, ones, mode="labels")[0][:, 0]
        remove = choose_removal(contribution, len(views) * 128 * 128, "zero", 0.0,
                                never_contributes(arrays["opacity_logits"], arrays["log_scales"]))  # fmt: skip
        keep = ~remove
        before = [rgb for rgb, _ in render_views(client, arrays, data.sh(), views)]
        after = [rgb for rgb, _ in render_views(client, {k: v[keep] for k, v in arrays.items()}, data.sh()[keep], views)]
    finally:
        client.close()
    rows = compare_views([c.name for c in views], before, after, [True] * len(views))
    assert 0 < remove.sum() < remove.size
    assert max(r["max_diff"] for r in rows) <= 1 / 255 + 1e-9
