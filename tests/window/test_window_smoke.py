"""Real Blender windows (4.3 and 5.2): the extension installs, paints and selects under real mouse events."""

from __future__ import annotations

import numpy as np
import pytest
from camera_writers import save_cameras_json
from harness import SUITES, assert_passed, ensure_suite, run_scenario, unavailable

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")


@pytest.fixture(scope="module")
def zip_path(extension_zip):
    return str(extension_zip)


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_paint_in_a_camera_view_and_compute(suite, zip_path, tmp_path):
    from scenes import SAMPLE, fruit_cameras

    ensure_suite(suite)
    cams = tmp_path / "cameras.json"
    save_cameras_json(cams, fruit_cameras(4, size=160))
    result = run_scenario(
        suite, "smoke", {"zip": zip_path, "ply": str(SAMPLE), "cameras": str(cams), "camera": "view_000"}
    )
    assert_passed(result)
    values = result["values"]
    assert 0 < values["selected"] < values["gaussians"], values
    assert np.isfinite(values["selected"])
