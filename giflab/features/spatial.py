"""Spatial features: what single frames look like, averaged over the sampled frames.

Each ``*_frame`` function takes the views of one frame (``SampledFrame``) and returns a float;
``spatial_features`` averages them over ``GifSample.spatial`` (up to 8 evenly spaced frames).
Colour features read the nearest-neighbour view (exact GIF colours); texture features read the
area-averaged detail luma (long side <= 512), so a 1200 px and a 300 px GIF are measured at a
comparable scale. Formulas and ranges are in docs/features.md.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.fft import dctn

from giflab.features.sampling import GifSample, SampledFrame, luma, rgb_words, shannon_bits

SPATIAL_FEATURES = (
    "entropy",
    "edge_density",
    "color_complexity",
    "gradient_smoothness",
    "contrast_score",
    "text_density",
    "dct_energy_ratio",
    "color_histogram_entropy",
    "dominant_color_ratio",
)

# Canny hysteresis thresholds on 8-bit luma: OpenCV's customary 1:2 pair, high enough that
# GIF dithering noise alone does not count as edges.
CANNY_LOW, CANNY_HIGH = 100, 200
# A "gentle ramp": a luma slope above 0.5 levels/px (not flat) and at most 8 levels/px.
RAMP_MIN, RAMP_MAX = 0.5, 8.0
# Text: a 3x3 morphological gradient of at least 64 levels marks glyph strokes.
TEXT_GRADIENT = 64
TEXT_MIN_H, TEXT_MAX_H = 5, 40  # word-blob heights (detail px) that look like lines of text
DCT_BLOCK = 8
DCT_HIGH = 8  # coefficients with u + v >= 8 (of 0..14) are the "high-frequency" half
HIST_BITS = 3  # colour-histogram quantisation: 3 bits per channel = 512 bins


def entropy_frame(f: SampledFrame) -> float:
    """Shannon entropy (bits, 0..8) of the 256-bin histogram of exact-colour luma."""
    y = np.rint(luma(f.rgb_small))
    return shannon_bits(np.bincount(y.astype(np.uint8).ravel(), minlength=256))


def edge_density_frame(f: SampledFrame) -> float:
    """Fraction of detail-luma pixels that Canny (100/200) marks as edges."""
    edges = cv2.Canny(_u8(f.luma_detail), CANNY_LOW, CANNY_HIGH)
    return float(np.count_nonzero(edges)) / edges.size


def color_complexity_frame(f: SampledFrame) -> float:
    """log2(distinct RGB colours) / 8, capped at 1: 0 for one colour, 1 for a full 256 palette."""
    n = np.unique(rgb_words(f.rgb_small)).size
    return min(1.0, float(np.log2(n)) / 8.0)


def gradient_smoothness_frame(f: SampledFrame) -> float:
    """Fraction of detail pixels on a gentle ramp (0.5 < |grad Y| <= 8 levels/px)."""
    g = _gradient_magnitude(f.luma_detail)
    return float(np.count_nonzero((g > RAMP_MIN) & (g <= RAMP_MAX))) / g.size


def contrast_score_frame(f: SampledFrame) -> float:
    """RMS contrast: standard deviation of detail luma / 127.5 (the largest possible), 0..1."""
    return float(np.std(f.luma_detail, dtype=np.float64)) / 127.5


def text_density_frame(f: SampledFrame) -> float:
    """Fraction of detail pixels inside text-line-shaped blobs of strong strokes.

    Strokes (3x3 morphological gradient >= 64) are joined horizontally into words; a joined
    blob counts as text when it is a short, wide, well-filled band, the shape of a line of glyphs.
    """
    y = _u8(f.luma_detail)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
    strokes = (cv2.morphologyEx(y, cv2.MORPH_GRADIENT, kernel) >= TEXT_GRADIENT).astype(np.uint8)
    words = cv2.morphologyEx(
        strokes, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1))
    )
    n, _, stats, _ = cv2.connectedComponentsWithStats(words, connectivity=8)
    if n <= 1:
        return 0.0
    s = stats[1:]
    w, h, area = s[:, cv2.CC_STAT_WIDTH], s[:, cv2.CC_STAT_HEIGHT], s[:, cv2.CC_STAT_AREA]
    fill = area / np.maximum(1, w * h)
    text = (h >= TEXT_MIN_H) & (h <= TEXT_MAX_H) & (w >= 2 * h) & (fill >= 0.45)
    return float(area[text].sum()) / y.size


def dct_energy_ratio_frame(f: SampledFrame) -> float:
    """Share of AC energy in high frequencies (u + v >= 8) of 8x8 orthonormal DCT-II blocks."""
    y = f.luma_detail
    h, w = (y.shape[0] // DCT_BLOCK) * DCT_BLOCK, (y.shape[1] // DCT_BLOCK) * DCT_BLOCK
    if h == 0 or w == 0:
        return 0.0
    blocks = y[:h, :w].astype(np.float64).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    energy = (dctn(blocks, type=2, axes=(2, 3), norm="ortho", workers=1) ** 2).sum(axis=(0, 1))
    u, v = np.indices((DCT_BLOCK, DCT_BLOCK))
    ac = energy.sum() - energy[0, 0]
    # Tiny AC energy is rounding noise of a flat image, not texture.
    if ac <= 1e-6 * max(1.0, energy[0, 0]):
        return 0.0
    return float(energy[(u + v) >= DCT_HIGH].sum() / ac)


def color_histogram_entropy_frame(f: SampledFrame) -> float:
    """Entropy of the 512-bin (3 bits/channel) RGB histogram / 9 bits, 0..1."""
    q = (f.rgb_small >> (8 - HIST_BITS)).astype(np.int32).reshape(-1, 3)
    bins = (q[:, 0] << (2 * HIST_BITS)) | (q[:, 1] << HIST_BITS) | q[:, 2]
    return shannon_bits(np.bincount(bins, minlength=1 << (3 * HIST_BITS))) / (3 * HIST_BITS)


def dominant_color_ratio_frame(f: SampledFrame) -> float:
    """Fraction of pixels that have the single most frequent exact RGB colour, 0..1."""
    _, counts = np.unique(rgb_words(f.rgb_small), return_counts=True)
    return float(counts.max()) / float(counts.sum())


_FRAME_FUNCS = {
    "entropy": entropy_frame,
    "edge_density": edge_density_frame,
    "color_complexity": color_complexity_frame,
    "gradient_smoothness": gradient_smoothness_frame,
    "contrast_score": contrast_score_frame,
    "text_density": text_density_frame,
    "dct_energy_ratio": dct_energy_ratio_frame,
    "color_histogram_entropy": color_histogram_entropy_frame,
    "dominant_color_ratio": dominant_color_ratio_frame,
}


def spatial_features(sample: GifSample) -> dict[str, float]:
    """The nine spatial features of ``sample``: each per-frame value averaged over its frames."""
    frames = sample.spatial_frames()
    return {
        name: float(np.mean([_FRAME_FUNCS[name](f) for f in frames], dtype=np.float64))
        for name in SPATIAL_FEATURES
    }


def _u8(y: np.ndarray) -> np.ndarray:
    """Float luma rounded to uint8 for OpenCV's 8-bit operators."""
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def _gradient_magnitude(y: np.ndarray) -> np.ndarray:
    """|grad Y| in levels per pixel (3x3 Sobel divided by its gain of 8), replicated borders."""
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE) / 8.0
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE) / 8.0
    return np.sqrt(gx * gx + gy * gy)
