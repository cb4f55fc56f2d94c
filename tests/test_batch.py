"""Headless batch commands through the bpy module: exit codes, atomic outputs, no overwrites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from headless import run_batch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "fruit_drops" / "fruit_drops_minimal.ply"


def _body(path: Path) -> bytes:
    raw = path.read_bytes()
    return raw[raw.index(b"end_header\n") + 11 :]


@pytest.mark.parametrize("by_path", [False, True])
def test_convert_round_trips_the_sample(tmp_path, by_path):
    out = tmp_path / "out.ply"
    proc = run_batch("convert", "--ply", SAMPLE, "--out", out, "--summary", tmp_path / "s.json", by_path=by_path, cwd=tmp_path if by_path else ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["gaussians"] == 4721 and summary["sh_degree"] == 3
    assert _body(out) == _body(SAMPLE)


def test_bad_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"not a ply")
    proc = run_batch("convert", "--ply", bad, "--out", tmp_path / "o.ply")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("masksplat: bad.ply: not a PLY")
    assert not (tmp_path / "o.ply").exists()


def test_existing_output_needs_overwrite_and_input_is_never_overwritten(tmp_path):
    out = tmp_path / "o.ply"
    out.write_bytes(b"keep me")
    proc = run_batch("convert", "--ply", SAMPLE, "--out", out)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert out.read_bytes() == b"keep me"
    copy = tmp_path / "in.ply"
    copy.write_bytes(SAMPLE.read_bytes())
    proc = run_batch("convert", "--ply", copy, "--out", copy, "--overwrite")
    assert proc.returncode == 2 and "also an input" in proc.stderr
    assert copy.read_bytes() == SAMPLE.read_bytes()


def test_unknown_command_and_missing_file_exit_2(tmp_path):
    assert run_batch("frobnicate").returncode == 2
    proc = run_batch("convert", "--ply", tmp_path / "none.ply", "--out", tmp_path / "o.ply")
    assert proc.returncode == 2 and "no such file" in proc.stderr


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    from camera_writers import save_cameras_json
    from scenes import fruit_cameras, fruit_labels, label_masks

    from masksplat_blender.core.images import write_png

    folder = tmp_path_factory.mktemp("batch")
    cams = fruit_cameras(6, size=64)
    save_cameras_json(folder / "cameras.json", cams)
    (folder / "masks").mkdir()
    for cam, mask in zip(cams, label_masks(cams, fruit_labels() == 4), strict=True):
        write_png(folder / "masks" / f"{cam.name}.png", mask)
    return folder


def test_segment_writes_object_rest_and_votes(capture, tmp_path):
    import numpy as np

    from masksplat_blender.core.splat_io import read_splats

    out, rest, votes = tmp_path / "OBJECT.ply", tmp_path / "REST.ply", tmp_path / "VOTES.npz"
    proc = run_batch("segment", "--ply", SAMPLE, "--cameras", capture / "cameras.json", "--masks", capture / "masks",
                     "--out", out, "--rest", rest, "--votes", votes, "--device", "cpu", "--save-blend", tmp_path / "s.blend",
                     "--no-fill")  # the paper's rule exactly: selected = fg > bg  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    scene = read_splats(SAMPLE)
    with np.load(votes, allow_pickle=False) as npz:
        fg, bg = npz["fg"], npz["bg"]
    assert fg.dtype == bg.dtype == np.float32 and fg.shape == bg.shape == (scene.count,)
    chosen = fg > bg
    assert 0 < chosen.sum() < scene.count
    assert read_splats(out).vertices.tobytes() == scene.vertices[chosen].tobytes()
    assert read_splats(rest).vertices.tobytes() == scene.vertices[~chosen].tobytes()
    assert (tmp_path / "s.blend").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OBJECT.ply", "REST.ply", "VOTES.npz", "s.blend"]

    # evaluate the selection on the training views against their own masks
    report = tmp_path / "report.json"
    proc = run_batch("evaluate", "--ply", out, "--scene", SAMPLE, "--cameras", capture / "cameras.json",
                     "--masks", capture / "masks", "--report", report, "--device", "cpu")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(report.read_text())
    assert len(result["views"]) == 6 and 0.3 < result["mIoU"] <= 1 and result["mAcc"] > 0.9
    assert "| **mean** |" in proc.stderr


def test_segment_bad_inputs_exit_2_and_write_nothing(capture, tmp_path):
    proc = run_batch("segment", "--ply", SAMPLE, "--cameras", capture / "cameras.json", "--masks", tmp_path / "nomasks",
                     "--out", tmp_path / "o.ply")  # fmt: skip
    assert proc.returncode == 2 and "no such mask folder" in proc.stderr
    proc = run_batch("segment", "--ply", SAMPLE, "--cameras", capture / "cameras.json", "--masks", capture / "masks",
                     "--out", SAMPLE, "--overwrite")  # fmt: skip
    assert proc.returncode == 2 and "also an input" in proc.stderr
    proc = run_batch("segment", "--ply", SAMPLE)
    assert proc.returncode == 2 and "--cameras" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_render_writes_a_png_per_camera(capture, tmp_path):
    from masksplat_blender.core.images import read_png

    proc = run_batch("render", "--ply", SAMPLE, "--cameras", capture / "cameras.json", "--out", tmp_path / "r", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    images = sorted((tmp_path / "r").glob("*.png"))
    assert len(images) == 6
    pixels = read_png(images[0])
    assert pixels.shape == (64, 64, 3) and pixels.max() > 100
