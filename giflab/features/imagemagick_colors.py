"""ImageMagick 6's ``-dither FloydSteinberg -colors C`` on one stored image, for the
``imagemagick_colors_ratio_<C>_<L>`` probes (``giflab.features.fuzz_probe``).

GifLab's ImageMagick engine runs ``-layers Optimize`` and then ``-colors C``. The optimiser's
last step remaps every frame to one shared palette of at most 256 colours (``remap``); then
``-colors`` quantises each frame on its own, so each gets a local table, but only a frame whose
colormap (the shared one) is larger than C: at 256 colours it merely drops unused entries.
Written from ImageMagick 6.9's ``quantize.c`` and ``mogrify.c`` (the ``convert`` Debian ships),
our own code:

* **tree depth**: ``Log4(C) + 2``, one less when dithering (256 -> 5, 64 -> 4, 16 -> 3); 8 for an
  image whose pixels are all grey (``SetImageGray``);
* **classification**: colours are classified exactly (depth 8) until there are more than C of
  them; then the tree is pruned to its depth and each leaf is a cube of colours. A frame of at
  most C colours keeps them all;
* **reduction**: while there are more than C leaves, every node whose quantisation error (the sum
  over its pixels of their distance to the node's centre) is at most a threshold is merged into
  its parent, the threshold rising to the smallest error left; the first threshold is the error
  ranked ``1.1 (C + 1)`` from the top, so big trees shrink in one pass. The colour count is
  stale after the pruning, so a tree pruned to its depth is reduced once even with C leaves or
  fewer;
* **palette**: each leaf's mean colour, kept at ImageMagick's 16-bit precision for dithering (a
  region of colours around a rounded mean would pile up error until a pixel flips);
* **dithering**: serpentine Floyd–Steinberg (7, 3, 5, 1 sixteenths); the colour a pixel plus its
  error maps to is cached per 6 bits of each channel, so the first pixel of a cell decides for
  all the cell's later pixels: even a frame keeping its exact colours gets dither noise where two
  of them share a cell.

Not emulated: the nearest colour is searched among all leaves (ImageMagick searches the
pixel's branch of the tree), and transparent pixels neither take nor pass on error (ImageMagick
diffuses their alpha). Transparency takes one of the C slots, as the transparent colour is a
leaf of ImageMagick's tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd

MAX_DEPTH = 8
REMAP_COLORS = 256  # QuantizeInfo's default colour count, -layers Optimize's remap
# The "ImageMagick gamma=0.454545" application extension ImageMagick 6.9 writes before an image
# that -colors quantised while it was all grey (its 1x1 placeholders for unchanged frames too).
GAMMA_EXTENSION_BYTES = 30
CACHE_SHIFT = 2  # ImageMagick's CacheShift on Linux: 6 bits of each channel


def tree_depth(colors: int, gray: bool = False) -> int:
    """ImageMagick's octree depth for ``colors`` colours with dithering (``-colors``; ``gray``:
    every pixel grey, which ``-colors`` classifies to full depth but a list's remap does not)."""
    if gray:
        return MAX_DEPTH
    depth, left = 1, colors
    while left:
        left >>= 2
        depth += 1
    return depth - 1 if depth > 2 else depth


def _mid(keys: np.ndarray, level: int) -> np.ndarray:
    """The centre (16-bit quantum, as ImageMagick's ``mid``) of each level-``level`` cube."""
    return (keys.astype(np.float64) + 0.5) * (65536.0 / (1 << level)) - 0.5


