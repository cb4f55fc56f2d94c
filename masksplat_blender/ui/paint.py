"""Paint a camera's mask in the viewport, looking through the camera.

LMB paints "object", Ctrl+LMB erases, Shift+LMB paints "ignore"; with the Labels target,
LMB paints the active label of the splat's label set into the camera's label map and
Ctrl+LMB erases to background. [ and ] or the wheel
change the radius; with the lasso, a closed stroke is filled. Enter or right-click
keeps the mask, Esc leaves it as it was. The stroke and the mask are drawn with the
`gpu` module, imported only inside the draw callback: batch jobs (no gpu in -b) import
this module without drawing anything.
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

from ..core.labels import MAX_LABELS
from ..core.paint import fill_polygon, region_radius_to_camera, region_to_camera, stamp_stroke
from ..scene import labels as scene_labels
from ..scene import masks as scene_masks
from ..scene.cameras import apply_camera_resolution, camera_resolution

OBJECT, ERASE, IGNORE = "OBJECT", "ERASE", "IGNORE"


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


class MaskSplatStrokePoint(bpy.types.PropertyGroup):
    location: FloatVectorProperty(name="Location", size=2, description="Camera pixels: x right, y down")


class MASKSPLAT_OT_paint_mask(bpy.types.Operator):
    """Paint the mask of the camera you are looking through (LMB object, Ctrl erase, Shift ignore)"""

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
        """(label map int32 [H, W], label id, splat object) for painting labels on `cam`."""
        splat = scene_labels.splat_for_camera(context, cam)
        if splat is None:
            raise ValueError(f"camera '{cam.name}' belongs to no splat object: assign its cameras first")
        label = splat.masksplat.active_label if self.label < 0 else self.label
        if label == 0 and self.mode == OBJECT:
            raise ValueError("the active label is 0 (background): add a label and make it active")
        scene_labels.ensure_label_set(splat, max(label + 1, 2))
        width, height, _, _ = camera_resolution(cam, context.scene)
        stored = scene_labels.camera_label_map(cam)
        ids = stored.copy() if stored is not None and stored.shape == (height, width) else np.zeros((height, width), np.int32)
        return ids, label, splat

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def execute(self, context):
        cam = bpy.data.objects.get(self.camera) if self.camera else context.scene.camera
        if cam is None or cam.type != "CAMERA":
            self.report({"ERROR"}, f"no camera named '{self.camera}'" if self.camera else "the scene has no camera")
            return {"CANCELLED"}
        if self.target == "LABELS":
            return self._execute_labels(context, cam)
        width, height, _, _ = camera_resolution(cam, context.scene)
        stored = scene_masks.camera_mask(cam)
        mask = stored[0].copy() if stored else np.zeros((height, width), np.float32)
        ignore = stored[1].astype(np.float32) if stored and stored[1] is not None else np.zeros_like(mask)
        if not self._paint_stroke(ignore if self.mode == IGNORE else mask, 0.0 if self.mode == ERASE else 1.0):
            return {"CANCELLED"}
        scene_masks.set_camera_mask(cam, mask, ignore > 0.5)
        return {"FINISHED"}

    def _paint_stroke(self, target: np.ndarray, value) -> bool:
        """Apply the windowless stroke (camera pixels) to `target`; False (reported) without points."""
        points = [tuple(p.location) for p in self.stroke]
        if not points:
            self.report({"ERROR"}, "the stroke has no points")
            return False
        if self.tool == "LASSO":
            fill_polygon(target, points, value)
        else:
            for start, end in zip(points, points[1:] or points, strict=False):
                stamp_stroke(target, start, end, self.camera_radius, value)
        return True

    def _execute_labels(self, context, cam):
        if self.mode == IGNORE:
            self.report({"ERROR"}, "label maps have no ignore region: paint label 0 (background) or erase")
            return {"CANCELLED"}
        try:
            ids, label, _ = self._label_target(context, cam)
        except ValueError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if not self._paint_stroke(ids, 0 if self.mode == ERASE else label):
            return {"CANCELLED"}
        scene_labels.set_camera_label_map(cam, ids)
        return {"FINISHED"}

    def invoke(self, context, event):
        if context.area is None or context.area.type != "VIEW_3D" or context.region_data is None:
            return self.execute(context)
        if (context.active_object is None or context.active_object.type != "CAMERA") and context.scene.camera is None:
            self.report({"ERROR"}, "add a camera (or import the capture's cameras) to paint from")
            return {"CANCELLED"}
        self.cam_obj = context.active_object if context.active_object and context.active_object.type == "CAMERA" else context.scene.camera
        apply_camera_resolution(context.scene, self.cam_obj)
        context.region_data.view_perspective = "CAMERA"
        context.scene.camera = self.cam_obj
        self.width, self.height, _, _ = camera_resolution(self.cam_obj, context.scene)
        self.ids = None
        if self.target == "LABELS":
            try:
                self.ids, self.paint_label, splat = self._label_target(context, self.cam_obj)
            except ValueError as err:
                self.report({"ERROR"}, str(err))
                return {"CANCELLED"}
            self.colours = np.array([(0, 0, 0)] + [tuple(item.color) for item in splat.masksplat.labels][1:], np.float32)
        stored = scene_masks.camera_mask(self.cam_obj)
        self.mask = stored[0].copy() if stored else np.zeros((self.height, self.width), np.float32)
        self.ignore = (stored[1].astype(np.float32) if stored and stored[1] is not None else np.zeros_like(self.mask))
        self.original = (self.mask.copy(), self.ignore.copy())
        self.mouse, self.last, self.painting = (event.mouse_region_x, event.mouse_region_y), None, False
        self.current_mode, self.lasso_points, self.texture = OBJECT, [], None
        self._refresh_texture()
        self._handle = bpy.types.SpaceView3D.draw_handler_add(_draw_overlay, (self, context), "WINDOW", "POST_PIXEL")
        context.window_manager.modal_handler_add(self)
        context.workspace.status_text_set("LMB paint  Ctrl erase  Shift ignore  [ ] radius  Enter/RMB keep  Esc cancel")
        return {"RUNNING_MODAL"}

    def _refresh_texture(self):
        try:
            import gpu
        except ImportError:
            return
        rgba = np.zeros((self.height, self.width, 4), np.float32)
        if self.ids is not None:
            rgba[:, :, :3] = self.colours[np.minimum(self.ids, len(self.colours) - 1)]
            rgba[:, :, 3] = 0.45 * (self.ids > 0)
        else:
            rgba[:, :, 0] = 1.0
            rgba[:, :, 2] = self.ignore
            rgba[:, :, 3] = 0.45 * np.maximum(self.mask, self.ignore)
        buffer = gpu.types.Buffer("FLOAT", self.width * self.height * 4, np.ascontiguousarray(rgba[::-1]).ravel())
        self.texture = gpu.types.GPUTexture((self.width, self.height), format="RGBA32F", data=buffer)

    def _apply(self, context, point):
        frame = camera_frame_in_region(context, self.cam_obj)
        (u, v), = region_to_camera([point], frame, self.width, self.height)
        r = region_radius_to_camera(self.radius, frame, self.width)
        start = self.last if self.last is not None else (u, v)
        if self.ids is not None:
            if self.current_mode != IGNORE:
                stamp_stroke(self.ids, start, (u, v), r, self.paint_label if self.current_mode == OBJECT else 0)
        elif self.current_mode == IGNORE:
            stamp_stroke(self.ignore, start, (u, v), r, 1.0)
        else:
            stamp_stroke(self.mask, start, (u, v), r, 1.0 if self.current_mode == OBJECT else 0.0)
            if self.current_mode == ERASE:
                stamp_stroke(self.ignore, start, (u, v), r, 0.0)
        self.last = (u, v)

    def _finish(self, context, keep: bool):
        bpy.types.SpaceView3D.draw_handler_remove(self._handle, "WINDOW")
        context.workspace.status_text_set(None)
        context.area.tag_redraw()
        if not keep:
            return {"CANCELLED"}
        if self.ids is not None:
            scene_labels.set_camera_label_map(self.cam_obj, self.ids)
            self.report({"INFO"}, f"Label map of '{self.cam_obj.name}' saved ({int((self.ids > 0).sum()):,} labelled pixels)")
            return {"FINISHED"}
        scene_masks.set_camera_mask(self.cam_obj, self.mask, self.ignore > 0.5)
        self.report({"INFO"}, f"Mask of '{self.cam_obj.name}' saved ({int((self.mask > 0.5).sum()):,} object pixels)")
        return {"FINISHED"}

    def modal(self, context, event):
        context.area.tag_redraw()
        self.mouse = (event.mouse_region_x, event.mouse_region_y)
        if event.type in {"ESC"}:
            self.mask, self.ignore = self.original
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
                    frame = camera_frame_in_region(context, self.cam_obj)
                    polygon = region_to_camera(self.lasso_points, frame, self.width, self.height)
                    if self.ids is not None:
                        if self.current_mode != IGNORE:
                            fill_polygon(self.ids, polygon, 0 if self.current_mode == ERASE else self.paint_label)
                    else:
                        target = self.ignore if self.current_mode == IGNORE else self.mask
                        fill_polygon(target, polygon, 0.0 if self.current_mode == ERASE else 1.0)
                self.lasso_points = []
                self._refresh_texture()
            return {"RUNNING_MODAL"}
        if event.type == "MOUSEMOVE" and self.painting:
            if self.tool == "LASSO":
                self.lasso_points.append(self.mouse)
            else:
                with contextlib.suppress(ValueError):  # the frame left the view: skip this point
                    self._apply(context, self.mouse)
                self.moves = getattr(self, "moves", 0) + 1
                if self.moves % 4 == 0:  # show the paint while the stroke goes on
                    self._refresh_texture()
            return {"RUNNING_MODAL"}
        return {"PASS_THROUGH"} if event.type in {"MIDDLEMOUSE", "TRACKPADPAN", "TRACKPADZOOM"} else {"RUNNING_MODAL"}


CLASSES = (MaskSplatStrokePoint, MASKSPLAT_OT_paint_mask)
