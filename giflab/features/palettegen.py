"""ffmpeg's ``palettegen`` (5.1) as GifLab's ffmpeg engine runs it: the histogram of every
whole frame and Heckbert's median cut, for the ffmpeg probes (``giflab.features.ffmpeg_probe``).

Written from ffmpeg's behaviour, with our own code; the palettes equal the binary's (tested).
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from giflab.engines.ffmpeg import ffmpeg_dropped_bits

_COMPACT_AT = 1 << 22  # pending (colour, frames) pairs folded together past this many


def posterize_mask(lossy: int) -> int:
    """The word mask (``sampling.rgba_words`` layout) that drops ffmpeg's low bits at ``lossy``."""
    keep = (0xFF << ffmpeg_dropped_bits(lossy)) & 0xFF
    return int(keep | keep << 8 | keep << 16 | 0xFF << 24)


def group_sum(words: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inverse, keys = pd.factorize(words)
    sums = np.bincount(inverse, weights=weights, minlength=len(keys))
    return np.asarray(keys, np.uint32), np.rint(sums).astype(np.int64)


class FullHistogram:
    """Pixels per colour over every whole frame (``palettegen stats_mode=full``), in O(changed
    pixels) per frame: a pixel's colour is counted once for each frame it lasts, when it changes
    and at the end (the last frame twice, as the engine feeds it). Colours are listed in the order a raster scan of the frames first meets
    them (palettegen's starting order). Transparent pixels count too: palettegen takes them
    as colours like any (their RGB, usually black)."""

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None
        self._since: np.ndarray | None = None  # frame each pixel's colour arrived in
        self._frames = 0
        self._words: list[np.ndarray] = []
        self._weights: list[np.ndarray] = []
        self._pending = 0
        self._seen: list[np.ndarray] = []  # colours in the order first met, with repeats
        self._pending_seen = 0

    def add(self, words: np.ndarray) -> None:
        f, self._frames = self._frames, self._frames + 1
        prev, self._prev = self._prev, words
        if prev is None or self._since is None:
            self._since = np.zeros(words.shape, np.int32)
            self._meet(words.ravel())
            return
        changed = words != prev
        if not changed.any():
            return
        self._meet(words[changed])  # a colour new to this frame is in a changed pixel
        self._push(prev[changed], f - self._since[changed])
        self._since[changed] = f

    def _meet(self, words: np.ndarray) -> None:
        self._seen.append(pd.unique(np.ascontiguousarray(words, np.uint32).ravel()))
        self._pending_seen += len(self._seen[-1])
        if self._pending_seen > _COMPACT_AT:
            self._seen = [pd.unique(np.concatenate(self._seen))]
            self._pending_seen = len(self._seen[0])

    def _push(self, words: np.ndarray, weights: np.ndarray) -> None:
        self._words.append(np.ascontiguousarray(words, np.uint32).ravel())
        self._weights.append(np.asarray(weights, np.float64).ravel())
        self._pending += len(self._words[-1])
        if self._pending > _COMPACT_AT:
            keys, sums = group_sum(np.concatenate(self._words), np.concatenate(self._weights))
            self._words, self._weights = [keys], [sums.astype(np.float64)]
            self._pending = len(keys)

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(colour words, pixel counts) over the frames so far, in first-seen order."""
        words, weights = list(self._words), list(self._weights)
        if self._prev is not None and self._since is not None:
            # The engine lists the last frame twice (ffmpeg's concat demuxer keeps the last
            # duration only so), and palettegen counts that copy too.
            words.append(self._prev.ravel().astype(np.uint32))
            weights.append((self._frames + 1 - self._since).ravel().astype(np.float64))
        if not words:
            return np.zeros(0, np.uint32), np.zeros(0, np.int64)
        keys, sums = group_sum(np.concatenate(words), np.concatenate(weights))
        order = pd.unique(np.concatenate(self._seen)) if self._seen else keys
        return np.asarray(order, np.uint32), sums[pd.Index(keys).get_indexer(order)]


@numba.njit(cache=True, nogil=True)
def _box_variance(rgb, counts, order, start, length):
    weight = 0
    sums = np.zeros(3, np.int64)
    for i in range(start, start + length):
        k = order[i]
        weight += counts[k]
        for c in range(3):
            sums[c] += rgb[k, c] * counts[k]
    variance = 0
    for i in range(start, start + length):
        k = order[i]
        d = 0
        for c in range(3):
            delta = rgb[k, c] - sums[c] // weight
            d += delta * delta
        variance += d * counts[k]
    return variance


@numba.njit(cache=True, nogil=True)
def widest_channel(spread, preference):
    """The channel of largest ``spread``; among equal ones, the first in ``preference``."""
    widest = max(spread[0], spread[1], spread[2])
    for c in preference:
        if spread[c] == widest:
            return c
    return preference[0]


@numba.njit(cache=True, nogil=True)
def _swap(order, i, j):
    order[i], order[j] = order[j], order[i]


@numba.njit(cache=True, nogil=True)
def quicksort(order, first, last, key):
    """Sort ``order[first..last]`` (inclusive) by ``key[order[i]]`` in place, the way
    libavutil's ``AV_QSORT`` does (median-of-three pivot, smaller side first, a sortedness
    check): not stable, so equal keys end up in the order that algorithm leaves them, which
    decides where palettegen's median cut splits them."""
    stack = np.empty((64, 2), np.int64)
    stack[0, 0], stack[0, 1] = first, last
    sp = 1
    while sp:
        sp -= 1
        start, end = stack[sp, 0], stack[sp, 1]
        while start < end:
            if start >= end - 1:
                if key[order[start]] > key[order[end]]:
                    _swap(order, start, end)
                break
            checksort = False
            right, left = end - 2, start + 1
            mid = start + ((end - start) >> 1)
            if key[order[start]] > key[order[end]]:
                if key[order[end]] > key[order[mid]]:
                    _swap(order, start, mid)
                else:
                    _swap(order, start, end)
            elif key[order[start]] > key[order[mid]]:
                _swap(order, start, mid)
            else:
                checksort = True
            if key[order[mid]] > key[order[end]]:
                _swap(order, mid, end)
                checksort = False
            if start == end - 2:
                break
            _swap(order, end - 1, mid)
            pivot = key[order[end - 1]]
            while left <= right:
                while left <= right and key[order[left]] < pivot:
                    left += 1
                while left <= right and key[order[right]] > pivot:
                    right -= 1
                if left <= right:
                    _swap(order, left, right)
                    left += 1
                    right -= 1
            _swap(order, end - 1, left)
            if checksort and (mid == left - 1 or mid == left):
                mid = start
                while mid < end and key[order[mid]] <= key[order[mid + 1]]:
                    mid += 1
                if mid == end:
                    break
            if end - left < left - start:
                stack[sp, 0], stack[sp, 1] = start, right
                sp += 1
                start = left + 1
            else:
                stack[sp, 0], stack[sp, 1] = left + 1, end
                sp += 1
                end = right


