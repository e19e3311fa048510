"""Quality metrics of a render against its source, on time-aligned composited frames.

``compare_gifs`` decodes each GIF once (streaming), aligns frames by display time, composites
both on the same background, and computes every metric once per frame pair. See docs/metrics.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from giflab.frames import flatten
from giflab.metrics.align import aligned_pairs
from giflab.metrics.appearance import (
    color_histogram,
    edge_f1,
    hellinger,
    temporal_difference,
    transparency_error,
)
from giflab.metrics.structural import gmsd, luma, mse, psnr_from_mse, ssim_and_ms_ssim

METRIC_NAMES = (
    "ssim_mean",
    "ssim_min",
    "ms_ssim",
    "psnr",
    "mse",
    "gmsd",
    "color_hist_distance",
    "edge_similarity",
    "temporal_error",
    "transparency_error",
    "frames_compared",
)
# Frames compared per render: evenly spaced source frames (all of them in shorter GIFs).
DEFAULT_MAX_FRAMES = 24


def compare_gifs(
    original: Path | str, render: Path | str, *, max_frames: int | None = DEFAULT_MAX_FRAMES
) -> dict[str, float]:
    """Every metric of ``render`` against ``original`` (finite floats; keys ``METRIC_NAMES``).

    At most ``max_frames`` evenly spaced source frames are compared (all when None).
    """
    ssims, ms, mses, gms, hist, edges, temporal, alpha = [], [], [], [], [], [], [], []
    prev = None
    for pair in aligned_pairs(Path(original), Path(render), max_frames):
        a_rgb, b_rgb = flatten(pair.source), flatten(pair.render)
        a_l, b_l = luma(a_rgb), luma(b_rgb)
        s_value, ms_value = ssim_and_ms_ssim(a_l, b_l)
        ssims.append(s_value)
        ms.append(ms_value)
        mses.append(mse(a_rgb, b_rgb))
        gms.append(gmsd(a_l, b_l))
        hist.append(hellinger(color_histogram(a_rgb), color_histogram(b_rgb)))
        edges.append(edge_f1(a_l, b_l))
        alpha.append(transparency_error(pair.source[..., 3], pair.render[..., 3]))
        if prev is not None:
            temporal.append(temporal_difference(prev[0], a_l, prev[1], b_l))
        prev = (a_l, b_l)
    mean_mse = float(np.mean(mses))
    return {
        "ssim_mean": float(np.mean(ssims)),
        "ssim_min": float(np.min(ssims)),
        "ms_ssim": float(np.mean(ms)),
        "psnr": psnr_from_mse(mean_mse),
        "mse": mean_mse,
        "gmsd": float(np.mean(gms)),
        "color_hist_distance": float(np.mean(hist)),
        "edge_similarity": float(np.mean(edges)),
        "temporal_error": float(np.mean(temporal)) if temporal else 0.0,
        "transparency_error": float(np.mean(alpha)),
        "frames_compared": float(len(ssims)),
    }
