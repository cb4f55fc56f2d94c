"""Paint a camera's mask in the viewport, from any view.

Looking through one of the splat object's cameras, Paint Mask paints that camera's mask.
From any other view (a plain perspective or orthographic view, or a camera that is not
one of the object's), it first makes a real camera of what the viewport shows, in the
object's camera collection, renders its preview and looks through it: orbit to a good
angle, paint, keep; Compute Selection uses that view like any other.

LMB paints "object", Ctrl+LMB erases, Shift+LMB paints "ignore"; with the Labels target,
LMB paints the active label of the splat's label set into the camera's label map and
Ctrl+LMB erases to background (core/paint decides which buffer a stroke writes). [ and ]
or the wheel change the radius; with the lasso, a closed stroke is filled. Enter or
right-click keeps the mask, Esc leaves everything as it was (a camera made for this
view is removed again). The stroke and the mask are drawn with the `gpu` module,
imported only inside the draw callback: batch jobs (no gpu in -b) import this module
without drawing anything.
"""

from __future__ import annotations

import contextlib

import bpy
import numpy as np
from bpy.props import (
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    StringProperty,
)

from ..client import BackendError
from ..core.labels import MAX_LABELS
from ..core.paint import (
    ERASE,
    IGNORE,
    OBJECT,
    PaintError,
    fill_polygon,
    paint,
    region_radius_to_camera,
    region_to_camera,
    stamp_stroke,
    windowless_stroke,
)
from ..core.views import perspective_view, viewport_projection
from ..scene import labels as scene_labels
from ..scene import masks as scene_masks
from ..scene.cameras import (
    add_camera_for,
    add_view_camera,
    apply_camera_resolution,
    camera_from_object,
    camera_resolution,
)
from ..scene.selection import scene_cameras, visible_splats
from ..scene.splat_object import is_splat_object
from .preferences import get_preferences
from .preview_ops import render_preview


def camera_frame_in_region(context, cam_obj) -> list[tuple[float, float]]:
    """The camera frame's corners in region pixels (zoom, pan and lens shift included)."""
    from bpy_extras.view3d_utils import location_3d_to_region_2d

    corners = [cam_obj.matrix_world @ v for v in cam_obj.data.view_frame(scene=context.scene)]
    points = [location_3d_to_region_2d(context.region, context.region_data, c) for c in corners]
    if any(p is None for p in points):
        raise ValueError("the camera frame is not in view")
    return [(p.x, p.y) for p in points]


def _draw_overlay(op, context):
    import gpu
    from gpu_extras.batch import batch_for_shader

    shader = gpu.shader.from_builtin("UNIFORM_COLOR")
    gpu.state.blend_set("ALPHA")
    try:
        frame = camera_frame_in_region(context, op.cam_obj)
    except ValueError:
        return
    if op.texture is not None:
        image_shader = gpu.shader.from_builtin("IMAGE")
        xs, ys = [p[0] for p in frame], [p[1] for p in frame]
        quad = ((min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys)))
        batch = batch_for_shader(image_shader, "TRI_FAN", {"pos": quad, "texCoord": ((0, 0), (1, 0), (1, 1), (0, 1))})
        image_shader.uniform_sampler("image", op.texture)
        batch.draw(image_shader)
    circle = [(op.mouse[0] + op.radius * np.cos(a), op.mouse[1] + op.radius * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 48)]
    shader.uniform_float("color", {OBJECT: (1, 0.3, 0.2, 0.9), ERASE: (1, 1, 1, 0.9), IGNORE: (0.3, 0.5, 1, 0.9)}[op.current_mode])
    batch_for_shader(shader, "LINE_LOOP", {"pos": circle}).draw(shader)
    if op.lasso_points:
        batch_for_shader(shader, "LINE_STRIP", {"pos": op.lasso_points}).draw(shader)
    gpu.state.blend_set("NONE")


def splat_to_paint(context) -> bpy.types.Object | None:
    """The splat object a stroke is for: the active one, the one whose cameras the view
    looks through, or the only visible one."""
    if is_splat_object(context.active_object):
        return context.active_object
    cam = context.scene.camera
    found = scene_labels.splat_for_camera(context, cam) if cam is not None else None
    if found is not None:
        return found
    splats = visible_splats(context.scene)
    return splats[0] if len(splats) == 1 else None


