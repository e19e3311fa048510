"""The colour probes behind ``lzw_colors_ratio_<C>_<L>``: gifsicle's ``--colors C`` emulated
(palette, remap, re-encoded size), checked against the gifsicle binary on made and real GIFs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import corpus_features, decoded_pixels, good_corpus_gifs
from PIL import Image
from test_features_lossy_lzw import estimate, gradient

from giflab.features import extract_features
from giflab.features.quantize import (
    ColorProbe,
    StoredHistogram,
    gamma_colors,
    palette_size,
    reduce_colors,
    srgb_gamma,
)
from giflab.features.sampling import (
    COLOR_PROBE_COLORS,
    LOSSY_PROBE_LEVELS,
    rgba_words,
    sample_gif,
)
from giflab.frames import frame_count, iter_frames


def gifsicle(path: Path, *args: str) -> bytes:
    binary = shutil.which("gifsicle")
    if binary is None:
        pytest.skip("gifsicle not installed")
    argv = [binary, "-O3", "--no-warnings", *args, str(path)]
    return subprocess.run(argv, check=True, capture_output=True).stdout


def word(r: int, g: int, b: int) -> int:
    return r | g << 8 | b << 16 | 0xFF << 24


def used_colours(path: Path) -> set[int]:
    out: set[int] = set()
    for frame in iter_frames(path):
        words = rgba_words(frame.rgba)
        out |= set(np.unique(words[words >> 24 != 0]).tolist())
    return out


def test_gamma_table_is_srgb_to_15_bits():
    table = srgb_gamma()
    # Spot values of gifsicle's own table (kcolor.h's sRGB gamma, 15-bit).
    assert table[[0, 1, 10, 11, 128, 255]].tolist() == [0, 10, 99, 110, 7073, 32767]
    assert np.all(np.diff(table) > 0)
    assert gamma_colors(np.array([word(255, 0, 1)], np.uint32)).tolist() == [[32767, 0, 10]]


def test_a_palette_within_the_count_is_left_alone():
    counts = {word(i, 0, 0): 10 for i in range(16)}
    assert reduce_colors(counts, 16) is None
    assert reduce_colors(counts, 8) is not None
    with pytest.raises(ValueError):
        reduce_colors(counts, 1)


def test_diversity_takes_the_most_popular_then_the_farthest_colour():
    """Four colours into two: the most popular (dark grey), then the one farthest from it
    (white), however few pixels it has; the others go to their nearest pick."""
    grey, near, white, light = (
        word(60, 60, 60),
        word(70, 60, 60),
        word(255, 255, 255),
        word(200, 200, 200),
    )
    mapping = reduce_colors({grey: 100, near: 90, white: 1, light: 50}, 2)
    assert mapping == {grey: grey, near: grey, white: white, light: white}


def test_a_slot_is_kept_for_transparency_in_small_palettes():
    assert palette_size(200, 64, transparency=True) == 63
    assert palette_size(200, 64, transparency=False) == 64
    assert palette_size(300, 64, transparency=True) == 64  # past 265 colours: no slot
    assert palette_size(40, 64, transparency=True) == 40  # nothing to reduce
    assert palette_size(3, 2, transparency=True) == 2


@pytest.mark.parametrize("colors", [64, 16])
def test_the_palette_is_gifsicles(tmp_path, colors):
    """200 random colours, colour i on 3(i+1) pixels (no two counts tie: gifsicle breaks ties
    in its hash table's order): the picked colours are exactly those gifsicle's output uses,
    and every pixel gets the colour gifsicle gives it."""
    rng = np.random.default_rng(4)
    palette = rng.integers(0, 256, (200, 3))
    pixels = rng.permutation(np.repeat(np.arange(200), 3 * np.arange(1, 201))).reshape(201, 300)
    path = tmp_path / "distinct.gif"
    image = Image.fromarray(pixels.astype(np.uint8), mode="P")
    image.putpalette(palette.astype(np.uint8).ravel().tolist())
    image.save(path)
    full = estimate(path, levels=())
    mapping = reduce_colors(full.colour_counts(), colors, full.uses_transparency())
    out = tmp_path / "out.gif"
    out.write_bytes(gifsicle(path, f"--colors={colors}"))
    assert set(mapping.values()) == used_colours(out)
    source = rgba_words(next(iter_frames(path)).rgba)
    reduced = rgba_words(next(iter_frames(out)).rgba)
    assert np.array_equal(np.vectorize(mapping.get)(source), reduced)


@pytest.mark.parametrize("colors", [64, 16])
def test_sizes_follow_gifsicle_on_a_made_animation(tmp_path, colors):
    """A 3-frame animation of 256-colour frames (more colours in all, so local tables), each
    stored whole: the estimated bytes under ``--colors C`` and ``--lossy=L`` are within 3 % of
    gifsicle's (measured: 0.5-1.9 % at 64 colours, 2.4-2.9 % at 16; gifsicle's histogram counts
    the stored frames, ``StoredHistogram``)."""
    base = gradient(80, 120, seed=3)
    frames = []
    for i in range(3):
        frame = base.copy()
        frame[20:50, 10 + 20 * i : 40 + 20 * i] = gradient(30, 30, seed=7 + i)
        frames.append(Image.fromarray(frame).quantize(256, dither=Image.Dither.NONE))
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], optimize=False)
    sample = sample_gif(path, with_clip=False)
    for level in (0, *LOSSY_PROBE_LEVELS):
        real = len(gifsicle(path, f"--colors={colors}", f"--lossy={level}"))
        predicted = sample.lzw_bytes * sample.color_ratios[(colors, level)]
        assert predicted == pytest.approx(real, rel=0.03), level


def test_counts_that_change_nothing_get_none_and_the_features_fall_back(tmp_path):
    """A 12-colour GIF: every count leaves its palette, so the probe has nothing to do and the
    features are the full-colour ones (0 lossless, the lossy probes' ratios)."""
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 12, (40, 60)).astype(np.uint8)
    image = Image.fromarray(pixels, mode="P")
    image.putpalette([v for i in range(12) for v in (i * 20, 255 - i * 20, 90)])
    path = tmp_path / "few.gif"
    image.save(path)
    full = estimate(path, levels=())
    probe = ColorProbe(full.colour_counts(), False, COLOR_PROBE_COLORS, LOSSY_PROBE_LEVELS)
    assert not probe.needed
    assert set(probe.ratios(full.total_bytes()).values()) == {None}
    values = extract_features(path)
    for colors in COLOR_PROBE_COLORS:
        assert values[f"lzw_colors_ratio_{colors}_0"] == 0.0
        for level in LOSSY_PROBE_LEVELS:
            assert (
                values[f"lzw_colors_ratio_{colors}_{level}"] == values[f"lzw_lossy_ratio_{level}"]
            )


