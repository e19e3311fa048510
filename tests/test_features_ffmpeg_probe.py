"""The ffmpeg probes behind ``ffmpeg_colors_ratio_<C>_<L>``: GifLab's ffmpeg engine (posterise,
palettegen, paletteuse with Sierra-2-4A, ffmpeg's GIF encoder) emulated, checked piece by piece
and against the ffmpeg binary on made and real GIFs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import corpus_features, decoded_pixels, good_corpus_gifs, installed_engine
from PIL import Image
from test_features_lossy_lzw import estimate, gradient

from giflab.engines.base import SourceGif, Variant
from giflab.engines.ffmpeg import ffmpeg_dropped_bits
from giflab.features import paletteuse
from giflab.features.ffmpeg_probe import CODE_SIZE, FfmpegProbe
from giflab.features.lzw import FRAME_BYTES, lzw_code_bits, stored_bytes
from giflab.features.palettegen import FullHistogram, median_cut_palette, posterize_mask
from giflab.features.paletteuse import candidate_grid, kd_nearest, kd_tree, paletteuse_palette
from giflab.features.sampling import FFMPEG_PROBES, rgba_words
from giflab.frames import frame_count, iter_frames


def word(r: int, g: int, b: int, a: int = 255) -> int:
    return r | g << 8 | b << 16 | a << 24


def ffmpeg_bytes(path: Path, out: Path, colors: int, lossy: int) -> int:
    engine = installed_engine("ffmpeg")
    engine.render(path, Variant(lossy=lossy, colors=colors, frame_keep=1.0), out)
    return out.stat().st_size


def probe(path: Path, settings, budget=None) -> FfmpegProbe:
    histogram = FullHistogram()
    for frame in iter_frames(path):
        histogram.add(rgba_words(frame.rgba))
    counted = FfmpegProbe(*histogram.counts(), settings, budget=budget)
    for frame in iter_frames(path):
        counted.add(rgba_words(frame.rgba))
    return counted


def test_posterize_mask_drops_the_engines_low_bits():
    values = np.arange(256, dtype=np.uint32)
    for lossy in (0, 20, 40, 60, 80, 100, 120):
        q = 1 << ffmpeg_dropped_bits(lossy)
        words = values | values << 8 | values << 16 | np.uint32(0x80) << 24
        masked = words & np.uint32(posterize_mask(lossy))
        expected = (values // q) * q  # lutrgb's trunc(val/q)*q
        assert np.array_equal(masked & 0xFF, expected)
        assert np.array_equal((masked >> 16) & 0xFF, expected)
        assert np.all(masked >> 24 == 0x80)  # alpha untouched
    assert ffmpeg_dropped_bits(0) == 0 and ffmpeg_dropped_bits(120) == 6


def test_full_histogram_counts_every_pixel_of_every_whole_frame_in_first_seen_order():
    rng = np.random.default_rng(3)
    palette = np.array([word(10 * i, 5 * i, 255 - i) for i in range(12)] + [0], np.uint32)
    frame = palette[rng.integers(0, len(palette), (20, 30))]
    frames = []
    histogram = FullHistogram()
    for _ in range(9):
        frames.append(frame)
        histogram.add(frame)
        frame = frame.copy()
        y, x = rng.integers(0, 15), rng.integers(0, 25)
        frame[y : y + 5, x : x + 5] = palette[rng.integers(0, len(palette), (5, 5))]
    frames.append(frame)
    histogram.add(frame)
    histogram.add(frame)  # an unchanged frame counts its pixels once more
    frames.append(frame)
    frames.append(frame)  # and the engine feeds palettegen the last frame twice
    words, counts = histogram.counts()
    everything = np.concatenate([f.ravel() for f in frames])
    expected_words, expected_counts = np.unique(everything, return_counts=True)
    order = np.argsort(words)
    assert np.array_equal(words[order], expected_words)
    assert np.array_equal(counts[order], expected_counts)
    assert words.tolist() == pd.unique(everything).tolist()


def test_median_cut_keeps_colours_that_fit_and_cuts_at_the_weighted_median():
    few = np.array([word(1, 2, 3), word(200, 10, 10), word(0, 0, 250)], np.uint32)
    palette = median_cut_palette(few, np.array([5, 1, 1]), colors=16)
    assert sorted(map(tuple, palette.tolist())) == [(0, 0, 250), (1, 2, 3), (200, 10, 10)]
    # Two clusters on the red axis, two boxes (one entry is kept for transparency): each box
    # is its cluster's weighted mean.
    reds = np.array([word(r, 0, 0) for r in (10, 20, 200, 220)], np.uint32)
    palette = median_cut_palette(reds, np.array([1, 3, 1, 1]), colors=3)
    assert sorted(map(tuple, palette.tolist())) == [(17, 0, 0), (210, 0, 0)]
    # The heaviest colour pulls the median: 3 of 4 pixels are red 20, so it splits after it.
    assert len(median_cut_palette(reds, np.ones(4, np.int64), colors=256)) == 4


def palettegen(path: Path, tmp: Path, colors: int, lossy: int) -> set[tuple[int, int, int]]:
    """The opaque colours of the palette ffmpeg's palettegen builds from the engine's frames,
    listed as the engine lists them (the last frame twice)."""
    engine = installed_engine("ffmpeg")
    frames = SourceGif(path, tmp).png_frames
    listing = tmp / "frames.txt"
    lines = [f"file '{f}'\nduration 0.1" for f in frames] + [f"file '{frames[-1]}'"]
    listing.write_text("ffconcat version 1.0\n" + "\n".join(lines) + "\n", encoding="utf-8")
    q = 1 << ffmpeg_dropped_bits(lossy)
    pre = (
        f"lutrgb=r='trunc(val/{q})*{q}':g='trunc(val/{q})*{q}':b='trunc(val/{q})*{q}',"
        if q > 1
        else ""
    )
    out = tmp / "palette.png"
    argv = [engine.binary(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    argv += ["-vf", f"{pre}palettegen=max_colors={colors}:stats_mode=full", str(out)]
    subprocess.run(argv, check=True)
    rgba = np.asarray(Image.open(out).convert("RGBA")).reshape(-1, 4)
    return {tuple(c[:3]) for c in rgba.tolist() if c[3] >= 128}


def test_the_palette_is_palettegens_on_real_gifs(tmp_path):
    gifs = [p for p in good_corpus_gifs() if frame_count(p) > 1 and decoded_pixels(p) < 2_000_000]
    gifs = gifs[:: max(1, len(gifs) // 3)][:3]
    for path in gifs:
        histogram = FullHistogram()
        for frame in iter_frames(path):
            histogram.add(rgba_words(frame.rgba))
        words, counts = histogram.counts()
        for colors, lossy in ((64, 0), (16, 60)):
            mask = np.uint32(posterize_mask(lossy))
            keys, inverse = np.unique(words & mask, return_inverse=True)
            order = pd.unique(words & mask)  # first appearance, as palettegen meets them
            sums = np.bincount(inverse, weights=counts)[np.searchsorted(keys, order)]
            ours = median_cut_palette(order, sums.astype(np.int64), colors)
            theirs = palettegen(path, tmp_path, colors, lossy)
            assert {tuple(c) for c in ours.tolist()} == theirs, (path.name, colors, lossy)


def test_paletteuse_holds_the_palette_sorted_and_distinct():
    palette = np.array([[9, 0, 0], [0, 0, 200], [9, 0, 0], [0, 1, 0]], np.int64)
    assert paletteuse_palette(palette).tolist() == [[0, 0, 200], [0, 1, 0], [9, 0, 0]]


def dither(rgba: np.ndarray, palette: np.ndarray) -> np.ndarray:
    starts, candidates = candidate_grid(palette)
    out = np.empty(rgba.shape[:2], np.uint8)
    tree = kd_tree(palette)
    paletteuse.dither(rgba.astype(np.int64), out, palette, starts, candidates, tree, len(palette))
    return out


def test_the_k_d_search_finds_a_nearest_colour_and_settles_ties_by_its_walk():
    rng = np.random.default_rng(11)
    palette = paletteuse_palette(rng.integers(0, 256, (60, 3)).astype(np.int64))
    tree = kd_tree(palette)
    assert sorted(tree[3].tolist()) == list(range(len(palette)))  # every colour is a node
    for r, g, b in rng.integers(0, 256, (500, 3)).tolist():
        k = kd_nearest(palette, *tree, r, g, b)
        d = ((palette - [r, g, b]) ** 2).sum(axis=1)
        assert d[k] == d.min()
    # Two colours equally near: the walk decides, whatever their order in the palette.
    pair = np.array([[0, 0, 0], [2, 0, 0]], np.int64)
    assert kd_nearest(pair, *kd_tree(pair), 1, 0, 0) in (0, 1)


def test_dither_passes_errors_on_sierra_2_4a():
    palette = np.array([[0, 0, 0], [255, 255, 255]], np.int64)
    # 100 goes to black and passes 2/4 of its error right: 100 + 50 = 150 goes to white.
    row = np.array([[[100, 100, 100, 255], [100, 100, 100, 255]]])
    assert dither(row, palette).tolist() == [[0, 1]]
    # 1/4 goes below and 1/4 below-left: 100 + 25 = 125 stays black, 110 + 25 goes white.
    square = np.array(
        [[[100] * 3 + [255], [120] * 3 + [255]], [[104] * 3 + [255], [104] * 3 + [255]]]
    )
    # 120 + 50 = 170 goes white (error -85); below it, 104 + 25 - 21 = 108 goes black and
    # 104 - 21 + 54 = 137 goes white.
    assert dither(square, palette).tolist() == [[0, 1], [0, 1]]
    # Colours on the palette pass nothing on; transparent pixels take the reserved entry.
    exact = np.array([[[0, 0, 0, 255], [255, 255, 255, 255], [9, 9, 9, 0]]])
    assert dither(exact, palette).tolist() == [[0, 1, 2]]


def test_the_nearest_colour_grid_agrees_with_a_full_search():
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (40, 3)).astype(np.int64)
    pixels = rng.integers(0, 256, (1, 3000, 3))
    rgba = np.concatenate([pixels, np.full((1, 3000, 1), 255)], axis=2)
    # With no error passed on (a palette colour's error is 0, so only the first pixel of each
    # run is exact), compare per pixel on a one-pixel-wide frame.
    got = np.array([dither(rgba[:, i : i + 1], palette)[0, 0] for i in range(0, 3000, 10)])
    d = ((pixels[0, ::10, None, :] - palette[None]) ** 2).sum(axis=2)
    best = d.min(axis=1)
    assert np.all(d[np.arange(len(got)), got] == best)


def test_a_frame_unchanged_after_posterising_is_a_one_pixel_image():
    rgb = gradient(20, 30, seed=1)
    first = rgba_words(np.dstack([rgb, np.full((20, 30), 255, np.uint8)]))
    second = first ^ np.uint32(0x010101)  # only the lowest bits differ
    histogram = FullHistogram()
    for frame in (first, second):
        histogram.add(frame)
    one = FfmpegProbe(*histogram.counts(), [(64, 60)])
    one.add(first)
    two = FfmpegProbe(*histogram.counts(), [(64, 60)])
    two.add(first)
    two.add(second)
    extra = two.total_bytes(64, 60) - one.total_bytes(64, 60)
    assert extra == FRAME_BYTES + stored_bytes(lzw_code_bits(np.array([64]), CODE_SIZE))


def test_a_made_gif_costs_what_the_encoder_writes(tmp_path):
    base = gradient(48, 64, seed=2)
    frames = [base, base.copy(), base.copy()]
    frames[1][30:40, 5:20] = 0
    frames[2][10:20, 10:30] = 255 - frames[2][10:20, 10:30]
    path = tmp_path / "made.gif"
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    counted = probe(path, [(256, 0), (16, 0), (64, 60)])
    for colors, lossy in counted.settings:
        real = ffmpeg_bytes(path, tmp_path / f"{colors}_{lossy}.gif", colors, lossy)
        assert abs(counted.total_bytes(colors, lossy) / real - 1) < 0.01, (colors, lossy)


def test_features_follow_the_ffmpeg_engine_on_real_gifs(tmp_path):
    """On real animated GIFs, the lossless estimate times 2**ffmpeg_colors_ratio_C_L is what
    the ffmpeg engine writes at ``colors=C, lossy=L``: median within 1 %, every one within 5 %
    (the emulation is exact on most: its palettes and pixels are ffmpeg's)."""
    gifs = [p for p in good_corpus_gifs() if 5 * 1024 < p.stat().st_size and frame_count(p) > 1]
    gifs = [p for p in gifs if decoded_pixels(p) < 2_000_000]  # a few seconds of ffmpeg each
    gifs = gifs[:: max(1, len(gifs) // 6)]
    assert len(gifs) >= 4
    errors: dict[tuple[int, int], list[float]] = {}
    for i, path in enumerate(gifs):
        values = corpus_features(path)
        lossless = estimate(path, levels=()).total_bytes()
        for colors, lossy in ((256, 0), (64, 60), (16, 0)):
            assert (colors, lossy) in FFMPEG_PROBES
            real = ffmpeg_bytes(path, tmp_path / f"{i}_{colors}_{lossy}.gif", colors, lossy)
            predicted = lossless * 2.0 ** values[f"ffmpeg_colors_ratio_{colors}_{lossy}"]
            errors.setdefault((colors, lossy), []).append(abs(predicted / real - 1))
    for key, errs in errors.items():
        assert np.median(errs) < 0.01, (key, errs)
        assert max(errs) < 0.05, (key, errs)


def test_a_budget_thins_long_gifs_and_keeps_the_estimate_close(tmp_path):
    rng = np.random.default_rng(8)
    base = gradient(40, 60, seed=4)
    frames = []
    for k in range(24):
        frame = base.copy()
        y = int(rng.integers(0, 30))
        frame[y : y + 10, :] = np.roll(frame[y : y + 10, :], k, axis=1)
        frames.append(frame)
    path = tmp_path / "long.gif"
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, loop=0)
    whole = probe(path, [(64, 0)])
    thinned = probe(path, [(64, 0)], budget=40 * 60 * 4)
    assert thinned._settings[(64, 0)].images < whole._settings[(64, 0)].images
    assert abs(thinned.total_bytes(64, 0) / whole.total_bytes(64, 0) - 1) < 0.15
    with pytest.raises(ValueError, match="budget"):
        FfmpegProbe(np.zeros(0, np.uint32), np.zeros(0, np.int64), [(64, 0)], budget=0)


def test_a_gif_with_transparency_takes_the_encoders_translucent_path(tmp_path):
    """Frames that show the transparent entry are written whole, cropped to their opaque
    pixels, without transdiff: every frame costs its full size, as the binary writes it."""
    base = gradient(40, 60, seed=3)
    frames = []
    for k in range(4):
        rgba = np.dstack([base, np.full((40, 60), 255, np.uint8)])
        rgba[:, : 8 + 4 * k, 3] = 0  # a transparent band that grows
        rgba[20:30, 30:50, :3] = 255 - rgba[20:30, 30:50, :3] if k % 2 else rgba[20:30, 30:50, :3]
        frames.append(Image.fromarray(rgba, "RGBA"))
    path = tmp_path / "clear.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, disposal=2)
    assert any(f.rgba[..., 3].min() == 0 for f in iter_frames(path))
    counted = probe(path, [(256, 0), (16, 0)])
    for colors, lossy in counted.settings:
        real = ffmpeg_bytes(path, tmp_path / f"{colors}_{lossy}.gif", colors, lossy)
        assert abs(counted.total_bytes(colors, lossy) / real - 1) < 0.01, (colors, lossy, real)


def totals(frames: list[np.ndarray], setting, budget=None) -> list[float]:
    """The probe's total after each of ``frames`` (colour words), fed without writing a GIF
    (Pillow merges repeated frames)."""
    histogram = FullHistogram()
    for frame in frames:
        histogram.add(frame)
    counted = FfmpegProbe(*histogram.counts(), [setting], budget=budget)
    out = []
    for frame in frames:
        counted.add(frame)
        out.append(counted.total_bytes(*setting))
    return out


@pytest.mark.parametrize("alpha", [255, 0])
def test_a_repeated_frame_costs_the_image_the_encoder_writes_for_it(alpha):
    # Opaque: a 1x1 transparent image. With a transparent band (the translucent path): the
    # whole output frame again, as the frame before it was written.
    rgba = np.dstack([gradient(20, 30, seed=5), np.full((20, 30), 255, np.uint8)])
    rgba[:, :6, 3] = alpha
    first = rgba_words(rgba)
    second = first.copy()
    second[5:15, 10:25] ^= np.uint32(0x808080)
    once, twice, thrice = totals([first, second, second], (64, 0))
    if alpha:
        assert thrice - twice == FRAME_BYTES + stored_bytes(
            lzw_code_bits(np.array([64]), CODE_SIZE)
        )
    else:
        assert thrice - twice == twice - once  # the same image as the second frame's


def test_repeated_frames_take_no_place_in_the_budgets_stride():
    # A terminal recording's rhythm: every changed frame is shown twice. A stride of 2 over all
    # frames would count only the changes or only the repeats (bubbletea's pager was 20 % high).
    base = gradient(40, 60, seed=6)
    frames = [rgba_words(np.dstack([base, np.full((40, 60), 255, np.uint8)]))]
    for k in range(1, 25):
        frame = frames[-1].copy()
        frame[(k % 4) * 10 : (k % 4) * 10 + 10, :] = np.roll(frame[:10, :], k, axis=1)
        frames += [frame, frame.copy()]
    whole = totals(frames, (64, 0))[-1]
    thinned = totals(frames, (64, 0), budget=40 * 60 * 4)[-1]
    assert abs(thinned / whole - 1) < 0.1, (thinned, whole)
