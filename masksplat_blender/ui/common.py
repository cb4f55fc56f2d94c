"""What the operator modules share: operators that report what they did, operators on the
active splat object, object mode around their data access, and loading one file per camera
from a folder."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import StringProperty

from ..core.masks import MaskError, check_mask_size, match_mask_files
from ..scene.cameras import camera_resolution, cameras_by_stem
from ..scene.masks import load_mask_file
from ..scene.selection import scene_cameras
from ..scene.splat_object import is_splat_object
from .reports import USER_ERRORS, report_error


class Refused(Exception):
    """An operator has nothing to work on (e.g. nothing is selected): a warning, not an error."""


class Reported:
    """Mixin for an operator whose `run(context)` does the work and returns what it did: a
    line for the status bar (or nothing), or a report with `warnings` and a `summary`. What
    it raises cancels the operator, reported in one line: `Refused` as a warning, a user's
    error (reports.USER_ERRORS) as an error, kept for a batch job too (reports.report_error)."""

    def execute(self, context):
        try:
            done = self.run(context)
        except Refused as why:
            self.report({"WARNING"}, str(why))
            return {"CANCELLED"}
        except USER_ERRORS as err:
            return report_error(self, err)
        for line in getattr(done, "warnings", ()):
            self.report({"WARNING"}, line)
        summary = getattr(done, "summary", done)
        if summary:
            self.report({"INFO"}, summary)
        return {"FINISHED"}


class ActiveSplat:
    """Mixin for an operator or a panel that is there only while a splat object is active."""

    @classmethod
    def poll(cls, context):
        return is_splat_object(context.active_object)


class SplatOperator(ActiveSplat):
    """Mixin for an operator on the active splat object: it runs only when one is active,
    and what it changes is one Undo step."""

    bl_options = {"REGISTER", "UNDO"}


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


class SplatEdit(SplatOperator, Reported):
    """A Reported operator on the active splat object's data: it defines `edit(context, obj)`,
    which runs in object mode."""

    def run(self, context):
        obj = context.active_object
        with ObjectMode(obj):
            return self.edit(context, obj)


class LoadCameraFiles(SplatOperator, Reported):
    """Mixin for an operator that loads one file per camera from a folder, named after the
    camera's image (e.g. SAM output). Every file is read and checked before any is stored, so
    one bad file changes nothing. The operator defines `store_files(obj, {camera object:
    data}) -> str` (what it loaded) and, for files other than masks, `what` (their kind, for
    messages) and `read_file(path)`."""

    what = "mask"
    read_file = staticmethod(load_mask_file)
    directory: StringProperty(name="Folder", subtype="DIR_PATH")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def run(self, context) -> str:
        obj = context.active_object
        loaded, missing = self._read_all(context, obj)
        summary = self.store_files(obj, loaded)
        if missing:
            summary += f"; {len(missing)} cameras have no file ({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''})"
        return summary

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


def add_handlers(handlers) -> None:
    """Append (bpy.app.handlers list name, function) pairs: a module's app handlers in one place."""
    for name, handler in handlers:
        getattr(bpy.app.handlers, name).append(handler)


def remove_handlers(handlers) -> None:
    """Remove what add_handlers appended (those still there), last first."""
    for name, handler in reversed(handlers):
        registered = getattr(bpy.app.handlers, name)
        if handler in registered:
            registered.remove(handler)
