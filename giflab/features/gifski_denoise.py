"""gifski 1.7's denoiser (its ``denoise.rs``, release 1.7), our own code: per pixel, which colour
the screen shows and how important the change is. Used by ``giflab.features.gifski_probe``."""

from __future__ import annotations

import numba
import numpy as np

LOOKAHEAD = 5  # the frames gifski's denoiser sees at once: the one it outputs and 4 more
# numpy's error model: no zero check before each integer division (the only divisor,
# ``threshold * 48``, is at least 1,200): the kernel takes 20-30 % less time
_KERNEL = {"cache": True, "nogil": True, "error_model": "numpy"}


def motion_threshold(quality: int) -> int:
    """The weighted squared difference a pixel must reach to be redrawn at ``quality``."""
    return (55 - quality // 2) ** 2


@numba.njit(**_KERNEL)
def _color_diff(r0, g0, b0, r1, g1, b1):
    dr = np.int32(r0) - np.int32(r1)
    dg = np.int32(g0) - np.int32(g1)
    db = np.int32(b0) - np.int32(b1)
    return 2 * dr * dr + 3 * dg * dg + db * db


@numba.njit(**_KERNEL)
def _importance(diff, threshold, low, high):
    """How far ``diff`` passed ``threshold``: ``low`` plus up to ``high``."""
    exceeds = diff - threshold if diff > threshold else 0
    return low + min(high, (exceeds * high) // (threshold * 48))


@numba.njit(**_KERNEL)
def _median(values, n):
    """gifski's median of the first ``n`` values (the middle two averaged when ``n`` is even);
    sorts them in place."""
    for i in range(1, n):
        x = values[i]
        j = i - 1
        while j >= 0 and values[j] > x:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = x
    if n % 2:
        return values[n // 2]
    return (np.int32(values[n // 2 - 1]) + np.int32(values[n // 2])) // 2


@numba.njit(**_KERNEL)
def denoise(ring, oldest, held, stay, stayed, threshold, odd, rows, out, importance, busy):
    """gifski's denoiser (``Denoiser::acc``) over the rows flagged in ``rows``, for the frame in
    ``ring[oldest]``: ``ring`` holds it and the next four (slot ``(oldest + i) % 5``), transparent
    past the last. Per pixel, ``held`` is the colour gifski keeps showing, ``stay`` how many
    frames it holds it for and ``stayed`` how many of those have passed. Writes the colour to
    ``out`` and its importance to ``importance``, and flags in ``busy`` the rows where the next
    frame's output may change even without new input."""
    h, w = held.shape[0], held.shape[1]
    values = np.empty((3, LOOKAHEAD), np.uint8)
    for y in range(h):
        if not rows[y]:
            continue
        moving = False
        for x in range(w):
            if ring[oldest, y, x, 3] < 128:  # transparent: shown as such
                out[y, x, :] = 0
                importance[y, x] = 0
                if held[y, x, 3] > 0:
                    held[y, x, 3] = 0
                    stay[y, x] = 0
                    importance[y, x] = 1
                    moving = True
                continue
            r, g, b = ring[oldest, y, x, 0], ring[oldest, y, x, 1], ring[oldest, y, x, 2]
            cohort = (r // 2 > g) != (b > 127)
            limit = threshold if cohort != odd else threshold * 2
            diff = 1 << 20
            if held[y, x, 3] > 0:
                diff = _color_diff(held[y, x, 0], held[y, x, 1], held[y, x, 2], r, g, b)
            if stayed[y, x] < stay[y, x]:  # inside a stay: the median holds
                stayed[y, x] += 1
                high = 0
                if stayed[y, x] == 1:  # the frame after the change corrects it
                    k = stay[y, x]
                    high = 40 if k == 1 else (80 if k == 2 else (100 if k == 3 else 110))
                out[y, x, :] = held[y, x, :]
                # a floor of 1 gives the pixel a second chance where the threshold is low
                low = 0
                if limit <= 300 and stayed[y, x] <= 3:
                    low = 1
                elif 300 <= limit <= 500 and stayed[y, x] <= 2:
                    low = 1
                elif 400 <= limit <= 900 and stayed[y, x] <= 1:
                    low = 1
                importance[y, x] = _importance(diff, limit, low, high)
                moving = True
                continue
            if diff < limit:  # close enough: the screen keeps its colour
                out[y, x, :] = held[y, x, :]
                importance[y, x] = 0
                moving = moving or diff >= threshold
                continue
            stays = 0  # how many of the next frames stay close to the new colour
            for i in range(1, LOOKAHEAD):
                s = (oldest + i) % LOOKAHEAD
                if ring[s, y, x, 3] < 128 or limit <= _color_diff(
                    ring[s, y, x, 0], ring[s, y, x, 1], ring[s, y, x, 2], r, g, b
                ):
                    break
                stays = i
            moving = True
            if stays == 0:
                held[y, x, 0], held[y, x, 1], held[y, x, 2] = r, g, b
                importance[y, x] = _importance(diff, limit, 10, 110)
            else:
                for i in range(stays + 1):
                    s = (oldest + i) % LOOKAHEAD
                    for c in range(3):
                        values[c, i] = ring[s, y, x, c]
                for c in range(3):
                    held[y, x, c] = _median(values[c], stays + 1)
                if stays == 1:
                    importance[y, x] = _importance(diff, limit, 5, 80)
                elif stays == 2:
                    importance[y, x] = _importance(diff, limit, 15, 190)
                else:
                    importance[y, x] = _importance(diff, limit, 50, 205)
                stay[y, x] = stays
                stayed[y, x] = 0
            held[y, x, 3] = 255
            out[y, x, :] = held[y, x, :]
        busy[y] = moving
