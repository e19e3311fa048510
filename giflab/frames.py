"""Decoding GIFs into fully composited frames, within explicit size and frame bounds.

Pillow applies each frame's disposal method when it seeks, so every frame we yield is the full
canvas as a browser would show it. Frames are RGBA; ``flatten`` puts them on one fixed background
so that transparency compares equally across engines.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from giflab.errors import BadGifError

# Browsers (Chromium, Firefox, Safari) show frames whose delay is 0 or 10 ms for 100 ms:
# such delays were common in old GIFs and playing them "as fast as possible" broke pages.
BROWSER_MIN_DELAY_MS = 20
BROWSER_DEFAULT_DELAY_MS = 100
BACKGROUND_RGB = (255, 255, 255)


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds that make a file a decompression bomb rather than a GIF."""

    max_total_pixels: int = 2_000_000_000
    max_frame_pixels: int = 100_000_000
    max_frames: int = 20_000


DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True)
class Frame:
    """One composited frame: its source index, RGBA pixels (H, W, 4) and its raw delay; and,
    when Pillow says, the rectangle the file stores for it (``stored``: x0, y0, x1, y1 on the
    screen) and whether that image declares a transparent index."""

    index: int
    rgba: np.ndarray
    delay_ms: int
    stored: tuple[int, int, int, int] | None = None
    stored_transparency: bool = False


def _stored_image(im: Image.Image) -> tuple[tuple[int, int, int, int], bool] | None:
    """The current frame's stored rectangle and whether it has a transparent index, read from
    Pillow's tile before the frame is loaded; None when the tile does not say."""
    try:
        tile = im.tile[0]
        x0, y0, x1, y1 = (int(v) for v in tile[1])
        # Pillow keeps the frame's transparent index apart (its tile args say -1 once it
        # composites in RGBA); the tile's own value is the fallback for other versions.
        transparency = getattr(im, "_frame_transparency", None)
        if transparency is None and isinstance(tile[3], tuple) and len(tile[3]) > 2:
            transparency = tile[3][2]
    except (IndexError, TypeError, ValueError):
        return None
    w, h = im.size
    box = (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
    return box, transparency is not None and int(transparency) >= 0


def browser_delay_ms(delay_ms: int | None) -> int:
    """The delay a browser actually waits: 0 and 10 ms become 100 ms."""
    d = int(delay_ms or 0)
    return BROWSER_DEFAULT_DELAY_MS if d < BROWSER_MIN_DELAY_MS else d


def open_gif(
    path: Path | str, limits: DecodeLimits = DEFAULT_LIMITS, formats: tuple[str, ...] = ("GIF",)
) -> Image.Image:
    """Open ``path`` (a GIF, or one of ``formats``) and check its declared size.

    Raises ``BadGifError`` otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise BadGifError(path, "not_a_file", "not a regular file")
    if path.stat().st_size == 0:
        raise BadGifError(path, "empty_file", "file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadGifError(path, "decompression_bomb", str(e)) from e
    except UnidentifiedImageError as e:
        raise BadGifError(path, "unreadable", "not an image Pillow can identify") from e
    except OSError as e:
        raise BadGifError(path, "unreadable", str(e)) from e
    if im.format not in formats:
        im.close()
        raise BadGifError(path, "not_a_gif", f"content is {im.format}, not GIF")
    w, h = im.size
    if w <= 0 or h <= 0:
        im.close()
        raise BadGifError(path, "zero_size", f"declared size {w}x{h}")
    if w * h > limits.max_frame_pixels:
        im.close()
        raise BadGifError(
            path,
            "decompression_bomb",
            f"declared {w}x{h} = {w * h} pixels per frame > {limits.max_frame_pixels}",
        )
    return im


def seek_frame(
    im: Image.Image, path: Path, index: int
) -> tuple[tuple[int, int, int, int], bool] | None:
    """Seek to and decode frame ``index``; EOFError past the end, BadGifError if broken.
    Returns the frame's stored rectangle and transparency flag (``_stored_image``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.seek(index)
            stored = _stored_image(im)
            im.load()
            return stored
    except EOFError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadGifError(path, "decompression_bomb", str(e)) from e
    except (OSError, ValueError, SyntaxError, IndexError) as e:
        kind = "truncated" if "truncated" in str(e) or "broken" in str(e) else "unreadable"
        raise BadGifError(path, kind, f"frame {index}: {e}") from e


def iter_frames(
    path: Path | str,
    indices: Iterable[int] | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
    formats: tuple[str, ...] = ("GIF",),
) -> Iterator[Frame]:
    """Yield composited RGBA frames of ``path`` (all, or the sorted ``indices``) in order."""
    path = Path(path)
    wanted = None if indices is None else sorted(set(indices))
    with open_gif(path, limits, formats) as im:
        w, h = im.size
        i = 0
        total = 0
        while True:
            if i > 0:
                try:
                    stored = seek_frame(im, path, i)
                except EOFError:
                    break
            else:
                stored = seek_frame(im, path, 0)
            total += w * h
            if i >= limits.max_frames or total > limits.max_total_pixels:
                raise BadGifError(
                    path,
                    "decompression_bomb",
                    f"more than {limits.max_frames} frames or {limits.max_total_pixels} pixels",
                )
            if wanted is None or i in wanted:
                # Pillow grows its canvas when a frame overhangs the logical screen; the GIF's
                # declared screen is the image (browsers clip to it), so crop back to it.
                rgba = np.asarray(im.convert("RGBA"))[:h, :w]
                box, transparency = stored if stored is not None else (None, False)
                yield Frame(i, rgba, int(im.info.get("duration", 0) or 0), box, transparency)
                if wanted is not None and i >= wanted[-1]:
                    return
            i += 1
        if i == 0:
            raise BadGifError(path, "zero_frames", "no frames")


def flatten(rgba: np.ndarray, background: tuple[int, int, int] = BACKGROUND_RGB) -> np.ndarray:
    """Composite RGBA pixels over a fixed background; returns uint8 RGB of the same size."""
    alpha = rgba[..., 3:4].astype(np.uint16)
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[..., :3])
    bg = np.asarray(background, dtype=np.uint16)
    rgb = (rgba[..., :3].astype(np.uint16) * alpha + bg * (255 - alpha) + 127) // 255
    return rgb.astype(np.uint8)


def frame_count(path: Path | str, limits: DecodeLimits = DEFAULT_LIMITS) -> int:
    """Number of frames, reading the block structure (Pillow decodes as it seeks)."""
    with open_gif(path, limits) as im:
        return int(getattr(im, "n_frames", 1))
