"""compare_gifs end to end: identical copies, degradations, time alignment, transparency."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from giflab.frames import flatten, iter_frames
from giflab.metrics import METRIC_NAMES, PSNR_CAP_DB, compare_gifs, describe_render
from giflab.metrics.align import aligned_pairs, sample_indices
from tests.conftest import good_corpus_gifs


def _small_corpus(limit: int = 4) -> list[Path]:
    """Deterministic real GIFs cheap enough to re-encode in a test (>= 32 px, few pixels)."""
    picked = []
    for p in good_corpus_gifs():
        with Image.open(p) as im:
            w, h = im.size
            n = getattr(im, "n_frames", 1)
        if min(w, h) >= 32 and n >= 3 and w * h * n <= 3_000_000:
            picked.append(p)
    return picked[:: max(1, len(picked) // limit)][:limit]


SMALL = _small_corpus()


def _frames(n: int, size: tuple[int, int] = (64, 48), transparent: bool = False) -> list:
    """``n`` distinct RGBA frames: a square moving over stripes (or over transparency)."""
    w, h = size
    out = []
    for i in range(n):
        a = np.zeros((h, w, 4), dtype=np.uint8)
        if not transparent:
            a[..., 0] = (np.arange(w) * 4 % 256)[None, :]
            a[..., 2] = 90
            a[..., 3] = 255
        x = 4 + 7 * i
        a[10:30, x : x + 14] = (250, 200, 20, 255)
        out.append(Image.fromarray(a, "RGBA"))
    return out


def _save(frames: list, path: Path, durations: list[int] | int) -> Path:
    # disposal 2 so transparent areas are cleared between frames, as browsers render them.
    frames[0].save(
        path, save_all=True, append_images=frames[1:], duration=durations, loop=0, disposal=2
    )
    return path


def _quantised_render(src: Path, dst: Path, colors: int) -> Path:
    """A Pillow re-encode of every frame of ``src`` at ``colors`` colours, same delays."""
    frames, delays = [], []
    for f in iter_frames(src):
        frames.append(Image.fromarray(flatten(f.rgba)).quantize(colors, dither=Image.Dither.NONE))
        delays.append(max(20, f.delay_ms))
    return _save([fr.convert("RGB") for fr in frames], dst, delays)


def _assert_finite(m: dict) -> None:
    assert tuple(m) == METRIC_NAMES
    for k, v in m.items():
        assert isinstance(v, (int, float)) and math.isfinite(v), (k, v)


@pytest.mark.parametrize("src", good_corpus_gifs(), ids=lambda p: p.name[:60])
def test_identical_copy_is_perfect(src: Path, tmp_path: Path):
    copy = shutil.copy(src, tmp_path / "copy.gif")
    m = compare_gifs(src, copy, max_frames=3)
    _assert_finite(m)
    assert m["ssim_mean"] == pytest.approx(1.0, abs=1e-6)
    assert m["ssim_min"] == pytest.approx(1.0, abs=1e-6)
    assert m["ms_ssim"] == pytest.approx(1.0, abs=1e-6)
    assert m["psnr"] == PSNR_CAP_DB and m["mse"] == 0.0
    assert m["ssimulacra2"] == pytest.approx(100.0, abs=1e-6)
    # Float32 SIMD paths depend on memory alignment, so "0" is 0 up to rounding.
    assert m["gmsd"] == pytest.approx(0.0, abs=1e-6)
    assert m["color_hist_distance"] == 0.0 and m["edge_similarity"] == 1.0
    assert m["temporal_error"] == pytest.approx(0.0, abs=1e-6)
    assert m["transparency_error"] == 0.0


@pytest.mark.parametrize("src", SMALL, ids=lambda p: p.name[:60])
def test_heavier_quantisation_scores_worse(src: Path, tmp_path: Path):
    light = compare_gifs(src, _quantised_render(src, tmp_path / "c64.gif", 64), max_frames=6)
    heavy = compare_gifs(src, _quantised_render(src, tmp_path / "c4.gif", 4), max_frames=6)
    _assert_finite(light)
    _assert_finite(heavy)
    assert heavy["ssim_mean"] < light["ssim_mean"] <= 1.0
    assert heavy["psnr"] < light["psnr"] <= PSNR_CAP_DB  # a logo may have <= 64 colours
    assert heavy["ssimulacra2"] < light["ssimulacra2"]
    assert heavy["color_hist_distance"] > light["color_hist_distance"]


def test_a_different_gif_scores_lower(tmp_path: Path):
    a, b = SMALL[0], SMALL[1]
    other = tmp_path / "other.gif"
    # The other GIF on the first one's canvas size, so only content differs.
    with Image.open(a) as im:
        size = im.size
    frames = [Image.fromarray(flatten(f.rgba)).resize(size) for f in iter_frames(b)]
    _save(frames, other, 100)
    m = compare_gifs(a, other, max_frames=4)
    _assert_finite(m)
    assert m["ssim_mean"] < 0.9
    assert m["ssimulacra2"] < 60
    assert m["psnr"] < 30


def test_dropped_frames_align_by_time(tmp_path: Path):
    frames = _frames(6)
    src = _save(frames, tmp_path / "src.gif", 100)
    # frame_keep_indices(6, 0.5) == [0, 2, 4]; each kept frame absorbs the next one's delay.
    render = _save([frames[i] for i in (0, 2, 4)], tmp_path / "drop.gif", 200)
    pairs = list(aligned_pairs(src, render))
    assert [(p.source_index, p.render_index) for p in pairs] == [
        (0, 0),
        (1, 0),
        (2, 1),
        (3, 1),
        (4, 2),
        (5, 2),
    ]
    for p in pairs:
        same = np.array_equal(p.source, p.render)
        assert same == (p.source_index in (0, 2, 4))
    m = compare_gifs(src, render, [0, 2, 4])
    _assert_finite(m)
    assert m["ssim_kept_mean"] == pytest.approx(1.0, abs=1e-6)
    assert m["ssim_mean"] < 0.99 and m["ssim_min"] < m["ssim_mean"]
    assert m["temporal_error"] > 0
    # Without kept_indices, kept frames are those a render frame starts with: the same here.
    assert compare_gifs(src, render) == m


@pytest.mark.parametrize(
    ("kept", "durations", "expected"),
    [
        # Fewer frames than expected, the last one shown past the render's end.
        ((0, 1, 2, 3), 100, [0, 1, 2, 3, 3, 3]),
        # An engine merged frames 1 and 2 into one long frame.
        ((0, 1, 3, 4, 5), [100, 200, 100, 100, 100], [0, 1, 1, 2, 3, 4]),
        # Browser timing: 0 ms delays play as 100 ms on both sides.
        ((0, 1, 2, 3, 4, 5), 0, [0, 1, 2, 3, 4, 5]),
    ],
)
def test_render_with_another_frame_count(tmp_path: Path, kept, durations, expected):
    frames = _frames(6)
    src = _save(frames, tmp_path / "src.gif", 100)
    render = _save([frames[i] for i in kept], tmp_path / "render.gif", durations)
    assert [p.render_index for p in aligned_pairs(src, render)] == expected
    _assert_finite(compare_gifs(src, render))


def test_render_with_more_frames_than_source(tmp_path: Path):
    frames = _frames(4)
    src = _save(frames, tmp_path / "src.gif", 200)
    doubled = [f for f in frames for _ in range(2)]
    doubled = [f.copy() for f in doubled]
    for k, f in enumerate(doubled):
        f.putpixel((63, 47), (k * 20, 0, 0, 255))  # keep Pillow from merging the copies
    render = _save(doubled, tmp_path / "render.gif", 100)
    assert [p.render_index for p in aligned_pairs(src, render)] == [0, 2, 4, 6]


def test_max_frames_samples_evenly(tmp_path: Path):
    assert sample_indices(10, None) == list(range(10))
    assert sample_indices(10, 4) == [0, 2, 5, 7]
    frames = _frames(6)
    src = _save(frames, tmp_path / "src.gif", 100)
    m = compare_gifs(src, shutil.copy(src, tmp_path / "c.gif"), max_frames=3)
    assert m["frames_compared"] == 3


def test_transparency_error(tmp_path: Path):
    frames = _frames(4, transparent=True)
    src = _save(frames, tmp_path / "src.gif", 100)
    assert next(iter_frames(src)).rgba[..., 3].min() == 0  # the fixture really is transparent
    same = compare_gifs(src, shutil.copy(src, tmp_path / "copy.gif"))
    assert same["transparency_error"] == 0.0
    # Transparency lost: flattened on the same white, so the colour metrics barely move.
    white = [Image.fromarray(flatten(np.asarray(f))) for f in frames]
    lost = compare_gifs(src, _save(white, tmp_path / "opaque.gif", 100))
    _assert_finite(lost)
    assert lost["transparency_error"] > 0.5
    assert lost["ssim_mean"] == pytest.approx(1.0, abs=1e-6)


def test_describe_render(tmp_path: Path):
    path = _save(_frames(5, transparent=True), tmp_path / "r.gif", 100)
    # One opaque colour (the square) plus transparency, over five frames.
    assert describe_render(path) == {"render_frames": 5, "render_colors": 2}
