"""The source side of every metric, prepared once per sweep and reused against each render.

A sweep compares up to 70 renders with one source. ``SourceFrames`` decodes the source once,
keeps only the sampled frames (``max_frames``), and holds every array the metrics derive from a
source frame alone: flattened RGB, luma, alpha visibility, colour histogram, Canny edges, GMSD
gradients, SSIM/MS-SSIM scale terms and the SSIMULACRA2 XYB pyramid. The per-render work is then
the render's side and the pairwise terms only; results equal the unprepared computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from giflab.frames import DEFAULT_LIMITS, DecodeLimits, flatten
from giflab.metrics.align import sampled_frames
from giflab.metrics.color import color_histogram
from giflab.metrics.perceptual import Ssimulacra2Scale, ssimulacra2_scales
from giflab.metrics.structural import (
    SsimLevel,
    edge_map,
    gradient_magnitude,
    luma,
    ssim_levels,
)

# Bytes of scale pyramids (SSIM + SSIMULACRA2, about 85 bytes per source pixel) kept per source;
# frames past it recompute theirs for each render, so memory stays bounded for huge canvases.
DEFAULT_CACHE_BYTES = 1 << 30


@dataclass
class SourceFrame:
    """One sampled source frame and what the metrics derive from it alone."""

    index: int
    start_ms: int
    rgba: np.ndarray
    rgb: np.ndarray  # flattened on the fixed background
    luma: np.ndarray
    visible: np.ndarray  # alpha > 0
    histogram: np.ndarray
    edges: np.ndarray
    gradient: np.ndarray
    _ssim: tuple[SsimLevel, ...] | None = field(default=None, repr=False)
    _ssimulacra2: tuple[Ssimulacra2Scale, ...] | None = field(default=None, repr=False)

    @classmethod
    def from_rgba(cls, index: int, start_ms: int, rgba: np.ndarray) -> SourceFrame:
        """Derive the cheap per-frame arrays of a composited RGBA frame."""
        rgb = flatten(rgba)
        y = luma(rgb)
        return cls(
            index,
            start_ms,
            rgba,
            rgb,
            y,
            rgba[..., 3] > 0,
            color_histogram(rgb),
            edge_map(y),
            gradient_magnitude(y),
        )

    def keep_pyramids(self) -> int:
        """Compute and keep the SSIM and SSIMULACRA2 scale terms; returns their size in bytes."""
        self._ssim, self._ssimulacra2 = ssim_levels(self.luma), ssimulacra2_scales(self.rgb)
        arrays = [a for level in self._ssim for a in vars(level).values()]
        arrays += [a for scale in self._ssimulacra2 for a in vars(scale).values()]
        return sum(a.nbytes for a in arrays)

    def drop_pyramids(self) -> None:
        """Forget the scale terms: they are then recomputed on each use."""
        self._ssim = self._ssimulacra2 = None

    def ssim_levels(self) -> tuple[SsimLevel, ...]:
        """SSIM/MS-SSIM source terms: kept ones, or computed now (frames past the budget)."""
        return self._ssim if self._ssim is not None else ssim_levels(self.luma)

    def ssimulacra2_scales(self) -> tuple[Ssimulacra2Scale, ...]:
        """SSIMULACRA2 source terms: kept ones, or computed now (frames past the budget)."""
        return self._ssimulacra2 if self._ssimulacra2 is not None else ssimulacra2_scales(self.rgb)


@dataclass(frozen=True)
class SourceFrames:
    """A source GIF decoded once: its sampled frames, their start times and derived arrays.

    Memory: ~14 bytes per pixel per sampled frame (RGBA, RGB, luma, masks, gradient), plus ~85
    per pixel of scale pyramids for the first frames that fit ``cache_bytes``: at most
    ``max_frames * 14 * pixels + cache_bytes`` in all.
    """

    path: Path
    max_frames: int | None
    frames: tuple[SourceFrame, ...]
    cached_bytes: int

    @classmethod
    def read(
        cls,
        path: Path | str,
        max_frames: int | None,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> SourceFrames:
        """Decode ``path`` once and prepare its ``sample_indices(n, max_frames)`` frames."""
        path = Path(path)
        frames, cached, per_frame = [], 0, 0
        for timed in sampled_frames(path, max_frames, limits):
            frame = SourceFrame.from_rgba(timed.index, timed.start_ms, timed.rgba)
            # Pyramids of the first frames that fit (all frames have one size, known after one).
            if cache_bytes > 0 and cached + per_frame <= cache_bytes:
                per_frame = frame.keep_pyramids()
                if cached + per_frame <= cache_bytes:
                    cached += per_frame
                else:
                    frame.drop_pyramids()
            frames.append(frame)
        return cls(path, max_frames, tuple(frames), cached)

    @property
    def indices(self) -> list[int]:
        """Source indices of the sampled frames."""
        return [f.index for f in self.frames]

    @property
    def starts_ms(self) -> list[int]:
        """Display start times (ms) of the sampled frames."""
        return [f.start_ms for f in self.frames]
