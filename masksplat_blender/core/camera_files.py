"""The camera files splat captures come with: 3DGS cameras.json, nerfstudio / instant-ngp
transforms.json and COLMAP sparse models (text and binary), read into core.cameras.Camera.

Readers take the file's coordinates as they are: no silent axis change. Every reader ends in
the same checks (`_finish`): names, finite values, sizes, proper rotations.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path, PurePosixPath

import numpy as np

from .cameras import MAX_IMAGE_SIZE, OPENGL_TO_OPENCV, Camera, CameraNameError, by_stem, image_stem, pose
from .images import image_size
from .transform import quat_to_matrix


class CameraFormatError(ValueError):
    """A camera file that cannot be read; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def pixel_count(value, what: str) -> int:
    """A whole number of pixels from a camera file (128 or 128.0; not 128.7, not true)."""
    whole = isinstance(value, (int, float, str)) and not isinstance(value, bool) and float(value).is_integer()
    if not whole:
        raise ValueError(f"{what} must be a whole number of pixels, not {value!r}")
    return int(float(value))


def _finish(path, cameras: list[Camera]) -> list[Camera]:
    if not cameras:
        raise CameraFormatError(path, "holds no cameras")
    for cam in cameras:
        if not cam.name:
            raise CameraFormatError(path, f"camera image name {cam.image_name!r} has no file name")
    try:
        by_stem(cameras, lambda c: c.name, lambda c: c.image_name)
    except CameraNameError as err:
        raise CameraFormatError(path, str(err)) from None
    for cam in cameras:
        if not np.all(np.isfinite(cam.world_to_camera)) or not all(
            math.isfinite(v) for v in (cam.fx, cam.fy, cam.cx, cam.cy)
        ):
            raise CameraFormatError(path, f"camera '{cam.name}' has NaN or Inf values")
        if cam.fx <= 0 or cam.fy <= 0 or cam.width <= 0 or cam.height <= 0:
            raise CameraFormatError(path, f"camera '{cam.name}' has a non-positive focal length or size")
        if cam.width > MAX_IMAGE_SIZE or cam.height > MAX_IMAGE_SIZE:
            raise CameraFormatError(
                path, f"camera '{cam.name}' is {cam.width}x{cam.height} pixels; at most {MAX_IMAGE_SIZE} a side is supported"
            )
        rotation = cam.world_to_camera[:3, :3]
        if np.abs(rotation @ rotation.T - np.eye(3)).max() > 1e-2 or np.linalg.det(rotation) <= 0:
            raise CameraFormatError(path, f"camera '{cam.name}' has a rotation that is scaled, sheared or mirrored")
    return sorted(cameras, key=lambda c: c.name)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CameraFormatError(path, f"not readable JSON ({err})") from None


_ENTRY_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)
NOT_A_CAMERA_FILE = (
    "is neither a 3DGS cameras.json (a list of cameras with img_name, width, height, position, rotation, fx, fy) "
    "nor a transforms.json (an object with a 'frames' list)"
)


def read_cameras_json(path) -> list[Camera]:
    """The original 3DGS trainer's cameras.json (rotation = camera-to-world, position = centre)."""
    path = Path(path)
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise CameraFormatError(path, NOT_A_CAMERA_FILE)
    cameras = []
    for index, entry in enumerate(entries):
        try:
            width, height = pixel_count(entry["width"], "width"), pixel_count(entry["height"], "height")
            rotation = np.array(entry["rotation"], dtype=np.float64).reshape(3, 3)
            center = np.array(entry["position"], dtype=np.float64).reshape(3)
            image = str(entry.get("img_name", entry.get("id", index)))
            cameras.append(
                Camera(
                    image_stem(image), image, pose(rotation, center), float(entry["fx"]), float(entry["fy"]),
                    float(entry.get("cx", width / 2.0)), float(entry.get("cy", height / 2.0)), width, height,
                )
            )  # fmt: skip
        except _ENTRY_ERRORS as err:
            raise CameraFormatError(path, f"camera {index} is malformed ({type(err).__name__}: {err})") from None
    return _finish(path, cameras)


