"""Pairing source and render frames by time: what a viewer sees at each source frame's start.

Each source frame ``i`` starts at ``t_i`` (browser-effective delays); it is compared with the
render frame on screen at ``t_i`` — the last render frame starting at or before it. Frames dropped
by the render are thus compared with the kept frame shown in their place, and engines that merge
identical frames are aligned correctly. The walk is in time order on both sides (never a greedy
best match), streaming, one decoded frame per side at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import numpy as np
from PIL import Image

from giflab.frames import DEFAULT_LIMITS, browser_delay_ms, iter_frames

# Tier-2 engines write animated WebP/AVIF; they are compared the same way.
RENDER_FORMATS = ("GIF", "WEBP", "AVIF")


@dataclass(frozen=True)
class FramePair:
    """One aligned pair: source index, render index, and both frames as RGBA arrays."""

    source_index: int
    render_index: int
    source: np.ndarray
    render: np.ndarray


def frame_starts(path: Path) -> list[int]:
    """Display start time (ms) of each frame of ``path``."""
    with Image.open(path) as im:
        delays = []
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            delays.append(browser_delay_ms(im.info.get("duration", 0)))
    return [0, *accumulate(delays)][:-1]


def sample_indices(n: int, max_frames: int | None) -> list[int]:
    """All of ``range(n)``, or ``max_frames`` evenly spaced indices (first included)."""
    if max_frames is None or n <= max_frames:
        return list(range(n))
    return [j * n // max_frames for j in range(max_frames)]


def aligned_pairs(
    original: Path, render: Path, max_frames: int | None = None
) -> Iterator[FramePair]:
    """Yield time-aligned (source, render) frame pairs, at most ``max_frames`` of them."""
    src_starts = frame_starts(original)
    out_starts = frame_starts(render)
    wanted = sample_indices(len(src_starts), max_frames)
    # The render frame on screen at each wanted source start time.
    matches = [
        max(0, int(np.searchsorted(out_starts, src_starts[i], side="right")) - 1) for i in wanted
    ]
    render_frames = iter_frames(render, sorted(set(matches)), DEFAULT_LIMITS, RENDER_FORMATS)
    current = next(render_frames)
    source_frames = iter_frames(original, indices=wanted)
    for i, target, frame in zip(wanted, matches, source_frames, strict=True):
        while current.index < target:
            current = next(render_frames)
        h, w = frame.rgba.shape[:2]
        out = current.rgba
        if out.shape[:2] != (h, w):  # an engine changed the canvas: compare on the source's grid
            out = np.asarray(Image.fromarray(out, "RGBA").resize((w, h), Image.Resampling.NEAREST))
        yield FramePair(i, current.index, frame.rgba, out)
