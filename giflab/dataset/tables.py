"""Reading the inputs of the training table straight from the SQLite file (no Dagster).

The frames have the shape the SQLite IO manager's loads give the Dagster assets: declared
``JSON`` columns decoded, ``BOOLEAN`` as pandas ``boolean``, ``INTEGER`` as ``Int64``. The file is
opened read-only, so this is safe beside a running ``giflab run``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from giflab.db import connect_readonly, declared_types, decode_columns

RUNS_PREFIX = "compression_runs_"


class DatasetTables(NamedTuple):
    """The asset tables the training table is built from (``build_training_table(*tables)``)."""

    metadata: pd.DataFrame
    features: pd.DataFrame
    runs: dict[str, pd.DataFrame]


def _read_table(conn: sqlite3.Connection, table: str) -> pd.DataFrame:
    declared = declared_types(conn, table)
    return decode_columns(pd.read_sql_query(f'SELECT * FROM "{table}"', conn), declared)


def load_tables(db_path: Path | str) -> DatasetTables:
    """``gif_metadata``, ``gif_features`` and every ``compression_runs_<engine>`` of ``db_path``.

    ``runs`` is keyed by table suffix (``animately_standard``); a missing table reads as an empty
    frame. Raises ``FileNotFoundError`` if ``db_path`` does not exist.
    """
    path = Path(db_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such database")
    conn = connect_readonly(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

        def read(table: str) -> pd.DataFrame:
            return _read_table(conn, table) if table in names else pd.DataFrame()

        runs = {
            name.removeprefix(RUNS_PREFIX): read(name)
            for name in sorted(names)
            if name.startswith(RUNS_PREFIX)
        }
        return DatasetTables(read("gif_metadata"), read("gif_features"), runs)
    finally:
        conn.close()
