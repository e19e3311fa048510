"""Compressibility features: direct proxies for how many bytes a GIF's pixels will need.

``lossless_compression_ratio`` and ``transparency_ratio`` read the spatial frames;
``run_length`` and ``lzw_size_ratio`` (GifLab's own additions, see docs/features.md for the
evidence) are measured at full resolution while the frames are decoded: ``run_length`` on the
spatial frames, ``lzw_size_ratio`` on every frame (``giflab.features.lzw``).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from giflab.features.sampling import GifSample

COMPRESSIBILITY_FEATURES = (
    "lossless_compression_ratio",
    "transparency_ratio",
    "run_length",
    "lzw_size_ratio",
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
    ratio = math.log2(sample.lzw_bytes / sample.file_bytes)
    return float(min(LZW_RATIO_BOUND, max(-LZW_RATIO_BOUND, ratio)))


def compressibility_features(sample: GifSample) -> dict[str, float]:
    """The compressibility features of ``sample``, in ``COMPRESSIBILITY_FEATURES`` order."""
    return {
        "lossless_compression_ratio": lossless_compression_ratio(sample),
        "transparency_ratio": transparency_ratio(sample),
        "run_length": run_length(sample),
        "lzw_size_ratio": lzw_size_ratio(sample),
    }
