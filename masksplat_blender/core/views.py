"""Cameras from what a 3D viewport shows: its view and projection matrices to the OpenCV model.

Blender's view matrix maps world to view space (x right, y up, looking down -z); its
projection ("window") matrix is OpenGL's, so for a view point (x, y, z)
ndc_x = P00 * x / -z - P02 and ndc_y = P11 * y / -z - P12. With pixels counted from the
top-left corner of a `width` x `height` image (OpenCV: y down), that is
fx = P00 W / 2, cx = W (1 - P02) / 2, fy = P11 H / 2, cy = H (1 + P12) / 2.

A viewport that does not look through a camera draws with its own lens over a 36 mm
sensor at Blender's zoom factor 2 (BKE_camera_params_from_view3d), i.e. a 72 mm sensor,
fitted to the longer side of the region. `viewport_projection` rebuilds that matrix. An
orthographic view becomes the perspective view Blender shows after Numpad 5 (masks are
cast by perspective cameras): its view matrix has the eye at the pivot, the perspective
eye sits the view distance behind it (`perspective_view`), and at the pivot both show the
same scale (ortho scale = distance x 72 mm / lens).
"""

from __future__ import annotations

import numpy as np

from .cameras import Camera

BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])  # camera axes: Blender looks down -Z with +Y up
VIEWPORT_SENSOR = 72.0  # mm: the 36 mm default sensor at the viewport's zoom factor 2


def viewport_projection(lens: float, width: int, height: int, clip_start: float = 0.01, clip_end: float = 1000.0) -> np.ndarray:
    """[4, 4] the perspective projection a viewport with `lens` (mm) draws a `width` x `height` region with."""
    if lens <= 0 or width <= 0 or height <= 0:
        raise ValueError(f"a viewport needs a positive lens and size, got lens {lens}, {width}x{height}")
    focal = max(width, height) * lens / VIEWPORT_SENSOR  # pixels, sensor fitted to the longer side
    near, far = float(clip_start), float(clip_end)
    projection = np.zeros((4, 4))
    projection[0, 0], projection[1, 1] = 2.0 * focal / width, 2.0 * focal / height
    projection[2, 2], projection[2, 3] = -(far + near) / (far - near), -2.0 * far * near / (far - near)
    projection[3, 2] = -1.0
    return projection


def perspective_view(view_matrix, distance: float) -> np.ndarray:
    """The view matrix of the perspective view of an orthographic one: Blender leaves the
    view distance out of an orthographic view matrix (the eye at the pivot); the eye of its
    perspective twin is `distance` behind the pivot, along the view axis."""
    view = np.array(view_matrix, dtype=np.float64)
    view[2, 3] -= distance
    return view


def intrinsics_from_projection(projection, width: int, height: int) -> tuple[float, float, float, float]:
    """fx, fy, cx, cy (pixels, OpenCV) of a perspective projection matrix for a `width` x `height` image."""
    p = np.asarray(projection, dtype=np.float64)
    if p.shape != (4, 4) or p[3, 3] != 0.0 or p[3, 2] >= 0:
        raise ValueError("not a perspective projection (an orthographic view has no single eye point)")
    return p[0, 0] * width / 2.0, p[1, 1] * height / 2.0, width * (1.0 - p[0, 2]) / 2.0, height * (1.0 + p[1, 2]) / 2.0


def fit_size(width: int, height: int, max_size: int = 0) -> tuple[int, int]:
    """The region size, scaled down (aspect kept) so its longer side is at most `max_size` (0: as it is)."""
    if max_size <= 0 or max(width, height) <= max_size:
        return int(width), int(height)
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def camera_from_view(name: str, view_matrix, projection, width: int, height: int, max_size: int = 0) -> Camera:
    """The OpenCV camera that sees what a viewport region of `width` x `height` pixels shows.

    view_matrix: [4, 4] world to view (Blender's region_3d.view_matrix); projection: its
    perspective projection ([4, 4], region_3d.window_matrix or `viewport_projection`). The
    image is the region scaled to at most `max_size` pixels on its longer side.
    """
    view = np.asarray(view_matrix, dtype=np.float64)
    if view.shape != (4, 4) or not np.isfinite(view).all():
        raise ValueError("the view matrix must be a finite 4x4 matrix")
    fx, fy, cx, cy = intrinsics_from_projection(projection, width, height)
    out_w, out_h = fit_size(width, height, max_size)
    sx, sy = out_w / width, out_h / height
    return Camera(name=name, image_name=f"{name}.png", world_to_camera=BLENDER_TO_OPENCV @ view,
                  fx=fx * sx, fy=fy * sy, cx=cx * sx, cy=cy * sy, width=out_w, height=out_h)  # fmt: skip


def pick_splat(means, view_projection, width: int, height: int, mouse, opacities=None, radius: float = 8.0) -> int:
    """Index of the splat under the mouse in a viewport region, or -1.

    view_projection: [4, 4] world to clip (region_3d.perspective_matrix); mouse: region
    pixels (x right, y up). Among the splats whose centres project within `radius` pixels,
    the nearest to the eye wins; with `opacities`, faint ones (< 0.1) only when nothing else is there.
    """
    means = np.asarray(means, dtype=np.float64)
    clip = np.c_[means, np.ones(len(means))] @ np.asarray(view_projection, dtype=np.float64).T
    w = clip[:, 3]
    front = w > 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (clip[:, 0] / w + 1.0) * width / 2.0
        y = (clip[:, 1] / w + 1.0) * height / 2.0
    near = front & ((x - mouse[0]) ** 2 + (y - mouse[1]) ** 2 <= radius**2)
    if opacities is not None and (near & (np.asarray(opacities) >= 0.1)).any():
        near &= np.asarray(opacities) >= 0.1
    if not near.any():
        return -1
    candidates = np.flatnonzero(near)
    return int(candidates[np.argmin(w[candidates])])
