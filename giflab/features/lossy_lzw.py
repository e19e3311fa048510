"""How many bits one image's LZW data needs under gifsicle's ``--lossy=N``: the lossy probes.

gifsicle's lossy mode keeps the GIF format and changes only how the LZW encoder picks its
matches: instead of the longest dictionary string equal to the pixels ahead, it takes the
longest string whose every pixel is within a squared RGB distance of ``10 * N`` of the pixel it
stands for, with error diffusion along the string. This module counts the code stream such an
encoder writes, as a function of our own that follows the documented behaviour:

* a code starts with the exact next pixel; the search then walks the code tree depth-first,
  accepting a child whose colour, plus the diffused error carried so far (or half of it, which
  ever is closer), is within ``10 * N`` of the wanted pixel; a transparent pixel only matches a
  transparent one. The error carried to the next pixel is the difference plus three quarters of
  the error so far (C integer arithmetic: truncation toward zero);
* the longest accepted string wins, then the smallest summed distance, then the first found;
  children are visited in the encoder's own order (most recently added first, in index order
  for the few nodes it turns into tables), so ties fall the same way;
* when the 4096-code table fills, the table is cleared where the recent matches were short,
  rewinding to the start of the last short match, and only when the running average match
  length says the rest of the image is long enough to pay for it; images that cleared are
  also counted with an immediate clear and the smaller count is kept (what ``-O3`` does).

Checked against gifsicle 1.93 (``tests/test_features_lossy_lzw.py``): the byte counts of whole
GIFs re-encoded this way (``DeltaLzwEstimate(lossy_levels=...)``) follow gifsicle's size drop
from lossy 0 to 20-120 within 1-3 % (median over the 90 corpus GIFs; correlation 0.97-0.98).
"""

from __future__ import annotations

import numba
import numpy as np

MAX_CODES = 4096
_MAX_LINKS = 5  # a node with this many listed children becomes a table node (room permitting)
_EWMA_SCALE = 19  # fixed-point bits of the running average match length
_EWMA_SHIFT = 4  # its smoothing: 1/16 per code
_U32 = 0xFFFFFFFF
_RUN_INV_THRESH = (1 << _EWMA_SCALE) // 3000


@numba.njit(cache=True, nogil=True, inline="always")
def _c_div(a, b):
    """C's integer division: truncation toward zero."""
    q = abs(a) // b
    return q if a >= 0 else -q


@numba.njit(cache=True, nogil=True, inline="always")
def _ewma_step(ewma, run):
    run = ((run << _EWMA_SCALE) + (1 << (_EWMA_SHIFT - 1))) & _U32
    if run < ewma:
        return ewma - ((ewma - run) >> _EWMA_SHIFT), run
    return ewma + ((run - ewma) >> _EWMA_SHIFT), run


