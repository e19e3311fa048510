"""Pairing source and render frames by time: what a viewer sees at each source frame's start.

Source frame ``i`` starts at ``t_i``, the sum of the browser-effective delays before it. It is
compared with the render frame on screen at ``t_i``: render frame ``j`` is on screen during
``[s_j, s_j + delay_j)``; past the render's end its last frame stays. So a frame the render dropped
is compared with the kept frame shown in its place, and engines that merge identical frames or
change the count are still aligned. Both files are walked once, in time order (never a greedy
best match), holding one decoded frame per side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from giflab.frames import DEFAULT_LIMITS, DecodeLimits, browser_delay_ms, iter_frames, open_gif

# Tier-2 engines write animated WebP/AVIF; they are compared the same way.
RENDER_FORMATS = ("GIF", "WEBP", "AVIF")


@dataclass(frozen=True)
class FramePair:
    """One aligned pair: indices and display start times (ms) of both frames, and their RGBA."""

    source_index: int
    render_index: int
    source_start_ms: int
    render_start_ms: int
    source: np.ndarray
    render: np.ndarray


def count_frames(path: Path, formats: tuple[str, ...] = ("GIF",)) -> int:
    """Frame count without decoding pixels (Pillow skips the image data when counting)."""
    with open_gif(path, DEFAULT_LIMITS, formats) as im:
        return int(getattr(im, "n_frames", 1))


def sample_indices(n: int, max_frames: int | None) -> list[int]:
    """All of ``range(n)``, or ``max_frames`` evenly spaced indices (first included)."""
    if max_frames is None or n <= max_frames:
        return list(range(n))
    return [j * n // max_frames for j in range(max(1, max_frames))]


def _fit(rgba: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    # An engine that changed the canvas is compared on the source's pixel grid.
    if rgba.shape[:2] == shape[:2]:
        return rgba
    h, w = shape[:2]
    return np.asarray(Image.fromarray(rgba, "RGBA").resize((w, h), Image.Resampling.NEAREST))


def aligned_pairs(
    original: Path,
    render: Path,
    max_frames: int | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> Iterator[FramePair]:
    """Yield time-aligned pairs for the source frames of ``sample_indices`` (all when None).

    One streaming pass over each file: decoding a GIF frame needs the frames before it anyway,
    so sampling saves metric work, not decoding.
    """
    wanted = set(sample_indices(count_frames(original), max_frames))
    rendered = iter_frames(render, None, limits, RENDER_FORMATS)
    current = next(rendered)
    r_start, r_end = 0, browser_delay_ms(current.delay_ms)
    s_start = 0
    try:
        for frame in iter_frames(original, None, limits):
            if frame.index in wanted:
                # Advance to the render frame on screen at s_start; the last one stays past the end.
                while r_end <= s_start:
                    nxt = next(rendered, None)
                    if nxt is None:
                        break
                    current, r_start = nxt, r_end
                    r_end = r_start + browser_delay_ms(nxt.delay_ms)
                yield FramePair(
                    frame.index,
                    current.index,
                    s_start,
                    r_start,
                    frame.rgba,
                    _fit(current.rgba, frame.rgba.shape),
                )
            s_start += browser_delay_ms(frame.delay_ms)
    finally:
        rendered.close()  # closes the render file now, not at garbage collection
