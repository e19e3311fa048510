"""How many bytes the GIF's pixels need when re-encoded losslessly: the ``lzw_size_ratio`` probe.

What an engine's output weighs at lossy 0 is mostly decided by two things the file's own size
cannot show: how well its LZW data was packed, and how much of each frame actually changes.
``DeltaLzwEstimate`` re-encodes every frame at full resolution the way ``gifsicle -O3`` does:

* the first frame is encoded whole;
* each later frame is cropped to the box of pixels that differ from the previous frame and
  stored the ways gifsicle's optimiser tries, keeping the smallest (under the lossy encoder
  too): colours only ever unchanged in the crop made transparent, then runs of unchanged pixels
  made transparent by its two heuristics (``transparency_layouts``); a frame identical to the
  previous one costs nothing (gifsicle folds it into the previous frame's delay);
* palette indices follow one global palette ordered by how often each colour has been drawn so
  far, and the transparent index is the smallest one the crop does not use; each image's LZW
  minimum code size is the smallest that holds its largest index (gifsicle's rule), so a crop of
  a few popular colours is coded with 3-5-bit codes. Once more than 256 colours have been seen,
  every later image gets a local colour table of its own colours (gifsicle's "too many colors,
  using local colormaps"), whose bytes are counted;
* LZW is counted, not written: ``LzwCounter`` runs GIF LZW (a clear code first, a clear
  whenever the 4096-code table is full) and returns the code stream's length: gifsicle's bytes
  exactly while the table has room, within 0.3 % once it fills (gifsicle times its clears by the
  recent match lengths). Pillow's encoder was not used: it misses dictionary matches depending
  on the index values (8 % more bytes on the same image under another index order).

Measured against ``gifsicle -O3`` (features version 14): the 66 older corpus GIFs median |error|
0.15 %, p90 10.9 %; the 24 terminal recordings and lottie animations added on 2026-12-05 median
0.75 %, p90 1.9 %, worst 3.0 %. Evidence, history and the effect on the models:
docs/features.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from giflab.features.lossy_lzw import lossy_code_bits
from giflab.gif_blocks import APPLICATION, COMMENT, GRAPHIC_CONTROL, LOOP_NAMES, walk

HEADER_BYTES = 13 + 1  # signature + logical screen descriptor, and the trailer
GRAPHIC_CONTROL_BYTES = 8
FRAME_BYTES = GRAPHIC_CONTROL_BYTES + 10 + 1  # + image descriptor + LZW minimum code size
LOOP_EXTENSION_BYTES = 19  # NETSCAPE2.0 with the loop count, as the engines write it
MAX_CODES = 4096  # GIF LZW codes are at most 12 bits
PALETTE_LIMIT = 256


@numba.njit(cache=True, nogil=True)
def _lzw_code_bits(symbols, min_code_size, child, tag, generation):
    """(code-stream bits, last generation used); ``child``/``tag`` are MAX_CODES x 256 tables
    whose entries count only while their tag equals the current generation."""
    clear = 1 << min_code_size
    first_free = clear + 2  # after the clear and end-of-information codes
    width = min_code_size + 1
    next_code = first_free
    bits = width  # the leading clear code
    n = symbols.shape[0]
    if n == 0:
        return bits + width, generation
    current = np.int64(symbols[0])
    for i in range(1, n):
        s = symbols[i]
        if tag[current, s] == generation:
            current = child[current, s]
            continue
        bits += width  # emit the code of the longest match
        if next_code < MAX_CODES:
            child[current, s] = next_code
            tag[current, s] = generation
            next_code += 1
            if next_code > (1 << width) and width < 12:
                width += 1
        else:  # table full: clear code, start over
            bits += width
            generation += 1
            width = min_code_size + 1
            next_code = first_free
        current = s
    return bits + 2 * width, generation  # the last match and the end-of-information code


class LzwCounter:
    """Counts GIF LZW code streams, reusing one code table between calls: a new image or a
    clear starts a new generation of its entries instead of allocating and wiping 6 MB."""

    def __init__(self) -> None:
        self._child = np.zeros((MAX_CODES, PALETTE_LIMIT), np.int16)
        self._tag = np.zeros((MAX_CODES, PALETTE_LIMIT), np.int32)
        self._generation = 0

    def code_bits(self, symbols: np.ndarray, min_code_size: int) -> int:
        """Bits of the GIF LZW code stream of ``symbols`` (palette indices < 2**min_code_size):
        a clear code first, a clear whenever the 4096-code table is full, end-of-information."""
        if not 2 <= min_code_size <= 8:
            raise ValueError(f"GIF LZW minimum code size is 2..8, got {min_code_size}")
        flat = np.ascontiguousarray(symbols, dtype=np.uint8).ravel()
        bits, self._generation = _lzw_code_bits(
            flat, min_code_size, self._child, self._tag, self._generation + 1
        )
        return int(bits)

    def data_bytes(self, symbols: np.ndarray, min_code_size: int) -> int:
        """Bytes of one image's LZW data as a GIF stores it (``stored_bytes``)."""
        return stored_bytes(self.code_bits(symbols, min_code_size))


