"""Colour-distribution distance between aligned frames."""

from __future__ import annotations

import numpy as np

HIST_BINS = 8  # per channel: a 512-bin RGB histogram, coarse enough that dithering noise cancels


def color_histogram(rgb: np.ndarray) -> np.ndarray:
    """Normalised 8x8x8 RGB histogram of a uint8 frame (sums to 1)."""
    q = rgb >> 5  # 256 / 8 = 32 levels per bin
    idx = (q[..., 0].astype(np.int32) << 6) | (q[..., 1].astype(np.int32) << 3) | q[..., 2]
    h = np.bincount(idx.ravel(), minlength=HIST_BINS**3).astype(np.float64)
    return h / max(1.0, h.sum())


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance of two normalised histograms: 0 = same distribution, 1 = disjoint.

    sqrt(sum((sqrt p - sqrt q)^2) / 2), i.e. sqrt(1 - Bhattacharyya coefficient); bounded,
    unlike chi-square, so one empty bin cannot dominate. Written as a sum of squares so that
    identical histograms give exactly 0.
    """
    return float(min(1.0, np.sqrt(0.5 * np.sum(np.square(np.sqrt(p) - np.sqrt(q))))))
