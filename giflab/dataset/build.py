"""The training table: one row per successful render, joined with its GIF's metadata and features.

``build_training_table`` takes the asset tables as the SQLite IO manager loads them (or as
``load_tables`` reads them) and returns a validated, sorted, versioned DataFrame. Renders that
cannot become rows — failed, of another schema version, of a GIF without metadata or without
features — are left out and counted in ``table.attrs["exclusions"]``. See docs/dataset.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from giflab.dataset.columns import (
    ORIG_COLUMNS,
    RECORD_COLUMNS,
    RUN_COLUMNS,
    SORT_KEY,
    SOURCE_COLUMNS,
    SPLITS,
    TABLE_COLUMNS,
    VARIANT_COLUMNS,
)
from giflab.dataset.splits import group_of, is_derived, split_map
from giflab.dataset.validate import (
    DatasetError,
    column_values,
    field_kind,
    is_nullable,
    validate_frame,
)
from giflab.dataset.versions import code_version, dataset_version
from giflab.features import FEATURE_NAMES, FEATURES_VERSION
from giflab.schemas import CompressionRunV1, GifFeaturesV1, GifMetadataV1, MetricRecordV1

UNKNOWN_PLATFORM = "unknown"


def _as_list(value: Any) -> list[str]:
    """A JSON list column's value, decoded (IO manager) or JSON text (raw SQLite)."""
    if value is None or (not isinstance(value, list | str) and pd.isna(value)):
        return []
    return list(json.loads(value) if isinstance(value, str) else value)


def source_fields(rel_paths: Any, orig_filenames: Any) -> dict[str, str]:
    """``source_platform``, ``source_metadata`` and ``tags`` of one GIF, from where its files were.

    The platform is the first folder of the first nested relative path (``giphy/cats/x.gif`` →
    ``giphy``), else ``unknown``; tags are the other folder names, sorted; the metadata is the
    JSON object of the relative paths and file names.
    """
    paths = sorted(_as_list(rel_paths))
    folders = [PurePosixPath(p).parts[:-1] for p in paths]
    platform = next((f[0] for f in folders if f), UNKNOWN_PLATFORM)
    tags = sorted({part for f in folders for part in f} - {platform})
    metadata = {"orig_filenames": sorted(_as_list(orig_filenames)), "rel_paths": paths}
    return {
        "source_platform": platform,
        "source_metadata": json.dumps(metadata, ensure_ascii=False, separators=(",", ":")),
        "tags": json.dumps(tags, ensure_ascii=False, separators=(",", ":")),
    }


def _current(df: pd.DataFrame, model: type) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``df`` split into rows of ``model``'s schema version and the others."""
    if "schema_version" not in df.columns:
        return df, df.iloc[0:0]
    current = df["schema_version"].astype("Int64").eq(model.SCHEMA_VERSION).fillna(False)
    return df[current.to_numpy(dtype=bool)], df[~current.to_numpy(dtype=bool)]


def _unique_gifs(df: pd.DataFrame, table: str) -> pd.DataFrame:
    dup = df["gif_sha"].duplicated()
    if dup.any():
        raise DatasetError(f"{table}: several rows for GIF {df['gif_sha'][dup].iloc[0]}")
    return df


