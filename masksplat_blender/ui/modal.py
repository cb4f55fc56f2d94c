"""Long work off Blender's main thread: a progress bar, Esc to cancel, the UI never freezes.

An operator using this gathers everything it needs from Blender in `prepare` (main
thread), does the heavy part in `work` (a worker thread: no bpy access), and writes the
result back in `finish` (main thread). Without a window (`execute`), the same three
steps run in a row, so scripts and batch jobs call the very same operator. `PlanWork`
is these three steps for a scene plan (VotePlan, LabelPlan, PrunePlan, TransferPlan).
"""

from __future__ import annotations

import threading

import bpy
from bpy.props import EnumProperty

from ..client import PlanBackend
from ..core.errors import CANCELLED, outcome_of
from .backend_ops import DEVICE_ITEMS, backend_client
from .common import ObjectMode, SplatOperator
from .reports import USER_ERRORS, report_cancel, report_error


def interactive(context) -> bool:
    """True only with a real window: the bpy module and `blender -b` have a window
    object too, but popups and modal handlers there crash or never run."""
    return context.window is not None and not bpy.app.background


class BackgroundWork:
    """Mixin for operators: define prepare(context) -> bool, work(progress, cancelled), finish(context, result)."""

    def execute(self, context):
        if interactive(context) and self.options.is_invoke:
            # Confirmed from a dialog: still run in the background, with progress and Esc.
            return self._start(context)
        if not self.prepare(context):
            return {"CANCELLED"}
        try:
            result = self.work(lambda done, total: None, lambda: False)
        except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - every failure is reported with its kind
            return self._failed(err)
        return self.finish(context, result)

    def _failed(self, err: BaseException, cancelled: bool = False) -> set:
        if cancelled or outcome_of(err) == CANCELLED:
            return report_cancel(self, err)
        return report_error(self, err)

    def invoke(self, context, event):
        if not interactive(context):
            return self.execute(context)
        return self._start(context)

    def _start(self, context):
        if not self.prepare(context):
            return {"CANCELLED"}
        self._state = {"result": None, "error": None, "done": 0, "total": 1, "cancel": False, "finished": False}
        state = self._state

        def progress(done, total):
            state.update(done=done, total=max(total, 1))

        def run():
            try:
                state["result"] = self.work(progress, lambda: state["cancel"])
            except BaseException as err:  # noqa: BLE001 - reported on the main thread by modal()
                state["error"] = err
            state["finished"] = True

        threading.Thread(target=run, daemon=True).start()
        wm = context.window_manager
        wm.progress_begin(0, 1000)
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        state = self._state
        if event.type == "ESC":
            state["cancel"] = True
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        wm = context.window_manager
        wm.progress_update(int(1000 * state["done"] / state["total"]))
        if not state["finished"]:
            return {"RUNNING_MODAL"}
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        error = state["error"]
        if error is not None:
            return self._failed(error, cancelled=state["cancel"])
        return self.finish(context, state["result"])


class PlanWork(SplatOperator, BackgroundWork):
    """BackgroundWork for a scene plan on the active splat object, on the device the
    `device` property names. The operator names the plan's class in `plan_type` (made from
    the object and the scene) or defines `make_plan(context, obj)`: the plan gathers from
    Blender in object mode, `plan.run(backend, progress, cancelled)` runs in the worker, and
    `plan.apply(obj, scene, result)` writes back in object mode and says what it did."""

    plan_type = None
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="PREFERENCES")

    def make_plan(self, context, obj):
        return self.plan_type(obj, context.scene)

    def prepare(self, context) -> bool:
        obj = context.active_object
        try:
            with ObjectMode(obj):
                self._plan = self.make_plan(context, obj)
            self._backend = PlanBackend(backend_client(context, self.device))
        except USER_ERRORS as err:
            report_error(self, err)
            return False
        return True

    def work(self, progress, cancelled):
        return self._plan.run(self._backend, progress, cancelled)

    def finish(self, context, result) -> set:
        obj = context.active_object
        with ObjectMode(obj):
            message = self._plan.apply(obj, context.scene, result)
        self.report({"INFO"}, message)
        return {"FINISHED"}
