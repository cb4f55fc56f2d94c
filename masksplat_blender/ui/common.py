"""What the operator modules share: operators on the active splat object, object mode
around their data access, and loading one file per camera from a folder."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import StringProperty

from ..core.masks import MaskError, check_mask_size, match_mask_files
from ..scene.cameras import camera_resolution, cameras_by_stem
from ..scene.selection import scene_cameras
from ..scene.splat_object import is_splat_object
from .reports import report_error


class SplatOperator:
    """Mixin for an operator on the active splat object: it runs only when one is active,
    and what it changes is one Undo step."""

    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return is_splat_object(context.active_object)


class ObjectMode:
    """Run in object mode (mesh data, not the edit-mode copy) and come back."""

    def __init__(self, obj):
        self.obj, self.mode = obj, obj.mode

    def __enter__(self):
        if self.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")

    def __exit__(self, *exc):
        if self.mode != "OBJECT" and self.obj.name in bpy.context.view_layer.objects:
            bpy.ops.object.mode_set(mode=self.mode)


class LoadCameraFiles(SplatOperator):
    """Mixin for an operator that loads one file per camera from a folder, named after the
    camera's image (e.g. SAM output). Every file is read and checked before any is stored, so
    one bad file changes nothing. The operator defines `what` (the files' kind, for messages),
    `read_file(path)` and `store_files(obj, {camera object: data}) -> str` (what it loaded)."""

    what = "mask"
    directory: StringProperty(name="Folder", subtype="DIR_PATH")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        obj = context.active_object
        try:
            loaded, missing = self._read_all(context, obj)
            summary = self.store_files(obj, loaded)
        except ValueError as err:
            return report_error(self, err)
        if missing:
            summary += f"; {len(missing)} cameras have no file ({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''})"
        self.report({"INFO"}, summary)
        return {"FINISHED"}

    def _read_all(self, context, obj) -> tuple[dict, list[str]]:
        """({camera object: read_file(its file)}, the names of cameras without a file)."""
        cameras = scene_cameras(obj, context.scene)
        if not cameras:
            raise MaskError(f"'{obj.name}' has no cameras: import or add cameras first")
        by_name = cameras_by_stem(cameras)
        files = match_mask_files(Path(bpy.path.abspath(self.directory)), by_name)
        loaded = {}
        for name, path in files.items():
            width, height, _, _ = camera_resolution(by_name[name], context.scene)
            data = self.read_file(path)
            check_mask_size(name, data, width, height, self.what)
            loaded[by_name[name]] = data
        return loaded, sorted(set(by_name) - set(files))