# Decoded size (width x height x frames) of the GIFs the real-GIF check below takes (anime,
# lottie, Pillow, gifsicle and raylib ones; no terminal recording is this small):
# extract_features on one costs seconds, not the minute of the largest.
SMALL = 20_000_000


def test_features_follow_gifsicle_colour_reduction_on_real_gifs():
    """On real animated GIFs, the lossless estimate times 2**lzw_colors_ratio_C_L is what
    gifsicle writes under ``--colors C --lossy=L`` (``-O3``): median within 3 %, four in five
    within 10 %, for 64 and 16 colours at lossless and the highest level."""
    gifs = [
        p
        for p in good_corpus_gifs()
        if p.stat().st_size > 5 * 1024 and frame_count(p) > 1 and decoded_pixels(p) <= SMALL
    ]
    gifs = gifs[:: max(1, len(gifs) // 8)]
    assert len(gifs) >= 4
    errors: dict[tuple[int, int], list[float]] = {}
    for path in gifs:
        values = corpus_features(path)
        lossless = estimate(path, levels=()).total_bytes()
        for colors in (64, 16):
            for level in (0, LOSSY_PROBE_LEVELS[-1]):
                real = len(gifsicle(path, f"--colors={colors}", f"--lossy={level}"))
                predicted = lossless * 2.0 ** values[f"lzw_colors_ratio_{colors}_{level}"]
                errors.setdefault((colors, level), []).append(abs(predicted / real - 1))
    for key, errs in errors.items():
        assert np.median(errs) < 0.03, (key, errs)
        assert np.mean(np.array(errs) < 0.10) >= 0.8, (key, errs)


def test_the_histogram_counts_stored_pixels_and_skips_the_ones_that_show_through():
    red, blue, clear = word(255, 0, 0), word(0, 0, 255), 0
    first = np.full((4, 4), red, np.uint32)
    second = first.copy()
    second[1:3, 1:3] = blue
    histogram = StoredHistogram()
    histogram.add(first, (0, 0, 4, 4), False)
    # Stored as a 3x3 box with a transparent index: the 5 red pixels in it show through.
    histogram.add(second, (0, 0, 3, 3), True)
    assert histogram.counts == {red: 16, blue: 4} and histogram.transparency
    opaque = StoredHistogram()
    opaque.add(first, (0, 0, 4, 4), False)
    opaque.add(second, (0, 0, 3, 3), False)  # no transparent index: all 9 pixels are stored
    assert opaque.counts == {red: 21, blue: 4} and not opaque.transparency
    holes = StoredHistogram()
    holes.add(np.where(np.eye(4, dtype=bool), clear, first).astype(np.uint32), (0, 0, 4, 4), True)
    assert holes.counts == {red: 12} and holes.transparency
    holes.add(second, None, False)
    assert not holes.complete


def test_frames_carry_the_rectangle_the_file_stores(tmp_path):
    """gifsicle -O3 stores the second frame as the changed box with a transparent index."""
    base = np.random.default_rng(1).integers(1, 64, (40, 60)).astype(np.uint8)
    moved = base.copy()
    moved[10:20, 30:45] = 0
    frames = []
    for pixels in (base, moved):
        frame = Image.fromarray(pixels, mode="P")
        frame.putpalette([v for i in range(64) for v in (i * 4, 255 - i * 4, 128)])
        frames.append(frame)
    made = tmp_path / "made.gif"
    frames[0].save(made, save_all=True, append_images=frames[1:], optimize=False)
    path = tmp_path / "o3.gif"
    path.write_bytes(gifsicle(made))
    first, second = iter_frames(path)
    assert first.stored == (0, 0, 60, 40)
    x0, y0, x1, y1 = second.stored
    assert (x0, y0, x1, y1) == (30, 10, 45, 20)