def _frame_image(folder: Path, file_path: str) -> Path | None:
    base = folder / file_path.replace("\\", "/")
    candidates = [base] if base.suffix else []
    candidates += [base.with_name(base.name + ext) for ext in (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")]
    return next((c for c in candidates if c.is_file()), None)


# nerfstudio distortion keys (OPENCV model) and the camera models that are not pinhole at all.
TRANSFORMS_DISTORTION = ("k1", "k2", "p1", "p2", "k3", "k4")
TRANSFORMS_UNSUPPORTED = ("OPENCV_FISHEYE", "EQUIRECTANGULAR", "FISHEYE", "SPHERICAL")


def read_transforms_json(path) -> list[Camera]:
    """nerfstudio / instant-ngp transforms.json (camera-to-world, OpenGL axes).

    Intrinsics per frame or global: fl_x/fl_y/cx/cy/w/h, or camera_angle_x (and _y). Without
    w/h the size is read from the frame's PNG or JPEG header (NeRF-synthetic style files).
    """
    path = Path(path)
    meta = _read_json(path)
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list):
        raise CameraFormatError(path, NOT_A_CAMERA_FILE)
    cameras = []
    for index, frame in enumerate(meta["frames"]):
        try:
            merged = {**meta, **frame}
            model = str(merged.get("camera_model", "OPENCV")).upper()
            if model in TRANSFORMS_UNSUPPORTED:
                raise CameraFormatError(path, f"camera model {model} is not a pinhole camera (undistort the images first)")
            image = str(frame["file_path"])
            if "w" in merged and "h" in merged:
                width, height = pixel_count(merged["w"], "w"), pixel_count(merged["h"], "h")
            else:
                found = _frame_image(path.parent, image)
                size = image_size(found) if found else None
                if size is None:
                    raise CameraFormatError(
                        path, f"frame {index} has no w/h and its image '{image}' is not a readable PNG or JPEG next to the file"
                    )
                width, height = size
            if "fl_x" in merged:
                fx = float(merged["fl_x"])
                fy = float(merged.get("fl_y", fx))
            else:
                fx = 0.5 * width / math.tan(0.5 * float(merged["camera_angle_x"]))
                fy = 0.5 * height / math.tan(0.5 * float(merged["camera_angle_y"])) if "camera_angle_y" in merged else fx
            c2w = np.array(frame["transform_matrix"], dtype=np.float64).reshape(4, 4) @ OPENGL_TO_OPENCV
            coefficients = tuple(float(merged.get(k, 0.0)) for k in TRANSFORMS_DISTORTION)
            cameras.append(
                Camera(
                    image_stem(image), PurePosixPath(image.replace("\\", "/")).name, np.linalg.inv(c2w), fx, fy,
                    float(merged.get("cx", width / 2.0)), float(merged.get("cy", height / 2.0)), width, height,
                    (model, coefficients) if any(coefficients) else None,
                )
            )  # fmt: skip
        except CameraFormatError:
            raise
        except (*_ENTRY_ERRORS, np.linalg.LinAlgError) as err:
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
PINHOLE_LIKE = {"SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV"}
COLMAP_PARAM_COUNTS = {name: count for name, count in COLMAP_MODELS.values()}


def _intrinsics(path, model: str, params) -> tuple[tuple[float, float, float, float], tuple | None]:
    """(fx, fy, cx, cy) and the distortion the pinhole model leaves out ((model, params) or None)."""
    if model not in PINHOLE_LIKE:
        raise CameraFormatError(path, f"COLMAP camera model {model} is not supported (undistort the images to PINHOLE)")
    params = tuple(float(p) for p in params)
    if len(params) != COLMAP_PARAM_COUNTS[model]:
        raise CameraFormatError(path, f"a {model} camera needs {COLMAP_PARAM_COUNTS[model]} parameters, not {len(params)}")
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        intr, rest = (params[0], params[0], params[1], params[2]), params[3:]
    else:
        intr, rest = params[:4], params[4:]
    return intr, ((model, rest) if any(rest) else None)


class _BadEntry(ValueError):
    """One camera entry is wrong in a way worth naming on its own (not 'malformed')."""


def _colmap_camera(name, q_wxyz, t, intrinsics, width, height) -> Camera:
    (intr, distortion) = intrinsics
    q = np.asarray(q_wxyz, dtype=np.float64)
    if not np.linalg.norm(q) > 0:
        raise _BadEntry(f"image {name} has a zero quaternion or non-finite values")
    w2c = np.eye(4)
    w2c[:3, :3] = quat_to_matrix(q[None])[0]
    w2c[:3, 3] = t
    return Camera(image_stem(name), name, w2c, *intr, int(width), int(height), distortion)


def _colmap_cameras_txt(file: Path) -> dict:
    intrinsics = {}
    for line in file.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        cam_id, model, width, height = int(parts[0]), parts[1], int(parts[2]), int(parts[3])
        intrinsics[cam_id] = (_intrinsics(file, model, parts[4:]), width, height)
    return intrinsics


def _colmap_images_txt(file: Path, intrinsics: dict) -> list[Camera]:
    # Two lines an image: the pose line, then its 2D points (possibly empty).
    lines = [ln for ln in file.read_text().splitlines() if not ln.lstrip().startswith("#")]
    cameras = []
    for i in range(0, len(lines), 2):
        parts = lines[i].split()
        if not parts:
            continue
        if len(parts) < 10:
            raise CameraFormatError(file, f"malformed image line '{lines[i]}'")
        q = [float(v) for v in parts[1:5]]
        t = [float(v) for v in parts[5:8]]
        cam_id, name = int(parts[8]), " ".join(parts[9:])
        if cam_id not in intrinsics:
            raise CameraFormatError(file, f"image {name} uses unknown camera {cam_id}")
        intr, width, height = intrinsics[cam_id]
        cameras.append(_colmap_camera(name, q, t, intr, width, height))
    return cameras


def _colmap_cameras_bin(file: Path) -> dict:
    intrinsics = {}
    raw = file.read_bytes()
    (count,), offset = struct.unpack_from("<Q", raw, 0), 8
    for _ in range(count):
        cam_id, model_id, width, height = struct.unpack_from("<iiQQ", raw, offset)
        offset += 24
        name, n_params = COLMAP_MODELS.get(model_id, (f"#{model_id}", 0))
        params = struct.unpack_from(f"<{n_params}d", raw, offset)
        offset += 8 * n_params
        intrinsics[cam_id] = (_intrinsics(file, name, params), width, height)
    return intrinsics


def _colmap_images_bin(file: Path, intrinsics: dict) -> list[Camera]:
    raw = file.read_bytes()
    (count,), offset = struct.unpack_from("<Q", raw, 0), 8
    cameras = []
    for _ in range(count):
        values = struct.unpack_from("<i7di", raw, offset)  # image id, qw qx qy qz, tx ty tz, camera id
        offset += 64
        end = raw.index(b"\0", offset)
        name = raw[offset:end].decode("utf-8")
        offset = end + 1
        (n_points,) = struct.unpack_from("<Q", raw, offset)
        offset += 8 + 24 * n_points  # x, y (double) and point3D id (int64) each
        if offset > len(raw):
            raise CameraFormatError(file, "is truncated")
        cam_id = values[8]
        if cam_id not in intrinsics:
            raise CameraFormatError(file, f"image {name} uses unknown camera {cam_id}")
        intr, width, height = intrinsics[cam_id]
        cameras.append(_colmap_camera(name, values[1:5], values[5:8], intr, width, height))
    return cameras


def _parse(file: Path, reader, *args):
    try:
        return reader(file, *args)
    except CameraFormatError:
        raise
    except _BadEntry as err:
        raise CameraFormatError(file, str(err)) from None
    except (struct.error, ValueError, IndexError, KeyError, UnicodeDecodeError, OSError) as err:
        raise CameraFormatError(file, f"malformed or truncated COLMAP file ({type(err).__name__}: {err})") from None


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
        raise CameraFormatError(path, "no COLMAP model here (cameras.bin or cameras.txt, also under sparse/0)")
    if (folder / "cameras.bin").exists() and (folder / "images.bin").exists():
        intrinsics = _parse(folder / "cameras.bin", _colmap_cameras_bin)
        cameras = _parse(folder / "images.bin", _colmap_images_bin, intrinsics)
    elif (folder / "cameras.txt").exists() and (folder / "images.txt").exists():
        intrinsics = _parse(folder / "cameras.txt", _colmap_cameras_txt)
        cameras = _parse(folder / "images.txt", _colmap_images_txt, intrinsics)
    else:
        raise CameraFormatError(folder, "COLMAP model lacks its images file (images.bin or images.txt beside cameras)")
    return _finish(folder, cameras)


def distortion_warning(cameras: list[Camera]) -> str | None:
    """One line saying which cameras carry lens distortion that the pinhole model ignores."""
    distorted = [c for c in cameras if c.distortion is not None]
    if not distorted:
        return None
    models = ", ".join(sorted({c.distortion[0] for c in distorted}))
    return (
        f"{len(distorted)} of {len(cameras)} cameras have {models} lens distortion, which is ignored "
        "(masks match undistorted images; undistort them, e.g. with COLMAP's image_undistorter)"
    )


def load_cameras(path, warnings: list[str] | None = None) -> list[Camera]:
    """Cameras from any supported file or folder, sorted by name.

    3DGS cameras.json, COLMAP sparse models (text or binary; the sparse/0 folder, sparse/ or
    the dataset root, or a file inside), nerfstudio / instant-ngp transforms.json. Problems
    that do not stop the import (ignored lens distortion) are appended to `warnings`.
    """
    path = Path(path)
    if not path.exists():
        raise CameraFormatError(path, "not found")
    if path.is_dir() or path.suffix in (".bin", ".txt"):
        cameras = read_colmap(path)
    elif path.suffix.lower() == ".json":
        data = _read_json(path)
        cameras = read_transforms_json(path) if isinstance(data, dict) else read_cameras_json(path)
    else:
        raise CameraFormatError(path, "unknown camera format (use cameras.json, transforms.json or a COLMAP sparse folder)")
    message = distortion_warning(cameras)
    if message and warnings is not None:
        warnings.append(message)
    return cameras
