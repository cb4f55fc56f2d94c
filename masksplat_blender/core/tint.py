"""How selected splats look: one tint colour and strength for every place that shows a
selection (the viewport's point display, the true splat display, the camera preview)."""

from __future__ import annotations

import numpy as np

from .splat_io import SH_C0

SELECTION_TINT = (1.0, 0.55, 0.0)  # Blender's orange for selected elements
TINT_STRENGTH = 0.6  # share of the tint in a selected splat's colour


def tint_colours(colours: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """RGB [N, 3] in 0..1 with the selected rows mixed towards the selection tint."""
    out = np.array(colours, dtype=np.float32, copy=True)
    out[selected] = (1.0 - TINT_STRENGTH) * out[selected] + TINT_STRENGTH * np.asarray(SELECTION_TINT, np.float32)
    return out


def tint_sh(sh: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """SH [N, K, 3] whose render shows the selected rows tinted as `tint_colours` tints them,
    from every side: the DC term carries the tint, the higher bands fade by the same share
    (a splat renders as 0.5 + SH, so (1 - s)(colour) + s * tint is (1 - s) SH + s (tint - 0.5) in SH)."""
    out = np.array(sh, dtype=np.float32, copy=True)
    chosen = np.asarray(selected, dtype=bool)
    out[chosen] *= 1.0 - TINT_STRENGTH
    out[chosen, 0, :] += TINT_STRENGTH * (np.asarray(SELECTION_TINT, np.float32) - 0.5) / SH_C0
    return out
