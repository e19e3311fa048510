"""gifski 1.7.1 as GifLab's gifski engine runs it, for the ``gifski_quality_ratio_<L>`` probes.

The engine (``giflab.engines.gifski``) gives gifski ``--quality Q`` (``gifski_quality``: lossy 0
-> 100, 120 -> 10). The probe runs the GIF's own frames through gifski's pipeline, as its source
(release 1.7, read in the search index) and its 1.7.1 binary show it, our own code:

* **denoiser** (``giflab.features.gifski_denoise``): per pixel, the colour on screen is kept
  while the new one differs from it by less than ``(55 - Q/2)²`` (weighted ``2 dR² + 3 dG² +
  dB²``); the threshold doubles on alternate frames for one of two colour cohorts (``(r/2 > g)
  != (b > 127)``), so a change just over it lands a frame late for half the pixels; a change that holds for the next 1-4
  frames (gifski looks five frames ahead) is drawn as the median of its stay, and each pixel
  gets an *importance*: how far the change passed the threshold, 0 when nothing changed, 1 for
  the first 1-3 frames of a stay where the threshold is low (a second chance);
* **skipped frames**: a frame with no important pixel is not stored (its time goes to the next
  one): gifski feeds repeated frames to the denoiser and they vanish here;
* **cleared pixels**: below Q 100 the unimportant pixels become transparent (every frame at Q <=
  83, on ``n % 5 >= (Q-80)/4`` of the stored frames above; at Q 100 libimagequant's remap
  against the screen does it);
* **palette** per frame by libimagequant (the same library, its C release 2.x through the
  ``imagequant`` package): target quality ``min(100, 4Q/3)`` (100 for the first frame), each
  pixel weighed by its importance (gifski passes the importance map), transparency as a fixed
  colour, Floyd-Steinberg at level ``max(0.2, Q/50 - 1)``. gifski 1.7 links libimagequant 4.0
  (Rust), whose histogram weighs a transparent pixel by its importance too and drops it as the
  fixed colour, where the C release counts every transparent pixel with weight 2000 in the
  error budget (capped at a tenth of the image): a later frame's crop, mostly cleared, lost
  half its colours. So the C release is given what 4.0 counts: the important opaque pixels
  as one row, with weightless filler for 4.0's cap (``histogram_strip``);
* **what the screen already shows** is not drawn again: a pixel whose denoised colour is the one
  last drawn there is transparent, unless it is important (a stay's second chance) and its
  colour in the new palette is nearer to it than the screen's: libimagequant 4's remap against
  the screen, which the C release here does not follow closely enough to be left to it;
* **stored image**: the rows holding something new and, on a cleared frame, every row with an
  important pixel (a stay's second chance is redrawn wherever the new palette is nearer, far
  from the change too); gifski trims top and bottom only, never the sides; the whole frame for
  the first and for the last one stored; a frame with nothing new is dropped, second chances
  or not, the last one too (the 1.7.1 binary merges two identical frames into one image; the
  1.7.0 source would store it whole);
* **encoder**: gifsicle's lossy LZW inside gifski below Q 100 at loss
  ``ceil((100/6 - Q/6)^1.75)`` (``giflab.features.lossy_lzw``), plain LZW at Q 100; a local
  colour table per image.

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
from collections import deque
from collections.abc import Sequence

import numpy as np

from giflab.engines.gifski import gifski_quality
from giflab.features.gifski_denoise import LOOKAHEAD, denoise, motion_threshold
from giflab.features.gifski_screen import crop_new, draw, new_rows
from giflab.features.lossy_lzw import lossy_code_bits
from giflab.features.lzw import (
    FRAME_BYTES,
    LOOP_EXTENSION_BYTES,
    FrameBudget,
    LzwCounter,
    min_code_size,
    stored_bytes,
    table_entries,
)

# What gifski's file holds besides its images: signature and screen descriptor, a 2-entry
# global table and the trailer (every image has a local table, counted with it); the NETSCAPE
# loop extension when the source has a loop count (the engine passes it as --repeat).
GIFSKI_HEADER_BYTES = 13 + 6 + 1
# libimagequant caps a colour's weight at a tenth of the image's pixels; 4.0 weighs a pixel
# importance / 170, the C release importance / 128 (the same cap needs this many more pixels)
CAP_AREA_SCALE = 170 / 128


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


def histogram_strip(
    rgba: np.ndarray, importance: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(pixels (1, N, 4), weights (N,)) that the C release counts as libimagequant 4.0 counts
    ``rgba`` weighed by ``importance`` (None: 255 everywhere): the opaque pixels of nonzero
    importance, then weightless filler up to the pixels that give the same cap; None when no
    pixel counts."""
    h, w = rgba.shape[:2]
    weights = np.full((h, w), 255, np.uint8) if importance is None else importance
    counted = (weights > 0) & (rgba[..., 3] >= 128)
    n = int(np.count_nonzero(counted))
    if not n:
        return None
    pixels = rgba[counted]
    filler = max(0, round(h * w * CAP_AREA_SCALE) - n)  # weight 0: not in the histogram
    strip = np.empty((1, n + filler, 4), np.uint8)
    strip[0, :n] = pixels
    strip[0, n:] = pixels[0]
    strip_weights = np.zeros(n + filler, np.uint8)
    strip_weights[:n] = weights[counted]
    return strip, strip_weights


