"""The Gaussian display: every visible splat object with Splat Display on, drawn in each 3D
view as the Gaussians it is (ui/splat_shader does the drawing, core/splat_display the packing
and the order).

Work happens only on change. A splat is packed once per data change (Delete, Separate,
Undo, the selection and its tint, Colour by Label, Splat Scale; seen in depsgraph updates,
or as a changed setting when drawn): its attributes are read on the main thread a few
at a time per timer tick (TICK_BUDGET: 3M Gaussians never stall Blender for long), packed
on a worker thread (numpy lets go of the GIL), and uploaded a texture a tick; until then
the old textures are drawn. In Edit Mode the attributes live in the edit mesh: the evaluated
points are read instead (Delete shows at once); Blender 4.3 cannot read those from Python,
so there the display keeps what it drew until Edit Mode ends. The Splat Display switch's own
geometry update (the points' size) packs nothing. The object matrix is a uniform, so moving the object uploads
nothing. Each view keeps its own depth order, sorted again on the worker only once the
view axis turned more than the preference's angle (small splats are sorted at once);
the old order is drawn meanwhile. A timer on the main thread takes finished jobs, uploads
them and redraws the views. In background mode (`blender -b`, the bpy module) nothing is
registered: nothing is drawn and nothing fails.

Colour: in the 3D view (Blender 4.3 measured, Solid and Material Preview alike) what a
POST_VIEW handler draws is taken as scene-linear and encoded to sRGB for the screen, with no
view transform (Standard, AgX and Filmic give the same pixels). So the viewport path writes
the render's sRGB colours converted to linear, and they reach the screen as the render's
values (exact for opaque splats; soft overlaps blend in linear instead of sRGB).
render_offscreen writes the sRGB values as they are (no conversion anywhere).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import bpy
import numpy as np

from ..core import splat_display as packing
from ..core.tint import tint_colours
from ..scene.display import (
    SETTINGS_ONLY,
    assemble_inputs,
    display_inputs,
    display_reads,
    display_source,
    point_count,
    read_step,
    redraw_3d_views,
    share_again,
)
from ..scene.splat_object import is_splat_object
from . import splat_shader
from .common import add_handlers, remove_handlers
from .preferences import get_preferences

SYNC_SORT = 150_000  # Gaussians sorted in the draw call itself (a few ms); larger go to the worker
POLL = 0.02  # seconds between looks at the worker's jobs
DEFAULT_ANGLE = 2.0  # degrees the view may turn before a re-sort, when the preferences are not there
MAX_VIEWS = 8  # depth orders kept per splat (one per 3D view)
TICK_BUDGET = 0.05  # seconds of main-thread reading and uploading a timer tick (at least one step)
SETTINGS_GRACE = 1.0  # seconds in which a Splat Display switch's own geometry update is expected
REQUIRED = ("means", "quats", "log_scales", "logits", "f_dc")  # reads without which nothing is drawn


@dataclass
class _Order:
    """One view's draw order of one splat."""

    axis: np.ndarray | None = None
    texture: object = None
    job: Future | None = None
    job_axis: np.ndarray | None = None
    used: float = 0.0


@dataclass
class _Splat:
    """A splat object's textures on the GPU and what re-sorting and re-colouring need."""

    count: int
    textures: list
    signature: tuple
    means: np.ndarray
    centre: np.ndarray
    radius: float
    colouring: dict | None = None  # inputs for SH colours (view-dependent only)
    eye: np.ndarray | None = None
    colour_job: Future | None = None
    colour_eye: np.ndarray | None = None
    orders: dict = field(default_factory=dict)

    def gpu_bytes(self) -> int:
        texels = packing.texture_rows(self.count) * packing.TEXTURE_WIDTH
        return texels * (16 * packing.TEXELS + 4 * sum(o.texture is not None for o in self.orders.values()))


_SPLATS: dict[str, _Splat] = {}
_DIRTY: set[str] = set()