def octree_palette(
    colours: np.ndarray, counts: np.ndarray, colors: int, gray: bool, transparent: bool = False
) -> np.ndarray:
    """The palette (K, 3) float64 ImageMagick's ``-colors colors`` gives opaque pixels whose
    distinct colours are ``colours`` ((N, 3) uint8, each ``counts`` times); ``transparent``: the
    image has transparent pixels too, whose colour takes one of the ``colors`` slots."""
    max_colors = colors - transparent
    if len(colours) <= max_colors:
        return colours.astype(np.float64)
    depth = tree_depth(colors, gray)
    q16 = colours.astype(np.float64) * 257.0
    weights = counts.astype(np.float64)
    # Nodes per level 1..depth: key (3 channel prefixes), parent, error; stats at the leaves.
    inverse_of: list[np.ndarray] = []
    parents: list[np.ndarray] = []
    errors: list[np.ndarray] = []
    previous = np.zeros(len(colours), dtype=np.int64)  # every colour is under the root
    for level in range(1, depth + 1):
        shift = MAX_DEPTH - level
        prefix = colours.astype(np.int64) >> shift
        keys = (prefix[:, 0] << 16) | (prefix[:, 1] << 8) | prefix[:, 2]
        unique, inverse = np.unique(keys, return_inverse=True)
        parent = np.zeros(len(unique), dtype=np.int64)
        parent[inverse] = previous
        diff = (q16 - _mid(prefix, level)) / 65535.0
        # Opaque pixels under an alpha channel: the node's centre is off by half its alpha span.
        alpha = 0.5 / (1 << level)
        distance = np.sqrt(np.einsum("ij,ij->i", diff, diff) + alpha * alpha)
        errors.append(np.bincount(inverse, weights * distance, len(unique)))
        inverse_of.append(inverse)
        parents.append(parent)
        previous = inverse
    # Stats per node (leaves hold the pixels; root and inner nodes start empty).
    n2 = [np.zeros(len(e)) for e in errors]
    totals = [np.zeros((len(e), 3)) for e in errors]
    leaf = inverse_of[-1]
    n2[-1] = np.bincount(leaf, weights, len(errors[-1]))
    for c in range(3):
        totals[-1][:, c] = np.bincount(leaf, weights * colours[:, c], len(errors[-1]))
    root_n2, root_totals = 0.0, np.zeros(3)
    alive = [np.ones(len(e), dtype=bool) for e in errors]
    # The root, and the transparent colour's branch (never pruned here) when there is one.
    fixed = 1 + depth * transparent
    nodes = fixed + sum(len(e) for e in errors)
    ranked = np.sort(np.concatenate([np.full(fixed, np.inf), *errors]))
    keep = 110 * (colors + 1) // 100
    threshold = ranked[nodes - keep] if nodes > keep else 0.0
    while True:
        above = np.ones(1, dtype=bool)  # the root is never pruned
        for i in range(depth):
            parent_alive = above[parents[i]] if i else np.ones(len(errors[0]), dtype=bool)
            now = alive[i] & parent_alive & (errors[i] > threshold)
            alive[i], above = now, now
        # Merge the stats of every pruned node into its parent, deepest first.
        for i in range(depth - 1, -1, -1):
            dead = ~alive[i] & (n2[i] > 0)
            if not dead.any():
                continue
            if i == 0:
                root_n2 += n2[i][dead].sum()
                root_totals += totals[i][dead].sum(axis=0)
            else:
                np.add.at(n2[i - 1], parents[i][dead], n2[i][dead])
                np.add.at(totals[i - 1], parents[i][dead], totals[i][dead])
            n2[i][dead] = 0.0
            totals[i][dead] = 0.0
        leaves = sum(int((a & (n > 0)).sum()) for a, n in zip(alive, n2, strict=True)) + (
            root_n2 > 0
        )
        if leaves <= max_colors:
            break
        remaining = [e[a] for e, a in zip(errors, alive, strict=True) if a.any()]
        threshold = min(float(r.min()) for r in remaining) if remaining else np.inf
    means = [
        totals[i][alive[i] & (n2[i] > 0)] / n2[i][alive[i] & (n2[i] > 0), None]
        for i in range(depth)
    ]
    if root_n2 > 0:
        means.append((root_totals / root_n2)[None, :])
    return np.concatenate(means)  # unrounded, as ImageMagick dithers against 16-bit means


@numba.njit(cache=True, nogil=True)
def dither(rgb: np.ndarray, opaque: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Palette indices of the (H, W, 3) uint8 ``rgb`` after ImageMagick's serpentine
    Floyd–Steinberg with its 6-bit colour cache; -1 where ``opaque`` is False."""
    h, w = opaque.shape
    k = palette.shape[0]
    cache = np.full(1 << (3 * (8 - CACHE_SHIFT)), -1, np.int32)
    out = np.empty((h, w), np.int32)
    err = np.zeros((2, w, 3))
    for y in range(h):
        cur = err[y & 1]
        prev = err[(y + 1) & 1]
        v = -1 if y & 1 else 1
        for x in range(w):
            u = w - 1 - x if y & 1 else x
            if not opaque[y, u]:
                out[y, u] = -1
                cur[u, 0] = 0.0
                cur[u, 1] = 0.0
                cur[u, 2] = 0.0
                continue
            pixel = np.empty(3)
            for c in range(3):
                p = float(rgb[y, u, c])
                if x > 0:
                    p += 7.0 * cur[u - v, c] / 16.0
                if y > 0:
                    if x < w - 1:
                        p += prev[u + v, c] / 16.0
                    p += 5.0 * prev[u, c] / 16.0
                    if x > 0:
                        p += 3.0 * prev[u - v, c] / 16.0
                pixel[c] = min(max(p, 0.0), 255.0)
            cell = 0
            for c in range(3):
                cell |= (int(pixel[c] + 0.5) >> CACHE_SHIFT) << (c * (8 - CACHE_SHIFT))
            index = cache[cell]
            if index < 0:
                best = np.inf
                for j in range(k):
                    d = 0.0
                    for c in range(3):
                        d += (palette[j, c] - pixel[c]) ** 2
                    if d < best:
                        best = d
                        index = j
                cache[cell] = index
            out[y, u] = index
            for c in range(3):
                cur[u, c] = pixel[c] - palette[index, c]
    return out


def _distinct(
    rgb: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct colours (K, 3) uint8 in order of appearance, the pixels of each, each pixel's
    colour number) of (N, 3) uint8 pixels (each counted ``weights`` times). Hashed, not sorted:
    a sort of a large frame's pixels was most of the probe's time."""
    words = (rgb[:, 0].astype(np.int32) << 16) | (rgb[:, 1].astype(np.int32) << 8) | rgb[:, 2]
    codes, unique = pd.factorize(words)
    counts = np.bincount(codes, weights, len(unique))
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1)
    return colours.astype(np.uint8), counts, codes


