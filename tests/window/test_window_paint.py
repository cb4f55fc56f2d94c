"""Real Blender windows (4.3 and 5.2): paint from plain viewport views of a splat without cameras,
compute, see the selection, use the selection tools, delete and undo, under real mouse and keys."""

from __future__ import annotations

import pytest
from conftest import data_file
from harness import SUITES, assert_passed, ensure_suite, run_scenario, unavailable

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_paint_from_plain_views_see_and_edit_the_selection(suite, extension_zip):
    ply = data_file("gshairlod_donut/fused.ply")
    ensure_suite(suite)
    result = run_scenario(
        suite, "paint_views", {"zip": str(extension_zip), "ply": str(ply)}, timeout=600, size="1280x800"
    )
    assert_passed(result)
    values = result["values"]
    assert values["accuracy"] > 0.85 and values["under_strokes"] > 0.85, values
    assert values["tint_selected"] > 0.5 > 0.1 > values["tint_other"], values
    assert values["shrunk"] < values["grown"] and values["grown"] > values["selected_before_grow"], values
    assert values["restored"] == values["gaussians"], values
