"""Compressibility features: direct proxies for how many bytes a GIF's pixels will need.

``lossless_compression_ratio`` and ``transparency_ratio`` read the spatial frames;
``run_length``, ``lzw_size_ratio``, the three ``lzw_lossy_ratio_<L>``, the twelve
``lzw_colors_ratio_<C>_<L>`` and the fifteen ``ffmpeg_colors_ratio_<C>_<L>`` (GifLab's own additions, see docs/features.md for the evidence) are
measured at full resolution while the frames are decoded: ``run_length`` on the spatial frames,
``lzw_size_ratio`` on every frame (``giflab.features.lzw``), the lossy ratios on every frame or,
past ``LOSSY_PROBE_PIXELS``, on every k-th (``giflab.features.lossy_lzw``), the colour ratios
on every frame again once the whole GIF's histogram is known (``giflab.features.quantize``),
the ffmpeg ratios on that same second pass (``giflab.features.ffmpeg_probe``).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from giflab.features.sampling import (
    COLOR_PROBE_COLORS,
    FFMPEG_PROBES,
    FUZZ_PROBE_LEVELS,
    GIFSKI_PROBE_LEVELS,
    IMAGEMAGICK_PROBES,
    LOSSY_PROBE_LEVELS,
    GifSample,
)

# The (colours, lossy level) of each ``lzw_colors_ratio_<C>_<L>``, colour-major; level 0: lossless.
COLOR_PROBES = tuple((c, lv) for c in COLOR_PROBE_COLORS for lv in (0, *LOSSY_PROBE_LEVELS))
# The ffmpeg probes' features in the order they were added: lossy 0, 60 and 120 (version 5), then
# 80 and 100 (version 11) after every feature before them, so that none of those moves.
FFMPEG_LATE_LEVELS = (80, 100)
FFMPEG_FIRST = tuple(key for key in FFMPEG_PROBES if key[1] not in FFMPEG_LATE_LEVELS)
FFMPEG_LATE = tuple(key for key in FFMPEG_PROBES if key[1] in FFMPEG_LATE_LEVELS)
# The gifski probes' likewise: lossy 0, 20, 60, 120 (version 7), then 40, 80, 100 (version 12).
GIFSKI_LATE = (40, 80, 100)
GIFSKI_FIRST = tuple(level for level in GIFSKI_PROBE_LEVELS if level not in GIFSKI_LATE)
COMPRESSIBILITY_FEATURES = (
    "lossless_compression_ratio",
    "transparency_ratio",
    "run_length",
    "lzw_size_ratio",
    *(f"lzw_lossy_ratio_{level}" for level in LOSSY_PROBE_LEVELS),
    *(f"lzw_colors_ratio_{colors}_{level}" for colors, level in COLOR_PROBES),
    *(f"ffmpeg_colors_ratio_{colors}_{level}" for colors, level in FFMPEG_FIRST),
    *(f"imagemagick_fuzz_ratio_{level}" for level in FUZZ_PROBE_LEVELS),
    *(f"gifski_quality_ratio_{level}" for level in GIFSKI_FIRST),
    *(f"imagemagick_colors_ratio_{colors}_{level}" for colors, level in IMAGEMAGICK_PROBES),
    *(f"ffmpeg_colors_ratio_{colors}_{level}" for colors, level in FFMPEG_LATE),
    *(f"gifski_quality_ratio_{level}" for level in GIFSKI_LATE),
)
LZW_RATIO_BOUND = 16.0  # log2 bounds of lzw_size_ratio: 1/65536 .. 65536 times the file

ZLIB_LEVEL = 6  # zlib's default: the ratio is a proxy, not a contest, and level 9 is ~3x slower


def lossless_compression_ratio(sample: GifSample) -> float:
    """zlib(level 6) bytes / raw bytes of the spatial frames' RGB views, row-major, concatenated.

    Lower means more redundant pixels (flat areas, repeats); ~1 is incompressible noise.
    """
    raw = b"".join(f.rgb_small.tobytes() for f in sample.spatial_frames())
    if not raw:
        return 0.0
    # Capped at 1: zlib's fixed overhead makes a few-pixel GIF "expand", which says nothing.
    return min(1.0, len(zlib.compress(raw, ZLIB_LEVEL)) / len(raw))


def transparency_ratio(sample: GifSample) -> float:
    """Mean over the spatial frames of the fraction of fully transparent (alpha 0) pixels."""
    return float(np.mean([f.transparent for f in sample.spatial_frames()], dtype=np.float64))


def run_length(sample: GifSample) -> float:
    """Mean over the spatial frames of ``horizontal_run_length`` (full resolution), 0..1.

    LZW codes long runs of one palette index in few codes, so long runs mean small GIFs; this is
    measured on exact colours at full size, which the 256 px views used elsewhere cannot see.
    """
    return float(np.mean([f.run_length for f in sample.spatial_frames()], dtype=np.float64))


def lzw_size_ratio(sample: GifSample) -> float:
    """log2(estimated bytes of the GIF re-encoded losslessly / bytes of the file), in [-16, 16].

    Negative when the file carries more than its pixels need (unoptimised frames, unused
    palette entries, padding); about 0 for a file that is already tightly encoded.
    """
    if sample.file_bytes <= 0 or sample.lzw_bytes <= 0:
        return 0.0
    return _bounded_log2(sample.lzw_bytes / sample.file_bytes)


def _bounded_log2(ratio: float) -> float:
    """log2(ratio) clipped to +-LZW_RATIO_BOUND (the lower bound for a ratio of 0)."""
    log_ratio = math.log2(ratio) if ratio > 0 else -LZW_RATIO_BOUND
    return float(min(LZW_RATIO_BOUND, max(-LZW_RATIO_BOUND, log_ratio)))


def _log2_ratios(prefix: str, ratios: dict, keys) -> dict[str, float]:
    """``{<prefix>_<key>: bounded log2(ratios[key])}`` for each key (an int or a (C, L) pair,
    named ``C_L``); a key ``ratios`` lacks (no frame decoded) gets 0."""
    return {
        f"{prefix}_{'_'.join(map(str, key)) if isinstance(key, tuple) else key}": _bounded_log2(
            ratios.get(key, 1.0)
        )
        for key in keys
    }


def lzw_lossy_ratios(sample: GifSample) -> dict[str, float]:
    """``lzw_lossy_ratio_<L>``: log2(estimated bytes of the GIF re-encoded under gifsicle's
    ``--lossy=L`` / estimated bytes re-encoded losslessly), in [-16, 16]; about 0 for a GIF
    whose colours lossy LZW cannot merge, very negative for smooth gradients and noise-free
    video. A GIF that decoded no frame gets 0."""
    return _log2_ratios("lzw_lossy_ratio", sample.lossy_ratios, LOSSY_PROBE_LEVELS)


def lzw_colors_ratios(sample: GifSample) -> dict[str, float]:
    """``lzw_colors_ratio_<C>_<L>``: log2(estimated bytes of the GIF re-encoded under gifsicle's
    ``--colors C`` and ``--lossy=L`` (L = 0: lossless) / estimated bytes re-encoded losslessly
    at full colour), in [-16, 16]. A GIF ``--colors C`` leaves alone (no more than C colours)
    has its full-colour values (0 and the ``lzw_lossy_ratio_<L>``); one that decoded no frame
    gets 0."""
    return _log2_ratios("lzw_colors_ratio", sample.color_ratios, COLOR_PROBES)


def ffmpeg_colors_ratios(sample: GifSample) -> dict[str, float]:
    """``ffmpeg_colors_ratio_<C>_<L>``: log2(estimated bytes of GifLab's ffmpeg render at
    ``colors=C`` and ``lossy=L`` (posterised, median-cut palette, Sierra-2-4A dithering,
    ``giflab.features.ffmpeg_probe``) / estimated bytes re-encoded losslessly at full colour),
    in [-16, 16]. Above 0 when dithering noise costs more than the palette saves; a GIF that
    decoded no frame gets 0."""
    return _log2_ratios("ffmpeg_colors_ratio", sample.ffmpeg_ratios, FFMPEG_PROBES)


def imagemagick_fuzz_ratios(sample: GifSample) -> dict[str, float]:
    """``imagemagick_fuzz_ratio_<L>``: log2(estimated bytes of GifLab's ImageMagick engine's file
    at lossy L (``-fuzz L/6 % -layers Optimize``: pixels within the fuzz of the screen left
    transparent, a local table per frame; ``giflab.features.fuzz_probe``; L = 0 without fuzz) /
    estimated lossless GIF bytes), in [-16, 16]. Level 0 is the engine's layout against
    gifsicle's; the levels above it fall below it as the fuzz drops fades and noise. A GIF that
    decoded no frame gets 0."""
    return _log2_ratios("imagemagick_fuzz_ratio", sample.fuzz_ratios, FUZZ_PROBE_LEVELS)


def gifski_quality_ratios(sample: GifSample) -> dict[str, float]:
    """``gifski_quality_ratio_<L>``: log2(estimated bytes of GifLab's gifski engine's file at
    lossy L (``--quality 100 - 0.75 L``: its motion threshold, libimagequant palettes per frame,
    trimmed frames with local tables, gifsicle's lossy LZW; ``giflab.features.gifski_probe``) /
    estimated lossless GIF bytes), in [-16, 16]. A GIF that decoded no frame gets 0."""
    return _log2_ratios("gifski_quality_ratio", sample.gifski_ratios, GIFSKI_PROBE_LEVELS)


def imagemagick_colors_ratios(sample: GifSample) -> dict[str, float]:
    """``imagemagick_colors_ratio_<C>_<L>``: log2(estimated bytes of GifLab's ImageMagick
    engine's file at lossy L and ``-colors C`` (its ``-fuzz`` and ``-layers Optimize`` as in
    ``imagemagick_fuzz_ratio_<L>``, then the optimiser's remap to one 256-colour palette and an
    octree palette per frame with Floyd–Steinberg dithering;
    ``giflab.features.imagemagick_colors``) / estimated lossless GIF bytes), in [-16, 16]. A GIF
    that decoded no frame gets 0."""
    return _log2_ratios("imagemagick_colors_ratio", sample.imagemagick_ratios, IMAGEMAGICK_PROBES)


def compressibility_features(sample: GifSample) -> dict[str, float]:
    """The compressibility features of ``sample``, in ``COMPRESSIBILITY_FEATURES`` order."""
    return {
        "lossless_compression_ratio": lossless_compression_ratio(sample),
        "transparency_ratio": transparency_ratio(sample),
        "run_length": run_length(sample),
        "lzw_size_ratio": lzw_size_ratio(sample),
        **lzw_lossy_ratios(sample),
        **lzw_colors_ratios(sample),
        **ffmpeg_colors_ratios(sample),
        **imagemagick_fuzz_ratios(sample),
        **gifski_quality_ratios(sample),
        **imagemagick_colors_ratios(sample),
    }