def _opaque(rgba: np.ndarray, drawn: np.ndarray | None) -> np.ndarray:
    opaque = rgba[..., 3] >= 128
    return opaque if drawn is None else opaque & drawn


def remap(
    images: Sequence[tuple[np.ndarray, np.ndarray | None]], weights: Sequence[int] | None = None
) -> tuple[list[np.ndarray], int]:
    """``-layers Optimize``'s last step: every stored image ((RGBA, drawn mask or None), each
    standing for ``weights`` images) remapped, dithered, to one palette of at most 256 colours
    classified over all of them (``RemapImages`` with no map image: ``QuantizeImages``, its
    default 256 colours and tree depth 5). Returns copies of the RGBA arrays. ImageMagick dithers
    this step with Riemersma's Hilbert-curve diffusion (the ``-dither`` setting comes later in
    the engine's command); Floyd–Steinberg stands in for it here.

    Returns copies of the RGBA arrays and the size of the colormap they share (the transparent
    colour included), which decides what ``-colors`` does next (``quantized_indices``)."""
    if not images:
        return [], 0
    weights = [1] * len(images) if weights is None else list(weights)
    opaque = [_opaque(rgba, drawn) for rgba, drawn in images]
    pixels = np.concatenate([rgba[..., :3][o] for (rgba, _), o in zip(images, opaque, strict=True)])
    pixel_weights = np.concatenate(
        [np.full(int(o.sum()), float(w)) for o, w in zip(opaque, weights, strict=True)]
    )
    transparent = any(not o.all() for o in opaque)
    out = [rgba.copy() for rgba, _ in images]
    if len(pixels) == 0:
        return out, int(transparent)
    colours, counts, _ = _distinct(pixels, pixel_weights)
    palette = octree_palette(colours, counts, REMAP_COLORS, False, transparent)
    rounded = np.round(palette).clip(0, 255).astype(np.uint8)
    for rgba, o in zip(out, opaque, strict=True):
        indices = dither(np.ascontiguousarray(rgba[..., :3]), o, np.ascontiguousarray(palette))
        rgba[..., :3][o] = rounded[indices[o]]
    return out, len(palette) + transparent


def quantized_indices(
    rgba: np.ndarray, drawn: np.ndarray | None, colors: int, colormap: int | None = None
) -> tuple[np.ndarray, int, int]:
    """(indices, table size, extra bytes): ``rgba`` (H, W, 4) uint8 after ``-colors colors``,
    the pixels outside ``drawn`` (None: all) or not opaque transparent (the last index).

    ``colormap``: the size of the colormap the image carries (``remap``'s), None for a
    full-colour image. ImageMagick quantises only an image whose colormap is larger than
    ``colors``; one within it merely has its unused entries dropped (``CompressImageColormap``:
    its own colours, no dithering). The extra bytes are the gamma extension written before a
    grey image that was quantised."""
    opaque = _opaque(rgba, drawn)
    rgb = np.ascontiguousarray(rgba[..., :3])
    pixels = rgb[opaque]
    transparent = not opaque.all()
    quantised = colormap is None or colormap > colors
    if len(pixels) == 0:
        return np.zeros(opaque.shape, dtype=np.int64), 1, GAMMA_EXTENSION_BYTES * quantised
    colours, counts, codes = _distinct(pixels)
    if not quantised:  # LZW's size does not depend on which index a colour gets
        indices = np.full(opaque.shape, len(colours), dtype=np.int64)
        indices[opaque] = codes
        return indices, len(colours) + transparent, 0
    gray = bool((colours[:, 0] == colours[:, 1]).all() and (colours[:, 1] == colours[:, 2]).all())
    palette = octree_palette(colours, counts, colors, gray, transparent)
    indices = dither(rgb, opaque, np.ascontiguousarray(palette)).astype(np.int64)
    size = len(palette)
    if transparent:
        indices[indices < 0] = size
        size += 1
    return indices, size, GAMMA_EXTENSION_BYTES * gray
