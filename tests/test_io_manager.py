"""The SQLite IO manager: round trips, idempotent partition rewrites, subset and full loads."""

import sqlite3
import threading

import pandas as pd
import pytest
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DagsterInstance,
    DynamicPartitionsDefinition,
    asset,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from giflab.db import connect
from giflab.schemas import GifMetadataV1
from io_managers import SqliteIOManager
from io_managers.sqlite_io_manager import read_rows, to_records, write_rows


def _row(i: int, **kw) -> GifMetadataV1:
    base = dict(
        gif_sha=f"{i:064x}",
        orig_filename=f"g{i}.gif",
        orig_filenames=[f"g{i}.gif", f"copy {i}.gif"],
        rel_paths=[f"a/g{i}.gif"],
        width=10 + i,
        height=5,
        n_frames=2,
        duration_ms=200,
        raw_duration_ms=0,
        fps=10.0,
        n_colors=3,
        loop_count=None if i % 2 else 0,
        has_transparency=bool(i % 2),
        file_kb=1.5,
    )
    return GifMetadataV1(**(base | kw))


def test_round_trip_types_and_schema_version(tmp_path):
    db = tmp_path / "t.db"
    rows = [_row(i) for i in range(3)]
    write_rows(db, "gif_metadata", rows, "gif_sha", [r.gif_sha for r in rows])
    df = read_rows(db, "gif_metadata").sort_values("gif_sha").reset_index(drop=True)
    back = [
        GifMetadataV1(**{k: v for k, v in r.items() if k != "schema_version"})
        for r in to_records(df)
    ]
    assert [r.model_dump() for r in back] == [r.model_dump() for r in rows]
    assert set(df["schema_version"]) == {GifMetadataV1.SCHEMA_VERSION}


def test_rewriting_a_partition_is_idempotent_and_touches_only_it(tmp_path):
    db = tmp_path / "t.db"
    rows = [_row(i) for i in range(4)]
    write_rows(db, "m", rows, "gif_sha", [r.gif_sha for r in rows])
    for _ in range(2):
        write_rows(db, "m", [_row(1, width=99)], "gif_sha", [_row(1).gif_sha])
    df = read_rows(db, "m")
    assert len(df) == 4
    assert df.set_index("gif_sha").loc[_row(1).gif_sha, "width"] == 99
    assert df.set_index("gif_sha").loc[_row(2).gif_sha, "width"] == 12


def test_rows_outside_the_partitions_are_refused(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        write_rows(tmp_path / "t.db", "m", [_row(1)], "gif_sha", [_row(2).gif_sha])


def test_load_subset_of_many_partitions(tmp_path):
    db = tmp_path / "t.db"
    rows = [_row(i) for i in range(2500)]  # beyond SQLite's bound-parameter limit
    write_rows(db, "m", rows, "gif_sha", [r.gif_sha for r in rows])
    keys = [r.gif_sha for r in rows[::2]]
    assert sorted(read_rows(db, "m", "gif_sha", keys)["gif_sha"]) == sorted(keys)


def test_connections_opened_at_once_on_a_new_database_never_see_it_locked(tmp_path):
    # Workers, the sensor and the CLI may all open a database file that does not exist yet;
    # the first to switch it to WAL must not make the others fail (CI saw one in ~100 runs of
    # the test below, and 6 threads opening 300 new files saw 17).
    errors = []

    def opener(path, barrier):
        barrier.wait()
        try:
            connect(path).close()
        except sqlite3.OperationalError as e:  # pragma: no cover - the failure we guard against
            errors.append(e)

    for n in range(200):
        barrier = threading.Barrier(6)
        threads = [
            threading.Thread(target=opener, args=(tmp_path / f"new{n}.db", barrier))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_concurrent_writers_never_see_database_is_locked(tmp_path):
    db = tmp_path / "t.db"
    errors = []

    def writer(offset):
        try:
            for i in range(offset, offset + 30):
                write_rows(db, "m", [_row(i)], "gif_sha", [_row(i).gif_sha])
        except sqlite3.OperationalError as e:  # pragma: no cover - the failure we guard against
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(read_rows(db, "m")) == 120


parts = DynamicPartitionsDefinition(name="things")


@asset(
    partitions_def=parts,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="io",
    metadata={"partition_expr": "gif_sha"},
)
def rows_asset(context: AssetExecutionContext) -> list[GifMetadataV1]:
    return [_row(int(k, 16)) for k in context.partition_keys]


@asset(io_manager_key="io")
def total_width(rows_asset: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"gifs": [len(rows_asset)], "width": [int(rows_asset["width"].sum())]})


def test_through_dagster_range_run_then_unpartitioned_downstream(tmp_path):
    io = SqliteIOManager(db_path=str(tmp_path / "d.db"))
    keys = [f"{i:064x}" for i in range(5)]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("things", keys)
        tags = {ASSET_PARTITION_RANGE_START_TAG: keys[1], ASSET_PARTITION_RANGE_END_TAG: keys[3]}
        assert materialize([rows_asset], instance=instance, resources={"io": io}, tags=tags).success
        assert materialize([rows_asset], instance=instance, resources={"io": io}, tags=tags).success
        assert sorted(instance.get_materialized_partitions(rows_asset.key)) == keys[1:4]
        tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[4]}
        assert materialize([rows_asset], instance=instance, resources={"io": io}, tags=tags).success
        result = materialize(
            [rows_asset, total_width],
            instance=instance,
            resources={"io": io},
            selection=[total_width],
        )
        assert result.success
    out = read_rows(tmp_path / "d.db", "total_width")
    assert out.to_dict("records") == [{"gifs": 5, "width": sum(10 + i for i in range(5))}]


def test_read_only_connection_works_on_any_path_and_cannot_write(tmp_path):
    from giflab.db import connect, connect_readonly

    db = tmp_path / "odd ?name#1" / "g.db"  # a plain "file:" URI would cut it at ? and #
    conn = connect(db)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (7)")
    conn.close()
    ro = connect_readonly(db)
    try:
        assert ro.execute("SELECT x FROM t").fetchall() == [(7,)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro.execute("INSERT INTO t VALUES (8)")
    finally:
        ro.close()
