"""ImageMagick's ``-fuzz F% -layers Optimize`` as GifLab's ImageMagick engine runs it, for the
``imagemagick_fuzz_ratio_<L>`` probes.

The engine (``giflab.engines.imagemagick``) maps lossy L to ``-fuzz L/6 %`` and optimises the
coalesced frames with ``-layers Optimize``: every pixel of a frame that is within the fuzz of what
the previous frames left on screen becomes transparent, and each frame is cropped to the rest.
The screen keeps the *old* colour of such a pixel, so small changes pile up until one crosses the
fuzz: a slow fade or a camera's noise is dropped, a moving edge is not. That, not the palette,
is what moves ImageMagick's sizes between lossy levels (on the corpus its renders at lossy 120
are 8-100 % of its lossless ones, and the features without this probe left its error growing
from 8 % at lossy 0 to 36 % at lossy 120). Written from ImageMagick 6.9's behaviour, our own code:

* **similar** (``IsMagickColorSimilar``): two opaque pixels are within fuzz F % when
  ``dR² + dG² + dB² <= 3 (F/100 · 255)²`` (8-bit channels); two transparent pixels always are,
  an opaque and a transparent one never (below F = 100 %);
* **screen**: the first frame as it is; then each pixel that changed in the GIF and is not
  similar to the screen takes the frame's colour, the rest keep the screen's. A pixel the GIF
  does not change cannot change on screen either, so only the GIF's changed pixels are compared;
* **stored image**: the bounding box of the pixels that changed on screen, the unchanged pixels in
  it transparent, LZW-coded with the box's own colour table (``-layers Optimize`` then ``-colors``
  give every frame a local table).

``FuzzProbe`` counts those images for each level (level 0: no fuzz, the GIF's own changes coded
the same way) and reports each total over the GIF's lossless estimate
(``giflab.features.lzw.DeltaLzwEstimate``, gifsicle's layout): at level 0 the ratio is the
engine's layout (a local table per frame, transparency in every changed box) against gifsicle's. Not emulated: the palettes (``-colors`` quantises each frame with its own
octree after the optimisation; the other probes describe palettes), the disposal choices of
``-layers Optimize`` and its crop against the previous *frame* rather than the screen.
Evidence: docs/features.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from giflab.engines.imagemagick import FUZZ_PER_LOSSY
from giflab.features.lzw import (
    FRAME_BYTES,
    PALETTE_LIMIT,
    FrameBudget,
    LzwCounter,
    changed_box,
    min_code_size,
)


def fuzz_percent(lossy: int) -> float:
    """The ``-fuzz`` percentage GifLab's ImageMagick engine gives lossy level ``lossy``."""
    return round(lossy * FUZZ_PER_LOSSY, 3)


def fuzz_threshold(lossy: int) -> float:
    """The largest ``dR² + dG² + dB²`` (8-bit) two opaque pixels may differ by at ``lossy``."""
    return 3.0 * (fuzz_percent(lossy) / 100.0 * 255.0) ** 2


def similar(new: np.ndarray, old: np.ndarray, threshold: float) -> np.ndarray:
    """Per pixel of two (..., 4) RGBA arrays: within the fuzz (``fuzz_threshold``)."""
    opaque_new, opaque_old = new[..., 3] >= 128, old[..., 3] >= 128
    diff = new[..., :3].astype(np.int32) - old[..., :3]
    close = np.einsum("...c,...c->...", diff, diff) <= threshold
    return np.where(opaque_new & opaque_old, close, opaque_new == opaque_old)


def image_bytes(lzw: LzwCounter, crop: np.ndarray, drawn: np.ndarray | None) -> int:
    """Bytes of one stored image: ``crop``'s colour words (2-D), the pixels outside ``drawn``
    (a mask of the crop's shape, None for all) transparent, with a local table of its own."""
    words = crop.ravel()
    if drawn is None:
        inverse, colours = pd.factorize(words)
        symbols, used = inverse, len(colours)
    else:
        keep = drawn.ravel()
        inverse, colours = pd.factorize(words[keep])
        symbols = np.full(len(words), len(colours), dtype=np.int64)
        symbols[keep] = inverse
        used = len(colours) + 1
    code_size = min_code_size(min(used, PALETTE_LIMIT) - 1)
    symbols = np.minimum(symbols, PALETTE_LIMIT - 1)  # a 257th colour shares the last index
    return FRAME_BYTES + (3 << code_size) + lzw.data_bytes(symbols, code_size)


# What the engine's file holds besides its images: signature and screen descriptor, the
# NETSCAPE loop extension, the trailer (the first image's table is counted with it, as local).
IM_HEADER_BYTES = 13 + 19 + 1


class _Level:
    """One fuzz level's screen and byte count."""

    def __init__(self, lossy: int) -> None:
        self.lossy = lossy
        self.threshold = fuzz_threshold(lossy)
        self.screen: np.ndarray | None = None  # RGBA, what the previous stored images show
        self.words: np.ndarray | None = None  # the screen's colour words
        self.bytes = 0


class FuzzProbe:
    """Feed every frame (``add``: RGBA and its colour words) in order; ``ratios`` gives, per lossy
    level, the estimated bytes of the engine's optimised frames at that level's fuzz (level 0:
    none, the frames as they change) over an estimate of the GIF re-encoded losslessly.

    Every frame's screen is kept; the images are counted until ``budget`` changed pixels have
    been, then every 2nd frame's (weighted 2), then every 4th, and so on, the same frames at
    every level.
    """

    def __init__(self, levels: Sequence[int], budget: int | None = None) -> None:
        self._levels = [_Level(int(level)) for level in levels]
        self._lzw = LzwCounter()
        self._prev: np.ndarray | None = None  # the previous frame's colour words
        self._budget = FrameBudget(budget)

    def add(self, rgba: np.ndarray, words: np.ndarray) -> None:
        """The next frame: (H, W, 4) uint8 RGBA and its (H, W) colour words (``rgba_words``)."""
        prev, self._prev = self._prev, words.copy()
        if prev is None:
            first = image_bytes(self._lzw, words, None)
            for level in self._levels:
                level.screen, level.words = rgba.copy(), words.copy()
                level.bytes += first
            return
        found = changed_box(words, prev)
        if found is None:
            return  # nothing changed in the GIF, so nothing on any screen
        box, changed = found
        stride = self._budget.next_weight()
        counted = stride > 0
        inside = changed[box]
        if counted:
            self._budget.spend(inside.sum())
        crop_rgba, crop_words = rgba[box], words[box]
        for level in self._levels:
            shown = level.screen[box]
            moved = inside & ~similar(crop_rgba, shown, level.threshold)
            if not moved.any():
                continue
            shown[moved] = crop_rgba[moved]
            level.words[box][moved] = crop_words[moved]
            if counted:
                rows = np.flatnonzero(moved.any(axis=1))
                cols = np.flatnonzero(moved.any(axis=0))
                inner = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
                level.bytes += stride * image_bytes(
                    self._lzw, level.words[box][inner], moved[inner]
                )

    def ratios(self, lossless_bytes: float) -> dict[int, float]:
        """{lossy level: estimated bytes of the engine's file at its fuzz / ``lossless_bytes``}
        (1.0 for every level before any frame, or without a lossless estimate)."""
        if self._prev is None or lossless_bytes <= 0:
            return {level.lossy: 1.0 for level in self._levels}
        return {
            level.lossy: (IM_HEADER_BYTES + level.bytes) / lossless_bytes for level in self._levels
        }