@numba.njit(cache=True, nogil=True)
def _lossy_code_bits(symbols, palette, transparent, min_code_size, max_diff, eager):
    """(code-stream bits, whether the table was ever cleared before the end)."""
    n = symbols.shape[0]
    clear = 1 << min_code_size
    first_child = np.full(MAX_CODES, -1, np.int32)
    sibling = np.full(MAX_CODES, -1, np.int32)
    suffix = np.zeros(MAX_CODES, np.int32)
    kind = np.ones(MAX_CODES, np.int32)  # 1.._MAX_LINKS: listed children; 0: a table node
    table_at = np.zeros(MAX_CODES, np.int32)
    tables = np.full(MAX_CODES, -1, np.int32)
    tables_used = 0
    # Depth-first search stack: node, position after it, summed distance, carried error.
    st_node = np.empty(MAX_CODES + 1, np.int32)
    st_pos = np.empty(MAX_CODES + 1, np.int64)
    st_diff = np.empty(MAX_CODES + 1, np.int64)
    st_err = np.empty((MAX_CODES + 1, 3), np.int64)

    bits = 0
    width = min_code_size + 1
    next_code = 0
    ewma = 0
    run = 0
    pos = 0
    rewind_pos = 0
    rewind_bits = 0
    cleared = False
    emit = 0  # what the loop writes next: 0 a clear code, 1 end of information, 2 a match
    node = -1
    while True:
        bits += width
        if emit == 0:
            width = min_code_size + 1
            next_code = clear + 2
            ewma = 1 << _EWMA_SCALE
            run = 0
            for c in range(clear):
                first_child[c] = -1
                kind[c] = 1
            tables_used = 0
            rewind_pos = 0
            rewind_bits = 0
        elif emit == 1:
            return bits, cleared
        else:
            if next_code > (1 << width) and width < 12:
                width += 1
            ewma, run = _ewma_step(ewma, run)
            run = 1 if node >= 0 else 0
        if pos >= n:
            node = -1
            emit = 1
            continue

        # The longest acceptable dictionary string from ``pos``.
        best_node = symbols[pos]
        best_pos = pos + 1
        best_diff = 0
        st_node[0] = best_node
        st_pos[0] = pos + 1
        st_diff[0] = 0
        st_err[0, 0] = 0
        st_err[0, 1] = 0
        st_err[0, 2] = 0
        top = 1
        root = True
        while top > 0:
            top -= 1
            at = st_node[top]
            p = st_pos[top]
            d = st_diff[top]
            er = st_err[top, 0]
            eg = st_err[top, 1]
            eb = st_err[top, 2]
            if not root and (p > best_pos or (p == best_pos and d < best_diff)):
                best_node, best_pos, best_diff = at, p, d
            root = False
            if p >= n:
                continue
            want = symbols[p]
            base = top
            if kind[at] == 0:
                offset = table_at[at]
                for i in range(clear):
                    if tables[offset + i] >= 0:
                        st_node[top] = tables[offset + i]
                        top += 1
            else:
                child = first_child[at]
                while child >= 0:
                    st_node[top] = child
                    top += 1
                    child = sibling[child]
            kept = base
            want_t = want == transparent
            for j in range(base, top):
                child = st_node[j]
                s = suffix[child]
                cand_t = s == transparent
                diff = 0
                if s != want:
                    if want_t != cand_t:
                        diff = 1 << 25
                    elif not want_t:
                        dr = palette[want, 0] - palette[s, 0]
                        dg = palette[want, 1] - palette[s, 1]
                        db = palette[want, 2] - palette[s, 2]
                        full = (dr + er) ** 2 + (dg + eg) ** 2 + (db + eb) ** 2
                        half = (
                            (dr + _c_div(er, 2)) ** 2
                            + (dg + _c_div(eg, 2)) ** 2
                            + (db + _c_div(eb, 2)) ** 2
                        )
                        diff = min(full, half)
                if diff > max_diff:
                    continue
                st_node[kept] = child
                st_pos[kept] = p + 1
                st_diff[kept] = d + diff
                if want_t or cand_t:
                    st_err[kept, 0] = 0
                    st_err[kept, 1] = 0
                    st_err[kept, 2] = 0
                else:
                    st_err[kept, 0] = palette[want, 0] - palette[s, 0] + _c_div(er * 3, 4)
                    st_err[kept, 1] = palette[want, 1] - palette[s, 1] + _c_div(eg * 3, 4)
                    st_err[kept, 2] = palette[want, 2] - palette[s, 2] + _c_div(eb * 3, 4)
                kept += 1
            top = kept
            # Reverse the children just pushed so the first one is searched first.
            i = base
            j = top - 1
            while i < j:
                st_node[i], st_node[j] = st_node[j], st_node[i]
                st_pos[i], st_pos[j] = st_pos[j], st_pos[i]
                st_diff[i], st_diff[j] = st_diff[j], st_diff[i]
                for k in range(3):
                    st_err[i, k], st_err[j, k] = st_err[j, k], st_err[i, k]
                i += 1
                j -= 1

        node = best_node
        run = best_pos - pos
        pos = best_pos
        if pos < n:
            if next_code < MAX_CODES:
                code = next_code
                s = symbols[pos]
                suffix[code] = s
                first_child[code] = -1
                kind[code] = 1
                if kind[node] == 0:
                    tables[table_at[node] + s] = code
                elif kind[node] < _MAX_LINKS or tables_used + clear > MAX_CODES:
                    sibling[code] = first_child[node]
                    first_child[node] = code
                    if kind[node] < _MAX_LINKS:
                        kind[node] += 1
                else:  # the node becomes a table of its children, indexed by suffix
                    offset = tables_used
                    tables_used += clear
                    for i in range(clear):
                        tables[offset + i] = -1
                    tables[offset + s] = code
                    child = first_child[node]
                    while child >= 0:
                        tables[offset + suffix[child]] = child
                        child = sibling[child]
                    kind[node] = 0
                    table_at[node] = offset
                next_code += 1
            else:
                next_code = MAX_CODES + 1
            if next_code > MAX_CODES - 2:
                do_clear = eager
                left = n - pos - 1
                if not do_clear and left > 0:
                    do_clear = (
                        ewma < (36 << _EWMA_SCALE) // min_code_size
                        or left > _U32 // _RUN_INV_THRESH
                        or ewma < left * _RUN_INV_THRESH
                    )
                if (do_clear or run < 7) and rewind_pos == 0:
                    rewind_pos = pos - run
                    rewind_bits = bits
                elif not do_clear and run > 50:
                    rewind_pos = 0
                    rewind_bits = 0
                if do_clear:
                    emit = 0
                    pos = rewind_pos
                    bits = rewind_bits
                    cleared = True
                    continue
            ewma, run = _ewma_step(ewma, run)
        emit = 2


def lossy_code_bits(
    symbols: np.ndarray,
    palette: np.ndarray,
    min_code_size: int,
    lossy: int,
    transparent: int = -1,
) -> int:
    """Bits of the LZW code stream gifsicle's ``--lossy=lossy`` encoder writes for one image.

    ``symbols``: the image's palette indices in row order; ``palette``: (>= max index + 1, 3)
    RGB; ``transparent``: the transparent index (-1 for none). ``lossy`` must be >= 1 (lossy 0
    is plain LZW: ``giflab.features.lzw.LzwCounter``).
    """
    if lossy < 1:
        raise ValueError(f"lossy must be >= 1 (use LzwCounter for lossless), got {lossy}")
    if not 2 <= min_code_size <= 8:
        raise ValueError(f"GIF LZW minimum code size is 2..8, got {min_code_size}")
    flat = np.ascontiguousarray(symbols, dtype=np.int32).ravel()
    rgb = np.ascontiguousarray(palette, dtype=np.int64)
    if len(flat) and (flat.max() >= len(rgb) or flat.max() >= 1 << min_code_size):
        raise ValueError("symbols index past the palette or the code size")
    bits, cleared = _lossy_code_bits(flat, rgb, transparent, min_code_size, 10 * lossy, False)
    if cleared:  # -O3 also tries clearing as soon as the table is full, and keeps the smaller
        bits = min(
            bits, _lossy_code_bits(flat, rgb, transparent, min_code_size, 10 * lossy, True)[0]
        )
    return int(bits)
