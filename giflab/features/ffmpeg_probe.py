"""ffmpeg's GIF pipeline as GifLab's ffmpeg engine runs it, for the ``ffmpeg_colors_ratio_<C>_<L>`` probes.

The engine (``giflab.engines.ffmpeg``) posterises, builds one palette over all frames and maps
every frame to it with error diffusion; ffmpeg's GIF encoder then crops and LZW-codes each
frame. Nothing in gifsicle's probes sees the dithering, which is what decides ffmpeg's sizes
(a 64-colour render is often *larger* than the 256-colour one). Written from ffmpeg 5.1's
behaviour, with our own code, and checked against its output:

* **posterise** (``lutrgb``): lossy L drops ``ffmpeg_dropped_bits(L)`` low bits of R, G and B;
* **palettegen** ``stats_mode=full``: a histogram of every pixel of every whole frame, the last
  frame twice as the engine feeds it (kept here from the changed pixels alone,
  ``FullHistogram``), cut by Heckbert's median cut. The colours start in palettegen's hash
  order (the low 5 bits of R, G, B, then first appearance); the box with the largest weighted
  variance is split next, across its widest channel (green, then red, on ties), at the weighted
  median, after a sort on that channel alone by ``AV_QSORT``'s algorithm (not stable: equal
  values end up in its order, which moves the cut); ``C - 1`` boxes (one entry is reserved for
  transparency), each the integer weighted mean of its colours. The palettes equal ffmpeg's;
* **paletteuse** ``dither=sierra2_4a:diff_mode=rectangle``: each frame is processed only inside
  the box where its posterised pixels differ from the previous frame's (the rest is the previous
  output); inside it, every pixel takes its nearest palette colour (squared RGB distance; ties
  go the way paletteuse's k-d tree walk meets them) and passes the error on, 2/4 to the right
  and 1/4 below and below-left, within the box; alpha below 128 takes the transparent entry;
* **GIF encoder**: the first frame whole; each later one cropped to the box where its indices
  differ from the previous frame's, the unchanged pixels inside it set to the transparent index
  (``transdiff``); an identical frame is a 1x1 image. A frame that shows the transparent entry
  anywhere takes the translucent path instead: written whole, cropped only to its
  non-transparent pixels, no transdiff (a GIF with transparency costs every frame in full); LZW minimum code size 8 for every frame; a
  256-entry global table plus the first frame's local table.

``FfmpegProbe`` runs that for a few (colours, lossy) settings on the second decode pass and
counts the LZW bytes with ``giflab.features.lzw.LzwCounter``; on the corpus the counts are the
engine's to within a few bytes. Only the engine's default dither (``sierra2_4a``) is emulated.
The palette is ``giflab.features.palettegen``'s, the mapping ``giflab.features.paletteuse``'s;
this module is the encoder and the probe. Evidence: docs/features.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from giflab.features.lzw import FRAME_BYTES, LzwCounter, changed_box, inner_box, stored_bytes
from giflab.features.palettegen import group_sum, median_cut_palette, posterize_mask
from giflab.features.paletteuse import (
    candidate_grid,
    dither,
    kd_tree,
    paletteuse_palette,
)

CODE_SIZE = 8  # ffmpeg's GIF encoder codes every image with 8-bit symbols
# signature + screen descriptor, 256-entry global table, NETSCAPE loop extension, trailer
FFMPEG_HEADER_BYTES = 13 + 3 * 256 + 19 + 1


class _Setting:
    """One (colours, lossy) setting's palette, output frame and byte count."""

    def __init__(self, colors: int, lossy: int, palette: np.ndarray) -> None:
        self.colors, self.lossy = colors, lossy
        self.palette = palette
        self.transparent = len(palette)  # the reserved entry, after the colours
        self.starts, self.candidates = candidate_grid(palette)
        self.tree = kd_tree(palette)
        self.out: np.ndarray | None = None  # the current output frame's indices
        self.first_bytes = 0  # the first image's bytes
        self.image_bytes = 0  # the later images' bytes, and how many were counted
        self.images = 0
        self.weight = 0  # the later frames the counted images stand for
        self.repeats = 0  # later frames the same as the frame before them, and their bytes
        self.repeat_bytes = 0
        self.clear = 0  # pixels of the output frame at the transparent entry

    def local_table_bytes(self) -> int:
        return 3 << max(1, int(self.transparent).bit_length())


