"""Export: the seed's columns first and in order, then the rest; CSV and Parquet read back equal."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from giflab.dataset import (
    build_training_table,
    dataset_version,
    export_dataset,
    export_schema,
    load_tables,
    read_export,
)
from giflab.dataset.columns import EXPORT_ALIASES, EXPORT_LEAD_COLUMNS, TABLE_COLUMNS
from giflab.dataset.export import export_frame
from tests.dataset_db import dataset_db

SEED_COLUMNS = [
    "gif_sha",
    "orig_filename",
    "engine",
    "lossy",
    "frame_keep_ratio",
    "color_keep_count",
    "kilobytes",
    "ssim",
    "render_ms",
    "orig_kilobytes",
    "orig_width",
    "orig_height",
    "orig_frames",
    "orig_fps",
    "orig_n_colors",
    "entropy",
    "source_platform",
    "source_metadata",
    "tags",
    "timestamp",
]
STAMP = "2026-01-02T03:04:05+00:00"


@pytest.fixture(scope="module")
def table():
    return build_training_table(*load_tables(dataset_db()))


@pytest.fixture(scope="module")
def exported(table, tmp_path_factory):
    return export_dataset(table, tmp_path_factory.mktemp("export"), timestamp=STAMP)


def test_seed_columns_first_in_order_then_every_table_column(exported):
    assert list(EXPORT_LEAD_COLUMNS) == SEED_COLUMNS
    with open(exported.csv, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header[: len(SEED_COLUMNS)] == SEED_COLUMNS
    assert export_schema().names == header == list(exported.columns)
    assert pq.read_schema(exported.parquet).names == header
    rest = header[len(SEED_COLUMNS) :]
    assert set(rest) | set(SEED_COLUMNS) >= set(TABLE_COLUMNS)
    assert len(header) == len(set(header))
    assert rest[-3:] == ["schema_version", "dataset_version", "code_version"]


def test_csv_and_parquet_read_back_equal_and_keep_the_dataset_version(table, exported):
    from_csv, from_parquet = read_export(exported.csv), read_export(exported.parquet)
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    pd.testing.assert_frame_equal(from_parquet, export_frame(table, STAMP))
    assert len(from_csv) == exported.rows == len(table)
    # Every record column survives both formats bit for bit.
    assert (
        dataset_version(from_csv) == dataset_version(from_parquet) == table.attrs["dataset_version"]
    )
    meta = json.loads(pq.read_schema(exported.parquet).metadata[b"giflab"])
    assert meta["dataset_version"] == table.attrs["dataset_version"]
    assert meta["code_version"] == table.attrs["code_version"]


def test_seed_columns_carry_the_table_values(table, exported):
    out = read_export(exported.parquet)
    for seed, column in EXPORT_ALIASES.items():
        assert out[seed].tolist() == table[column].tolist(), seed
    assert set(out["timestamp"]) == {STAMP}
    assert out["source_metadata"].map(json.loads).map(type).eq(dict).all()
    assert out["tags"].map(json.loads).map(type).eq(list).all()
    assert out["orig_filename"].tolist() == table["orig_filename"].tolist()


def test_default_timestamp_is_the_export_time_in_utc(table, tmp_path):
    written = export_dataset(table.iloc[:3], tmp_path)
    stamps = set(read_export(written.csv)["timestamp"])
    assert len(stamps) == 1
    stamp = pd.Timestamp(stamps.pop())
    assert stamp.tzinfo is not None and stamp.utcoffset().total_seconds() == 0
    assert abs((pd.Timestamp.now(tz="UTC") - stamp).total_seconds()) < 600


def test_re_export_replaces_the_files(table, tmp_path):
    first = export_dataset(table, tmp_path, timestamp=STAMP)
    second = export_dataset(table.iloc[:5], tmp_path, timestamp=STAMP)
    assert (first.csv, first.parquet) == (second.csv, second.parquet)
    assert len(read_export(second.csv)) == len(read_export(second.parquet)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "giflab_dataset.csv",
        "giflab_dataset.parquet",
    ]
