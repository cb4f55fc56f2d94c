"""Cameras in one model (OpenCV pinhole) and its conventions.

`Camera` is what every other part uses, the backend's views included: a 4x4 world-to-camera
matrix with OpenCV axes (x right, y down, z forward) and fx, fy, cx, cy in pixels, where the
image spans [0, W] x [0, H] and pixel centres sit at +0.5 (as in COLMAP and gsplat).
`image_stem` is the one rule for the name a camera's masks, label maps and renders go by.
Files: core.camera_files reads them; core.orbit places cameras around a point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
MAX_IMAGE_SIZE = 16384  # pixels a side; the backend refuses larger views (core/request.py)


@dataclass
class Camera:
    """One pinhole camera, the only camera record: files are read into it, Blender cameras
    convert to and from it (scene.cameras), requests carry it as a view and the backend's
    rasterizers take it as it is. `name` is what its masks, label maps and renders are
    named by (for a camera read from a file: image_stem of `image_name`)."""

    name: str
    image_name: str
    world_to_camera: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    # Lens distortion the file gave and the pinhole model leaves out: (model, params), else None.
    distortion: tuple[str, tuple[float, ...]] | None = None

    def __post_init__(self):
        self.world_to_camera = np.array(self.world_to_camera, dtype=np.float64).reshape(4, 4)
        self.fx, self.fy, self.cx, self.cy = (float(v) for v in (self.fx, self.fy, self.cx, self.cy))
        self.width, self.height = int(self.width), int(self.height)

    def K(self) -> np.ndarray:
        """[3, 3] intrinsics."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def camera_to_world(self) -> np.ndarray:
        return np.linalg.inv(self.world_to_camera)

    def center(self) -> np.ndarray:
        return self.camera_to_world()[:3, 3]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates [N, 2] and depths [N] of world points [N, 3]."""
        cam = np.asarray(points, dtype=np.float64) @ self.world_to_camera[:3, :3].T + self.world_to_camera[:3, 3]
        depth = cam[:, 2]
        uv = np.stack([self.fx * cam[:, 0] / depth + self.cx, self.fy * cam[:, 1] / depth + self.cy], axis=1)
        return uv, depth


def pose(rotation_c2w: np.ndarray, center: np.ndarray) -> np.ndarray:
    """World-to-camera from a camera-to-world rotation and the camera centre."""
    w2c = np.eye(4)
    w2c[:3, :3] = rotation_c2w.T
    w2c[:3, 3] = -rotation_c2w.T @ center
    if abs(np.linalg.det(rotation_c2w) - 1.0) < 1e-9:
        return w2c
    c2w = np.eye(4)  # not a rotation: invert the whole matrix, so a bad one is caught where it is checked
    c2w[:3, :3], c2w[:3, 3] = rotation_c2w, center
    return np.linalg.inv(c2w)


def image_stem(image_name: str) -> str:
    """A camera's file stem, the one name its masks, label maps and renders go by: its image's
    file name without folders and extension (`images/view_000.png` -> `view_000`, COLMAP's
    `cam0/0001.jpg` -> `0001`, `a.b.png` -> `a.b`). A mask file's own stem is found the same way.
    "" when there is no file name in it (``, `..`, `images/`)."""
    base = PurePosixPath(str(image_name).replace("\\", "/")).name
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    return "" if stem in ("", ".", "..") else stem


class CameraNameError(ValueError):
    """Two cameras that masks, label maps and renders could not tell apart."""


def by_stem(items, stem_of, label_of=str) -> dict:
    """{file stem: item}; two items with one stem (cam0/0001.jpg and cam1/0001.jpg) are refused, naming both."""
    out: dict = {}
    for item in items:
        stem = stem_of(item)
        if stem in out:
            raise CameraNameError(
                f"cameras {label_of(out[stem])!r} and {label_of(item)!r} share the file stem '{stem}', which names their "
                "masks, label maps and renders: give their images different file names"
            )
        out[stem] = item
    return out


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World-to-camera (OpenCV axes) for a camera at `eye` looking at `target`."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9 * np.linalg.norm(up):  # looking straight along `up`
        right = np.cross(forward, np.eye(3)[np.argmin(np.abs(forward))])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return pose(np.stack([right, down, forward], axis=1), eye)
