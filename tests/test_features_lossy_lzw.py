"""The lossy probes behind ``lzw_lossy_ratio_<L>``: gifsicle's ``--lossy`` LZW counted, checked
against what gifsicle itself writes, on made images and on real GIFs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import good_corpus_gifs
from PIL import Image

from giflab.features.lossy_lzw import lossy_code_bits
from giflab.features.lzw import DeltaLzwEstimate, kept_metadata, lzw_code_bits, min_code_size
from giflab.features.sampling import LOSSY_PROBE_LEVELS, LOSSY_PROBE_PIXELS, rgba_words
from giflab.frames import frame_count, iter_frames


def gifsicle_bytes(path: Path, lossy: int) -> int:
    gifsicle = shutil.which("gifsicle")
    if gifsicle is None:
        pytest.skip("gifsicle not installed")
    argv = [gifsicle, "-O3", "--no-warnings", f"--lossy={lossy}", str(path)]
    return len(subprocess.run(argv, check=True, capture_output=True).stdout)


def gradient(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth RGB gradient with a little noise: what lossy LZW merges best."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 200 / w + 20, y * 180 / h + 40, (x + y) * 100 / (w + h) + 60], axis=-1)
    rgb += np.random.default_rng(seed).normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def estimate(path: Path, levels=(20, 60, 120), budget: int | None = None) -> DeltaLzwEstimate:
    counted = DeltaLzwEstimate(levels, lossy_budget=budget)
    for frame in iter_frames(path):
        counted.add(rgba_words(frame.rgba))
    return counted


def test_far_apart_colours_code_as_lossless_lzw():
    """When no two colours are within the loss budget, no match can stretch: the count is
    plain LZW's, to the bit (the table never fills here)."""
    rng = np.random.default_rng(1)
    symbols = rng.integers(0, 8, 3000)
    palette = np.array([[i * 36, 255 - i * 36, (i * 90) % 256] for i in range(8)])
    assert lossy_code_bits(symbols, palette, 3, lossy=20) == lzw_code_bits(symbols, 3)


def test_more_loss_merges_more_of_a_gradient():
    """From lossy 60 up, each level codes a noisy gradient in fewer bits, down to under half of
    plain LZW. Lossy 20 can cost *more* than lossless, as in gifsicle itself (12,024 bytes
    lossless, 15,729 at lossy 20 for this image): lossy mode times its table clears from a
    running match-length average that it updates twice per code, so the table is cleared later
    than the lossless encoder would."""
    image = Image.fromarray(gradient(120, 160, seed=2)).quantize(256, dither=Image.Dither.NONE)
    symbols = np.asarray(image).ravel()
    palette = np.asarray(image.getpalette()[: 3 * 256]).reshape(-1, 3)
    size = min_code_size(int(symbols.max()))
    lossless = lzw_code_bits(symbols.astype(np.uint8), size)
    counts = [lossy_code_bits(symbols, palette, size, level) for level in (20, 60, 120, 200)]
    assert counts[0] > lossless
    assert counts[1:] == sorted(counts[1:], reverse=True)
    assert counts[-1] < 0.5 * lossless


def test_a_transparent_pixel_only_matches_a_transparent_one():
    """Index 0 is transparent and its colour equals index 1's: a lossy match may not swap
    them, so a stream alternating the two codes as plain LZW does."""
    symbols = np.tile([0, 1, 1, 0, 1, 0, 0, 1], 200)
    palette = np.array([[10, 10, 10], [10, 10, 10], [200, 0, 0], [0, 200, 0]])
    lossless = lzw_code_bits(symbols.astype(np.uint8), 2)
    assert lossy_code_bits(symbols, palette, 2, lossy=200, transparent=0) == lossless
    assert lossy_code_bits(symbols, palette, 2, lossy=200) < lossless  # no transparency: merged


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="lossy must be >= 1"):
        lossy_code_bits(np.zeros(4, np.int64), np.zeros((4, 3)), 2, lossy=0)
    with pytest.raises(ValueError, match="2..8"):
        lossy_code_bits(np.zeros(4, np.int64), np.zeros((4, 3)), 9, lossy=20)
    with pytest.raises(ValueError, match="past the palette"):
        lossy_code_bits(np.full(4, 5), np.zeros((4, 3)), 3, lossy=20)


@pytest.mark.parametrize("colors", [16, 256])
def test_one_image_lands_on_gifsicle_bytes(tmp_path, colors):
    """A single gradient image re-encoded by ``gifsicle -O3 --lossy=L``: the whole-file
    estimate (lossless estimate x lossy ratio) within 1.5 % at every probed level."""
    image = Image.fromarray(gradient(150, 200, seed=colors)).quantize(
        colors, dither=Image.Dither.NONE
    )
    path = tmp_path / "one.gif"
    image.save(path, optimize=False, interlace=False)
    counted = estimate(path)
    ratios = counted.lossy_ratios()
    for level in (20, 60, 120):
        predicted = counted.total_bytes() * ratios[level]
        assert predicted == pytest.approx(gifsicle_bytes(path, level), rel=0.015), level


def test_a_pixel_budget_thins_the_probed_images_and_keeps_the_ratio(tmp_path):
    """An animation whose frames all look alike (each quantised on its own, so each is stored
    whole): with a budget of one frame's pixels the stride doubles after every probed frame,
    the probe takes images 0, 2, 4 and 8 of 9, and still gives about the ratio of all of them."""
    base = gradient(90, 120, seed=5)
    frames = []
    for i in range(9):
        frame = base.copy()
        frame[:, 10 * i : 10 * i + 12] = gradient(90, 12, seed=10 + i)
        frames.append(Image.fromarray(frame).quantize(128, dither=Image.Dither.NONE))
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], optimize=False)
    every = estimate(path)
    thinned = estimate(path, budget=90 * 120)
    assert every._budget.spent == 9 * 90 * 120
    assert thinned._budget.spent == 4 * 90 * 120
    for level in (20, 60, 120):
        assert thinned.lossy_ratios()[level] == pytest.approx(every.lossy_ratios()[level], rel=0.05)
    assert estimate(path, levels=()).lossy_ratios() == {}


def test_features_follow_gifsicle_lossy_drop_on_real_gifs():
    """On real animated GIFs, 2**lzw_lossy_ratio_L is gifsicle's own size drop from lossy 0 to
    L (``-O3``): median within 2 %, four in five within 5 %, at every probed level."""
    gifs = [p for p in good_corpus_gifs() if p.stat().st_size > 5 * 1024 and frame_count(p) > 1]
    gifs = gifs[:: max(1, len(gifs) // 12)]
    assert len(gifs) >= 4
    errors = {level: [] for level in LOSSY_PROBE_LEVELS}
    for path in gifs:  # the probes behind the features (test_features_lzw.py ties them)
        counted = DeltaLzwEstimate(
            LOSSY_PROBE_LEVELS, LOSSY_PROBE_PIXELS, kept_metadata(path.read_bytes())
        )
        for frame in iter_frames(path):
            counted.add(rgba_words(frame.rgba))
        ratios = counted.lossy_ratios()
        lossless = gifsicle_bytes(path, 0)
        for level in LOSSY_PROBE_LEVELS:
            drop = gifsicle_bytes(path, level) / lossless
            errors[level].append(abs(np.log2(ratios[level]) - np.log2(drop)))
    for level, errs in errors.items():
        assert np.median(errs) < np.log2(1.02), (level, errs)
        assert np.mean(np.array(errs) < np.log2(1.05)) >= 0.8, (level, errs)
