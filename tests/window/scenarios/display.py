"""The true splat display in a real window: what it draws matches the splat render, and it
follows the artist's edits.

Offscreen (GPUOffScreen, the display's own shaders) from two imported cameras at their
resolution; the viewport looking through the first camera, cropped to the camera frame,
in Solid and Material Preview, with the same crop of the empty viewport (splat hidden) to
composite the render over; the old point display for comparison. Then a selection (tint),
a move with real keys (G X 0.03 Enter) and Blender's own Delete (Tab, X, Vertices) on the
selection; after each, offscreen and viewport again. Images land in OUT as .npy for the
pytest side, which compares them with the backend's renders.
"""

from __future__ import annotations

import importlib

import bpy
import numpy as np
from blender_setup import (
    ADDON,
    camera_matrices,
    frame_crop,
    import_scene,
    install_addon,
    look_through,
    quiet_overlays,
    shading,
)


def _modules():
    display = importlib.import_module(f"{ADDON}.ui.splat_display")
    cameras = importlib.import_module(f"{ADDON}.scene.cameras")
    selection = importlib.import_module(f"{ADDON}.scene.selection")
    return display, cameras, selection


def run(ui):
    width, height = ui.args["width"], ui.args["height"]
    cams = ui.args["cameras_named"]
    install_addon(ui)
    display, cameras, selection = _modules()
    name = import_scene(ui, ui.args["ply"], ui.args["cameras"])
    count = ui.main(lambda: len(bpy.data.objects[name].data.vertices))
    ui.main(quiet_overlays)
    ui.main(lambda: cameras.apply_camera_resolution(bpy.context.scene, bpy.data.objects[cams[0]]))
    ui.main(lambda: [o.select_set(False) for o in bpy.context.scene.objects])
    ui.wait(
        lambda: display.display_stats()["gaussians_held"] == count and not display.display_stats()["busy"],
        "the splat display to show every Gaussian",
        120,
    )
    ui.check(
        "the splat display is on for an imported splat",
        ui.main(lambda: bpy.data.objects[name].masksplat.show_splats),
    )

    def offscreen(tag: str, cam: str):
        def draw():
            view, projection = camera_matrices(cam, width, height)
            return display.render_offscreen(
                [bpy.data.objects[name]], view, projection, width, height, background=(0.0, 0.0, 0.0)
            )

        image = ui.main(draw)
        np.save(f"{ui.out}/offscreen_{tag}.npy", np.asarray(image, np.float32))

    def viewport(tag: str, with_background: bool = False):
        ui.wait(lambda: not display.display_stats()["busy"], "the display's pending jobs", 60)
        np.save(f"{ui.out}/viewport_{tag}.npy", frame_crop(ui, width, height))
        if with_background:
            ui.main(lambda: bpy.data.objects[name].hide_set(True))
            np.save(f"{ui.out}/background_{tag}.npy", frame_crop(ui, width, height))
            ui.main(lambda: bpy.data.objects[name].hide_set(False))

    for cam in cams:
        offscreen(cam, cam)
    look_through(ui, cams[0])
    viewport("solid", with_background=True)
    ui.shot("solid")
    ui.main(lambda: shading("MATERIAL"))
    viewport("material", with_background=True)
    ui.shot("material")
    ui.main(lambda: shading("SOLID"))
    ui.main(lambda: setattr(bpy.data.objects[name].masksplat, "show_splats", False))
    viewport("points")
    ui.shot("points")
    ui.main(lambda: setattr(bpy.data.objects[name].masksplat, "show_splats", True))

    # The selection: the Gaussians right of the median (local x), tinted at once.
    def select_right():
        obj = bpy.data.objects[name]
        xs = np.empty(count * 3, np.float32)
        obj.data.vertices.foreach_get("co", xs)
        chosen = xs[0::3] > np.median(xs[0::3])
        selection.set_vertex_selection(obj, chosen)
        return int(chosen.sum())

    chosen = ui.main(select_right)
    ui.record(gaussians=count, selected=chosen)
    offscreen("selected", cams[0])
    viewport("selected")
    ui.shot("selected")

    # Move with real keys, as an artist does: the object active and selected, mouse over the view.
    def make_active():
        obj = bpy.data.objects[name]
        bpy.context.view_layer.objects.active = obj
        obj.select_set(True)

    ui.main(make_active)
    x, y, w, h = ui.region_rect("VIEW_3D")
    ui.move(x + w * 0.6, y + h * 0.4)
    ui.key("g", "x")
    ui.type(str(ui.args["move"]))
    ui.key("Return")
    moved = ui.wait(
        lambda: abs(bpy.data.objects[name].location.x - ui.args["move"]) < 1e-6,
        "G X <move> Enter to move the splat",
        30,
    )
    ui.check("the splat moved with G X <move> Enter", moved)
    ui.main(lambda: bpy.data.objects[name].select_set(False))
    offscreen("moved", cams[0])
    viewport("moved")
    ui.shot("moved")

    # Blender's own Delete on the selection, in Edit Mode.
    ui.main(make_active)
    ui.key("Tab")
    ui.wait(lambda: bpy.data.objects[name].mode == "EDIT", "Edit Mode", 30)
    before = ui.grab()
    ui.key("x")
    ui.wait_changed(before, "the Delete menu")
    ui.key("Return")  # its first entry, Vertices, opens under the mouse
    ui.key("Tab")
    ui.wait(lambda: bpy.data.objects[name].mode == "OBJECT", "Object Mode", 30)
    left = ui.wait(lambda: len(bpy.data.objects[name].data.vertices) == count - chosen and count - chosen,
                   "Delete to remove the selection", 30)  # fmt: skip
    ui.check("Delete removed the selected Gaussians", left == count - chosen, left)
    ui.main(lambda: bpy.data.objects[name].select_set(False))
    ui.wait(
        lambda: (
            display.display_stats()["gaussians_held"] == count - chosen
            and not display.display_stats()["busy"]
        ),
        "the display to follow Delete",
        60,
    )
    offscreen("deleted", cams[0])
    viewport("deleted")
    ui.shot("deleted")
    ui.record(
        stats={k: v for k, v in ui.main(display.display_stats).items() if isinstance(v, (int, float, str))}
    )