@dataclass
class _Pending:
    """A splat on its way: read on the main thread a few attributes a tick, packed on the worker,
    uploaded a texture a tick; the old textures are drawn meanwhile."""

    signature: tuple
    steps: list  # reads left: (key, attribute names)
    parts: dict = field(default_factory=dict)
    count: int = -1
    job: Future | None = None
    result: dict | None = None
    textures: list = field(default_factory=list)
    read_seconds: float = 0.0
    main_seconds: float = 0.0  # reading and uploading
    longest: float = 0.0  # the longest tick's share
    ticks: int = 0


_PENDING: dict[str, _Pending] = {}
_STATE: dict = {"executor": None, "handle": None}
_STATS = {"gaussians_drawn": 0, "gpu_bytes": 0, "pack_seconds": 0.0, "read_seconds": 0.0, "sort_seconds": 0.0,
          "sort_cpu_seconds": 0.0, "upload_seconds": 0.0, "sort_count": 0, "pack_count": 0, "redraws_since_sort": 0, "draw_calls": 0,
          "main_seconds": 0.0, "main_ticks": 0, "longest_tick_seconds": 0.0}  # fmt: skip


def _executor() -> ThreadPoolExecutor:
    if _STATE["executor"] is None:
        _STATE["executor"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="masksplat-display")
    return _STATE["executor"]


def _angle(context=None) -> float:
    prefs = get_preferences(context)
    return math.degrees(prefs.resort_angle) if prefs is not None else DEFAULT_ANGLE


def _signature(obj) -> tuple:
    props = obj.masksplat
    return (len(obj.data.vertices), obj.data.is_editmode, round(props.splat_scale, 6), props.view_dependent,
            props.show_selection, props.show_labels, props.sh_degree)  # fmt: skip


# --- packing (worker) ---------------------------------------------------------------------


def _colours(inputs: dict, eye=None) -> np.ndarray:
    """[N, 3] what each Gaussian shows: its label colour, or its SH (seen from `eye`) or base
    colour; the selection tinted."""
    if inputs["label_colours"] is not None:
        colours = inputs["label_colours"]
    elif inputs["f_rest"] is not None and eye is not None:
        sh = np.concatenate([inputs["f_dc"][:, None, :], inputs["f_rest"]], axis=1)
        colours = packing.sh_colours(sh, inputs["means"], eye)
    else:
        colours = packing.base_colours(inputs["f_dc"])
    return tint_colours(colours, inputs["selected"]) if inputs["selected"] is not None else colours


def _colour_texels(colouring: dict, eye: np.ndarray) -> np.ndarray:
    return packing.colour_texels(_colours(colouring, eye))


def _pack(inputs: dict) -> dict:
    start = time.perf_counter()
    means = inputs["means"]
    texels = packing.pack(
        means, inputs["quats"], inputs["log_scales"], inputs["logits"], _colours(inputs), inputs["scale"]
    )
    low, high = (means.min(axis=0), means.max(axis=0)) if len(means) else (np.zeros(3), np.zeros(3))
    keep = None
    if inputs["f_rest"] is not None and inputs["label_colours"] is None:
        keep = {k: inputs[k] for k in ("means", "f_dc", "f_rest", "selected", "label_colours")}
    return {"texels": texels, "means": means, "centre": (low + high) / 2, "radius": float(np.linalg.norm(high - low) / 2),
            "colouring": keep, "seconds": time.perf_counter() - start}  # fmt: skip


def _install(name: str, result: dict, textures: list, signature: tuple, pending: _Pending | None = None) -> None:
    """Make a finished pack with its uploaded textures the splat's (main thread)."""
    _STATS["pack_seconds"] = result["seconds"]
    _STATS["pack_count"] += 1
    if pending is not None:
        _STATS.update(read_seconds=pending.read_seconds, main_seconds=pending.main_seconds, main_ticks=pending.ticks,
                      longest_tick_seconds=pending.longest)  # fmt: skip
    old = _SPLATS.get(name)
    splat = _Splat(len(result["means"]), textures, signature, result["means"], result["centre"], result["radius"],
                   result["colouring"])  # fmt: skip
    if old is not None and old.count == splat.count:
        splat.orders = {
            key: _Order(order.axis, order.texture, None, None, order.used)
            for key, order in old.orders.items()
        }
    _SPLATS[name] = splat


