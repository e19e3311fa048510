"""Per-GIF metadata measured from the decoded frames (one pass over all frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from giflab.errors import BadGifError
from giflab.frames import (
    DEFAULT_LIMITS,
    DecodeLimits,
    browser_delay_ms,
    iter_frames,
    open_gif,
    seek_frame,
)


def validate_gif(path: Path | str, limits: DecodeLimits = DEFAULT_LIMITS) -> int:
    """Decode every frame of ``path`` (no colour conversion) and return the frame count.

    Raises ``BadGifError`` for anything that is not a complete, bounded GIF.
    """
    path = Path(path)
    with open_gif(path, limits) as im:
        w, h = im.size
        n = 0
        while True:
            try:
                seek_frame(im, path, n)
            except EOFError:
                break
            n += 1
            if n > limits.max_frames or n * w * h > limits.max_total_pixels:
                raise BadGifError(
                    path,
                    "decompression_bomb",
                    f"{w}x{h} x {n}+ frames exceeds {limits.max_frames} frames"
                    f" or {limits.max_total_pixels} pixels",
                )
    if n == 0:
        raise BadGifError(path, "zero_frames", "no frames")
    return n


def _colour_ids(rgba: np.ndarray) -> np.ndarray:
    """24-bit ids of the opaque colours of one frame (transparent pixels excluded)."""
    opaque = rgba[..., 3] > 0
    rgb = rgba[..., :3][opaque].astype(np.uint32)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def read_metadata(path: Path | str, limits: DecodeLimits = DEFAULT_LIMITS) -> dict:
    """Measure ``path``: size, frames, timing, colours actually used, loop, transparency.

    ``duration_ms`` and ``fps`` use browser-effective delays (0 and 10 ms play as 100 ms);
    ``raw_duration_ms`` is the sum of the delays as written in the file.
    ``n_colors`` counts distinct RGB colours over all composited frames, plus one if any pixel
    is fully transparent. ``loop_count`` is 0 for "forever" and None when the file has no
    NETSCAPE loop extension (browsers then play it once).
    """
    path = Path(path)
    seen = np.zeros(1 << 24, dtype=bool)
    any_transparent = False
    delays: list[int] = []
    width = height = 0
    for frame in iter_frames(path, limits=limits):
        height, width = frame.rgba.shape[:2]
        seen[_colour_ids(frame.rgba)] = True
        if not any_transparent and (frame.rgba[..., 3] == 0).any():
            any_transparent = True
        delays.append(frame.delay_ms)
    with open_gif(path, limits) as im:
        loop = im.info.get("loop")
    effective = [browser_delay_ms(d) for d in delays]
    duration_ms = sum(effective)
    n_frames = len(delays)
    return {
        "width": width,
        "height": height,
        "n_frames": n_frames,
        "duration_ms": duration_ms,
        "raw_duration_ms": sum(delays),
        "fps": round(n_frames * 1000.0 / duration_ms, 4) if duration_ms else 0.0,
        "n_colors": int(seen.sum()) + int(any_transparent),
        "loop_count": None if loop is None else int(loop),
        "has_transparency": any_transparent,
        "file_kb": round(path.stat().st_size / 1024.0, 3),
    }
