"""`render`: a PNG per camera of the splat (SH included), through the backend."""

from __future__ import annotations

from .common import backend_for, ensure_addon, load_scene, number, require, scene_cameras_by_stem


def inputs(args) -> list:
    return [require(args.ply, "--ply"), require(args.cameras, "--cameras", "any")]


def run(args, outputs) -> dict:
    background = [number(value, "--background") for value in args.background]
    folder = outputs.folder(args.out, "--out")
    bpy = ensure_addon()
    from ..client import render_views
    from ..core.images import write_png
    from ..scene.cameras import camera_from_object
    from ..scene.selection import world_gaussians, world_sh

    obj = load_scene(bpy, args.ply, args.cameras)
    cams = scene_cameras_by_stem(bpy, obj)
    files = {stem: folder.file(f"{stem}.png") for stem in cams}
    cameras = [camera_from_object(cam, bpy.context.scene) for cam in cams.values()]
    images = render_views(backend_for(args.device), world_gaussians(obj), world_sh(obj), cameras, background=background)
    for stem, (rgb, _) in zip(cams, images, strict=True):
        with files[stem].writing() as temp:
            write_png(temp, rgb)
    return {"command": "render", "renders": len(images), "out": str(args.out)}
