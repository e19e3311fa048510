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
from giflab.schemas import GifMetadataV1


def check_structure(path: Path | str) -> None:
    """Walk the GIF's blocks from header to trailer without decoding pixels.

    Pillow accepts a file cut at a block boundary (its frames so far look complete), so the
    structure is checked first: every block must be complete and the trailer (``;``) reached.
    Bytes after the trailer are ignored, as browsers do, and so is a second GIF appended where a
    block should start once an image is complete (browsers end the animation there). Raises
    ``BadGifError``.
    """
    path = Path(path)
    data = path.read_bytes()
    n = len(data)

    def fail(kind: str, reason: str) -> BadGifError:
        return BadGifError(path, kind, reason)

    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise fail("not_a_gif", "no GIF87a/GIF89a signature")
    if n < 13:
        raise fail("truncated", f"file ends at byte {n} inside the screen descriptor")
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if width == 0 or height == 0:
        raise fail("zero_size", f"logical screen is {width}x{height}")
    pos = 13
    if data[10] & 0x80:
        pos += 3 << ((data[10] & 7) + 1)
    images = 0
    while True:
        if pos >= n:
            raise fail("truncated", f"file ends at byte {n} before the trailer ({images} images)")
        kind = data[pos]
        if kind == 0x3B:
            break
        if kind == 0x21:
            pos += 2
        elif kind == 0x2C:
            if pos + 10 > n:
                raise fail("truncated", f"image descriptor at byte {pos} is cut off")
            flags = data[pos + 9]
            pos += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
            if pos < n and not 1 <= data[pos] <= 11:
                raise fail("malformed", f"LZW minimum code size {data[pos]} at byte {pos}")
            pos += 1
            images += 1
        elif images and data[pos : pos + 6] in (b"GIF87a", b"GIF89a"):
            # Another GIF appended without this one's trailer (seen in real corpora): browsers
            # (Chromium, after Mozilla) end the stream at stray bytes and show the frames so far.
            # Other stray bytes stay "malformed": a flipped introducer is corruption.
            break
        else:
            raise fail("malformed", f"unknown block type 0x{kind:02x} at byte {pos}")
        while pos < n and data[pos] != 0:  # data sub-blocks, ended by a zero length
            pos += data[pos] + 1
        if pos >= n:
            raise fail("truncated", f"file ends at byte {n} inside a block ({images} images)")
        pos += 1
    if images == 0:
        raise fail("zero_frames", "no image blocks before the trailer")


def validate_gif(path: Path | str, limits: DecodeLimits = DEFAULT_LIMITS) -> int:
    """Check the block structure, decode every frame (no colour conversion), return the count.

    Raises ``BadGifError`` for anything that is not a complete, bounded GIF.
    """
    path = Path(path)
    try:
        im = open_gif(path, limits)
    except BadGifError as e:
        # Pillow's "cannot identify" says little: a GIF cut short gets the precise reason.
        with open(path, "rb") as f:
            if e.kind == "unreadable" and f.read(6) in (b"GIF87a", b"GIF89a"):
                check_structure(path)
        raise
    with im:
        check_structure(path)  # after open_gif, so a bomb is named as one
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


def _pixel_words(rgba: np.ndarray) -> np.ndarray:
    """Each RGBA pixel as one uint32 word (byte order R, G, B, A in memory), no copy if possible."""
    return np.ascontiguousarray(rgba).view(np.uint32).reshape(-1)


# In a pixel word, alpha is the most significant byte on little-endian machines, the least on
# big-endian ones; these masks pick alpha and the RGB bits either way.
_LITTLE = np.little_endian
_RGB_MASK = 0x00FFFFFF if _LITTLE else 0xFFFFFF00
_RGB_SHIFT = 0 if _LITTLE else 8


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
        words = _pixel_words(frame.rgba)
        alpha = words & (0xFF000000 if _LITTLE else 0xFF)
        opaque = alpha != 0
        seen[(words[opaque] & _RGB_MASK) >> _RGB_SHIFT] = True
        any_transparent = any_transparent or not opaque.all()
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


def metadata_record(
    sha256: str, files: list[tuple[str, str]], limits: DecodeLimits = DEFAULT_LIMITS
):
    """The ``GifMetadataV1`` row of one GIF, measured from the first of its files that exists.

    ``files`` is ``[(absolute path, path relative to its raw folder), ...]`` from the registry.
    """
    present = [(Path(p), rel) for p, rel in files if Path(p).is_file()]
    if not present:
        raise BadGifError(files[0][0] if files else sha256, "missing", "no registered file exists")
    names = sorted({Path(rel).name for _, rel in present})
    return GifMetadataV1(
        gif_sha=sha256,
        orig_filename=Path(present[0][1]).name,
        orig_filenames=names,
        rel_paths=sorted(rel for _, rel in present),
        **read_metadata(present[0][0], limits),
    )


def metadata_task(item: tuple[str, list[tuple[str, str]]], limits: DecodeLimits = DEFAULT_LIMITS):
    """``metadata_record`` for one ``(sha256, files)`` pair: the unit of work for a worker pool."""
    sha256, files = item
    return metadata_record(sha256, files, limits)
