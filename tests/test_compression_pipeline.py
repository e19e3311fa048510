"""Sweeps through the CLI and Dagster: rows per variant, only missing work, unavailable engines."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import SAMPLES
from tests.test_cli import giflab

SMALL = [
    SAMPLES / "raylib__examples__textures__resources__scarfy_run.gif",
    SAMPLES / "Pillow__docs__handbook__animated_hopper.gif",
]


def _raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    for p in SMALL:
        shutil.copy(p, raw / p.name)
    return raw


def _rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return sorted(
            conn.execute(
                f"SELECT gif_sha, lossy, colors, frame_keep, status FROM {table}"
            ).fetchall()
        )


def test_sweep_rows_then_only_new_variants_render(tmp_path):
    raw, data = _raw(tmp_path), tmp_path / "data"
    giflab(
        "run",
        str(raw),
        "--engines",
        "gifsicle,ffmpeg",
        "--lossy",
        "0,80",
        "--colors",
        "256,32",
        "--frame-keep",
        "1.0,0.5",
        "--no-progress",
        data_dir=data,
    )
    db = data / "giflab.db"
    for table in ("compression_runs_gifsicle", "compression_runs_ffmpeg"):
        rows = _rows(db, table)
        assert len(rows) == len(SMALL) * 2 * 2 * 2
        assert {r[4] for r in rows} == {"ok"}
    with sqlite3.connect(db) as conn:
        before = dict(
            conn.execute(
                "SELECT gif_sha || lossy || colors || frame_keep, rowid FROM compression_runs_gifsicle"
            )
        )
        sizes = conn.execute(
            "SELECT colors, kilobytes FROM compression_runs_gifsicle WHERE lossy = 0 AND frame_keep = 1.0"
        ).fetchall()
    assert len({kb for _, kb in sizes}) > 1  # the colour count reached the engine

    out = giflab(
        "run",
        str(raw),
        "--engines",
        "gifsicle",
        "--lossy",
        "0,40,80",
        "--colors",
        "256,32",
        "--frame-keep",
        "1.0,0.5",
        "--no-progress",
        data_dir=data,
    )
    assert "0 new GIFs" in out.stdout
    rows = _rows(db, "compression_runs_gifsicle")
    assert len(rows) == len(SMALL) * 3 * 2 * 2
    assert {r[1] for r in rows} == {0, 40, 80}
    stats = json.loads(giflab("stats", "--json", data_dir=data).stdout)
    assert stats["renders"]["gifsicle"] == len(rows)
    assert stats["renders"]["ffmpeg"] == len(SMALL) * 8
    del before


def test_unavailable_engine_leaves_its_work_missing_and_the_rest_completes(tmp_path):
    raw, data = _raw(tmp_path), tmp_path / "data"
    env = {"GIFLAB_FFMPEG_BIN": str(tmp_path / "no-such-ffmpeg")}
    out = giflab(
        "run",
        str(raw),
        "--engines",
        "gifsicle,ffmpeg",
        "--lossy",
        "0",
        "--colors",
        "64",
        "--frame-keep",
        "1.0",
        "--no-progress",
        data_dir=data,
        extra_env=env,
    )
    assert "ffmpeg: unavailable" in out.stderr
    stats = json.loads(giflab("stats", "--json", data_dir=data, extra_env=env).stdout)
    assert stats["renders"] == {"gifsicle": len(SMALL)}
    assert "ffmpeg" in stats["unavailable_engines"]
    # the binary appears: the missing work runs, nothing else
    giflab(
        "run",
        str(raw),
        "--engines",
        "gifsicle,ffmpeg",
        "--lossy",
        "0",
        "--colors",
        "64",
        "--frame-keep",
        "1.0",
        "--no-progress",
        data_dir=data,
    )
    stats = json.loads(giflab("stats", "--json", data_dir=data).stdout)
    assert stats["renders"] == {"gifsicle": len(SMALL), "ffmpeg": len(SMALL)}
