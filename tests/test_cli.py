"""The CLI end to end, as users run it: real files, a real SQLite file, a real Dagster instance."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, bad_corpus_files, good_corpus_gifs

GOOD = good_corpus_gifs()
# Ingest tests need the metadata asset, not the full sweep: one cheap render per GIF.
FAST = ["--engines", "gifsicle", "--lossy", "0", "--colors", "256", "--frame-keep", "1.0"]


def giflab(
    *args: str, data_dir: Path, check: bool = True, extra_env: dict | None = None, **kw
) -> subprocess.CompletedProcess:
    env = os.environ | {"GIFLAB_DATA_DIR": str(data_dir)} | (extra_env or {})
    env.pop("DAGSTER_HOME", None)
    if args[0] == "run" and "--engines" not in args:
        args = (*args, *FAST)
    proc = subprocess.run(
        [sys.executable, "-m", "giflab", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        **kw,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _raw(tmp_path: Path, gifs: list[Path], with_bad: bool = True) -> Path:
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    for i, p in enumerate(gifs):
        shutil.copy(p, (raw / "sub" if i % 3 == 0 else raw) / p.name)
    if with_bad:
        for p in bad_corpus_files():
            shutil.copy(p, raw / p.name)
    return raw


def _table(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute(sql).fetchall())


def test_run_ingests_quarantines_and_second_run_does_nothing(tmp_path):
    gifs = GOOD[:8]
    raw = _raw(tmp_path, gifs)
    shutil.copy(gifs[0], raw / "duplicate name.gif")
    data = tmp_path / "data"
    first = giflab("run", str(raw), "-j", "2", "--no-progress", data_dir=data)
    for bad in bad_corpus_files():
        assert f"quarantined: {raw / bad.name}" in first.stderr
        assert (data / "bad_gifs" / f"{bad.name}.json").exists()
    stats = json.loads(giflab("stats", "--json", data_dir=data).stdout)
    n = len({p.read_bytes() for p in gifs})
    assert stats == stats | {
        "gifs": n,
        "duplicates": 1,
        "bad_gifs": len(bad_corpus_files()),
        "metadata": n,
    }
    names = _table(data / "giflab.db", "SELECT orig_filenames FROM gif_metadata")
    assert any("duplicate name.gif" in json.loads(r[0]) for r in names)

    second = giflab("run", str(raw), "--no-progress", data_dir=data)
    assert "0 new GIFs" in second.stdout and "0 asset partitions to materialise" in second.stdout


def test_rows_deleted_from_the_database_are_made_again(tmp_path):
    # Dagster remembers the partitions as materialised; the rows themselves are what counts.
    gifs = sorted(GOOD, key=lambda p: p.stat().st_size)[4:7]
    raw = _raw(tmp_path, gifs, with_bad=False)
    data = tmp_path / "data"
    giflab("run", str(raw), "--no-progress", data_dir=data)
    db = data / "giflab.db"
    before = {t: _table(db, f"SELECT * FROM {t}") for t in ("gif_metadata", "gif_features")}
    shas = [r[0] for r in _table(db, "SELECT gif_sha FROM gif_metadata")]
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM gif_metadata WHERE gif_sha = ?", (shas[0],))
        conn.execute("DELETE FROM gif_features WHERE gif_sha = ?", (shas[1],))
    conn.close()

    again = giflab("run", str(raw), "--no-progress", data_dir=data)
    assert "2 asset partitions to materialise" in again.stdout
    for table, rows in before.items():
        after = _table(db, f"SELECT * FROM {table}")
        assert [r[0] for r in after] == [r[0] for r in rows]


def test_dry_run_changes_nothing(tmp_path):
    raw = _raw(tmp_path, GOOD[:3])
    listing = sorted(p.relative_to(raw) for p in raw.rglob("*"))
    data = tmp_path / "data"
    out = giflab("run", str(raw), "--dry-run", "--no-progress", data_dir=data)
    assert "would quarantine" in out.stderr and "would add partition" in out.stdout
    assert sorted(p.relative_to(raw) for p in raw.rglob("*")) == listing
    assert not data.exists() or not any(data.rglob("*"))


def test_dagster_cli_materialises_a_partition_on_the_same_instance(tmp_path):
    raw = _raw(tmp_path, GOOD[:2], with_bad=False)
    data = tmp_path / "data"
    giflab("run", str(raw), "--no-progress", data_dir=data)
    sha = _table(data / "giflab.db", "SELECT gif_sha FROM gif_metadata")[0][0]
    env = os.environ | {"GIFLAB_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home")}
    proc = subprocess.run(
        [
            "dagster",
            "asset",
            "materialize",
            "-m",
            "giflab_assets.definitions",
            "--select",
            "gif_metadata",
            "--partition",
            sha,
        ],
        cwd=tmp_path,  # no .env here: the environment alone points at the instance
        env=env | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RUN_SUCCESS" in proc.stderr
    assert len(_table(data / "giflab.db", "SELECT gif_sha FROM gif_metadata")) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum",
    [
        signal.SIGINT,
        pytest.param(
            signal.SIGTERM,
            marks=pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM kills on Windows"),
        ),
    ],
    ids=["sigint", "sigterm"],
)
def test_sigint_then_rerun_equals_an_uninterrupted_run(signum, tmp_path):
    """Ctrl-C, or a SIGTERM (`kill`, a service manager): the active work finishes and is saved,
    no further run starts, exit 130; the next run completes what is left."""
    gifs = sorted(GOOD, key=lambda p: p.stat().st_size)[:24]
    raw = _raw(tmp_path, gifs, with_bad=False)
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    giflab("run", str(raw), "-j", "1", "--no-progress", data_dir=ref)

    env = os.environ | {"GIFLAB_DATA_DIR": str(cut)}
    cmd = [
        sys.executable,
        "-m",
        "giflab",
        "run",
        str(raw),
        "-j",
        "1",
        "--batch-size",
        "1",
        "--no-progress",
        *FAST,  # the same work as the reference run (giflab() adds it there)
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for line in proc.stdout:  # wait until materialisation has started
        if "to materialise" in line:
            break
    # ... and has saved something (a fixed sleep was too short on a loaded machine).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _rows_saved(cut / "giflab.db", "gif_metadata"):
        time.sleep(0.1)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    done = _table(cut / "giflab.db", "SELECT gif_sha FROM gif_metadata")
    assert 0 < len(done) < len({p.read_bytes() for p in gifs})

    giflab("run", str(raw), "-j", "2", "--no-progress", data_dir=cut)
    query = "SELECT * FROM gif_metadata"
    assert _table(cut / "giflab.db", query) == _table(ref / "giflab.db", query)
    query = "SELECT gif_sha, lossy, colors, frame_keep, status, kilobytes FROM compression_runs_gifsicle"
    assert _table(cut / "giflab.db", query) == _table(ref / "giflab.db", query)
    again = giflab("run", str(raw), "--no-progress", data_dir=cut)
    assert "0 asset partitions to materialise" in again.stdout


def _rows_saved(db: Path, table: str) -> int:
    """Rows in ``table`` now (0 while the database or the table does not exist yet)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _doctor_locations(stdout: str) -> dict[str, str]:
    """``doctor``'s lines by label (the first 20 columns); a continuation line is "<label>+"."""
    rows, last = {}, ""
    for line in stdout.splitlines():
        label, value = line[:20].strip(), line[21:]
        last = label or last
        rows[label or f"{last}+"] = value
    return rows


