"""Votes become selections here (numpy only, used in Blender without the backend).

Two classes: the paper keeps Gaussian i when A_fg > A_bg; its interactive tool uses
A_fg > beta * A_bg. FlashSplat's background bias adds a prior towards "not object":
with bias b in [0, 1), a Gaussian is selected when A_fg > beta * A_bg + b * (A_fg + A_bg),
i.e. when its foreground share exceeds what beta alone requires by b of its total
contribution (b = 0 is the paper's rule; units are the same pixel weights as the votes).
Gaussians with A_fg = A_bg = 0 were never seen and are never selected.

The votes themselves are sums of per-pixel weights (`vote_weights`): the one definition
of what a mask and its ignore region mean; the CUDA path mirrors it in torch
(backend/raster_gsplat.py, tested against this one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TWO_CLASS, LABELS = "two_class", "labels"
MODES = (TWO_CLASS, LABELS)


def vote_weights(mask: np.ndarray, ignore: np.ndarray | None = None, mode: str = TWO_CLASS) -> np.ndarray:
    """[H, W, K] float32: what each pixel of one view adds to each class's votes.

    mask: [H, W] or [H, W, 1] (two_class) or [H, W, K] (labels), uint8 0..255 or float 0..1;
    ignore: [H, W], non-zero where a pixel casts no vote (scribble input), or None.
    two_class: K = 2, (m * keep, (1 - m) * keep); labels: m_k * keep; keep = (ignore == 0).
    """
    if mode not in MODES:
        raise ValueError(f"unknown vote mode {mode!r} (one of {', '.join(MODES)})")
    mask = np.asarray(mask)
    m = mask.astype(np.float32) / 255.0 if mask.dtype == np.uint8 else mask.astype(np.float32, copy=False)
    if m.ndim == 2:
        m = m[:, :, None]
    weights = np.concatenate([m, 1.0 - m], axis=2) if mode == TWO_CLASS else m
    if ignore is not None:
        weights = weights * (np.asarray(ignore) == 0)[:, :, None]
    return np.ascontiguousarray(weights, dtype=np.float32)


def never_seen(fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """True where no view saw the Gaussian at all."""
    return (np.asarray(fg) == 0) & (np.asarray(bg) == 0)


def select_two_class(fg: np.ndarray, bg: np.ndarray, beta: float = 1.0, bg_bias: float = 0.0) -> np.ndarray:
    """bool [N]: A_fg > beta * A_bg + bg_bias * (A_fg + A_bg), never-seen Gaussians excluded."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if not 0.0 <= bg_bias < 1.0:
        raise ValueError(f"the background bias must lie in [0, 1), got {bg_bias}")
    fg = np.asarray(fg, dtype=np.float64)
    bg = np.asarray(bg, dtype=np.float64)
    if fg.shape != bg.shape:
        raise ValueError(f"fg and bg votes differ in shape: {fg.shape} vs {bg.shape}")
    return (fg > beta * bg + bg_bias * (fg + bg)) & ~never_seen(fg, bg)


def argmax_labels(votes: np.ndarray) -> np.ndarray:
    """int32 [N]: the label with the most votes, -1 where a Gaussian got no vote at all."""
    votes = np.asarray(votes)
    if votes.ndim != 2 or votes.shape[1] == 0:
        raise ValueError(f"votes must be [N, K] with K >= 1, got {votes.shape}")
    labels = np.argmax(votes, axis=1).astype(np.int32)
    labels[~(votes > 0).any(axis=1)] = -1
    return labels


@dataclass
class SelectionSummary:
    total: int
    selected: int
    unselected: int
    never_seen: int

    def __str__(self) -> str:
        return f"{self.selected:,} of {self.total:,} Gaussians selected, {self.never_seen:,} never seen by any view"


def summarize(fg: np.ndarray, bg: np.ndarray, selected: np.ndarray) -> SelectionSummary:
    unseen = int(np.count_nonzero(never_seen(fg, bg)))
    chosen = int(np.count_nonzero(selected))
    total = int(np.asarray(selected).size)
    return SelectionSummary(total, chosen, total - chosen - unseen, unseen)