def _exclusion(reason: str, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per engine of the renders in ``rows`` left out for ``reason``."""
    out = []
    for engine, group in sorted(
        rows.groupby("engine", sort=True, dropna=False), key=lambda kv: str(kv[0])
    ):
        out.append(
            {
                "reason": reason,
                "engine": str(engine),
                "rows": len(group),
                "gifs": int(group["gif_sha"].nunique()),
            }
        )
    return out


def _all_runs(runs: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    wanted = ["gif_sha", *VARIANT_COLUMNS, "status", *RUN_COLUMNS, "schema_version"]
    frames = [df.reindex(columns=wanted) for _, df in sorted(runs.items()) if len(df)]
    if not frames:
        return pd.DataFrame(columns=wanted)
    return pd.concat(frames, ignore_index=True)


def _metadata(metadata_df: pd.DataFrame) -> pd.DataFrame:
    columns = ["gif_sha", "orig_filename", *ORIG_COLUMNS]
    if metadata_df.empty:
        return pd.DataFrame(
            columns=["gif_sha", "orig_filename", *ORIG_COLUMNS.values(), *SOURCE_COLUMNS]
        )
    meta, _ = _current(metadata_df, GifMetadataV1)
    meta = _unique_gifs(meta, "gif_metadata")
    source = [
        source_fields(paths, names)
        for paths, names in zip(
            meta.get("rel_paths", [None] * len(meta)),
            meta.get("orig_filenames", [None] * len(meta)),
            strict=True,
        )
    ]
    out = meta[columns].rename(columns=ORIG_COLUMNS).reset_index(drop=True)
    return pd.concat([out, pd.DataFrame(source, index=out.index)], axis=1)


def _features(features_df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The features columns of the table, and the GIFs whose row is of an older
    ``FEATURES_VERSION`` (NULL: version 1): their values are not what this code computes."""
    columns = ["gif_sha", *FEATURE_NAMES, "clip_model"]
    if features_df.empty:
        return pd.DataFrame(columns=columns), pd.Series([], dtype="str")
    feats, _ = _current(features_df, GifFeaturesV1)
    feats = _unique_gifs(feats, "gif_features")
    version = feats.get("features_version", pd.Series(pd.NA, index=feats.index))
    older = pd.to_numeric(version).fillna(1).lt(FEATURES_VERSION).to_numpy(dtype=bool)
    return feats.reindex(columns=columns), feats["gif_sha"][older]


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """Each column in the dtype of its ``MetricRecordV1`` type (nullable ints as ``Int64``)."""
    out = {}
    for name in RECORD_COLUMNS:
        kind = field_kind(MetricRecordV1, name)
        column = table[name]
        if kind == "float":
            out[name] = pd.to_numeric(column, errors="raise").astype("float64")
        elif kind == "int":
            out[name] = column.astype("Int64" if is_nullable(MetricRecordV1, name) else "int64")
        elif kind == "bool":
            out[name] = column.astype("bool")
        else:
            out[name] = pd.Series(column_values(column), index=table.index, dtype="str")
    return pd.DataFrame(out, index=table.index)


def build_training_table(
    metadata_df: pd.DataFrame,
    features_df: pd.DataFrame,
    runs: Mapping[str, pd.DataFrame],
) -> pd.DataFrame:
    """The training table of ``runs`` (``{engine: compression_runs rows}``), validated and versioned.

    Columns: ``TABLE_COLUMNS``; rows sorted by ``SORT_KEY``. ``attrs`` holds ``dataset_version``,
    ``code_version``, ``schema_version`` and ``exclusions`` (reason, engine, rows, gifs).
    Raises ``RecordValidationError`` if a row breaks ``MetricRecordV1``, ``DatasetError`` if a
    GIF has two metadata/feature rows or a render appears twice.
    """
    all_runs = _all_runs(runs)
    meta, (feats, older_feats) = _metadata(metadata_df), _features(features_df)
    exclusions: list[dict[str, Any]] = []

    runs_now, old = _current(all_runs, CompressionRunV1)
    exclusions += _exclusion(
        f"compression run not of schema_version {CompressionRunV1.SCHEMA_VERSION}", old
    )
    ok = runs_now["status"].eq("ok").to_numpy(dtype=bool)
    exclusions += _exclusion("render failed (status is not 'ok')", runs_now[~ok])
    ok_runs = runs_now[ok]
    no_meta = ~ok_runs["gif_sha"].isin(meta["gif_sha"]).to_numpy(dtype=bool)
    exclusions += _exclusion("GIF has no gif_metadata row", ok_runs[no_meta])
    no_feats = ~no_meta & ~ok_runs["gif_sha"].isin(feats["gif_sha"]).to_numpy(dtype=bool)
    exclusions += _exclusion("GIF has no gif_features row", ok_runs[no_feats])
    older = ~no_meta & ~no_feats & ok_runs["gif_sha"].isin(older_feats).to_numpy(dtype=bool)
    exclusions += _exclusion(
        f"GIF's features are older than FEATURES_VERSION {FEATURES_VERSION} "
        "(`giflab run` recomputes them)",
        ok_runs[older],
    )

    kept = ok_runs[~no_meta & ~no_feats & ~older].drop(columns=["status", "schema_version"])
    table = kept.merge(meta, on="gif_sha", how="inner").merge(feats, on="gif_sha", how="inner")
    group = group_of(table)
    table["split"] = group.map(split_map(group))
    table = table[list(RECORD_COLUMNS)].sort_values(
        list(SORT_KEY), kind="mergesort", ignore_index=True
    )
    dup = table.duplicated(list(SORT_KEY))
    if dup.any():
        first = table.loc[dup, list(SORT_KEY)].iloc[0].to_dict()
        raise DatasetError(f"render listed twice in the compression runs: {first}")
    validate_frame(table, MetricRecordV1)
    table = _typed(table)

    versions = {
        "schema_version": MetricRecordV1.SCHEMA_VERSION,
        "dataset_version": dataset_version(table),
        "code_version": code_version(),
    }
    for name, value in versions.items():
        table[name] = pd.Series([value] * len(table), index=table.index, dtype=type(value))
    table = table[list(TABLE_COLUMNS)]
    table.attrs.update(versions, exclusions=exclusions)
    return table


def table_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Counts for logs and asset metadata: rows, GIFs and renders per split and engine, exclusions."""
    gifs = table.drop_duplicates("gif_sha")
    return {
        "rows": len(table),
        "gifs": int(len(gifs)),
        "derived_gifs": int(is_derived(gifs).sum()) if len(gifs) else 0,
        "gifs_per_split": {s: int((gifs["split"] == s).sum()) for s in SPLITS},
        "rows_per_split": {s: int((table["split"] == s).sum()) for s in SPLITS},
        "rows_per_engine": {
            str(k): int(v) for k, v in table["engine"].value_counts().sort_index().items()
        },
        "excluded_rows": sum(e["rows"] for e in table.attrs.get("exclusions", [])),
        "exclusions": list(table.attrs.get("exclusions", [])),
        **{k: table.attrs.get(k) for k in ("dataset_version", "code_version", "schema_version")},
    }
