"""Test and demo scenes from real splats: the bundled fruit_drops with its hand labels, and
the donut propped against a houseplant (tests/data/donut_plant); their cameras, and masks
rendered from known per-Gaussian membership (occlusion-aware, thresholded at 0.5), exact
or with SAM-like edges. Also the small scenes, views, masks and requests the rasterizer,
backend and client tests share."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from masksplat_blender.backend.rasterizer import Gaussians
from masksplat_blender.client import BackendClient, render_views
from masksplat_blender.core.cameras import Camera, look_at
from masksplat_blender.core.masks import label_sh, morph
from masksplat_blender.core.orbit import orbit_cameras
from masksplat_blender.core.request import make_request_dir, write_request
from masksplat_blender.core.splat_io import SplatData, read_splats
from masksplat_blender.core.transform import apply_transform_to_vertices
from masksplat_blender.core.votes import centre_votes, vote_weights

SAMPLE_DIR = Path(__file__).parent / "data" / "fruit_drops"
SAMPLE = SAMPLE_DIR / "fruit_drops_minimal.ply"


def fruit_labels() -> np.ndarray:
    data = json.loads((SAMPLE_DIR / "fruit_drops_minimal.json").read_text())
    return np.array(
        data["dataset"]["samples"][0]["labels"]["ground-truth"]["attributes"]["point_annotations"]
    ).astype(np.int32)


def fruit_cameras(n: int, size: int = 96, name_prefix: str = "view", elevation=(40.0, 75.0)):
    """Cameras in front of the printed card (it is flat: its normal is +z), looking at it."""
    data = read_splats(SAMPLE)
    lo, hi = np.percentile(data.means(), [2, 98], axis=0)
    return orbit_cameras((lo + hi) / 2, 1.2 * float(np.linalg.norm(hi - lo)), n, size, size, fov_deg=45,
                         up=(0, 0, 1), elevation_deg=elevation, name_prefix=name_prefix)  # fmt: skip


def sample_cameras() -> list[Camera]:
    """Five cameras of one 640x480 size with varied poses, focal lengths and principal points."""
    rng = np.random.default_rng(0)
    cams = []
    for i in range(5):
        eye = rng.normal(size=3) * 3
        w2c = look_at(eye, rng.normal(size=3) * 0.1)
        cams.append(
            Camera(f"img_{i:02d}", f"img_{i:02d}.jpg", w2c, 800.0 + i, 760.0 - i, 330.5 + i, 250.25, 640, 480)
        )
    return cams


# ---------------------------------------------------------------- rasterizer scenes


def splat_gaussians(path, subset=None, seed=0) -> Gaussians:
    """A splat file's Gaussians as the rasterizers take them (with SH); `subset`: that many, chosen by `seed`."""
    data = read_splats(path)
    g = Gaussians(**data.gaussian_arrays(), sh=data.sh())
    if subset:
        idx = np.sort(np.random.default_rng(seed).choice(g.count, subset, replace=False))
        g = Gaussians(g.means[idx], g.quats[idx], g.log_scales[idx], g.opacity_logits[idx], g.sh[idx])
    return g


def rasterizer_camera(cam: Camera) -> Camera:
    """`cam` with the float32 pose and intrinsics the rasterizers compute with, so a float64
    reference sees exactly the camera the rasterizer saw."""
    fx, fy, cx, cy = (float(v) for v in np.float32([cam.fx, cam.fy, cam.cx, cam.cy]))
    return Camera(
        cam.name,
        cam.image_name,
        cam.world_to_camera.astype(np.float32),
        fx,
        fy,
        cx,
        cy,
        cam.width,
        cam.height,
    )


def views_around(
    g: Gaussians, size: int, n_views: int, up=(0, -1, 0), elevation=(-20, 30), distance=1.1
) -> list[Camera]:
    """`n_views` square views of `size` pixels on an orbit around the Gaussians (rasterizer precision)."""
    lo, hi = np.percentile(g.means, [2, 98], axis=0)
    radius = distance * np.linalg.norm(hi - lo)
    cams = orbit_cameras(
        (lo + hi) / 2, radius, n_views, size, size, fov_deg=45, up=up, elevation_deg=elevation
    )
    return [rasterizer_camera(c) for c in cams]


