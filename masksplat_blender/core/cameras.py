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
from pathlib import Path, PurePosixPath

import numpy as np

from .transform import matrix_to_quat, quat_to_matrix

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
MAX_IMAGE_SIZE = 16384  # pixels a side; the backend refuses larger views (core/request.py)


class CameraFormatError(ValueError):
    """A camera file that cannot be read; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


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


def _pose(rotation_c2w: np.ndarray, center: np.ndarray) -> np.ndarray:
    """World-to-camera from a camera-to-world rotation and the camera centre."""
    w2c = np.eye(4)
    w2c[:3, :3] = rotation_c2w.T
    w2c[:3, 3] = -rotation_c2w.T @ center
    return w2c if abs(np.linalg.det(rotation_c2w) - 1.0) < 1e-9 else np.linalg.inv(_c2w(rotation_c2w, center))


def _c2w(rotation: np.ndarray, center: np.ndarray) -> np.ndarray:
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = rotation, center
    return c2w


def image_stem(image_name: str) -> str:
    """A camera's file stem, the one name its masks, label maps and renders go by: its image's
    file name without folders and extension (`images/view_000.png` -> `view_000`, COLMAP's
    `cam0/0001.jpg` -> `0001`, `a.b.png` -> `a.b`). A mask file's own stem is found the same way.
    "" when there is no file name in it (``, `..`, `images/`)."""
    base = PurePosixPath(str(image_name).replace("\\", "/")).name
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    return "" if stem in ("", ".", "..") else stem


_stem = image_stem


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


def pixel_count(value, what: str) -> int:
    """A whole number of pixels from a camera file (128 or 128.0; not 128.7, not true)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} must be a whole number of pixels, not {value!r}")
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{what} must be a whole number of pixels, not {value!r}")
    return int(number)


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
                    image_stem(image), image, _pose(rotation, center), float(entry["fx"]), float(entry["fy"]),
                    float(entry.get("cx", width / 2.0)), float(entry.get("cy", height / 2.0)), width, height,
                )
            )  # fmt: skip
        except _ENTRY_ERRORS as err:
            raise CameraFormatError(path, f"camera {index} is malformed ({type(err).__name__}: {err})") from None
    return _finish(path, cameras)


def image_size(path) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, or None for anything else."""
    try:
        with open(path, "rb") as file:
            head = file.read(1 << 16)
    except OSError:
        return None
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:2] == b"\xff\xd8":
        offset = 2
        while offset + 9 < len(head):
            if head[offset] != 0xFF:
                return None
            marker = head[offset + 1]
            if marker == 0xFF:  # fill byte
                offset += 1
                continue
            (length,) = struct.unpack(">H", head[offset + 2 : offset + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
                height, width = struct.unpack(">HH", head[offset + 5 : offset + 9])
                return width, height
            offset += 2 + length
    return None


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
COLMAP_IDS = {name: model_id for model_id, (name, _) in COLMAP_MODELS.items()}
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
    """Write a nerfstudio transforms.json (per-frame intrinsics, camera-to-world in OpenGL axes)."""
    frames = []
    for cam in cameras:
        frames.append(
            {
                "file_path": f"images/{cam.image_name}", "transform_matrix": (cam.camera_to_world() @ OPENGL_TO_OPENCV).tolist(),
                "fl_x": cam.fx, "fl_y": cam.fy, "cx": cam.cx, "cy": cam.cy, "w": cam.width, "h": cam.height,
            }
        )  # fmt: skip
    Path(path).write_text(json.dumps({"camera_model": "OPENCV", "frames": frames}, indent=1))


def _colmap_model(cam: Camera) -> tuple[str, tuple[float, ...]]:
    """The COLMAP model and parameters to write for `cam` (PINHOLE unless it carries distortion)."""
    if cam.distortion is None or cam.distortion[0] not in PINHOLE_LIKE:
        return "PINHOLE", (cam.fx, cam.fy, cam.cx, cam.cy)
    model, rest = cam.distortion
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        params = (cam.fx, cam.cx, cam.cy, *rest)
    else:
        params = (cam.fx, cam.fy, cam.cx, cam.cy, *rest)
    if len(params) != COLMAP_PARAM_COUNTS[model]:
        raise ValueError(f"camera '{cam.name}': {model} needs {COLMAP_PARAM_COUNTS[model]} parameters")
    return model, tuple(float(p) for p in params)


def save_colmap(folder, cameras: list[Camera], binary: bool = False) -> None:
    """Write a COLMAP sparse model (no points), text or binary.

    Cameras are PINHOLE, or the COLMAP model their `distortion` names (then fx = fy is assumed
    for the single-focal models).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    quats = matrix_to_quat(np.stack([c.world_to_camera[:3, :3] for c in cameras]))
    models = [_colmap_model(cam) for cam in cameras]
    if binary:
        cams = [struct.pack("<Q", len(cameras))]
        imgs = [struct.pack("<Q", len(cameras))]
        for i, (cam, q, (model, params)) in enumerate(zip(cameras, quats, models, strict=True), start=1):
            cams.append(struct.pack(f"<iiQQ{len(params)}d", i, COLMAP_IDS[model], cam.width, cam.height, *params))
            imgs.append(struct.pack("<i7di", i, *q, *cam.world_to_camera[:3, 3], i) + cam.image_name.encode() + b"\0")
            imgs.append(struct.pack("<Q", 0))
        (folder / "cameras.bin").write_bytes(b"".join(cams))
        (folder / "images.bin").write_bytes(b"".join(imgs))
        return
    cam_lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    img_lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
    ]
    for i, (cam, q, (model, params)) in enumerate(zip(cameras, quats, models, strict=True), start=1):
        cam_lines.append(f"{i} {model} {cam.width} {cam.height} " + " ".join(repr(float(p)) for p in params))
        pose = " ".join(repr(float(v)) for v in (*q, *cam.world_to_camera[:3, 3]))
        img_lines.append(f"{i} {pose} {i} {cam.image_name}")
        img_lines.append("")
    (folder / "cameras.txt").write_text("\n".join(cam_lines) + "\n")
    (folder / "images.txt").write_text("\n".join(img_lines) + "\n")


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
    return _pose(np.stack([right, down, forward], axis=1), eye)


def orbit_cameras(
    center, radius: float, n: int, width: int = 256, height: int = 256, fov_deg: float = 50.0,
    up=(0.0, 0.0, 1.0), elevation_deg: tuple[float, float] = (-30.0, 60.0), name_prefix: str = "orbit",
) -> list[Camera]:  # fmt: skip
    """`n` cameras on a sphere band around `center` (a golden spiral), all looking at it.

    `fov_deg` is the horizontal field of view; `elevation_deg` the band's lowest and highest
    elevation above the plane normal to `up`. Deterministic: the same arguments give the same cameras.
    """
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
