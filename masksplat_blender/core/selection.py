"""Selections of splats as plain arrays: combine, grow and shrink, select by value.

Everything takes world-space data (object scale included) and a bool [N] selection and
returns a new one, so the operators, batch jobs and tests share it.
"""

from __future__ import annotations

import numpy as np

from .neighbours import kth_distance, reached
from .splat_io import SH_C0

ACTIONS = ("SET", "ADD", "REMOVE")
VALUE_KINDS = ("OPACITY", "SCALE", "COLOUR")
SIZE_CLIP = 99.0  # percentile: bigger splats reach no further than this, so one giant cannot swallow the scene


def combine(current: np.ndarray, chosen: np.ndarray, action: str) -> np.ndarray:
    """SET replaces the selection with `chosen`, ADD extends it, REMOVE takes `chosen` out."""
    current, chosen = np.asarray(current, dtype=bool), np.asarray(chosen, dtype=bool)
    if action == "SET":
        return chosen.copy()
    if action == "ADD":
        return current | chosen
    if action == "REMOVE":
        return current & ~chosen
    raise ValueError(f"unknown selection action {action!r} ({', '.join(ACTIONS)})")


def splat_sizes(log_scales: np.ndarray) -> np.ndarray:
    """float [N]: each splat's largest standard deviation (world units for world log-scales)."""
    return np.exp(np.max(np.asarray(log_scales, dtype=np.float64), axis=1))


def grow(means: np.ndarray, selected: np.ndarray, radius: float = 0.0, k: int = 0, sizes: np.ndarray | None = None,
         steps: int = 1, shrink: bool = False) -> np.ndarray:  # fmt: skip
    """Grow (or shrink) a selection by nearest neighbours in 3D, `steps` times.

    Two splats are close when
    - k > 0: one is among the other's k nearest (the selected splat's, by centre distance);
    - else with `sizes` (each splat's size, see `splat_sizes`): their centres lie within
      radius x (size + size), i.e. they overlap at `radius` standard deviations (sizes
      clipped at the 99th percentile);
    - else: their centres lie within `radius` world units.
    Grow selects every splat close to a selected one; shrink deselects every selected
    splat close to an unselected one (erosion: grow then shrink smooths a selection).
    """
    means = np.asarray(means, dtype=np.float64)
    selected = np.asarray(selected, dtype=bool).copy()
    if means.shape != (len(selected), 3):
        raise ValueError(f"means must be [{len(selected)}, 3], got {means.shape}")
    if k <= 0 and radius <= 0:
        raise ValueError("grow by a radius > 0 or by k >= 1 nearest neighbours")
    if k <= 0 and sizes is None:
        reach = np.full(len(means), radius / 2.0)
    elif k <= 0:
        sizes = np.asarray(sizes, dtype=np.float64)
        reach = radius * np.minimum(sizes, np.percentile(sizes, SIZE_CLIP))
    for _ in range(max(int(steps), 1)):
        inside, outside = np.flatnonzero(selected), np.flatnonzero(~selected)
        if not inside.size or not outside.size:
            break
        if k > 0:
            reach = np.zeros(len(means))
            reach[inside] = kth_distance(means, inside, k)
        if shrink:
            selected[inside[reached(means, outside, inside, reach)]] = False
        else:
            selected[outside[reached(means, inside, outside, reach)]] = True
    return selected


def splat_values(kind: str, opacity_logits=None, log_scales=None, f_dc=None, reference=None) -> np.ndarray:
    """float [N] per splat for select-by-value:
    OPACITY: sigmoid(logit) in 0..1; SCALE: largest standard deviation over the median
    splat's (scene units do not matter); COLOUR: RGB distance (0..1 per channel) of the
    base colour (0.5 + C0 * f_dc, clipped) from `reference` RGB."""
    if kind == "OPACITY":
        return 1.0 / (1.0 + np.exp(-np.asarray(opacity_logits, dtype=np.float64)))
    if kind == "SCALE":
        sizes = splat_sizes(log_scales)
        return sizes / max(float(np.median(sizes)), 1e-30)
    if kind == "COLOUR":
        if reference is None:
            raise ValueError("select by colour needs a reference colour (pick a splat)")
        colours = np.clip(0.5 + SH_C0 * np.asarray(f_dc, dtype=np.float64), 0.0, 1.0)
        return np.linalg.norm(colours - np.asarray(reference, dtype=np.float64)[None, :], axis=1)
    raise ValueError(f"unknown value {kind!r} ({', '.join(VALUE_KINDS)})")


def threshold(values: np.ndarray, limit: float, above: bool) -> np.ndarray:
    """bool [N]: values above `limit` (or at most `limit`); NaN is never chosen."""
    values = np.asarray(values, dtype=np.float64)
    return values > limit if above else values <= limit
