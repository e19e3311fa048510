"""gifsicle's ``--colors C``, as the colour probes need it: which colours it keeps, where the
rest go, and what the reduced GIF costs (losslessly and under ``--lossy``).

gifsicle 1.93 reduces a palette with its default ``diversity`` method and no dithering (GifLab's
gifsicle engine passes neither ``--color-method`` nor ``--dither``). Written from that
behaviour, with our own code:

* colours are compared in a gamma-corrected space: each 8-bit channel maps to 15 bits through
  the sRGB transfer curve (``srgb_gamma``), and distance is the squared Euclidean distance there;
* the histogram counts the pixels each colour is stored with (transparent pixels apart) and is
  ordered by popularity;
* the first pick is the most popular colour; after that, picks 1-9 and every odd pick from 10 on
  take the colour farthest from every colour picked so far (the first such in popularity order),
  and every even pick from 10 on takes the most popular colour not yet picked;
* when the GIF has transparent pixels and at most 265 colours, one slot is left for
  transparency; a GIF with no more colours than asked for keeps its palette;
* every pixel then takes the picked colour nearest to it in that space (no dithering).

``ColorProbe`` reduces every frame with the palette chosen from the whole GIF's histogram (a
second pass over the frames) and re-encodes them with ``DeltaLzwEstimate``; its ratios compare
those bytes with the GIF's lossless estimate at full colour. ``tests/test_features_quantize.py`` checks the palette and
the byte counts against the gifsicle binary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numba
import numpy as np
import pandas as pd

from giflab.features.lzw import DeltaLzwEstimate, KeptMetadata, changed_box

KC_MAX = 0x7FFF  # 15-bit channels
TRANSPARENCY_SLOT_COLORS = 265  # at most this many colours: reserve a slot for transparency
_FAR = np.int64(0xFFFFFFFF)  # "no colour picked yet": more than any squared distance (3 * 32767^2)


def srgb_gamma() -> np.ndarray:
    """The 256-entry table from 8-bit sRGB to 15-bit linear light (``round(32767 * linear)``)."""
    c = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.rint(linear * KC_MAX).astype(np.int64)


_GAMMA = srgb_gamma()


def gamma_colors(words: np.ndarray) -> np.ndarray:
    """(n, 3) int64 gamma-space colours of RGBA words (``sampling.rgba_words``: R in the low byte)."""
    words = np.asarray(words, dtype=np.uint32)
    rgb = np.stack([words & 0xFF, (words >> 8) & 0xFF, (words >> 16) & 0xFF], axis=1)
    return _GAMMA[rgb.astype(np.int64)]


@numba.njit(cache=True, nogil=True)
def _diversity(kc, size):
    """(picked rows in pick order, each row's nearest picked row) for colours ``kc`` ordered by
    popularity, most popular first."""
    n = kc.shape[0]
    min_dist = np.full(n, _FAR, np.int64)
    closest = np.zeros(n, np.int64)
    picked = np.empty(size, np.int64)
    for k in range(size):
        popular = 0
        while popular < n and min_dist[popular] == 0:
            popular += 1
        chosen = popular
        if not (k == 0 or (k >= 10 and k % 2 == 0)):
            for i in range(popular + 1, n):
                if min_dist[i] > min_dist[chosen]:
                    chosen = i
        min_dist[chosen] = 0
        closest[chosen] = chosen
        for i in range(n):
            if min_dist[i] != 0:
                d = 0
                for c in range(3):
                    delta = kc[i, c] - kc[chosen, c]
                    d += delta * delta
                if d < min_dist[i]:
                    min_dist[i] = d
                    closest[i] = chosen
        picked[k] = chosen
    return picked, closest


def palette_size(n_colors: int, colors: int, transparency: bool) -> int:
    """How many colours gifsicle picks for ``--colors colors`` from ``n_colors`` colours."""
    size = min(colors, n_colors)
    if 2 < size < n_colors and n_colors <= TRANSPARENCY_SLOT_COLORS and transparency:
        size -= 1
    return size


def reduce_colors(
    counts: Mapping[int, int], colors: int, transparency: bool = False
) -> dict[int, int] | None:
    """Where each colour word goes under gifsicle's ``--colors colors`` (``{word: kept word}``),
    or None when the palette stays as it is (no more colours than asked for).

    ``counts`` maps each opaque colour word to its pixel count; ``transparency`` says whether
    the GIF also has transparent pixels.
    """
    if not 2 <= colors <= 256:
        raise ValueError(f"colors must be 2..256, got {colors}")
    if len(counts) <= colors:
        return None
    words = np.fromiter(counts.keys(), dtype=np.uint32, count=len(counts))
    pixels = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    order = np.argsort(-pixels, kind="stable")
    words = words[order]
    size = palette_size(len(words), colors, transparency)
    _, closest = _diversity(gamma_colors(words), size)
    return dict(zip(words.tolist(), words[closest].tolist(), strict=True))


class StoredHistogram:
    """gifsicle's histogram of a GIF: the colours of each image as the file stores it.

    Feed every decoded frame (``add``) with the rectangle the file stores for it and whether
    that image has a transparent index (``giflab.frames.Frame.stored``). A stored pixel that
    shows the frame before unchanged, in an image with a transparent index, is taken as
    transparent (what optimised files store there) and not counted; alpha-0 pixels are
    transparent too. ``complete`` is False when a frame came without its rectangle: the caller
    then uses another histogram.
    """

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.transparency = False  # some stored pixel is transparent
        self.complete = True
        self._prev: np.ndarray | None = None

    def add(
        self, words: np.ndarray, stored: tuple[int, int, int, int] | None, transparent: bool
    ) -> None:
        prev, self._prev = self._prev, words
        if stored is None:
            self.complete = False
            return
        x0, y0, x1, y1 = stored
        crop = words[y0:y1, x0:x1]
        if transparent and prev is not None:
            shows = crop == prev[y0:y1, x0:x1]
            self.transparency = self.transparency or bool(shows.any())
            crop = crop[~shows]
        crop = crop.ravel()
        opaque = crop >> 24 != 0
        if not opaque.all():
            self.transparency = True
            crop = crop[opaque]
        inverse, colours = pd.factorize(crop)
        counts = np.bincount(inverse, minlength=len(colours))
        for word, count in zip(colours.tolist(), counts.tolist(), strict=True):
            self.counts[word] = self.counts.get(word, 0) + count


class ColorProbe:
    """What gifsicle's ``--colors C`` does to a GIF's size, per colour count and lossy level.

    Built from the whole GIF's colour histogram (``counts``: colour word -> pixels, from a first
    pass; ``transparency``: whether the GIF has transparent pixels), it picks each count's
    palette (``reduce_colors``). Then feed it every frame again, in order (``add``): the first
    frame and each later frame's changed box (and the same box of the frame before; a pixel
    outside it is the same in both frames, so it is after reduction too) are reduced and
    re-encoded by one ``DeltaLzwEstimate`` per count, with the lossy probes under
    ``lossy_budget`` as for the full-colour estimate. ``ratios(full_bytes)`` gives, per
    ``(colors, level)``, those bytes (level 0: lossless) over ``full_bytes``.
    """

    def __init__(
        self,
        counts: Mapping[int, int],
        transparency: bool,
        colors: Sequence[int],
        lossy_levels: Sequence[int],
        lossy_budget: int | None = None,
        kept: KeptMetadata = KeptMetadata(),  # noqa: B008 - frozen
    ) -> None:
        self.colors = tuple(int(c) for c in colors)
        self.lossy_levels = tuple(int(level) for level in lossy_levels)
        opaque = {w: c for w, c in counts.items() if w >> 24}
        # One lookup per pixel serves every count: the histogram's words, then each count's
        # target for each of them (words absent from it, the transparent ones, stay as they are).
        self._keys = pd.Index(np.fromiter(opaque.keys(), np.uint32, len(opaque)))
        self._targets: dict[int, np.ndarray] = {}
        self._estimates: dict[int, DeltaLzwEstimate] = {}
        for count in self.colors:
            mapping = reduce_colors(opaque, count, transparency)
            if mapping is not None:
                self._targets[count] = np.array([mapping[w] for w in opaque], np.uint32)
                self._estimates[count] = DeltaLzwEstimate(self.lossy_levels, lossy_budget, kept)
        self._prev: np.ndarray | None = None
        self._reduced_prev: dict[int, np.ndarray] = {}  # each count's reduced previous frame

    @property
    def needed(self) -> bool:
        """Whether any count changes the palette (else ``add`` has nothing to do)."""
        return bool(self._estimates)

    def _reduce(self, words: np.ndarray) -> dict[int, np.ndarray]:
        flat = words.ravel()
        where = self._keys.get_indexer(flat)
        kept = where < 0
        where[kept] = 0
        out = {}
        for count, targets in self._targets.items():
            reduced = targets[where]
            reduced[kept] = flat[kept]
            out[count] = reduced.reshape(words.shape)
        return out

    def add(self, words: np.ndarray) -> None:
        """The next frame, as an (H, W) array of colour words (``sampling.rgba_words``)."""
        prev, self._prev = self._prev, words
        if prev is None:
            self._reduced_prev = self._reduce(words)
            for count, estimate in self._estimates.items():
                estimate.add(self._reduced_prev[count])
            return
        found = changed_box(words, prev)
        if found is None:
            for estimate in self._estimates.values():
                estimate.repeat()
            return
        box = found[0]
        for count, after in self._reduce(words[box]).items():
            frame = self._reduced_prev[count]
            before = frame[box].copy()
            frame[box] = after
            self._estimates[count].add(after, before=before)

    def ratios(self, full_bytes: float) -> dict[tuple[int, int], float | None]:
        """``{(colors, level): reduced bytes / full_bytes}``; level 0 is lossless. A count that
        leaves the palette alone gets None (the caller uses the full-colour probes instead);
        no frame, or no bytes, gives 1.0."""
        out: dict[tuple[int, int], float | None] = {}
        for count in self.colors:
            levels = [(count, level) for level in (0, *self.lossy_levels)]
            estimate = self._estimates.get(count)
            total = estimate.total_bytes() if estimate is not None else 0.0
            if estimate is None or total <= 0 or full_bytes <= 0:
                out.update(dict.fromkeys(levels, None if estimate is None else 1.0))
                continue
            out[(count, 0)] = total / full_bytes
            for level, ratio in estimate.lossy_ratios().items():
                out[(count, level)] = total * ratio / full_bytes
        return out
