"""The raw-folder sensor adds only new partitions and asks for batch runs covering exactly them."""

import shutil
import sqlite3

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    PartitionKeyRange,
    SensorResult,
    SkipReason,
    build_sensor_context,
    partition_loading_context,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from giflab.ingest import sha256_file
from giflab_assets.compression.assets import asset_name
from giflab_assets.ingest.sensors import raw_gifs_sensor
from giflab_assets.partitions import gifs_partitions
from resources import EnginesResource, GifLabResource
from tests.conftest import bad_corpus_files, good_corpus_gifs


def _tick(instance, data_dir):
    ctx = build_sensor_context(
        instance=instance,
        resources={"giflab": GifLabResource(data_dir=str(data_dir)), "engines": EnginesResource()},
    )
    result = raw_gifs_sensor(ctx)
    if isinstance(result, SensorResult):  # what the daemon does with the result
        for req in result.dynamic_partitions_requests or []:
            assert isinstance(req, AddDynamicPartitionsRequest)
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return result


def _keys_requested(instance, result):
    keys = []
    for run in result.run_requests:
        rng = PartitionKeyRange(
            run.tags[ASSET_PARTITION_RANGE_START_TAG], run.tags[ASSET_PARTITION_RANGE_END_TAG]
        )
        with partition_loading_context(dynamic_partitions_store=instance):
            keys += gifs_partitions.get_partition_keys_in_range(rng)
    return keys


def test_sensor_adds_only_new_keys_and_requests_runs_for_them(tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    first, second = good_corpus_gifs()[:3], good_corpus_gifs()[3:5]
    for p in first:
        shutil.copy(p, raw / p.name)
    shutil.copy(bad_corpus_files()[0], raw / "broken.gif")
    with DagsterInstance.ephemeral() as instance:
        result = _tick(instance, tmp_path / "data")
        expected = {sha256_file(p) for p in first}
        assert set(instance.get_dynamic_partitions("gifs")) == expected
        assert sorted(_keys_requested(instance, result)) == sorted(expected)
        assert (tmp_path / "data" / "bad_gifs" / "broken.gif.json").exists()
        # Each run does everything a new GIF needs, with the engines that are installed.
        selected = {k.to_user_string() for r in result.run_requests for k in r.asset_selection}
        engines = EnginesResource()
        assert selected == {"gif_metadata", "gif_features"} | {
            asset_name(e) for e in engines.engines if engines.status(e).ok
        }
        assert "compression_runs_gifsicle" in selected
        assert "compression_runs_animately_standard" not in selected  # no binary here

        assert isinstance(_tick(instance, tmp_path / "data"), SkipReason)

        for p in second:
            shutil.copy(p, raw / p.name)
        shutil.copy(first[0], raw / "same bytes, new name.gif")
        result = _tick(instance, tmp_path / "data")
        new = {sha256_file(p) for p in second}
        assert sorted(_keys_requested(instance, result)) == sorted(new)
        assert set(instance.get_dynamic_partitions("gifs")) == expected | new


def test_a_sensor_run_request_materialises_everything_a_new_gif_needs(tmp_path):
    """Execute the sensor's run request as the daemon would (its selection and partition-range
    tags): metadata, features and the engine's sweep rows all land for the new GIFs."""
    from dagster import materialize

    from giflab_assets.definitions import ASSETS, build_resources

    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    gifs = good_corpus_gifs()[:2]
    for p in gifs:
        shutil.copy(p, data / "raw" / p.name)
    engines = EnginesResource(engines=["gifsicle"], lossy=[0, 80], colors=[256], frame_keep=[1.0])
    with DagsterInstance.ephemeral() as instance:
        ctx = build_sensor_context(
            instance=instance,
            resources={"giflab": GifLabResource(data_dir=str(data)), "engines": engines},
        )
        result = raw_gifs_sensor(ctx)
        for req in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        (request,) = result.run_requests
        run = materialize(
            ASSETS,
            instance=instance,
            resources=build_resources(data, engines=engines, workers=1),
            selection=request.asset_selection,
            tags=request.tags,
        )
        assert run.success
    with sqlite3.connect(data / "giflab.db") as conn:
        shas = {sha256_file(p) for p in gifs}
        for table in ("gif_metadata", "gif_features"):
            assert {s for (s,) in conn.execute(f"SELECT gif_sha FROM {table}")} == shas
        rows = conn.execute("SELECT gif_sha, lossy FROM compression_runs_gifsicle").fetchall()
        assert sorted(rows) == sorted((s, lossy) for s in shas for lossy in (0, 80))
