"""gifski 1.7.1 as GifLab's gifski engine runs it, for the ``gifski_quality_ratio_<L>`` probes.

The engine (``giflab.engines.gifski``) gives gifski ``--quality Q`` (``gifski_quality``: lossy 0
-> 100, 120 -> 10). gifski turns Q into four knobs, each of which moves the file's size; the
probe applies each to the GIF's own frames and counts the images gifski would store. Written
from gifski's behaviour (its source, read in the search index, and its 1.7.1 binary), our own
code:

* **motion threshold** (its denoiser): a pixel keeps the colour already on screen while its
  weighted difference ``2 dR² + 3 dG² + dB²`` from it stays below ``(55 - Q/2)²``; only a
  change past that is drawn, and the pixels not drawn are transparent in the frame's image.
  (gifski also looks five frames ahead and draws the median of a colour's stay; not emulated.)
* **palette** per frame, by libimagequant (the same library, its C release through the
  ``imagequant`` package): target quality ``min(100, 4Q/3)`` (100 for the first frame),
  transparency as a fixed colour, Floyd-Steinberg at level ``max(0.2, Q/50 - 1)``;
* **stored image**: the drawn pixels trimmed at the bottom, top and left (gifski never trims the
  right edge, nor the last frame), the rest transparent, with a local colour table;
* **lossy LZW** below Q 100: gifsicle's lossy encoder inside gifski at loss
  ``ceil((100/6 - Q/6)^1.75)`` (``giflab.features.lossy_lzw``).

Two knobs of later gifski releases are *not* in 1.7.1, and the renders say so: the loss
``ceil((20 - Q/5)^1.8) + 10`` made the estimate 10-11 % too small at every lossy level, and a
cap of ``next_power_of_two(max(16, 2Q))`` colours below Q 50 another 8 % at lossy 120 (25
natural corpus GIFs; docs/features.md).

``GifskiProbe`` counts those images per level and reports each total over the GIF's lossless
estimate (``giflab.features.lzw.DeltaLzwEstimate``, gifsicle's layout). Evidence:
docs/features.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from giflab.engines.gifski import gifski_quality
from giflab.features.lossy_lzw import lossy_code_bits
from giflab.features.lzw import (
    FRAME_BYTES,
    LOOP_EXTENSION_BYTES,
    FrameBudget,
    LzwCounter,
    changed_box,
    min_code_size,
    stored_bytes,
    table_entries,
)

# What gifski's file holds besides its images: signature and screen descriptor, a 2-entry
# global table and the trailer (every image has a local table, counted with it); the NETSCAPE
# loop extension when the source has a loop count (the engine passes it as --repeat).
GIFSKI_HEADER_BYTES = 13 + 6 + 1
_WEIGHTS = np.array([2, 3, 1], dtype=np.int32)  # gifski's colour difference: 2 R, 3 G, 1 B


def motion_threshold(quality: int) -> int:
    """The weighted squared difference a pixel must reach to be redrawn at ``quality``."""
    return (55 - quality // 2) ** 2


def color_quality(quality: int, first_frame: bool) -> int:
    """libimagequant's target quality for a frame at gifski ``quality``."""
    return 100 if first_frame else min(100, quality * 4 // 3)


def dithering_level(quality: int) -> float:
    """libimagequant's Floyd-Steinberg strength at gifski ``quality``."""
    return max(0.2, quality / 50.0 - 1.0)


def gifsicle_loss(quality: int) -> int:
    """The gifsicle lossy-LZW loss gifski 1.7.1 encodes with at ``quality`` (0: plain LZW):
    ``ceil((100/6 - Q/6)^1.75)``, 5 at Q 85, 115 at Q 10."""
    if quality >= 100:
        return 0
    return math.ceil((100 / 6 - quality / 6) ** 1.75)


def quantize(rgba: np.ndarray, quality: int, first_frame: bool, transparency: bool):
    """(indices (H, W) uint8, palette (N, 4) uint8) of ``rgba`` quantised by libimagequant as
    gifski sets it up at ``quality``."""
    from imagequant._libimagequant import ffi, lib  # loaded with the first probe

    h, w = rgba.shape[:2]
    pixels = np.ascontiguousarray(rgba, dtype=np.uint8)
    attr = lib.liq_attr_create()
    image = result = ffi.NULL
    try:
        lib.liq_set_quality(attr, 0, color_quality(quality, first_frame))
        image = lib.liq_image_create_rgba(attr, ffi.from_buffer(pixels), w, h, 0.0)
        if transparency:
            lib.liq_image_add_fixed_color(image, {"r": 0, "g": 0, "b": 0, "a": 0})
        out = ffi.new("liq_result**")
        code = lib.liq_image_quantize(image, attr, out)
        if code != lib.LIQ_OK:
            raise RuntimeError(f"libimagequant failed to quantise a frame (code {code})")
        result = out[0]
        lib.liq_set_dithering_level(result, dithering_level(quality))
        indices = np.empty(h * w, np.uint8)
        lib.liq_write_remapped_image(result, image, ffi.from_buffer(indices), h * w)
        pal = lib.liq_get_palette(result)
        palette = np.array(
            [(c.r, c.g, c.b, c.a) for c in pal.entries[0 : pal.count]], dtype=np.uint8
        ).reshape(-1, 4)
    finally:
        if result != ffi.NULL:
            lib.liq_result_destroy(result)
        if image != ffi.NULL:
            lib.liq_image_destroy(image)
        lib.liq_attr_destroy(attr)
    return indices.reshape(h, w), palette


def image_bytes(lzw: LzwCounter, indices: np.ndarray, palette: np.ndarray, loss: int) -> int:
    """Bytes of one stored image with a local table: plain LZW, or gifsicle's lossy LZW at
    ``loss``."""
    code_size = min_code_size(len(palette) - 1)
    overhead = FRAME_BYTES + 3 * table_entries(len(palette))
    if loss <= 0:
        return overhead + lzw.data_bytes(indices, code_size)
    clear = np.flatnonzero(palette[:, 3] < 128)
    transparent = int(clear[0]) if len(clear) else -1
    bits = lossy_code_bits(indices, palette[:, :3], code_size, loss, transparent)
    return overhead + stored_bytes(bits)


class _Level:
    """One quality's screen (the colours its denoiser holds) and byte count."""

    def __init__(self, lossy: int) -> None:
        self.lossy = lossy
        self.quality = gifski_quality(lossy)
        self.threshold = motion_threshold(self.quality)
        self.loss = gifsicle_loss(self.quality)
        self.screen: np.ndarray | None = None  # RGBA
        self.bytes = 0


def stored_region(drawn: np.ndarray, last: bool) -> tuple[slice, slice]:
    """The rectangle gifski stores of a frame whose drawn pixels are ``drawn`` (a whole-frame
    mask with at least one pixel): trimmed at the top and bottom only, always the frame's full
    width (gifski 1.7.1's renders of the corpus never start an image right of 0 nor end it
    short of the right edge), and the whole frame for the ``last`` one."""
    if last:
        return slice(None), slice(None)
    rows = np.flatnonzero(drawn.any(axis=1))
    return slice(rows[0], rows[-1] + 1), slice(None)


def _moved(new: np.ndarray, old: np.ndarray, threshold: int) -> np.ndarray:
    """Per pixel of two (..., 4) RGBA arrays: a change gifski draws at ``threshold``."""
    opaque_new, opaque_old = new[..., 3] >= 128, old[..., 3] >= 128
    diff = new[..., :3].astype(np.int32) - old[..., :3]
    far = (diff * diff) @ _WEIGHTS >= threshold
    return np.where(opaque_new & opaque_old, far, opaque_new != opaque_old)


class GifskiProbe:
    """Feed every frame (``add``: RGBA and its colour words) in order; ``ratios`` gives, per
    lossy level, the estimated bytes of the gifski engine's file at that level over an estimate
    of the GIF re-encoded losslessly.

    Every frame moves the screens; images are quantised and counted until ``budget`` pixels
    have been (per frame its changed pixels, or a quarter of its largest stored image when that
    is more: gifski stores whole rows to the right edge), then every 2nd frame's (weighted 2),
    then every 4th, and so on, the same frames at every level (``lzw.FrameBudget``).
    """

    def __init__(
        self, levels: Sequence[int], budget: int | None = None, loops: bool = True
    ) -> None:
        self._header = GIFSKI_HEADER_BYTES + (LOOP_EXTENSION_BYTES if loops else 0)
        self._levels = [_Level(int(level)) for level in levels]
        self._lzw = LzwCounter()
        self._prev: np.ndarray | None = None
        self._budget = FrameBudget(budget)
        # The last frame changed: gifski trims a frame unless it is the last, so each is
        # counted when the next one arrives (or by ``ratios``).
        self._pending: tuple[np.ndarray, list, int] | None = None

    def add(self, rgba: np.ndarray, words: np.ndarray) -> None:
        """The next frame: (H, W, 4) uint8 RGBA and its (H, W) colour words (``rgba_words``)."""
        prev, self._prev = self._prev, words.copy()
        if prev is None:
            transparency = bool((rgba[..., 3] < 128).any())
            for level in self._levels:
                level.screen = rgba.copy()
                indices, palette = quantize(rgba, level.quality, True, transparency)
                level.bytes += image_bytes(self._lzw, indices, palette, level.loss)
            return
        found = changed_box(words, prev)
        if found is None:
            return  # gifski skips a frame identical to the one before
        box, changed = found
        stride = self._budget.next_weight()
        counted = stride > 0
        inside = changed[box]
        crop = rgba[box]
        # Per level: None, or the drawn pixels (a whole-frame mask) and their stored rectangle.
        drawn: list[tuple[np.ndarray, tuple[slice, slice]] | None] = []
        area = 0  # the largest image this frame stores (what quantising it costs)
        for level in self._levels:
            shown = level.screen[box]
            moved = inside & _moved(crop, shown, level.threshold)
            shown[moved] = crop[moved]
            if not (counted and moved.any()):
                drawn.append(None)
                continue
            mask = np.zeros(rgba.shape[:2], dtype=bool)
            mask[box] = moved
            rows, _ = region = stored_region(mask, last=False)
            area = max(area, (rows.stop - rows.start) * rgba.shape[1])
            drawn.append((mask, region))
        if counted:  # the changed pixels, or a quarter of a much larger stored image
            self._budget.spend(max(int(inside.sum()), area // 4))
        self._flush(last=False)
        if any(drawn):  # a frame with nothing to count is not kept
            self._pending = (rgba.copy(), drawn, stride)

    def _flush(self, last: bool) -> None:
        """Count the held-back frame's images: trimmed, or whole when it is the ``last``."""
        if self._pending is None:
            return
        rgba, drawn, stride = self._pending
        self._pending = None
        for level, found in zip(self._levels, drawn, strict=True):
            if found is None:
                continue
            mask, region = found
            if last:
                region = stored_region(mask, last=True)
            image = np.where(mask[region][..., None], rgba[region], 0).astype(np.uint8)
            indices, palette = quantize(image, level.quality, False, True)
            level.bytes += stride * image_bytes(self._lzw, indices, palette, level.loss)

    def ratios(self, lossless_bytes: float) -> dict[int, float]:
        """{lossy level: estimated bytes of gifski's file / ``lossless_bytes``} (1.0 for every
        level before any frame, or without a lossless estimate)."""
        if self._prev is None or lossless_bytes <= 0:
            return {level.lossy: 1.0 for level in self._levels}
        self._flush(last=True)
        return {
            level.lossy: (self._header + level.bytes) / lossless_bytes for level in self._levels
        }
