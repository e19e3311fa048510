"""Pairing source and render frames by time: what a viewer sees at each source frame's start.

Source frame ``i`` starts at ``t_i``, the sum of the browser-effective delays before it. It is
compared with the render frame on screen at ``t_i``: render frame ``j`` is on screen during
``[s_j, s_j + delay_j)``; past the render's end its last frame stays. So a frame the render dropped
is compared with the kept frame shown in its place, and engines that merge identical frames or
change the count are still aligned. Both files are walked once, in time order (never a greedy
best match), holding one decoded frame per side. ``paired_with_render`` can count every render
frame on the way, so one decode of a render serves the metrics and ``describe_render``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

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


def fit_to(rgba: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``rgba`` on a canvas of ``shape`` (nearest-neighbour resize), or itself if it fits."""
    # An engine that changed the canvas is compared on the source's pixel grid.
    if rgba.shape[:2] == shape[:2]:
        return rgba
    h, w = shape[:2]
    return np.asarray(Image.fromarray(rgba, "RGBA").resize((w, h), Image.Resampling.NEAREST))


@dataclass(frozen=True)
class TimedFrame:
    """A composited frame and the time (ms) it comes on screen."""

    index: int
    start_ms: int
    rgba: np.ndarray


def sampled_frames(
    original: Path, max_frames: int | None = None, limits: DecodeLimits = DEFAULT_LIMITS
) -> Iterator[TimedFrame]:
    """The source frames of ``sample_indices`` with their display start times, streaming.

    Decoding a GIF frame needs the frames before it anyway, so sampling saves metric work, not
    decoding.
    """
    wanted = set(sample_indices(count_frames(original), max_frames))
    start = 0
    for frame in iter_frames(original, None, limits):
        if frame.index in wanted:
            yield TimedFrame(frame.index, start, frame.rgba)
        start += browser_delay_ms(frame.delay_ms)


class Timed(Protocol):
    """Anything with a display start time (ms): a source frame, prepared or not."""

    start_ms: int


T = TypeVar("T", bound=Timed)


def paired_with_render(
    sources: Iterable[T],
    render: Path,
    limits: DecodeLimits = DEFAULT_LIMITS,
    every_frame: Callable[[np.ndarray], None] | None = None,
) -> Iterator[tuple[T, TimedFrame]]:
    """Each of ``sources`` (in time order) with the render frame on screen at its ``start_ms``.

    Render frame ``j`` is on screen during ``[s_j, s_j + delay_j)``; past the render's end its
    last frame stays. ``sources`` is consumed one item at a time, so a streamed source holds one
    frame. With ``every_frame``, the render is walked to its end and each of its frames is passed
    to ``every_frame`` once, in order (one decode serves the metrics and the counts).
    """
    rendered = iter_frames(render, None, limits, RENDER_FORMATS)
    try:
        current = next(rendered)
        if every_frame is not None:
            every_frame(current.rgba)
        r_start, r_end = 0, browser_delay_ms(current.delay_ms)
        for src in sources:
            while r_end <= src.start_ms:
                nxt = next(rendered, None)
                if nxt is None:
                    break
                if every_frame is not None:
                    every_frame(nxt.rgba)
                current, r_start = nxt, r_end
                r_end = r_start + browser_delay_ms(nxt.delay_ms)
            yield src, TimedFrame(current.index, r_start, current.rgba)
        if every_frame is not None:
            for frame in rendered:
                every_frame(frame.rgba)
    finally:
        rendered.close()  # closes the render file now, not at garbage collection


def aligned_pairs(
    original: Path,
    render: Path,
    max_frames: int | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> Iterator[FramePair]:
    """Yield time-aligned pairs for the source frames of ``sample_indices`` (all when None).

    One streaming pass over each file, holding one decoded frame per side.
    """
    for src, shown in paired_with_render(sampled_frames(original, max_frames, limits), render):
        yield FramePair(
            src.index,
            shown.index,
            src.start_ms,
            shown.start_ms,
            src.rgba,
            fit_to(shown.rgba, src.rgba.shape),
        )
