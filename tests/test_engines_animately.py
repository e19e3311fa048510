"""Animately's three engines against a fake executable: exact command lines, clear unavailability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from giflab.engines import EngineConfig, Variant, get_engine, kept_delays
from giflab.engines.base import SourceGif
from giflab.errors import EngineUnavailableError
from tests.conftest import good_corpus_gifs
from tests.fake_engines import fake_animately

ANIMATELY = ["animately-standard", "animately-hard", "animately-advanced"]


@pytest.fixture
def sprite() -> Path:
    found = [p for p in good_corpus_gifs() if "scarfy_run" in p.name]
    if not found:
        pytest.skip("no scarfy_run GIF in the corpus")
    return found[0]


def run_fake(name: str, src: Path, variant: Variant, tmp_path: Path):
    (tmp_path / "bin").mkdir()
    binary = fake_animately(tmp_path / "bin")
    eng = get_engine(name, EngineConfig(animately_bin=str(binary)))
    assert eng.available().ok
    out = tmp_path / "out.gif"
    result = eng.render(src, variant, out, timeout_s=60)
    argv = json.loads((binary.parent / "argv.json").read_text())
    assert result.argv == [str(binary), *argv]
    with Image.open(out) as im:
        assert im.format == "GIF"
    return result, argv, binary.parent


@pytest.mark.parametrize(
    ("variant", "extra"),
    [
        (Variant(40, 256, 1.0), []),
        (Variant(80, 32, 1.0), ["--colors", "32"]),
        (Variant(0, 64, 0.8), ["--colors", "64", "--reduce", "0.8", "--delay", "144"]),
    ],
    ids=str,
)
@pytest.mark.parametrize("name", ["animately-standard", "animately-hard"])
def test_standard_and_hard_command_lines(name, variant, extra, sprite, tmp_path):
    result, argv, _ = run_fake(name, sprite, variant, tmp_path)
    hard = ["--hard"] if name == "animately-hard" else []
    out = str((tmp_path / "out.gif").resolve())
    expected = ["--input", str(sprite.resolve()), "--output", out, *hard]
    expected += ["--lossy", str(variant.lossy), *extra, "--loops", "0"]
    assert argv == expected
    assert result.applied["colors"] == (None if variant.colors == 256 else variant.colors)


def test_reduce_delay_is_the_mean_kept_delay(sprite, tmp_path):
    src = SourceGif(sprite, tmp_path)
    kept, delays = src.plan(0.8)
    assert round(sum(delays) / len(delays)) == 144  # the value test above expects for the sprite
    assert sum(delays) == sum(kept_delays(src.delays_ms, list(range(src.n_frames))))


@pytest.mark.parametrize("variant", [Variant(60, 256, 1.0), Variant(20, 16, 0.8)], ids=str)
def test_advanced_config(variant, sprite, tmp_path):
    result, argv, folder = run_fake("animately-advanced", sprite, variant, tmp_path)
    assert argv[0] == "--advanced-lossy" and argv[2:] == ["--output", str(result.output)]
    config = json.loads((folder / "advanced.json").read_text())
    src = SourceGif(sprite, tmp_path)
    kept, delays = src.plan(variant.frame_keep)
    assert (config["lossy"], config["colors"], config["loops"]) == (
        variant.lossy,
        variant.colors,
        0,
    )
    assert [f["delay"] for f in config["frames"]] == delays
    assert [Path(f["png"]).name for f in config["frames"]] == [f"frame{k:05d}.png" for k in kept]
    with Image.open(result.output) as im:
        assert im.n_frames == len(kept)
    assert not Path(argv[1]).exists(), "the config is scratch, removed after the render"


@pytest.mark.parametrize("name", ANIMATELY)
def test_unavailable_without_binary(name, sprite, tmp_path, monkeypatch):
    monkeypatch.delenv("GIFLAB_ANIMATELY_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # even an 'animately' on PATH is not guessed
    fake_animately(tmp_path)
    eng = get_engine(name, EngineConfig())
    status = eng.available()
    assert not status.ok and "set GIFLAB_ANIMATELY_BIN to the animately binary" in status.reason
    with pytest.raises(EngineUnavailableError, match="GIFLAB_ANIMATELY_BIN"):
        eng.render(sprite, Variant(0, 256, 1.0), tmp_path / "out.gif")
    assert not (tmp_path / "out.gif").exists()


def test_env_var_configures_animately(sprite, tmp_path, monkeypatch):
    binary = fake_animately(tmp_path)
    monkeypatch.setenv("GIFLAB_ANIMATELY_BIN", str(binary))
    status = get_engine("animately-hard", EngineConfig()).available()
    assert status.path == str(binary.resolve())
