"""SQLite IO manager: one table per asset, delete-then-insert per partition, in one transaction.

Follows dagster-duckdb's design: the table is named after the asset, the partition column is named
in the asset's metadata (``partition_expr``), and writing a partition replaces its rows atomically,
so re-materialising is idempotent. Rows are pydantic ``Record``s (validated when built) and are
stamped with their ``schema_version``. Loads return a pandas DataFrame for the requested partitions
(one, several, or all for unpartitioned downstream assets).
"""

from __future__ import annotations

import json
import sqlite3
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import BaseModel

from giflab.db import connect, declared_types, decode_columns, table_exists, transaction
from giflab.schemas import Record

RecordT = typing.TypeVar("RecordT", bound=Record)

DEFAULT_PARTITION_COLUMN = "gif_sha"
# Column types: SQLite keeps the declared name, so JSON and BOOLEAN columns decode on load.
_SQL_TYPES = {int: "INTEGER", float: "REAL", str: "TEXT", bool: "BOOLEAN"}


def _sql_type(annotation: Any) -> str:
    """The SQLite column type for a pydantic field annotation (Optional unwrapped)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if annotation in _SQL_TYPES:
        return _SQL_TYPES[annotation]
    return "JSON"


def _model_columns(model: type[BaseModel]) -> dict[str, str]:
    cols = {name: _sql_type(f.annotation) for name, f in model.model_fields.items()}
    cols["schema_version"] = "INTEGER"
    return cols


def _frame_columns(df: pd.DataFrame) -> dict[str, str]:
    cols = {}
    for name, dtype in df.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            cols[str(name)] = "BOOLEAN"
        elif pd.api.types.is_integer_dtype(dtype):
            cols[str(name)] = "INTEGER"
        elif pd.api.types.is_float_dtype(dtype):
            cols[str(name)] = "REAL"
        else:
            cols[str(name)] = "TEXT"
    return cols


def _encode(value: Any, sql_type: str) -> Any:
    if value is None:
        return None
    if sql_type == "JSON":
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if sql_type == "BOOLEAN":
        return int(bool(value))
    return value


def _ensure_table(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Create ``table`` or add columns a newer schema brought (never drops any)."""
    if not table_exists(conn, table):
        body = ", ".join(f'"{c}" {t}' for c, t in columns.items())
        conn.execute(f'CREATE TABLE "{table}" ({body})')
        return
    have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
    for c, t in columns.items():
        if c not in have:
            conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{c}" {t}')


def _fill_keys(conn: sqlite3.Connection, keys: Sequence[str]) -> None:
    """Put ``keys`` in the temp table ``_keys`` (avoids SQLite's bound-parameter limit)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _keys (k TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM _keys")
    conn.executemany("INSERT OR IGNORE INTO _keys (k) VALUES (?)", [(k,) for k in keys])


def write_rows(
    db_path: Path | str,
    table: str,
    rows: Sequence[Record] | pd.DataFrame,
    partition_column: str | None,
    partition_keys: Sequence[str] | None,
) -> int:
    """Replace ``table``'s rows for ``partition_keys`` (all rows if None) with ``rows``."""
    if isinstance(rows, pd.DataFrame):
        columns = _frame_columns(rows)
        records = rows.to_dict(orient="records")
    else:
        models = {type(r) for r in rows}
        if len(models) > 1:
            raise TypeError(
                f"{table}: rows of several record types {sorted(m.__name__ for m in models)}"
            )
        if not rows:
            columns, records = {}, []
        else:
            model = models.pop()
            columns = _model_columns(model)
            records = [
                r.model_dump(mode="json") | {"schema_version": model.SCHEMA_VERSION} for r in rows
            ]
    if partition_keys is not None and partition_column:
        wanted = set(partition_keys)
        stray = {str(r.get(partition_column)) for r in records} - wanted
        if stray:
            raise ValueError(f"{table}: rows for partitions outside this run: {sorted(stray)[:3]}")
    conn = connect(db_path)
    try:
        with transaction(conn):
            if columns:
                _ensure_table(conn, table, columns)
            if table_exists(conn, table):
                if partition_keys is None or not partition_column:
                    conn.execute(f'DELETE FROM "{table}"')
                else:
                    _fill_keys(conn, partition_keys)
                    conn.execute(
                        f'DELETE FROM "{table}" WHERE "{partition_column}" IN (SELECT k FROM _keys)'
                    )
            if records:
                names = list(columns)
                quoted = ", ".join(f'"{c}"' for c in names)
                marks = ", ".join("?" * len(names))
                sql = f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})'
                conn.executemany(
                    sql, [tuple(_encode(r.get(c), columns[c]) for c in names) for r in records]
                )
    finally:
        conn.close()
    return len(records)


def read_rows(
    db_path: Path | str,
    table: str,
    partition_column: str | None = None,
    partition_keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of ``table`` for ``partition_keys`` (all rows if None), JSON/BOOLEAN decoded."""
    conn = connect(db_path)
    try:
        if not table_exists(conn, table):
            return pd.DataFrame()
        declared = declared_types(conn, table)
        if partition_keys is None or not partition_column:
            df = pd.read_sql_query(f'SELECT * FROM "{table}"', conn)
        else:
            _fill_keys(conn, partition_keys)
            df = pd.read_sql_query(
                f'SELECT t.* FROM "{table}" t JOIN _keys ON t."{partition_column}" = _keys.k', conn
            )
    finally:
        conn.close()
    return decode_columns(df, declared)


def to_records(df: pd.DataFrame) -> list[dict]:
    """DataFrame rows as plain dicts, missing values as None (ready for pydantic)."""
    return [
        {k: (None if not isinstance(v, list | dict) and pd.isna(v) else v) for k, v in r.items()}
        for r in df.astype(object).to_dict("records")
    ]


def read_records(
    db_path: Path | str,
    table: str,
    model: type[RecordT],
    partition_column: str,
    partition_keys: Sequence[str],
) -> list[RecordT]:
    """``table``'s rows for ``partition_keys`` as ``model`` records (what ``write_rows`` stored;
    none when the table does not exist yet)."""
    return [
        model(**{k: v for k, v in r.items() if k != "schema_version"})
        for r in to_records(read_rows(db_path, table, partition_column, partition_keys))
    ]


class SqliteIOManager(ConfigurableIOManager):
    """Stores each asset's rows in ``db_path``, one table per asset, one row set per partition."""

    db_path: str

    def _partition_column(self, context: OutputContext | InputContext) -> str:
        meta = context.definition_metadata or {}
        return str(meta.get("partition_expr", DEFAULT_PARTITION_COLUMN))

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        table = context.asset_key.path[-1]
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else None
        n = self.write_partitions(table, obj, self._partition_column(context), keys)
        context.add_output_metadata({"rows": n, "table": table, "db_path": self.db_path})

    def write_partitions(
        self,
        table: str,
        rows: Sequence[Record] | pd.DataFrame,
        partition_column: str | None,
        keys: Sequence[str] | None,
    ) -> int:
        """Replace ``table``'s rows for ``keys`` with ``rows``, as an output is written; also
        for a step that stores each GIF's rows as its work finishes (``giflab_assets.batch``)."""
        return write_rows(self.db_path, table, rows, partition_column, keys)

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        table = (upstream.asset_key if upstream is not None else context.asset_key).path[-1]
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else None
        column = (
            self._partition_column(upstream) if upstream is not None else DEFAULT_PARTITION_COLUMN
        )
        return read_rows(self.db_path, table, column, keys)
