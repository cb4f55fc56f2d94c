"""Headless batch commands through the bpy module: exit codes, atomic outputs, no overwrites."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "fruit_drops" / "fruit_drops_minimal.ply"


def run_batch(*args, by_path=False, cwd=ROOT):
    start = [sys.executable, str(ROOT / "masksplat_blender" / "batch.py"), "--"] if by_path else [sys.executable, "-m", "masksplat_blender.batch"]
    return subprocess.run([*start, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


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
