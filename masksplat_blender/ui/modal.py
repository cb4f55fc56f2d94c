"""Long work off Blender's main thread: a progress bar, Esc to cancel, the UI never freezes.

An operator using this gathers everything it needs from Blender in `prepare` (main
thread), does the heavy part in `work` (a worker thread: no bpy access), and writes the
result back in `finish` (main thread). Without a window (`execute`), the same three
steps run in a row, so scripts and batch jobs call the very same operator.
"""

from __future__ import annotations

import threading

import bpy

from ..client import BackendCancelled, BackendError


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
        except BackendCancelled:
            self.report({"WARNING"}, f"{self.bl_label} cancelled; nothing changed")
            return {"CANCELLED"}
        except (BackendError, ValueError) as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        return self.finish(context, result)

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
            except (BackendError, ValueError) as err:
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
        if isinstance(error, BackendCancelled) or (state["cancel"] and error is not None):
            self.report({"WARNING"}, f"{self.bl_label} cancelled; nothing changed")
            return {"CANCELLED"}
        if error is not None:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        return self.finish(context, state["result"])
