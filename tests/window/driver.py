"""Drives real Blender in a real window for the window tests (runs inside Blender, not pytest).

    blender --python tests/window/driver.py -- '{"scenario": ..., "out": ..., ...}'

The scenario's `run(ui)` runs in a worker thread, so Blender's event loop keeps going while
it waits: bpy is touched only through `ui.main(fn)` (run on the main thread by a timer),
the mouse and keyboard only through xdotool (real X events, as an artist's hand makes
them). Screenshots come from ImageMagick's `import`. Every check and the scenario's end
(or its traceback) land in OUT/result.json, then Blender quits.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import runpy
import subprocess
import sys
import threading
import time
import traceback

import bpy

ARGS = json.loads(sys.argv[sys.argv.index("--") + 1])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scenarios import blender_setup


class Window:
    """What a scenario may do: main-thread calls, waits for conditions, input events, screenshots."""

    def __init__(self, out: str, args: dict):
        self.out, self.args = out, args
        self.checks: list[dict] = []
        self.shots: list[str] = []
        self.values: dict = {}
        self._calls: queue.Queue = queue.Queue()
        self.started = time.monotonic()

    # -- the main thread ---------------------------------------------------------------
    def pump(self):
        """Timer on the main thread: runs the calls the scenario thread queued."""
        while True:
            try:
                fn, reply = self._calls.get_nowait()
            except queue.Empty:
                return 0.02
            try:
                reply.put((True, fn()))
            except BaseException as err:  # noqa: BLE001 - handed to the scenario thread
                reply.put((False, err))

    def main(self, fn, timeout: float = 120.0):
        """Run fn() on Blender's main thread and return its value (its exception is raised here)."""
        reply: queue.Queue = queue.Queue()
        self._calls.put((fn, reply))
        ok, value = reply.get(timeout=timeout)
        if not ok:
            raise value
        return value

    def wait(self, predicate, what: str, timeout: float = 120.0, every: float = 0.1):
        """Wait until predicate() (main thread) is truthy; returns its value. Timeout only bounds a hang."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.main(predicate)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:g} s for {what}")
            time.sleep(every)

    def idle(self, frames: int = 3):
        """Let Blender handle pending events and redraw a few times."""
        for _ in range(frames):
            self.main(lambda: None)
            time.sleep(0.05)

    # -- geometry ----------------------------------------------------------------------
    def area(self, area_type: str = "VIEW_3D"):
        def find():
            window = bpy.context.window_manager.windows[0]
            return next((a for a in window.screen.areas if a.type == area_type), None)

        return self.main(find)

    def region_rect(
        self, area_type: str = "VIEW_3D", region_type: str = "WINDOW"
    ) -> tuple[int, int, int, int]:
        """(x, y, width, height) of a region in window pixels, y up (Blender's convention)."""

        def rect():
            window = bpy.context.window_manager.windows[0]
            area = next(a for a in window.screen.areas if a.type == area_type)
            region = next(r for r in area.regions if r.type == region_type)
            return region.x, region.y, region.width, region.height

        return self.main(rect)

    def to_screen(self, x: float, y: float) -> tuple[int, int]:
        """Window pixels (origin bottom-left) to X screen pixels (origin top-left)."""
        height = self.main(lambda: bpy.context.window_manager.windows[0].height)
        return int(round(x)), int(round(height - 1 - y))

    def in_region(self, rx: float, ry: float, area_type: str = "VIEW_3D") -> tuple[float, float]:
        """Region pixels (what operators see as mouse_region_x/y) to window pixels."""
        x, y, _, _ = self.region_rect(area_type)
        return x + rx, y + ry

    # -- input -------------------------------------------------------------------------
    def xdo(self, *args):
        subprocess.run(["xdotool", *map(str, args)], check=True)

    def move(self, x, y):
        """Move the pointer to window pixels (x, y)."""
        self.xdo("mousemove", *self.to_screen(x, y))
        time.sleep(0.03)

    def click(self, x, y, button: int = 1, modifiers=()):
        self.move(x, y)
        for key in modifiers:
            self.xdo("keydown", key)
        self.xdo("click", button)
        for key in reversed(modifiers):
            self.xdo("keyup", key)
        self.idle()

    def drag(self, points, button: int = 1, modifiers=(), step_pause: float = 0.03):
        """Press at the first point, move through the rest, release: one stroke."""
        self.move(*points[0])
        for key in modifiers:
            self.xdo("keydown", key)
        self.xdo("mousedown", button)
        self.idle(2)
        for x, y in points[1:]:
            self.xdo("mousemove", *self.to_screen(x, y))
            time.sleep(step_pause)
        self.idle(2)
        self.xdo("mouseup", button)
        for key in reversed(modifiers):
            self.xdo("keyup", key)
        self.idle()

    def key(self, *names):
        """Press keys in turn, e.g. key("Return") or key("ctrl+z")."""
        for name in names:
            self.xdo("key", name)
            self.idle(2)

    def type(self, text: str):
        self.xdo("type", "--delay", "30", text)
        self.idle(2)

    def search(self, text: str):
        """F3 search over the mouse's area, type `text`, Enter: how an artist finds a menu entry.
        Waits for the popup to open and for its results to show (keys typed before the popup
        is there would act as shortcuts in the viewport)."""
        before = self.grab()
        self.key("F3")
        self.wait_changed(before, "the F3 search popup")
        opened = self.grab()
        self.type(text)
        self.wait_changed(opened, f"the search results for {text!r}")
        self.idle(3)
        self.key("Return")

    def wait_changed(self, before, what: str, timeout: float = 60.0, share: float = 0.001):
        """Wait until more than `share` of the screen's pixels differ from `before` (a grab())."""
        deadline = time.monotonic() + timeout
        while (self.grab() != before).any(axis=2).mean() <= share:
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:g} s for {what} (the screen did not change)")
            time.sleep(0.1)

    def invoke(self, idname: str, area_type: str = "VIEW_3D", **props):
        """Start an operator as its button does (INVOKE_DEFAULT, in the area's context)."""

        def run():
            window = bpy.context.window_manager.windows[0]
            area = next(a for a in window.screen.areas if a.type == area_type)
            region = next(r for r in area.regions if r.type == "WINDOW")
            module, name = idname.split(".")
            with bpy.context.temp_override(window=window, area=area, region=region):
                return getattr(getattr(bpy.ops, module), name)("INVOKE_DEFAULT", **props)

        return self.main(run)

    # -- evidence ----------------------------------------------------------------------
    def shot(self, name: str) -> str:
        """A screenshot of the whole screen after a redraw, OUT/NN_name.png."""
        self.main(lambda: bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=1))
        path = os.path.join(self.out, f"{len(self.shots):02d}_{name}.png")
        subprocess.run(["import", "-window", "root", path], check=True)
        self.shots.append(path)
        print(f"[{time.monotonic() - self.started:6.1f} s] screenshot {os.path.basename(path)}", flush=True)
        return path

    def grab(self):
        """The whole screen now, after a redraw: uint8 [H, W, 3], row 0 at the top (X screen pixels)."""
        import numpy as np

        self.main(lambda: bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=1))
        width, height = map(int, subprocess.run(["xdotool", "getdisplaygeometry"], check=True, capture_output=True,
                                                text=True).stdout.split())  # fmt: skip
        raw = subprocess.run(
            ["import", "-window", "root", "-depth", "8", "rgb:-"], check=True, capture_output=True
        ).stdout
        return np.frombuffer(raw, np.uint8)[: width * height * 3].reshape(height, width, 3)

    def modal_operators(self) -> list[str]:
        """The operators running modally in the window now (bl_idname, e.g. MASKSPLAT_OT_paint_mask)."""
        return self.main(
            lambda: [op.bl_idname for op in bpy.context.window_manager.windows[0].modal_operators]
        )

    def check(self, name: str, ok: bool, detail="") -> bool:
        self.checks.append({"name": name, "ok": bool(ok), "detail": str(detail)})
        print(
            f"[{time.monotonic() - self.started:6.1f} s] {'ok' if ok else 'FAILED'}: {name} ({detail})",
            flush=True,
        )
        return bool(ok)

    def record(self, **values):
        """Numbers the pytest side asserts on."""
        self.values.update(values)


