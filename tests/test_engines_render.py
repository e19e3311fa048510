"""Every available engine on real corpus GIFs: valid output, frames, timing, knobs that bite."""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from giflab.engines import EngineConfig, Variant, frame_keep_indices, get_engine, kept_delays
from giflab.engines import base as engines_base
from giflab.engines.base import SourceGif, read_color_tables
from giflab.engines.sweep import render_variant
from giflab.errors import EngineError, GifLabError
from giflab.frames import browser_delay_ms
from tests.conftest import good_corpus_gifs
from tests.fake_engines import failing_engine, slow_engine

GIF_ENGINES = ["gifsicle", "imagemagick", "ffmpeg", "gifski", "pillow"]
LOSSY_ENGINES = ["gifsicle", "imagemagick", "ffmpeg", "gifski"]
COLOUR_ENGINES = ["gifsicle", "imagemagick", "ffmpeg", "pillow"]
# Small real GIFs: a 6-frame sprite with transparency, a 5-frame disposal test, a 14-frame photo.
SPRITE, DISPOSAL, PHOTO = "scarfy_run", "dispose_bgnd", "moon_impact"
HOSTILE_NAMES = ["-lead.gif", 'it\'s "q".gif', "sp ace\ttab.gif", "café ☕.gif", "100%d [0].gif"]


def corpus_gif(part: str) -> Path:
    found = [p for p in good_corpus_gifs() if part in p.name]
    if not found:
        pytest.skip(f"no corpus GIF named *{part}*")
    return found[0]


@cache
def status(name: str):
    return get_engine(name, EngineConfig()).available()


def engine(name: str):
    if not status(name).ok:
        pytest.skip(f"{name} unavailable: {status(name).reason}")
    return get_engine(name, EngineConfig())


def read_gif(path: Path) -> tuple[int, int]:
    """(frames, total duration in ms as a browser plays it)."""
    with Image.open(path) as im:
        assert im.format == "GIF"
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            total += browser_delay_ms(im.info.get("duration", 0))
        return im.n_frames, total


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("variant", [Variant(0, 256, 1.0), Variant(40, 64, 0.8)], ids=str)
@pytest.mark.parametrize("gif", [SPRITE, DISPOSAL])
@pytest.mark.parametrize("name", GIF_ENGINES)
def test_render_frames_and_duration(name, gif, variant, tmp_path):
    eng, path = engine(name), corpus_gif(gif)
    src = SourceGif(path, tmp_path)
    result = eng.render(src, variant, tmp_path / "out.gif", timeout_s=60)
    kept = frame_keep_indices(src.n_frames, variant.frame_keep)
    assert result.kept == kept and result.engine == name and result.render_ms >= 0
    n_frames, duration = read_gif(result.output)
    if eng.merges_identical_frames:  # optimisers fold identical frames, adding their delays
        assert 1 <= n_frames <= len(kept)
    else:
        assert n_frames == len(kept)
    expected = sum(kept_delays(src.delays_ms, kept))
    # gifski 1.7.1 has one --fps for all frames: each delay is rounded to a centisecond.
    slack = 10 * len(kept) if name == "gifski" else 0
    assert abs(duration - expected) <= slack, (duration, expected)


@pytest.mark.parametrize("name", LOSSY_ENGINES)
def test_lossy_shrinks_and_every_level_differs(name, tmp_path):
    eng, src = engine(name), SourceGif(corpus_gif(PHOTO), tmp_path)
    sizes, digests = [], set()
    for lossy in (0, 40, 80, 120):
        result = eng.render(src, Variant(lossy, 256, 1.0), tmp_path / f"l{lossy}.gif", 60)
        sizes.append(result.output.stat().st_size)
        digests.add(sha(result.output))
    assert len(digests) == 4, f"{name}: lossy levels gave identical files"
    for smaller, larger in zip(sizes[1:], sizes, strict=False):
        assert smaller <= larger * 1.02, sizes
    assert sizes[-1] < sizes[0] * 0.9, sizes


@pytest.mark.parametrize("name", GIF_ENGINES)
def test_colour_count_reaches_the_engine(name, tmp_path):
    eng, src = engine(name), SourceGif(corpus_gif(PHOTO), tmp_path)
    full = eng.render(src, Variant(0, 256, 1.0), tmp_path / "c256.gif", 60)
    few = eng.render(src, Variant(0, 16, 1.0), tmp_path / "c16.gif", 60)
    if name not in COLOUR_ENGINES:  # gifski has no colour-count knob: recorded, not pretended
        assert few.applied["colors"] is None
        return
    assert few.applied["colors"] == 16
    assert sha(full.output) != sha(few.output)
    # Each colour table holds at most 16 colours, plus a transparent index and power-of-2 padding.
    assert max(len(t) for t in read_color_tables(few.output)) <= 16 + 2
    for argv in (full.argv, few.argv):  # quantised once: one colour flag at most
        assert sum(a in ("--colors", "-colors") for a in argv) <= 1


