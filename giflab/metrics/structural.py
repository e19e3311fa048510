"""Structural, error and edge metrics on one aligned frame pair (luma as float32 in [0, 255]).

SSIM follows Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), C1 = (0.01 L)^2,
C2 = (0.03 L)^2, L = 255 — the same as scikit-image's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``, computed with OpenCV's separable blur
(benchmarks/bench_ssim.py checks the agreement).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

DATA_RANGE = 255.0
C1 = (0.01 * DATA_RANGE) ** 2
C2 = (0.03 * DATA_RANGE) ** 2
PSNR_CAP_DB = 100.0  # identical frames: MSE 0 would give infinite PSNR
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli, Bovik 2003
WINDOW = 11  # skimage: truncate 3.5 sigma -> radius int(3.5 * 1.5 + 0.5) = 5 -> 11 taps
GMSD_C = 170.0  # Xue et al. 2014 reference code, for [0, 255] data
CANNY_LOW, CANNY_HIGH = 100, 200

_PREWITT_X = np.array([[1, 0, -1]] * 3, dtype=np.float32) / 3.0


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of uint8 RGB, as float32 in [0, 255] (float32 halves the blur cost).

    OpenCV's fixed weights (0.299, 0.587, 0.114) per pixel: unlike a numpy matmul, whose SIMD
    summation order depends on memory alignment, equal frames always give bit-equal luma.
    """
    return cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2GRAY)


def _blur(x: np.ndarray) -> np.ndarray:
    # BORDER_REFLECT (abc|cba) is scipy's "reflect", the mode skimage's gaussian filter uses.
    return cv2.GaussianBlur(x, (WINDOW, WINDOW), 1.5, borderType=cv2.BORDER_REFLECT)


