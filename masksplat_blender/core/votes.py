"""Votes become selections here (numpy only, used in Blender without the backend).

Two classes: the paper keeps Gaussian i when A_fg > A_bg; its interactive tool uses
A_fg > beta * A_bg. FlashSplat's background bias adds a prior towards "not object":
with bias b in [0, 1), a Gaussian is selected when A_fg > beta * A_bg + b * (A_fg + A_bg),
i.e. when its foreground share exceeds what beta alone requires by b of its total
contribution (b = 0 is the paper's rule; units are the same pixel weights as the votes).
Gaussians with A_fg = A_bg = 0 were never seen and are never selected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
