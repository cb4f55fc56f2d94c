"""Where the backend comes from, as Blender keeps it: the add-on preferences and MaskSplat's own environment.

The UI and batch jobs both ask `backend_settings()` and hand the result to
`client.backend_for`, so a batch job finds the backend exactly as the UI does.
"""

from __future__ import annotations

from pathlib import Path

import bpy

# The extension's package name (bl_ext.<repo>.masksplat) is what Blender keys preferences by.
ADDON_PACKAGE = __package__.rsplit(".", 1)[0]


def addon_preferences(context=None):
    """The add-on's preferences, or None where the add-on is not enabled as an add-on (the bpy module)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon else None


def managed_venv() -> Path:
    """MaskSplat's own backend environment ("Install Backend"), in the extension's user folder
    (or Blender's config folder when the add-on runs from a checkout rather than as an extension)."""
    try:
        base = bpy.utils.extension_path_user(ADDON_PACKAGE, create=True)
    except ValueError:
        base = bpy.utils.user_resource("CONFIG", path="masksplat")
    return Path(base) / "backend-venv"


def backend_settings(context=None) -> dict:
    """Keyword arguments for `client.backend_for`: preferred_python (the preference),
    managed_venv and preferred_device."""
    prefs = addon_preferences(context)
    python = prefs.backend_python if prefs else ""
    return {
        "preferred_python": bpy.path.abspath(python) if python else None,
        "managed_venv": managed_venv(),
        "preferred_device": prefs.device if prefs else "auto",
    }