def quantize(
    rgba: np.ndarray,
    quality: int,
    first_frame: bool,
    transparency: bool,
    importance: np.ndarray | None = None,
    screen: np.ndarray | None = None,
):
    """(indices (H, W) uint8, palette (N, 4) uint8) of ``rgba`` quantised by libimagequant as
    gifski sets it up at ``quality``: ``importance`` weighs the pixels (0: ignored), ``screen``
    is what the frame is drawn over (pixels it already shows may become transparent). The
    palette comes from ``histogram_strip``; the frame is remapped to it."""
    from imagequant._libimagequant import ffi, lib  # loaded with the first probe

    h, w = rgba.shape[:2]
    pixels = np.ascontiguousarray(rgba, dtype=np.uint8)
    strip = histogram_strip(pixels, importance)
    attr = lib.liq_attr_create()
    image = counted = result = ffi.NULL
    held = []  # buffers libimagequant reads until it is done
    try:
        lib.liq_set_quality(attr, 0, color_quality(quality, first_frame))
        image = lib.liq_image_create_rgba(attr, ffi.from_buffer(pixels), w, h, 0.0)
        source = image
        if strip is not None:
            held.extend(strip)
            n = strip[1].size
            counted = lib.liq_image_create_rgba(attr, ffi.from_buffer(strip[0]), n, 1, 0.0)
            lib.liq_image_set_importance_map(
                counted, ffi.from_buffer(strip[1]), n, lib.LIQ_COPY_PIXELS
            )
            source = counted
        elif importance is not None:  # only transparent pixels count: the fixed colour alone
            weights = np.ascontiguousarray(importance, dtype=np.uint8)
            held.append(weights)
            lib.liq_image_set_importance_map(
                image, ffi.from_buffer(weights), h * w, lib.LIQ_COPY_PIXELS
            )
        if transparency:
            lib.liq_image_add_fixed_color(source, {"r": 0, "g": 0, "b": 0, "a": 0})
        out = ffi.new("liq_result**")
        code = lib.liq_image_quantize(source, attr, out)
        if code != lib.LIQ_OK:
            raise RuntimeError(f"libimagequant failed to quantise a frame (code {code})")
        result = out[0]
        lib.liq_set_dithering_level(result, dithering_level(quality))
        if screen is not None:
            shown = np.ascontiguousarray(screen, dtype=np.uint8)
            held.append(shown)
            # the image owns the background from here on
            lib.liq_image_set_background(
                image, lib.liq_image_create_rgba(attr, ffi.from_buffer(shown), w, h, 0.0)
            )
        indices = np.empty(h * w, np.uint8)
        lib.liq_write_remapped_image(result, image, ffi.from_buffer(indices), h * w)
        pal = lib.liq_get_palette(result)
        # liq_color is four bytes (r, g, b, a)
        palette = np.frombuffer(ffi.buffer(pal.entries, 4 * pal.count), np.uint8).reshape(-1, 4)
        palette = palette.copy()  # the result owns the entries until it is destroyed
    finally:
        if result != ffi.NULL:
            lib.liq_result_destroy(result)
        if counted != ffi.NULL:
            lib.liq_image_destroy(counted)
        if image != ffi.NULL:
            lib.liq_image_destroy(image)
        lib.liq_attr_destroy(attr)
    return indices.reshape(h, w), palette


def image_bytes(
    lzw: LzwCounter, indices: np.ndarray, palette: np.ndarray, transparent: int, loss: int
) -> int:
    """Bytes of one stored image with a local table: plain LZW, or gifsicle's lossy LZW at
    ``loss`` (``transparent``: the index never merged with a colour, -1 for none)."""
    code_size = min_code_size(len(palette) - 1)
    overhead = FRAME_BYTES + 3 * table_entries(len(palette))
    if loss <= 0:
        return overhead + lzw.data_bytes(indices, code_size)
    bits = lossy_code_bits(indices, palette[:, :3], code_size, loss, transparent)
    return overhead + stored_bytes(bits)