def _trim_heap() -> None:
    """Give the pack's freed temporaries back to the system: glibc keeps freed blocks of a few
    MB in its arenas (the worker thread's above all); for 3M Gaussians that held ~60 bytes a
    Gaussian of resident memory. Nothing where the C library has no malloc_trim."""
    if "trim" not in _STATE:
        try:
            _STATE["trim"] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _STATE["trim"] = None
    if _STATE["trim"] is not None:
        _STATE["trim"](0)


def _upload(texels: np.ndarray) -> list:
    start = time.perf_counter()
    textures = [splat_shader.float_texture(texels[k]) for k in range(packing.TEXELS)]
    _STATS["upload_seconds"] = time.perf_counter() - start
    return textures


def _pack_now(obj) -> _Splat | None:
    """Read, pack and upload `obj` at once (offscreen renders); None when it has nothing to read."""
    start = time.perf_counter()
    inputs = display_inputs(obj)
    _DIRTY.discard(obj.name)
    if inputs is None:
        return _SPLATS.get(obj.name)
    _STATS["read_seconds"] = time.perf_counter() - start
    result = _pack(inputs)
    _install(obj.name, result, _upload(result.pop("texels")), _signature(obj))
    return _SPLATS[obj.name]


def _want(obj) -> None:
    """Ask for a (new) pack of `obj` unless one of its current settings is on its way."""
    name = obj.name
    running = _PENDING.get(name)
    if name in _DIRTY or (running is not None and running.signature == _signature(obj)):
        return
    _DIRTY.add(name)
    _start_timer()


def mark_changed(name: str) -> None:
    """The object's data changed (depsgraph, undo): pack it again."""
    if name in _SPLATS or name in _PENDING:
        _DIRTY.add(name)
        _start_timer()


# --- the timer: starts packs, takes finished jobs (main thread) ----------------------------


def _start_timer() -> None:
    if not bpy.app.background and not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=0.0)


def _start_packs() -> None:
    """Turn wishes into pending packs; a change during the reads starts them again."""
    for name in list(_DIRTY):
        pending = _PENDING.get(name)
        if pending is not None and pending.steps is None:
            continue  # read already: packs again once this one is in
        _DIRTY.discard(name)
        obj = bpy.data.objects.get(name)
        if not is_splat_object(obj) or not obj.masksplat.show_splats or not len(obj.data.vertices):
            _SPLATS.pop(name, None)
            _PENDING.pop(name, None)
            continue
        _PENDING[name] = _Pending(_signature(obj), display_reads(obj))


def _read_steps(name: str, pending: _Pending, deadline: float) -> None:
    """Read steps of `pending` until the deadline (one at least), then hand them to the worker."""
    obj = bpy.data.objects.get(name)
    try:
        source = display_source(obj) if is_splat_object(obj) else None
        count = point_count(source) if source is not None else 0
        if source is not None and pending.count != count:  # changed under the reads (Edit Mode): again
            pending.count, pending.parts, pending.steps = count, {}, display_reads(obj)
        while source is not None and pending.steps:
            key, names = pending.steps.pop(0)
            pending.parts.setdefault(key, []).append(read_step(source, names))
            if time.perf_counter() >= deadline:
                break
    except (KeyError, TypeError, ValueError, ReferenceError, RuntimeError):  # data Blender would not read
        source = None
    if source is None:  # gone, unreadable, or in Edit Mode without evaluated points: keep what is drawn
        del _PENDING[name]
        if name in _SPLATS and obj is not None:
            _SPLATS[name].signature = pending.signature
        return
    if pending.steps:
        return
    parts, pending.parts, pending.steps = pending.parts, {}, None
    if count == 0 or any(parts[key][0] is None for key in REQUIRED):
        del _PENDING[name]
        _SPLATS.pop(name, None)
        return
    pending.job = _executor().submit(_pack, assemble_inputs(parts, obj.masksplat.splat_scale))
    share_again(obj)


