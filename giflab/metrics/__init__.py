"""Quality metrics of a render against its source, on time-aligned composited frames.

``compare_gifs`` aligns frames by display time (see ``align``), flattens both on the same
background, and computes every metric once per frame pair. The source side is decoded and
prepared once (``SourceFrames``), so a sweep pays for it once, not once per render;
``measure_render`` also counts what the render holds (``describe_render``) in the same single
decode of the render. See docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from giflab.frames import DEFAULT_LIMITS, flatten, iter_frames
from giflab.metrics.align import RENDER_FORMATS, fit_to, paired_with_render, sampled_frames
from giflab.metrics.color import ColorCounter, color_histogram, hellinger
from giflab.metrics.perceptual import ssimulacra2_against
from giflab.metrics.source import DEFAULT_CACHE_BYTES, SourceFrame, SourceFrames
from giflab.metrics.structural import (
    PSNR_CAP_DB,
    edge_map,
    edge_overlap,
    gmsd_against,
    luma,
    mse,
    psnr_from_mse,
    ssim_against,
)
from giflab.metrics.temporal import temporal_difference, visibility_error

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_MAX_FRAMES",
    "METRIC_NAMES",
    "PSNR_CAP_DB",
    "SourceFrames",
    "compare_gifs",
    "describe_render",
    "measure_render",
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
    original: Path | str | SourceFrames,
    render: Path | str,
    kept_indices: Sequence[int] | None = None,
    *,
    max_frames: int | None = DEFAULT_MAX_FRAMES,
) -> dict[str, float | int]:
    """Every metric of ``render`` against ``original``: finite floats keyed by ``METRIC_NAMES``.

    Each compared source frame is paired with the render frame on screen at its start time.
    At most ``max_frames`` evenly spaced source frames are compared (all when None); a prepared
    ``SourceFrames`` brings its own sample, and ``max_frames`` is then not used.
    ``kept_indices`` (the source frames the engine was asked to keep) selects the frames of
    ``ssim_kept_mean``; when None, kept frames are those a render frame starts with.
    """
    if isinstance(original, SourceFrames):
        return _compare(original.frames, Path(render), kept_indices, None)
    # One render: stream the source (one frame held), nothing worth keeping for a next render.
    frames = (
        SourceFrame.from_rgba(f.index, f.start_ms, f.rgba)
        for f in sampled_frames(Path(original), max_frames)
    )
    return _compare(frames, Path(render), kept_indices, None)


def measure_render(
    source: SourceFrames, render: Path | str, kept_indices: Sequence[int] | None = None
) -> tuple[dict[str, int], dict[str, float | int]]:
    """``describe_render(render)`` and ``compare_gifs(source, render, kept_indices)`` in one decode.

    The render is walked to its end (every frame is counted), so a broken tail fails here.
    """
    counter = ColorCounter()
    metrics = _compare(source.frames, Path(render), kept_indices, counter)
    return {"render_frames": counter.frames, "render_colors": counter.colors}, metrics


def _compare(
    frames: Iterable[SourceFrame],
    render: Path,
    kept_indices: Sequence[int] | None,
    counter: ColorCounter | None,
) -> dict[str, float | int]:
    kept = None if kept_indices is None else set(kept_indices)
    per_frame: dict[str, list[float]] = {
        k: [] for k in ("ssim", "ms", "mse", "gmsd", "s2", "hist", "edge", "alpha", "temporal")
    }
    ssim_kept: list[float] = []
    prev = None
    every = None if counter is None else counter.add
    for src, rendered in paired_with_render(frames, render, DEFAULT_LIMITS, every):
        b_rgba = fit_to(rendered.rgba, src.rgba.shape)
        b_l, values = _pair_metrics(src, b_rgba)
        for k, v in values.items():
            per_frame[k].append(v)
        if prev is not None:
            per_frame["temporal"].append(temporal_difference(prev[0], src.luma, prev[1], b_l))
        prev = (src.luma, b_l)
        is_kept = src.index in kept if kept is not None else src.start_ms == rendered.start_ms
        if is_kept:
            ssim_kept.append(values["ssim"])
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


def _pair_metrics(src: SourceFrame, b_rgba: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Render luma and every per-pair metric of one aligned pair (source side prepared)."""
    b_rgb = flatten(b_rgba)
    b_l = luma(b_rgb)
    s_value, ms_value = ssim_against(src.ssim_levels(), b_l)
    values = {
        "ssim": s_value,
        "ms": ms_value,
        "mse": mse(src.rgb, b_rgb),
        "gmsd": gmsd_against(src.gradient, b_l),
        "s2": ssimulacra2_against(src.ssimulacra2_scales(), b_rgb),
        "hist": hellinger(src.histogram, color_histogram(b_rgb)),
        "edge": edge_overlap(src.edges, edge_map(b_l)),
        "alpha": visibility_error(src.visible, b_rgba[..., 3] > 0),
    }
    return b_l, values


def describe_render(path: Path | str) -> dict[str, int]:
    """What a render actually holds: ``render_frames`` and ``render_colors``.

    Colours are distinct RGB values over all composited frames, plus one if any pixel is fully
    transparent (the rule of ``giflab.meta.read_metadata``, which also works for WebP here).
    """
    counter = ColorCounter()
    for frame in iter_frames(path, None, DEFAULT_LIMITS, RENDER_FORMATS):
        counter.add(frame.rgba)
    return {"render_frames": counter.frames, "render_colors": counter.colors}
