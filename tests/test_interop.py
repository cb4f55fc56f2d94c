"""Our exports open in PlayCanvas's splat-transform, and our SH rotation matches its own.

splat-transform (npm) is installed by .ci/test where npm works; elsewhere set
MASKSPLAT_SPLAT_TRANSFORM to its executable, or these tests skip saying so (see peers.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from peers import ROOT, needs_splat_transform
from peers import splat_transform as run_tool

from masksplat_blender.core.splat_io import read_splats, write_ply
from masksplat_blender.core.transform import apply_transform_to_vertices

SAMPLE = ROOT / "tests" / "data" / "fruit_drops" / "fruit_drops_minimal.ply"
pytestmark = needs_splat_transform


def test_splat_transform_reads_our_export(tmp_path):
    data = read_splats(SAMPLE)
    keep = np.arange(data.count) % 2 == 0
    write_ply(tmp_path / "half.ply", data, keep=keep)
    run_tool(tmp_path / "half.ply", tmp_path / "half.csv")
    rows = (tmp_path / "half.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + keep.sum()
    header = rows[0].split(",")
    first = dict(zip(header, map(float, rows[1].split(",")), strict=False))
    assert first["x"] == pytest.approx(float(data.vertices["x"][0]), abs=1e-5)


def test_sh_rotation_agrees_with_splat_transform(tmp_path):
    run_tool(SAMPLE, "-r", "0,0,40", tmp_path / "rot.ply")
    theirs = read_splats(tmp_path / "rot.ply")
    angle = np.radians(40.0)
    matrix = np.eye(4)
    matrix[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    ours = apply_transform_to_vertices(read_splats(SAMPLE).vertices, 3, matrix)
    for name in ("x", "y", "z", *(f"f_rest_{i}" for i in range(45))):
        np.testing.assert_allclose(ours[name], theirs.vertices[name], atol=1e-6, err_msg=name)
