"""Preferences actions for the backend: install MaskSplat's own environment, check what runs,
download DINOv2 weights for Transfer Labels."""

from __future__ import annotations

import threading

import bpy
from bpy.props import EnumProperty, StringProperty

from .. import client
from ..scene.settings import backend_settings, managed_venv
from .common import Reported
from .preferences import get_preferences
from .reports import report_error


def backend_python(context=None) -> tuple[str, str]:
    """The Python that runs the backend (environment, preferences, managed venv, or this Python) and how it was found."""
    settings = backend_settings(context)
    return client.find_backend_python(settings["preferred_python"], settings["managed_venv"])


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
    return client.backend_for(device, **backend_settings(context))


def network_allowed(operator, what: str) -> bool:
    """Blender's online access, checked where the network is used; reports when it is off."""
    if bpy.app.online_access:
        return True
    report_error(operator, client.BackendError("offline", client.OFFLINE_MESSAGE.format(what)))
    return False


class MASKSPLAT_OT_install_backend(bpy.types.Operator):
    """Create MaskSplat's own Python environment with torch (downloads packages; needs the network)"""

    bl_idname = "masksplat.install_backend"
    bl_label = "Install Backend"

    flavour: EnumProperty(
        name="Build",
        items=(("cpu", "CPU", "PyTorch for the CPU (smaller download)"), ("cuda", "CUDA", "PyTorch with CUDA and gsplat, for NVIDIA GPUs")),
        default="cpu",
    )

    def _install(self, progress=None) -> client.InstallResult:
        return client.install_backend_venv(managed_venv(), self.flavour, progress, allow_network=bpy.app.online_access)

    def invoke(self, context, event):
        if not network_allowed(self, "install the backend"):
            return {"CANCELLED"}
        self._state = {"done": False, "error": None, "step": "", "result": None}

        def progress(step, total, text):
            self._state["step"] = f"step {step + 1} of {total}: {text}"

        def work():
            try:
                self._state["result"] = self._install(progress)
            except Exception as err:  # noqa: BLE001 - reported to the user below
                self._state["error"] = err
            self._state["done"] = True

        threading.Thread(target=work, daemon=True).start()
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.workspace.status_text_set(f"Installing MaskSplat backend, {self._state['step']}")
        if not self._state["done"]:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        if self._state["error"] is not None:
            return report_error(self, self._state["error"])
        return self._finished(self._state["result"])

    def execute(self, context):
        if not network_allowed(self, "install the backend"):
            return {"CANCELLED"}
        try:
            result = self._install()
        except (client.BackendError, OSError, ValueError) as err:
            return report_error(self, err)
        return self._finished(result)

    def _finished(self, result: client.InstallResult) -> set:
        client.shutdown_client()
        for warning in result.warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"MaskSplat backend installed: {result.python}" + "".join(f"; {n}" for n in result.notes))
        return {"FINISHED"}


def describe_backend(python: str, how: str, info: dict) -> str:
    """One line: which Python, torch and the CUDA it was built for, the device, gsplat's state."""
    torch = f"torch {info.get('torch')}" if info.get("torch") else "no torch"
    built = f" (CUDA {info['torch_cuda']})" if info.get("torch_cuda") else " (CPU build)" if info.get("torch") else ""
    device = "a CUDA device" if info.get("cuda") else "no CUDA device"
    if not info.get("gsplat"):
        gsplat = "no gsplat"
    elif info.get("gsplat_prebuilt"):
        gsplat = "gsplat prebuilt"
    else:
        gsplat = "gsplat compiles on first use (needs the CUDA toolkit and a C++ compiler)"
    return f"Backend: {python} ({how}); {torch}{built}, {device}, {gsplat}, numba {'yes' if info.get('numba') else 'no'}"


class MASKSPLAT_OT_check_backend(Reported, bpy.types.Operator):
    """Start the backend and report which Python, torch, CUDA and gsplat it uses"""

    bl_idname = "masksplat.check_backend"
    bl_label = "Check Backend"

    def run(self, context) -> str:
        python, how = backend_python(context)
        backend = backend_client(context)
        backend.start()
        return describe_backend(python, how, backend.info)


class MASKSPLAT_OT_download_model(bpy.types.Operator):
    """Download DINOv2 weights (safetensors only) into a folder, for Transfer Labels (needs the network)"""

    bl_idname = "masksplat.download_model"
    bl_label = "Download Model"

    model_id: StringProperty(name="Model", default="facebook/dinov2-small")
    folder: StringProperty(name="Folder", subtype="DIR_PATH")

    def execute(self, context):
        if not network_allowed(self, "download the model"):
            return {"CANCELLED"}
        if not self.folder:
            self.report({"ERROR"}, "choose a folder for the model")
            return {"CANCELLED"}
        try:
            python, _ = backend_python(context)
            client.download_model(python, self.model_id, bpy.path.abspath(self.folder), allow_network=bpy.app.online_access)
        except (client.BackendError, OSError, ValueError) as err:
            return report_error(self, err)
        prefs = get_preferences(context)
        if prefs is not None:
            prefs.feature_model = bpy.path.abspath(self.folder)
        self.report({"INFO"}, f"Downloaded {self.model_id} to {self.folder}")
        return {"FINISHED"}


CLASSES = (MASKSPLAT_OT_install_backend, MASKSPLAT_OT_check_backend, MASKSPLAT_OT_download_model)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    client.shutdown_client()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
