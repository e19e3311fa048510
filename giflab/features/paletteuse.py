"""ffmpeg's ``paletteuse`` (5.1) as GifLab's ffmpeg engine runs it: the palette order, the k-d
tree whose walk settles ties, and Sierra-2-4A error diffusion, for the ffmpeg probes
(``giflab.features.ffmpeg_probe``).

Written from ffmpeg's behaviour, with our own code.
"""

from __future__ import annotations

import numba
import numpy as np

from giflab.features.palettegen import quicksort, widest_channel

ALPHA_THRESHOLD = 128  # paletteuse: alpha below this is the transparent entry


def paletteuse_palette(palette: np.ndarray) -> np.ndarray:
    """palettegen's colours as paletteuse holds them: sorted by ``0xRRGGBB``, duplicates
    dropped (palettegen pads its 256 entries with its last colour, so nothing is added)."""
    value = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    _, first = np.unique(value, return_index=True)
    return np.ascontiguousarray(palette[first])


@numba.njit(cache=True, nogil=True)
def kd_tree(palette):
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
        axis = widest_channel(hi - lo, (2, 1, 0))  # blue, then green, wins ties
        order = members[:m].copy()
        quicksort(order, 0, m - 1, np.ascontiguousarray(palette[:, axis]))
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
def kd_nearest(palette, split, left, right, colour, r, g, b):
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
def candidate_grid(palette):
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
def dither(src, out, palette, starts, candidates, tree, transparent):
    """Map the (h, w, 4) int64 box ``src`` (modified: it carries the diffused error) onto
    ``palette`` (nearest by squared RGB distance, found among ``candidate_grid``'s
    ``starts``/``candidates``; ties settled by ``kd_nearest`` on ``tree``, ``kd_tree``'s
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
                k = kd_nearest(palette, tree[0], tree[1], tree[2], tree[3], r, g, b)
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
