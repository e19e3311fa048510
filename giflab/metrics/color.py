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


class ColorCounter:
    """Distinct colours over a render's composited frames, fed one frame at a time.

    Counts what ``describe_render`` reports: distinct RGB over opaque pixels of every frame, plus
    one if any pixel is fully transparent. Only pixels that changed since the previous frame are
    looked at: an unchanged pixel's colour was already counted.
    """

    def __init__(self) -> None:
        # Indexed by B << 16 | G << 8 | R (a pixel read as little-endian uint32, alpha masked off):
        # a different order from R << 16 | G << 8 | B, but the same number of distinct values.
        self._seen = np.zeros(1 << 24, dtype=bool)
        self._prev: np.ndarray | None = None
        self.frames = 0
        self.transparent = False

    def add(self, rgba: np.ndarray) -> None:
        """Count one composited (H, W, 4) uint8 frame."""
        self.frames += 1
        pixels = np.ascontiguousarray(rgba).view("<u4")[..., 0]
        if self._prev is None or self._prev.shape != pixels.shape:
            new = pixels.ravel()
        else:
            new = pixels[pixels != self._prev]
        self._prev = pixels
        opaque = new >= (1 << 24)  # alpha, the high byte, is not 0
        self._seen[new[opaque] & 0xFFFFFF] = True
        self.transparent = self.transparent or not bool(opaque.all())

    @property
    def colors(self) -> int:
        """Distinct opaque colours seen so far, plus one if any pixel was transparent."""
        return int(np.count_nonzero(self._seen)) + int(self.transparent)
