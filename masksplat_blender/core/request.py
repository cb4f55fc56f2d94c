"""The request format between Blender and the backend: a private folder of `.npy` files
plus `header.json`. No pickle anywhere: every array is saved and loaded with
`allow_pickle=False`, and the backend checks every shape and dtype before using it.

Masks are one file per view so the backend streams views one by one: its memory does
not grow with the number of views.

Layout of a request folder (version 1):

    header.json   {"version": 1, "kind": "votes" | "render" | "ping",
                   "num_gaussians": N,
                   "mode": "two_class" | "labels"          (votes only; default two_class),
                   "sh_degree": d                           (render only; 0..3),
                   "background": [r, g, b]                  (render only; default black),
                   "views": [{"name", "width", "height", "fx", "fy", "cx", "cy",
                              "viewmat": 4x4 nested list (world-to-camera, OpenCV axes),
                              "mask": "mask_00000.npy", "ignore": "ignore_00000.npy"}, ...]}
    means.npy [N, 3] f32, quats.npy [N, 4] f32 (wxyz), log_scales.npy [N, 3] f32,
    opacity_logits.npy [N] f32, sh.npy [N, (d+1)^2, 3] f32 (render only)
    mask_<i>.npy  [H, W] (two_class) or [H, W, K] (labels), uint8 0..255 or float32 0..1
    ignore_<i>.npy [H, W] bool or uint8 (non-zero = casts no vote), optional

Vote weights per pixel: two_class -> (m * keep, (1 - m) * keep); labels -> m_k * keep,
keep = 1 - ignore. Results go into the same folder: votes.npy [N, K] float32 (K = 2:
fg, bg), render_<i>.npy [H, W, 3] uint8 and alpha_<i>.npy [H, W] uint8.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VERSION = 1
KINDS = ("votes", "render", "ping")
MODES = ("two_class", "labels")
HEADER_KEYS = {"version", "kind", "mode", "num_gaussians", "views", "background", "sh_degree"}
VIEW_KEYS = {"name", "width", "height", "fx", "fy", "cx", "cy", "viewmat", "mask", "ignore"}
GAUSSIAN_ARRAYS = {"means": (3,), "quats": (4,), "log_scales": (3,), "opacity_logits": ()}


class RequestError(ValueError):
    """A request the backend refuses; the message says which part is wrong."""


@dataclass
class ViewSpec:
    name: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    viewmat: np.ndarray  # [4, 4] float32 world-to-camera, OpenCV axes
    mask: str | None = None
    ignore: str | None = None

    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float32)


@dataclass
class Request:
    folder: Path
    kind: str
    num_gaussians: int
    views: list[ViewSpec]
    mode: str = "two_class"
    channels: int = 2
    sh_degree: int = 0
    background: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def array(self, name: str) -> np.ndarray:
        return np.load(self.folder / f"{name}.npy", allow_pickle=False, mmap_mode="r")

    def raw_mask(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """One view's mask as stored ([H, W] or [H, W, K], uint8 or float32) and where it votes (or None)."""
        view = self.views[index]
        mask = np.load(self.folder / view.mask, allow_pickle=False)
        keep = None
        if view.ignore:
            keep = ~np.load(self.folder / view.ignore, allow_pickle=False).astype(bool)
        return mask, keep

    def weights(self, index: int) -> np.ndarray:
        """[H, W, K] float32 vote weights of one view (fg/bg for two classes), ignore applied."""
        mask, keep = self.raw_mask(index)
        mask = mask.astype(np.float32) / 255.0 if mask.dtype == np.uint8 else mask.astype(np.float32, copy=False)
        if mask.ndim == 2:
            mask = mask[:, :, None]
        if self.mode == "two_class":
            weights = np.concatenate([mask, 1.0 - mask], axis=2)
        else:
            weights = mask
        if keep is not None:
            weights = weights * keep[:, :, None]
        return np.ascontiguousarray(weights, dtype=np.float32)


def make_request_dir() -> Path:
    """A private (0700) temporary folder for one request; the caller removes it."""
    folder = Path(tempfile.mkdtemp(prefix="masksplat-request-"))
    folder.chmod(0o700)  # mkdtemp already does this; be explicit about the contract
    return folder


