"""Cameras in one model (OpenCV pinhole) and the file formats splat captures come with.

`Camera` is what every other part uses: a 4x4 world-to-camera matrix with OpenCV axes
(x right, y down, z forward) and fx, fy, cx, cy in pixels, where the image spans
[0, W] x [0, H] and pixel centres sit at +0.5 (as in COLMAP and gsplat). Readers take the
file's coordinates as they are: no silent axis change.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .transform import matrix_to_quat, quat_to_matrix

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


class CameraFormatError(ValueError):
    """A camera file that cannot be read; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{Path(path).name}: {problem}")


@dataclass
class Camera:
    name: str
    image_name: str
    world_to_camera: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

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


def _pose(rotation_c2w: np.ndarray, center: np.ndarray) -> np.ndarray:
    c2w = np.eye(4)
    c2w[:3, :3] = rotation_c2w
    c2w[:3, 3] = center
    return np.linalg.inv(c2w)


def _stem(image_name: str) -> str:
    return Path(str(image_name).replace("\\", "/")).stem if Path(str(image_name)).suffix else Path(str(image_name)).name


def _finish(path, cameras: list[Camera]) -> list[Camera]:
    if not cameras:
        raise CameraFormatError(path, "holds no cameras")
    names = [c.name for c in cameras]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CameraFormatError(path, f"several cameras share the image name(s) {', '.join(duplicates[:5])}")
    for cam in cameras:
        if not np.all(np.isfinite(cam.world_to_camera)) or not all(
            math.isfinite(v) for v in (cam.fx, cam.fy, cam.cx, cam.cy)
        ):
            raise CameraFormatError(path, f"camera '{cam.name}' has NaN or Inf values")
        if cam.fx <= 0 or cam.fy <= 0 or cam.width <= 0 or cam.height <= 0:
            raise CameraFormatError(path, f"camera '{cam.name}' has a non-positive focal length or size")
    return sorted(cameras, key=lambda c: c.name)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CameraFormatError(path, f"not readable JSON ({err})") from None


def read_cameras_json(path) -> list[Camera]:
    """The original 3DGS trainer's cameras.json (rotation = camera-to-world, position = centre)."""
    path = Path(path)
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise CameraFormatError(path, "expected a list of cameras (3DGS cameras.json)")
    cameras = []
    for index, entry in enumerate(entries):
        try:
            width, height = int(entry["width"]), int(entry["height"])
            rotation = np.array(entry["rotation"], dtype=np.float64).reshape(3, 3)
            center = np.array(entry["position"], dtype=np.float64).reshape(3)
            image = str(entry.get("img_name", entry.get("id", index)))
            cameras.append(
                Camera(
                    _stem(image), image, _pose(rotation, center), float(entry["fx"]), float(entry["fy"]),
                    float(entry.get("cx", width / 2.0)), float(entry.get("cy", height / 2.0)), width, height,
                )
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as err:
            raise CameraFormatError(path, f"camera {index} is malformed ({type(err).__name__}: {err})") from None
    return _finish(path, cameras)


def read_transforms_json(path) -> list[Camera]:
    """nerfstudio / instant-ngp transforms.json (camera-to-world, OpenGL axes)."""
    path = Path(path)
    meta = _read_json(path)
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list):
        raise CameraFormatError(path, "expected an object with a 'frames' list (transforms.json)")
    cameras = []
    for index, frame in enumerate(meta["frames"]):
        try:
            merged = {**meta, **frame}
            width, height = int(merged["w"]), int(merged["h"])
            if "fl_x" in merged:
                fx = float(merged["fl_x"])
                fy = float(merged.get("fl_y", fx))
            else:
                fx = 0.5 * width / math.tan(0.5 * float(merged["camera_angle_x"]))
                fy = 0.5 * height / math.tan(0.5 * float(merged["camera_angle_y"])) if "camera_angle_y" in merged else fx
            c2w = np.array(frame["transform_matrix"], dtype=np.float64).reshape(4, 4) @ OPENGL_TO_OPENCV
            image = str(frame["file_path"])
            cameras.append(
                Camera(
                    _stem(image), Path(image).name, np.linalg.inv(c2w), fx, fy,
                    float(merged.get("cx", width / 2.0)), float(merged.get("cy", height / 2.0)), width, height,
                )
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as err:
            raise CameraFormatError(
                path, f"frame {index} is malformed ({type(err).__name__}: {err}; w, h and fl_x or camera_angle_x are needed)"
            ) from None
    return _finish(path, cameras)


# COLMAP camera models: id -> (name, parameter count).
COLMAP_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
}  # fmt: skip
COLMAP_IDS = {name: model_id for model_id, (name, _) in COLMAP_MODELS.items()}
PINHOLE_LIKE = {"SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV"}