@pytest.mark.parametrize("name", GIF_ENGINES)
def test_one_engine_call_per_render(name, tmp_path, monkeypatch):
    eng = engine(name)
    calls = []
    real = engines_base.run_command
    monkeypatch.setattr(
        engines_base, "run_command", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    eng.render(corpus_gif(DISPOSAL), Variant(60, 32, 0.8), tmp_path / "one.gif", 60)
    assert len(calls) == (0 if name == "pillow" else 1)


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
@pytest.mark.parametrize("name", GIF_ENGINES)
def test_hostile_file_names(name, hostile, tmp_path):
    eng = engine(name)
    src = tmp_path / hostile
    shutil.copyfile(corpus_gif(SPRITE), src)
    result = eng.render(src, Variant(20, 64, 0.8), tmp_path / f"out {hostile}", 60)
    assert result.output == (tmp_path / f"out {hostile}").resolve()
    assert read_gif(result.output)[0] >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([hostile, f"out {hostile}"])


@pytest.mark.parametrize("name", ["pillow-webp", "pillow-avif"])
def test_tier2_formats(name, tmp_path):
    eng = engine(name)
    result = eng.render(corpus_gif(SPRITE), Variant(60, 256, 0.8), tmp_path / "out.img", 60)
    with Image.open(result.output) as im:
        assert im.format == eng.fmt and getattr(im, "n_frames", 1) == len(result.kept)
    assert result.applied["colors"] is None


def test_render_variant_cleans_up(tmp_path):
    eng = engine("gifsicle")
    with render_variant(eng, corpus_gif(SPRITE), Variant(0, 64, 1.0), tmp_path / "t") as r:
        assert r.output.is_file() and r.output.parent.parent == tmp_path / "t"
    assert list((tmp_path / "t").iterdir()) == []
    broken = tmp_path / "broken.gif"
    broken.write_bytes(corpus_gif(SPRITE).read_bytes()[:300])
    with (
        pytest.raises(GifLabError),
        render_variant(eng, broken, Variant(0, 64, 1.0), tmp_path / "t"),
    ):
        pass
    assert list((tmp_path / "t").iterdir()) == []


def test_timeout_kills_the_engine_and_its_children(tmp_path):
    eng = get_engine("gifsicle", EngineConfig(gifsicle_bin=str(slow_engine(tmp_path))))
    start = time.monotonic()
    with pytest.raises(EngineError, match="timeout after 3s") as info:
        eng.render(corpus_gif(SPRITE), Variant(0, 64, 1.0), tmp_path / "out.gif", timeout_s=3)
    assert time.monotonic() - start < 10
    assert info.value.engine == "gifsicle"
    child = int((tmp_path / "child.pid").read_text())
    for _ in range(50):  # killed with its group; gone once its parent (pid 1 or us) reaps it
        if not Path(f"/proc/{child}").exists() or "Z" in _proc_state(child):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"engine child {child} still running after the timeout")


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1]
    except (OSError, IndexError):
        return "Z"


def test_gifsicle_keeps_a_palette_that_already_fits(tmp_path):
    eng = engine("gifsicle")
    path = corpus_gif(DISPOSAL)  # five small local tables, 17 colours together
    assert SourceGif(path, tmp_path).palette_colors <= 256
    full = eng.render(path, Variant(0, 256, 1.0), tmp_path / "a.gif", 60)
    assert "--colors" not in full.argv and full.applied["colors"] is None
    few = eng.render(path, Variant(0, 4, 1.0), tmp_path / "b.gif", 60)
    assert few.argv[few.argv.index("--colors") + 1] == "4"


def test_engine_failure_keeps_stderr(tmp_path):
    eng = get_engine("ffmpeg", EngineConfig(ffmpeg_bin=str(failing_engine(tmp_path))))
    with pytest.raises(EngineError) as info:
        eng.render(corpus_gif(SPRITE), Variant(0, 64, 1.0), tmp_path / "out.gif", timeout_s=30)
    assert "exit 3" in info.value.reason and "cannot read input" in info.value.reason
    assert "first line" in info.value.stderr


@pytest.mark.parametrize("name", ["gifsicle", "imagemagick", "ffmpeg", "pillow"])
def test_each_kept_frame_keeps_its_own_delay(name, tmp_path):
    # Varied delays (one average delay for all frames was a bug of the earlier GifLab).
    delays = [40, 200, 60, 300, 80, 120, 500, 30, 90, 250]
    frames = [Image.new("RGB", (48, 32), (25 * i, 255 - 25 * i, (90 * i) % 256)) for i in delays]
    src = tmp_path / "varied.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=delays, loop=0)
    result = engine(name).render(src, Variant(0, 64, 0.8), tmp_path / "out.gif", 60)
    with Image.open(result.output) as im:
        got = []
        for i in range(im.n_frames):
            im.seek(i)
            got.append(im.info["duration"])
    assert got == kept_delays(delays, result.kept)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux")
def test_engine_memory_is_capped(tmp_path):
    """A render that wants more memory than the cap fails with a recorded reason, not swap."""
    from giflab.engines.base import run_command
    from giflab.errors import EngineError

    hog = [sys.executable, "-c", "b = bytearray(600 * 2**20); print(len(b))"]
    assert run_command(hog, src=tmp_path, engine="hog", timeout_s=60).strip() == str(600 * 2**20)
    with pytest.raises(EngineError) as err:
        run_command(hog, src=tmp_path, engine="hog", timeout_s=60, memory_limit_mb=300)
    assert "MemoryError" in err.value.stderr


@pytest.mark.parametrize("name", GIF_ENGINES)
def test_single_frame_gif_renders(name, tmp_path):
    # A still GIF is a GIF too: gifski refuses one input frame, so it gets the frame twice.
    eng = engine(name)
    src = tmp_path / "still.gif"
    Image.new("RGB", (40, 30), (200, 40, 40)).save(src)
    result = eng.render(src, Variant(40, 64, 1.0), tmp_path / "out.gif", 60)
    assert read_gif(result.output)[0] == 1
