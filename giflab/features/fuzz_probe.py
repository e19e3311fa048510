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
engine's layout (a local table per frame, transparency in every changed box) against gifsicle's.
``color_ratios`` adds ``-colors`` after the fuzz (``giflab.features.imagemagick_colors``).
Both count what ImageMagick copies from the source onto every frame it writes
(``copied_metadata_bytes``: an XMP or ICC profile stored once becomes one per frame). Not
emulated: the disposal choices of ``-layers Optimize`` and its crop against the previous *frame*
rather than the screen. Evidence: docs/features.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd

from giflab.engines.imagemagick import FUZZ_PER_LOSSY
from giflab.features.imagemagick_colors import GAMMA_EXTENSION_BYTES, quantized_indices, remap
from giflab.features.lzw import (
    FRAME_BYTES,
    LOOP_EXTENSION_BYTES,
    PALETTE_LIMIT,
    FrameBudget,
    LzwCounter,
    changed_box,
    inner_box,
    min_code_size,
    table_entries,
)
from giflab.gif_blocks import APPLICATION, COMMENT, walk


def fuzz_percent(lossy: int) -> float:
    """The ``-fuzz`` percentage GifLab's ImageMagick engine gives lossy level ``lossy``."""
    return round(lossy * FUZZ_PER_LOSSY, 3)


def fuzz_threshold(lossy: int) -> float:
    """The largest ``dR² + dG² + dB²`` (8-bit) two opaque pixels may differ by at ``lossy``."""
    return 3.0 * (fuzz_percent(lossy) / 100.0 * 255.0) ** 2


def similar(new: np.ndarray, old: np.ndarray, threshold: float) -> np.ndarray:
    """Per pixel of two (..., 4) RGBA arrays: within the fuzz (``fuzz_threshold``)."""
    return Distance(new, old).within(threshold)


# Distance's code for two transparent pixels (similar at any fuzz) and for an opaque and a
# transparent one (similar at none below 100 %).
_BOTH_CLEAR = -1
_ONE_CLEAR = np.iinfo(np.int32).max


@numba.njit(cache=True, nogil=True)
def _squared_distances(new: np.ndarray, old: np.ndarray, out: np.ndarray) -> None:
    """``out[y, x]``: ``dR² + dG² + dB²`` of two opaque pixels, else the codes above."""
    for y in range(new.shape[0]):
        for x in range(new.shape[1]):
            opaque_new, opaque_old = new[y, x, 3] >= 128, old[y, x, 3] >= 128
            if opaque_new and opaque_old:
                total = 0
                for c in range(3):
                    d = np.int32(new[y, x, c]) - np.int32(old[y, x, c])
                    total += d * d
                out[y, x] = total
            elif opaque_new or opaque_old:
                out[y, x] = _ONE_CLEAR
            else:
                out[y, x] = _BOTH_CLEAR


class Distance:
    """How far apart two (H, W, 4) RGBA arrays are per pixel, to test at several fuzz levels."""

    def __init__(self, new: np.ndarray, old: np.ndarray) -> None:
        self.squared = np.empty(new.shape[:2], np.int32)
        _squared_distances(new, old, self.squared)

    def within(self, threshold: float) -> np.ndarray:
        """Per pixel: within the fuzz ``threshold`` (``similar``)."""
        return self.squared <= min(threshold, _ONE_CLEAR - 1)


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
    used = min(used, PALETTE_LIMIT)
    code_size = min_code_size(used - 1)
    symbols = np.minimum(symbols, PALETTE_LIMIT - 1)  # a 257th colour shares the last index
    return FRAME_BYTES + 3 * table_entries(used) + lzw.data_bytes(symbols, code_size)


