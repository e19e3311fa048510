"""Dataset statistics read straight from the SQLite file (fast: no Dagster, no decoding)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from giflab.augment import DERIVED_PLATFORM
from giflab.db import connect_readonly, table_exists


def _count(conn: sqlite3.Connection, table: str, expr: str = "COUNT(*)") -> int:
    if not table_exists(conn, table):
        return 0
    return int(conn.execute(f'SELECT {expr} FROM "{table}"').fetchone()[0])


def _per_engine(conn: sqlite3.Connection, status: str) -> dict[str, int]:
    """Render rows with ``status`` per engine, from every ``compression_runs_*`` table."""
    out = {}
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'compression_runs_%'"
        )
    ]
    for t in sorted(tables):
        for engine, n in conn.execute(
            f'SELECT engine, COUNT(*) FROM "{t}" WHERE status = ? GROUP BY engine', (status,)
        ):
            out[engine] = n
    return out


def _derived_gifs(conn: sqlite3.Connection) -> int:
    """GIFs all of whose files lie in ``giflab-derived/`` (cut by ``run --augment``)."""
    if not table_exists(conn, "gif_files"):
        return 0
    sql = (
        "SELECT COUNT(*) FROM (SELECT sha256 FROM gif_files GROUP BY sha256"
        " HAVING MIN(rel_path LIKE ?) = 1)"
    )
    return int(conn.execute(sql, (f"{DERIVED_PLATFORM}/%",)).fetchone()[0])


def collect_stats(db_path: Path) -> dict:
    """Counts of GIFs, names, duplicates, derived GIFs, bad files, metadata, features and renders
    in ``db_path``."""
    if not Path(db_path).exists():
        return {
            "gifs": 0,
            "files": 0,
            "duplicates": 0,
            "derived_gifs": 0,
            "bad_gifs": 0,
            "metadata": 0,
            "features": 0,
            "clip_missing": 0,
            "renders": {},
            "failed_renders": {},
        }
    conn = connect_readonly(db_path)
    try:
        files = _count(conn, "gif_files")
        gifs = _count(conn, "gif_files", "COUNT(DISTINCT sha256)")
        return {
            "gifs": gifs,
            "files": files,
            "duplicates": files - gifs,
            "derived_gifs": _derived_gifs(conn),
            "bad_gifs": _count(conn, "bad_gifs"),
            "metadata": _count(conn, "gif_metadata"),
            "features": _count(conn, "gif_features"),
            "clip_missing": _count(
                conn, "gif_features", "COALESCE(SUM(clip_missing_reason IS NOT NULL), 0)"
            ),
            "renders": _per_engine(conn, "ok"),
            "failed_renders": _per_engine(conn, "failed"),
        }
    finally:
        conn.close()
