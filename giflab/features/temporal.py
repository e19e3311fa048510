"""Temporal features: how consecutive frames differ, over up to 16 evenly spread pairs (i, i+1).

Pairs are truly consecutive frames (what an encoder diffs), spread evenly over the animation.
Luma-based features read the area-averaged small luma (long side <= 256); exact-change features
read the nearest-neighbour RGB view, because GIF encoders exploit pixels that stay *exactly* equal.
A one-frame GIF has no pairs: it is perfectly static (motion 0, similarity 1, static 1).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from giflab.features.sampling import GifSample, shannon_bits

TEMPORAL_FEATURES = (
    "motion_intensity",
    "motion_smoothness",
    "static_region_ratio",
    "temporal_entropy",
    "frame_similarity",
    "inter_frame_mse_mean",
    "inter_frame_mse_std",
)

# SSIM constants of Wang et al. (2004) for 8-bit data, on a 7x7 uniform window (scikit-image's
# default window); computed here so tiny frames need no special-casing.
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2
_SSIM_WIN = 7
_DIFF_BINS = 511  # luma differences -255..255


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two float luma images (7x7 uniform window, reflected borders), -1..1."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    mu_a, mu_b = uniform_filter(a, _SSIM_WIN), uniform_filter(b, _SSIM_WIN)
    var_a = uniform_filter(a * a, _SSIM_WIN) - mu_a * mu_a
    var_b = uniform_filter(b * b, _SSIM_WIN) - mu_b * mu_b
    cov = uniform_filter(a * b, _SSIM_WIN) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mu_a * mu_a + mu_b * mu_b + _SSIM_C1) * (var_a + var_b + _SSIM_C2)
    )
    return float(np.clip(s.mean(), -1.0, 1.0))


def temporal_features(sample: GifSample) -> dict[str, float]:
    """The seven temporal features of ``sample`` (see the module docstring for the sampling)."""
    pairs = sample.frame_pairs()
    if not pairs:
        return {
            "motion_intensity": 0.0,
            "motion_smoothness": 1.0,
            "static_region_ratio": 1.0,
            "temporal_entropy": 0.0,
            "frame_similarity": 1.0,
            "inter_frame_mse_mean": 0.0,
            "inter_frame_mse_std": 0.0,
        }
    mad, mse, sims = [], [], []
    diff_hist = np.zeros(_DIFF_BINS, dtype=np.int64)
    static = None
    for a, b in pairs:
        d = b.luma_small.astype(np.float64) - a.luma_small.astype(np.float64)
        mad.append(np.abs(d).mean() / 255.0)
        diff_hist += np.bincount((np.rint(d).astype(np.int64) + 255).ravel(), minlength=_DIFF_BINS)
        sims.append(ssim(a.luma_small, b.luma_small))
        rgb_d = b.rgb_small.astype(np.float64) - a.rgb_small.astype(np.float64)
        mse.append((rgb_d * rgb_d).mean() / (255.0 * 255.0))
        same = np.all(a.rgb_small == b.rgb_small, axis=-1)
        static = same if static is None else static & same
    mad_arr = np.asarray(mad)
    mean_mad = float(mad_arr.mean())
    # Coefficient of variation of the per-pair motion: steady motion -> 1, bursts -> towards 0.
    smooth = 1.0 if mean_mad == 0.0 else 1.0 / (1.0 + float(mad_arr.std()) / mean_mad)
    return {
        "motion_intensity": mean_mad,
        "motion_smoothness": smooth,
        "static_region_ratio": float(np.count_nonzero(static)) / static.size,
        "temporal_entropy": shannon_bits(diff_hist) / float(np.log2(_DIFF_BINS)),
        "frame_similarity": float(np.mean(sims)),
        "inter_frame_mse_mean": float(np.mean(mse)),
        "inter_frame_mse_std": float(np.std(mse)),
    }
