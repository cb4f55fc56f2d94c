"""Prune Splats: which Gaussians no view needs, and what removing them costs (numpy only).

A Gaussian's contribution is its vote under an all-ones mask: the sum over every pixel
of every view of alpha * T. The paper removes those with exactly zero (lossless for the
views used); a threshold is given per view pixel (contribution / pixels of all views), so
it does not change with resolution or the number of views; "fraction" removes the
smallest contributors, optionally only as far as a PSNR floor allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ALPHA_MIN = 1.0 / 255.0


class PruneError(ValueError):
    """A pruning request that cannot be carried out as asked."""


def parse_criterion(text: str) -> tuple[str, float]:
    """'zero' | 'threshold:X' | 'fraction:F' -> (kind, value)."""
    kind, _, value = str(text).partition(":")
    if kind == "zero" and not value:
        return "zero", 0.0
    if kind in ("threshold", "fraction"):
        try:
            number = float(value)
        except ValueError:
            raise PruneError(f"criterion '{text}': {kind} needs a number, e.g. {kind}:{'1e-6' if kind == 'threshold' else '0.1'}") from None
        if kind == "fraction" and not 0.0 < number < 1.0:
            raise PruneError(f"criterion '{text}': the fraction must lie between 0 and 1")
        if kind == "threshold" and not (number >= 0 and math.isfinite(number)):
            raise PruneError(f"criterion '{text}': the threshold must be a finite number >= 0")
        return kind, number
    raise PruneError(f"unknown criterion '{text}' (use zero, threshold:X or fraction:F)")


def never_contributes(opacity_logits: np.ndarray, log_scales: np.ndarray) -> np.ndarray:
    """Gaussians no rasterizer can draw: opacity below 1/255 after the sigmoid, or degenerate scales."""
    with np.errstate(over="ignore"):
        opacity = 1.0 / (1.0 + np.exp(-np.asarray(opacity_logits, dtype=np.float64)))
    scales = np.asarray(log_scales, dtype=np.float64)
    degenerate = ~np.isfinite(scales).all(axis=1) | (np.exp(scales).max(axis=1) == 0.0)
    return (opacity < ALPHA_MIN) | degenerate


def choose_removal(contribution: np.ndarray, total_pixels: int, kind: str, value: float, never: np.ndarray) -> np.ndarray:
    """bool [N]: the Gaussians to remove under a criterion (never-drawn ones always go)."""
    contribution = np.asarray(contribution, dtype=np.float64)
    if kind == "zero":
        remove = contribution <= 0.0
    elif kind == "threshold":
        remove = contribution / max(total_pixels, 1) < value
    elif kind == "fraction":
        count = int(round(value * contribution.size))
        remove = np.zeros(contribution.size, dtype=bool)
        remove[np.argsort(contribution, kind="stable")[:count]] = True
    else:
        raise PruneError(f"unknown criterion kind {kind!r}")
    return remove | np.asarray(never, dtype=bool)


def psnr(before: np.ndarray, after: np.ndarray) -> float:
    """PSNR in dB of two images in the same units (uint8 scaled to [0, 1]); inf when equal."""
    a = np.asarray(before, dtype=np.float64) / (255.0 if before.dtype == np.uint8 else 1.0)
    b = np.asarray(after, dtype=np.float64) / (255.0 if after.dtype == np.uint8 else 1.0)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


@dataclass
class QualityReport:
    """What pruning costs, per view, before anything is removed."""

    total: int
    removed: int
    never_drawn: int
    views: list[dict] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    criterion: str = "zero"

    @property
    def mean_psnr(self) -> float:
        values = [v["psnr"] for v in self.views if v.get("used", True)]
        finite = [v for v in values if math.isfinite(v)]
        return float("inf") if len(finite) < len(values) and not finite else (float(np.mean(finite)) if finite else float("inf"))

    def as_dict(self) -> dict:
        def clean(x):
            return None if isinstance(x, float) and math.isinf(x) else x

        return {
            "criterion": self.criterion, "gaussians": self.total, "removed": self.removed,
            "fraction_removed": self.removed / max(self.total, 1), "never_drawn": self.never_drawn,
            "mean_psnr_used_views": clean(self.mean_psnr),
            "max_pixel_difference": max((v["max_diff"] for v in self.views), default=0.0),
            "bytes_before": self.bytes_before, "bytes_after": self.bytes_after,
            "views": [{**v, "psnr": clean(v["psnr"])} for v in self.views],
        }  # fmt: skip

    def summary(self) -> str:
        psnr_text = "identical" if math.isinf(self.mean_psnr) else f"{self.mean_psnr:.1f} dB"
        max_diff = max((v["max_diff"] for v in self.views), default=0.0)
        return (
            f"{self.removed:,} of {self.total:,} Gaussians ({100 * self.removed / max(self.total, 1):.1f}%) "
            f"can go; used views: {psnr_text}, max pixel difference {max_diff:.4f}; "
            f"{self.bytes_before / 2**20:.1f} MB -> {self.bytes_after / 2**20:.1f} MB"
        )


def compare_views(names, before, after, used) -> list[dict]:
    """Per-view PSNR and maximum pixel difference of RGB renders (uint8)."""
    rows = []
    for name, a, b, is_used in zip(names, before, after, used, strict=True):
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max() / 255.0
        rows.append({"view": name, "psnr": psnr(a, b), "max_diff": float(diff), "used": bool(is_used)})
    return rows
