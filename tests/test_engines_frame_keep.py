"""The shared frame rule, the variant matrix, configuration and the registry."""

from __future__ import annotations

import pytest

from giflab.engines import (
    ALL_ENGINES,
    DEFAULT_ENGINES,
    EngineConfig,
    Variant,
    engine_statuses,
    frame_keep_indices,
    get_engine,
    kept_delays,
    registry,
    variant_matrix,
)


@pytest.mark.parametrize(
    ("n", "ratio", "expected"),
    [
        (1, 0.8, [0]),
        (5, 1.0, [0, 1, 2, 3, 4]),
        (10, 0.8, [0, 1, 2, 3, 5, 6, 7, 8]),
        (10, 0.5, [0, 2, 4, 6, 8]),
        (3, 0.1, [0]),
        (14, 0.8, [0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12]),
    ],
)
def test_frame_keep_indices(n, ratio, expected):
    assert frame_keep_indices(n, ratio) == expected


@pytest.mark.parametrize("n", [1, 2, 7, 100, 613])
@pytest.mark.parametrize("ratio", [0.05, 0.5, 0.8, 0.99, 1.0])
def test_frame_keep_invariants(n, ratio):
    kept = frame_keep_indices(n, ratio)
    assert kept[0] == 0 and len(kept) >= 1
    assert kept == sorted(set(kept)) and kept[-1] < n
    assert len(kept) == max(1, round(n * ratio))
    assert kept == frame_keep_indices(n, ratio)


@pytest.mark.parametrize("bad", [(0, 0.5), (5, 0.0), (5, 1.5)])
def test_frame_keep_rejects(bad):
    with pytest.raises(ValueError):
        frame_keep_indices(*bad)


def test_kept_delays_preserve_duration_with_browser_semantics():
    delays = [0, 10, 50, 70, 30, 40]  # 0 and 10 ms are shown for 100 ms by browsers
    kept = frame_keep_indices(len(delays), 0.5)
    assert kept == [0, 2, 4]
    assert kept_delays(delays, kept) == [200, 120, 70]
    assert sum(kept_delays(delays, kept)) == sum(kept_delays(delays, list(range(6))))


def test_variant_matrix_default_is_70_distinct():
    matrix = variant_matrix()
    assert len(matrix) == 70 == len(set(matrix))
    assert {v.colors for v in matrix} == {256, 128, 64, 32, 16}
    assert {v.lossy for v in matrix} == set(range(0, 121, 20))
    assert {v.frame_keep for v in matrix} == {1.0, 0.8}


@pytest.mark.parametrize("bad", [(-1, 256, 1.0), (0, 1, 1.0), (0, 257, 1.0), (0, 64, 0.0)])
def test_variant_validation(bad):
    with pytest.raises(ValueError):
        Variant(*bad)


def test_config_reads_env_once(monkeypatch, tmp_path):
    monkeypatch.setenv("GIFLAB_GIFSICLE_BIN", str(tmp_path / "my-gifsicle"))
    monkeypatch.delenv("GIFLAB_ANIMATELY_BIN", raising=False)
    config = EngineConfig()
    assert config.gifsicle_bin == str(tmp_path / "my-gifsicle")
    assert config.animately_bin is None
    status = get_engine("gifsicle", config).available()
    assert not status.ok and "GIFLAB_GIFSICLE_BIN" in status.reason


def test_registry():
    assert len(DEFAULT_ENGINES) == 7
    assert set(DEFAULT_ENGINES) < set(ALL_ENGINES)
    assert {"pillow", "pillow-webp", "pillow-avif"} <= set(ALL_ENGINES) - set(DEFAULT_ENGINES)
    with pytest.raises(KeyError, match="unknown engine"):
        get_engine("nope")
    statuses = engine_statuses(DEFAULT_ENGINES, EngineConfig(animately_bin=None))
    assert [s.name for s in statuses] == list(DEFAULT_ENGINES)
    assert all(s.ok or s.reason for s in statuses)


def test_entry_point_engines_are_discovered(monkeypatch):
    from giflab.engines.gifsicle import Gifsicle

    class Outside(Gifsicle):
        name = "outside-engine"

    class EntryPoint:
        def load(self):
            return Outside

    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint()])
    assert isinstance(get_engine("outside-engine"), Outside)


def test_install_commands_per_platform():
    from giflab.engines import get_engine

    gifsicle = get_engine("gifsicle")
    assert gifsicle.install_command("linux") == "sudo apt-get install gifsicle"
    assert gifsicle.install_command("darwin") == "brew install gifsicle"
    assert "WSL" in gifsicle.install_command("win32")
    assert get_engine("animately-standard").install == {}
