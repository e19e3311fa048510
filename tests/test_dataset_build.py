"""The training table from a real database: join, exclusions, order, validation and versions."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import subprocess

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from giflab.dataset import (
    DatasetError,
    RecordValidationError,
    build_training_table,
    code_version,
    dataset_version,
    load_tables,
    table_summary,
    validate_frame,
)
from giflab.dataset.columns import ORIG_COLUMNS, RECORD_COLUMNS, SORT_KEY, TABLE_COLUMNS
from giflab.dataset.validate import column_values
from giflab.features import FEATURE_NAMES, FEATURES_VERSION
from giflab.schemas import GifFeaturesV1, MetricRecordV1
from tests.conftest import REPO
from tests.dataset_db import NESTED_REL, dataset_db


@pytest.fixture(scope="module")
def db():
    return dataset_db()


@pytest.fixture
def tables(db):
    return load_tables(db)


@pytest.fixture(scope="module")
def table(db):
    return build_training_table(*load_tables(db))


def _sql(db, query: str) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(query).fetchall()


def test_one_row_per_ok_render_joined_with_its_gifs_metadata_and_features(db, table):
    ok = _sql(db, "SELECT COUNT(*) FROM compression_runs_gifsicle WHERE status = 'ok'")[0][0]
    assert len(table) == ok > 0
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table[list(SORT_KEY)].equals(
        table[list(SORT_KEY)].sort_values(list(SORT_KEY), ignore_index=True)
    )
    meta_cols = ", ".join(["gif_sha", "orig_filename", *ORIG_COLUMNS])
    for sha, name, *values in _sql(db, f"SELECT {meta_cols} FROM gif_metadata"):
        rows = table[table["gif_sha"] == sha]
        assert set(rows["orig_filename"]) == {name}
        for source, column in zip(ORIG_COLUMNS.values(), values, strict=True):
            expected = None if column is None else column
            assert {None if pd.isna(v) else v for v in rows[source]} == {expected}, source
    feature_cols = ", ".join(["gif_sha", *FEATURE_NAMES])
    for sha, *values in _sql(db, f"SELECT {feature_cols} FROM gif_features"):
        row = table[table["gif_sha"] == sha].iloc[0]
        got = [None if pd.isna(row[n]) else row[n] for n in FEATURE_NAMES]
        assert got == values
    run = _sql(
        db,
        "SELECT gif_sha, kilobytes, ssim_mean, render_ms FROM compression_runs_gifsicle"
        " WHERE status = 'ok' AND lossy = 80 AND colors = 16 AND frame_keep = 0.5 LIMIT 1",
    )[0]
    row = table.query("gif_sha == @run[0] and lossy == 80 and colors == 16 and frame_keep == 0.5")
    assert row[["kilobytes", "ssim_mean", "render_ms"]].iloc[0].tolist() == list(run[1:])


def test_every_row_passes_metric_record_row_by_row(table):
    # The table is validated column-wise; the row model itself must agree on every row.
    records = table[list(RECORD_COLUMNS)]
    columns = {n: column_values(records[n]) for n in RECORD_COLUMNS}
    for i in range(len(records)):
        MetricRecordV1.model_validate({n: columns[n][i] for n in RECORD_COLUMNS})


def test_source_fields_from_the_registered_paths(table):
    nested = table[table["source_platform"] != "unknown"].drop_duplicates("gif_sha")
    assert len(nested) == 1
    row = nested.iloc[0]
    platform, *tags = NESTED_REL.split("/")
    assert row["source_platform"] == platform
    assert json.loads(row["tags"]) == sorted(tags)
    meta = json.loads(row["source_metadata"])
    assert meta["rel_paths"] == [f"{NESTED_REL}/{row['orig_filename']}"]
    assert meta["orig_filenames"] == [row["orig_filename"]]
    flat = table[table["source_platform"] == "unknown"]
    assert set(flat["tags"]) == {"[]"}


def test_failed_renders_and_gifs_without_metadata_or_features_are_excluded_and_counted(tables):
    metadata, features, runs = tables
    shas = sorted(metadata["gif_sha"])
    no_features, no_metadata = shas[1], shas[2]
    table = build_training_table(
        metadata[metadata["gif_sha"] != no_metadata],
        features[features["gif_sha"] != no_features],
        runs,
    )
    assert not {no_features, no_metadata} & set(table["gif_sha"])
    ok = runs["gifsicle"][runs["gifsicle"]["status"] == "ok"]
    n_ok = ok["gif_sha"].value_counts()
    by_reason = {e["reason"]: e for e in table.attrs["exclusions"]}
    assert by_reason["GIF has no gif_features row"]["rows"] == n_ok[no_features]
    assert by_reason["GIF has no gif_metadata row"]["rows"] == n_ok[no_metadata]
    assert by_reason["render failed (status is not 'ok')"]["rows"] == 1
    assert all(e["gifs"] == 1 and e["engine"] == "gifsicle" for e in by_reason.values())
    assert len(table) == len(ok) - n_ok[no_features] - n_ok[no_metadata]
    summary = table_summary(table)
    assert summary["excluded_rows"] == n_ok[no_features] + n_ok[no_metadata] + 1
    assert summary["gifs"] == len(shas) - 2
    assert summary["derived_gifs"] == 0


def test_gifs_whose_features_are_of_an_older_version_are_excluded(tables):
    """Rows computed by an older FEATURES_VERSION (NULL: version 1, before it was stored) hold
    other values than this code computes: their GIFs stay out until `giflab run` redoes them."""
    metadata, features, runs = tables
    shas = sorted(features["gif_sha"])
    features = features.copy()
    features["features_version"] = features["features_version"].astype("Int64")
    features.loc[features["gif_sha"] == shas[0], "features_version"] = pd.NA
    features.loc[features["gif_sha"] == shas[1], "features_version"] = FEATURES_VERSION - 1
    table = build_training_table(metadata, features, runs)
    assert set(table["gif_sha"]) == set(shas[2:]) & set(runs["gifsicle"]["gif_sha"])
    [older] = [e for e in table.attrs["exclusions"] if "older than FEATURES_VERSION" in e["reason"]]
    ok = runs["gifsicle"][runs["gifsicle"]["status"] == "ok"]
    assert older["gifs"] == 2 and older["rows"] == ok["gif_sha"].isin(shas[:2]).sum()
    assert "giflab run" in older["reason"]


def _raw_tables(db):
    """The tables as plain SQL reads: JSON as text, booleans as 0/1, no dtype fixes."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        read = lambda t: pd.read_sql_query(f"SELECT * FROM {t}", conn)  # noqa: E731
        return (
            read("gif_metadata"),
            read("gif_features"),
            {"gifsicle": read("compression_runs_gifsicle")},
        )