@numba.njit(cache=True, nogil=True)
def _median_cut(rgb, counts, order, boxes):
    """Palette (k <= boxes, 3) of colours ``rgb`` weighted by ``counts``, ``order`` being
    palettegen's starting order of them: Heckbert's median cut as ffmpeg's palettegen does it
    (see the module docstring)."""
    n = rgb.shape[0]
    start = np.zeros(boxes, np.int64)
    length = np.zeros(boxes, np.int64)
    variance = np.full(boxes, -1, np.int64)
    sorted_by = np.full(boxes, -1, np.int64)
    length[0] = n
    nb = 1
    box = 0 if n > 1 else -1
    while box >= 0:
        s, m = start[box], length[box]
        lo = np.full(3, 255, np.int64)
        hi = np.zeros(3, np.int64)
        weight = 0
        for i in range(s, s + m):
            k = order[i]
            weight += counts[k]
            for c in range(3):
                lo[c] = min(lo[c], rgb[k, c])
                hi[c] = max(hi[c], rgb[k, c])
        # Green, the channel the eye is most sensitive to, wins ties, then red.
        axis = widest_channel(hi - lo, (1, 0, 2))
        if sorted_by[box] != axis:
            quicksort(order, s, s + m - 1, rgb[:, axis])
            sorted_by[box] = axis
        median = (weight + 1) >> 1
        acc = 0
        cut = s
        while cut < s + m - 2:
            acc += counts[order[cut]]
            if acc > median:
                break
            cut += 1
        start[nb], length[nb] = cut + 1, s + m - (cut + 1)
        length[box] = cut + 1 - s
        sorted_by[nb] = sorted_by[box]
        variance[box] = -1
        variance[nb] = -1
        nb += 1
        box = -1
        if nb < boxes:
            best = -1
            for b in range(nb):
                if length[b] >= 2:
                    if variance[b] < 0:
                        variance[b] = _box_variance(rgb, counts, order, start[b], length[b])
                    if variance[b] > best:
                        best, box = variance[b], b
    palette = np.zeros((nb, 3), np.int64)
    for b in range(nb):
        weight = 0
        for i in range(start[b], start[b] + length[b]):
            k = order[i]
            weight += counts[k]
            for c in range(3):
                palette[b, c] += rgb[k, c] * counts[k]
        for c in range(3):
            palette[b, c] //= weight
    return palette


def median_cut_palette(words: np.ndarray, counts: np.ndarray, colors: int) -> np.ndarray:
    """ffmpeg palettegen's ``colors - 1`` (one entry kept for transparency) colours, (k, 3)
    int64 RGB, of colour words ``words`` (``sampling.rgba_words``, in the order the frames
    first show them) weighted by ``counts``. palettegen starts from its hash table's order:
    by the low 5 bits of R, G and B, then by first appearance."""
    if len(words) == 0:
        return np.zeros((1, 3), np.int64)
    w = np.asarray(words, np.uint32).astype(np.int64)
    rgb = np.stack([w & 0xFF, (w >> 8) & 0xFF, (w >> 16) & 0xFF], axis=1)
    low = rgb & 0x1F
    bucket = (low[:, 0] << 10) | (low[:, 1] << 5) | low[:, 2]
    order = np.argsort(bucket, kind="stable")
    return _median_cut(rgb, np.asarray(counts, np.int64), order, max(1, int(colors) - 1))
