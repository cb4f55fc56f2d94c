"""Camera file writers for tests, benchmarks and the demo: the three formats
masksplat_blender.core.camera_files reads, written from core.cameras.Camera (the add-on
itself only reads camera files)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from masksplat_blender.core.camera_files import COLMAP_MODELS, COLMAP_PARAM_COUNTS, PINHOLE_LIKE
from masksplat_blender.core.cameras import OPENGL_TO_OPENCV, Camera
from masksplat_blender.core.transform import matrix_to_quat

COLMAP_IDS = {name: model_id for model_id, (name, _) in COLMAP_MODELS.items()}


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
