"""Colour, edge, temporal and transparency metrics on aligned frames."""

from __future__ import annotations

import cv2
import numpy as np

HIST_BINS = 8  # per channel: 512-bin RGB histogram


def color_histogram(rgb: np.ndarray) -> np.ndarray:
    """Normalised 8x8x8 RGB histogram of a frame (sums to 1)."""
    q = (rgb // (256 // HIST_BINS)).astype(np.int64)
    idx = (q[..., 0] * HIST_BINS + q[..., 1]) * HIST_BINS + q[..., 2]
    h = np.bincount(idx.ravel(), minlength=HIST_BINS**3).astype(np.float64)
    return h / max(1.0, h.sum())


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance of two histograms: 0 = same distribution, 1 = disjoint."""
    return float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(p * q)))))


def edge_f1(a_luma: np.ndarray, b_luma: np.ndarray) -> float:
    """Dice/F1 overlap of Canny edge maps (100/200 thresholds); 1 when neither has edges."""
    ea = cv2.Canny(a_luma.astype(np.uint8), 100, 200) > 0
    eb = cv2.Canny(b_luma.astype(np.uint8), 100, 200) > 0
    total = ea.sum() + eb.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(ea, eb).sum() / total)


def temporal_difference(prev_a, a, prev_b, b) -> float:
    """How much the render's frame-to-frame change differs from the source's, in [0, 1].

    mean | (a - prev_a) - (b - prev_b) | / 255 over luma: 0 when the render changes exactly as
    the source does (including a dropped frame shown twice, which scores its missed motion).
    """
    da = a - prev_a
    db = b - prev_b
    return float(np.mean(np.abs(da - db)) / 255.0)


def transparency_error(a_alpha: np.ndarray, b_alpha: np.ndarray) -> float:
    """Fraction of pixels whose visibility (alpha > 0) differs: lost or spurious transparency."""
    return float(np.mean((a_alpha > 0) != (b_alpha > 0)))