def stored_bytes(code_bits: int) -> int:
    """Bytes a code stream of ``code_bits`` bits takes in a GIF: the stream in sub-blocks of at
    most 255 bytes, each behind a length byte, and the zero-length terminator."""
    data = (int(code_bits) + 7) // 8
    return data + (data + 254) // 255 + 1


def lzw_code_bits(symbols: np.ndarray, min_code_size: int) -> int:
    """``LzwCounter.code_bits`` with a table of its own (for one-off counts)."""
    return LzwCounter().code_bits(symbols, min_code_size)


def lzw_data_bytes(symbols: np.ndarray, min_code_size: int) -> int:
    """``LzwCounter.data_bytes`` with a table of its own (for one-off counts)."""
    return LzwCounter().data_bytes(symbols, min_code_size)


def min_code_size(largest_index: int) -> int:
    """The GIF LZW minimum code size for indices up to ``largest_index`` (2 at the least)."""
    return max(2, int(largest_index).bit_length())


def table_entries(colors: int) -> int:
    """Entries of the colour table a GIF writer stores for ``colors`` colours: the next power
    of two, 2 at the least (gifsicle's ``get_color_table_size``; a table of one entry is not
    allowed)."""
    return 1 << max(1, (int(colors) - 1).bit_length())


def inner_box(inner: tuple[slice, slice], outer: tuple[slice, slice]) -> tuple[slice, slice]:
    """``inner``, a box within the crop ``outer`` of a frame, in the frame's coordinates."""
    top, left = outer[0].start, outer[1].start
    return (
        slice(top + inner[0].start, top + inner[0].stop),
        slice(left + inner[1].start, left + inner[1].stop),
    )


def changed_box(
    words: np.ndarray, prev: np.ndarray | int
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """The bounding box of the pixels where ``words`` differs from ``prev`` (same shape, or one
    value for every pixel), and the whole-frame mask of those pixels; None when nothing changed."""
    changed = words != prev
    rows = np.flatnonzero(changed.any(axis=1))
    if not len(rows):
        return None
    cols = np.flatnonzero(changed.any(axis=0))
    return (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)), changed


@numba.njit(cache=True, nogil=True)
def _transparency_layouts(symbols, same, transparent):
    """gifsicle's ``transp_frame_data`` at -O3 over one crop, flattened: ``symbols`` is the
    crop's simple layout (transparent where a colour is only ever unchanged), ``same`` marks
    the pixels equal to the frame before. Returns (runs layout, single-runs layout, whether the
    single-runs one exists)."""
    n = symbols.shape[0]
    data = symbols.copy()
    t2 = np.empty_like(symbols)
    have_t2 = False
    swit = 0
    last_t2 = 0
    transparentizing = False
    i = 0
    while i < n:
        if transparentizing:
            if same[i] or symbols[i] == transparent:
                data[i] = transparent
            else:
                data[i] = symbols[i]
                transparentizing = False
                swit = i + 1
            i += 1
        else:
            data[i] = symbols[i]
            if data[i] == transparent or (same[i] and data[swit] != data[i]):
                transparentizing = True
                data[swit:i] = transparent
                continue  # this pixel again, transparentizing
            if i > swit and data[i] != data[swit]:
                have_t2 = True
                t2[last_t2:swit] = data[last_t2:swit]
                t2[swit:i] = transparent
                last_t2 = i
            if not same[i]:
                swit = i + 1
            elif data[swit] != data[i]:
                swit = i
            i += 1
    if have_t2:
        t2[last_t2:n] = data[last_t2:n]
    return data, t2, have_t2