def scene_and_views(size=40, n_views=2, subset=None, seed=0) -> tuple[Gaussians, list[Camera]]:
    """The bundled fruit_drops splat (always present) and cameras around it."""
    g = splat_gaussians(SAMPLE, subset, seed)
    return g, views_around(g, size, n_views)


def mask_weights(size, seed, k=2, ignore=False) -> np.ndarray:
    """[size, size, k] vote weights: a disc and its complement (k = 2) or random soft labels;
    `ignore` blanks the top quarter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    m = ((xx - size * rng.uniform(0.3, 0.7)) ** 2 + (yy - size * 0.5) ** 2 < (size * 0.3) ** 2).astype(
        np.float32
    )
    if k == 2:
        w = np.stack([m, 1 - m], -1)
    else:
        w = rng.uniform(size=(size, size, k)).astype(np.float32)
    if ignore:
        w[: size // 4] = 0
    return w


# ---------------------------------------------------------------- backend requests


def load_scene():
    """The bundled sample's backend arrays, SH, centre and a camera distance that frames it."""
    data = read_splats(SAMPLE)
    arrays = data.gaussian_arrays()
    lo, hi = np.percentile(data.means(), [2, 98], axis=0)
    return arrays, data.sh(), (lo + hi) / 2, 1.1 * float(np.linalg.norm(hi - lo))


def cameras(scene, n, size=48) -> list[Camera]:
    _, _, centre, radius = scene
    return orbit_cameras(centre, radius, n, size, size, fov_deg=45, up=(0, -1, 0))


def disc_masks(cams, dtype=np.uint8) -> list[np.ndarray]:
    """A centred disc per camera: uint8 255 inside, or float32 0.75 inside."""
    out = []
    for cam in cams:
        yy, xx = np.mgrid[: cam.height, : cam.width]
        disc = ((xx - cam.width / 2) ** 2 + (yy - cam.height / 2) ** 2) < (cam.width / 4) ** 2
        out.append(disc.astype(np.uint8) * 255 if dtype == np.uint8 else disc.astype(np.float32) * 0.75)
    return out


def votes_request(scene, folder=None, n_views=2, size=48, dtype=np.uint8, ignores=()):
    """A votes request of `n_views` disc masks, written to `folder` (or a new request folder)."""
    arrays = scene[0]
    cams = cameras(scene, n_views, size)
    folder = Path(folder) if folder is not None else make_request_dir()
    write_request(folder, "votes", arrays, cams, disc_masks(cams, dtype), ignores)
    return folder, cams


def expected_votes(scene, cams, masks, ignores=None) -> np.ndarray:
    """The votes the backend must answer, from the CPU rasterizer in this process."""
    from masksplat_blender.backend.raster_cpu import CpuRasterizer

    g = Gaussians(**scene[0])
    out = np.zeros((g.count, 2))
    raster = CpuRasterizer()
    for index, (cam, mask) in enumerate(zip(cams, masks, strict=True)):
        raster.votes(
            g, rasterizer_camera(cam), vote_weights(mask, None if ignores is None else ignores[index]), out
        )
    return out


def label_masks(cameras, labels_on: np.ndarray, client: BackendClient | None = None) -> list[np.ndarray]:
    """uint8 masks (255 = object) of the sample's Gaussians where `labels_on`, rendered occlusion-aware."""
    return object_masks(read_splats(SAMPLE), labels_on, cameras, client)


def object_masks(
    data: SplatData, on: np.ndarray, cameras, client: BackendClient | None = None
) -> list[np.ndarray]:
    """uint8 masks (255 = object) of the Gaussians where `on`, rendered occlusion-aware: a
    pixel is object where the object's Gaussians make at least half of it."""
    own = client is None
    client = client or BackendClient(sys.executable, device="cpu")
    try:
        renders = render_views(client, data.gaussian_arrays(), label_sh(np.asarray(on, np.float32)), cameras)
    finally:
        if own:
            client.close()
    return [np.where(rgb[:, :, 0] > 127, 255, 0).astype(np.uint8) for rgb, _ in renders]


def fruit_label_maps(
    cameras, labels: np.ndarray | None = None, client: BackendClient | None = None
) -> list[np.ndarray]:
    """int32 label maps (ids 0..8) of the hand labels (or `labels`), rendered occlusion-aware."""
    from masksplat_blender.core.labels import render_label_maps

    data = read_splats(SAMPLE)
    labels = fruit_labels() if labels is None else labels
    own = client is None
    client = client or BackendClient(sys.executable, device="cpu")
    try:
        return render_label_maps(
            lambda sh: render_views(client, data.gaussian_arrays(), sh, cameras),
            labels,
            int(labels.max()) + 1,
        )
    finally:
        if own:
            client.close()


