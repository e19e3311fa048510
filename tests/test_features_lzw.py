"""The lossless-size probe behind ``lzw_size_ratio``: exact LZW bytes, the frame-delta estimate
and its sampling, and how close it lands to what a real optimising encoder writes."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import good_corpus_gifs
from PIL import Image

from giflab.features import extract_features, lzw
from giflab.features.lzw import DeltaLzwEstimate, lzw_data_bytes
from giflab.features.sampling import rgba_words
from giflab.frames import frame_count, iter_frames


def words(rgb: np.ndarray) -> np.ndarray:
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return rgba_words(rgba)


def noise(h: int, w: int, seed: int, colors: int = 64) -> np.ndarray:
    levels = np.random.default_rng(seed).integers(0, colors, (h, w))
    return np.stack([levels * 4, 255 - levels * 4, levels * 2], axis=-1).astype(np.uint8)


def test_lzw_data_bytes_is_the_data_of_the_image_pillow_writes(tmp_path):
    frame = noise(40, 50, seed=1)
    nbytes, ncolors = lzw_data_bytes(words(frame))
    assert ncolors == 64
    # The same indices written as a whole GIF: the file is header + palette + descriptor +
    # code size + data + trailer, so the data is what is left after the fixed parts.
    _, inverse = np.unique(words(frame), return_inverse=True)
    path = tmp_path / "one.gif"
    Image.fromarray(inverse.reshape(40, 50).astype(np.uint8), "P").save(path, optimize=False)
    raw = path.read_bytes()
    palette = 3 * (2 << (raw[10] & 7)) if raw[10] & 0x80 else 0
    extensions = len(raw) - 13 - palette - 10 - 1 - nbytes - 1
    assert extensions >= 0 and extensions % 8 == 0  # whole graphic-control extensions only
    flat_bytes, flat_colors = lzw_data_bytes(words(np.zeros((40, 50, 3), np.uint8)))
    assert flat_colors == 1 and flat_bytes < nbytes / 10


def test_identical_frames_cost_nothing_and_changes_cost_their_crop():
    still = noise(64, 64, seed=2)
    one, repeated, moving = DeltaLzwEstimate(1), DeltaLzwEstimate(20), DeltaLzwEstimate(20)
    one.add(words(still))
    for _ in range(20):
        repeated.add(words(still))
    for i in range(20):
        frame = still.copy()
        frame[i : i + 4, i : i + 4] = 255  # a 4x4 square walking along the diagonal
        moving.add(words(frame))
    assert repeated.total_bytes() == one.total_bytes()
    extra = moving.total_bytes() - one.total_bytes()
    assert 19 * lzw.FRAME_BYTES < extra < 19 * (lzw.FRAME_BYTES + 60)


def test_sampled_estimate_is_close_to_encoding_every_crop(monkeypatch):
    frames = [words(noise(200, 300, seed=s, colors=16 + s % 48)) for s in range(120)]
    sampled = DeltaLzwEstimate(len(frames))
    for f in frames:
        sampled.add(f)
    assert sampled.stride > 1
    monkeypatch.setattr(lzw, "LZW_FRAMES", 10**6)
    exact = DeltaLzwEstimate(len(frames))
    assert exact.stride == 1
    for f in frames:
        exact.add(f)
    assert sampled.total_bytes() == pytest.approx(exact.total_bytes(), rel=0.05)


def optimised_kilobytes(gifsicle: str, path: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "o.gif"
        subprocess.run([gifsicle, "-O2", "--no-warnings", str(path), "-o", str(out)], check=True)
        return out.stat().st_size / 1024


def test_estimate_tracks_what_gifsicle_optimisation_writes():
    """On real animated GIFs, 2**lzw_size_ratio x file size is the lossless size an optimising
    encoder reaches (gifsicle -O2): within 25% for most, median within 10%."""
    gifsicle = shutil.which("gifsicle")
    if gifsicle is None:
        pytest.skip("gifsicle not installed")
    gifs = [p for p in good_corpus_gifs() if p.stat().st_size > 5 * 1024 and frame_count(p) > 1][
        :12
    ]
    assert len(gifs) >= 4
    errors = []
    for path in gifs:
        ratio = extract_features(path)["lzw_size_ratio"]
        estimate = 2**ratio * path.stat().st_size / 1024
        errors.append(abs(np.log(estimate / optimised_kilobytes(gifsicle, path))))
    assert np.median(errors) < np.log(1.10), errors
    assert np.mean(np.array(errors) < np.log(1.25)) >= 0.75, errors


def test_ratio_sees_an_unoptimised_file(tmp_path):
    """The same animation with every frame stored whole (``gifsicle --unoptimize``) is a bigger
    file with the same pixels: its ratio is lower by about the bytes the file wastes."""
    gifsicle = shutil.which("gifsicle")
    if gifsicle is None:
        pytest.skip("gifsicle not installed")
    base = Image.fromarray(noise(120, 160, seed=3)).quantize(64, dither=Image.Dither.NONE)
    frames = []
    for i in range(12):
        f = base.copy()
        f.paste(0, (10 * i, 50, 10 * i + 10, 60))  # a small square walking to the right
        frames.append(f)
    made, tight, loose = (tmp_path / f"{n}.gif" for n in ("made", "tight", "loose"))
    frames[0].save(made, save_all=True, append_images=frames[1:], optimize=False)
    # One global palette first (gifsicle cannot unoptimise local colour tables).
    subprocess.run([gifsicle, "--colors=255", "-O2", str(made), "-o", str(tight)], check=True)
    subprocess.run([gifsicle, "--unoptimize", str(tight), "-o", str(loose)], check=True)
    assert [f.rgba.tobytes() for f in iter_frames(tight)] == [
        f.rgba.tobytes() for f in iter_frames(loose)
    ]
    assert loose.stat().st_size > 3 * tight.stat().st_size
    r_tight = extract_features(tight)["lzw_size_ratio"]
    r_loose = extract_features(loose)["lzw_size_ratio"]
    waste = np.log2(loose.stat().st_size / tight.stat().st_size)
    assert r_tight - r_loose == pytest.approx(waste, abs=0.01)  # same pixels, same estimate
    assert r_loose < -1.5  # the estimate sees that most of the loose file is waste
