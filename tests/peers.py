"""Real peers for format tests: PlayCanvas splat-transform and Niantic's SPZ library (@adobe/spz,
its WebAssembly build), both from npm (.ci/test installs them). Tests that need them skip,
saying why, where they are absent; set MASKSPLAT_SPLAT_TRANSFORM to use another install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import plyfile
import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / ".ci" / "node_modules"
SPLAT_TRANSFORM = os.environ.get("MASKSPLAT_SPLAT_TRANSFORM") or shutil.which("splat-transform") or str(
    NODE_MODULES / ".bin" / "splat-transform"
)
SPZ_MODULE = NODE_MODULES / "@adobe" / "spz" / "dist" / "spz.js"
needs_splat_transform = pytest.mark.skipif(
    not Path(SPLAT_TRANSFORM).exists(), reason="PlayCanvas splat-transform (npm) is not installed here"
)
needs_spz_library = pytest.mark.skipif(
    not SPZ_MODULE.exists() or shutil.which("node") is None, reason="Niantic's SPZ library (@adobe/spz, npm) or node is absent"
)


def splat_transform(*args) -> subprocess.CompletedProcess:
    """Run splat-transform (overwriting outputs); fails the test on a non-zero exit."""
    proc = subprocess.run([SPLAT_TRANSFORM, "-w", "-q", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def decoded_by_splat_transform(path, tmp_path) -> np.ndarray:
    """splat-transform's own decode of a splat file, as its float PLY's vertex records (inf kept)."""
    out = Path(tmp_path) / f"{Path(path).name}.decoded.ply"
    splat_transform(path, out)
    return plyfile.PlyData.read(str(out))["vertex"].data


_SPZ_SCRIPT = r"""
import fs from 'fs';
import { pathToFileURL } from 'url';
const [module, input, output, request] = process.argv.slice(2);
import(pathToFileURL(module).href).then((m) => m.default()).then((spz) => {
  const job = JSON.parse(fs.readFileSync(request, 'utf8'));
  const raw = JSON.parse(fs.readFileSync(input, 'utf8'));
  const cloud = {numPoints: raw.count, shDegree: raw.degree, antialiased: false, extensions: [],
    positions: Float32Array.from(raw.positions), scales: Float32Array.from(raw.scales),
    rotations: Float32Array.from(raw.rotations), alphas: Float32Array.from(raw.alphas),
    colors: Float32Array.from(raw.colors), sh: Float32Array.from(raw.sh)};
  const from = spz.CoordinateSystem.UNSPECIFIED;  // values stored as given, like splat-transform
  const bytes = spz.saveSpzToBuffer(cloud, {version: job.version, from, sh1Bits: 5, shRestBits: 4});
  fs.writeFileSync(output, bytes);
});
"""


def write_with_spz_library(data, path, version: int, tmp_path=None) -> None:
    """Write `data` (SplatData) as SPZ `version` (2, 3 or 4) with Niantic's own encoder."""
    tmp = Path(tmp_path or Path(path).parent)
    sh = data.f_rest().reshape(data.count, -1) if data.sh_degree else np.zeros((data.count, 0))
    payload = {
        "count": data.count, "degree": data.sh_degree,
        "positions": data.means().ravel().tolist(), "scales": data.log_scales().ravel().tolist(),
        "rotations": data.quats_wxyz()[:, [1, 2, 3, 0]].ravel().tolist(), "alphas": data.opacity_logits().tolist(),
        "colors": data.f_dc().ravel().tolist(), "sh": sh.ravel().tolist(),
    }  # fmt: skip
    (tmp / "cloud.json").write_text(json.dumps(payload))
    job = {"version": version}
    (tmp / "job.json").write_text(json.dumps(job))
    (tmp / "spz_job.mjs").write_text(_SPZ_SCRIPT)
    proc = subprocess.run(
        ["node", str(tmp / "spz_job.mjs"), str(SPZ_MODULE), str(tmp / "cloud.json"), str(path), str(tmp / "job.json")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0 and Path(path).exists(), proc.stderr[-2000:]
