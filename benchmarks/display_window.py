"""Inside Blender (a real window): the measurements benchmarks/bench_display.py prints.

mode "fidelity": per real splat, the display offscreen from each camera, and the viewport
through the first camera (Solid), its empty background, and the old point display, saved
as .npy for the host to compare with the backend's renders.
mode "cost": a 1M-Gaussian splat in a perspective view: what packing and uploading took,
then the view turned in steps (each step a re-sort on the worker thread and an upload),
and redraws with the view still (they must not sort), display on and off.
mode "appear": a large splat imported with the display on or off: the longest time the main
thread did not answer (a 10 ms timer's gaps) from the import's end until the display is up,
and the memory (RSS) before and after.
"""

from __future__ import annotations

import importlib
import math
import time

import bpy
import numpy as np
from blender_setup import (
    ADDON,
    camera_matrices,
    frame_crop,
    install_addon,
    look_through,
    quiet_overlays,
    view3d,
)
from mathutils import Quaternion


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def clear_scene() -> None:
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)


def import_splat(ply: str, cameras: str | None = None, show: bool = True) -> str:
    """(Main thread) File > Import's operator; the display toggled before any redraw."""
    window = bpy.context.window_manager.windows[0]
    area = next(a for a in window.screen.areas if a.type == "VIEW_3D")
    with bpy.context.temp_override(window=window, area=area):
        bpy.ops.masksplat.import_splats(filepath=ply)
        obj = bpy.context.active_object
        obj.masksplat.show_splats = show
        if cameras:
            bpy.ops.masksplat.import_cameras(filepath=cameras, assign_to_active=True)
        obj.select_set(False)
    return obj.name


def view_all() -> None:
    window = bpy.context.window_manager.windows[0]
    area = next(a for a in window.screen.areas if a.type == "VIEW_3D")
    region, r3d = view3d()
    r3d.view_perspective = "PERSP"
    with bpy.context.temp_override(window=window, area=area, region=region):
        bpy.ops.view3d.view_all()


def fidelity(ui, display, cameras) -> None:
    width, height = ui.args["width"], ui.args["height"]
    for splat in ui.args["splats"]:
        ui.main(clear_scene)
        name = ui.main(lambda s=splat: import_splat(s["ply"], s["cameras"]))
        count = ui.main(lambda n=name: len(bpy.data.objects[n].data.vertices))
        ui.wait(
            lambda c=count: (
                display.display_stats()["gaussians_held"] == c and not display.display_stats()["busy"]
            ),
            "the display",
            300,
        )
        tag = splat["tag"]
        for cam in splat["cams"]:

            def draw(cam=cam, name=name):
                view, projection = camera_matrices(cam, width, height)
                return display.render_offscreen([bpy.data.objects[name]], view, projection, width, height)

            np.save(f"{ui.out}/{tag}_offscreen_{cam}.npy", np.asarray(ui.main(draw), np.float32))
        first = splat["cams"][0]
        ui.main(lambda c=first: cameras.apply_camera_resolution(bpy.context.scene, bpy.data.objects[c]))
        look_through(ui, first)
        np.save(f"{ui.out}/{tag}_viewport.npy", frame_crop(ui, width, height))
        ui.shot(f"{tag}_display")
        ui.main(lambda n=name: setattr(bpy.data.objects[n].masksplat, "show_splats", False))
        np.save(f"{ui.out}/{tag}_points.npy", frame_crop(ui, width, height))
        ui.shot(f"{tag}_points")
        ui.main(lambda n=name: bpy.data.objects[n].hide_set(True))
        np.save(f"{ui.out}/{tag}_background.npy", frame_crop(ui, width, height))
        ui.main(
            lambda n=name: (
                bpy.data.objects[n].hide_set(False),
                setattr(bpy.data.objects[n].masksplat, "show_splats", True),
            )
        )


def redraw_ms(ui, frames: int = 5) -> float:
    def timed():
        start = time.perf_counter()
        bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=frames)
        return (time.perf_counter() - start) * 1000.0 / frames

    return ui.main(timed)


def cost(ui, display) -> None:
    name = ui.main(lambda: import_splat(ui.args["ply"]))
    count = ui.main(lambda: len(bpy.data.objects[name].data.vertices))
    ui.main(view_all)
    ui.wait(
        lambda: display.display_stats()["gaussians_held"] == count and not display.display_stats()["busy"],
        "the display",
        600,
    )
    ui.idle(5)
    first = dict(ui.main(display.display_stats))
    steps = []
    for step in range(ui.args.get("turns", 8)):
        before = ui.main(display.display_stats)["sort_count"]

        def turn():
            _, r3d = view3d()
            r3d.view_rotation = Quaternion((0.0, 0.0, 1.0), math.radians(20.0)) @ r3d.view_rotation
            r3d.update()

        ui.main(turn)
        ui.idle(2)
        stats = ui.wait(
            lambda b=before: (s := display.display_stats())["sort_count"] > b and s,
            f"a re-sort after turn {step}",
            120,
        )
        steps.append({k: stats[k] for k in ("sort_seconds", "sort_cpu_seconds", "upload_seconds")})
    sorts = ui.main(display.display_stats)["sort_count"]
    on_ms = redraw_ms(ui)
    still = ui.main(display.display_stats)["sort_count"] == sorts
    ui.check("redraws with the view still do not sort", still)
    ui.main(lambda: setattr(bpy.data.objects[name].masksplat, "show_splats", False))
    ui.idle(3)
    off_ms = redraw_ms(ui)
    ui.record(gaussians=count, first=first, steps=steps, redraw_ms_display=on_ms, redraw_ms_points=off_ms,
              sorts_during_still_redraws=0 if still else 1)  # fmt: skip


def appear(ui, display) -> None:
    show = ui.args["show"]
    ticks: list[float] = []

    def tick():
        ticks.append(time.monotonic())
        return 0.01

    bpy.app.timers.register(tick, first_interval=0.01)
    ui.idle(10)
    before = ui.main(rss_mb)
    start = time.monotonic()
    name = ui.main(lambda: import_splat(ui.args["ply"], show=show))
    imported = time.monotonic()
    count = ui.main(lambda: len(bpy.data.objects[name].data.vertices))
    if show:
        ui.wait(
            lambda: (
                display.display_stats()["gaussians_held"] == count and not display.display_stats()["busy"]
            ),
            "the display",
            600,
        )
    ready = time.monotonic()
    ui.idle(20)
    after = ui.main(rss_mb)
    gaps = np.diff([t for t in ticks if t >= imported - 0.02])
    shown = [t for t in ticks if imported - 0.02 <= t <= ready + 0.5]
    ui.record(gaussians=count, import_seconds=imported - start, ready_seconds=ready - imported,
              longest_gap_after_import=float(np.diff(shown).max()) if len(shown) > 1 else None,
              longest_gap_any=float(gaps.max()) if len(gaps) else None, rss_before_mb=before, rss_after_mb=after,
              stats=dict(ui.main(display.display_stats)) if show else {})  # fmt: skip


def run(ui):
    install_addon(ui)
    display = importlib.import_module(f"{ADDON}.ui.splat_display")
    cameras = importlib.import_module(f"{ADDON}.scene.cameras")
    ui.main(quiet_overlays)
    mode = ui.args["mode"]
    if mode == "fidelity":
        fidelity(ui, display, cameras)
    elif mode == "cost":
        cost(ui, display)
    else:
        appear(ui, display)