def transparency_layouts(
    symbols: np.ndarray, same: np.ndarray, transparent: int
) -> list[np.ndarray]:
    """The layouts gifsicle -O3 tries for a later frame's crop besides ``symbols`` itself: runs
    of unchanged pixels made transparent where two or more runs of different colours could be
    (and, second, where single runs could), so long runs of one colour stay whole."""
    runs, single, have_single = _transparency_layouts(
        np.ascontiguousarray(symbols, dtype=np.int64),
        np.ascontiguousarray(same, dtype=np.bool_),
        np.int64(transparent),
    )
    return [runs, single] if have_single else [runs]


# A frame that changes nothing, when gifsicle keeps it: a 1x1 transparent image (graphic
# control 8, descriptor 10, code size 1, one pixel's codes in a 2-byte block 4).
EMPTY_IMAGE_BYTES = 23


@dataclass(frozen=True)
class KeptMetadata:
    """What gifsicle writes of a source GIF besides the pixels, and what decides its layout.

    ``extension_bytes``: the loop extension (19 bytes when the source has one), each comment
    (written again as one ``21 FE`` extension in blocks of 255) and every other extension as it
    stands (application extensions such as XMP or ICC, plain text). ``delays``: each image's
    delay in centiseconds, in file order. ``first_box``: the first image's left, top, width and
    height (``-O3`` stores the first frame within it, not the whole screen). The default is what
    the estimate assumed before it read the file: no extensions, every frame with a delay, the
    first frame whole.
    """

    extension_bytes: int = 0
    delays: tuple[int, ...] = ()
    first_box: tuple[int, int, int, int] | None = None

    def delay(self, index: int) -> int:
        """Frame ``index``'s delay (1 past the known frames)."""
        return self.delays[index] if index < len(self.delays) else 1


