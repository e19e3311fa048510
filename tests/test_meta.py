"""Metadata measured from real GIFs agrees with the corpus manifest; timing follows browsers."""

from __future__ import annotations

import pytest
from PIL import Image

from giflab.errors import BadGifError
from giflab.frames import browser_delay_ms
from giflab.meta import read_metadata, validate_gif
from tests.conftest import bad_corpus_files, corpus_dir, manifest_rows


@pytest.mark.parametrize("row", manifest_rows(), ids=lambda r: r["file"][:50])
def test_metadata_matches_manifest(row):
    meta = read_metadata(corpus_dir() / row["file"])
    assert (meta["width"], meta["height"], meta["n_frames"]) == (
        int(row["width"]),
        int(row["height"]),
        int(row["frames"]),
    )
    assert meta["file_kb"] == pytest.approx(int(row["bytes"]) / 1024, abs=1e-3)
    expected_loop = None if row["loop"] == "" else int(row["loop"])
    assert meta["loop_count"] == expected_loop
    assert 1 <= meta["n_colors"] <= meta["width"] * meta["height"] * meta["n_frames"] + 1


@pytest.mark.parametrize("path", bad_corpus_files(), ids=lambda p: p.name)
def test_bad_files_are_refused_with_a_reason(path):
    with pytest.raises(BadGifError) as err:
        validate_gif(path)
    assert err.value.path == path
    assert err.value.kind in {"decompression_bomb", "unreadable", "not_a_gif", "zero_size"}


@pytest.mark.parametrize(
    ("written", "shown"), [(0, 100), (10, 100), (20, 20), (50, 50), (None, 100)]
)
def test_browser_delay(written, shown):
    assert browser_delay_ms(written) == shown


def _write_gif(path, colours, durations, loop=0, transparency=None):
    frames = [Image.new("RGB", (8, 8), c).convert("P") for c in colours]
    extra = {"transparency": transparency} if transparency is not None else {}
    frames[0].save(
        path, save_all=True, append_images=frames[1:], duration=durations, loop=loop, **extra
    )


def test_timing_colours_and_loop_of_a_constructed_gif(tmp_path):
    path = tmp_path / "three.gif"
    _write_gif(path, [(255, 0, 0), (0, 255, 0), (0, 0, 255)], [0, 10, 50], loop=3)
    meta = read_metadata(path)
    assert meta["n_frames"] == 3
    assert meta["raw_duration_ms"] == 60
    assert meta["duration_ms"] == 250  # 0 and 10 ms play as 100 ms
    assert meta["fps"] == pytest.approx(3 / 0.25)
    assert meta["n_colors"] == 3
    assert meta["loop_count"] == 3
    assert meta["has_transparency"] is False


def test_truncated_gif_is_refused(tmp_path, corpus):
    src = (corpus / "Pillow__Tests__images__chi.gif").read_bytes()
    cut = tmp_path / "cut.gif"
    cut.write_bytes(src[: len(src) // 2])
    with pytest.raises(BadGifError) as err:
        validate_gif(cut)
    assert err.value.kind in {"truncated", "unreadable"}


def test_a_gif_appended_without_trailer_ends_the_first_as_in_browsers(tmp_path):
    from giflab.meta import check_structure

    one = tmp_path / "one.gif"
    Image.new("P", (4, 4)).save(one)
    data = one.read_bytes()
    stray = tmp_path / "stray.gif"
    stray.write_bytes(data[:-1] + data)  # the trailer replaced by a whole second GIF
    check_structure(stray)  # accepted, like Chromium and Firefox
    junk = tmp_path / "junk.gif"
    junk.write_bytes(data[:-1] + b"\xde" + data[-1:])  # a stray byte where a block starts
    with pytest.raises(BadGifError, match="unknown block type 0xde"):
        check_structure(junk)
