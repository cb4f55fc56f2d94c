"""Several labels at once: label maps, one-hot vote masks, label renders and their scores.

A label map is an integer image of label ids at a camera's resolution: 0 is background
(or "not annotated"), 1..K-1 the named labels of the splat object's label set. K label
ids give K vote channels in one backend pass; each Gaussian takes the argmax, -1 where
no view saw it (`votes.argmax_labels`). numpy only: used in Blender, batch jobs and tests.
"""

from __future__ import annotations

import colorsys

import numpy as np

from .masks import colour_sh

MAX_LABELS = 32  # named labels; with background that makes up to 33 label ids


class LabelError(ValueError):
    """A label map that does not fit the label set or the camera; the message says which."""


def label_ids_from_pixels(pixels: np.ndarray, name: str = "label map") -> np.ndarray:
    """int32 [H, W] label ids from an image's pixels: the first channel, as 8-bit values.

    Float pixels (Blender's image buffer) are the 8-bit values divided by 255; anything
    that is not a whole id (a blurred, resized or JPEG-compressed map) is refused.
    """
    pixels = np.asarray(pixels)
    first = pixels if pixels.ndim == 2 else pixels[:, :, 0]
    if first.dtype.kind in "iu":
        ids = first.astype(np.int64)
    else:
        scaled = first.astype(np.float64) * 255.0
        ids = np.rint(scaled).astype(np.int64)
        bad = np.abs(scaled - ids) > 1e-3
        if bad.any():
            raise LabelError(f"{name}: {int(bad.sum())} pixels are not whole label ids (save label maps as 8-bit PNG, not JPG)")
    if ids.min(initial=0) < 0:
        raise LabelError(f"{name}: negative label ids")
    return ids.astype(np.int32)


def check_label_map(name: str, ids: np.ndarray, num_labels: int, width: int | None = None, height: int | None = None) -> None:
    """Refuse a map of the wrong size or with ids beyond the label set, naming the camera."""
    if width is not None and ids.shape != (height, width):
        raise LabelError(f"the label map for '{name}' is {ids.shape[1]}x{ids.shape[0]}, the camera is {width}x{height}")
    largest = int(ids.max(initial=0))
    if largest >= num_labels:
        raise LabelError(
            f"the label map for '{name}' uses label {largest}, but there are only {num_labels} labels "
            f"(0..{num_labels - 1}, 0 = background): add labels to the label set first"
        )


def one_hot(ids: np.ndarray, num_labels: int) -> np.ndarray:
    """uint8 [H, W, K]: 255 in the channel of each pixel's label, the backend's label-mode mask."""
    ids = np.asarray(ids)
    if num_labels < 1 or num_labels > MAX_LABELS + 1:
        raise LabelError(f"between 1 and {MAX_LABELS + 1} label ids are supported, not {num_labels}")
    check_label_map("label map", ids, num_labels)
    out = np.zeros((*ids.shape, num_labels), dtype=np.uint8)
    np.put_along_axis(out, ids[..., None].astype(np.int64), 255, axis=2)
    return out


def label_colour_sh(labels: np.ndarray, channels: tuple[int, ...]) -> np.ndarray:
    """SH [N, 1, 3] whose render is, per colour channel c, the weight of Gaussians with label
    channels[c] (one-hot colours; unseen Gaussians, label -1, render black)."""
    labels = np.asarray(labels)
    colours = np.zeros((labels.size, 3), dtype=np.float32)
    for c, label in enumerate(channels):
        colours[:, c] = labels == label
    return colour_sh(colours)


