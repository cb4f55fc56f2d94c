"""The request format between Blender and the backend: a private folder of `.npy` files
plus `header.json`. No pickle anywhere: every array is saved and loaded with
`allow_pickle=False`, and the backend checks every shape and dtype before using it.

Masks are one file per view so the backend streams views one by one: its memory does
not grow with the number of views.

Layout of a request folder (version 1):

    header.json   {"version": 1, "kind": "votes" | "render" | "transfer" | "ping",
                   "num_gaussians": N,
                   "mode": "two_class" | "labels"          (votes only; default two_class),
                   "sh_degree": d                           (render, transfer; 0..3),
                   "background": [r, g, b]                  (render, transfer; default black),
                   "model": "rgb-patches" | folder | Hugging Face id   (transfer only),
                   "cache_dir": folder | null               (transfer; Hugging Face cache),
                   "k": 5, "feature_size": 448              (transfer; k >= 1; 14..1792, multiple of 14),
                   "num_labels": L                          (transfer; 2..33),
                   "sources": [{"image": "source_00000.npy",
                                "labels": "source_labels_00000.npy"}, ...]   (transfer),
                   "views": [{"name", "width", "height", "fx", "fy", "cx", "cy",
                              "viewmat": 4x4 nested list (world-to-camera, OpenCV axes),
                              "mask": "mask_00000.npy", "ignore": "ignore_00000.npy"}, ...]}
    means.npy [N, 3] f32, quats.npy [N, 4] f32 (wxyz), log_scales.npy [N, 3] f32,
    opacity_logits.npy [N] f32, sh.npy [N, (d+1)^2, 3] f32 (render only)
    mask_<i>.npy  [H, W] (two_class) or [H, W, K] (labels), uint8 0..255 or float32 0..1
    ignore_<i>.npy [H, W] bool or uint8 (non-zero = casts no vote), optional
    source_<j>.npy [H, W, 3] uint8, source_labels_<j>.npy [H, W] int32 or uint8 (0..L-1) (transfer)

Vote weights per pixel: two_class -> (m * keep, (1 - m) * keep); labels -> m_k * keep,
keep = 1 - ignore. Results go into the same folder: votes.npy [N, K] float32 (K = 2:
fg, bg), render_<i>.npy [H, W, 3] uint8 and alpha_<i>.npy [H, W] uint8; a transfer request
also writes labels_<i>.npy [H, W] int32 (the source labels carried to each rendered view by
DINOv2 patch features; 0 where no splat covers the pixel).
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VERSION = 1
KINDS = ("votes", "render", "transfer", "ping")
MODES = ("two_class", "labels")
HEADER_KEYS = {"version", "kind", "mode", "num_gaussians", "views", "background", "sh_degree",
               "model", "cache_dir", "k", "feature_size", "num_labels", "sources"}  # fmt: skip
SOURCE_KEYS = {"image", "labels"}
MAX_LABELS = 33  # background + 32 parts
MAX_FEATURE_SIZE = 1792  # 128 x 128 patches; the paper uses 896
MAX_SOURCES = 64
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
class TransferSpec:
    """Parameters of a transfer request (label transfer by DINOv2 patch features)."""

    model: str
    num_labels: int
    sources: list[tuple[str, str]]  # (image .npy, labels .npy) per annotated source
    cache_dir: str | None = None
    k: int = 5
    feature_size: int = 448


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
    transfer: TransferSpec | None = None

    def array(self, name: str) -> np.ndarray:
        return np.load(self.folder / f"{name}.npy", allow_pickle=False, mmap_mode="r")

    def source(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """One annotated source of a transfer request: (image [H, W, 3] uint8, labels [H, W] int32)."""
        image_name, labels_name = self.transfer.sources[index]
        image = np.load(self.folder / image_name, allow_pickle=False)
        labels = np.load(self.folder / labels_name, allow_pickle=False).astype(np.int32)
        return image, labels

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
    sh: np.ndarray | None = None, background=(0.0, 0.0, 0.0), *, sources=(), model: str | None = None,
    num_labels: int | None = None, cache_dir: str | None = None, k: int = 5, feature_size: int = 448,
) -> Path:  # fmt: skip
    """Write a request. `cameras` are core.cameras.Camera; masks/ignores one per camera (or None).

    A transfer request also takes `sources`, (image [H, W, 3] uint8, labels [H, W] int) pairs,
    the feature `model`, `num_labels` (default: max label + 1, at least 2), `cache_dir`, `k`
    and `feature_size`.
    """
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
    if kind in ("render", "transfer"):
        header["background"] = [float(v) for v in background]
    if kind == "transfer":
        header.update(model=model, cache_dir=None if cache_dir is None else str(cache_dir), k=int(k),
                      feature_size=int(feature_size), sources=[])  # fmt: skip
        top = 0
        for index, (image, labels) in enumerate(sources):
            entry = {"image": f"source_{index:05d}.npy", "labels": f"source_labels_{index:05d}.npy"}
            labels = np.asarray(labels)
            top = max(top, int(labels.max()) if labels.size else 0)
            np.save(folder / entry["image"], np.ascontiguousarray(image, dtype=np.uint8), allow_pickle=False)
            np.save(folder / entry["labels"], np.ascontiguousarray(labels, dtype=np.int32), allow_pickle=False)
            header["sources"].append(entry)
        header["num_labels"] = int(num_labels) if num_labels is not None else max(2, top + 1)
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
    if kind in ("render", "transfer"):
        if not (folder / "sh.npy").is_file():
            raise RequestError(f"a {kind} request needs sh.npy")
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
    transfer = _read_transfer(folder, header) if kind == "transfer" else None
    return Request(folder, kind, n, views, mode, channels or 0, sh_degree, [float(v) for v in background], transfer)


def _integer(header: dict, key: str, default, low: int, high: int | None = None) -> int:
    value = header.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise RequestError(f"{key} must be an integer {span}, not {value!r}")
    return value


def _plain_name(name, where: str) -> str:
    if not isinstance(name, str) or not name or Path(name).name != name or not name.endswith(".npy"):
        raise RequestError(f"{where}: file name {name!r} must be a plain .npy name in the request folder")
    return name


def _read_transfer(folder: Path, header: dict) -> TransferSpec:
    """The transfer-only header keys and the source arrays, checked."""
    model = header.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > 4096:
        raise RequestError("a transfer request needs model: a folder, a Hugging Face id or 'rgb-patches'")
    cache_dir = header.get("cache_dir")
    if cache_dir is not None and (not isinstance(cache_dir, str) or not cache_dir or len(cache_dir) > 4096):
        raise RequestError("cache_dir must be a folder name or null")
    k = _integer(header, "k", 5, 1)
    feature_size = _integer(header, "feature_size", 448, 14, MAX_FEATURE_SIZE)
    if feature_size % 14:
        raise RequestError(f"feature_size must be a multiple of 14 (the patch size), not {feature_size}")
    if "num_labels" not in header:
        raise RequestError("a transfer request needs num_labels")
    num_labels = _integer(header, "num_labels", None, 2, MAX_LABELS)
    raw_sources = header.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise RequestError("a transfer request needs sources: a non-empty list of {image, labels}")
    if len(raw_sources) > MAX_SOURCES:
        raise RequestError(f"{len(raw_sources)} sources; at most {MAX_SOURCES}")
    sources = []
    for index, raw in enumerate(raw_sources):
        where = f"source {index}"
        if not isinstance(raw, dict) or set(raw) != SOURCE_KEYS:
            raise RequestError(f"{where} must be an object with exactly the keys image and labels")
        image_name, labels_name = _plain_name(raw["image"], where), _plain_name(raw["labels"], where)
        image = _check_array(folder, image_name, (None, None, 3), (np.uint8,))
        h, w = image.shape[:2]
        if not (0 < h <= 16384 and 0 < w <= 16384):
            raise RequestError(f"{where}: image size {w}x{h} is out of range")
        labels = _check_array(folder, labels_name, (None, None), (np.int32, np.uint8))
        if labels.shape != (h, w):
            raise RequestError(f"{where}: labels are {labels.shape[1]}x{labels.shape[0]}, the image is {w}x{h}")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_labels:
            raise RequestError(f"{where}: label values {low}..{high} lie outside 0..{num_labels - 1}")
        sources.append((image_name, labels_name))
    return TransferSpec(model.strip(), num_labels, sources, cache_dir, k, feature_size)


def validate_request(folder) -> Request:
    """Check a request folder (every array's presence, shape, dtype, finiteness; masks
    against their cameras; header keys and version) and return it parsed.
    Raises RequestError with a message naming the problem."""
    return read_request(folder)
