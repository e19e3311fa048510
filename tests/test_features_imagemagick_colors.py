"""ImageMagick's -colors emulated: its octree's depth, classification and reduction, its cached
serpentine Floyd–Steinberg, -layers Optimize's remap and the colour budget (the estimate against
the real binary's renders is in tests/test_features_fuzz_probe.py)."""

from __future__ import annotations

import numpy as np
import pytest

from giflab.features.fuzz_probe import FuzzProbe
from giflab.features.imagemagick_colors import (
    dither,
    octree_palette,
    quantized_indices,
    remap,
    tree_depth,
)
from giflab.features.sampling import rgba_words
from giflab.frames import iter_frames
from tests.conftest import corpus_gif, rgba


def distinct(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    colours, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
    return colours.astype(np.uint8), counts


@pytest.mark.parametrize(
    ("colors", "gray", "depth"),
    [
        (256, False, 5),
        (128, False, 4),
        (64, False, 4),
        (32, False, 3),
        (16, False, 3),
        (2, False, 2),
    ],
)
def test_tree_depth_is_log4_plus_two_less_one_for_dithering(colors, gray, depth):
    assert tree_depth(colors, gray) == depth
    assert tree_depth(colors, gray=True) == 8  # a grey image is classified to full depth


def test_a_frame_of_at_most_c_colours_keeps_them_exactly():
    rng = np.random.default_rng(0)
    colours, counts = distinct(rng.choice(np.arange(0, 256, 7, dtype=np.uint8), size=(20, 30, 3)))
    colours, counts = colours[:40], counts[:40]
    palette = octree_palette(colours, counts, 64, gray=False)
    assert np.array_equal(palette, colours.astype(float))
    # The transparent colour takes a slot: 40 colours fit 41, not 40.
    assert len(octree_palette(colours, counts, 41, False, transparent=True)) == 40
    assert len(octree_palette(colours, counts, 40, False, transparent=True)) < 40


def test_more_colours_than_c_merge_into_cube_means():
    # Two tight clusters of 100 colours each, far apart: 16 colours keep one mean per cluster
    # cube, never a colour between them.
    rng = np.random.default_rng(1)
    a = np.clip(rng.normal(40, 2, size=(100, 3)), 0, 255).astype(np.uint8)
    b = np.clip(rng.normal(200, 2, size=(100, 3)), 0, 255).astype(np.uint8)
    colours, counts = distinct(np.concatenate([a, b]))
    palette = octree_palette(colours, counts, 16, gray=False)
    assert 2 <= len(palette) <= 16
    assert ((palette < 80) | (palette > 160)).all()
    # Each cluster's pixels average to a mean inside it.
    assert np.abs(palette[palette[:, 0] < 128].mean(axis=0) - a.mean(axis=0)).max() < 8


def test_a_grey_image_is_reduced_at_full_depth():
    levels = np.arange(0, 256, 1, dtype=np.uint8)
    colours = np.stack([levels] * 3, axis=1)
    counts = np.ones(256)
    palette = octree_palette(colours, counts, 64, gray=True)
    assert len(palette) <= 64
    assert np.allclose(palette[:, 0], palette[:, 1]) and np.allclose(palette[:, 1], palette[:, 2])
    # At full depth the reduction keeps far more than the 16 grey cubes of depth 4.
    assert len(palette) > 16


def test_dither_maps_exact_colours_to_themselves_and_diffuses_the_rest():
    palette = np.array([[0.0, 0, 0], [128, 128, 128], [255, 255, 255]])
    exact = np.array([[[0, 0, 0], [128, 128, 128], [255, 255, 255]]], np.uint8)
    assert dither(exact, np.ones((1, 3), bool), palette).tolist() == [[0, 1, 2]]
    # A flat grey between two palette colours alternates so its mean is kept.
    flat = np.full((16, 16, 3), 192, np.uint8)
    out = dither(flat, np.ones((16, 16), bool), palette)
    assert set(np.unique(out)) == {1, 2}
    assert palette[out][..., 0].mean() == pytest.approx(192, abs=3)
    # Transparent pixels get -1 and neither take nor pass on error.
    mask = np.ones((16, 16), bool)
    mask[:, 8] = False
    masked = dither(flat, mask, palette)
    assert (masked[:, 8] == -1).all() and (masked[mask] >= 0).all()


def test_dither_caches_by_six_bits_so_close_colours_share_a_palette_entry():
    # 252 and 254 fall in the same 6-bit cell: the first pixel's nearest colour (252) decides
    # for the second too, and its error then spills on.
    palette = np.array([[252.0, 252, 252], [254, 254, 254]])
    rgb = np.array([[[252] * 3, [254] * 3]], np.uint8)
    assert dither(rgb, np.ones((1, 2), bool), palette).tolist() == [[0, 0]]


def test_quantized_indices_put_transparency_last():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:, 2:] = 200
    image = rgba(rgb)
    drawn = np.ones((4, 4), bool)
    drawn[0, 0] = False
    indices, size, extra = quantized_indices(image, drawn, 16)
    assert size == 3 and indices[0, 0] == 2 and extra == 30  # grey, so the gamma extension
    assert set(np.unique(indices[drawn])) == {0, 1}


