"""Structural and error metrics on one aligned frame pair (grayscale luma, float64).

SSIM follows Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), C1 = (0.01 L)^2,
C2 = (0.03 L)^2, L = 255 — the same as scikit-image's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``, computed with OpenCV's separable blur.
"""

from __future__ import annotations

import cv2
import numpy as np

C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2
PSNR_CAP_DB = 100.0  # identical frames: MSE 0 would give infinite PSNR
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


_BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of uint8 RGB, as float32 in [0, 255] (float32 halves the blur cost)."""
    return rgb.astype(np.float32) @ _BT601


def _blur(x: np.ndarray) -> np.ndarray:
    # skimage's window: truncate 3.5 sigma -> radius 5 -> 11 taps; reflect borders like its scipy filter.
    return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)


def _ssim_terms(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu_a, mu_b = _blur(a), _blur(b)
    var_a = _blur(a * a) - mu_a * mu_a
    var_b = _blur(b * b) - mu_b * mu_b
    cov = _blur(a * b) - mu_a * mu_b
    luminance = (2 * mu_a * mu_b + C1) / (mu_a**2 + mu_b**2 + C1)
    contrast_structure = (2 * cov + C2) / (var_a + var_b + C2)
    return luminance, contrast_structure


def ssim_and_ms_ssim(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """SSIM and MS-SSIM together, sharing the full-resolution terms."""
    terms = _ssim_terms(a, b)
    return ssim(a, b, terms), ms_ssim(a, b, terms)


def ssim(a: np.ndarray, b: np.ndarray, terms=None) -> float:
    """Mean SSIM of two luma images, cropping the 5-pixel border like scikit-image."""
    lum, cs = terms if terms is not None else _ssim_terms(a, b)
    m = lum * cs
    pad = 5
    if m.shape[0] > 2 * pad and m.shape[1] > 2 * pad:
        m = m[pad:-pad, pad:-pad]
    return float(m.mean())


def ms_ssim(a: np.ndarray, b: np.ndarray, terms=None) -> float:
    """Multi-scale SSIM (Wang et al. 2003): as many of the 5 scales as the image allows.

    Scales stop when the image gets smaller than the 11-pixel window; the weights of the scales
    used are renormalised. A 1-scale MS-SSIM is plain SSIM.
    """
    weights, values = [], []
    for level, w in enumerate(MS_SSIM_WEIGHTS):
        lum, cs = terms if (level == 0 and terms is not None) else _ssim_terms(a, b)
        last = level == len(MS_SSIM_WEIGHTS) - 1 or min(a.shape) // 2 < 11
        values.append(max(float((lum * cs).mean() if last else cs.mean()), 1e-6))
        weights.append(w)
        if last:
            break
        a = cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, (b.shape[1] // 2, b.shape[0] // 2), interpolation=cv2.INTER_AREA)
    wsum = sum(weights)
    return float(np.prod([v ** (w / wsum) for v, w in zip(values, weights, strict=True)]))


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over RGB channels (0..65025)."""
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(d * d))


def psnr_from_mse(value: float) -> float:
    """PSNR in dB for 8-bit data, capped at ``PSNR_CAP_DB`` (identical frames)."""
    if value <= 0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / value)))


def gmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Gradient Magnitude Similarity Deviation (Xue et al. 2014); 0 = identical, higher = worse.

    Prewitt gradients on luma, c = 170 for the [0, 255] range, as in the paper's code.
    """
    kx = np.array([[1, 0, -1]] * 3, dtype=np.float32) / 3.0

    def grad(x):
        return np.hypot(cv2.filter2D(x, -1, kx), cv2.filter2D(x, -1, kx.T))

    ga, gb = grad(a), grad(b)
    gms = (2 * ga * gb + 170.0) / (ga * ga + gb * gb + 170.0)
    return float(gms.std())