def _advance(name: str, pending: _Pending, deadline: float) -> bool:
    """One tick of a pending pack; True when it was installed."""
    start = time.perf_counter()
    if pending.steps is not None:
        _read_steps(name, pending, deadline)
        pending.read_seconds += time.perf_counter() - start
    elif pending.job is not None and pending.job.done():
        pending.result, pending.job = pending.job.result(), None
    while pending.result is not None and len(pending.textures) < packing.TEXELS:
        if pending.textures and time.perf_counter() >= deadline:
            break
        pending.textures.append(splat_shader.float_texture(pending.result["texels"][len(pending.textures)]))
    spent = time.perf_counter() - start
    pending.main_seconds += spent
    pending.longest = max(pending.longest, spent)
    pending.ticks += 1
    if pending.result is None or len(pending.textures) < packing.TEXELS:
        return False
    del _PENDING[name]
    pending.result.pop("texels")
    _install(name, pending.result, pending.textures, pending.signature, pending)
    _trim_heap()
    return True


def _finish_jobs(deadline: float | None = None) -> bool:
    """Advance the pending packs and take the worker's finished jobs; True when something new is
    to be seen."""
    deadline = time.perf_counter() + TICK_BUDGET if deadline is None else deadline
    changed = False
    for name, pending in list(_PENDING.items()):
        changed |= _advance(name, pending, deadline)
    for splat in _SPLATS.values():
        for order in splat.orders.values():
            if order.job is not None and order.job.done():
                _take_order(order, order.job.result())
                changed = True
        if splat.colour_job is not None and splat.colour_job.done():
            start = time.perf_counter()
            splat.textures[3] = splat_shader.float_texture(splat.colour_job.result())
            _STATS["upload_seconds"] = time.perf_counter() - start
            splat.eye, splat.colour_job = splat.colour_eye, None
            changed = True
    return changed


def _busy() -> bool:
    return bool(_DIRTY or _PENDING) or any(
        s.colour_job is not None or any(o.job is not None for o in s.orders.values())
        for s in _SPLATS.values()
    )


def _tick():
    _forget_removed()
    _start_packs()
    if _finish_jobs():
        redraw_3d_views(bpy.context.window_manager)
    return POLL if _busy() else None


# --- orders and colours per view ------------------------------------------------------------


