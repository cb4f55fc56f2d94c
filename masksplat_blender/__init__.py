"""MaskSplat: turn 2D masks into 3D selections of Gaussian splats.

This module imports without bpy so the backend process (its own Python, with torch)
can import `core`; the Blender layers are imported only when Blender registers us.
"""

from __future__ import annotations


def register() -> None:
    from . import ui

    ui.register()


def unregister() -> None:
    from . import ui

    ui.unregister()