def write_affordance_scene(
    folder: Path, cameras, recolour: bool = True, source_index: int = 0, extra_sources=()
) -> dict:
    """The sample for label transfer: scene.ply (recoloured by its 9 hand labels without
    view-dependent colour, so colour features carry the labels; or as captured), cameras.json,
    gt/<camera>.png label maps rendered from the hand labels, and the source view's render
    (source.png) with its labels (source_labels.png). Returns the paths."""
    from camera_writers import save_cameras_json

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
            rest = (
                np.stack([vertices[f"f_rest_{i}"] for i in range(3 * rest_count)], axis=1)
                .reshape(-1, 3, rest_count)
                .transpose(0, 2, 1)
            )
            sh = np.concatenate([dc, rest], axis=1)
        else:
            sh = dc
        ((rgb, _),) = render_views(
            client,
            data.gaussian_arrays(),
            np.ascontiguousarray(sh, dtype=np.float32),
            [cameras[source_index]],
        )
    finally:
        client.close()
    write_png(folder / "source.png", rgb)
    source = cameras[source_index].name
    (folder / "source_labels.png").write_bytes((folder / "gt" / f"{source}.png").read_bytes())
    if extra_sources:  # more annotated views: source_<camera>.png and source_labels_<camera>.png
        client = BackendClient(sys.executable, device="cpu")
        try:
            views = [cameras[i] for i in extra_sources]
            for cam, (rgb, _) in zip(
                views,
                render_views(
                    client, data.gaussian_arrays(), np.ascontiguousarray(sh, dtype=np.float32), views
                ),
                strict=True,
            ):
                write_png(folder / f"source_{cam.name}.png", rgb)
                (folder / f"source_labels_{cam.name}.png").write_bytes(
                    (folder / "gt" / f"{cam.name}.png").read_bytes()
                )
        finally:
            client.close()
    return {"ply": folder / "scene.ply", "cameras": folder / "cameras.json", "gt": folder / "gt",
            "source_image": folder / "source.png", "source_labels": folder / "source_labels.png", "source_camera": source}  # fmt: skip


DONUT_PLANT_DIR = Path(__file__).parent / "data" / "donut_plant"
DONUT_PLANT_LOOK_AT = (0.0, 0.0, 0.47)  # the middle of the plant: where the demo's cameras look
# (azimuth, elevation) in degrees; azimuth 0 looks at the scene from -y (the donut's side).
DONUT_PLANT_TRAIN = ((-50, 12), (-30, 32), (-10, 8), (10, 28), (30, 10), (50, 30))
DONUT_PLANT_HELD_OUT = ((-40, 24), (-20, 4), (0, 40), (25, 18))


def _placement(
    scale: float = 1.0, tilt_x_deg: float = 0.0, move=(0.0, 0.0, 0.0), centre=(0.0, 0.0, 0.0)
) -> np.ndarray:
    """4x4: move `centre` to the origin, scale, tilt about x, then move to `move`."""
    a = np.radians(tilt_x_deg)
    tilt = np.eye(4)
    tilt[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    before, after = np.eye(4), np.eye(4)
    before[:3, 3] = -np.asarray(centre, float)
    after[:3, 3] = move
    return after @ tilt @ np.diag([scale, scale, scale, 1.0]) @ before


def donut_plant_scene() -> tuple[SplatData, np.ndarray]:
    """The demo scene and the donut's membership (bool per Gaussian, its ground truth).

    The bundled houseplant stands upright (z up, 1 unit tall, its pot on the ground at the
    origin); the bundled donut, 0.34 wide, leans against the front of the pot (towards -y,
    where the cameras are), so from most views it hides part of the pot and the pot shows
    through its hole. Both splats stay as captured apart from this placement.
    """
    donut, plant = (read_splats(DONUT_PLANT_DIR / f"{name}.ply") for name in ("donut", "plant"))
    # The plant's up axis is -y: stand it up, then scale it to 1 unit with its pot's base at the origin.
    upright = apply_transform_to_vertices(plant.vertices, 0, _placement(tilt_x_deg=-90.0))
    xyz = np.stack([upright[c] for c in "xyz"], axis=1)
    lo, hi = np.percentile(xyz, [0.5, 99.5], axis=0)
    base = ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2])
    plant_vertices = apply_transform_to_vertices(upright, 0, _placement(1.0 / (hi[2] - lo[2]), centre=base))
    lo, hi = np.percentile(donut.means(), [0.5, 99.5], axis=0)
    width = 0.34
    donut_vertices = apply_transform_to_vertices(
        donut.vertices, 0, _placement(width / (hi[0] - lo[0]), 35.0, (0.0, -0.26, width / 2), (lo + hi) / 2)
    )
    vertices = np.concatenate([donut_vertices, plant_vertices.astype(donut.vertices.dtype)])
    membership = np.arange(len(vertices)) < len(donut_vertices)
    return SplatData(vertices, 0, comments=[*donut.comments, *plant.comments]), membership


