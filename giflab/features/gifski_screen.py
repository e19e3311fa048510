"""What gifski's file shows, pixel by pixel: numba kernels of ``giflab.features.gifski_probe``
for storing a denoised frame (which rows hold something new, the crop to quantise, and the
screens once an image is drawn)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def new_rows(out, drawn, importance, top, bottom, clear):
    """(start, stop) of the rows in ``top:bottom`` gifski may draw in: those holding a pixel the
    screen does not show yet (not the opaque colour last drawn there and, when the frame is
    ``clear``ed, important: an important pixel turned transparent counts; else opaque) and,
    on a ``clear``ed frame with such a pixel, every row with an important pixel (a stay's
    second chance is redrawn where the new palette is nearer); (0, 0) when nothing is new."""
    start = stop = 0  # the rows with something new
    first = last = -1  # the rows with an important pixel
    for y in range(top, bottom):
        for x in range(out.shape[1]):
            opaque = out[y, x, 3] >= 128
            if clear:
                if importance[y, x] == 0:
                    continue
                if first < 0:
                    first = y
                last = y
            elif not opaque:
                continue
            if (
                opaque
                and out[y, x, 0] == drawn[y, x, 0]
                and out[y, x, 1] == drawn[y, x, 1]
                and out[y, x, 2] == drawn[y, x, 2]
                and out[y, x, 3] == drawn[y, x, 3]
            ):
                continue
            if stop == 0:
                start = y
            stop = y + 1
            break  # (on a cleared frame this pixel is important: the row is counted)
    if clear and stop > 0:
        return first, last + 1
    return start, stop


@numba.njit(cache=True, nogil=True)
def crop_new(out, drawn, importance, start, stop, clear):
    """(the rows ``start:stop`` of ``out``, unimportant pixels transparent when ``clear``; per
    pixel, whether it is opaque and not the colour last drawn there)."""
    crop = out[start:stop].copy()
    new = np.zeros(crop.shape[:2], np.bool_)
    for y in range(crop.shape[0]):
        for x in range(crop.shape[1]):
            if clear and importance[start + y, x] == 0:
                crop[y, x, :] = 0
            if crop[y, x, 3] < 128:
                continue
            for c in range(4):
                if crop[y, x, c] != drawn[start + y, x, c]:
                    new[y, x] = True
                    break
    return crop, new


@numba.njit(cache=True, nogil=True)
def draw(indices, palette, crop, new, importance, screen, drawn, transparent, first, keeps):
    """Make transparent the pixels of a later image that are not ``new`` (unless important and
    nearer to their palette colour than the screen is), then draw the image on ``screen`` (its
    palette colours) and ``drawn`` (the colours asked for), cleared after it unless it
    ``keeps``. Returns (start, stop): the rows of ``indices`` that change the screen."""
    h, w = indices.shape
    start = stop = 0
    for y in range(h):
        changes = first
        for x in range(w):
            if not first and transparent >= 0 and not new[y, x]:
                again = False
                if importance[y, x] > 0:
                    k = indices[y, x]
                    to_crop = to_screen = 0
                    for c in range(3):
                        d = np.int32(crop[y, x, c]) - np.int32(palette[k, c])
                        to_crop += d * d
                        d = np.int32(screen[y, x, c]) - np.int32(palette[k, c])
                        to_screen += d * d
                    again = to_crop < to_screen
                if not again:
                    indices[y, x] = transparent
            k = indices[y, x]
            if k == transparent:
                continue
            if not changes:
                for c in range(4):
                    if palette[k, c] != screen[y, x, c]:
                        changes = True
                        break
        if changes:
            if stop == 0:
                start = y
            stop = y + 1
    for y in range(start, stop):
        for x in range(w):
            k = indices[y, x]
            if k != transparent:
                for c in range(4):
                    screen[y, x, c] = palette[k, c]
                    drawn[y, x, c] = crop[y, x, c]
            if not keeps:
                for c in range(4):
                    screen[y, x, c] = 0
    return start, stop