def _intrinsics(path, model: str, params) -> tuple[float, float, float, float]:
    if model not in PINHOLE_LIKE:
        raise CameraFormatError(path, f"COLMAP camera model {model} is not supported (undistort the images to PINHOLE)")
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        return params[0], params[0], params[1], params[2]
    return params[0], params[1], params[2], params[3]


def _colmap_camera(name, q_wxyz, t, intr, width, height) -> Camera:
    w2c = np.eye(4)
    w2c[:3, :3] = quat_to_matrix(np.asarray(q_wxyz, dtype=np.float64)[None])[0]
    w2c[:3, 3] = t
    return Camera(_stem(name), name, w2c, *intr, int(width), int(height))


def _read_colmap_text(folder: Path) -> list[Camera]:
    intrinsics = {}
    for line in (folder / "cameras.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        cam_id, model, width, height = int(parts[0]), parts[1], int(parts[2]), int(parts[3])
        intrinsics[cam_id] = (_intrinsics(folder / "cameras.txt", model, [float(p) for p in parts[4:]]), width, height)
    cameras = []
    lines = [ln for ln in (folder / "images.txt").read_text().splitlines() if not ln.startswith("#")]
    for i in range(0, len(lines), 2):
        parts = lines[i].split()
        if not parts:
            continue
        if len(parts) < 10:
            raise CameraFormatError(folder / "images.txt", f"malformed image line '{lines[i]}'")
        q = [float(v) for v in parts[1:5]]
        t = [float(v) for v in parts[5:8]]
        cam_id, name = int(parts[8]), " ".join(parts[9:])
        if cam_id not in intrinsics:
            raise CameraFormatError(folder / "images.txt", f"image {name} uses unknown camera {cam_id}")
        intr, width, height = intrinsics[cam_id]
        cameras.append(_colmap_camera(name, q, t, intr, width, height))
    return cameras


def _read_colmap_binary(folder: Path) -> list[Camera]:
    intrinsics = {}
    raw = (folder / "cameras.bin").read_bytes()
    (count,), offset = struct.unpack_from("<Q", raw, 0), 8
    for _ in range(count):
        cam_id, model_id, width, height = struct.unpack_from("<iiQQ", raw, offset)
        offset += 24
        name, n_params = COLMAP_MODELS.get(model_id, (f"#{model_id}", 0))
        params = struct.unpack_from(f"<{n_params}d", raw, offset)
        offset += 8 * n_params
        intrinsics[cam_id] = (_intrinsics(folder / "cameras.bin", name, params), width, height)
    raw = (folder / "images.bin").read_bytes()
    (count,), offset = struct.unpack_from("<Q", raw, 0), 8
    cameras = []
    for _ in range(count):
        values = struct.unpack_from("<i7di", raw, offset)
        offset += 64
        end = raw.index(b"\0", offset)
        name = raw[offset:end].decode("utf-8")
        offset = end + 1
        (n_points,) = struct.unpack_from("<Q", raw, offset)
        offset += 8 + 24 * n_points
        cam_id = values[8]
        if cam_id not in intrinsics:
            raise CameraFormatError(folder / "images.bin", f"image {name} uses unknown camera {cam_id}")
        intr, width, height = intrinsics[cam_id]
        cameras.append(_colmap_camera(name, values[1:5], values[5:8], intr, width, height))
    return cameras


def _colmap_folder(path: Path) -> Path | None:
    for folder in (path, path / "0", path / "sparse" / "0", path / "sparse"):
        if (folder / "cameras.bin").exists() or (folder / "cameras.txt").exists():
            return folder
    return None


def read_colmap(path) -> list[Camera]:
    """A COLMAP sparse model (text or binary): the sparse/0 folder, sparse/, or the dataset root."""
    path = Path(path)
    folder = _colmap_folder(path if path.is_dir() else path.parent)
    if folder is None:
        raise CameraFormatError(path, "no COLMAP cameras.bin or cameras.txt found")
    try:
        if (folder / "cameras.bin").exists() and (folder / "images.bin").exists():
            cameras = _read_colmap_binary(folder)
        elif (folder / "images.txt").exists():
            cameras = _read_colmap_text(folder)
        else:
            raise CameraFormatError(folder, "COLMAP model has cameras but no images file")
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as err:
        if isinstance(err, CameraFormatError):
            raise
        raise CameraFormatError(folder, f"COLMAP model is malformed or truncated ({err})") from None
    return _finish(folder, cameras)


def load_cameras(path) -> list[Camera]:
    """Cameras from any supported file or folder, sorted by name."""
    path = Path(path)
    if not path.exists():
        raise CameraFormatError(path, f"not found ({path})")
    if path.is_dir() or path.suffix in (".bin", ".txt"):
        return read_colmap(path)
    if path.suffix.lower() == ".json":
        data = _read_json(path)
        return read_transforms_json(path) if isinstance(data, dict) else read_cameras_json(path)
    raise CameraFormatError(path, "unknown camera format (use cameras.json, transforms.json or a COLMAP sparse folder)")


def save_cameras_json(path, cameras: list[Camera]) -> None:
    """Write the 3DGS trainer's cameras.json (with cx, cy, which it reads as optional)."""
    entries = []
    for index, cam in enumerate(cameras):
        c2w = cam.camera_to_world()
        entries.append(
            {
                "id": index, "img_name": cam.name, "width": cam.width, "height": cam.height,
                "position": c2w[:3, 3].tolist(), "rotation": c2w[:3, :3].tolist(),
                "fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy,
            }
        )  # fmt: skip
    Path(path).write_text(json.dumps(entries, indent=1))


def save_transforms_json(path, cameras: list[Camera]) -> None:
    frames = []
    for cam in cameras:
        frames.append(
            {
                "file_path": f"images/{cam.image_name}", "transform_matrix": (cam.camera_to_world() @ OPENGL_TO_OPENCV).tolist(),
                "fl_x": cam.fx, "fl_y": cam.fy, "cx": cam.cx, "cy": cam.cy, "w": cam.width, "h": cam.height,
            }
        )  # fmt: skip
    Path(path).write_text(json.dumps({"camera_model": "OPENCV", "frames": frames}, indent=1))


def save_colmap(folder, cameras: list[Camera], binary: bool = False) -> None:
    """Write a COLMAP sparse model (PINHOLE cameras, no points), text or binary."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    quats = matrix_to_quat(np.stack([c.world_to_camera[:3, :3] for c in cameras]))
    if binary:
        cams = struct.pack("<Q", len(cameras))
        imgs = struct.pack("<Q", len(cameras))
        for i, (cam, q) in enumerate(zip(cameras, quats, strict=True), start=1):
            cams += struct.pack("<iiQQ4d", i, COLMAP_IDS["PINHOLE"], cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy)
            imgs += struct.pack("<i7di", i, *q, *cam.world_to_camera[:3, 3], i) + cam.image_name.encode() + b"\0"
            imgs += struct.pack("<Q", 0)
        (folder / "cameras.bin").write_bytes(cams)
        (folder / "images.bin").write_bytes(imgs)
        return
    cam_lines = ["# Camera list: CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    img_lines = ["# Image list: IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME"]
    for i, (cam, q) in enumerate(zip(cameras, quats, strict=True), start=1):
        cam_lines.append(f"{i} PINHOLE {cam.width} {cam.height} {cam.fx!r} {cam.fy!r} {cam.cx!r} {cam.cy!r}")
        t = cam.world_to_camera[:3, 3]
        img_lines.append(f"{i} {q[0]!r} {q[1]!r} {q[2]!r} {q[3]!r} {t[0]!r} {t[1]!r} {t[2]!r} {i} {cam.image_name}")
        img_lines.append("")
    (folder / "cameras.txt").write_text("\n".join(cam_lines) + "\n")
    (folder / "images.txt").write_text("\n".join(img_lines) + "\n")


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World-to-camera (OpenCV axes) for a camera at `eye` looking at `target`."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:  # looking straight along `up`
        right = np.cross(forward, np.roll(up, 1))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, eye
    return np.linalg.inv(c2w)


def orbit_cameras(
    center, radius: float, n: int, width: int = 256, height: int = 256, fov_deg: float = 50.0,
    up=(0.0, 0.0, 1.0), elevation_deg: tuple[float, float] = (-30.0, 60.0), name_prefix: str = "orbit",
) -> list[Camera]:  # fmt: skip
    """`n` cameras on a sphere band around `center` (a golden spiral), all looking at it."""
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(up, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    low, high = np.radians(elevation_deg)
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
    cameras = []
    for i in range(n):
        s = (i + 0.5) / n
        elevation = math.asin(math.sin(low) + s * (math.sin(high) - math.sin(low)))
        azimuth = i * math.pi * (3.0 - math.sqrt(5.0))
        direction = math.cos(elevation) * (math.cos(azimuth) * e1 + math.sin(azimuth) * e2) + math.sin(elevation) * up
        eye = np.asarray(center, dtype=np.float64) + radius * direction
        name = f"{name_prefix}_{i:03d}"
        cameras.append(Camera(name, f"{name}.png", look_at(eye, center, up), f, f, width / 2.0, height / 2.0, width, height))
    return cameras