def _shuffled(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = list(df.columns)
    rng.shuffle(columns)
    return df.sample(frac=1, random_state=seed)[columns]


def test_same_table_and_version_whatever_the_input_order_or_form(db, table):
    metadata, features, runs = _raw_tables(db)
    for seed in (1, 2):
        other = build_training_table(
            _shuffled(metadata, seed),
            _shuffled(features, seed),
            {k: _shuffled(v, seed) for k, v in runs.items()},
        )
        pd.testing.assert_frame_equal(other, table)
        assert other.attrs["dataset_version"] == table.attrs["dataset_version"]
    assert dataset_version(table.sample(frac=1, random_state=3)) == table.attrs["dataset_version"]


def _bump_first_kilobytes(t):
    t.loc[0, "kilobytes"] += 0.001


def _bump_a_feature(t):
    t.loc[t["gif_sha"] == t.loc[0, "gif_sha"], "edge_density"] += 1e-9


def _rename(t):
    t.loc[t["gif_sha"] == t.loc[0, "gif_sha"], "orig_filename"] = "renamed.gif"


def _null_a_metric(t):
    t.loc[3, "ssimulacra2"] = np.nan


@pytest.mark.parametrize(
    "change", [_bump_first_kilobytes, _bump_a_feature, _rename, _null_a_metric]
)
def test_dataset_version_changes_when_a_value_changes(table, change):
    changed = table.copy()
    change(changed)
    assert dataset_version(changed) != table.attrs["dataset_version"]


def test_dataset_version_changes_when_a_row_goes(table):
    assert dataset_version(table.iloc[1:]) != table.attrs["dataset_version"]


def test_versions_are_attrs_and_columns(table):
    assert table.attrs["dataset_version"] == dataset_version(table)
    assert re.fullmatch(r"[0-9a-f]{64}", table.attrs["dataset_version"])
    for name in ("dataset_version", "code_version", "schema_version"):
        assert set(table[name]) == {table.attrs[name]}
    assert table.attrs["schema_version"] == MetricRecordV1.SCHEMA_VERSION


def test_code_version_is_package_version_and_git_revision():
    version = code_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+(\+[0-9a-f]{4,40}(\+dirty)?)?", version)
    git = shutil.which("git")
    if git is None:
        assert "+" not in version
        return
    head = subprocess.run(
        [git, "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if head.returncode == 0:
        assert version.split("+")[1] == head.stdout.strip()


def _bad(column, value):
    def change(records: pd.DataFrame) -> None:
        records[column] = records[column].astype(object)
        records.loc[2, column] = value

    change.__name__ = f"{column}={value!r}"
    return change


@pytest.mark.parametrize(
    "change",
    [
        _bad("kilobytes", 0.0),
        _bad("kilobytes", None),
        _bad("lossy", -1),
        _bad("colors", 1),
        _bad("split", "holdout"),
        _bad("entropy", 9.5),
        _bad("frame_similarity", -1.5),
        _bad("orig_has_transparency", "maybe"),
        _bad("render_frames", None),
        _bad("gif_sha", "not-a-sha"),
    ],
    ids=lambda c: c.__name__,
)
def test_metric_record_rejects_a_bad_row_with_a_clear_error(table, change):
    records = table[list(RECORD_COLUMNS)].copy()
    change(records)
    column = change.__name__.split("=")[0]
    with pytest.raises(RecordValidationError) as info:
        validate_frame(records, MetricRecordV1)
    message = str(info.value)
    assert info.value.n_bad == 1
    assert message.startswith("MetricRecordV1 rejected 1 of")
    assert column in message
    if column != "gif_sha":
        assert f"gif_sha={records.loc[2, 'gif_sha'][:12]}" in message
    assert f"lossy={records.loc[2, 'lossy']}" in message
    # The row model alone says the same.
    row = {n: column_values(records[n])[2] for n in RECORD_COLUMNS}
    with pytest.raises(ValidationError, match=column):
        MetricRecordV1.model_validate(row)


def test_metric_record_forbids_extra_and_missing_columns(table):
    records = table[list(RECORD_COLUMNS)]
    row = {n: column_values(records[n])[0] for n in RECORD_COLUMNS}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MetricRecordV1.model_validate(row | {"predicted_kb": 1.0})
    with pytest.raises(RecordValidationError, match=r"unexpected columns \['predicted_kb'\]"):
        validate_frame(records.assign(predicted_kb=1.0), MetricRecordV1)
    with pytest.raises(RecordValidationError, match=r"missing columns \['psnr'\]"):
        validate_frame(records.drop(columns="psnr"), MetricRecordV1)


def test_build_rejects_an_ok_render_without_a_size(tables):
    metadata, features, runs = tables
    broken = runs["gifsicle"].copy()
    first_ok = broken.index[broken["status"] == "ok"][0]
    broken.loc[first_ok, "kilobytes"] = None
    with pytest.raises(RecordValidationError, match="kilobytes"):
        build_training_table(metadata, features, {"gifsicle": broken})


def test_a_render_listed_twice_is_an_error(tables):
    metadata, features, runs = tables
    twice = {"gifsicle": runs["gifsicle"], "gifsicle_copy": runs["gifsicle"]}
    with pytest.raises(DatasetError, match="render listed twice"):
        build_training_table(metadata, features, twice)


def test_feature_bounds_match_the_features_schema():
    for name in FEATURE_NAMES:
        ours, theirs = MetricRecordV1.model_fields[name], GifFeaturesV1.model_fields[name]
        assert (ours.annotation, ours.metadata) == (theirs.annotation, theirs.metadata), name


def test_load_tables_reads_without_writing(db):
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    metadata, features, runs = load_tables(db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert list(runs) == ["gifsicle"]
    assert isinstance(metadata.loc[0, "rel_paths"], list)  # JSON decoded, as the IO manager does
    assert len(features) == len(metadata)


def test_empty_inputs_give_an_empty_table_with_every_column():
    table = build_training_table(pd.DataFrame(), pd.DataFrame(), {})
    assert tuple(table.columns) == TABLE_COLUMNS
    assert len(table) == 0
    assert table.attrs["exclusions"] == []