def _sort(means: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The order, its wall-clock seconds and the CPU seconds this thread spent on it (what a
    view change costs the machine, whatever else the cores are doing, e.g. a software GPU)."""
    start, cpu = time.perf_counter(), time.thread_time()
    order = packing.back_to_front(means, axis)
    return order, time.perf_counter() - start, time.thread_time() - cpu


def _take_order(order: _Order, result) -> None:
    indices, seconds, cpu_seconds = result
    start = time.perf_counter()
    order.texture = splat_shader.index_texture(indices)
    _STATS["upload_seconds"] = time.perf_counter() - start
    _STATS["sort_seconds"], _STATS["sort_cpu_seconds"] = seconds, cpu_seconds
    _STATS["sort_count"] += 1
    _STATS["redraws_since_sort"] = 0
    order.axis, order.job, order.job_axis = order.job_axis, None, None


def _order(splat: _Splat, key, model_view: np.ndarray, wait: bool, degrees: float) -> _Order:
    """The view's order, sorted again (now, or on the worker) when the view turned enough."""
    order = splat.orders.get(key)
    if order is None:
        if len(splat.orders) >= MAX_VIEWS:
            del splat.orders[min(splat.orders, key=lambda k: splat.orders[k].used)]
        order = splat.orders[key] = _Order()
    order.used = time.monotonic()
    axis = model_view[2, :3] / max(np.linalg.norm(model_view[2, :3]), 1e-30)
    if order.job is None and packing.turned(order.axis, axis, degrees):
        order.job_axis = axis
        if wait or splat.count <= SYNC_SORT:
            _take_order(order, _sort(splat.means, axis))
        else:
            order.job = _executor().submit(_sort, splat.means, axis)
            _start_timer()
    return order


def _recolour(splat: _Splat, eye: np.ndarray, wait: bool, degrees: float) -> None:
    """View-dependent colour: evaluate the SH again once the eye moved enough."""
    if splat.colouring is None or splat.colour_job is not None:
        return
    if not packing.moved(splat.eye, eye, splat.centre, splat.radius, degrees):
        return
    splat.colour_eye = eye
    if wait:
        splat.textures[3], splat.eye = splat_shader.float_texture(_colour_texels(splat.colouring, eye)), eye
        return
    splat.colour_job = _executor().submit(_colour_texels, splat.colouring, eye)
    _start_timer()


# --- drawing ---------------------------------------------------------------------------------


def _splat_for(obj, wait: bool) -> _Splat | None:
    splat = _SPLATS.get(obj.name)
    stale = splat is None or splat.signature != _signature(obj) or obj.name in _DIRTY
    if stale and wait:
        return _pack_now(obj)
    if stale:
        _want(obj)
    return splat


def draw_objects(objects, view: np.ndarray, projection: np.ndarray, viewport, key, wait: bool = False,
                 linear: bool = False) -> int:  # fmt: skip
    """Draw the splats of `objects` (farthest object first) into the bound framebuffer; returns
    how many Gaussians were drawn. `wait`: pack and sort now instead of on the worker;
    `linear`: the target is scene-linear (the 3D view)."""
    import gpu

    degrees = _angle()
    items = []
    for obj in objects:
        splat = _splat_for(obj, wait)
        if splat is None or splat.count == 0:
            continue
        model = np.array(obj.matrix_world, dtype=np.float64)
        model_view = view @ model
        order = _order(splat, key, model_view, wait, degrees)
        if order.texture is None:
            continue
        _recolour(splat, (np.linalg.inv(model_view) @ [0.0, 0.0, 0.0, 1.0])[:3], wait, degrees)
        items.append(((model_view @ [*splat.centre, 1.0])[2], splat, order, model_view))
    if not items:
        return 0
    gpu.state.blend_set("ALPHA_PREMULT")
    gpu.state.depth_mask_set(False)
    gpu.state.depth_test_set("NONE")  # Material Preview's depth at POST_VIEW hides everything: drawn on top
    for _, splat, order, model_view in sorted(items, key=lambda item: item[0]):
        splat_shader.draw(splat.textures, order.texture, splat.count, model_view, projection, viewport, linear)
    gpu.state.depth_test_set("NONE")
    gpu.state.blend_set("NONE")
    return sum(item[1].count for item in items)


def shown_objects(scene, view_layer, space=None) -> list:
    """Splat objects the display draws: visible (in `space`, for local view) with Splat Display on."""
    out = []
    for obj in scene.objects:
        if (
            is_splat_object(obj)
            and obj.masksplat.show_splats
            and obj.visible_get(view_layer=view_layer, viewport=space)
        ):
            out.append(obj)
    return out


def _draw_view() -> None:
    import gpu

    context = bpy.context
    rv3d = context.region_data
    if rv3d is None:
        return
    _forget_removed()
    objects = shown_objects(context.scene, context.view_layer, context.space_data)
    _STATS["redraws_since_sort"] += 1
    if not objects:
        _STATS["gaussians_drawn"] = 0
        return
    viewport = gpu.state.viewport_get()[2:]
    view, projection = np.array(rv3d.view_matrix, np.float64), np.array(rv3d.window_matrix, np.float64)
    _STATS["gaussians_drawn"] = draw_objects(objects, view, projection, viewport, rv3d.as_pointer(), linear=True)
    _STATS["draw_calls"] += 1


# --- the API benchmarks and window tests call ----------------------------------------------


def render_offscreen(
    objects, view_matrix, projection_matrix, width: int, height: int, background=(0.0, 0.0, 0.0)
) -> np.ndarray:
    """[height, width, 4] float32 RGBA (top row first, display space, 0..1) of `objects` drawn
    with the viewport's own shader over `background`, through `gpu.types.GPUOffScreen`."""
    if bpy.app.background:
        raise RuntimeError(
            "render_offscreen needs Blender with a window: the gpu module cannot draw in background mode"
        )
    import gpu

    offscreen = gpu.types.GPUOffScreen(int(width), int(height), format="RGBA32F")
    try:
        with offscreen.bind():
            framebuffer = gpu.state.active_framebuffer_get()
            framebuffer.clear(color=(*[float(c) for c in background[:3]], 1.0), depth=1.0)
            gpu.state.viewport_set(0, 0, int(width), int(height))
            view, projection = np.array(view_matrix, np.float64), np.array(projection_matrix, np.float64)
            drawn = draw_objects(
                [o for o in objects if is_splat_object(o)],
                view,
                projection,
                (width, height),
                "offscreen",
                wait=True,
            )
            _STATS["gaussians_drawn"] = drawn
            pixels = framebuffer.read_color(0, 0, int(width), int(height), 4, 0, "FLOAT")
    finally:
        offscreen.free()
    pixels.dimensions = int(width) * int(height) * 4
    return np.array(pixels, dtype=np.float32).reshape(int(height), int(width), 4)[::-1].copy()


def display_stats() -> dict:
    """What the display holds and what its last jobs cost (seconds)."""
    out = dict(_STATS)
    out["gpu_bytes"] = sum(s.gpu_bytes() for s in _SPLATS.values())
    out["gaussians_held"] = sum(s.count for s in _SPLATS.values())
    out["objects"] = len(_SPLATS)
    out["busy"] = _busy()
    return out


def wait_until_idle(timeout: float = 30.0) -> bool:
    """Finish every pending pack, sort and colour job now (main thread; tests and benchmarks)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _start_packs()
        _finish_jobs()
        if not _busy():
            return True
        time.sleep(0.005)
    return False


# --- registration ------------------------------------------------------------------------------


def _forget_removed() -> None:
    """Let go of the textures of objects that are gone (deleted, renamed: a new name packs anew)
    or have Splat Display off."""
    for name in list(_SPLATS):
        obj = bpy.data.objects.get(name)
        if not is_splat_object(obj) or not obj.masksplat.show_splats:
            del _SPLATS[name]


@bpy.app.handlers.persistent
def _on_depsgraph_update(scene, depsgraph) -> None:
    if depsgraph.id_type_updated("OBJECT"):
        _forget_removed()
    for update in depsgraph.updates:
        if isinstance(update.id, bpy.types.Object) and update.is_updated_geometry:
            name = update.id.original.name
            if time.monotonic() - SETTINGS_ONLY.pop(name, -SETTINGS_GRACE) >= SETTINGS_GRACE:
                mark_changed(name)


@bpy.app.handlers.persistent
def _on_undo(*args) -> None:
    for name in list(_SPLATS):
        mark_changed(name)


@bpy.app.handlers.persistent
def _on_load(*args) -> None:
    _SPLATS.clear()
    _DIRTY.clear()
    _PENDING.clear()


HANDLERS = (
    ("depsgraph_update_post", _on_depsgraph_update),
    ("undo_post", _on_undo),
    ("redo_post", _on_undo),
    ("load_post", _on_load),
)


def register() -> None:
    if bpy.app.background:
        return
    add_handlers(HANDLERS)
    _STATE["handle"] = bpy.types.SpaceView3D.draw_handler_add(_draw_view, (), "WINDOW", "POST_VIEW")


def unregister() -> None:
    if _STATE["handle"] is not None:
        bpy.types.SpaceView3D.draw_handler_remove(_STATE["handle"], "WINDOW")
        _STATE["handle"] = None
    remove_handlers(HANDLERS)
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    if _STATE["executor"] is not None:
        _STATE["executor"].shutdown(wait=False, cancel_futures=True)
        _STATE["executor"] = None
    _on_load()
