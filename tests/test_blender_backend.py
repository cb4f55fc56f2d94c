"""The add-on finds and starts its backend from Blender (bpy module), and reports it."""

from __future__ import annotations

import pytest


def test_check_backend_uses_this_python_with_torch(blend, installed_addon):
    assert blend.ops.masksplat.check_backend() == {"FINISHED"}
    client = installed_addon.client
    shared = client._SHARED["client"]
    assert shared.alive() and shared.info["torch"]
    installed_addon.client.shutdown_client()


def test_wrong_backend_python_preference_is_reported(blend, installed_addon, tmp_path):
    prefs = installed_addon.ui.preferences.get_preferences()
    prefs.backend_python = str(tmp_path / "missing-python")
    try:
        with pytest.raises(RuntimeError, match="does not exist or cannot be run"):
            blend.ops.masksplat.check_backend()
    finally:
        prefs.backend_python = ""
