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
    opacity_logits.npy [N] f32, sh.npy [N, (d+1)^2, 3] f32 (render, transfer)
    mask_<i>.npy  [H, W] (two_class) or [H, W, K] (labels), uint8 0..255 or float32 0..1
    ignore_<i>.npy [H, W] bool or uint8 (non-zero = casts no vote), optional
    source_<j>.npy [H, W, 3] uint8, source_labels_<j>.npy [H, W] int32 or uint8 (0..L-1) (transfer)

Vote weights per pixel: core.votes.vote_weights (two_class -> (m * keep, (1 - m) * keep);
labels -> m_k * keep; keep = 1 - ignore). Results go into the same folder: votes.npy [N, K]
float32 (K = 2: fg, bg), render_<i>.npy [H, W, 3] uint8 and alpha_<i>.npy [H, W] uint8; a
transfer request also writes labels_<i>.npy [H, W] int32 (the source labels carried to each
rendered view by DINOv2 patch features; 0 where no splat covers the pixel).

Every name on the wire is spelled here, once: the file names (`numbered_name` for the
per-view and per-source files), the header keys, the kinds and modes. The backend and the
client read and write the folder through these names and `save_array` / `load_array`.
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cameras import MAX_IMAGE_SIZE, Camera
from .votes import MODES, TWO_CLASS

VERSION = 1
KINDS = ("votes", "render", "transfer", "ping")
HEADER_KEYS = {"version", "kind", "mode", "num_gaussians", "views", "background", "sh_degree",
               "model", "cache_dir", "k", "feature_size", "num_labels", "sources"}  # fmt: skip
SOURCE_KEYS = {"image", "labels"}
VIEW_KEYS = {"name", "width", "height", "fx", "fy", "cx", "cy", "viewmat", "mask", "ignore"}
GAUSSIAN_ARRAYS = {"means": (3,), "quats": (4,), "log_scales": (3,), "opacity_logits": ()}
MAX_LABELS = 33  # background + 32 parts
MAX_FEATURE_SIZE = 1792  # 128 x 128 patches; the paper uses 896
MAX_SOURCES = 64

# File names in a request folder. Per-view and per-source files are numbered_name(prefix, i).
HEADER_FILE = "header.json"
SH_FILE = "sh.npy"
VOTES_FILE = "votes.npy"
MASK, IGNORE, SOURCE_IMAGE, SOURCE_LABELS = "mask", "ignore", "source", "source_labels"  # request
RENDER, ALPHA, LABELS = "render", "alpha", "labels"  # results


def numbered_name(prefix: str, index: int) -> str:
    """The file of view (or source) `index`: `render_00012.npy` for numbered_name(RENDER, 12)."""
    return f"{prefix}_{index:05d}.npy"


def save_array(folder, name: str, array, dtype=None) -> str:
    """Save one array of a request or its result (C order, never pickled); returns `name`."""
    np.save(Path(folder) / name, np.ascontiguousarray(array, dtype=dtype), allow_pickle=False)
    return name


def load_array(folder, name: str, mmap_mode: str | None = None) -> np.ndarray:
    """Load one array of a request or its result (never unpickles)."""
    return np.load(Path(folder) / name, allow_pickle=False, mmap_mode=mmap_mode)


def load_numbered(folder, prefix: str, count: int) -> list[np.ndarray]:
    """The per-view results `prefix`_00000.npy .. of `count` views, in view order."""
    return [load_array(folder, numbered_name(prefix, index)) for index in range(count)]


def is_hugging_face_id(model: str) -> bool:
    """Whether `model` reads as a Hugging Face model id (owner/name of letters, digits, - _ .),
    as opposed to a folder: the transfer header's `model` and the Download Model button."""
    parts = model.split("/")
    return len(parts) == 2 and all(p and p not in (".", "..") and all(c.isalnum() or c in "-_." for c in p) for p in parts)


