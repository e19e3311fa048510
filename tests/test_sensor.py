"""The raw-folder sensor adds only new partitions and asks for batch runs covering exactly them."""

import shutil

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
from giflab_assets.ingest.sensors import raw_gifs_sensor
from giflab_assets.partitions import gifs_partitions
from resources import GifLabResource
from tests.conftest import bad_corpus_files, good_corpus_gifs


def _tick(instance, data_dir):
    ctx = build_sensor_context(
        instance=instance, resources={"giflab": GifLabResource(data_dir=str(data_dir))}
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

        assert isinstance(_tick(instance, tmp_path / "data"), SkipReason)

        for p in second:
            shutil.copy(p, raw / p.name)
        shutil.copy(first[0], raw / "same bytes, new name.gif")
        result = _tick(instance, tmp_path / "data")
        new = {sha256_file(p) for p in second}
        assert sorted(_keys_requested(instance, result)) == sorted(new)
        assert set(instance.get_dynamic_partitions("gifs")) == expected | new