# What the engine's file holds besides its images: signature and screen descriptor and the
# trailer (the first image's table is counted with it, as local). ImageMagick 6.9's writer adds
# the NETSCAPE loop extension only to a file of two images or more whose source had one (its
# reader keeps "iterations" 1 otherwise), and its gamma extension before the first image when
# that frame is all opaque grey (13 corpus GIFs; none otherwise).
IM_HEADER_BYTES = 13 + 1
# A frame that changes nothing on screen is still written (ImageMagick keeps every frame for its
# delay) as a 1x1 transparent image: graphic control extension 8, descriptor 10, a 2-entry table
# 6, LZW 5 bytes; and when -colors quantises it (its colormap is larger than C) also the gamma
# extension ImageMagick writes before a quantised grey image (``GAMMA_EXTENSION_BYTES``: all 9
# such placeholders of chi.gif at 64 colours, none at 256). A terminal recording is mostly such
# frames.
EMPTY_IMAGE_BYTES = 29


# ImageMagick keeps a GIF application extension it does not know (XMP, say) as a profile named
# ``gif:<identifier>``, and ``ICCRGBG1012``, ``MGK8BIM0000``, ``MGKIPTC0000`` as the icc, 8bim and
# iptc profiles; its own ``ImageMagick`` (gamma) extension is read, not kept.
_NOT_PROFILES = (b"NETSCAPE2.0", b"ImageMagick")


