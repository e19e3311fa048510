"""Which frames the features look at, and the fixed-size views of them every family shares.

A GIF is decoded once (``giflab.frames.iter_frames``) and each sampled frame is reduced, as it
arrives, to the few small arrays the feature families need; full-resolution frames are not kept
except for the handful CLIP sees. Every rule here is integer arithmetic or a fixed OpenCV filter,
so the same file always gives the same arrays.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from giflab.features.ffmpeg_probe import FfmpegProbe
from giflab.features.fuzz_probe import FuzzProbe, copied_metadata_bytes
from giflab.features.gifski_probe import GifskiProbe
from giflab.features.lzw import DeltaLzwEstimate, kept_metadata
from giflab.features.palettegen import FullHistogram
from giflab.features.quantize import ColorProbe, StoredHistogram
from giflab.frames import DEFAULT_LIMITS, DecodeLimits, flatten, frame_count, iter_frames
from giflab.gif_blocks import has_loop

# gifsicle --lossy levels the lossy probes count (``lzw_lossy_ratio_<L>``).
LOSSY_PROBE_LEVELS = (20, 60, 120)
# Pixels probed at each stride before it doubles (``DeltaLzwEstimate``): a GIF of up to this
# many stored pixels is probed whole, a long one a few times this.
LOSSY_PROBE_PIXELS = 2_000_000
# gifsicle --colors counts the colour probes reduce to (``lzw_colors_ratio_<C>_<L>``, at lossless
# and every ``LOSSY_PROBE_LEVELS``; ``giflab.features.quantize.ColorProbe``). 256 changes only a
# GIF of more colours, which gifsicle's engine reduces to one palette.
COLOR_PROBE_COLORS = (256, 64, 16)
# Pixels each colour count's lossy probes take at each stride (as ``LOSSY_PROBE_PIXELS``).
COLOR_PROBE_PIXELS = 1_000_000
# The (colours, lossy) settings of GifLab's ffmpeg engine the ffmpeg probes estimate
# (``ffmpeg_colors_ratio_<C>_<L>``; ``giflab.features.ffmpeg_probe``), colour-major.
FFMPEG_PROBE_COLORS = (256, 64, 16)
# 80 and 100 since version 11: the engine posterises by whole bits (L // 20 of them), so its
# sizes step between levels rather than falling in a line from 60 to 120.
FFMPEG_PROBE_LEVELS = (0, 60, 80, 100, 120)
FFMPEG_PROBES = tuple((c, lv) for c in FFMPEG_PROBE_COLORS for lv in FFMPEG_PROBE_LEVELS)
# Pixels each ffmpeg setting dithers at each stride before it doubles.
FFMPEG_PROBE_PIXELS = 4_000_000
# Lossy levels of GifLab's ImageMagick engine (-fuzz L/6 %) the fuzz probes estimate
# (``imagemagick_fuzz_ratio_<L>``; ``giflab.features.fuzz_probe``), and the changed pixels whose
# images they count at each stride before it doubles.
FUZZ_PROBE_LEVELS = (0, 20, 60, 120)
FUZZ_PROBE_PIXELS = 2_000_000
# Colour counts of the ImageMagick engine's -colors the same probe also estimates at those
# levels (``imagemagick_colors_ratio_<C>_<L>``; ``giflab.features.imagemagick_colors``).
FUZZ_PROBE_COLORS = (256, 64, 16)
# The area of the GIF's changed boxes whose stored images the colour estimates quantise at each
# stride before it doubles.
FUZZ_COLORS_PIXELS = 2_000_000
IMAGEMAGICK_PROBES = tuple((c, lv) for c in FUZZ_PROBE_COLORS for lv in FUZZ_PROBE_LEVELS)
# Lossy levels of GifLab's gifski engine (--quality 100 - 0.75 L) the gifski probes estimate
# (``gifski_quality_ratio_<L>``; ``giflab.features.gifski_probe``), and the changed pixels whose
# frames they quantise and count at each stride before it doubles.
# 40, 80 and 100 since version 12: gifski's knobs follow --quality along curves that a line
# between the other levels missed by up to 5 % (natural cross-validated medians at 40 and 80).
GIFSKI_PROBE_LEVELS = (0, 20, 40, 60, 80, 100, 120)
# 8 M since version 17: a skipped frame leaves its exact colours on the probe's screens, so the
# frame after it redraws too little; at 2 M long terminal recordings came out 16-26 % small.
GIFSKI_PROBE_PIXELS = 8_000_000
SPATIAL_FRAMES = 8  # frames the spatial and compressibility features average over
TEMPORAL_PAIRS = 16  # consecutive (i, i + 1) pairs the temporal features average over
CLIP_FRAMES = 4  # frames CLIP scores in one batch
SMALL_SIDE = 256  # long side of the "small" views (colour, luma, temporal)
DETAIL_SIDE = 512  # long side of the "detail" luma (edges, text, gradients, DCT)

# ITU-R BT.601 luma weights, the ones JPEG and most GIF tools use.
BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def evenly_spaced(n: int, k: int) -> list[int]:
    """Up to ``k`` indices spread over ``0..n-1``, first and last included: ``i*(n-1)//(k-1)``."""
    if n <= 0 or k <= 0:
        return []
    if n <= k:
        return list(range(n))
    if k == 1:
        return [0]
    return [i * (n - 1) // (k - 1) for i in range(k)]


def pair_starts(n: int, k: int = TEMPORAL_PAIRS) -> list[int]:
    """Start indices ``i`` of up to ``k`` consecutive pairs ``(i, i+1)``, evenly spread."""
    return evenly_spaced(n - 1, k)


def fit_long_side(h: int, w: int, max_side: int) -> tuple[int, int]:
    """(h, w) shrunk (never enlarged) so the long side is at most ``max_side``, rounded."""
    long = max(h, w)
    if long <= max_side:
        return h, w
    return max(1, (h * max_side + long // 2) // long), max(1, (w * max_side + long // 2) // long)


def area_resize(img: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale with ``cv2.INTER_AREA`` (pixel-area averaging) to a long side <= ``max_side``."""
    h, w = img.shape[:2]
    nh, nw = fit_long_side(h, w, max_side)
    if (nh, nw) == (h, w):
        return img
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)


def stride_for(h: int, w: int, max_side: int = SMALL_SIDE) -> int:
    """Subsampling step so a nearest-neighbour view has a long side <= ``max_side``."""
    return max(1, -(-max(h, w) // max_side))


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in [0, 255] as float32, from uint8 RGB."""
    return rgb.astype(np.float32) @ BT601


@contextlib.contextmanager
def single_threaded_cv2() -> Iterator[None]:
    """Run OpenCV on one thread (restored afterwards): workers are parallel processes already."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


@dataclass
class SampledFrame:
    """The views of one decoded frame that the feature families read.

    ``rgb_small`` is a nearest-neighbour subsample (exact GIF colours, none invented);
    ``luma_small`` / ``luma_detail`` are area-averaged luma at long side <= 256 / <= 512;
    ``transparent`` is the fraction of fully transparent pixels at full resolution;
    ``run_length`` is ``horizontal_run_length`` of the full-resolution frame;
    ``rgb_full`` is kept only for frames CLIP scores.
    """

    index: int
    rgb_small: np.ndarray
    luma_small: np.ndarray
    luma_detail: np.ndarray
    transparent: float
    run_length: float
    rgb_full: np.ndarray | None = None


@dataclass
class GifSample:
    """All sampled frames of one GIF, plus the index sets each family uses."""

    path: Path
    n_frames: int
    width: int
    height: int
    spatial: list[int]
    pairs: list[int]
    clip: list[int]
    frames: dict[int, SampledFrame] = field(default_factory=dict)
    lzw_bytes: float = 0.0  # ``DeltaLzwEstimate`` of the whole GIF, every frame at full size
    # ``DeltaLzwEstimate.lossy_ratios``: estimated bytes under gifsicle --lossy=L / lossless
    lossy_ratios: dict[int, float] = field(default_factory=dict)
    # ``ColorProbe.ratios``: estimated bytes under gifsicle --colors C [--lossy=L] / lossless,
    # keyed (C, L) with L = 0 for lossless; a palette --colors keeps has the full-colour ratios
    color_ratios: dict[tuple[int, int], float] = field(default_factory=dict)
    # ``FfmpegProbe.ratios``: estimated bytes of the ffmpeg engine's render at (C, L) / lossless
    ffmpeg_ratios: dict[tuple[int, int], float] = field(default_factory=dict)
    # ``FuzzProbe.ratios``: estimated bytes of the ImageMagick engine's file at lossy L's fuzz /
    # lossless (L = 0: no fuzz, the engine's layout), keyed L
    fuzz_ratios: dict[int, float] = field(default_factory=dict)
    # ``FuzzProbe.color_ratios``: estimated bytes of the ImageMagick engine's file at lossy L's
    # fuzz and -colors C / lossless, keyed (C, L)
    imagemagick_ratios: dict[tuple[int, int], float] = field(default_factory=dict)
    # ``GifskiProbe.ratios``: estimated bytes of the gifski engine's file at lossy L / lossless
    gifski_ratios: dict[int, float] = field(default_factory=dict)
    file_bytes: int = 0

    def spatial_frames(self) -> list[SampledFrame]:
        """The frames spatial and compressibility features average over, in index order."""
        return [self.frames[i] for i in self.spatial]

    def frame_pairs(self) -> list[tuple[SampledFrame, SampledFrame]]:
        """Consecutive frame pairs for temporal features (empty for a one-frame GIF)."""
        return [(self.frames[i], self.frames[i + 1]) for i in self.pairs]

    def clip_images(self) -> list[np.ndarray]:
        """Full-resolution flattened RGB of the frames CLIP scores."""
        return [self.frames[i].rgb_full for i in self.clip]


def sample_gif(
    path: Path | str, limits: DecodeLimits = DEFAULT_LIMITS, with_clip: bool = True
) -> GifSample:
    """Decode ``path`` once and reduce every sampled frame to its ``SampledFrame`` views; every
    frame, sampled or not, goes through the lossless-size estimate (``giflab.features.lzw``)."""
    path = Path(path)
    n = frame_count(path, limits)
    spatial = evenly_spaced(n, SPATIAL_FRAMES)
    pairs = pair_starts(n)
    clip = evenly_spaced(n, CLIP_FRAMES) if with_clip else []
    wanted = set(spatial) | set(pairs) | {i + 1 for i in pairs} | set(clip)
    clip_set = set(clip)
    sample = GifSample(path, n, 0, 0, spatial, pairs, clip, file_bytes=path.stat().st_size)
    data = path.read_bytes()  # what the engines copy besides the pixels
    kept = kept_metadata(data)
    lzw = DeltaLzwEstimate(LOSSY_PROBE_LEVELS, lossy_budget=LOSSY_PROBE_PIXELS, kept=kept)
    histogram = StoredHistogram()  # what gifsicle --colors picks its palette from
    full_histogram = FullHistogram()  # what ffmpeg's palettegen picks its palette from
    # ImageMagick's -fuzz, and its -colors after them
    fuzz = FuzzProbe(
        FUZZ_PROBE_LEVELS,
        budget=FUZZ_PROBE_PIXELS,
        colors=FUZZ_PROBE_COLORS,
        colors_budget=FUZZ_COLORS_PIXELS,
        copied_bytes=copied_metadata_bytes(data),
        loops=has_loop(data),
    )
    # gifski's --quality
    gifski = GifskiProbe(GIFSKI_PROBE_LEVELS, budget=GIFSKI_PROBE_PIXELS, loops=has_loop(data))
    with single_threaded_cv2():
        for frame in iter_frames(path, limits=limits):
            sample.height, sample.width = frame.rgba.shape[:2]
            words = rgba_words(frame.rgba)
            lzw.add(words)
            histogram.add(words, frame.stored, frame.stored_transparency)
            full_histogram.add(words)
            fuzz.add(frame.rgba, words)
            gifski.add(frame.rgba, words)
            if frame.index in wanted:
                sample.frames[frame.index] = reduce_frame(
                    frame.index, frame.rgba, keep_full=frame.index in clip_set
                )
    sample.lzw_bytes = lzw.total_bytes()
    sample.lossy_ratios = lzw.lossy_ratios()
    sample.fuzz_ratios = fuzz.ratios(lzw.total_bytes())
    sample.imagemagick_ratios = fuzz.color_ratios(lzw.total_bytes())
    sample.gifski_ratios = gifski.ratios(lzw.total_bytes())
    # The colour and ffmpeg probes need the whole GIF's histogram first: a second pass
    # (decoding is ~10 % of the features' time).
    counts, transparency = histogram.counts, histogram.transparency
    if not histogram.complete:  # frames without their stored rectangle: the -O3 layout's
        counts, transparency = lzw.colour_counts(), lzw.uses_transparency()
    colors = ColorProbe(
        counts,
        transparency,
        COLOR_PROBE_COLORS,
        LOSSY_PROBE_LEVELS,
        lossy_budget=COLOR_PROBE_PIXELS,
        kept=kept,
    )
    ffmpeg = FfmpegProbe(*full_histogram.counts(), FFMPEG_PROBES, budget=FFMPEG_PROBE_PIXELS)
    for frame in iter_frames(path, limits=limits):
        words = rgba_words(frame.rgba)
        if colors.needed:
            colors.add(words)
        ffmpeg.add(words)
    sample.ffmpeg_ratios = ffmpeg.ratios(lzw.total_bytes())
    reduced = colors.ratios(lzw.total_bytes())
    full = {0: 1.0, **sample.lossy_ratios}
    sample.color_ratios = {
        key: full[key[1]] if ratio is None else ratio for key, ratio in reduced.items()
    }
    # Pillow's frame count and the frames actually decodable can disagree on damaged files;
    # keep only the indices that decoded so every family sees a consistent sample.
    got = set(sample.frames)
    sample.spatial = [i for i in spatial if i in got]
    sample.pairs = [i for i in pairs if i in got and i + 1 in got]
    sample.clip = [i for i in clip if i in got]
    return sample


def reduce_frame(index: int, rgba: np.ndarray, keep_full: bool = False) -> SampledFrame:
    """Build the shared views of one composited RGBA frame (see ``SampledFrame``)."""
    h, w = rgba.shape[:2]
    rgb = flatten(rgba)
    step = stride_for(h, w)
    y = luma(rgb)
    return SampledFrame(
        index=index,
        rgb_small=np.ascontiguousarray(rgb[::step, ::step]),
        luma_small=area_resize(y, SMALL_SIDE),
        luma_detail=area_resize(y, DETAIL_SIDE),
        transparent=float(np.count_nonzero(rgba[..., 3] == 0)) / float(h * w),
        run_length=horizontal_run_length(rgb),
        rgb_full=rgb if keep_full else None,
    )


def horizontal_run_length(rgb: np.ndarray) -> float:
    """log2(mean run of identical RGB pixels along rows) / log2(width), 0..1.

    Full resolution on purpose: subsampling would cut runs and invent dither-free areas.
    0 when every pixel differs from its left neighbour, 1 when every row is a single colour.
    """
    h, w = rgb.shape[:2]
    if w < 2:  # every run is 1 px long: log2(1) = 0, and the normaliser log2(1) would be 0 too
        return 0.0
    words = rgb_words(rgb).reshape(h, w)
    runs = h + np.count_nonzero(words[:, 1:] != words[:, :-1])
    return float(np.log2(h * w / runs) / np.log2(w))


def rgb_words(rgb: np.ndarray) -> np.ndarray:
    """Each RGB pixel as one int32 ``R<<16 | G<<8 | B`` (flattened), for exact colour counting."""
    c = rgb.reshape(-1, 3).astype(np.int32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def rgba_words(rgba: np.ndarray) -> np.ndarray:
    """Each RGBA pixel of an (H, W, 4) uint8 frame as one little-endian uint32, (H, W); a view
    when the frame is contiguous (every decoded frame is), so it costs nothing per frame."""
    return np.ascontiguousarray(rgba).view("<u4")[..., 0]


def shannon_bits(counts: np.ndarray) -> float:
    """Shannon entropy in bits of a histogram of counts (0 for an empty or one-bin histogram)."""
    counts = counts[counts > 0].astype(np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts / total
    return float(max(0.0, -(p * np.log2(p)).sum()))
