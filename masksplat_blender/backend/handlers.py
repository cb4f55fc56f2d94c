"""What the backend does for each kind of request: votes, renders, label transfer.

Every handler takes (request, rasterizer, device, progress, cancelled), streams the views
(cancel is checked between views, or between batches of views on the GPU), writes its
results into the request folder under core.request's names and returns (the names of the
files it wrote, extra result fields). `HANDLERS` is the table the server dispatches by.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..core.images import to_uint8
from ..core.request import (
    ALPHA,
    GAUSSIAN_ARRAYS,
    LABELS,
    RENDER,
    VOTES_FILE,
    Request,
    RequestError,
    numbered_name,
    save_array,
)
from .rasterizer import Gaussians, Rasterizer


class Cancelled(Exception):
    """The client asked to cancel this request."""


def gaussians_of(request: Request, with_sh: bool) -> Gaussians:
    """The request's Gaussians as the rasterizers take them (SH only for renders)."""
    arrays = {name: np.ascontiguousarray(request.array(name)) for name in GAUSSIAN_ARRAYS}
    sh = np.ascontiguousarray(request.array("sh")) if with_sh else None
    return Gaussians(sh=sh, **arrays)


def same_size_groups(sizes: list[tuple[int, int]], batch: int) -> Iterator[list[int]]:
    """Indices of consecutive views of one image size (width, height), at most `batch` at a time."""
    group: list[int] = []
    for index, size in enumerate(sizes):
        if group and (len(group) == batch or size != sizes[group[0]]):
            yield group
            group = []
        group.append(index)
    if group:
        yield group


def votes(request: Request, rasterizer: Rasterizer, device: str, progress, cancelled) -> tuple[list[str], dict]:
    """votes.npy [N, K]: every view's mask weights summed per Gaussian (views go to the
    rasterizer in groups of its `batch`, masks as stored)."""
    gaussians = gaussians_of(request, with_sh=False)
    out = np.zeros((request.num_gaussians, request.channels), dtype=np.float64)
    for group in same_size_groups([(view.width, view.height) for view in request.views], rasterizer.batch):
        if cancelled():
            raise Cancelled()
        progress(group[0], len(request.views), f"view {request.views[group[0]].name}")
        masks, ignores = zip(*(request.raw_mask(index) for index in group), strict=True)
        rasterizer.votes_masks(gaussians, [request.views[index] for index in group], list(masks), list(ignores),
                               request.mode, out)  # fmt: skip
    return [save_array(request.folder, VOTES_FILE, out, np.float32)], {}


def rendered_views(request: Request, rasterizer: Rasterizer, progress, cancelled, doing: str) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(index, RGB [H, W, 3] uint8, alpha [H, W] float32) of each view, one at a time;
    progress says `doing` and the view's name."""
    gaussians = gaussians_of(request, with_sh=True)
    background = np.asarray(request.background, dtype=np.float32)
    for index, view in enumerate(request.views):
        if cancelled():
            raise Cancelled()
        progress(index, len(request.views), f"{doing} {view.name}")
        image, alpha = rasterizer.render(gaussians, view, background)
        yield index, to_uint8(image), alpha


def render(request: Request, rasterizer: Rasterizer, device: str, progress, cancelled) -> tuple[list[str], dict]:
    """render_<i>.npy and alpha_<i>.npy, uint8, per view."""
    outputs = []
    for index, rgb, alpha in rendered_views(request, rasterizer, progress, cancelled, "render"):
        outputs.append(save_array(request.folder, numbered_name(RENDER, index), rgb))
        outputs.append(save_array(request.folder, numbered_name(ALPHA, index), to_uint8(alpha)))
    return outputs, {}


def transfer(request: Request, rasterizer: Rasterizer, device: str, progress, cancelled) -> tuple[list[str], dict]:
    """Render each view, carry the sources' labels to it by patch features, mask by coverage:
    labels_<i>.npy, render_<i>.npy and alpha_<i>.npy per view.

    The model is loaded once per process (features.load_feature_model caches it) and the
    source features once per request; views stream one at a time, so memory does not grow
    with their number.
    """
    from . import features

    spec = request.transfer
    model = _feature_model(request, device, progress)
    feats, labels = [], []
    for index in range(len(spec.sources)):
        if cancelled():
            raise Cancelled()
        progress(0, len(request.views), f"features of source image {index + 1} of {len(spec.sources)}")
        image, source_labels = request.source(index)
        feats.append(features.patch_features(model, image, spec.feature_size))
        labels.append(source_labels)
    label_transfer = features.LabelTransfer(feats, labels, spec.num_labels)
    del feats, labels
    outputs = []
    for index, rgb, alpha in rendered_views(request, rasterizer, progress, cancelled, "transfer labels to"):
        scores = label_transfer.scores(features.patch_features(model, rgb, spec.feature_size), spec.k)
        label_map = features.upsample_labels(scores, request.views[index].height, request.views[index].width)
        label_map[np.asarray(alpha) < 0.5] = 0  # no splat there: nothing to label
        for prefix, array in ((LABELS, label_map), (RENDER, rgb), (ALPHA, to_uint8(alpha))):
            outputs.append(save_array(request.folder, numbered_name(prefix, index), array))
    return outputs, {"feature_model": model.name, "feature_device": model.device}


def _feature_model(request: Request, device: str, progress):
    """The transfer request's feature model, loaded (or cached) and fit for its feature size."""
    from . import features

    spec = request.transfer
    progress(0, len(request.views), f"loading feature model {spec.model}")
    model = features.load_feature_model(spec.model, spec.cache_dir, device)
    if spec.feature_size % model.patch_size:
        raise RequestError(f"feature_size {spec.feature_size} is not a multiple of the model's patch size {model.patch_size}")
    return model


HANDLERS = {"votes": votes, "render": render, "transfer": transfer}  # "ping" needs no handler