def _half(x: np.ndarray) -> np.ndarray:
    """2x2 box average then decimation (the low-pass of MS-SSIM's and GMSD's reference code)."""
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    # INTER_AREA at exactly half size is the plain 2x2 mean (an odd last row/column is dropped).
    return cv2.resize(x[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class SsimLevel:
    """The source side of one SSIM scale: luma, its local mean, squared mean and variance."""

    image: np.ndarray
    mu: np.ndarray
    mu_sq: np.ndarray
    var: np.ndarray


def ssim_levels(a: np.ndarray) -> tuple[SsimLevel, ...]:
    """Source-side terms of SSIM (level 0) and of every MS-SSIM scale that fits ``a``.

    Computed once per source frame and reused against every render (see ``ssim_against``).
    Scales stop at 5, or earlier when the next one could not hold the 11-pixel window.
    """
    levels = []
    for level in range(len(MS_SSIM_WEIGHTS)):
        levels.append(_level(a))
        if level == len(MS_SSIM_WEIGHTS) - 1 or min(a.shape) // 2 < WINDOW:
            break
        a = _half(a)
    return tuple(levels)


def _level(a: np.ndarray) -> SsimLevel:
    mu = _blur(a)
    mu_sq = mu * mu
    # In float32, E[x^2] - mu^2 (squares up to 65025) loses ~1e-2 absolute on a variance, far
    # below C2 = 58.5, so SSIM moves by ~1e-5 (see the agreement test against skimage).
    return SsimLevel(a, mu, mu_sq, _blur(a * a) - mu_sq)


def _ssim_terms(
    ref: SsimLevel, b: np.ndarray, luminance: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-pixel luminance term (when asked) and contrast-structure term of SSIM."""
    mu_b = _blur(b)
    mu_b_sq = mu_b * mu_b
    var_b = _blur(b * b) - mu_b_sq
    cov = _blur(ref.image * b) - ref.mu * mu_b
    contrast_structure = (2 * cov + C2) / (ref.var + var_b + C2)
    if not luminance:  # MS-SSIM uses the luminance term at the coarsest scale only
        return None, contrast_structure
    return (2 * ref.mu * mu_b + C1) / (ref.mu_sq + mu_b_sq + C1), contrast_structure


def _crop_mean(m: np.ndarray) -> float:
    # skimage averages the SSIM map without the (window - 1) / 2 border the filter invented.
    pad = (WINDOW - 1) // 2
    if m.shape[0] > 2 * pad and m.shape[1] > 2 * pad:
        m = m[pad:-pad, pad:-pad]
    return float(m.mean(dtype=np.float64))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two luma images in [0, 255]: 1 = identical, lower = worse (can be < 0)."""
    lum, cs = _ssim_terms(_level(a), b)
    return _crop_mean(lum * cs)


def ssim_and_ms_ssim(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """SSIM and MS-SSIM of two luma images, sharing the full-resolution terms.

    MS-SSIM (Wang et al. 2003): contrast-structure at each of 5 scales, luminance at the
    coarsest, 2x2-average downsampling. Images too small for 5 scales (the coarsest must still
    hold the 11-pixel window, so < 176 px on the short side) use as many scales as fit with the
    weights of those scales renormalised; a 1-scale MS-SSIM is plain SSIM. Negative per-scale
    values are clipped to 1e-6 so the weighted product stays real.
    """
    return ssim_against(ssim_levels(a), b)


def ssim_against(levels: Sequence[SsimLevel], b: np.ndarray) -> tuple[float, float]:
    """``ssim_and_ms_ssim`` of the source frame behind ``levels`` and render luma ``b``."""
    values, weights = [], []
    ssim_value = 0.0
    for level, ref in enumerate(levels):
        last = level == len(levels) - 1
        if level > 0:
            b = _half(b)
        lum, cs = _ssim_terms(ref, b, luminance=level == 0 or last)
        if level == 0:
            ssim_value = _crop_mean(lum * cs)
            if last:
                return ssim_value, ssim_value
        value = (lum * cs).mean(dtype=np.float64) if last else cs.mean(dtype=np.float64)
        values.append(max(float(value), 1e-6))
        weights.append(MS_SSIM_WEIGHTS[level])
    total = sum(weights)
    ms = float(np.prod([v ** (w / total) for v, w in zip(values, weights, strict=True)]))
    return ssim_value, ms


def mse(a_rgb: np.ndarray, b_rgb: np.ndarray) -> float:
    """Mean squared error over the three RGB channels of uint8 frames: 0..65025, 0 = identical."""
    # OpenCV's sum of squared differences (float64) is numpy's integer sum to ~1e-15 relative,
    # in a third of the time (no int32 copies).
    return cv2.norm(a_rgb, b_rgb, cv2.NORM_L2SQR) / a_rgb.size


def psnr_from_mse(value: float) -> float:
    """PSNR in dB for 8-bit data, capped at ``PSNR_CAP_DB`` (reached by identical frames)."""
    if value <= 0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10.0 * np.log10(DATA_RANGE**2 / value)))


def gradient_magnitude(a: np.ndarray) -> np.ndarray:
    """GMSD's Prewitt gradient magnitude of luma after the 2x2 average and decimation."""
    if min(a.shape) >= 4:
        a = _half(a)
    gx = cv2.filter2D(a, -1, _PREWITT_X, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(a, -1, _PREWITT_X.T, borderType=cv2.BORDER_REPLICATE)
    # Not cv2.magnitude: its SIMD and scalar paths round differently, so the result depended on
    # the array's memory alignment. numpy's sqrt is correctly rounded everywhere.
    return np.sqrt(gx * gx + gy * gy)


def gmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Gradient Magnitude Similarity Deviation (Xue et al. 2014): 0 = identical, higher = worse.

    As the paper's code: 2x2 average and decimate, Prewitt gradients, c = 170 on [0, 255].
    """
    return gmsd_against(gradient_magnitude(a), b)


def gmsd_against(ga: np.ndarray, b: np.ndarray) -> float:
    """GMSD of the source frame whose ``gradient_magnitude`` is ``ga`` and render luma ``b``."""
    gb = gradient_magnitude(b)
    gms = (2 * ga * gb + GMSD_C) / (ga * ga + gb * gb + GMSD_C)
    return float(np.std(gms.astype(np.float64)))


def edge_map(a: np.ndarray) -> np.ndarray:
    """Canny edges (thresholds 100/200) of luma rounded to uint8, as a boolean map."""
    return cv2.Canny(np.clip(a + 0.5, 0, 255).astype(np.uint8), CANNY_LOW, CANNY_HIGH) > 0


def edge_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """F1 (Dice) overlap of Canny edge maps (thresholds 100/200): 1 = same edges, 0 = disjoint.

    Two frames without any edge count as 1 (nothing was lost).
    """
    return edge_overlap(edge_map(a), edge_map(b))


def edge_overlap(ea: np.ndarray, eb: np.ndarray) -> float:
    """F1 (Dice) overlap of two ``edge_map`` results; 1 when neither has an edge."""
    total = int(np.count_nonzero(ea)) + int(np.count_nonzero(eb))
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(ea & eb)) / total