def view_camera(context, splat) -> tuple[bpy.types.Object, bool]:
    """(the camera to paint from, whether it was made now): the camera the viewport looks
    through when it is one of the splat's, else a new camera of what the viewport shows."""
    scene, view = context.scene, context.region_data
    if view.view_perspective == "CAMERA" and scene.camera is not None:
        if scene.camera in scene_cameras(splat, scene):
            return scene.camera, False
        return add_camera_for(splat, scene, camera_from_object(scene.camera, scene)), True
    region, space = context.region, context.space_data
    matrix = np.array(view.view_matrix)
    if view.is_perspective:
        projection = np.array(view.window_matrix)
    else:  # orthographic: its perspective twin (what Numpad 5 shows)
        projection = viewport_projection(space.lens, region.width, region.height, space.clip_start, space.clip_end)
        matrix = perspective_view(matrix, view.view_distance)
    prefs = get_preferences(context)
    size = prefs.view_camera_size if prefs is not None else 1024
    return add_view_camera(splat, scene, matrix, projection, region.width, region.height, size), True


class _ViewState:
    """What looking through a new camera changes (view, scene camera, render size), to put back on Esc."""

    def __init__(self, context):
        view, render = context.region_data, context.scene.render
        self.view = (view.view_perspective, view.view_location.copy(), view.view_rotation.copy(), view.view_distance,
                     view.view_camera_zoom, tuple(view.view_camera_offset))  # fmt: skip
        self.camera = context.scene.camera
        self.render = (render.resolution_x, render.resolution_y, render.resolution_percentage, render.pixel_aspect_x, render.pixel_aspect_y)

    def restore(self, context) -> None:
        view, render = context.region_data, context.scene.render
        (view.view_perspective, view.view_location, view.view_rotation, view.view_distance,
         view.view_camera_zoom, view.view_camera_offset) = self.view  # fmt: skip
        context.scene.camera = self.camera
        (render.resolution_x, render.resolution_y, render.resolution_percentage, render.pixel_aspect_x, render.pixel_aspect_y) = self.render


def remove_camera(cam_obj) -> None:
    """Remove a camera made for painting, with its data and preview image."""
    from .preview_ops import camera_preview

    image, data = camera_preview(cam_obj), cam_obj.data
    bpy.data.objects.remove(cam_obj)
    if data is not None and data.users == 0:
        bpy.data.cameras.remove(data)
    if image is not None and image.users == 0:
        bpy.data.images.remove(image)


class MaskSplatStrokePoint(bpy.types.PropertyGroup):
    location: FloatVectorProperty(name="Location", size=2, description="Camera pixels: x right, y down")