def test_an_image_within_its_colormap_is_not_quantised():
    # After the remap every image carries the shared colormap: -colors C with C at least its
    # size only drops unused entries (no dithering, no gamma extension); below it, it quantises.
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0] = [[10, 20, 30], [11, 20, 30], [200, 0, 0]]
    image = rgba(rgb)
    indices, size, extra = quantized_indices(image, None, 256, colormap=200)
    assert size == 4 and extra == 0
    assert len(np.unique(indices)) == 4  # 11,20,30 kept apart from 10,20,30
    _, _, extra = quantized_indices(image, None, 64, colormap=200)
    assert extra == 0  # quantised, but not grey


def test_remap_keeps_few_colours_and_reduces_many_to_256():
    rng = np.random.default_rng(2)
    few = rgba(rng.choice(np.arange(0, 256, 64, dtype=np.uint8), size=(8, 8, 3)))
    (same,), colormap = remap([(few, None)])
    assert np.array_equal(same, few) and colormap == len(np.unique(few.reshape(-1, 4), axis=0))
    many = rgba(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    (reduced,), colormap = remap([(many, None)])
    assert len(np.unique(reduced[..., :3].reshape(-1, 3), axis=0)) <= colormap <= 256


def test_the_probe_reports_every_colour_count_at_every_level():
    rng = np.random.default_rng(3)
    frames = [rgba(rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)) for _ in range(3)]
    probe = FuzzProbe((0, 120), colors=(256, 16))
    for frame in frames:
        probe.add(frame, rgba_words(frame))
    ratios = probe.color_ratios(1.0)
    assert list(ratios) == [(256, 0), (256, 120), (16, 0), (16, 120)]
    assert ratios[(16, 0)] < ratios[(256, 0)]  # 16 colours code in 4-bit codes
    assert FuzzProbe((0,), colors=(16,)).color_ratios(1.0) == {(16, 0): 1.0}  # no frame yet


def test_the_colours_budget_counts_fewer_images_and_keeps_the_ratio():
    path = corpus_gif("lottie-android__After_Effects_Samples__Test___Gif__Test_ShapeTypes.gif")
    frames = [f.rgba for f in iter_frames(path)]

    def ratios(budget):
        probe = FuzzProbe((0, 120), colors=(256, 16), colors_budget=budget)
        for frame in frames:
            probe.add(frame, rgba_words(frame))
        return probe.color_ratios(1.0), len(probe._levels[0].images)

    whole, kept = ratios(None)
    budgeted, fewer = ratios(5_000)
    assert fewer < kept / 2  # the budget did stride
    for key, value in whole.items():
        assert budgeted[key] == pytest.approx(value, rel=0.1)
