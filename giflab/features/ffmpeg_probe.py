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
Evidence: docs/features.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd

from giflab.engines.ffmpeg import ffmpeg_dropped_bits
from giflab.features.lzw import FRAME_BYTES, LzwCounter, changed_box, stored_bytes

ALPHA_THRESHOLD = 128  # paletteuse: alpha below this is the transparent entry
CODE_SIZE = 8  # ffmpeg's GIF encoder codes every image with 8-bit symbols
# signature + screen descriptor, 256-entry global table, NETSCAPE loop extension, trailer
FFMPEG_HEADER_BYTES = 13 + 3 * 256 + 19 + 1
_COMPACT_AT = 1 << 22  # pending (colour, frames) pairs folded together past this many


def posterize_mask(lossy: int) -> int:
    """The word mask (``sampling.rgba_words`` layout) that drops ffmpeg's low bits at ``lossy``."""
    keep = (0xFF << ffmpeg_dropped_bits(lossy)) & 0xFF
    return int(keep | keep << 8 | keep << 16 | 0xFF << 24)


def _group_sum(words: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
            keys, sums = _group_sum(np.concatenate(self._words), np.concatenate(self._weights))
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
        keys, sums = _group_sum(np.concatenate(words), np.concatenate(weights))
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
def _swap(order, i, j):
    order[i], order[j] = order[j], order[i]


@numba.njit(cache=True, nogil=True)
def _quicksort(order, first, last, key):
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
        spread = hi - lo
        axis = 1  # green, the channel the eye is most sensitive to, on ties
        if spread[2] >= spread[0] and spread[2] >= spread[1]:
            axis = 2
        if spread[0] >= spread[1] and spread[0] >= spread[2]:
            axis = 0
        if spread[1] >= spread[0] and spread[1] >= spread[2]:
            axis = 1
        if sorted_by[box] != axis:
            _quicksort(order, s, s + m - 1, rgb[:, axis])
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


def paletteuse_palette(palette: np.ndarray) -> np.ndarray:
    """palettegen's colours as paletteuse holds them: sorted by ``0xRRGGBB``, duplicates
    dropped (palettegen pads its 256 entries with its last colour, so nothing is added)."""
    value = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    _, first = np.unique(value, return_index=True)
    return np.ascontiguousarray(palette[first])


@numba.njit(cache=True, nogil=True)
def _kd_tree(palette):
    """paletteuse's k-d tree over ``palette`` (sorted, distinct): (split channel, left, right)
    per node, node ``i`` holding colour ``colour[i]``. Each node is the median (after an
    ``AV_QSORT`` by the widest channel, blue then green then red on ties) of the colours left
    in its box; its box is then cut at that colour's value, which goes left."""
    n = palette.shape[0]
    split = np.zeros(n, np.int64)
    left = np.full(n, -1, np.int64)
    right = np.full(n, -1, np.int64)
    colour = np.zeros(n, np.int64)
    used = np.zeros(n, np.bool_)
    # Pending boxes: lo[3], hi[3], parent node, side (0 left, 1 right).
    boxes = np.zeros((2 * n + 2, 8), np.int64)
    boxes[0, 3:6] = 255
    boxes[0, 6] = -1
    top, nodes = 1, 0
    members = np.empty(n, np.int64)
    while top:
        top -= 1
        box = boxes[top].copy()
        m = 0
        lo = np.full(3, 255, np.int64)
        hi = np.zeros(3, np.int64)
        for i in range(n):
            if used[i]:
                continue
            inside = True
            for c in range(3):
                if palette[i, c] < box[c] or palette[i, c] > box[3 + c]:
                    inside = False
            if inside:
                members[m] = i
                m += 1
                for c in range(3):
                    lo[c] = min(lo[c], palette[i, c])
                    hi[c] = max(hi[c], palette[i, c])
        if m == 0:
            continue
        w = hi - lo
        axis = 0
        if w[0] >= w[1] and w[0] >= w[2]:
            axis = 0
        if w[1] >= w[0] and w[1] >= w[2]:
            axis = 1
        if w[2] >= w[0] and w[2] >= w[1]:
            axis = 2
        order = members[:m].copy()
        _quicksort(order, 0, m - 1, np.ascontiguousarray(palette[:, axis]))
        pick = order[m >> 1]
        node = nodes
        nodes += 1
        split[node], colour[node] = axis, pick
        used[pick] = True
        if box[6] >= 0:
            if box[7] == 0:
                left[box[6]] = node
            else:
                right[box[6]] = node
        value = palette[pick, axis]
        # Right box first on the stack so the left one is built first, as the recursion does.
        if min(value + 1, 255) <= box[3 + axis]:
            boxes[top] = box
            boxes[top, axis] = min(value + 1, 255)
            boxes[top, 6], boxes[top, 7] = node, 1
            top += 1
        boxes[top] = box
        boxes[top, 3 + axis] = value
        boxes[top, 6], boxes[top, 7] = node, 0
        top += 1
    return split[:nodes], left[:nodes], right[:nodes], colour[:nodes]


@numba.njit(cache=True, nogil=True)
def _kd_nearest(palette, split, left, right, colour, r, g, b):
    """The palette index paletteuse's iterative k-d search returns for (r, g, b): the nearest
    colour, and among equally near ones the first the search meets."""
    target = (r, g, b)
    stack_id = np.empty(64, np.int64)
    stack_dx2 = np.empty(64, np.int64)
    pos, best_node, best, cur = 0, 0, np.int64(1) << 62, 0
    while True:
        k = colour[cur]
        d = 0
        for c in range(3):
            delta = target[c] - palette[k, c]
            d += delta * delta
        if d < best:
            best_node = cur
            if d == 0:
                break
            best = d
        descended = False
        if left[cur] != -1 or right[cur] != -1:
            dx = target[split[cur]] - palette[k, split[cur]]
            near, far = (left[cur], right[cur]) if dx <= 0 else (right[cur], left[cur])
            if near != -1:
                if far != -1:
                    stack_id[pos], stack_dx2[pos] = far, dx * dx
                    pos += 1
                cur = near
                descended = True
            elif dx * dx < best:
                cur = far
                descended = True
        if descended:
            continue
        pos -= 1
        while pos >= 0 and stack_dx2[pos] >= best:
            pos -= 1
        if pos < 0:
            break
        cur = stack_id[pos]
    return colour[best_node]


@numba.njit(cache=True, nogil=True)
def _trunc_div4(v):
    return v // 4 if v >= 0 else -((-v) // 4)


@numba.njit(cache=True, nogil=True)
def _clip8(v):
    return 0 if v < 0 else (255 if v > 255 else v)


GRID_SHIFT = 4  # the nearest-colour grid's cells are 16 levels wide per channel
_CELLS = 256 >> GRID_SHIFT


@numba.njit(cache=True, nogil=True)
def _candidate_grid(palette):
    """(starts, candidates): for each cell of a 16x16x16 grid over RGB, the palette entries
    that can be the nearest to some colour in it (``candidates[starts[c]:starts[c + 1]]``):
    those whose nearest possible distance is within the smallest farthest distance."""
    n = palette.shape[0]
    side = 1 << GRID_SHIFT
    starts = np.zeros(_CELLS**3 + 1, np.int64)
    found = np.empty(_CELLS**3 * n, np.int64)
    near = np.empty(n, np.int64)
    total = 0
    for cell in range(_CELLS**3):
        lo = (
            (cell >> (2 * (8 - GRID_SHIFT))) * side,
            ((cell >> (8 - GRID_SHIFT)) % _CELLS) * side,
            (cell % _CELLS) * side,
        )
        bound = np.int64(1) << 62
        for i in range(n):
            d_near, d_far = 0, 0
            for c in range(3):
                v, a, b = palette[i, c], lo[c], lo[c] + side - 1
                gap = a - v if v < a else (v - b if v > b else 0)
                far = max(abs(v - a), abs(v - b))
                d_near += gap * gap
                d_far += far * far
            near[i] = d_near
            bound = min(bound, d_far)
        for i in range(n):
            if near[i] <= bound:
                found[total] = i
                total += 1
        starts[cell + 1] = total
    return starts, found[:total].copy()


@numba.njit(cache=True, nogil=True)
def _dither(src, out, palette, starts, candidates, tree, transparent):
    """Map the (h, w, 4) int64 box ``src`` (modified: it carries the diffused error) onto
    ``palette`` (nearest by squared RGB distance, found among ``_candidate_grid``'s
    ``starts``/``candidates``; ties settled by ``_kd_nearest`` on ``tree``, ``_kd_tree``'s
    arrays) into the (h, w) ``out`` with Sierra-2-4A."""
    h, w = out.shape
    for y in range(h):
        for x in range(w):
            if src[y, x, 3] < ALPHA_THRESHOLD:
                out[y, x] = transparent
                continue
            r, g, b = src[y, x, 0], src[y, x, 1], src[y, x, 2]
            cell = ((r >> GRID_SHIFT) * _CELLS + (g >> GRID_SHIFT)) * _CELLS + (b >> GRID_SHIFT)
            best, k, ties = np.int64(1) << 62, 0, 0
            for j in range(starts[cell], starts[cell + 1]):
                i = candidates[j]
                dr, dg, db = r - palette[i, 0], g - palette[i, 1], b - palette[i, 2]
                d = dr * dr + dg * dg + db * db
                if d < best:
                    best, k, ties = d, i, 0
                elif d == best:
                    ties += 1
            if ties:  # equally near colours: the one paletteuse's search meets first
                k = _kd_nearest(palette, tree[0], tree[1], tree[2], tree[3], r, g, b)
            out[y, x] = k
            er, eg, eb = r - palette[k, 0], g - palette[k, 1], b - palette[k, 2]
            if er == 0 and eg == 0 and eb == 0:
                continue
            for c in range(3):
                e = er if c == 0 else (eg if c == 1 else eb)
                if x < w - 1:
                    src[y, x + 1, c] = _clip8(src[y, x + 1, c] + _trunc_div4(2 * e))
                if y < h - 1:
                    if x > 0:
                        src[y + 1, x - 1, c] = _clip8(src[y + 1, x - 1, c] + _trunc_div4(e))
                    src[y + 1, x, c] = _clip8(src[y + 1, x, c] + _trunc_div4(e))


class _Setting:
    """One (colours, lossy) setting's palette, output frame and byte count."""

    def __init__(self, colors: int, lossy: int, palette: np.ndarray) -> None:
        self.colors, self.lossy = colors, lossy
        self.palette = palette
        self.transparent = len(palette)  # the reserved entry, after the colours
        self.starts, self.candidates = _candidate_grid(palette)
        self.tree = _kd_tree(palette)
        self.out: np.ndarray | None = None  # the current output frame's indices
        self.first_bytes = 0  # the first image's bytes
        self.image_bytes = 0  # the later images' bytes, and how many were counted
        self.images = 0
        self.weight = 0  # the later frames the counted images stand for
        self.clear = 0  # pixels of the output frame at the transparent entry

    def local_table_bytes(self) -> int:
        return 3 << max(1, int(self.transparent).bit_length())


def _offset(inner: tuple[slice, slice], outer: tuple[slice, slice]) -> tuple[slice, slice]:
    """``inner`` (a box within ``outer``'s crop) in the whole frame's coordinates."""
    (ys, xs), (oy, ox) = inner, outer
    return slice(oy.start + ys.start, oy.start + ys.stop), slice(
        ox.start + xs.start, ox.start + xs.stop
    )


class FfmpegProbe:
    """Estimated bytes of GifLab's ffmpeg render at each (colours, lossy) of ``settings``.

    Built from the whole GIF's ``FullHistogram`` (a first pass); feed it every frame again in
    order (``add``), then ``ratios(full_bytes)`` gives each setting's estimate over
    ``full_bytes``. Every frame is processed until ``budget`` pixels of the later frames have
    been dithered per setting, then every 2nd frame (and the one before it) until another budget's worth, and so
    on, so a long GIF costs a few budgets at most; the later images counted, each weighted by
    its stride, then stand for all the later frames. Work per frame is bounded by the box that
    changed: nothing outside it can change after posterising, dithering or encoding.
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
            mask: _group_sum(words & np.uint32(mask), counts.astype(np.float64))
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
        self._frames = 0
        self._pixels = 0
        self._stride = 1

    def add(self, words: np.ndarray) -> None:
        """The next frame, as an (H, W) array of colour words (``sampling.rgba_words``)."""
        index, self._frames = self._frames, self._frames + 1
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
                box = None if found is None else _offset(found[0], raw)
            frame = None if box is None else np.ascontiguousarray(words[box] & np.uint32(mask))
            for setting in settings:
                dithered = max(dithered, self._frame(setting, frame, box, whole, weight))
        if prev is not None:  # the first frame is whole and always counted: not budgeted
            self._pixels += dithered
        if self._budget is not None:
            self._stride = 1 << min(30, self._pixels // self._budget)

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
            _dither(
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
            setting.clear -= int(np.count_nonzero(before == trans)) if not first else 0
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
            found = changed_box(out, np.full_like(out, trans))
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
        later = 0.0
        if setting.weight:  # the counted later images stand for every later frame
            later = setting.image_bytes * (self._frames - 1) / setting.weight
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
