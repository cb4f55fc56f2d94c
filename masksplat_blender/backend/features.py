"""DINOv2 patch features and k-nearest-neighbour label transfer (the paper's affordance transfer).

Why here: the backend is the process that has torch and transformers; Blender only sends
images and label maps. Weights are never downloaded implicitly: a model is a local folder
(`config.json` + `model.safetensors`, as `save_pretrained` writes) or a Hugging Face id
already in the local cache, always loaded with `local_files_only=True`,
`use_safetensors=True` and HF_HUB_OFFLINE=1. Pickled weights (`pytorch_model.bin`) are
refused: loading them would run arbitrary code. Downloading is the explicit
`--download-model` path of the backend (the add-on's "Download Model" button).

`rgb-patches` is a weight-free stand-in with a known answer: each patch's feature is a
soft per-channel colour histogram of its pixels. Identical patches give identical
features, so label transfer with it is predictable; it runs through exactly the same
transfer code as DINOv2 and serves tests and debugging.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.request import is_hugging_face_id

RGB_PATCHES = "rgb-patches"
PATCH_SIZE = 14
DINOV2_TYPES = ("dinov2", "dinov2_with_registers")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HISTOGRAM_BINS = 8
SIMILARITY_CHUNK_BYTES = 64 << 20  # one block of the target x source similarity matrix
UPSAMPLE_BAND_BYTES = 64 << 20  # one band of upsampled label scores

_MODELS: dict = {}  # the warm backend keeps loaded models between requests


class ModelUnavailable(Exception):
    """The feature model cannot be loaded; the message says how to get it."""


@dataclass
class FeatureModel:
    """A loaded feature extractor: a transformers DINOv2 module, or None for rgb-patches."""

    name: str
    module: object | None = field(repr=False)
    patch_size: int = PATCH_SIZE
    num_register_tokens: int = 0
    device: str = "cpu"


def how_to_get(model: str, button: bool = True) -> str:
    """The instructions every "model missing" message ends with."""
    repo = model if is_hugging_face_id(model) else "facebook/dinov2-small"
    first = "press Download Model in Preferences > Add-ons > MaskSplat, or " if button else ""
    return (
        f"To get the weights, {first}on a machine "
        f"with internet run: hf download {repo} --include \"*.safetensors\" \"*.json\" --local-dir DIR "
        f"(older huggingface_hub: huggingface-cli download ...), copy DIR here and point Preferences > MaskSplat > Feature Model (or --model DIR) "
        f"at it. Use '{RGB_PATCHES}' to test without weights."
    )


def _weights_in(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()


def _refuse_pickle(where: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"{where} has only pickled PyTorch weights (pytorch_model.bin); MaskSplat loads safetensors only, "
        "because loading a pickle can run arbitrary code. Download the model's model.safetensors, or convert "
        "it once on a trusted machine with transformers: AutoModel.from_pretrained(DIR).save_pretrained(NEW_DIR)"
    )


def _torch_device(device: str) -> str:
    if device == "cpu":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_feature_model(model: str, cache_dir: str | None = None, device: str = "cpu") -> FeatureModel:
    """Load (once per process) `model`: a local folder, a cached Hugging Face id, or rgb-patches.

    device "auto" or "cuda" uses CUDA when torch sees it. Raises ModelUnavailable with a
    message that says how to get the weights; nothing is ever downloaded here.
    """
    if not isinstance(model, str) or not model.strip():
        raise ModelUnavailable("no feature model is set. " + how_to_get("facebook/dinov2-small"))
    model = model.strip()
    if model == RGB_PATCHES:
        return FeatureModel(RGB_PATCHES, None)
    torch_device = _torch_device(device)
    folder = Path(model).expanduser()
    stamp = None
    if folder.is_dir():
        weights = folder / "model.safetensors"
        stamp = weights.stat().st_mtime_ns if weights.is_file() else None
    key = (model, cache_dir, torch_device, stamp)
    if key not in _MODELS:
        _MODELS[key] = _load(model, folder, cache_dir, torch_device)
    return _MODELS[key]


def _load(model: str, folder: Path, cache_dir: str | None, torch_device: str) -> FeatureModel:
    os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers/huggingface_hub read it
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import transformers
        from transformers import AutoModel
    except ImportError as err:
        raise ModelUnavailable(
            f"the backend Python has no transformers ({err}): press Install Backend in the add-on preferences, "
            "or pip install transformers safetensors into the Backend Python"
        ) from None
    transformers.utils.logging.disable_progress_bar()
    if folder.is_dir():
        source = str(folder)
        if not (folder / "config.json").is_file():
            raise ModelUnavailable(f"model folder {folder} has no config.json. " + how_to_get(model))
        if not _weights_in(folder):
            if (folder / "pytorch_model.bin").is_file() or (folder / "pytorch_model.bin.index.json").is_file():
                raise _refuse_pickle(f"model folder {folder}")
            raise ModelUnavailable(f"model folder {folder} has no model.safetensors. " + how_to_get(model))
    elif is_hugging_face_id(model):
        source = model
        _check_cache(model, cache_dir)
    else:
        raise ModelUnavailable(f"feature model folder {model} does not exist. " + how_to_get(model))
    try:
        module = AutoModel.from_pretrained(source, cache_dir=cache_dir, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise ModelUnavailable(f"cannot load feature model {model!r}: {err}. " + how_to_get(model)) from None
    config = module.config
    if getattr(config, "model_type", None) not in DINOV2_TYPES:
        raise ModelUnavailable(
            f"feature model {model!r} is a {getattr(config, 'model_type', '?')!r} model; MaskSplat needs DINOv2 "
            "(e.g. facebook/dinov2-small ... facebook/dinov2-with-registers-large)"
        )
    module.eval().to(torch_device)
    return FeatureModel(model, module, int(config.patch_size), int(getattr(config, "num_register_tokens", 0) or 0), torch_device)


def _check_cache(repo: str, cache_dir: str | None) -> None:
    """A clear message when the id is not (or only as a pickle) in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return

    def cached(name):
        return isinstance(try_to_load_from_cache(repo, name, cache_dir=cache_dir), str)

    where = f"the Hugging Face cache ({cache_dir or 'default location'})"
    if not cached("config.json"):
        raise ModelUnavailable(f"feature model {repo} is not in {where}, and MaskSplat never downloads implicitly. " + how_to_get(repo))
    if not (cached("model.safetensors") or cached("model.safetensors.index.json")):
        if cached("pytorch_model.bin"):
            raise _refuse_pickle(f"the cached copy of {repo}")
        raise ModelUnavailable(f"feature model {repo} has no model.safetensors in {where}. " + how_to_get(repo))


