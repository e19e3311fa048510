"""The training table as files for people and other tools: CSV and Parquet, same columns.

Columns: ``EXPORT_LEAD_COLUMNS`` first (the seed dataset's schema, seed names; ``EXPORT_ALIASES``
maps them to training-table columns), then every training-table column under its own name —
so ``frame_keep``/``colors``/``ssim_mean`` appear twice, once under each name, and an exported
file holds everything ``dataset_version`` covers. ``timestamp`` is the export time (UTC, ISO
8601), the same on every row: the database keeps no time per render.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from giflab.dataset.columns import (
    EXPORT_ALIASES,
    EXPORT_LEAD_COLUMNS,
    RECORD_COLUMNS,
    TABLE_COLUMNS,
)
from giflab.dataset.validate import field_kind, is_nullable
from giflab.schemas import MetricRecordV1

EXPORT_STEM = "giflab_dataset"
_ARROW = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "str": pa.string()}
_PANDAS = {"float": "float64", "bool": "bool", "str": "str"}


@dataclass(frozen=True)
class ExportedDataset:
    """The files written by ``export_dataset`` and what they hold."""

    csv: Path
    parquet: Path
    rows: int
    columns: tuple[str, ...]


def export_columns() -> tuple[str, ...]:
    """Column order of an exported file: the seed's columns, then the rest of the table's."""
    return EXPORT_LEAD_COLUMNS + tuple(c for c in TABLE_COLUMNS if c not in EXPORT_LEAD_COLUMNS)


def _kind(column: str) -> tuple[str, bool]:
    """``(type, nullable)`` of an exported column."""
    source = EXPORT_ALIASES.get(column, column)
    if source in RECORD_COLUMNS:
        return field_kind(MetricRecordV1, source), is_nullable(MetricRecordV1, source)
    return ("int" if source == "schema_version" else "str"), False


def export_schema() -> pa.Schema:
    """The Arrow schema of an exported file (also the dtypes ``read_export`` restores)."""
    return pa.schema(
        [pa.field(c, _ARROW[_kind(c)[0]], nullable=_kind(c)[1]) for c in export_columns()]
    )


def _dtype(column: str) -> str:
    kind, nullable = _kind(column)
    return ("Int64" if nullable else "int64") if kind == "int" else _PANDAS[kind]


def export_frame(table: pd.DataFrame, timestamp: datetime | str | None = None) -> pd.DataFrame:
    """``table`` with the seed's columns added and every column in export order and dtype."""
    if timestamp is None:
        timestamp = datetime.now(UTC).replace(microsecond=0)
    stamp = timestamp.isoformat() if isinstance(timestamp, datetime) else str(timestamp)
    columns = {}
    for name in export_columns():
        if name == "timestamp":
            columns[name] = pd.Series([stamp] * len(table), index=table.index, dtype="str")
        else:
            columns[name] = table[EXPORT_ALIASES.get(name, name)].astype(_dtype(name))
    return pd.DataFrame(columns).reset_index(drop=True)


def _replace(tmp: str, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _tmp(path: Path) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    return tmp


def export_dataset(
    table: pd.DataFrame,
    out_dir: Path | str,
    *,
    timestamp: datetime | str | None = None,
    stem: str = EXPORT_STEM,
) -> ExportedDataset:
    """Write ``<stem>.csv`` and ``<stem>.parquet`` to ``out_dir`` (replacing them atomically).

    The Parquet file's schema metadata carries the dataset, code and schema versions.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = export_frame(table, timestamp)
    csv_path, parquet_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.parquet"

    tmp = _tmp(csv_path)
    frame.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")
    _replace(tmp, csv_path)

    versions = {k: table.attrs.get(k) for k in ("dataset_version", "code_version")}
    versions["schema_version"] = MetricRecordV1.SCHEMA_VERSION
    arrow = pa.Table.from_pandas(frame, schema=export_schema(), preserve_index=False)
    arrow = arrow.replace_schema_metadata({"giflab": json.dumps(versions, sort_keys=True)})
    tmp = _tmp(parquet_path)
    pq.write_table(arrow, tmp)
    _replace(tmp, parquet_path)
    return ExportedDataset(csv_path, parquet_path, len(frame), tuple(frame.columns))


def read_export(path: Path | str) -> pd.DataFrame:
    """An exported CSV or Parquet file as a DataFrame in the export dtypes (both read the same)."""
    path = Path(path)
    if path.suffix == ".parquet":
        df = pq.read_table(path).to_pandas()
    else:
        # Only empty fields are missing: a file named "NA.gif" stays a name.
        df = pd.read_csv(
            path,
            keep_default_na=False,
            na_values=[""],
            float_precision="round_trip",
            dtype={c: "str" for c in export_columns() if _kind(c)[0] == "str"},
            encoding="utf-8",
        )
    return df.astype({c: _dtype(c) for c in df.columns if c in export_columns()})
