"""Quality metrics of a render against its source, on time-aligned composited frames.

``compare_gifs`` decodes each file once (streaming), aligns frames by display time (see
``align``), flattens both on the same background, and computes every metric once per frame pair.
``describe_render`` counts what a render actually contains. See docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from giflab.frames import DEFAULT_LIMITS, flatten, iter_frames
from giflab.metrics.align import RENDER_FORMATS, aligned_pairs
from giflab.metrics.color import color_histogram, hellinger
from giflab.metrics.perceptual import ssimulacra2
from giflab.metrics.structural import (
    PSNR_CAP_DB,
    edge_similarity,
    gmsd,
    luma,
    mse,
    psnr_from_mse,
    ssim_and_ms_ssim,
)
from giflab.metrics.temporal import temporal_difference, transparency_error

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "METRIC_NAMES",
    "PSNR_CAP_DB",
    "compare_gifs",
    "describe_render",
]

METRIC_NAMES = (
    "ssim_mean",
    "ssim_min",
    "ssim_kept_mean",
    "ms_ssim",
    "psnr",
    "mse",
    "gmsd",
    "ssimulacra2",
    "color_hist_distance",
    "edge_similarity",
    "temporal_error",
    "transparency_error",
    "frames_compared",
)
# Source frames compared per render: evenly spaced (all of them in shorter GIFs).
DEFAULT_MAX_FRAMES = 24


def compare_gifs(
    original: Path | str,
    render: Path | str,
    kept_indices: Sequence[int] | None = None,
    *,
    max_frames: int | None = DEFAULT_MAX_FRAMES,
) -> dict[str, float | int]:
    """Every metric of ``render`` against ``original``: finite floats keyed by ``METRIC_NAMES``.

    Each compared source frame is paired with the render frame on screen at its start time.
    At most ``max_frames`` evenly spaced source frames are compared (all when None).
    ``kept_indices`` (the source frames the engine was asked to keep) selects the frames of
    ``ssim_kept_mean``; when None, kept frames are those a render frame starts with.
    """
    kept = None if kept_indices is None else set(kept_indices)
    per_frame: dict[str, list[float]] = {
        k: [] for k in ("ssim", "ms", "mse", "gmsd", "s2", "hist", "edge", "alpha", "temporal")
    }
    ssim_kept: list[float] = []
    prev = None
    for pair in aligned_pairs(Path(original), Path(render), max_frames):
        a_rgb, b_rgb = flatten(pair.source), flatten(pair.render)
        a_l, b_l = luma(a_rgb), luma(b_rgb)
        s_value, ms_value = ssim_and_ms_ssim(a_l, b_l)
        per_frame["ssim"].append(s_value)
        per_frame["ms"].append(ms_value)
        per_frame["mse"].append(mse(a_rgb, b_rgb))
        per_frame["gmsd"].append(gmsd(a_l, b_l))
        per_frame["s2"].append(ssimulacra2(a_rgb, b_rgb))
        per_frame["hist"].append(hellinger(color_histogram(a_rgb), color_histogram(b_rgb)))
        per_frame["edge"].append(edge_similarity(a_l, b_l))
        per_frame["alpha"].append(transparency_error(pair.source[..., 3], pair.render[..., 3]))
        if prev is not None:
            per_frame["temporal"].append(temporal_difference(prev[0], a_l, prev[1], b_l))
        prev = (a_l, b_l)
        is_kept = (
            pair.source_index in kept
            if kept is not None
            else pair.source_start_ms == pair.render_start_ms
        )
        if is_kept:
            ssim_kept.append(s_value)
    mean_mse = float(np.mean(per_frame["mse"]))
    result: dict[str, float | int] = {
        "ssim_mean": float(np.mean(per_frame["ssim"])),
        "ssim_min": float(np.min(per_frame["ssim"])),
        # The first frame is always kept and compared; an unusual K may still miss the sample.
        "ssim_kept_mean": float(np.mean(ssim_kept or per_frame["ssim"])),
        "ms_ssim": float(np.mean(per_frame["ms"])),
        # PSNR of the pooled MSE (the video convention), not a mean of per-frame PSNRs.
        "psnr": psnr_from_mse(mean_mse),
        "mse": mean_mse,
        "gmsd": float(np.mean(per_frame["gmsd"])),
        "ssimulacra2": float(np.mean(per_frame["s2"])),
        "color_hist_distance": float(np.mean(per_frame["hist"])),
        "edge_similarity": float(np.mean(per_frame["edge"])),
        "temporal_error": float(np.mean(per_frame["temporal"])) if per_frame["temporal"] else 0.0,
        "transparency_error": float(np.mean(per_frame["alpha"])),
        "frames_compared": len(per_frame["ssim"]),
    }
    return {k: result[k] for k in METRIC_NAMES}


def describe_render(path: Path | str) -> dict[str, int]:
    """What a render actually holds: ``render_frames`` and ``render_colors``.

    Colours are distinct RGB values over all composited frames, plus one if any pixel is fully
    transparent (the rule of ``giflab.meta.read_metadata``, which also works for WebP here).
    """
    seen = np.zeros(1 << 24, dtype=bool)
    transparent = False
    n = 0
    for frame in iter_frames(path, None, DEFAULT_LIMITS, RENDER_FORMATS):
        n += 1
        rgba = frame.rgba
        opaque = rgba[..., 3] > 0
        rgb = rgba[..., :3][opaque].astype(np.uint32)
        seen[(rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]] = True
        transparent = transparent or not bool(opaque.all())
    return {"render_frames": n, "render_colors": int(seen.sum()) + int(transparent)}
