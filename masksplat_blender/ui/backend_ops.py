"""Preferences actions for the backend: install MaskSplat's own environment, check what runs."""

from __future__ import annotations

import threading
from pathlib import Path

import bpy
from bpy.props import EnumProperty

from .. import client
from .preferences import ADDON_PACKAGE, get_preferences


def managed_venv() -> Path:
    """MaskSplat's own backend environment, in the extension's user folder (or Blender's
    config folder when the add-on runs from a checkout rather than as an extension)."""
    try:
        base = bpy.utils.extension_path_user(ADDON_PACKAGE, create=True)
    except ValueError:
        base = bpy.utils.user_resource("CONFIG", path="masksplat")
    return client.managed_venv_dir(base)


def backend_python(context=None) -> tuple[str, str]:
    """The Python that runs the backend (preferences, managed venv, or this Python)."""
    prefs = get_preferences(context)
    return client.find_backend_python(prefs.backend_python if prefs else None, managed_venv())


# Device choice of every operator that runs the backend.
DEVICE_ITEMS = (
    ("PREFERENCES", "Preferences", "The device chosen in the add-on preferences"),
    ("auto", "Automatic", "gsplat on CUDA when available, else the CPU"),
    ("cpu", "CPU", "MaskSplat's CPU rasterizer"),
    ("cuda", "CUDA", "gsplat on an NVIDIA GPU"),
)


def backend_client(context=None, device: str | None = None) -> client.BackendClient:
    """The shared warm backend, on `device` or (None or "PREFERENCES", see DEVICE_ITEMS) the
    one chosen in the preferences."""
    prefs = get_preferences(context)
    python, _ = backend_python(context)
    if device in (None, "PREFERENCES"):
        device = prefs.device if prefs else "auto"
    return client.get_client(python, device)


class MASKSPLAT_OT_install_backend(bpy.types.Operator):
    """Create MaskSplat's own Python environment with torch (downloads packages; needs the network)"""

    bl_idname = "masksplat.install_backend"
    bl_label = "Install Backend"

    flavour: EnumProperty(
        name="Build",
        items=(("cpu", "CPU", "PyTorch for the CPU (smaller download)"), ("cuda", "CUDA", "PyTorch with CUDA and gsplat, for NVIDIA GPUs")),
        default="cpu",
    )

    def invoke(self, context, event):
        if not bpy.app.online_access:
            self.report({"ERROR"}, "Online access is off: allow it in Preferences > System > Network to install the backend")
            return {"CANCELLED"}
        self._state = {"done": False, "error": None, "step": ""}
        folder = managed_venv()

        def work():
            try:
                client.install_backend_venv(folder, self.flavour, lambda i, what: self._state.update(step=what))
            except Exception as err:  # noqa: BLE001 - reported to the user below
                self._state["error"] = str(err)
            self._state["done"] = True

        threading.Thread(target=work, daemon=True).start()
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.workspace.status_text_set(f"Installing MaskSplat backend: {self._state['step']}")
        if not self._state["done"]:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        if self._state["error"]:
            self.report({"ERROR"}, self._state["error"])
            return {"CANCELLED"}
        client.shutdown_client()
        self.report({"INFO"}, f"MaskSplat backend installed in {managed_venv()}")
        return {"FINISHED"}

    def execute(self, context):
        client.install_backend_venv(managed_venv(), self.flavour)
        return {"FINISHED"}


class MASKSPLAT_OT_check_backend(bpy.types.Operator):
    """Start the backend and report which Python, torch and device it uses"""

    bl_idname = "masksplat.check_backend"
    bl_label = "Check Backend"

    def execute(self, context):
        try:
            python, how = backend_python(context)
            backend = backend_client(context)
            backend.start()
        except client.BackendError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        info = backend.info
        self.report(
            {"INFO"},
            f"Backend: {python} ({how}), torch {info.get('torch')}, CUDA {'yes' if info.get('cuda') else 'no'}, "
            f"gsplat {'yes' if info.get('gsplat') else 'no'}",
        )
        return {"FINISHED"}


CLASSES = (MASKSPLAT_OT_install_backend, MASKSPLAT_OT_check_backend)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    client.shutdown_client()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
