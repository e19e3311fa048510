"""Metrics across frames and over transparency: flicker/motion errors and disposal artefacts."""

from __future__ import annotations

import numpy as np


def temporal_difference(
    prev_a: np.ndarray, a: np.ndarray, prev_b: np.ndarray, b: np.ndarray
) -> float:
    """How the render's change between two compared frames differs from the source's, in [0, 1].

    mean |(a - prev_a) - (b - prev_b)| / 255 over luma, where a/prev_a are source frames and
    b/prev_b the render frames aligned with them. 0 when the render changes exactly as the source
    does; a dropped frame (render static while the source moves) and added flicker both score.
    """
    return float(np.mean(np.abs((a - prev_a) - (b - prev_b)), dtype=np.float64) / 255.0)


def transparency_error(a_alpha: np.ndarray, b_alpha: np.ndarray) -> float:
    """Fraction of pixels whose visibility (alpha > 0) differs between source and render, [0, 1].

    Catches lost transparency (the render paints where the source is see-through), wrong
    disposal leaving ghosts in transparent areas, and holes punched into opaque content — all
    invisible once both are flattened on one background.
    """
    return visibility_error(a_alpha > 0, b_alpha > 0)


def visibility_error(a_visible: np.ndarray, b_visible: np.ndarray) -> float:
    """``transparency_error`` from the two ``alpha > 0`` masks (the source's one is prepared)."""
    return float(np.mean(a_visible != b_visible))