class FfmpegProbe:
    """Estimated bytes of GifLab's ffmpeg render at each (colours, lossy) of ``settings``.

    Built from the whole GIF's ``FullHistogram`` (a first pass); feed it every frame again in
    order (``add``), then ``ratios(full_bytes)`` gives each setting's estimate over
    ``full_bytes``. A frame that repeats the one before it costs a known image (no dithering)
    and is counted exactly. Every other frame is processed until ``budget`` pixels of the later
    frames have been dithered per setting twice over, then every 4th (and the one before it),
    every 8th past three budgets, and so on, so a long GIF costs a few budgets at most; the later
    images counted, each weighted by its stride, then stand for all the later changed frames.
    Work per frame is bounded by the box that changed: nothing outside it can change after
    posterising, dithering or encoding.
    """

    def __init__(
        self,
        words: np.ndarray,
        counts: np.ndarray,
        settings: Sequence[tuple[int, int]],
        budget: int | None = None,
    ) -> None:
        if budget is not None and budget < 1:
            raise ValueError(f"budget must be >= 1 pixel, got {budget}")
        self.settings = tuple((int(c), int(lv)) for c, lv in settings)
        self._budget = budget
        self._lzw = LzwCounter()
        masks = {lossy: posterize_mask(lossy) for _, lossy in self.settings}
        histograms = {
            mask: group_sum(words & np.uint32(mask), counts.astype(np.float64))
            for mask in set(masks.values())
        }
        # Settings grouped by their posterise mask: one box per mask and frame.
        self._by_mask: dict[int, list[_Setting]] = {}
        self._settings: dict[tuple[int, int], _Setting] = {}
        for colors, lossy in self.settings:
            palette = paletteuse_palette(median_cut_palette(*histograms[masks[lossy]], colors))
            setting = _Setting(colors, lossy, palette)
            self._settings[(colors, lossy)] = setting
            self._by_mask.setdefault(masks[lossy], []).append(setting)
        self._prev: np.ndarray | None = None  # the last frame processed
        self._last: np.ndarray | None = None  # the last frame given
        self._frames = 0
        self._changed = 0  # frames given that differ from the one before them
        self._pixels = 0
        self._stride = 1

    def add(self, words: np.ndarray) -> None:
        """The next frame, as an (H, W) array of colour words (``sampling.rgba_words``)."""
        self._frames += 1
        last, self._last = self._last, words
        if last is not None and np.array_equal(words, last):
            # The same frame again: its image is known without dithering, and it takes no
            # place in the stride (a GIF that repeats every other frame, as terminal recordings
            # do, would otherwise be counted on one parity only: bubbletea's pager was 20 % high).
            for setting in self._settings.values():
                setting.repeats += 1
                setting.repeat_bytes += self._repeat_bytes(setting)
            return
        index, self._changed = self._changed, self._changed + 1
        phase = index % self._stride
        # Past the budget, every stride-th frame is counted, standing for the stride of frames
        # it ends, and the frame just before it is dithered (not counted) so that the counted
        # one is compared with its true predecessor, as the engine compares every frame.
        weight = self._stride if phase == 0 else 0
        if not weight and phase != self._stride - 1:
            return
        prev, self._prev = self._prev, words
        whole = (slice(0, words.shape[0]), slice(0, words.shape[1]))
        raw = whole
        if prev is not None:
            found = changed_box(words, prev)
            raw = None if found is None else found[0]
        dithered = 0
        for mask, settings in self._by_mask.items():
            box = raw
            if prev is not None and raw is not None and mask != 0xFFFFFFFF:
                m = np.uint32(mask)
                found = changed_box(words[raw] & m, prev[raw] & m)
                box = None if found is None else inner_box(found[0], raw)
            frame = None if box is None else np.ascontiguousarray(words[box] & np.uint32(mask))
            for setting in settings:
                dithered = max(dithered, self._frame(setting, frame, box, whole, weight))
        if prev is not None:  # the first frame is whole and always counted: not budgeted
            self._pixels += dithered
        if self._budget is not None:
            # A stride of 2 dithers every frame anyway (each counted one and the one before it):
            # no stride until two budgets, then 4, 8, ...
            spent = self._pixels // self._budget
            self._stride = 1 if spent < 2 else 1 << min(30, spent)

    def _repeat_bytes(self, setting: _Setting) -> int:
        """The image the encoder writes for a frame that repeats the one before it: a 1x1
        transparent image, or on the translucent path the whole output frame again."""
        trans = np.uint8(setting.transparent)
        symbols = np.array([trans], np.uint8)
        if setting.out is not None and setting.clear:
            found = changed_box(setting.out, trans)
            symbols = setting.out[found[0]] if found is not None else setting.out[-1:, -1:]
        return FRAME_BYTES + stored_bytes(self._lzw.code_bits(symbols, CODE_SIZE))

    def _frame(
        self,
        setting: _Setting,
        frame: np.ndarray | None,
        box: tuple[slice, slice] | None,
        whole: tuple[slice, slice],
        weight: int,
    ) -> int:
        """Dither ``frame`` (the posterised ``box``; None: nothing changed) into ``setting``'s
        output, count the image the encoder writes, and return the pixels dithered."""
        first = setting.out is None
        if first:
            setting.out = np.zeros((whole[0].stop, whole[1].stop), np.uint8)
        out = setting.out
        symbols = None  # an unchanged frame: a 1x1 transparent image
        pixels = 0
        trans = np.uint8(setting.transparent)
        if frame is not None and box is not None:
            src = frame.view(np.uint8).reshape(*frame.shape, 4).astype(np.int64)
            target = np.empty(frame.shape, np.uint8)
            dither(
                src,
                target,
                setting.palette,
                setting.starts,
                setting.candidates,
                setting.tree,
                setting.transparent,
            )
            pixels = target.size
            before = out[box]
            setting.clear += int(np.count_nonzero(target == trans))
            setting.clear -= int(np.count_nonzero(before == trans))
            if not first:
                found = changed_box(target, before)
                if found is not None:
                    crop, changed = found
                    symbols = np.where(changed[crop], target[crop], trans)
            out[box] = target
            if first:
                symbols = out
        if setting.clear:
            # A frame showing the transparent entry anywhere is written whole (no transdiff),
            # cropped to its non-transparent pixels: the encoder's translucent path.
            found = changed_box(out, trans)
            symbols = out[found[0]] if found is not None else out[-1:, -1:]
        elif symbols is None:
            symbols = np.array([trans], np.uint8)
        image = FRAME_BYTES + stored_bytes(self._lzw.code_bits(symbols, CODE_SIZE))
        if first:
            setting.first_bytes = image
        else:
            setting.image_bytes += weight * image
            setting.weight += weight
            setting.images += bool(weight)
        return pixels

    def total_bytes(self, colors: int, lossy: int) -> float:
        """Estimated bytes of the whole render at (``colors``, ``lossy``); 0 before any frame."""
        setting = self._settings[(int(colors), int(lossy))]
        if setting.out is None:
            return 0.0
        later = float(setting.repeat_bytes)
        if setting.weight:  # the counted later images stand for every later changed frame
            later += setting.image_bytes * (self._frames - 1 - setting.repeats) / setting.weight
        return float(
            FFMPEG_HEADER_BYTES + setting.local_table_bytes() + setting.first_bytes + later
        )

    def ratios(self, full_bytes: float) -> dict[tuple[int, int], float]:
        """``{(colors, lossy): estimated bytes / full_bytes}``; 1.0 without frames or bytes."""
        out = {}
        for key in self.settings:
            total = self.total_bytes(*key)
            out[key] = total / full_bytes if total > 0 and full_bytes > 0 else 1.0
        return out