def donut_plant_cameras(
    views, name_prefix: str, width: int = 192, height: int = 224, distance: float = 1.3
) -> list[Camera]:
    """Cameras at (azimuth, elevation) degrees on a sphere around the plant's middle, looking at it."""
    focal = 0.5 * width / np.tan(np.radians(45.0) / 2)  # 45 degrees across
    cameras = []
    for i, (azimuth, elevation) in enumerate(views):
        a, e = np.radians(azimuth), np.radians(elevation)
        eye = np.asarray(DONUT_PLANT_LOOK_AT) + distance * np.array(
            [np.sin(a) * np.cos(e), -np.cos(a) * np.cos(e), np.sin(e)]
        )
        name = f"{name_prefix}_{i:03d}"
        cameras.append(
            Camera(
                name,
                f"{name}.png",
                look_at(eye, DONUT_PLANT_LOOK_AT),
                focal,
                focal,
                width / 2,
                height / 2,
                width,
                height,
            )
        )
    return cameras


def sam_like(mask: np.ndarray, pixels: int, seed: int) -> np.ndarray:
    """`mask` (bool) with its edge moved by up to `pixels`, outwards along some stretches and
    inwards along others, varying smoothly (SAM's masks bleed onto the background here and
    cut into the object there). The same seed gives the same mask."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    cell = 12
    coarse = np.random.default_rng(seed).uniform(-1.0, 1.0, (h // cell + 2, w // cell + 2))
    y, x = np.arange(h) / cell, np.arange(w) / cell
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    field = ((1 - fy) * (1 - fx) * coarse[np.ix_(y0, x0)] + (1 - fy) * fx * coarse[np.ix_(y0, x0 + 1)]
             + fy * (1 - fx) * coarse[np.ix_(y0 + 1, x0)] + fy * fx * coarse[np.ix_(y0 + 1, x0 + 1)])  # fmt: skip
    offset = np.clip(np.rint(field * pixels), -pixels, pixels).astype(int)
    out = mask.copy()
    for step in range(-pixels, pixels + 1):
        if step:
            out[offset == step] = morph(mask, abs(step), step > 0)[offset == step]
    return out


def centre_in_mask(means: np.ndarray, cameras, masks) -> np.ndarray:
    """The naive selection MaskSplat is measured against (centre-based brush selection): a
    Gaussian is taken when its projected centre falls inside the mask in more views than
    outside it. It ignores occlusion, so what hides behind the object is taken too."""
    inside = np.zeros(len(means), np.float32)
    outside = np.zeros(len(means), np.float32)
    for cam, mask in zip(cameras, masks, strict=True):
        hit, miss = centre_votes(*cam.project(means), np.asarray(mask, np.float32))
        inside += hit
        outside += miss
    return inside > outside


def biker_copies(data_dir: Path, copies: int) -> SplatData:
    """The biker capture (152,746 real Gaussians) placed `copies` times side by side along x:
    a large real scene for benchmarks (7 copies: 1.07M)."""
    base = read_splats(data_dir / "playcanvas_biker" / "biker_inria_sh0.ply")
    width = float(np.ptp(base.means()[:, 0])) * 1.2
    parts = []
    for i in range(copies):
        part = base.vertices.copy()
        part["x"] += i * width
        parts.append(part)
    return SplatData(np.concatenate(parts), base.sh_degree, "", base.byte_order, list(base.comments))