def render_label_maps(render, labels: np.ndarray, num_labels: int, foreground_share: float = 0.2) -> list[np.ndarray]:
    """int32 [H, W] label maps of per-Gaussian `labels`, occlusion-aware, one per camera.

    render(sh) -> [(rgb uint8 [H, W, 3], alpha uint8 [H, W]), ...] renders the cameras with
    those colours (the backend); three labels go per render. Label 0 is background: a
    named label shows at a pixel where its Gaussians make at least `foreground_share` of
    the pixel's rendered weight (the largest such label), so thin or faint parts in front
    of a surface (print on a box, the rim of a cup) are not swallowed by the surface
    behind them; elsewhere the pixel is background. 0 gives the plain per-pixel argmax.
    """
    total: list[np.ndarray] = []  # per view: rendered weight of all labels, of the best label, which label
    best: list[np.ndarray] = []
    which: list[np.ndarray] = []
    for start in range(0, num_labels, 3):
        channels = tuple(range(start, min(start + 3, num_labels)))
        for view, (rgb, _) in enumerate(render(label_colour_sh(labels, channels))):
            if start == 0:
                total.append(np.zeros(rgb.shape[:2], dtype=np.int32))
                best.append(np.zeros(rgb.shape[:2], dtype=np.int32))
                which.append(np.zeros(rgb.shape[:2], dtype=np.int32))
            for c, label in enumerate(channels):
                value = rgb[:, :, c].astype(np.int32)
                total[view] += value
                # label 0 competes only without a share rule (the plain argmax)
                if label == 0 and foreground_share > 0 and num_labels > 1:
                    continue
                better = value > best[view]
                best[view][better] = value[better]
                which[view][better] = label
    if foreground_share <= 0 or num_labels == 1:
        return which
    return [np.where((b >= foreground_share * t) & (b > 0), w, 0).astype(np.int32) for t, b, w in zip(total, best, which, strict=True)]


def confusion(predicted: np.ndarray, truth: np.ndarray, num_labels: int) -> np.ndarray:
    """int64 [K, K] counts: row = ground truth label, column = predicted label."""
    predicted, truth = np.asarray(predicted).ravel(), np.asarray(truth).ravel()
    if predicted.shape != truth.shape:
        raise LabelError(f"predicted and ground-truth maps differ in size: {predicted.shape} vs {truth.shape}")
    valid = (truth >= 0) & (truth < num_labels) & (predicted >= 0) & (predicted < num_labels)
    flat = truth[valid].astype(np.int64) * num_labels + predicted[valid].astype(np.int64)
    return np.bincount(flat, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


def iou_and_recall(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class IoU = TP / (TP + FP + FN) and recall = TP / ground truth, as the paper
    reports them; NaN for a class absent from both the prediction and the ground truth."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    truth, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    union = truth + predicted - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        recall = np.where(truth > 0, tp / truth, np.nan)
    return iou, recall


def weighted_agreement(predicted: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> float:
    """Share of `weights` (e.g. each Gaussian's total contribution to the views) on which
    the labels agree: a Gaussian no view sees cannot be right or wrong, one that fills many
    pixels matters more."""
    weights = np.asarray(weights, dtype=np.float64)
    total = weights.sum()
    if total <= 0:
        raise LabelError("no Gaussian contributes to any view")
    return float(weights[np.asarray(predicted) == np.asarray(truth)].sum() / total)


def default_colours(count: int) -> list[tuple[float, float, float]]:
    """Distinct display colours: grey for background, then hues spread by the golden ratio."""
    colours = [(0.5, 0.5, 0.5)]
    for index in range(1, count):
        colours.append(colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.75, 0.95))
    return colours[:count]


def label_table(names: list[str], columns: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """Markdown table: per class, IoU and recall of each result (e.g. "2D transfer", "3D")."""
    header = "| label | " + " | ".join(f"{c} IoU | {c} recall" for c in columns) + " |"
    lines = [header, "|---" * (1 + 2 * len(columns)) + "|"]

    def cell(v):
        return "-" if not np.isfinite(v) else f"{v:.4f}"

    for k, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(f"{cell(iou[k])} | {cell(rec[k])}" for iou, rec in columns.values()) + " |")
    means = " | ".join(f"**{cell(np.nanmean(iou))}** | **{cell(np.nanmean(rec))}**" for iou, rec in columns.values())
    lines.append(f"| **mean** | {means} |")
    return "\n".join(lines)