def test_doctor_shows_where_the_database_and_the_mlflow_store_are(tmp_path):
    data = (tmp_path / "data").resolve()
    rows = _doctor_locations(giflab("doctor", data_dir=data).stdout)
    assert rows["data dir"] == str(data)
    assert rows["database"] == f"{data / 'giflab.db'} (not created yet)"
    assert rows["DAGSTER_HOME"] == f"{data / 'dagster_home'} (not created yet)"
    assert rows["models"] == f"{data / 'models'} (none exported yet)"
    assert rows["mlflow tracking"] == f"sqlite:///{data / 'mlflow.db'}"
    assert rows["mlflow registry"] == rows["mlflow tracking"]
    assert rows["mlflow artifacts"] == (data / "mlruns").as_uri()
    assert rows["dagster storage"] == f"SQLite files in {data / 'dagster_home'}"
    assert rows["dagster executor"] == "multiprocess"
    assert not data.exists()  # doctor only looks

    # --data-dir wins over GIFLAB_DATA_DIR; a DAGSTER_HOME elsewhere is pointed out; a remote
    # tracking URI keeps the server's artefact store; mlflow itself is never imported.
    other = (tmp_path / "other").resolve()
    code = (
        "import sys; from giflab.cli import main; code = main(sys.argv[1:]); "
        "print('mlflow imported:', 'mlflow' in sys.modules); sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "doctor", "--data-dir", str(other)]
        + ["--mlflow-uri", "http://127.0.0.1:5000"],
        cwd=REPO,
        env=os.environ
        | {"GIFLAB_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home")}
        | {"GIFLAB_DAGSTER_POSTGRES_URL": "postgresql+psycopg2://giflab:s3cret@db:5432/dagster"}
        | {"GIFLAB_EXECUTOR": "celery"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "mlflow imported: False"
    rows = _doctor_locations(proc.stdout.rsplit("\n", 2)[0])
    assert rows["database"] == f"{other / 'giflab.db'} (not created yet)"
    assert rows["DAGSTER_HOME"].startswith(str(other / "dagster_home"))
    assert rows["DAGSTER_HOME+"].startswith(
        f"but DAGSTER_HOME={data / 'dagster_home'} (environment)"
    )
    assert rows["mlflow tracking"] == rows["mlflow registry"] == "http://127.0.0.1:5000"
    assert rows["mlflow artifacts"].startswith("the server's default artifact root")
    assert rows["dagster storage"] == "PostgreSQL postgresql+psycopg2://giflab:***@db:5432/dagster"
    assert rows["dagster executor"] == "celery"
    assert "s3cret" not in proc.stdout
