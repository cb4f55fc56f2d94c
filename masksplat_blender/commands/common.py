"""What every batch command needs: Blender with the add-on, operators whose errors keep their kind,
the scene loaded from files, checked inputs, and the backend found as the UI finds it."""

from __future__ import annotations

import importlib
import io
import json
import math
import sys
from contextlib import redirect_stderr
from pathlib import Path

from ..core import errors, interrupts
from ..core.errors import BadInput, MaskSplatError


def ensure_addon():
    """bpy, with the add-on registered unless its operators are already there (an installed extension).

    A Ctrl-C while the bpy module loads takes effect once it has loaded: cut short, Blender's
    start leaves it to crash at exit (and its session folder behind)."""
    with interrupts.deferred():
        import bpy

        if not hasattr(bpy.types, "MASKSPLAT_OT_import_splats"):
            importlib.import_module(__package__.rsplit(".", 1)[0]).register()
    return bpy


def run_operator(op, **kwargs) -> None:
    """Call an operator; a failure is raised as the operator's own error (its kind intact).

    Operators record the error they report (ui.reports); an exception that escaped one is
    Python's last error. Blender's own print of such a traceback is kept for --debug."""
    errors.take()
    sys.last_value = None
    printed = io.StringIO()
    try:
        with redirect_stderr(printed):
            result = op(**kwargs)
    except RuntimeError as err:
        raise _operator_error(op, str(err), printed.getvalue()) from None
    if "FINISHED" not in result:
        raise _operator_error(op, f"{op.idname_py()} did not finish ({', '.join(sorted(result))})", printed.getvalue())


def _operator_error(op, text: str, printed: str) -> BaseException:
    if interrupts.requested():
        return errors.Cancelled()
    err = errors.take() or getattr(sys, "last_value", None)
    if err is not None:
        if isinstance(err, MaskSplatError) and not err.detail:
            err.detail = printed
        return err
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("Location:")]
    message = lines[-1].replace("Error: ", "", 1).strip() if lines else f"{op.idname_py()} failed"
    return MaskSplatError(message, detail=f"{printed}\n{text}".strip())


def require(path, flag: str, kind: str = "file") -> Path:
    """An input that must exist: a "file", a "folder", or "any" (a COLMAP model is a folder)."""
    if not path:
        raise BadInput(f"{flag}: no path given")
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{flag} {path}: no such {'file or folder' if kind == 'any' else kind}")
    if kind == "file" and path.is_dir():
        raise BadInput(f"{flag} {path} is a folder; give a file")
    if kind == "folder" and not path.is_dir():
        raise BadInput(f"{flag} {path} is not a folder")
    return path


def number(value, flag: str, low: float | None = None, high: float | None = None, whole: bool = False):
    """A finite number from the command line or a jobs file, within [low, high] (and whole)."""
    try:
        ok = not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok or (whole and not float(value).is_integer()):
        raise BadInput(f"{flag} must be a finite {'whole ' if whole else ''}number, not {value!r}")
    value = int(value) if whole else float(value)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
        raise BadInput(f"{flag} must be {span}, not {value!r}")
    return value


def setting(bpy, name: str, value, flag: str):
    """A value for a splat object's setting (`obj.masksplat.<name>`), checked against the
    setting's own range (Blender would clamp it silently)."""
    return _in_range(bpy.types.Object.bl_rna.properties["masksplat"].fixed_type.properties[name], value, flag)


def option(op, name: str, value, flag: str):
    """A value for an operator's property, checked against its range (Blender would clamp it silently)."""
    return _in_range(op.get_rna_type().properties[name], value, flag)


def _in_range(prop, value, flag: str):
    return number(value, flag, prop.hard_min, prop.hard_max, whole=prop.type == "INT")


def export(bpy, output, **kwargs) -> None:
    """The active splat object written to an output (the export operator picks the format from its extension)."""
    with output.writing() as temp:
        run_operator(bpy.ops.masksplat.export_splats, filepath=str(temp), **kwargs)


def write_json(output, data: dict) -> None:
    with output.writing() as temp:
        temp.write_text(json.dumps(data, indent=2) + "\n")


def write_npz(output, **arrays) -> None:
    """An .npz of `arrays` under exactly the output's name (numpy would add .npz to a name without it)."""
    import numpy as np

    with output.writing() as temp, open(temp, "wb") as handle:
        np.savez(handle, **arrays)


def load_scene(bpy, ply, cameras, drop_invalid: bool = False):
    """A fresh scene with the splat file as the active object and its cameras assigned to it."""
    bpy.ops.wm.read_homefile(use_empty=True)
    run_operator(bpy.ops.masksplat.import_splats, filepath=str(ply), drop_invalid=drop_invalid)
    obj = bpy.context.active_object
    run_operator(bpy.ops.masksplat.import_cameras, filepath=str(cameras), assign_to_active=True)
    bpy.context.view_layer.objects.active = obj
    return obj


def scene_cameras_by_stem(bpy, obj) -> dict:
    """{file stem: camera object} of the object's cameras (core.cameras.image_stem decides the stem)."""
    from ..scene.cameras import cameras_by_stem
    from ..scene.selection import scene_cameras

    return cameras_by_stem(scene_cameras(obj, bpy.context.scene))


def backend_for(device: str):
    """The backend, found exactly as the UI finds it (environment, preferences, managed environment, this Python)."""
    from ..client import backend_for as client_backend_for
    from ..scene.settings import backend_settings

    return client_backend_for(device, **backend_settings())