class MASKSPLAT_OT_paint_mask(bpy.types.Operator):
    """Paint a mask from the view you are looking at (LMB object, Ctrl erase, Shift ignore); a view that is not one of the splat's cameras becomes one"""

    bl_idname = "masksplat.paint_mask"
    bl_label = "Paint Mask"
    bl_options = {"REGISTER", "UNDO"}

    tool: EnumProperty(name="Tool", items=(("BRUSH", "Brush", "Paint with a round brush"), ("LASSO", "Lasso", "Fill a closed stroke")), default="BRUSH")
    radius: FloatProperty(name="Radius", description="Brush radius in screen pixels", default=25.0, min=1.0, max=500.0)
    # Without a window (scripts, tests): one stroke in camera pixels.
    camera: StringProperty(name="Camera", description="Camera object to paint for (default: the scene camera)")
    mode: EnumProperty(name="Mode", items=((OBJECT, "Object", ""), (ERASE, "Erase", ""), (IGNORE, "Ignore", "")), default=OBJECT)
    camera_radius: FloatProperty(name="Camera Radius", description="Brush radius in camera pixels", default=10.0, min=0.5)
    stroke: CollectionProperty(type=MaskSplatStrokePoint)
    target: EnumProperty(
        name="Paint Into",
        items=(("MASK", "Mask", "The camera's object mask"), ("LABELS", "Labels", "The camera's label map, with the active label")),
        default="MASK",
    )
    label: IntProperty(name="Label", default=-1, min=-1, max=MAX_LABELS, description="Label id to paint (-1: the splat's active label)")

    def _label_target(self, context, cam):
        """(label map int32 [H, W], label id) for painting labels on `cam`; checks the label first."""
        splat = scene_labels.splat_for_camera(context, cam)
        if splat is None:
            raise ValueError(f"camera '{cam.name}' belongs to no splat object: assign its cameras first")
        label = self._label_id(splat)
        scene_labels.ensure_label_set(splat, max(label + 1, 2))
        width, height, _, _ = camera_resolution(cam, context.scene)
        stored = scene_labels.camera_label_map(cam)
        ids = stored.copy() if stored is not None and stored.shape == (height, width) else np.zeros((height, width), np.int32)
        return ids, label

    def _label_id(self, splat) -> int:
        label = splat.masksplat.active_label if self.label < 0 else self.label
        if label == 0 and self.mode == OBJECT:
            raise ValueError("the active label is 0 (background): add a label and make it active")
        return label

    def _buffers(self, context, cam) -> tuple[dict[str, np.ndarray], int]:
        """The camera's paint buffers ({"mask", "ignore"} or {"ids"}) and the label to paint."""
        if self.target == "LABELS":
            ids, label = self._label_target(context, cam)
            return {"ids": ids}, label
        width, height, _, _ = camera_resolution(cam, context.scene)
        stored = scene_masks.camera_mask(cam)
        mask = stored[0].copy() if stored else np.zeros((height, width), np.float32)
        ignore = stored[1].astype(np.float32) if stored and stored[1] is not None else np.zeros_like(mask)
        return {"mask": mask, "ignore": ignore}, 0

    def _store(self, cam) -> str:
        """Keep the painted buffers on the camera; returns what was kept, for the report."""
        if "ids" in self.buffers:
            ids = self.buffers["ids"]
            scene_labels.set_camera_label_map(cam, ids)
            return f"Label map of '{cam.name}' saved ({int((ids > 0).sum()):,} labelled pixels)"
        mask, ignore = self.buffers["mask"], self.buffers["ignore"]
        scene_masks.set_camera_mask(cam, mask, ignore > 0.5)
        return f"Mask of '{cam.name}' saved ({int((mask > 0.5).sum()):,} object pixels)"

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def execute(self, context):
        cam = bpy.data.objects.get(self.camera) if self.camera else context.scene.camera
        if cam is None or cam.type != "CAMERA":
            self.report({"ERROR"}, f"no camera named '{self.camera}'" if self.camera else "the scene has no camera")
            return {"CANCELLED"}
        if not len(self.stroke):
            self.report({"ERROR"}, "the stroke has no points")
            return {"CANCELLED"}
        try:
            self.buffers, label = self._buffers(context, cam)
            paint(self.buffers, windowless_stroke([tuple(p.location) for p in self.stroke], self.tool, self.camera_radius),
                  self.mode, self.target, label)  # fmt: skip
        except ValueError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self._store(cam)
        return {"FINISHED"}

    def invoke(self, context, event):
        if context.area is None or context.area.type != "VIEW_3D" or context.region_data is None:
            return self.execute(context)
        splat = splat_to_paint(context)
        if splat is None:
            self.report({"ERROR"}, "select the splat object to paint for")
            return {"CANCELLED"}
        try:
            if self.target == "LABELS":
                self._label_id(splat)  # refuse before a camera is made
            self.view_state = _ViewState(context)
            self.cam_obj, self.made = view_camera(context, splat)
        except ValueError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        try:
            self.buffers, self.paint_label = self._buffers(context, self.cam_obj)
        except ValueError as err:
            self._forget_view(context)
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self._look_through(context)
        if self.target == "LABELS":
            self.colours = np.array([(0, 0, 0)] + [tuple(item.color) for item in splat.masksplat.labels][1:], np.float32)
        self.width, self.height, _, _ = camera_resolution(self.cam_obj, context.scene)
        self.mouse, self.last, self.painting, self.moves = (event.mouse_region_x, event.mouse_region_y), None, False, 0
        self.current_mode, self.lasso_points, self.texture = OBJECT, [], None
        self._refresh_texture()
        self._handle = bpy.types.SpaceView3D.draw_handler_add(_draw_overlay, (self, context), "WINDOW", "POST_PIXEL")
        context.window_manager.modal_handler_add(self)
        keys = "LMB paint  Ctrl erase" + ("" if self.target == "LABELS" else "  Shift ignore")
        context.workspace.status_text_set(f"{keys}  [ ] radius  Enter/RMB keep  Esc cancel")
        return {"RUNNING_MODAL"}

    def _look_through(self, context):
        """Look through the camera to paint from; a camera made now gets its preview first."""
        scene = context.scene
        scene.camera = self.cam_obj
        apply_camera_resolution(scene, self.cam_obj)
        if context.region_data.view_perspective != "CAMERA" or self.made:
            context.region_data.view_perspective = "CAMERA"
            bpy.ops.view3d.view_center_camera()
        if self.made:
            try:
                render_preview(context, self.cam_obj)
            except (ValueError, BackendError) as err:
                self.report({"WARNING"}, f"no preview for '{self.cam_obj.name}': {err}")

    def _forget_view(self, context):
        """Put the view back as it was and remove a camera made for this stroke."""
        self.view_state.restore(context)
        if self.made:
            remove_camera(self.cam_obj)

    def _refresh_texture(self):
        try:
            import gpu
        except ImportError:
            return
        rgba = np.zeros((self.height, self.width, 4), np.float32)
        if "ids" in self.buffers:
            ids = self.buffers["ids"]
            rgba[:, :, :3] = self.colours[np.minimum(ids, len(self.colours) - 1)]
            rgba[:, :, 3] = 0.45 * (ids > 0)
        else:
            mask, ignore = self.buffers["mask"], self.buffers["ignore"]
            rgba[:, :, 0] = 1.0 - ignore
            rgba[:, :, 1] = 0.3 * ignore
            rgba[:, :, 2] = ignore
            rgba[:, :, 3] = 0.45 * np.maximum(mask, ignore)
        buffer = gpu.types.Buffer("FLOAT", self.width * self.height * 4, np.ascontiguousarray(rgba[::-1]).ravel())
        self.texture = gpu.types.GPUTexture((self.width, self.height), format="RGBA32F", data=buffer)

    def _paint(self, draw) -> None:
        """Apply a stroke in the current mode (a mode the target has no buffer for paints nothing)."""
        with contextlib.suppress(PaintError):
            paint(self.buffers, draw, self.current_mode, self.target, self.paint_label)

    def _apply(self, context, point):
        frame = camera_frame_in_region(context, self.cam_obj)
        (u, v), = region_to_camera([point], frame, self.width, self.height)
        r = region_radius_to_camera(self.radius, frame, self.width)
        start = self.last if self.last is not None else (u, v)
        self._paint(lambda buffer, value: stamp_stroke(buffer, start, (u, v), r, value))
        self.last = (u, v)

    def _finish(self, context, keep: bool):
        bpy.types.SpaceView3D.draw_handler_remove(self._handle, "WINDOW")
        context.workspace.status_text_set(None)
        context.area.tag_redraw()
        if not keep:
            self._forget_view(context)
            return {"CANCELLED"}
        made = f" (new camera '{self.cam_obj.name}')" if self.made else ""
        self.report({"INFO"}, self._store(self.cam_obj) + made)
        return {"FINISHED"}

    def modal(self, context, event):
        context.area.tag_redraw()
        self.mouse = (event.mouse_region_x, event.mouse_region_y)
        if event.type in {"ESC"}:
            return self._finish(context, keep=False)
        if event.type in {"RET", "NUMPAD_ENTER", "RIGHTMOUSE"} and event.value == "PRESS":
            return self._finish(context, keep=True)
        if event.type in {"LEFT_BRACKET", "WHEELDOWNMOUSE"} and event.value == "PRESS":
            self.radius = max(1.0, self.radius / 1.15)
            return {"RUNNING_MODAL"}
        if event.type in {"RIGHT_BRACKET", "WHEELUPMOUSE"} and event.value == "PRESS":
            self.radius = min(500.0, self.radius * 1.15)
            return {"RUNNING_MODAL"}
        if event.type == "LEFTMOUSE":
            if event.value == "PRESS":
                self.painting = True
                self.current_mode = ERASE if event.ctrl else IGNORE if event.shift else OBJECT
                self.last, self.lasso_points = None, [self.mouse]
            elif event.value == "RELEASE" and self.painting:
                self.painting = False
                if self.tool == "LASSO" and len(self.lasso_points) > 2:
                    polygon = region_to_camera(self.lasso_points, camera_frame_in_region(context, self.cam_obj), self.width, self.height)
                    self._paint(lambda buffer, value: fill_polygon(buffer, polygon, value))
                self.lasso_points = []
                self._refresh_texture()
            return {"RUNNING_MODAL"}
        if event.type == "MOUSEMOVE" and self.painting:
            if self.tool == "LASSO":
                self.lasso_points.append(self.mouse)
            else:
                with contextlib.suppress(ValueError):  # the frame left the view: skip this point
                    self._apply(context, self.mouse)
                self.moves += 1
                if self.moves % 4 == 0:  # show the paint while the stroke goes on
                    self._refresh_texture()
            return {"RUNNING_MODAL"}
        return {"PASS_THROUGH"} if event.type in {"MIDDLEMOUSE", "TRACKPADPAN", "TRACKPADZOOM"} else {"RUNNING_MODAL"}


CLASSES = (MaskSplatStrokePoint, MASKSPLAT_OT_paint_mask)