def _resize(image_uint8, size: int):
    """[1, 3, size, size] float tensor in 0..1 (bilinear, antialiased: the image may shrink a lot)."""
    import torch
    import torch.nn.functional as F

    image = np.asarray(image_uint8)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an [H, W, 3] uint8 image, got {image.shape} {image.dtype}")
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    if tensor.shape[2:] == (size, size):
        return tensor
    return F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)


def patch_features(model, image_uint8, feature_size: int = 448) -> np.ndarray:
    """L2-normalised patch features [feature_size/14, feature_size/14, C] float32 of one image.

    The image is stretched to a square (as the paper does at 896), ImageNet-normalised, and
    the CLS and register tokens are dropped from DINOv2's last hidden state.
    """
    import torch

    if not isinstance(model, FeatureModel):  # a bare transformers module
        config = model.config
        model = FeatureModel(getattr(config, "name_or_path", "model"), model, int(config.patch_size),
                             int(getattr(config, "num_register_tokens", 0) or 0), str(next(model.parameters()).device))  # fmt: skip
    if feature_size <= 0 or feature_size % model.patch_size:
        raise ValueError(f"feature size {feature_size} must be a positive multiple of the patch size {model.patch_size}")
    grid = feature_size // model.patch_size
    pixels = _resize(image_uint8, feature_size)
    with torch.inference_mode():
        if model.module is None:
            feats = _rgb_patch_features(pixels, model.patch_size)
        else:
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            pixels = ((pixels - mean) / std).to(model.device)
            tokens = model.module(pixel_values=pixels).last_hidden_state[0]
            tokens = tokens[1 + model.num_register_tokens :]
            if tokens.shape[0] != grid * grid:
                raise ValueError(f"the model returned {tokens.shape[0]} patch tokens, expected {grid}x{grid}")
            feats = tokens.reshape(grid, grid, -1).float()
        feats = torch.nn.functional.normalize(feats, dim=-1, eps=1e-12)
        return feats.cpu().numpy().astype(np.float32, copy=False)


def _rgb_patch_features(pixels, patch: int):
    """Per patch and channel, a soft histogram (linear binning: its centroid is the patch's mean
    colour) over HISTOGRAM_BINS bins; [grid, grid, 3 * HISTOGRAM_BINS], not yet normalised."""
    import torch

    bins = HISTOGRAM_BINS
    position = pixels[0] * (bins - 1)  # [3, S, S]
    low = position.floor().clamp_(0, bins - 2)
    frac = position - low
    onehot = torch.zeros((bins, *position.shape), dtype=torch.float32)
    onehot.scatter_add_(0, low.long()[None], (1 - frac)[None])
    onehot.scatter_add_(0, (low.long() + 1)[None], frac[None])
    pooled = torch.nn.functional.avg_pool2d(onehot.reshape(bins * 3, *position.shape[1:])[None], patch)[0]
    grid = pooled.shape[-1]
    return pooled.reshape(bins, 3, grid, grid).permute(2, 3, 1, 0).reshape(grid, grid, 3 * bins)