def write_request(
    folder, kind: str, gaussians: dict, cameras=(), masks=(), ignores=(), mode: str = "two_class",
    sh: np.ndarray | None = None, background=(0.0, 0.0, 0.0),
) -> Path:  # fmt: skip
    """Write a request. `cameras` are core.cameras.Camera; masks/ignores one per camera (or None)."""
    folder = Path(folder)
    for name in GAUSSIAN_ARRAYS:
        np.save(folder / f"{name}.npy", np.ascontiguousarray(gaussians[name], dtype=np.float32), allow_pickle=False)
    count = int(np.asarray(gaussians["means"]).shape[0])
    header = {"version": VERSION, "kind": kind, "num_gaussians": count, "views": []}
    if kind == "votes":
        header["mode"] = mode
    if sh is not None:
        np.save(folder / "sh.npy", np.ascontiguousarray(sh, dtype=np.float32), allow_pickle=False)
        header["sh_degree"] = int(round(math.sqrt(sh.shape[1]))) - 1
    if kind == "render":
        header["background"] = [float(v) for v in background]
    masks, ignores = list(masks), list(ignores)
    for index, cam in enumerate(cameras):
        view = {
            "name": cam.name, "width": int(cam.width), "height": int(cam.height),
            "fx": float(cam.fx), "fy": float(cam.fy), "cx": float(cam.cx), "cy": float(cam.cy),
            "viewmat": np.asarray(cam.world_to_camera, dtype=np.float64).tolist(),
        }  # fmt: skip
        if index < len(masks) and masks[index] is not None:
            view["mask"] = f"mask_{index:05d}.npy"
            np.save(folder / view["mask"], np.ascontiguousarray(masks[index]), allow_pickle=False)
        if index < len(ignores) and ignores[index] is not None:
            view["ignore"] = f"ignore_{index:05d}.npy"
            np.save(folder / view["ignore"], np.ascontiguousarray(ignores[index], dtype=bool), allow_pickle=False)
        header["views"].append(view)
    (folder / "header.json").write_text(json.dumps(header))
    return folder