def plain_function_keys() -> None:
    """Make F1-F12 one-level keys on the virtual screen. Debian's keymap gives them five levels
    (the last switches virtual terminals) and xdotool 3.2016 then presses Alt with them, so F3
    reached Blender as Alt+F3 and no search opened."""
    display = os.environ["DISPLAY"]
    keymap = subprocess.run(
        ["xkbcomp", "-xkb", display, "-"], check=True, capture_output=True, text=True
    ).stdout
    plain = re.sub(
        r'key <FK(\d\d)> \{\s*type= "CTRL\+ALT",\s*symbols\[Group1\]= \[\s*(F\d+),[^\]]*\]\s*\};',
        r"key <FK\1> { [ \2 ] };",
        keymap,
    )
    subprocess.run(["xkbcomp", "-", display], input=plain, check=True, capture_output=True, text=True)


def main():
    out = ARGS["out"]
    plain_function_keys()
    os.makedirs(out, exist_ok=True)
    ui = Window(out, ARGS)
    result = {"blender": bpy.app.version_string, "error": None}

    def scenario():
        try:
            runpy.run_path(ARGS["scenario"])["run"](ui)
        except BaseException:  # noqa: BLE001 - written to the result for pytest to show
            result["error"] = traceback.format_exc()
            with contextlib.suppress(Exception):  # the screenshot is a bonus; the traceback matters
                ui.shot("error")
        result.update(checks=ui.checks, shots=ui.shots, values=ui.values)
        with open(os.path.join(out, "result.json"), "w") as handle:
            json.dump(result, handle, indent=1)
        ui.main(lambda: bpy.ops.wm.quit_blender())

    bpy.app.timers.register(ui.pump, first_interval=0.5, persistent=True)
    threading.Thread(target=scenario, daemon=True).start()


main()
