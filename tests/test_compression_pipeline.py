"""Sweeps through the CLI and Dagster: rows per variant, only missing work, unavailable engines."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import SAMPLES
from tests.test_cli import giflab

SMALL = [
    SAMPLES / "raylib__examples__textures__resources__scarfy_run.gif",
    SAMPLES / "Pillow__docs__handbook__animated_hopper.gif",
]


def _raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    for p in SMALL:
        shutil.copy(p, raw / p.name)
    return raw


def _registered(tmp_path: Path):
    """Settings of a fresh data dir whose registry holds SMALL, an ephemeral instance with their
    partitions, and their keys."""
    from dagster import DagsterInstance

    from giflab.config import Settings
    from giflab.db import open_db
    from giflab.ingest import register_folder
    from giflab_assets.runner import add_partitions

    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    with open_db(settings.db_path) as conn:
        keys = register_folder(conn, _raw(tmp_path), settings.bad_dir).new_gifs
    instance = DagsterInstance.ephemeral()
    add_partitions(instance, keys)
    return settings, instance, keys


def _rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return sorted(
            conn.execute(
                f"SELECT gif_sha, lossy, colors, frame_keep, status FROM {table}"
            ).fetchall()
        )


def test_sweep_rows_then_only_new_variants_render(tmp_path):
    raw, data = _raw(tmp_path), tmp_path / "data"
    giflab(
        "run",
        str(raw),
        "--engines",
        "gifsicle,ffmpeg",
        "--lossy",
        "0,80",
        "--colors",
        "256,32",
        "--frame-keep",
        "1.0,0.5",
        "--no-progress",
        data_dir=data,
    )
    db = data / "giflab.db"
    for table in ("compression_runs_gifsicle", "compression_runs_ffmpeg"):
        rows = _rows(db, table)
        assert len(rows) == len(SMALL) * 2 * 2 * 2
        assert {r[4] for r in rows} == {"ok"}
    with sqlite3.connect(db) as conn:
        before = dict(
            conn.execute(
                "SELECT gif_sha || lossy || colors || frame_keep, rowid FROM compression_runs_gifsicle"
            )
        )
        sizes = conn.execute(
            "SELECT colors, kilobytes FROM compression_runs_gifsicle WHERE lossy = 0 AND frame_keep = 1.0"
        ).fetchall()
    assert len({kb for _, kb in sizes}) > 1  # the colour count reached the engine

    out = giflab(
        "run",
        str(raw),
        "--engines",
        "gifsicle",
        "--lossy",
        "0,40,80",
        "--colors",
        "256,32",
        "--frame-keep",
        "1.0,0.5",
        "--no-progress",
        data_dir=data,
    )
    assert "0 new GIFs" in out.stdout
    rows = _rows(db, "compression_runs_gifsicle")
    assert len(rows) == len(SMALL) * 3 * 2 * 2
    assert {r[1] for r in rows} == {0, 40, 80}
    stats = json.loads(giflab("stats", "--json", data_dir=data).stdout)
    assert stats["renders"]["gifsicle"] == len(rows)
    assert stats["renders"]["ffmpeg"] == len(SMALL) * 8
    del before


def test_unavailable_engine_leaves_its_work_missing_and_the_rest_completes(tmp_path):
    raw, data = _raw(tmp_path), tmp_path / "data"
    env = {"GIFLAB_FFMPEG_BIN": str(tmp_path / "no-such-ffmpeg")}
    out = giflab(
        "run",
        str(raw),
        "--engines",
        "gifsicle,ffmpeg",
        "--lossy",
        "0",
        "--colors",
        "64",
        "--frame-keep",
        "1.0",
        "--no-progress",
        data_dir=data,
        extra_env=env,
    )
    assert "ffmpeg: unavailable" in out.stderr
    stats = json.loads(giflab("stats", "--json", data_dir=data, extra_env=env).stdout)
    assert stats["renders"] == {"gifsicle": len(SMALL)}
    assert "ffmpeg" in stats["unavailable_engines"]
    # the binary appears: the missing work runs, nothing else
    giflab(
        "run",
        str(raw),
        "--engines",
        "gifsicle,ffmpeg",
        "--lossy",
        "0",
        "--colors",
        "64",
        "--frame-keep",
        "1.0",
        "--no-progress",
        data_dir=data,
    )
    stats = json.loads(giflab("stats", "--json", data_dir=data).stdout)
    assert stats["renders"] == {"gifsicle": len(SMALL), "ffmpeg": len(SMALL)}


def test_resource_binaries_reach_the_workers(tmp_path):
    """Animately configured on the Dagster resource (not the environment) renders in workers."""
    from dagster import materialize
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from giflab_assets.definitions import ASSETS, build_resources
    from resources import EnginesResource
    from tests.fake_engines import fake_animately

    (tmp_path / "bin").mkdir()
    binary = fake_animately(tmp_path / "bin")
    settings, instance, keys = _registered(tmp_path)
    engines = EnginesResource(
        engines=["animately-standard"],
        binaries={"animately": str(binary)},
        lossy=[40],
        colors=[64],
        frame_keep=[1.0],
    )
    result = materialize(
        ASSETS,
        instance=instance,
        resources=build_resources(settings.data_dir, engines, workers=2),
        selection=["gif_metadata", "compression_runs_animately_standard"],
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
    )
    assert result.success
    rows = _rows(settings.db_path, "compression_runs_animately_standard")
    assert [r[1:] for r in rows] == [(40, 64, 1.0, "ok")] * len(SMALL)


def test_tier_two_engine_runs_on_demand(tmp_path):
    raw, data = _raw(tmp_path), tmp_path / "data"
    args = ["--lossy", "0,80", "--colors", "64", "--frame-keep", "1.0", "--no-progress"]
    giflab("run", str(raw), "--engines", "pillow-webp", *args, data_dir=data)
    rows = _rows(data / "giflab.db", "compression_runs_pillow_webp")
    assert len(rows) == len(SMALL) * 2 and {r[4] for r in rows} == {"ok"}
    stats = json.loads(giflab("stats", "--json", data_dir=data).stdout)
    assert stats["renders"]["pillow-webp"] == len(SMALL) * 2


def test_failed_renders_are_kept_until_retry_failed(tmp_path):
    """A failed render is a row (never rendered again by a plain resume); ``retry_failed``
    (``giflab run --retry-failed``) renders exactly those variants again and replaces them."""
    from dagster import materialize
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from giflab_assets.compression.assets import incomplete_gifs
    from giflab_assets.definitions import ASSETS, build_resources
    from resources import EnginesResource
    from tests.fake_engines import FAKE_ANIMATELY, write_script

    flaky = "import os, sys\nif sys.argv[1:] != ['--version'] and os.path.exists(%r):\n"
    flaky += "    sys.exit('fake engine: timed out')\n"
    broken = tmp_path / "engine-is-broken"
    broken.touch()
    (tmp_path / "bin").mkdir()
    binary = write_script(tmp_path / "bin", "animately", flaky % str(broken) + FAKE_ANIMATELY)
    settings, instance, keys = _registered(tmp_path)
    table = "compression_runs_animately_standard"

    def sweep(retry_failed: bool) -> list[tuple]:
        engines = EnginesResource(
            engines=["animately-standard"],
            binaries={"animately": str(binary)},
            lossy=[0, 40],
            colors=[64],
            frame_keep=[1.0],
            retry_failed=retry_failed,
        )
        result = materialize(
            ASSETS,
            instance=instance,
            resources=build_resources(settings.data_dir, engines, workers=1),
            selection=["gif_metadata", table],
            tags={
                ASSET_PARTITION_RANGE_START_TAG: keys[0],
                ASSET_PARTITION_RANGE_END_TAG: keys[-1],
            },
        )
        assert result.success
        return _rows(settings.db_path, table)

    failed = sweep(retry_failed=False)
    assert [r[4] for r in failed] == ["failed"] * 2 * len(SMALL)
    matrix = EnginesResource(lossy=[0, 40], colors=[64], frame_keep=[1.0]).matrix()
    assert incomplete_gifs(settings.db_path, "animately-standard", keys, matrix) == set()
    assert incomplete_gifs(settings.db_path, "animately-standard", keys, matrix, True) == set(keys)

    broken.unlink()  # the engine works again
    assert sweep(retry_failed=False) == failed  # a plain resume keeps the failures
    retried = sweep(retry_failed=True)
    assert [r[:4] for r in retried] == [r[:4] for r in failed]  # same variants, one row each
    assert {r[4] for r in retried} == {"ok"}


def test_an_interrupted_sweep_saves_its_finished_gifs_and_a_resume_renders_nothing_for_them(
    tmp_path, monkeypatch
):
    """Ctrl-C after the first GIF's sweep: its rows are stored but its partition is not marked
    materialised; the next run plans it again and renders only the GIF that was not done."""
    from dagster import AssetKey

    import giflab_assets.compression.assets as compression
    from giflab.parallel import STOP
    from resources import EnginesResource

    settings, instance, keys = _registered(tmp_path)
    table = "compression_runs_gifsicle"
    engines = EnginesResource(engines=["gifsicle"], lossy=[0, 80], colors=[64], frame_keep=[1.0])
    swept: list[str] = []
    real = compression.sweep_gif

    def sweep(stop_after_first: bool) -> bool:
        def sweep_gif(task):  # inline (one worker), so the test sees every task
            swept.append(task.sha256)
            rows = real(task)
            if stop_after_first:
                STOP.set()  # what the CLI's Ctrl-C handler does
            return rows

        monkeypatch.setattr(compression, "sweep_gif", sweep_gif)
        try:
            return _sweep_range(settings, instance, engines, keys)
        finally:
            STOP.clear()

    assert not sweep(stop_after_first=True)
    assert swept == keys[:1]  # the second GIF never started
    first = _rows(settings.db_path, table)
    assert first == [(keys[0], lossy, 64, 1.0, "ok") for lossy in (0, 80)]
    assert instance.get_materialized_partitions(AssetKey(table)) == set()

    swept.clear()
    assert sweep(stop_after_first=False)
    assert swept == keys[1:]  # nothing rendered again for the finished GIF
    rows = _rows(settings.db_path, table)
    assert rows == sorted(first + [(keys[1], lossy, 64, 1.0, "ok") for lossy in (0, 80)])
    assert instance.get_materialized_partitions(AssetKey(table)) == set(keys)


def test_each_gifs_renders_are_stored_as_its_sweep_finishes(tmp_path, monkeypatch):
    """A GIF's rows reach the database when its sweep ends, not when the step does: a SIGKILL
    or a failing GIF later in the batch loses no finished work (the partition stays
    unmaterialised, and the next run renders nothing more for it)."""
    from dagster import AssetKey

    import giflab_assets.compression.assets as compression
    from giflab.ingest import sha256_file
    from giflab_assets.runner import step_failures
    from resources import EnginesResource

    settings, instance, keys = _registered(tmp_path)
    table = "compression_runs_gifsicle"
    engines = EnginesResource(engines=["gifsicle"], lossy=[0, 80], colors=[64], frame_keep=[1.0])
    real = compression.sweep_gif
    seen_before_second: list = []

    def sweep_gif(task):
        if task.sha256 == keys[1]:  # what a kill at this point would leave behind
            seen_before_second.extend(_rows(settings.db_path, table))
            raise OSError("disk gone")
        return real(task)

    monkeypatch.setattr(compression, "sweep_gif", sweep_gif)
    result = _sweep_range(settings, instance, engines, keys, result=True)
    assert not result.success
    source = next(p for p in (tmp_path / "raw").iterdir() if sha256_file(p) == keys[1])
    # what `giflab run` prints for the failed run: the step and the reason, no stack trace
    assert step_failures(result) == [f"compression_runs: {source}: gifsicle: disk gone"]
    finished = [(keys[0], lossy, 64, 1.0, "ok") for lossy in (0, 80)]
    assert seen_before_second == finished
    assert _rows(settings.db_path, table) == finished
    assert instance.get_materialized_partitions(AssetKey(table)) == set()


def _sweep_range(settings, instance, engines, keys, result=False, **resource_options):
    """Materialise the gifsicle sweep over ``keys`` as one range run (workers=1, inline, so a
    patched ``sweep_gif`` is seen); whether the run succeeded (its result if ``result``)."""
    from dagster import materialize
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from giflab_assets.definitions import ASSETS, build_resources

    resources = build_resources(settings.data_dir, engines, workers=1, **resource_options)
    tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    run = materialize(
        ASSETS,
        instance=instance,
        resources=resources,
        selection=["compression_runs_gifsicle"],
        tags=tags,
        raise_on_error=False,
    )
    return run if result else run.success


def test_biggest_sweeps_start_first():
    """Longest-processing-time order: pixels x variants, largest first, ties in given order."""
    from giflab.compression import SweepTask, longest_first
    from giflab.engines import EngineConfig, Variant

    def task(sha: str, n: int) -> SweepTask:
        return SweepTask(
            sha, f"{sha}.gif", "gifsicle", EngineConfig(), (Variant(0, 256, 1.0),) * n, ""
        )

    tasks = [task("a", 2), task("b", 1), task("c", 2), task("unknown", 9), task("d", 1)]
    pixels = {"a": 100, "b": 1000, "c": 100, "d": 10}
    order = [(t.sha256, len(t.variants)) for t in longest_first(tasks, pixels)]
    assert order == [("b", 1), ("a", 2), ("c", 2), ("d", 1), ("unknown", 9)]


def test_engines_share_one_step_and_an_unavailable_one_fails_only_itself(tmp_path):
    """One range run of three engines is one step over one pool; the available engines'
    partitions are materialised with their rows, the missing binary fails the step by name."""
    from dagster import AssetKey, DagsterEventType, materialize
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from giflab_assets.definitions import ASSETS, build_resources
    from resources import EnginesResource

    settings, instance, keys = _registered(tmp_path)
    engines = EnginesResource(
        engines=["gifsicle", "ffmpeg", "animately-standard"],
        binaries={"animately": str(tmp_path / "no-such-animately")},
        lossy=[0, 60],
        colors=[64],
        frame_keep=[1.0],
    )
    tables = [
        "compression_runs_gifsicle",
        "compression_runs_ffmpeg",
        "compression_runs_animately_standard",
    ]
    result = materialize(
        ASSETS,
        instance=instance,
        resources=build_resources(settings.data_dir, engines, workers=2),
        selection=["gif_metadata", *tables],
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
        raise_on_error=False,
    )
    assert not result.success
    steps = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_START}
    assert steps == {"gif_metadata", "compression_runs"}
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert "animately-standard unavailable" in failure.event_specific_data.error.message
    for table in tables[:2]:
        assert instance.get_materialized_partitions(AssetKey(table)) == set(keys)
        rows = _rows(settings.db_path, table)
        assert [r[1:] for r in rows] == [(0, 64, 1.0, "ok"), (60, 64, 1.0, "ok")] * len(SMALL)
    assert instance.get_materialized_partitions(AssetKey(tables[2])) == set()
