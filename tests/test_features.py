"""Classical features on constructed GIFs with known answers, and on every real corpus GIF."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, corpus_features, good_corpus_gifs, varied_corpus_gifs
from PIL import Image, ImageDraw

from giflab.features import (
    CLASSICAL_FEATURES,
    CLIP_FEATURES,
    FEATURE_NAMES,
    FEATURE_RANGES,
    extract_features,
)
from giflab.features.sampling import evenly_spaced, pair_starts


def write_gif(path: Path, frames: list[np.ndarray], duration: int = 100) -> Path:
    """Save uint8 RGB frames as an animated GIF (Pillow quantises each frame)."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path


def flat(h: int = 64, w: int = 64, rgb=(40, 120, 200)) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def checkerboard(n: int = 128, cell: int = 8) -> np.ndarray:
    y, x = np.indices((n, n))
    on = ((y // cell + x // cell) % 2).astype(bool)
    return np.where(on[..., None], 255, 0).astype(np.uint8).repeat(3, axis=2)


def text_frame(w: int = 320, h: int = 240) -> np.ndarray:
    im = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(im)
    for i in range(h // 14):
        draw.text((4, 2 + 14 * i), f"line {i:02d}: the quick brown fox jumps over", fill="black")
    return np.asarray(im)


def smooth_noise(w: int = 320, h: int = 240, seed: int = 0) -> np.ndarray:
    """A photo-like frame: a smooth colour gradient with mild (seeded) sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x / w * 200 + 20, y / h * 180 + 40, (x + y) / (w + h) * 150 + 60], axis=-1)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def test_feature_names_are_fixed():
    assert len(FEATURE_NAMES) == 79 == len(set(FEATURE_NAMES))
    assert FEATURE_NAMES[:9][0] == "entropy" and FEATURE_NAMES[9] == "motion_intensity"
    assert FEATURE_NAMES[16:23] == (
        "lossless_compression_ratio",
        "transparency_ratio",
        "run_length",
        "lzw_size_ratio",
        "lzw_lossy_ratio_20",
        "lzw_lossy_ratio_60",
        "lzw_lossy_ratio_120",
    )
    assert FEATURE_NAMES[23:35] == tuple(
        f"lzw_colors_ratio_{c}_{lv}" for c in (256, 64, 16) for lv in (0, 20, 60, 120)
    )
    assert FEATURE_NAMES[35:44] == tuple(
        f"ffmpeg_colors_ratio_{c}_{lv}" for c in (256, 64, 16) for lv in (0, 60, 120)
    )
    assert FEATURE_NAMES[44:48] == tuple(f"imagemagick_fuzz_ratio_{lv}" for lv in (0, 20, 60, 120))
    assert FEATURE_NAMES[48:52] == tuple(f"gifski_quality_ratio_{lv}" for lv in (0, 20, 60, 120))
    assert FEATURE_NAMES[52:64] == tuple(
        f"imagemagick_colors_ratio_{c}_{lv}" for c in (256, 64, 16) for lv in (0, 20, 60, 120)
    )
    assert FEATURE_NAMES[64:70] == tuple(  # added later, after all the others
        f"ffmpeg_colors_ratio_{c}_{lv}" for c in (256, 64, 16) for lv in (80, 100)
    )
    assert FEATURE_NAMES[70:73] == tuple(f"gifski_quality_ratio_{lv}" for lv in (40, 80, 100))
    assert FEATURE_NAMES[73:] == CLIP_FEATURES
    assert set(FEATURE_RANGES) == set(FEATURE_NAMES)


@pytest.mark.parametrize(
    "n,k,expected",
    [
        (1, 8, [0]),
        (5, 8, [0, 1, 2, 3, 4]),
        (9, 8, [0, 1, 2, 3, 4, 5, 6, 8]),
        (100, 4, [0, 33, 66, 99]),
    ],
)
def test_evenly_spaced(n, k, expected):
    assert evenly_spaced(n, k) == expected


def test_pair_starts_cover_the_animation():
    assert pair_starts(1) == []
    assert pair_starts(2) == [0]
    starts = pair_starts(300)
    assert len(starts) == 16 and starts[0] == 0 and starts[-1] == 298


def test_flat_frame_has_no_entropy_or_edges(tmp_path):
    r = extract_features(write_gif(tmp_path / "flat.gif", [flat()]))
    assert r["entropy"] == 0.0
    assert r["edge_density"] == 0.0
    assert r["contrast_score"] == 0.0
    assert r["dct_energy_ratio"] == 0.0
    assert r["text_density"] == 0.0
    assert r["dominant_color_ratio"] == 1.0
    assert r["run_length"] == 1.0


def test_checkerboard_is_edgy(tmp_path):
    board = extract_features(write_gif(tmp_path / "board.gif", [checkerboard()]))
    assert board["edge_density"] > 0.15  # natural frames in the corpus: median ~0.02
    assert board["contrast_score"] > 0.99
    assert board["entropy"] == pytest.approx(1.0)


@pytest.mark.parametrize("n_frames", [2, 5, 40])
def test_static_animation_has_no_motion(tmp_path, n_frames):
    frame = smooth_noise(96, 64)
    r = extract_features(write_gif(tmp_path / "static.gif", [frame] * n_frames))
    assert r["motion_intensity"] == 0.0
    assert r["static_region_ratio"] == 1.0
    assert r["frame_similarity"] == 1.0
    assert r["temporal_entropy"] == 0.0
    assert r["inter_frame_mse_mean"] == 0.0


def test_motion_features_carry_different_information(tmp_path):
    """A small square jumping around vs. a whole-frame fade: distinct temporal signatures."""
    frames = []
    for i in range(12):
        f = flat(64, 64, (255, 255, 255))
        f[(i * 5) % 56 : (i * 5) % 56 + 8, 10:18] = 0
        frames.append(f)
    square = extract_features(write_gif(tmp_path / "square.gif", frames))
    fade = extract_features(
        write_gif(tmp_path / "fade.gif", [flat(64, 64, (g, g, g)) for g in range(0, 240, 20)])
    )
    assert 0 < square["motion_intensity"] < 0.1 and square["static_region_ratio"] > 0.6
    assert fade["static_region_ratio"] == 0.0
    assert fade["motion_intensity"] > square["motion_intensity"]
    for r in (square, fade):  # similarity is SSIM, not a rescaled motion_intensity
        assert abs(r["frame_similarity"] - (1 - r["motion_intensity"])) > 0.02
    assert fade["motion_smoothness"] == pytest.approx(1.0)


def test_fully_transparent_gif(tmp_path):
    im = Image.new("P", (32, 24), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    path = tmp_path / "clear.gif"
    im.save(path, transparency=0)
    r = extract_features(path)
    assert r["transparency_ratio"] == 1.0


@pytest.mark.parametrize("rows_red", [10, 50, 70, 99])
def test_dominant_color_ratio_of_two_colours(tmp_path, rows_red):
    f = flat(100, 100, (0, 0, 255))
    f[:rows_red] = (255, 0, 0)
    r = extract_features(write_gif(tmp_path / "two.gif", [f]))
    assert r["dominant_color_ratio"] == pytest.approx(max(rows_red, 100 - rows_red) / 100)
    assert r["color_complexity"] == pytest.approx(1 / 8)


def test_text_beats_photo_like_frames_on_text_density(tmp_path):
    text = extract_features(write_gif(tmp_path / "text.gif", [text_frame()]))["text_density"]
    photo = extract_features(write_gif(tmp_path / "photo.gif", [smooth_noise()]))["text_density"]
    # Caption-free anime clips (119595 has a burnt-in subtitle and rightly scores ~0.13).
    anime = [p for p in good_corpus_gifs() if p.name.startswith(ANIME_NO_CAPTIONS)]
    assert text > 0.1
    assert photo < text / 4
    assert anime
    for p in anime:
        assert corpus_features(p)["text_density"] < text / 2, p.name


ANIME_NO_CAPTIONS = tuple(
    f"AnimeGifs__public__private__files__{n}" for n in ("171523", "371116", "505437")
)


def test_run_length_orders_flat_stripes_and_noise(tmp_path):
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    stripes = flat(64, 64)
    stripes[:, ::2] = 0
    values = [
        extract_features(write_gif(tmp_path / f"{n}.gif", [f]))["run_length"]
        for n, f in (("flat", flat()), ("noise", noise), ("stripes", stripes))
    ]
    assert values[0] == 1.0 and values[2] == 0.0 and 0 <= values[1] < 0.2


def test_clip_values_are_null_with_a_reason_without_a_scorer(tmp_path):
    r = extract_features(write_gif(tmp_path / "f.gif", [flat()]))
    assert all(r[c] is None for c in CLIP_FEATURES)
    assert r.clip_missing_reason
    assert list(r.as_dict())[: len(FEATURE_NAMES)] == list(FEATURE_NAMES)


def check_ranges(values: dict) -> None:
    for name in CLASSICAL_FEATURES:
        v = values[name]
        lo, hi = FEATURE_RANGES[name]
        assert isinstance(v, float) and math.isfinite(v), (name, v)
        assert lo <= v <= hi, (name, v)


@pytest.mark.parametrize("path", varied_corpus_gifs(), ids=lambda p: p.name[:60])
def test_corpus_features_are_finite_and_in_range(path):
    check_ranges(corpus_features(path))


# Varied on purpose: transparency, a long terminal recording, a photo-like clip, a 1-frame file.
DETERMINISM_GIFS = [
    p
    for p in good_corpus_gifs()
    if p.name.startswith(
        ("Pillow__Tests__images__dispose_bgnd_rgba", "AnimeGifs__public__uploads__aa")
    )
    or p.name in ("bubbletea__examples__spinner__spinner.gif", "gifsicle__logo1.gif")
]

_CHILD = """
import json, sys
from giflab.features import extract_features
out = {p: [repr(v) for v in extract_features(p).values.values()] for p in sys.argv[1:]}
print(json.dumps(out))
"""


def test_bit_identical_across_processes():
    assert DETERMINISM_GIFS, "corpus files for the determinism check are missing"
    args = [sys.executable, "-c", _CHILD, *map(str, DETERMINISM_GIFS)]
    runs = [
        json.loads(
            subprocess.run(args, capture_output=True, text=True, check=True, cwd=REPO).stdout
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    here = {
        str(p): [repr(v) for v in extract_features(p).values.values()] for p in DETERMINISM_GIFS
    }
    assert here == runs[0]
