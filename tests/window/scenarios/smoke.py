"""Smoke: paint a stroke in an imported camera's view with real mouse events, keep it,
compute the selection; the mask and the selection exist and lie under the stroke."""

from __future__ import annotations

import bpy
import numpy as np
from blender_setup import camera_frame, import_scene, install_addon, look_through


def run(ui):
    install_addon(ui)
    name = import_scene(ui, ui.args["ply"], ui.args["cameras"])
    look_through(ui, ui.args["camera"])
    ui.invoke("masksplat.preview_splats")
    ui.idle(5)
    ui.shot("preview")
    frame = np.array(camera_frame(ui))
    left, right = frame[:, 0].min(), frame[:, 0].max()
    bottom, top = frame[:, 1].min(), frame[:, 1].max()
    ui.invoke("masksplat.paint_mask", tool="BRUSH")
    y = (bottom + top) / 2
    stroke = [ui.in_region(left + (right - left) * t, y) for t in np.linspace(0.3, 0.7, 12)]
    ui.drag(stroke)
    ui.shot("painted")
    ui.key("Return")
    cam = ui.args["camera"]
    painted = ui.wait(lambda: bpy.data.objects[cam].masksplat.mask is not None, "the mask to be kept", 30)
    ui.check("the mask is kept", painted)
    ui.invoke("masksplat.compute_selection")
    ui.wait(lambda: "ms_fg" in bpy.data.objects[name].data.attributes, "Compute Selection to finish", 180)
    count = ui.main(lambda: sum(v.select for v in bpy.data.objects[name].data.vertices))
    ui.record(selected=count, gaussians=ui.main(lambda: len(bpy.data.objects[name].data.vertices)))
    ui.shot("selected")
