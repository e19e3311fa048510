"""How many bytes the GIF's pixels need when re-encoded losslessly: the ``lzw_size_ratio`` probe.

What an engine's output weighs at lossy 0 is mostly decided by two things the file's own size
cannot show: how well its LZW data was packed, and how much of each frame actually changes.
``DeltaLzwEstimate`` sees every frame at full resolution, as an optimising encoder does:

* the first frame is LZW-encoded whole;
* each later frame is cropped to the box of pixels that differ from the previous frame, with
  unchanged pixels inside the box set to one "transparent" value (what ``gifsicle -O`` and
  gifski do); a frame identical to the previous one costs nothing;
* LZW uses Pillow's encoder (the GIF standard's variable-width LZW, in C) on palette indices.

Encoding every crop of a long animation would cost more than every other feature together, so
small crops (``SMALL_CROP`` pixels) are always encoded but of the larger ones only every
``stride``-th (at most ``LZW_FRAMES``); the others are charged at the encoded ones' mean bytes
per crop pixel. Crop areas are exact for
every frame, so bursty screen recordings (a cursor blinking for 300 frames) are not mistaken
for full-frame animations. Evidence for the feature: docs/features.md.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

LZW_FRAMES = 32  # large changed frames LZW-encoded at most; the others are charged by area
SMALL_CROP = 1 << 16  # crops of at most this many pixels are always encoded (they are cheap)
UNCHANGED = -1  # word of "same as the previous frame" pixels (a real RGBA word is >= 0)
HEADER_BYTES = 13 + 1  # signature + logical screen descriptor, and the trailer
FRAME_BYTES = 8 + 10 + 1  # graphic control extension + image descriptor + LZW minimum code size


def lzw_data_bytes(words: np.ndarray) -> tuple[int, int]:
    """LZW data bytes (sub-blocks included) of a 2-D array of colour words as one GIF image,
    and the number of distinct words. Words become palette indices by rank (more than 256
    distinct words share index 255: a GIF frame cannot have more)."""
    palette, inverse = np.unique(words, return_inverse=True)
    indices = np.minimum(inverse, 255).astype(np.uint8).reshape(words.shape)
    buf = io.BytesIO()
    Image.fromarray(indices, "P").save(buf, "GIF", optimize=False)
    return _first_image_data_bytes(buf.getvalue()), len(palette)


def _first_image_data_bytes(gif: bytes) -> int:
    """Length of the first image's data sub-blocks in the GIF bytes ``gif`` (as Pillow writes
    them: header, optional colour table, extensions, one image)."""
    pos = 13
    if gif[10] & 0x80:
        pos += 3 * (2 << (gif[10] & 7))
    while gif[pos] == 0x21:  # extension: label, then sub-blocks up to a 0 terminator
        pos += 2
        while gif[pos]:
            pos += gif[pos] + 1
        pos += 1
    flags = gif[pos + 9]
    pos += 10
    if flags & 0x80:
        pos += 3 * (2 << (flags & 7))
    start = pos = pos + 1  # after the LZW minimum code size
    while gif[pos]:
        pos += gif[pos] + 1
    return pos + 1 - start


class DeltaLzwEstimate:
    """Feed every frame's colour words (``add``) in order; ``total_bytes`` is the estimate."""

    def __init__(self, n_frames: int) -> None:
        self.stride = max(1, math.ceil(max(n_frames - 1, 1) / LZW_FRAMES))
        self._prev: np.ndarray | None = None
        self._first_bytes = 0
        self._colors = 0
        self._changed = 0  # changed frames after the first
        self._small_bytes = 0  # LZW bytes of all small crops (each one encoded)
        self._large = 0  # changed frames whose crop is larger than SMALL_CROP
        self._large_area = 0  # their crop areas, in pixels
        self._sampled_area = 0  # the encoded ones' areas and bytes
        self._sampled_bytes = 0

    def add(self, words: np.ndarray) -> None:
        """The next frame, as an (H, W) array of colour words (``sampling.rgba_words``)."""
        prev, self._prev = self._prev, words
        if prev is None:
            self._first_bytes, self._colors = lzw_data_bytes(words)
            return
        changed = words != prev
        rows = np.flatnonzero(changed.any(axis=1))
        if not len(rows):
            return
        cols = np.flatnonzero(changed.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        area = int((rows[-1] + 1 - rows[0]) * (cols[-1] + 1 - cols[0]))
        self._changed += 1
        if area <= SMALL_CROP:
            self._small_bytes += self._crop_bytes(words, changed, box)
            return
        if self._large % self.stride == 0:
            self._sampled_bytes += self._crop_bytes(words, changed, box)
            self._sampled_area += area
        self._large += 1
        self._large_area += area

    @staticmethod
    def _crop_bytes(words: np.ndarray, changed: np.ndarray, box: tuple[slice, slice]) -> int:
        crop = np.where(changed[box], words[box].astype(np.int64), UNCHANGED)
        return lzw_data_bytes(crop)[0]

    def total_bytes(self) -> float:
        """Estimated bytes of the whole losslessly re-encoded GIF (0 before any frame)."""
        if self._prev is None:
            return 0.0
        palette = 3 * (1 << max(1, math.ceil(math.log2(max(self._colors, 2)))))
        later = float(self._small_bytes)
        if self._sampled_area:
            later += self._sampled_bytes / self._sampled_area * self._large_area
        frames = 1 + self._changed
        return float(HEADER_BYTES + palette + self._first_bytes + later + FRAME_BYTES * frames)
