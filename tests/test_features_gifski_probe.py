"""The gifski probes: gifski 1.7.1's --quality knobs by hand, its trim, libimagequant's
palettes, and the estimate against the real binary's renders."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from giflab.engines import SourceGif, Variant
from giflab.engines.gifski import gifski_quality
from giflab.features.gifski_denoise import LOOKAHEAD, denoise, motion_threshold
from giflab.features.gifski_probe import (
    GIFSKI_HEADER_BYTES,
    GifskiProbe,
    color_quality,
    dithering_level,
    gifsicle_loss,
    quantize,
)
from giflab.features.lzw import DeltaLzwEstimate
from giflab.features.sampling import GIFSKI_PROBE_LEVELS, rgba_words
from giflab.frames import iter_frames
from giflab.gif_blocks import has_loop, walk
from tests.conftest import corpus_gif, installed_engine, rgba


def probe_bytes(frames: list[np.ndarray], levels=GIFSKI_PROBE_LEVELS, budget=None) -> dict:
    """{level: estimated bytes of gifski's file} (the ratio over a lossless estimate of 1)."""
    probe = GifskiProbe(levels, budget)
    for frame in frames:
        probe.add(frame, rgba_words(frame))
    return probe.ratios(1.0)


@pytest.mark.parametrize(
    ("lossy", "quality", "threshold", "loss", "dither", "target"),
    [
        (0, 100, 25, 0, 1.0, 100),
        (20, 85, 169, 5, 0.7, 100),
        (60, 55, 784, 34, 0.2, 73),
        (120, 10, 2500, 115, 0.2, 13),
    ],
)
def test_the_knobs_of_each_probed_level(lossy, quality, threshold, loss, dither, target):
    assert gifski_quality(lossy) == quality
    assert motion_threshold(quality) == threshold
    assert gifsicle_loss(quality) == loss
    assert dithering_level(quality) == pytest.approx(dither)
    assert color_quality(quality, first_frame=False) == target
    assert color_quality(quality, first_frame=True) == 100


def denoised(frames: list[np.ndarray], quality: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """gifski's denoiser over ``frames`` (each (H, W, 4)): [(colours, importance)] per frame,
    fed and flushed as the probe does (the cohort parity read before the count moves)."""
    h, w = frames[0].shape[:2]
    ring = np.zeros((LOOKAHEAD, h, w, 4), np.uint8)
    held, out = np.zeros((h, w, 4), np.uint8), np.zeros((h, w, 4), np.uint8)
    stay, stayed, importance = (np.zeros((h, w), np.uint8) for _ in range(3))
    rows, busy = np.ones(h, bool), np.ones(h, bool)
    threshold, result = motion_threshold(quality), []
    for fed in range(len(frames) + LOOKAHEAD - 1):
        ring[fed % LOOKAHEAD] = frames[fed] if fed < len(frames) else 0
        count = fed + 1
        odd = (count if fed < len(frames) else fed) % 2 == 1
        if count >= LOOKAHEAD:
            oldest = count - LOOKAHEAD
            denoise(ring, oldest % LOOKAHEAD, held, stay, stayed, threshold, odd, rows, out,
                     importance, busy)  # fmt: skip
            result.append((out.copy(), importance.copy()))
    return result


def test_a_change_just_past_the_threshold_lands_a_frame_late_for_one_colour_cohort():
    """gifski doubles the threshold on alternate frames for one of two colour cohorts
    (``(r/2 > g) != (b > 127)``): a change between T and 2T is drawn at once for one pixel
    and a frame later for the other. 12 grey levels: 6 * 144 = 864 >= 400 = T at Q 70."""
    base = np.array([[(100, 100, 100), (100, 100, 200)]], np.uint8)  # cohorts: no, yes
    moved = (base + np.array([12, 12, 0], np.uint8)).astype(np.uint8)
    frames = [rgba(base)] * 6 + [rgba(moved)] * 8  # the change out of the look-ahead's reach
    out = denoised(frames, quality=70)
    drawn = [(frame[0, :, :3] == moved[0]).all(axis=1) for frame, _ in out]
    assert not drawn[5].any()
    assert drawn[6].sum() == 1 and drawn[7].all()  # one pixel now, the other a frame later
    late = int(np.flatnonzero(~drawn[6])[0])
    assert (out[6][1] > 0).sum() == 1 and out[7][1][0, late] > 1  # the late one's change
    assert out[7][1][0, 1 - late] == 1  # the early one's second chance (T 400)


def test_a_change_that_holds_is_drawn_as_the_median_of_its_stay():
    """A pixel that changes and stays within the threshold for the next frames is drawn once,
    as the median of those frames (gifski's five-frame look-ahead), and not redrawn while
    it holds."""
    steps = [(200, 0, 0), (60, 60, 60), (60, 60, 64), (60, 60, 64), (60, 60, 64)]
    frames = [rgba(np.array([[c]], np.uint8)) for c in steps]
    out = denoised(frames, quality=100)  # T 25: the blue move stays under it (16)
    assert tuple(out[1][0][0, 0, :3]) == (60, 60, 64)  # per channel median of frames 1-4
    assert all(tuple(out[k][0][0, 0, :3]) == (60, 60, 64) for k in (2, 3, 4))
    assert out[1][1][0, 0] > 1  # the change
    assert [out[k][1][0, 0] for k in (2, 3, 4)] == [1, 1, 1]  # its stay's second chances


def test_quantize_keeps_a_few_colours_exactly_and_adds_the_transparent_one():
    rng = np.random.default_rng(1)
    colours = np.array([(250, 10, 10), (10, 200, 30), (0, 0, 255), (240, 240, 240)], np.uint8)
    picked = colours[rng.integers(0, 4, (24, 32))]
    image = rgba(picked)
    image[:4, :4, 3] = 0
    indices, palette = quantize(image, 100, first_frame=False, transparency=True)
    assert indices.shape == (24, 32) and palette.shape[1] == 4
    clear = np.flatnonzero(palette[:, 3] == 0)
    assert len(clear) == 1 and (indices[:4, :4] == clear[0]).all()
    opaque = palette[indices][4:, :, :3]
    np.testing.assert_array_equal(opaque, picked[4:])  # no colour invented, none moved


def test_a_transparent_surround_does_not_thin_a_later_frames_palette():
    """libimagequant 4.0 (gifski's) weighs a pixel by its importance, transparent ones too,
    and drops them as the fixed transparent colour; the C release weighs every transparent
    pixel 2000 in the error budget, so a small change inside a cleared crop lost colours."""
    rng = np.random.default_rng(7)
    patch = rgba(rng.integers(0, 256, (6, 8, 3)).astype(np.uint8))
    crop = np.zeros((40, 400, 4), np.uint8)
    crop[17:23, 100:108] = patch
    weights = np.zeros(crop.shape[:2], np.uint8)
    weights[17:23, 100:108] = rng.integers(20, 256, (6, 8))
    for quality in (85, 55):
        alone = quantize(patch, quality, False, True, importance=weights[17:23, 100:108])[1]
        inside = quantize(crop, quality, False, True, importance=weights)[1]
        assert len(inside) == len(alone) > 0.5 * 48, quality


def test_a_crop_whose_important_pixels_all_turned_transparent_gets_the_fixed_colour_alone():
    """libimagequant 4.0 drops those pixels as the fixed colour and counts nothing else, so
    the crop's other colours are not in the palette."""
    rng = np.random.default_rng(7)
    crop = np.zeros((40, 400, 4), np.uint8)
    crop[17:23, 100:108] = rgba(rng.integers(0, 256, (6, 8, 3)).astype(np.uint8))
    weights = np.zeros(crop.shape[:2], np.uint8)
    weights[:5, :50] = 30
    indices, palette = quantize(crop, 70, False, True, importance=weights, screen=0 * crop)
    assert palette.tolist() == [[0, 0, 0, 0]] and not indices.any()


def test_noise_under_the_motion_threshold_is_not_drawn():
    rng = np.random.default_rng(0)
    base = rng.integers(8, 248, (30, 40, 3)).astype(np.int16)
    frames = [rgba(base.astype(np.uint8))]
    for _ in range(6):  # every channel moves by 1 at most: 2 + 3 + 1 = 6, 24 from a median
        noise = rng.integers(-1, 2, base.shape)
        frames.append(rgba((base + noise).astype(np.uint8)))
    still = probe_bytes(frames[:1], levels=(0,))[0]
    # one image: the first frame as the median of its stay; the others, the last one too, hold
    # nothing new (gifski 1.7.1 on these frames: one image of 2,343 bytes, 2,347 for the still)
    assert abs(probe_bytes(frames, levels=(0,))[0] - still) < 0.01 * still
    moved = [frames[0], rgba(np.clip(base + 9, 0, 255).astype(np.uint8))]  # 6 * 81 > 25
    assert probe_bytes(moved, levels=(0,))[0] > 1.5 * still


def test_lossy_levels_shrink_a_noisy_animation_and_every_ratio_has_a_header():
    rng = np.random.default_rng(2)
    grad = np.linspace(0, 255, 64, dtype=np.float64)
    frames = []
    for k in range(4):
        rgb = np.stack(np.broadcast_arrays(grad[None, :], grad[:, None], 128 + 0 * grad[None]), -1)
        rgb = rgb + rng.normal(0, 12, rgb.shape) + 20 * k
        frames.append(rgba(np.clip(rgb, 0, 255).astype(np.uint8)))
    sizes = probe_bytes(frames)
    # Lossy 20 dithers less (0.7) and loses little (5): about the lossless size on pure noise.
    assert sizes[20] == pytest.approx(sizes[0], rel=0.05)
    assert sizes[0] > sizes[60] > sizes[120] > GIFSKI_HEADER_BYTES
    assert GifskiProbe((0, 20)).ratios(500.0) == {0: 1.0, 20: 1.0}  # before any frame
    one = GifskiProbe((0,))
    one.add(frames[0], rgba_words(frames[0]))
    assert one.ratios(0.0) == {0: 1.0}  # no lossless estimate: nothing to compare with


def test_the_budget_counts_fewer_frames_and_keeps_the_ratio():
    path = corpus_gif(
        "AnimeGifs__public__private__files__171523__683d9284a7edbc6e4175d654ccee60ca.gif"
    )
    frames = [f.rgba for f in iter_frames(path)]
    whole = probe_bytes(frames, levels=(0, 60))
    budgeted = probe_bytes(frames, levels=(0, 60), budget=20_000)
    assert budgeted != whole  # the budget did stride
    for level in (0, 60):
        assert budgeted[level] == pytest.approx(whole[level], rel=0.15)


@pytest.fixture(scope="module")
def gifski():
    return installed_engine("gifski")


@pytest.mark.parametrize(
    "name",
    [
        "AnimeGifs__public__private__files__171523__683d9284a7edbc6e4175d654ccee60ca.gif",
        "AnimeGifs__public__uploads__gif__new_gif_81.gif",
        "AnimeGifs__public__uploads__gif__image__5__1_1NffFfi7QOPd1Rdo8uJG-Q.gif",
    ],
)
def test_estimates_follow_the_binary_renders(name, gifski, tmp_path: Path):
    # Real footage where gifski's render at lossy 120 is 13-36 % of its lossless one.
    path = corpus_gif(name)
    src = SourceGif(path, tmp_path)
    lossless = DeltaLzwEstimate()
    frames = []
    for frame in iter_frames(path):
        lossless.add(rgba_words(frame.rgba))
        frames.append(frame.rgba)
    probe = GifskiProbe(GIFSKI_PROBE_LEVELS)
    for frame in frames:
        probe.add(frame, rgba_words(frame))
    ratios = probe.ratios(lossless.total_bytes())
    sizes, errors = {}, {}
    for level in GIFSKI_PROBE_LEVELS:
        out = gifski.render(src, Variant(level, 256, 1.0), tmp_path / f"l{level}.gif", 120)
        sizes[level] = out.output.stat().st_size
        errors[level] = math.log(ratios[level] * lossless.total_bytes() / sizes[level])
    # within 6 % at most levels, 15 % at every one (image__5 at lossy 80: 13 % under)
    assert np.median(np.abs(list(errors.values()))) < 0.06, errors
    assert max(np.abs(list(errors.values()))) < 0.14, errors
    assert sizes[120] < 0.4 * sizes[0]  # the levels really differ on these


def small_gif(path: Path, case: str) -> Path:
    from PIL import Image

    rng = np.random.default_rng(5)
    colours = 2 if case == "two_colours" else 5
    levels = rng.integers(0, colours, (7, 10)) * 50
    first = Image.fromarray(np.stack([levels, 255 - levels, levels // 2], -1).astype(np.uint8))
    if case.startswith("two_frames"):
        second = first.copy()
        second.paste((10, 200, 30), (2, 2, 6, 5))
        loop = {"loop": 0} if case == "two_frames_looping" else {}
        first.save(path, save_all=True, append_images=[second], duration=100, **loop)
    else:
        first.save(path)
    return path


def small_gif_bytes(path: Path, gifski, tmp_path: Path) -> tuple[float, int]:
    """(the probe's bytes at lossy 0, the engine's) for ``path``."""
    probe = GifskiProbe((0,), loops=has_loop(path.read_bytes()))
    for frame in iter_frames(path):
        probe.add(frame.rgba, rgba_words(frame.rgba))
    out = gifski.render(SourceGif(path, tmp_path), Variant(0, 256, 1.0), tmp_path / "o.gif", 60)
    return probe.ratios(1.0)[0], out.output.stat().st_size


@pytest.mark.parametrize("case", ["still", "two_colours"])
def test_small_gifs_are_counted_to_the_byte(case, gifski, tmp_path: Path):
    """On a small GIF the bytes besides the pixels decide the size: gifski's 2-entry global
    table and local tables of the next power of two entries (2 at the least)."""
    estimate, written = small_gif_bytes(small_gif(tmp_path / f"{case}.gif", case), gifski, tmp_path)
    assert estimate == written


def test_the_loop_extension_follows_the_source(gifski, tmp_path: Path):
    """The engine passes the source's loop count as --repeat: a source without one gets no
    NETSCAPE extension, in the engine's file and in the estimate. (A later frame's palette is
    not exact yet: gifski quantises the whole frame before it clears the unchanged pixels, so
    its table holds colours the probe's crop does not.)"""
    once = small_gif_bytes(small_gif(tmp_path / "once.gif", "two_frames"), gifski, tmp_path)
    looping = small_gif_bytes(small_gif(tmp_path / "l.gif", "two_frames_looping"), gifski, tmp_path)
    assert looping[0] - once[0] == looping[1] - once[1] == 19


def test_a_repeated_frame_makes_no_image(gifski, tmp_path: Path):
    """gifski 1.7.1 makes one image of two identical frames (the engine passes a lone kept
    frame twice): a last frame with nothing new is not stored, at any level."""
    from PIL import Image

    path = small_gif(tmp_path / "still.gif", "still")
    frames = [frame.rgba for frame in iter_frames(path)]
    assert probe_bytes(frames * 3) == probe_bytes(frames)
    out = gifski.render(SourceGif(path, tmp_path), Variant(60, 256, 1.0), tmp_path / "o.gif", 60)
    with Image.open(out.output) as written:
        assert written.n_frames == 1


def text_block_gif(path: Path) -> Path:
    """A terminal-like recording, each frame shown twice: a block of anti-aliased text (many
    shades) appears, then a small change further down, then another."""
    from PIL import Image

    rng = np.random.default_rng(1)
    base, ink = np.array([20, 24, 30.0]), np.array([230, 220, 120.0])
    blank = np.zeros((120, 160, 3), np.uint8) + base.astype(np.uint8)
    text = blank.copy()
    text[10:50, 10:150] = base + (ink - base) * (rng.random((40, 140)) ** 3)[..., None]
    second = text.copy()
    second[100:108, 10:40] = (200, 60, 60)
    third = second.copy()
    third[112:118, 100:130] = (60, 200, 90)
    frames = [Image.fromarray(f) for f in (blank, text, text, second, second, *[third] * 5)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


@pytest.mark.parametrize("lossy", [20, 40])
def test_a_later_change_redraws_the_stay_of_the_one_before(lossy, gifski, tmp_path: Path):
    """Where the threshold is low, a stay's pixels keep a second chance for two frames: when
    something new is drawn on the second, gifski redraws those the new palette matches better,
    so its image spans the text block as well as the change (the probe's crop of the changed
    rows alone was 24-36 % under the engine here)."""
    path = text_block_gif(tmp_path / "text.gif")
    estimate = probe_bytes([frame.rgba for frame in iter_frames(path)], levels=(lossy,))
    out = gifski.render(SourceGif(path, tmp_path), Variant(lossy, 256, 1.0), tmp_path / "o.gif", 60)
    data = out.output.read_bytes()
    boxes = [block.box for block in walk(data) if block.is_image]
    assert boxes[2][1] <= 10 and boxes[2][1] + boxes[2][3] >= 108  # the text block and the change
    assert abs(math.log(estimate[lossy] / len(data))) < 0.1
