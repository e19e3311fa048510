"""The SQLite database file: connection settings shared by every writer, and the file registry.

WAL mode lets readers run beside one writer; the busy timeout makes concurrent writers (worker
processes, the sensor, the CLI) wait for the lock instead of failing with "database is locked".
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported by the callers; `stats` must not pay for it
    import pandas as pd

BUSY_TIMEOUT_MS = 120_000

REGISTRY_DDL = """
CREATE TABLE IF NOT EXISTS gif_files (
    path TEXT PRIMARY KEY,          -- absolute path of the file as found
    raw_root TEXT NOT NULL,         -- the raw folder it was found under
    rel_path TEXT NOT NULL,         -- path relative to raw_root (POSIX separators)
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gif_files_sha256 ON gif_files (sha256);
CREATE TABLE IF NOT EXISTS bad_gifs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL,
    orig_path TEXT NOT NULL,
    quarantined_path TEXT NOT NULL,
    error_class TEXT NOT NULL,
    message TEXT NOT NULL,
    quarantined_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS bad_gifs_sha256 ON bad_gifs (sha256);
"""


def connect(db_path: Path | str) -> sqlite3.Connection:
    """Open ``db_path`` (creating its folder) with WAL, a long busy timeout and autocommit off."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _use_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode. Connections that switch a new file at the same moment
    can deadlock on its locks, so SQLite fails all but one at once, without its busy handler:
    retry, as the busy timeout would have waited."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def connect_readonly(db_path: Path | str) -> sqlite3.Connection:
    """Open an existing ``db_path`` read-only (never creates it; readers never block writers
    in WAL mode). The URI is built with ``as_uri``, so any path works, spaces and ``?`` too."""
    uri = f"{Path(db_path).resolve().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken with BEGIN IMMEDIATE so lock waits happen up front."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def open_db(db_path: Path | str) -> Iterator[sqlite3.Connection]:
    """A connection with the registry tables present; closed on exit."""
    conn = connect(db_path)
    try:
        conn.executescript(REGISTRY_DDL)
        yield conn
    finally:
        conn.close()


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    """Whether ``name`` is a table in this database."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def declared_types(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Column name -> declared SQL type of ``table`` (JSON, BOOLEAN, INTEGER, REAL, TEXT)."""
    return {r[1]: r[2] for r in conn.execute(f'PRAGMA table_info("{table}")')}


def decode_columns(df: pd.DataFrame, declared: dict[str, str]) -> pd.DataFrame:
    """Decode a table read with ``pandas.read_sql_query`` by its declared types, in place:
    JSON text to Python values, BOOLEAN to ``boolean``, INTEGER to ``Int64`` (NULLs stay NULL
    rather than turning the column into floats). Returns ``df``."""
    import json

    for column, kind in declared.items():
        if kind == "JSON":
            df[column] = [None if v is None else json.loads(v) for v in df[column]]
        elif kind == "BOOLEAN":
            df[column] = df[column].astype("boolean")
        elif kind == "INTEGER":
            df[column] = df[column].astype("Int64")
    return df