def _check_array(folder: Path, name: str, shape: tuple, dtypes: tuple) -> np.ndarray:
    path = folder / name
    if not path.is_file():
        raise RequestError(f"array {name} is missing")
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as err:
        raise RequestError(f"array {name} is not a plain .npy array ({err})") from None
    if array.dtype not in dtypes:
        raise RequestError(f"array {name} has dtype {array.dtype}, expected {' or '.join(str(np.dtype(d)) for d in dtypes)}")
    if len(array.shape) != len(shape) or any(s is not None and a != s for a, s in zip(array.shape, shape, strict=True)):
        pretty = tuple("*" if s is None else s for s in shape)
        raise RequestError(f"array {name} has shape {array.shape}, expected {pretty}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise RequestError(f"array {name} has {int((~np.isfinite(array)).sum())} NaN or Inf values")
    return array


def _check_mask(folder: Path, name: str) -> np.ndarray:
    path = folder / name
    if not path.is_file():
        raise RequestError(f"mask {name} is missing")
    try:
        ndim = np.load(path, allow_pickle=False, mmap_mode="r").ndim
    except ValueError as err:
        raise RequestError(f"mask {name} is not a plain .npy array ({err})") from None
    if ndim not in (2, 3):
        raise RequestError(f"mask {name} must be [H, W] or [H, W, K], not {ndim}-dimensional")
    return _check_array(folder, name, (None,) * ndim, (np.uint8, np.float32))


def read_request(folder) -> Request:
    """Read and validate a request folder; raises RequestError naming what is wrong."""
    folder = Path(folder)
    try:
        header = json.loads((folder / "header.json").read_text())
    except FileNotFoundError:
        raise RequestError(f"no header.json in {folder}") from None
    except (OSError, json.JSONDecodeError) as err:
        raise RequestError(f"header.json is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise RequestError("header.json must hold an object")
    unknown = set(header) - HEADER_KEYS
    if unknown:
        raise RequestError(f"unknown header keys: {', '.join(sorted(unknown))}")
    if header.get("version") != VERSION:
        raise RequestError(f"request version {header.get('version')!r}; this backend reads version {VERSION}")
    kind = header.get("kind")
    if kind not in KINDS:
        raise RequestError(f"unknown request kind {kind!r} (one of {', '.join(KINDS)})")
    if kind == "ping":
        return Request(folder, kind, 0, [])
    n = header.get("num_gaussians")
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise RequestError("num_gaussians must be a positive integer")
    for name, tail in GAUSSIAN_ARRAYS.items():
        _check_array(folder, f"{name}.npy", (n, *tail), (np.float32,))
    mode = header.get("mode", "two_class")
    if mode not in MODES:
        raise RequestError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    sh_degree = header.get("sh_degree", 0)
    if not isinstance(sh_degree, int) or isinstance(sh_degree, bool) or not 0 <= sh_degree <= 3:
        raise RequestError(f"sh_degree must be an integer from 0 to 3, not {sh_degree!r}")
    if kind == "render":
        if not (folder / "sh.npy").is_file():
            raise RequestError("a render request needs sh.npy")
        _check_array(folder, "sh.npy", (n, (sh_degree + 1) ** 2, 3), (np.float32,))
    views_raw = header.get("views")
    if not isinstance(views_raw, list) or not views_raw:
        raise RequestError("views must be a non-empty list")
    views, channels = [], None
    for index, raw in enumerate(views_raw):
        where = f"view {index}"
        if not isinstance(raw, dict):
            raise RequestError(f"{where} must be an object")
        unknown = set(raw) - VIEW_KEYS
        if unknown:
            raise RequestError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        try:
            view = ViewSpec(
                name=str(raw["name"]), width=int(raw["width"]), height=int(raw["height"]),
                fx=float(raw["fx"]), fy=float(raw["fy"]), cx=float(raw["cx"]), cy=float(raw["cy"]),
                viewmat=np.array(raw["viewmat"], dtype=np.float64).reshape(4, 4).astype(np.float32),
                mask=raw.get("mask"), ignore=raw.get("ignore"),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as err:
            raise RequestError(f"{where} is malformed ({type(err).__name__}: {err})") from None
        where = f"view {index} ('{view.name}')"
        if view.width <= 0 or view.height <= 0 or view.width > 16384 or view.height > 16384:
            raise RequestError(f"{where}: image size {view.width}x{view.height} is out of range")
        values = [view.fx, view.fy, view.cx, view.cy]
        if not all(math.isfinite(v) for v in values) or view.fx <= 0 or view.fy <= 0 or not np.isfinite(view.viewmat).all():
            raise RequestError(f"{where}: camera has non-finite or non-positive values")
        if kind == "votes":
            if not view.mask:
                raise RequestError(f"{where}: a votes request needs a mask for every view")
            for name in (view.mask, view.ignore):
                if name and (Path(name).name != name or not name.endswith(".npy")):
                    raise RequestError(f"{where}: file name {name!r} must be a plain .npy name in the request folder")
            mask = _check_mask(folder, view.mask)
            if mask.shape[:2] != (view.height, view.width):
                raise RequestError(
                    f"{where}: mask is {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]}, "
                    f"the camera is {view.width}x{view.height}"
                )
            k = 1 if mask.ndim == 2 else mask.shape[2]
            if mode == "two_class" and k != 1:
                raise RequestError(f"{where}: a two-class mask has one channel, not {k}")
            if channels is None:
                channels = k
            elif channels != k:
                raise RequestError(f"{where}: {k} label channels, but earlier views have {channels}")
            if mask.dtype == np.float32 and (mask.min() < 0 or mask.max() > 1):
                raise RequestError(f"{where}: float mask values must lie in [0, 1]")
            if view.ignore:
                _check_array(folder, view.ignore, (view.height, view.width), (np.bool_, np.uint8))
        views.append(view)
    background = header.get("background", [0.0, 0.0, 0.0])
    if not (
        isinstance(background, list) and len(background) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in background)
    ):  # fmt: skip
        raise RequestError("background must be three finite numbers")
    channels = (2 if mode == "two_class" else channels) if kind == "votes" else 0
    return Request(folder, kind, n, views, mode, channels or 0, sh_degree, [float(v) for v in background])


def validate_request(folder) -> Request:
    """Check a request folder (every array's presence, shape, dtype, finiteness; masks
    against their cameras; header keys and version) and return it parsed.
    Raises RequestError with a message naming the problem."""
    return read_request(folder)
