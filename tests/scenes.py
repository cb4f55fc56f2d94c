"""Test scenes from real splats: the bundled fruit_drops with its hand labels, cameras and
ground-truth masks rendered from the labels (occlusion-aware, thresholded at 0.5)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from masksplat_blender.client import BackendClient, render_views
from masksplat_blender.core.cameras import orbit_cameras
from masksplat_blender.core.masks import label_sh
from masksplat_blender.core.splat_io import read_splats

SAMPLE_DIR = Path(__file__).parent / "data" / "fruit_drops"
SAMPLE = SAMPLE_DIR / "fruit_drops_minimal.ply"


def fruit_labels() -> np.ndarray:
    data = json.loads((SAMPLE_DIR / "fruit_drops_minimal.json").read_text())
    return np.array(data["dataset"]["samples"][0]["labels"]["ground-truth"]["attributes"]["point_annotations"]).astype(np.int32)


def fruit_cameras(n: int, size: int = 96, name_prefix: str = "view", elevation=(40.0, 75.0)):
    """Cameras in front of the printed card (it is flat: its normal is +z), looking at it."""
    data = read_splats(SAMPLE)
    lo, hi = np.percentile(data.means(), [2, 98], axis=0)
    return orbit_cameras((lo + hi) / 2, 1.2 * float(np.linalg.norm(hi - lo)), n, size, size, fov_deg=45,
                         up=(0, 0, 1), elevation_deg=elevation, name_prefix=name_prefix)  # fmt: skip


def label_masks(cameras, labels_on: np.ndarray, client: BackendClient | None = None) -> list[np.ndarray]:
    """uint8 masks (255 = object) of the Gaussians where `labels_on`, rendered occlusion-aware."""
    data = read_splats(SAMPLE)
    own = client is None
    client = client or BackendClient(sys.executable, device="cpu")
    try:
        renders = render_views(client, data.gaussian_arrays(), label_sh(labels_on.astype(np.float32)), cameras)
    finally:
        if own:
            client.close()
    return [np.where(rgb[:, :, 0] > 127, 255, 0).astype(np.uint8) for rgb, _ in renders]


def fruit_label_maps(cameras, labels: np.ndarray | None = None, client: BackendClient | None = None) -> list[np.ndarray]:
    """int32 label maps (ids 0..8) of the hand labels (or `labels`), rendered occlusion-aware."""
    from masksplat_blender.core.labels import render_label_maps

    data = read_splats(SAMPLE)
    labels = fruit_labels() if labels is None else labels
    own = client is None
    client = client or BackendClient(sys.executable, device="cpu")
    try:
        return render_label_maps(lambda sh: render_views(client, data.gaussian_arrays(), sh, cameras), labels, int(labels.max()) + 1)
    finally:
        if own:
            client.close()


def write_affordance_scene(folder: Path, cameras, recolour: bool = True, source_index: int = 0, extra_sources=()) -> dict:
    """The sample for label transfer: scene.ply (recoloured by its 9 hand labels without
    view-dependent colour, so colour features carry the labels; or as captured), cameras.json,
    gt/<camera>.png label maps rendered from the hand labels, and the source view's render
    (source.png) with its labels (source_labels.png). Returns the paths."""
    from masksplat_blender.core.cameras import save_cameras_json
    from masksplat_blender.core.images import write_png
    from masksplat_blender.core.labels import default_colours
    from masksplat_blender.core.masks import colour_sh
    from masksplat_blender.core.splat_io import write_ply

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = read_splats(SAMPLE)
    labels = fruit_labels()
    vertices = data.vertices.copy()
    if recolour:
        colours = np.array(default_colours(9), dtype=np.float32)
        colours[0] = (0.05, 0.05, 0.05)  # the card dark, letters bright
        dc = colour_sh(colours[labels])[:, 0, :]
        for c in range(3):
            vertices[f"f_dc_{c}"] = dc[:, c]
        for name in vertices.dtype.names:
            if name.startswith("f_rest_"):
                vertices[name] = 0.0
        data.vertices = vertices
    write_ply(folder / "scene.ply", data)
    save_cameras_json(folder / "cameras.json", cameras)
    (folder / "gt").mkdir(exist_ok=True)
    client = BackendClient(sys.executable, device="cpu")
    try:
        for cam, ids in zip(cameras, fruit_label_maps(cameras, client=client), strict=True):
            write_png(folder / "gt" / f"{cam.name}.png", ids.astype(np.uint8))
        degree = data.sh_degree
        dc = np.stack([vertices[f"f_dc_{c}"] for c in range(3)], axis=1)[:, None, :]
        rest_count = (degree + 1) ** 2 - 1
        if rest_count and not recolour:
            rest = np.stack([vertices[f"f_rest_{i}"] for i in range(3 * rest_count)], axis=1).reshape(-1, 3, rest_count).transpose(0, 2, 1)
            sh = np.concatenate([dc, rest], axis=1)
        else:
            sh = dc
        ((rgb, _),) = render_views(client, data.gaussian_arrays(), np.ascontiguousarray(sh, dtype=np.float32), [cameras[source_index]])
    finally:
        client.close()
    write_png(folder / "source.png", rgb)
    source = cameras[source_index].name
    (folder / "source_labels.png").write_bytes((folder / "gt" / f"{source}.png").read_bytes())
    if extra_sources:  # more annotated views: source_<camera>.png and source_labels_<camera>.png
        client = BackendClient(sys.executable, device="cpu")
        try:
            views = [cameras[i] for i in extra_sources]
            for cam, (rgb, _) in zip(views, render_views(client, data.gaussian_arrays(), np.ascontiguousarray(sh, dtype=np.float32), views), strict=True):
                write_png(folder / f"source_{cam.name}.png", rgb)
                (folder / f"source_labels_{cam.name}.png").write_bytes((folder / "gt" / f"{cam.name}.png").read_bytes())
        finally:
            client.close()
    return {"ply": folder / "scene.ply", "cameras": folder / "cameras.json", "gt": folder / "gt",
            "source_image": folder / "source.png", "source_labels": folder / "source_labels.png", "source_camera": source}  # fmt: skip
