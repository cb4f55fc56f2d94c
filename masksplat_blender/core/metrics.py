"""Scores of a selection against ground truth, for `evaluate` (numpy only).

A selection arrives as a file (OBJECT.ply, written by `segment`): its Gaussians are found
again in the scene by their bytes. Per view, the selection rendered as a label is compared
with the ground-truth mask: IoU of the object and pixel accuracy (NVOS / SPIn-NeRF), and
their means over the views.
"""

from __future__ import annotations

import numpy as np

from .masks import iou_and_accuracy


def row_keys(vertices: np.ndarray) -> np.ndarray:
    """A 64-bit key per Gaussian from its bytes, to find a subset's rows in the full scene."""
    raw = np.ascontiguousarray(vertices).view(np.uint8).reshape(len(vertices), -1)
    pad = (-raw.shape[1]) % 8
    words = np.pad(raw, ((0, 0), (0, pad))).view(np.uint64)
    weights = np.random.default_rng(12345).integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        return (words * weights).sum(axis=1, dtype=np.uint64)


def selected_in_scene(scene_vertices: np.ndarray, part_vertices: np.ndarray) -> np.ndarray:
    """bool [N]: which of the scene's Gaussians are in the part (same properties, same bytes)."""
    return np.isin(row_keys(scene_vertices), row_keys(part_vertices))


def view_scores(names, predicted, truths) -> dict:
    """{"views": [{"view", "iou", "accuracy"}], "mIoU", "mAcc"} of predicted vs true masks ([H, W], > 0.5 = object)."""
    rows = []
    for name, pred, truth in zip(names, predicted, truths, strict=True):
        iou, acc = iou_and_accuracy(np.asarray(pred) > 0.5, np.asarray(truth) > 0.5)
        rows.append({"view": name, "iou": round(iou, 5), "accuracy": round(acc, 5)})
    return {
        "mIoU": round(float(np.mean([r["iou"] for r in rows])), 5),
        "mAcc": round(float(np.mean([r["accuracy"] for r in rows])), 5),
        "views": rows,
    }


def view_table(scores: dict) -> str:
    """The per-view scores as a Markdown table, the mean last."""
    lines = ["| view | IoU | accuracy |", "|---|---|---|"]
    lines += [f"| {r['view']} | {r['iou']:.4f} | {r['accuracy']:.4f} |" for r in scores["views"]]
    lines.append(f"| **mean** | **{scores['mIoU']:.4f}** | **{scores['mAcc']:.4f}** |")
    return "\n".join(lines)
