"""Structural, error and edge metrics on one aligned frame pair (luma as float32 in [0, 255]).

SSIM follows Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), C1 = (0.01 L)^2,
C2 = (0.03 L)^2, L = 255 — the same as scikit-image's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``, computed with OpenCV's separable blur
(benchmarks/bench_ssim.py checks the agreement).
"""

from __future__ import annotations

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


def _ssim_terms(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel luminance term and contrast-structure term of SSIM."""
    mu_a, mu_b = _blur(a), _blur(b)
    # In float32, E[x^2] - mu^2 (squares up to 65025) loses ~1e-2 absolute on a variance, far
    # below C2 = 58.5, so SSIM moves by ~1e-5 (see the agreement test against skimage).
    var_a = _blur(a * a) - mu_a * mu_a
    var_b = _blur(b * b) - mu_b * mu_b
    cov = _blur(a * b) - mu_a * mu_b
    luminance = (2 * mu_a * mu_b + C1) / (mu_a * mu_a + mu_b * mu_b + C1)
    contrast_structure = (2 * cov + C2) / (var_a + var_b + C2)
    return luminance, contrast_structure


def _crop_mean(m: np.ndarray) -> float:
    # skimage averages the SSIM map without the (window - 1) / 2 border the filter invented.
    pad = (WINDOW - 1) // 2
    if m.shape[0] > 2 * pad and m.shape[1] > 2 * pad:
        m = m[pad:-pad, pad:-pad]
    return float(m.mean(dtype=np.float64))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two luma images in [0, 255]: 1 = identical, lower = worse (can be < 0)."""
    lum, cs = _ssim_terms(a, b)
    return _crop_mean(lum * cs)


def ssim_and_ms_ssim(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """SSIM and MS-SSIM of two luma images, sharing the full-resolution terms.

    MS-SSIM (Wang et al. 2003): contrast-structure at each of 5 scales, luminance at the
    coarsest, 2x2-average downsampling. Images too small for 5 scales (the coarsest must still
    hold the 11-pixel window, so < 176 px on the short side) use as many scales as fit with the
    weights of those scales renormalised; a 1-scale MS-SSIM is plain SSIM. Negative per-scale
    values are clipped to 1e-6 so the weighted product stays real.
    """
    terms = _ssim_terms(a, b)
    ssim_value = _crop_mean(terms[0] * terms[1])
    values, weights = [], []
    for level, weight in enumerate(MS_SSIM_WEIGHTS):
        lum, cs = terms if level == 0 else _ssim_terms(a, b)
        last = level == len(MS_SSIM_WEIGHTS) - 1 or min(a.shape) // 2 < WINDOW
        if level == 0 and last:
            return ssim_value, ssim_value
        value = (lum * cs).mean(dtype=np.float64) if last else cs.mean(dtype=np.float64)
        values.append(max(float(value), 1e-6))
        weights.append(weight)
        if last:
            break
        a, b = _half(a), _half(b)
    total = sum(weights)
    ms = float(np.prod([v ** (w / total) for v, w in zip(values, weights, strict=True)]))
    return ssim_value, ms


def mse(a_rgb: np.ndarray, b_rgb: np.ndarray) -> float:
    """Mean squared error over the three RGB channels of uint8 frames: 0..65025, 0 = identical."""
    d = a_rgb.astype(np.int32) - b_rgb.astype(np.int32)
    return float(np.mean(np.square(d), dtype=np.float64))


def psnr_from_mse(value: float) -> float:
    """PSNR in dB for 8-bit data, capped at ``PSNR_CAP_DB`` (reached by identical frames)."""
    if value <= 0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10.0 * np.log10(DATA_RANGE**2 / value)))


def gmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Gradient Magnitude Similarity Deviation (Xue et al. 2014): 0 = identical, higher = worse.

    As the paper's code: 2x2 average and decimate, Prewitt gradients, c = 170 on [0, 255].
    """
    if min(a.shape) >= 4:
        a, b = _half(a), _half(b)

    def magnitude(x: np.ndarray) -> np.ndarray:
        gx = cv2.filter2D(x, -1, _PREWITT_X, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.filter2D(x, -1, _PREWITT_X.T, borderType=cv2.BORDER_REPLICATE)
        return cv2.magnitude(gx, gy)

    ga, gb = magnitude(a), magnitude(b)
    gms = (2 * ga * gb + GMSD_C) / (ga * ga + gb * gb + GMSD_C)
    return float(np.std(gms.astype(np.float64)))


def edge_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """F1 (Dice) overlap of Canny edge maps (thresholds 100/200): 1 = same edges, 0 = disjoint.

    Two frames without any edge count as 1 (nothing was lost).
    """
    ea = cv2.Canny(np.clip(a + 0.5, 0, 255).astype(np.uint8), CANNY_LOW, CANNY_HIGH) > 0
    eb = cv2.Canny(np.clip(b + 0.5, 0, 255).astype(np.uint8), CANNY_LOW, CANNY_HIGH) > 0
    total = int(ea.sum()) + int(eb.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(ea, eb).sum()) / total