class _Level:
    """One quality's denoiser state, screens and byte count."""

    def __init__(self, lossy: int, height: int, width: int) -> None:
        self.lossy = lossy
        self.quality = gifski_quality(lossy)
        self.threshold = motion_threshold(self.quality)
        self.loss = gifsicle_loss(self.quality)
        self.held = np.zeros((height, width, 4), np.uint8)  # the denoiser's colours
        self.stay = np.zeros((height, width), np.uint8)
        self.stayed = np.zeros((height, width), np.uint8)
        self.out = np.zeros((height, width, 4), np.uint8)  # the denoised frame
        self.importance = np.zeros((height, width), np.uint8)
        self.busy = np.ones(height, np.bool_)
        self.screen = np.zeros((height, width, 4), np.uint8)  # as the file shows it
        self.drawn = np.zeros((height, width, 4), np.uint8)  # the denoised colours drawn
        self.stored = 0  # frames quantised so far
        self.keeps = False  # the last frame leaves the screen as it is (no clearing disposal)
        self.bytes = 0
        # The last frame quantised: counted trimmed when another follows, whole if none does.
        self.pending: tuple | None = None
        self.pending_bytes = 0  # its bytes trimmed


class GifskiProbe:
    """Feed every frame (``add``: RGBA and its colour words) in order; ``ratios`` gives, per
    lossy level, the estimated bytes of the gifski engine's file at that level over an estimate
    of the GIF re-encoded losslessly.

    Every frame goes through the denoisers; images are quantised and counted until ``budget``
    pixels have been (per frame a quarter of its largest stored image, gifski storing whole rows),
    then every 2nd changed frame's (weighted 2), then every 4th, and so on, the same frames at
    every level (``lzw.FrameBudget``; a repeated frame is always counted, once); a frame not
    counted still moves the screens.
    """

    def __init__(
        self, levels: Sequence[int], budget: int | None = None, loops: bool = True
    ) -> None:
        self._header = GIFSKI_HEADER_BYTES + (LOOP_EXTENSION_BYTES if loops else 0)
        self._lossy = [int(level) for level in levels]
        self._levels: list[_Level] = []
        self._lzw = LzwCounter()
        self._budget = FrameBudget(budget)
        self._ring: np.ndarray | None = None  # the denoiser's look-ahead window
        self._window: deque = deque()  # per frame in it: (rows changed from the one before, keeps)
        self._fed = 0  # frames in the ring so far (transparent fillers after the last included)
        self._out = 0  # frames denoised so far
        self._transparent_first = False
        self._prev: tuple[np.ndarray, np.ndarray] | None = None  # (RGBA, words): next to feed
        self._last_words: np.ndarray | None = None  # the words of the frame fed last
        self._done = False

    def add(self, rgba: np.ndarray, words: np.ndarray) -> None:
        """The next frame: (H, W, 4) uint8 RGBA and its (H, W) colour words (``rgba_words``)."""
        if self._prev is not None:
            self._feed(*self._prev, following=rgba)
        self._prev = (rgba.copy(), words.copy())

    def _feed(self, rgba: np.ndarray, words: np.ndarray, following: np.ndarray | None) -> None:
        """Put a frame into the look-ahead window; ``following`` is the frame after it."""
        height, width = rgba.shape[:2]
        if self._ring is None:
            self._ring = np.zeros((LOOKAHEAD, height, width, 4), np.uint8)
            self._levels = [_Level(lossy, height, width) for lossy in self._lossy]
            self._transparent_first = bool((rgba[..., 3] < 128).any())
            self._last_words = words
            changed = np.ones(height, np.bool_)
        else:
            changed = (words != self._last_words).any(axis=1)
            self._last_words = words
        # gifski clears a frame's area before the next one when that one is more transparent
        if following is None:
            keeps = not self._transparent_first
        else:
            keeps = not bool((following[..., 3] < rgba[..., 3]).any())
        self._ring[self._fed % LOOKAHEAD] = rgba
        self._window.append((changed, keeps))
        self._fed += 1
        if self._fed >= LOOKAHEAD:
            self._denoise_oldest(odd=self._fed % 2 == 1)

    def _denoise_oldest(self, odd: bool) -> None:
        """Denoise the oldest frame of the window and store it at every level."""
        rows = np.zeros(self._ring.shape[1], np.bool_)
        for changed, _ in self._window:
            rows |= changed  # where the window's frames differ; elsewhere nothing moves
        changed, keeps = self._window.popleft()
        # the budget strides over the frames that differ from the one before: a repeated frame
        # stores nothing new, and weighing a later image by frames that were repeats overcounts
        stride = self._budget.next_weight() if changed.any() else 1
        area = 0
        for level in self._levels:
            looked = rows | level.busy
            denoise(
                self._ring,
                self._out % LOOKAHEAD,
                level.held,
                level.stay,
                level.stayed,
                level.threshold,
                odd,
                looked,
                level.out,
                level.importance,
                level.busy,
            )
            area = max(area, self._store(level, looked, keeps, stride))
        if stride:
            self._budget.spend(area // 4)
        self._out += 1

    def _store(self, level: _Level, looked: np.ndarray, keeps: bool, stride: int) -> int:
        """Store the denoised frame at ``level`` (the rows ``looked`` at may have changed);
        returns the pixels quantised."""
        first = level.stored == 0
        prev_keeps, level.keeps = level.keeps, keeps
        found = np.flatnonzero(looked)
        if not len(found):
            return 0
        top, bottom = found[0], found[-1] + 1
        if prev_keeps and not level.importance[top:bottom].any():
            return 0  # nothing changed: the frame's time goes to the next one
        clear = (
            prev_keeps
            and level.quality < 100
            and level.stored % 5 >= max(0, level.quality - 80) // 4
        )
        level.stored += 1
        if first:
            rows = slice(0, level.out.shape[0])
        else:
            start, stop = new_rows(level.out, level.drawn, level.importance, top, bottom, clear)
            if start == stop:  # nothing new: dropped
                self._count(level, last=False)
                return 0
            rows = slice(start, stop)
        crop, new = crop_new(level.out, level.drawn, level.importance, rows.start, rows.stop, clear)
        if not stride:  # not counted: the screens move all the same
            level.screen[rows][new] = crop[new]
            level.drawn[rows][new] = crop[new]
            if not keeps:
                level.screen[rows] = 0
            return 0
        weights = level.importance[rows] if first or prev_keeps else None
        indices, palette = quantize(
            crop,
            level.quality,
            first,
            transparency=not first or self._transparent_first,
            importance=weights,
            screen=None if first else level.screen[rows],
        )
        clear_entries = np.flatnonzero(palette[:, 3] <= 128)
        transparent = int(clear_entries[0]) if len(clear_entries) else -1
        palette[clear_entries, 3] = 0
        if len(clear_entries) > 1:  # gifski keeps one transparent index
            indices[np.isin(indices, clear_entries)] = transparent
        self._count(level, last=False)
        level.pending = (rows, indices, palette, transparent, stride)
        # A pixel the screen already shows is transparent (libimagequant 4's remap against the
        # screen), unless it is important and its new palette colour is nearer to it than the
        # screen's: then gifski draws it again. The screens then show what was drawn.
        kept_start, kept_stop = draw(
            indices,
            palette,
            crop,
            new,
            level.importance[rows],
            level.screen[rows],
            level.drawn[rows],
            transparent,
            first,
            keeps,
        )
        area = (rows.stop - rows.start) * level.out.shape[1]
        if kept_start == kept_stop:
            level.pending_bytes = 0
            return area
        kept = slice(kept_start, kept_stop)
        level.pending_bytes = image_bytes(
            self._lzw, indices[kept], palette, transparent, level.loss
        )
        return area

    def _count(self, level: _Level, last: bool) -> None:
        """Count the frame held back: trimmed, or whole when it is the ``last`` one stored (a
        last frame with nothing new is not stored)."""
        if level.pending is None:
            return
        rows, indices, palette, transparent, stride = level.pending
        level.pending = None
        height, width = level.screen.shape[:2]
        trimmed = level.pending_bytes
        level.bytes += stride * trimmed  # it stands for the frames the budget's stride skipped
        if not last or not trimmed:
            # gifski 1.7.1 does not store a last frame with nothing new either: its time goes
            # to the frame before (two identical frames make one image)
            return
        # Stored whole: once, whatever the stride (the trimmed image's bytes are in already).
        whole = np.full((height, width), max(transparent, 0), np.uint8)
        whole[rows] = indices
        level.bytes += max(
            0, image_bytes(self._lzw, whole, palette, transparent, level.loss) - trimmed
        )

    def _finish(self) -> None:
        """Feed the last frame and flush the window with transparent frames, as gifski does
        (the cohort parity then read before the frame count moves)."""
        self._done = True
        self._feed(*self._prev, following=None)
        frames = self._fed
        height = self._ring.shape[1]
        while self._out < frames:
            odd = self._fed % 2 == 1
            self._ring[self._fed % LOOKAHEAD] = 0
            self._window.append((np.ones(height, np.bool_), True))
            self._fed += 1
            if self._fed >= LOOKAHEAD:
                self._denoise_oldest(odd)
        for level in self._levels:
            self._count(level, last=True)

    def ratios(self, lossless_bytes: float) -> dict[int, float]:
        """{lossy level: estimated bytes of gifski's file / ``lossless_bytes``} (1.0 for every
        level before any frame, or without a lossless estimate)."""
        if self._prev is None or lossless_bytes <= 0:
            return {lossy: 1.0 for lossy in self._lossy}
        if not self._done:
            self._finish()
        return {
            level.lossy: (self._header + level.bytes) / lossless_bytes for level in self._levels
        }