def copied_metadata_bytes(data: bytes) -> int:
    """Bytes of the extensions ImageMagick writes beside the images of the engine's file, for a
    source GIF's bytes ``data``: per frame, its comment and its profiles.

    What ImageMagick 6.9 does (its GIF reader and writer and ``CoalesceImages``; checked against
    ``convert`` on corpus GIFs and on crafted ones):

    * the application extensions before an image become that image's profiles, and a comment
      before it its comment; a comment after the last image is dropped;
    * ``-coalesce`` copies a frame's profiles onto the next frame when that one has none (so one
      XMP packet at the start becomes one per frame), while a frame's comment stays its own;
    * the writer writes each frame's comment (``21 FE``, data blocks, terminator) and each profile
      as an application extension (``21 FF 0B``, its 11-byte name, the profile's bytes in blocks
      of 255, terminator). Placeholder frames for unchanged frames carry them too.

    The walk (``giflab.gif_blocks.walk``) stops at the trailer or at anything it cannot read.
    """

    def written(payload: int, header: int) -> int:
        return header + payload + -(-payload // 255) + 1

    pending: dict[bytes, int] = {}  # profile name -> payload bytes, for the next image
    comment: int | None = None  # the next image's comment, in bytes
    profiles: dict[bytes, int] = {}  # the coalesced frame's profiles
    total = 0
    for block in walk(data):
        if block.label == COMMENT:  # read as a C string: it ends at a NUL
            comment = len(block.payload.split(b"\0", 1)[0])
        elif (
            block.label == APPLICATION and block.sub_blocks and block.app_name not in _NOT_PROFILES
        ):
            pending[block.app_name.lower()] = len(block.payload)
        elif block.is_image:
            if pending:  # an image with profiles of its own; otherwise the previous frame's
                profiles, pending = pending, {}
            total += sum(written(size, 14) for size in profiles.values())
            if comment is not None:
                total += written(comment, 2)
                comment = None
    return total


def quantized_bytes(
    lzw: LzwCounter,
    rgba: np.ndarray,
    drawn: np.ndarray | None,
    colors: int,
    colormap: int | None = None,
) -> tuple[int, int]:
    """(bytes, of which a gamma extension's) of one stored image after ``-colors colors``
    (``giflab.features.imagemagick_colors``; ``colormap``: the size of the shared colormap it
    carries): ``rgba``'s pixels outside ``drawn`` (None: all) transparent, a local table of the
    palette's size, as ImageMagick writes it."""
    indices, size, extra = quantized_indices(rgba, drawn, colors, colormap)
    code_size = min_code_size(size - 1)
    table = 3 * table_entries(size)
    return FRAME_BYTES + extra + table + lzw.data_bytes(indices.ravel(), code_size), extra


def _digest(*arrays: np.ndarray | None) -> bytes:
    """A digest of the arrays' shapes and contents (None counts as a marker)."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.digest()


class _Level:
    """One fuzz level's screen, byte count and (with colour counts) stored images."""

    def __init__(self, lossy: int, budget: int | None, colors_budget: int | None) -> None:
        self.lossy = lossy
        self.threshold = fuzz_threshold(lossy)
        # Which of this level's stored images are counted (``FuzzProbe``): a level that stores
        # every other frame must not meet a stride of 2 in step with it.
        self.budget = FrameBudget(budget)
        self.colors_budget = FrameBudget(colors_budget)
        # RGBA and colour words of what the stored images show after the previous frame, and
        # how to undo that frame's drawing (its box, the RGBA and words it covered; None when
        # it drew nothing): what its "previous" disposal restores
        self.screen: np.ndarray | None = None
        self.words: np.ndarray | None = None
        self.undo: tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None = None
        # -layers Optimize's own "previous image": the frame a "previous" disposal of the last
        # frame would leave on screen (a coalesced frame; transparent before the first), and the
        # box outside which the frames since are all the same as it
        self.restored: tuple[np.ndarray, np.ndarray] | None = None
        self.dirty: tuple[slice, slice] | None = None
        self.bytes = 0
        self.empty = 0  # frames stored as a 1x1 placeholder
        # (weight, RGBA, drawn mask or None) of each counted stored image, for ``-colors``
        self.images: list[tuple[int, np.ndarray, np.ndarray | None]] = []

    def restore(self) -> None:
        """Take back the previous frame's drawing: its "previous" disposal."""
        if self.undo is not None:
            crop, rgba, words = self.undo
            self.screen[crop], self.words[crop] = rgba, words
            self.undo = None


def _box(mask: np.ndarray, at: tuple[slice, slice]) -> tuple[slice, slice] | None:
    """The bounding box of ``mask``'s set pixels, in the coordinates of the frame ``mask`` was cut
    from at ``at``; None when none is set."""
    rows = np.flatnonzero(mask.any(axis=1))
    if not len(rows):
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    top, left = at[0].start, at[1].start
    return (
        slice(top + rows[0], top + rows[-1] + 1),
        slice(left + cols[0], left + cols[-1] + 1),
    )


def _area(box: tuple[slice, slice] | None) -> int:
    """A box's pixels; a null box counts 1 (ImageMagick's 1x1 placeholder)."""
    if box is None:
        return 1
    return (box[0].stop - box[0].start) * (box[1].stop - box[1].start)


def _union(
    a: tuple[slice, slice] | None, b: tuple[slice, slice] | None
) -> tuple[slice, slice] | None:
    """The smallest box holding both (None: empty)."""
    if a is None or b is None:
        return b if a is None else a
    return (
        slice(min(a[0].start, b[0].start), max(a[0].stop, b[0].stop)),
        slice(min(a[1].start, b[1].start), max(a[1].stop, b[1].stop)),
    )


def _clears(old: np.ndarray, new: np.ndarray, box: tuple[slice, slice] | None) -> bool:
    """Whether going from ``old`` to ``new`` inside ``box`` turns an opaque pixel transparent,
    which drawing over the old screen cannot do (ImageMagick's ``IsBoundsCleared``)."""
    if box is None:
        return False
    return bool(np.any((old[box][..., 3] >= 128) & (new[box][..., 3] < 128)))


class FuzzProbe:
    """Feed every frame (``add``: RGBA and its colour words) in order; ``ratios`` gives, per lossy
    level, the estimated bytes of the engine's optimised frames at that level's fuzz (level 0:
    none, the frames as they change) over an estimate of the GIF re-encoded losslessly.

    ``-layers Optimize`` as ImageMagick 6.9 does it (``OptimizeImageLayers``, then
    ``OptimizeImageTransparency``), for each level's fuzz:

    * each frame is cropped to the box of the pixels not similar to the previous *frame* (not to
      the screen: a fade slower than the fuzz per frame is never stored). When the frame that
      the previous frame's "previous" disposal would restore (ImageMagick's own choice, kept as
      ``_Level.restored``) gives a smaller box, or the previous frame would have to clear
      pixels and it would not, the previous frame gets that disposal and the frame that box;
      a frame with nothing left is a 1x1 placeholder;
    * in its box, every pixel similar to what is on screen at that point becomes transparent;
      the screen keeps the old colour of such a pixel.

    Not emulated: the "background" disposal, which it picks only when neither of the others can
    clear what a frame needs cleared (sprite fixtures; such pixels are counted as drawn).

    Every frame's screen is kept; each level's stored images are counted until ``budget`` drawn
    pixels have been, then every 2nd (weighted 2), then every 4th, and so on. With ``colors``,
    ``color_ratios`` estimates ``-colors C`` after the fuzz too
    (``giflab.features.imagemagick_colors``), from the stored images ``colors_budget`` picks the
    same way, by their area.
    ``copied_bytes`` (``copied_metadata_bytes`` of the source) counts at every level and count;
    ``loops``: the source has a loop extension. The first frame is stored within the box of its
    pixels that are not transparent (``-layers Optimize`` compares it with a transparent
    canvas), and every table has the next power of two entries, 2 at the least.
    """

    def __init__(
        self,
        levels: Sequence[int],
        budget: int | None = None,
        colors: Sequence[int] = (),
        colors_budget: int | None = None,
        copied_bytes: int = 0,
        loops: bool = True,
    ) -> None:
        self._levels = [_Level(int(level), budget, colors_budget) for level in levels]
        self._colors = tuple(int(c) for c in colors)
        self._lzw = LzwCounter()
        self._prev: tuple[np.ndarray, np.ndarray] | None = None  # the previous frame's RGBA, words
        self._fixed = IM_HEADER_BYTES + copied_bytes  # the file's bytes besides its images
        self._frames = 0
        self._loops = loops  # the source has a loop count (ImageMagick keeps it)
        # ImageMagick writes its gamma extension before the first image when that frame is all
        # opaque grey (at any colour count: 13 corpus GIFs, none otherwise).
        self._first_gamma = 0

    def add(self, rgba: np.ndarray, words: np.ndarray) -> None:
        """The next frame: (H, W, 4) uint8 RGBA and its (H, W) colour words (``rgba_words``)."""
        prev, self._prev = self._prev, (rgba.copy(), words.copy())
        rgba, words = self._prev
        self._frames += 1
        if self._frames == 2 and self._loops:  # a loop count is written for 2 images or more
            self._fixed += LOOP_EXTENSION_BYTES
        if prev is None:
            # -layers Optimize compares the first frame with a transparent canvas: it stores the
            # box of the pixels that are not transparent.
            shown = _box(rgba[..., 3] != 0, (slice(0, rgba.shape[0]), slice(0, rgba.shape[1])))
            shown = shown or (slice(0, 1), slice(0, 1))
            first = image_bytes(self._lzw, words[shown], None)
            rgb = rgba[..., :3]
            if (rgba[..., 3] == 255).all() and (rgb == rgb[..., :1]).all():
                self._first_gamma = GAMMA_EXTENSION_BYTES
            clear = (np.zeros_like(rgba), np.zeros_like(words))
            whole = (slice(0, rgba.shape[0]), slice(0, rgba.shape[1]))
            for level in self._levels:
                level.screen, level.words = rgba.copy(), words.copy()
                level.undo = (whole, *clear)  # before the first frame: nothing, transparent
                level.restored, level.dirty = clear, whole
                level.bytes += first
                if self._colors:
                    level.images.append((1, rgba[shown], None))
            return
        prev_rgba, prev_words = prev
        found = changed_box(words, prev_words)
        if found is None:  # the same frame again: a placeholder at every level
            for level in self._levels:
                level.empty += 1
                level.undo = None
                level.restored, level.dirty = prev, None
            return
        box, changed = found
        inside = changed[box]
        from_prev = Distance(rgba[box], prev_rgba[box])
        # Levels mostly restore the same frame: each comparison with it once.
        against: dict[tuple, tuple[tuple[slice, slice], np.ndarray, Distance] | None] = {}
        for level in self._levels:
            crop = _box(inside & ~from_prev.within(level.threshold), box)
            restored_rgba, restored_words = level.restored
            dirty = _union(level.dirty, box)  # the frame differs from the restored one inside
            restore_crop = None
            if crop is not None:
                key = (
                    id(restored_words),
                    dirty[0].start,
                    dirty[0].stop,
                    dirty[1].start,
                    dirty[1].stop,
                )
                if key not in against:
                    exact = changed_box(words[dirty], restored_words[dirty])
                    if exact is not None:
                        at = inner_box(exact[0], dirty)
                        exact = (at, exact[1][exact[0]], Distance(rgba[at], restored_rgba[at]))
                    against[key] = exact
                if against[key] is not None:
                    at, differs, distance = against[key]
                    restore_crop = _box(differs & ~distance.within(level.threshold), at)
            restore = crop is not None and (
                _area(restore_crop) < _area(crop)
                or (
                    _clears(prev_rgba, rgba, crop)
                    and not _clears(restored_rgba, rgba, restore_crop)
                )
            )
            if restore:
                crop = restore_crop
                level.restore()
                level.dirty = dirty
            else:
                level.restored, level.dirty = prev, box
            if crop is None:
                level.empty += 1
                level.undo = None
                continue
            shown, shown_words = level.screen[crop], level.words[crop]
            moved = ~similar(rgba[crop], shown, level.threshold)
            level.undo = (crop, shown.copy(), shown_words.copy())
            shown[moved] = rgba[crop][moved]
            shown_words[moved] = words[crop][moved]
            stride = level.budget.next_weight()
            if stride:
                level.budget.spend(moved.sum())
                level.bytes += stride * image_bytes(self._lzw, shown_words, moved)
            colors_stride = level.colors_budget.next_weight() if self._colors else 0
            if colors_stride:
                level.colors_budget.spend(moved.size)
                level.images.append((colors_stride, shown.copy(), moved))

    def ratios(self, lossless_bytes: float) -> dict[int, float]:
        """{lossy level: estimated bytes of the engine's file at its fuzz / ``lossless_bytes``}
        (1.0 for every level before any frame, or without a lossless estimate)."""
        if self._prev is None or lossless_bytes <= 0:
            return {level.lossy: 1.0 for level in self._levels}
        return {
            level.lossy: (
                self._fixed + self._first_gamma + level.empty * EMPTY_IMAGE_BYTES + level.bytes
            )
            / lossless_bytes
            for level in self._levels
        }

    def color_ratios(self, lossless_bytes: float) -> dict[tuple[int, int], float]:
        """{(colour count C, lossy level): estimated bytes of the engine's file at that fuzz after
        ``-layers Optimize``'s remap to one 256-colour palette and ``-colors C`` on each image
        / ``lossless_bytes``} for the ``colors`` given (1.0 each before any frame or without a
        lossless estimate)."""
        keys = [(c, level.lossy) for c in self._colors for level in self._levels]
        if self._prev is None or lossless_bytes <= 0:
            return dict.fromkeys(keys, 1.0)
        found: dict[tuple[int, int], float] = {}
        # Levels often store the same images (a still GIF, a fuzz below its changes): each
        # remap and each quantised image is computed once per content.
        remaps: dict[bytes, tuple[list[np.ndarray], int]] = {}
        images: dict[tuple[bytes, int, int], tuple[int, int]] = {}
        for level in self._levels:
            key = _digest(
                *(a for w, rgba, drawn in level.images for a in (np.int64(w), rgba, drawn))
            )
            if key not in remaps:
                remaps[key] = remap(
                    [(rgba, drawn) for _, rgba, drawn in level.images],
                    weights=[w for w, _, _ in level.images],
                )
            remapped, colormap = remaps[key]
            digests = [
                _digest(rgba, drawn)
                for rgba, (_, _, drawn) in zip(remapped, level.images, strict=True)
            ]
            for c in self._colors:
                empty = EMPTY_IMAGE_BYTES + GAMMA_EXTENSION_BYTES * (colormap > c)
                total = self._fixed + level.empty * empty
                for index, (digest, rgba, (weight, _, drawn)) in enumerate(
                    zip(digests, remapped, level.images, strict=True)
                ):
                    if (digest, c, colormap) not in images:
                        images[(digest, c, colormap)] = quantized_bytes(
                            self._lzw, rgba, drawn, c, colormap
                        )
                    stored, gamma = images[(digest, c, colormap)]
                    if index == 0:  # one gamma extension before the first image at most
                        stored += max(0, self._first_gamma - gamma)
                    total += weight * stored
                found[(c, level.lossy)] = total / lossless_bytes
        return {key: found[key] for key in keys}