def fill_never_seen(means: np.ndarray, selected: np.ndarray, seen: np.ndarray, grid: int = 96,
                    levels: int = 3, steps: int = 4) -> np.ndarray:  # fmt: skip
    """Give Gaussians that no view saw the label of the seen Gaussians nearest to them.

    With two or three painted views, the back of an object and parts hidden in those
    views get no vote at all; left unselected they show as holes from other sides. The
    seen Gaussians vote per cell of a `grid`^3 voxel grid (majority by count); labelled
    cells spread outwards one cell at a time into empty ones (each new cell takes the
    majority of its labelled neighbours, ties go to "not selected"), and each unseen
    Gaussian takes its cell's label. So that this stays interactive (it runs on every
    beta change), the fine grid spreads only `steps` cells; Gaussians still unreached
    take the label of a grid half as fine, and so on for `levels` grids, the coarsest
    spreading until every one is reached (200,000 Gaussians, half unseen: 0.07 s).
    """
    means = np.asarray(means, dtype=np.float64)
    selected = np.asarray(selected, dtype=bool).copy()
    seen = np.asarray(seen, dtype=bool)
    if seen.all() or not seen.any():
        return selected
    lo, hi = means.min(axis=0), means.max(axis=0)
    size = np.maximum(hi - lo, 1e-9)
    vote = np.where(selected[seen], 1.0, -1.0)
    pending = np.flatnonzero(~seen)
    for level in range(levels):
        g = max(grid >> level, 1)
        cells = np.minimum(((means - lo) / size * g).astype(np.int64), g - 1)
        flat = (cells[:, 0] * g + cells[:, 1]) * g + cells[:, 2]
        sign = np.sign(np.bincount(flat[seen], weights=vote, minlength=g**3)).astype(np.float32).reshape((g,) * 3)
        labelled = (np.bincount(flat[seen], minlength=g**3) > 0).reshape((g,) * 3)
        need = flat[pending]
        _spread(sign, labelled, need, g if level == levels - 1 else steps)
        reached = labelled.reshape(-1)[need]
        selected[pending[reached]] = sign.reshape(-1)[need[reached]] > 0
        pending = pending[~reached]
        if not pending.size:
            break
    return selected


def _spread(sign: np.ndarray, labelled: np.ndarray, need: np.ndarray, steps: int) -> None:
    """Grow labelled cells (in place) into their 6 neighbours, at most `steps` times or
    until every cell in `need` (flat indices) is labelled. No wrap-around at the borders."""

    def part(axis, start, stop):
        return tuple(slice(start, stop) if a == axis else slice(None) for a in range(3))

    for _ in range(steps):
        if labelled.reshape(-1)[need].all():
            return
        grown = np.zeros(sign.shape, np.float32)
        count = np.zeros(sign.shape, np.int8)
        for axis in range(3):
            for dst, src in (((1, None), (None, -1)), ((None, -1), (1, None))):
                grown[part(axis, *dst)] += sign[part(axis, *src)]
                count[part(axis, *dst)] += labelled[part(axis, *src)]
        new = ~labelled & (count > 0)
        if not new.any():
            return
        sign[new] = np.sign(grown[new])
        labelled |= new


def centre_votes(centres_px: np.ndarray, depths: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre-in-mask baseline (what centre-based brush selection does): per Gaussian,
    (1 if its projected centre falls in the mask, 1 if it falls in the frame outside it).
    It ignores occlusion: a hidden Gaussian behind the object counts as the object."""
    h, w = mask.shape
    x, y = np.floor(centres_px[:, 0]).astype(np.int64), np.floor(centres_px[:, 1]).astype(np.int64)
    inside = (depths > 0) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
    hit = np.zeros(len(depths), dtype=np.float32)
    hit[inside] = mask[y[inside], x[inside]] > 0.5
    return hit, inside.astype(np.float32) - hit