class RequestError(ValueError):
    """A request the backend refuses; the message says which part is wrong."""


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
    """A request as read and checked. `views` are the cameras as core.cameras.Camera (the one
    camera record; `image_name` is the view's name, since no file name travels, and the
    viewmat has the float32 precision it was sent with); `mask_files` are per view the
    (mask, ignore) file names of a votes request, None where there is none."""

    folder: Path
    kind: str
    num_gaussians: int
    views: list[Camera]
    mode: str = TWO_CLASS
    channels: int = 2
    sh_degree: int = 0
    background: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    transfer: TransferSpec | None = None
    mask_files: list[tuple[str | None, str | None]] = field(default_factory=list)

    def array(self, name: str) -> np.ndarray:
        """A Gaussian array (a GAUSSIAN_ARRAYS name or "sh"), memory-mapped."""
        return load_array(self.folder, f"{name}.npy", mmap_mode="r")

    def source(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """One annotated source of a transfer request: (image [H, W, 3] uint8, labels [H, W] int32)."""
        image_name, labels_name = self.transfer.sources[index]
        return load_array(self.folder, image_name), load_array(self.folder, labels_name).astype(np.int32)

    def raw_mask(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """One view's mask and ignore region as stored (core.votes.vote_weights reads them)."""
        mask, ignore = self.mask_files[index]
        return load_array(self.folder, mask), load_array(self.folder, ignore) if ignore else None


def make_request_dir() -> Path:
    """A private (0700) temporary folder for one request; the caller removes it."""
    folder = Path(tempfile.mkdtemp(prefix="masksplat-request-"))
    folder.chmod(0o700)  # mkdtemp already does this; be explicit about the contract
    return folder


def write_request(
    folder, kind: str, gaussians: dict, cameras=(), masks=(), ignores=(), mode: str = TWO_CLASS,
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
        save_array(folder, f"{name}.npy", gaussians[name], np.float32)
    count = int(np.asarray(gaussians["means"]).shape[0])
    header = {"version": VERSION, "kind": kind, "num_gaussians": count, "views": []}
    if kind == "votes":
        header["mode"] = mode
    if sh is not None:
        save_array(folder, SH_FILE, sh, np.float32)
        header["sh_degree"] = int(round(math.sqrt(sh.shape[1]))) - 1
    if kind in ("render", "transfer"):
        header["background"] = [float(v) for v in background]
    if kind == "transfer":
        header.update(model=model, cache_dir=None if cache_dir is None else str(cache_dir), k=int(k),
                      feature_size=int(feature_size), sources=[])  # fmt: skip
        header["num_labels"] = _write_sources(folder, sources, header["sources"], num_labels)
    masks, ignores = list(masks), list(ignores)
    for index, cam in enumerate(cameras):
        view = {
            "name": cam.name, "width": int(cam.width), "height": int(cam.height),
            "fx": float(cam.fx), "fy": float(cam.fy), "cx": float(cam.cx), "cy": float(cam.cy),
            "viewmat": np.asarray(cam.world_to_camera, dtype=np.float64).tolist(),
        }  # fmt: skip
        if index < len(masks) and masks[index] is not None:
            view["mask"] = save_array(folder, numbered_name(MASK, index), masks[index])
        if index < len(ignores) and ignores[index] is not None:
            view["ignore"] = save_array(folder, numbered_name(IGNORE, index), ignores[index], bool)
        header["views"].append(view)
    (folder / HEADER_FILE).write_text(json.dumps(header))
    return folder


def _write_sources(folder: Path, sources, entries: list, num_labels: int | None) -> int:
    """Save the annotated sources of a transfer request, append their header entries;
    returns num_labels (given, or the largest label + 1, at least 2)."""
    top = 0
    for index, (image, labels) in enumerate(sources):
        labels = np.asarray(labels)
        top = max(top, int(labels.max()) if labels.size else 0)
        entries.append({"image": save_array(folder, numbered_name(SOURCE_IMAGE, index), image, np.uint8),
                        "labels": save_array(folder, numbered_name(SOURCE_LABELS, index), labels, np.int32)})  # fmt: skip
    return int(num_labels) if num_labels is not None else max(2, top + 1)


def read_request(folder) -> Request:
    """Read and validate a request folder: header keys and version, every array's presence,
    shape, dtype and finiteness, masks against their cameras. Raises RequestError naming
    what is wrong."""
    folder = Path(folder)
    header = _read_header(folder)
    kind = header["kind"]
    if kind == "ping":
        return Request(folder, kind, 0, [])
    n = header.get("num_gaussians")
    if not _is_int(n) or n <= 0:
        raise RequestError("num_gaussians must be a positive integer")
    for name, tail in GAUSSIAN_ARRAYS.items():
        _check_array(folder, f"{name}.npy", (n, *tail), (np.float32,))
    mode = header.get("mode", TWO_CLASS)
    if mode not in MODES:
        raise RequestError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    sh_degree = _integer(header, "sh_degree", 0, 0, 3)
    if kind in ("render", "transfer"):
        if not (folder / SH_FILE).is_file():
            raise RequestError(f"a {kind} request needs {SH_FILE}")
        _check_array(folder, SH_FILE, (n, (sh_degree + 1) ** 2, 3), (np.float32,))
    views, mask_files, channels = _read_views(folder, header.get("views"), kind, mode)
    background = _read_background(header)
    channels = (2 if mode == TWO_CLASS else channels) if kind == "votes" else 0
    transfer = _read_transfer(folder, header) if kind == "transfer" else None
    return Request(folder, kind, n, views, mode, channels or 0, sh_degree, background, transfer, mask_files)


def _read_header(folder: Path) -> dict:
    """header.json as an object with known keys, this version and a known kind."""
    try:
        header = json.loads((folder / HEADER_FILE).read_text())
    except FileNotFoundError:
        raise RequestError(f"no {HEADER_FILE} in {folder}") from None
    except (OSError, json.JSONDecodeError) as err:
        raise RequestError(f"{HEADER_FILE} is not valid JSON ({err})") from None
    _known_object(header, HEADER_KEYS, f"{HEADER_FILE} must hold an object", "unknown header keys: ")
    if header.get("version") != VERSION:
        raise RequestError(f"request version {header.get('version')!r}; this backend reads version {VERSION}")
    if header.get("kind") not in KINDS:
        raise RequestError(f"unknown request kind {header.get('kind')!r} (one of {', '.join(KINDS)})")
    return header


def _read_views(folder: Path, raw_views, kind: str, mode: str) -> tuple[list[Camera], list[tuple], int | None]:
    """The views' cameras and (mask, ignore) file names, checked; for a votes request also
    their masks, all with the same channel count."""
    if not isinstance(raw_views, list) or not raw_views:
        raise RequestError("views must be a non-empty list")
    views, files, channels = [], [], None
    for index, raw in enumerate(raw_views):
        view = _read_view(raw, index)
        files.append((raw.get("mask"), raw.get("ignore")))
        if kind == "votes":
            where = f"view {index} ('{view.name}')"
            k = _check_view_mask(folder, view, *files[-1], where, mode)
            if channels is None:
                channels = k
            elif channels != k:
                raise RequestError(f"{where}: {k} label channels, but earlier views have {channels}")
        views.append(view)
    return views, files, channels


def _read_view(raw, index: int) -> Camera:
    """One view's camera: known keys, a size in range, finite positive intrinsics."""
    where = f"view {index}"
    _known_object(raw, VIEW_KEYS, f"{where} must be an object", f"{where}: unknown keys ")
    try:
        name = str(raw["name"])
        view = Camera(
            name, name, np.array(raw["viewmat"], dtype=np.float64).reshape(4, 4).astype(np.float32),
            float(raw["fx"]), float(raw["fy"]), float(raw["cx"]), float(raw["cy"]), int(raw["width"]), int(raw["height"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as err:
        raise RequestError(f"{where} is malformed ({type(err).__name__}: {err})") from None
    where = f"view {index} ('{view.name}')"
    if not (0 < view.width <= MAX_IMAGE_SIZE and 0 < view.height <= MAX_IMAGE_SIZE):
        raise RequestError(f"{where}: image size {view.width}x{view.height} is out of range")
    values = [view.fx, view.fy, view.cx, view.cy]
    if not all(math.isfinite(v) for v in values) or view.fx <= 0 or view.fy <= 0 or not np.isfinite(view.world_to_camera).all():
        raise RequestError(f"{where}: camera has non-finite or non-positive values")
    return view


def _check_view_mask(folder: Path, view: Camera, mask_name, ignore_name, where: str, mode: str) -> int:
    """A votes view's mask (and ignore region) against its camera; returns its channel count."""
    if not mask_name:
        raise RequestError(f"{where}: a votes request needs a mask for every view")
    _plain_name(mask_name, where)
    if ignore_name:
        _plain_name(ignore_name, where)
    mask = _check_mask(folder, mask_name)
    if mask.shape[:2] != (view.height, view.width):
        raise RequestError(
            f"{where}: mask is {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]}, "
            f"the camera is {view.width}x{view.height}"
        )
    k = 1 if mask.ndim == 2 else mask.shape[2]
    if mode == TWO_CLASS and k != 1:
        raise RequestError(f"{where}: a two-class mask has one channel, not {k}")
    if mask.dtype == np.float32 and (mask.min() < 0 or mask.max() > 1):
        raise RequestError(f"{where}: float mask values must lie in [0, 1]")
    if ignore_name:
        _check_array(folder, ignore_name, (view.height, view.width), (np.bool_, np.uint8))
    return k


def _read_background(header: dict) -> list[float]:
    background = header.get("background", [0.0, 0.0, 0.0])
    if not (
        isinstance(background, list) and len(background) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in background)
    ):  # fmt: skip
        raise RequestError("background must be three finite numbers")
    return [float(v) for v in background]


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
    sources = [_read_source(folder, raw, f"source {index}", num_labels) for index, raw in enumerate(raw_sources)]
    return TransferSpec(model.strip(), num_labels, sources, cache_dir, k, feature_size)


def _read_source(folder: Path, raw, where: str, num_labels: int) -> tuple[str, str]:
    """One annotated source: an RGB uint8 image and labels of its size in 0..num_labels-1."""
    if not isinstance(raw, dict) or set(raw) != SOURCE_KEYS:
        raise RequestError(f"{where} must be an object with exactly the keys image and labels")
    image_name, labels_name = _plain_name(raw["image"], where), _plain_name(raw["labels"], where)
    image = _check_array(folder, image_name, (None, None, 3), (np.uint8,))
    h, w = image.shape[:2]
    if not (0 < h <= MAX_IMAGE_SIZE and 0 < w <= MAX_IMAGE_SIZE):
        raise RequestError(f"{where}: image size {w}x{h} is out of range")
    labels = _check_array(folder, labels_name, (None, None), (np.int32, np.uint8))
    if labels.shape != (h, w):
        raise RequestError(f"{where}: labels are {labels.shape[1]}x{labels.shape[0]}, the image is {w}x{h}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_labels:
        raise RequestError(f"{where}: label values {low}..{high} lie outside 0..{num_labels - 1}")
    return image_name, labels_name


def _known_object(raw, keys: set, not_an_object: str, unknown_keys: str) -> None:
    """`raw` must be a JSON object with no key outside `keys` (the messages name what it is)."""
    if not isinstance(raw, dict):
        raise RequestError(not_an_object)
    unknown = set(raw) - keys
    if unknown:
        raise RequestError(unknown_keys + ", ".join(sorted(unknown)))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(header: dict, key: str, default, low: int, high: int | None = None) -> int:
    value = header.get(key, default)
    if not _is_int(value) or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise RequestError(f"{key} must be an integer {span}, not {value!r}")
    return value


def _plain_name(name, where: str) -> str:
    """A file name inside the request folder: no folder part, ends in .npy."""
    if not isinstance(name, str) or not name or Path(name).name != name or not name.endswith(".npy"):
        raise RequestError(f"{where}: file name {name!r} must be a plain .npy name in the request folder")
    return name


def _open_array(folder: Path, name: str, what: str) -> np.ndarray:
    if not (folder / name).is_file():
        raise RequestError(f"{what} {name} is missing")
    try:
        return load_array(folder, name, mmap_mode="r")
    except ValueError as err:
        raise RequestError(f"{what} {name} is not a plain .npy array ({err})") from None


def _check_array(folder: Path, name: str, shape: tuple, dtypes: tuple, array: np.ndarray | None = None) -> np.ndarray:
    """The array `name` (opened here unless given) with one of `dtypes`, `shape` (None: any) and finite values."""
    array = _open_array(folder, name, "array") if array is None else array
    if array.dtype not in dtypes:
        raise RequestError(f"array {name} has dtype {array.dtype}, expected {' or '.join(str(np.dtype(d)) for d in dtypes)}")
    if len(array.shape) != len(shape) or any(s is not None and a != s for a, s in zip(array.shape, shape, strict=True)):
        pretty = tuple("*" if s is None else s for s in shape)
        raise RequestError(f"array {name} has shape {array.shape}, expected {pretty}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise RequestError(f"array {name} has {int((~np.isfinite(array)).sum())} NaN or Inf values")
    return array


def _check_mask(folder: Path, name: str) -> np.ndarray:
    mask = _open_array(folder, name, "mask")
    if mask.ndim not in (2, 3):
        raise RequestError(f"mask {name} must be [H, W] or [H, W, K], not {mask.ndim}-dimensional")
    return _check_array(folder, name, (None,) * mask.ndim, (np.uint8, np.float32), mask)