def kept_metadata(data: bytes) -> KeptMetadata:
    """``KeptMetadata`` of a source GIF's bytes ``data`` (gifsicle 1.9x's reader, writer and
    optimiser: ``gifread.c``, ``gifwrite.c``, ``optimize.c``)."""
    extension_bytes = 0
    loop = False
    delays: list[int] = []
    delay = 0
    first_box = None
    for block in walk(data):
        if block.is_image:
            first_box = first_box or block.box
            delays.append(delay)
            delay = 0
        elif block.label == GRAPHIC_CONTROL:
            control = block.payload
            delay = int.from_bytes(control[1:3], "little") if len(control) >= 3 else 0
        elif block.label == APPLICATION and block.app_name in LOOP_NAMES:  # one NETSCAPE2.0
            loop = True
        elif block.label == COMMENT:
            size = len(block.payload)
            extension_bytes += 2 + size + -(-size // 255) + 1
        else:
            extension_bytes += block.end - block.start
    loop_bytes = LOOP_EXTENSION_BYTES if loop else 0
    return KeptMetadata(extension_bytes + loop_bytes, tuple(delays), first_box)


class FrameBudget:
    """Which frames a probe counts: every one until ``budget`` pixels have been spent, then
    every 2nd (standing for 2), until another budget's worth, then every 4th, and so on; with
    no budget, every frame. A long GIF thus costs a few budgets at most."""

    def __init__(self, budget: int | None) -> None:
        if budget is not None and budget < 1:
            raise ValueError(f"budget must be >= 1 pixel, got {budget}")
        self._budget = budget
        self._frames = 0
        self._spent = 0

    def next_weight(self) -> int:
        """The next frame's weight: its stride when it is counted, 0 when it is skipped."""
        stride = 1
        if self._budget is not None:
            stride = 1 << min(30, self._spent // self._budget)
        counted = self._frames % stride == 0
        self._frames += 1
        return stride if counted else 0

    def spend(self, pixels: int) -> None:
        """Record the pixels a counted frame cost."""
        self._spent += int(pixels)

    @property
    def spent(self) -> int:
        """The pixels the counted frames have cost so far."""
        return self._spent


class DeltaLzwEstimate:
    """Feed every frame's colour words (``add``) in order; ``total_bytes`` is the estimate.

    With ``lossy_levels``, stored images are also counted under gifsicle's ``--lossy=L`` for
    each level (``giflab.features.lossy_lzw``), and ``lossy_ratios`` compares those counts with
    the same images' lossless bytes. Every image is probed until ``lossy_budget`` pixels have
    been, then every 2nd until another budget's worth, then every 4th, and so on; a probed
    image counts for the images its stride skips, so a long GIF costs a few budgets at most.
    """

    def __init__(
        self,
        lossy_levels: tuple[int, ...] = (),
        lossy_budget: int | None = None,
        kept: KeptMetadata = KeptMetadata(),  # noqa: B008 - frozen
    ) -> None:
        self._kept = kept
        self._frames = 0
        self._last_delay = 0  # the last image's delay, with the delays folded into it
        self._fixed_bytes = 0  # besides the header, palette and stored images (can be < 0)
        self._prev: np.ndarray | None = None
        self._popularity: dict[int, int] = {}  # colour word -> pixels drawn with it so far
        self._local_tables = False
        self._image_bytes = 0
        self._lzw = LzwCounter()
        self._lossy_levels = tuple(int(level) for level in lossy_levels)
        self._budget = FrameBudget(lossy_budget)
        self._probed_bytes = 0  # lossless bytes of the probed images, each x its stride
        self._lossy_bytes = dict.fromkeys(self._lossy_levels, 0)
        self._kept_pixels = False  # some stored image left pixels of the one before showing

    def add(self, words: np.ndarray, before: np.ndarray | None = None) -> None:
        """The next frame, as an (H, W) array of colour words (``sampling.rgba_words``).

        ``before`` is what it is drawn over when that is not the frame added last: the colour
        probes pass each frame's changed box with the same box of the frame before. Its pixels
        must have been drawn by earlier frames (their colours ranked).
        """
        prev = self._prev if before is None else before
        self._prev = words
        delay = self._kept.delay(self._frames)
        self._frames += 1
        if prev is None:
            crop = words
            if self._kept.first_box is not None:
                left, top, width, height = self._kept.first_box
                inside = words[top : top + height, left : left + width]
                crop = inside if inside.size else words
            self._image_bytes += self._encode(crop.ravel(), None)
            # gifsicle writes a control block for a delay, a disposal or a transparent index;
            # -O3 gives the first image no disposal.
            if not delay and not (crop >> 24 == 0).any():
                self._fixed_bytes -= GRAPHIC_CONTROL_BYTES
            self._last_delay = delay
            return
        found = changed_box(words, prev)
        if found is None:
            self._unchanged(delay)
            return
        box, changed = found
        mask = changed[box].ravel()
        self._kept_pixels = self._kept_pixels or not mask.all()
        drawn = None if mask.all() else mask
        self._image_bytes += self._encode(words[box].ravel(), drawn)
        self._last_delay = delay

    def repeat(self) -> None:
        """The next frame is the same as the one added last."""
        if self._prev is None:
            raise ValueError("repeat() before the first frame")
        delay = self._kept.delay(self._frames)
        self._frames += 1
        self._unchanged(delay)

    def _unchanged(self, delay: int) -> None:
        """gifsicle folds a frame that changes nothing into the image before, adding its delay,
        when both have a delay; otherwise it keeps it as a 1x1 transparent image."""
        if delay and self._last_delay:
            self._last_delay += delay
        else:
            self._fixed_bytes += EMPTY_IMAGE_BYTES
            self._last_delay = delay

    def _encode(self, crop: np.ndarray, drawn: np.ndarray | None) -> int:
        """Bytes of one stored image: ``crop``'s words, ``drawn`` (a mask, None for all) the
        pixels that changed. As gifsicle's optimiser: colours only ever unchanged are
        transparent; it then tries making runs of unchanged pixels transparent
        (``transparency_layouts``) and keeps the smallest, under the lossy encoder too."""
        # A hash table, not a sort: np.unique on every changed crop cost 8x as much.
        inverse, colours = pd.factorize(crop)
        drawn_inverse = inverse if drawn is None else inverse[drawn]
        counts = np.bincount(drawn_inverse, minlength=len(colours))
        required = counts > 0  # the colours of changed pixels (all of a whole image)
        needed = colours[required]
        for word, count in zip(needed.tolist(), counts[required].tolist(), strict=True):
            self._popularity[word] = self._popularity.get(word, 0) + count
        self._local_tables = self._local_tables or len(self._popularity) > PALETTE_LIMIT
        if self._local_tables:
            indices = np.arange(len(needed))  # the image's own table, in any order
        else:
            ranked = sorted(self._popularity, key=self._popularity.__getitem__, reverse=True)
            rank = {word: i for i, word in enumerate(ranked)}
            indices = np.array([rank[w] for w in needed.tolist()], dtype=np.int64)
        transparent = -1
        index_of = np.empty(len(colours), dtype=np.int64)
        index_of[required] = indices
        if drawn is not None:  # the smallest index the image's colours leave free
            taken = np.zeros(len(indices) + 1, dtype=bool)
            taken[indices[indices <= len(indices)]] = True
            transparent = int(np.argmin(taken))
            index_of[~required] = transparent
        simple = index_of[inverse]
        layouts = [simple]
        if drawn is not None:
            layouts += transparency_layouts(simple, ~drawn, transparent)
        palette = None
        stride = self._budget.next_weight()
        probe = bool(self._lossy_levels) and stride > 0
        if probe:
            palette = np.zeros((PALETTE_LIMIT, 3), np.int64)
            words = np.asarray(needed, dtype=np.uint32)
            rgb = np.stack([words & 0xFF, (words >> 8) & 0xFF, (words >> 16) & 0xFF], axis=1)
            palette[np.minimum(indices, PALETTE_LIMIT - 1)] = rgb
        sizes = [self._layout(symbols, transparent, palette) for symbols in layouts]
        image_bytes = min(lossless for lossless, _ in sizes)
        if probe:
            self._budget.spend(len(crop))
            self._probed_bytes += stride * image_bytes
            for level in self._lossy_levels:
                self._lossy_bytes[level] += stride * min(lossy[level] for _, lossy in sizes)
        return image_bytes

    def _layout(
        self, symbols: np.ndarray, transparent: int, palette: np.ndarray | None
    ) -> tuple[int, dict[int, int]]:
        """(lossless bytes, {lossy level: bytes} when ``palette`` is given) of one image stored
        as ``symbols`` (``transparent`` its transparent index, -1 for none)."""
        largest = min(int(symbols.max()), PALETTE_LIMIT - 1)  # a 257th colour shares the last
        code_size = min_code_size(largest)
        overhead = FRAME_BYTES + (3 << code_size if self._local_tables else 0)
        symbols = np.minimum(symbols, PALETTE_LIMIT - 1)
        lossless = overhead + self._lzw.data_bytes(symbols, code_size)
        lossy: dict[int, int] = {}
        if palette is not None:
            for level in self._lossy_levels:
                bits = lossy_code_bits(symbols, palette, code_size, level, transparent)
                lossy[level] = overhead + stored_bytes(bits)
        return lossless, lossy

    def colour_counts(self) -> dict[int, int]:
        """{colour word: pixels stored with it} over the images so far (gifsicle's histogram)."""
        return dict(self._popularity)

    def uses_transparency(self) -> bool:
        """Whether the re-encoded GIF has transparent pixels: fully transparent ones (alpha 0)
        or ones an image leaves showing from the image before."""
        return self._kept_pixels or any(word >> 24 == 0 for word in self._popularity)

    def total_bytes(self) -> float:
        """Estimated bytes of the whole losslessly re-encoded GIF (0 before any frame)."""
        if self._prev is None:
            return 0.0
        if self._local_tables:  # the global table the first images were drawn with is full
            palette = 3 * PALETTE_LIMIT
        else:
            palette = 3 * table_entries(len(self._popularity))
        fixed = HEADER_BYTES + palette + self._kept.extension_bytes + self._fixed_bytes
        return float(fixed + self._image_bytes)

    def lossy_ratios(self) -> dict[int, float]:
        """Per lossy level: estimated bytes of the whole GIF under that level / ``total_bytes``.

        The images' bytes are scaled by the probed images' lossy / lossless bytes; the header
        and the global palette stay (1.0 for every level before any frame).
        """
        total = self.total_bytes()
        if not self._probed_bytes or not total:
            return dict.fromkeys(self._lossy_levels, 1.0)
        fixed = total - self._image_bytes
        return {
            level: (fixed + self._image_bytes * lossy / self._probed_bytes) / total
            for level, lossy in self._lossy_bytes.items()
        }