def patch_labels(labels: np.ndarray, grid_h: int, grid_w: int, num_labels: int) -> np.ndarray:
    """Majority label [grid_h, grid_w] int64 of each patch's pixels (0 counts like any label;
    ties go to the lower id). A patch that covers no pixel centre takes the label under its centre."""
    labels = np.asarray(labels)
    h, w = labels.shape
    rows = np.minimum(np.arange(h) * grid_h // h, grid_h - 1)
    cols = np.minimum(np.arange(w) * grid_w // w, grid_w - 1)
    patch = (rows[:, None] * grid_w + cols[None, :]).ravel()
    counts = np.bincount(patch * num_labels + labels.ravel().astype(np.int64), minlength=grid_h * grid_w * num_labels)
    counts = counts.reshape(grid_h * grid_w, num_labels)
    out = counts.argmax(axis=1)
    empty = counts.sum(axis=1) == 0
    if empty.any():
        cy = np.minimum(((np.arange(grid_h) + 0.5) * h / grid_h).astype(np.int64), h - 1)
        cx = np.minimum(((np.arange(grid_w) + 0.5) * w / grid_w).astype(np.int64), w - 1)
        out[empty] = labels[cy[:, None], cx[None, :]].ravel()[empty]
    return out.reshape(grid_h, grid_w)


class LabelTransfer:
    """Source patches (features and majority labels) gathered once, queried per target view."""

    def __init__(self, source_feats, source_labels, num_labels: int):
        import torch

        if len(source_feats) != len(source_labels) or not source_feats:
            raise ValueError("one label map per source feature grid, at least one source")
        feats, labels = [], []
        for f, lab in zip(source_feats, source_labels, strict=True):
            f = np.asarray(f, dtype=np.float32)
            lab = np.asarray(lab)
            if lab.min() < 0 or lab.max() >= num_labels:
                raise ValueError(f"source labels must lie in 0..{num_labels - 1}")
            feats.append(f.reshape(-1, f.shape[-1]))
            labels.append(patch_labels(lab, f.shape[0], f.shape[1], num_labels).ravel())
        self.feats = torch.from_numpy(np.concatenate(feats))
        self.labels = torch.from_numpy(np.concatenate(labels))
        self.num_labels = num_labels

    def scores(self, target_feats, k: int = 5) -> np.ndarray:
        """[ht, wt, num_labels] float32: the fraction of each target patch's k nearest source patches
        (cosine) that carry each label. The similarity matrix is built in row blocks."""
        import torch

        target = np.asarray(target_feats, dtype=np.float32)
        ht, wt, c = target.shape
        if c != self.feats.shape[1]:
            raise ValueError(f"target features have {c} channels, the sources {self.feats.shape[1]}")
        k = max(1, min(int(k), self.feats.shape[0]))
        rows = torch.from_numpy(np.ascontiguousarray(target.reshape(-1, c)))
        chunk = max(1, SIMILARITY_CHUNK_BYTES // (4 * self.feats.shape[0]))
        counts = torch.zeros((rows.shape[0], self.num_labels), dtype=torch.float32)
        ones = torch.ones((1, k), dtype=torch.float32)
        with torch.inference_mode():
            for start in range(0, rows.shape[0], chunk):
                sim = rows[start : start + chunk] @ self.feats.T
                nearest = sim.topk(k, dim=1).indices
                block = counts[start : start + chunk]
                block.scatter_add_(1, self.labels[nearest], ones.expand(nearest.shape[0], k))
        return (counts / k).reshape(ht, wt, self.num_labels).numpy()


def transfer_labels(source_feats, source_labels, target_feats, num_labels: int, k: int = 5) -> np.ndarray:
    """Label scores [ht, wt, num_labels] of the target patches by k-NN vote over all source patches.

    Each source patch takes the majority label of its pixels; each target patch counts the labels
    of its k most cosine-similar source patches (score = count / k), as in the paper (k = 5).
    """
    return LabelTransfer(source_feats, source_labels, num_labels).scores(target_feats, k)


def _bilinear_taps(out_size: int, in_size: int):
    """Source indices and weights of align_corners=False bilinear resampling (torch's convention)."""
    pos = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    lo = np.minimum(np.floor(pos).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = (pos - lo).astype(np.float32)
    return lo, hi, frac


def upsample_labels(scores: np.ndarray, height: int, width: int) -> np.ndarray:
    """int32 [height, width] labels: scores bilinearly upsampled to pixels, then argmax.

    Done in bands of rows so a 4K view with 33 labels never holds all upsampled scores at once.
    """
    scores = np.asarray(scores, dtype=np.float32)
    ht, wt, n = scores.shape
    y0, y1, fy = _bilinear_taps(height, ht)
    x0, x1, fx = _bilinear_taps(width, wt)
    out = np.empty((height, width), dtype=np.int32)
    band = max(1, UPSAMPLE_BAND_BYTES // (4 * width * n))
    for start in range(0, height, band):
        sl = slice(start, min(height, start + band))
        wy = fy[sl, None, None]
        rows = scores[y0[sl]] * (1 - wy) + scores[y1[sl]] * wy  # [b, wt, n]
        wx = fx[None, :, None]
        full = rows[:, x0] * (1 - wx) + rows[:, x1] * wx  # [b, width, n]
        out[sl] = full.argmax(axis=2)
    return out
