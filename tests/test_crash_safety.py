"""kill -9 at random points, resume each time: the end state equals an uninterrupted run's."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from tests.conftest import REPO, good_corpus_gifs
from tests.test_cli import _raw, giflab

ARGS = [
    "--engines",
    "gifsicle,ffmpeg",
    "--lossy",
    "0,60",
    "--colors",
    "256,32",
    "--frame-keep",
    "1.0,0.8",
    "-j",
    "2",
    "--batch-size",
    "2",
    "--no-progress",
]
TABLES = {
    "gif_files": "SELECT sha256, rel_path FROM gif_files",
    "gif_metadata": "SELECT * FROM gif_metadata",
    "gif_features": "SELECT * FROM gif_features",
    # render_ms and engine stderr vary run to run; what was rendered and measured must not.
    "compression_runs_gifsicle": "SELECT gif_sha, lossy, colors, frame_keep, status, kilobytes,"
    " ssim_mean, psnr FROM compression_runs_gifsicle",
    "compression_runs_ffmpeg": "SELECT gif_sha, lossy, colors, frame_keep, status, kilobytes,"
    " ssim_mean, psnr FROM compression_runs_ffmpeg",
}
KEYS = {
    "gif_metadata": "gif_sha",
    "gif_features": "gif_sha",
    "compression_runs_gifsicle": "gif_sha, lossy, colors, frame_keep",
    "compression_runs_ffmpeg": "gif_sha, lossy, colors, frame_keep",
}


def _dump(db) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as conn:
        return {t: sorted(conn.execute(q).fetchall()) for t, q in TABLES.items()}


def _kill_after(raw, data, seconds: float) -> int | None:
    """Start ``giflab run`` in its own process group and SIGKILL the group after ``seconds``."""
    env = os.environ | {"GIFLAB_DATA_DIR": str(data)}
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "giflab", "run", str(raw), *ARGS],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return proc.wait(timeout=seconds)  # it finished before the kill: fine too
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


@pytest.mark.skipif(os.name == "nt", reason="process groups and SIGKILL are POSIX")
def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path):
    gifs = sorted(good_corpus_gifs(), key=lambda p: p.stat().st_size)[:8]
    raw = _raw(tmp_path, gifs, with_bad=False)
    ref = tmp_path / "ref"
    started = time.monotonic()
    giflab("run", str(raw), *ARGS, data_dir=ref)
    whole_run = time.monotonic() - started
    expected = _dump(ref / "giflab.db")

    # Kill times spread over an uninterrupted run's length (start-up is ~4 s), so they land in
    # ingest, in metadata/features and in sweeps however fast the machine. Each round starts from
    # nothing, so its first kill always lands; a resumed run has less left to do, so each further
    # kill in the round aims earlier, and a run that finishes ends the round.
    rng = random.Random(20261124)
    kills = []
    for round_ in range(3):
        cut = tmp_path / f"cut{round_}"
        upper = 0.9 * whole_run
        for _ in range(3):
            at = rng.uniform(1.5, max(2.0, upper))
            if _kill_after(raw, cut, at) is not None:
                break  # it finished before the kill
            kills.append(round(at, 1))
            upper *= 0.6
        giflab("run", str(raw), *ARGS, data_dir=cut)
        _assert_same_end_state(raw, cut, expected)
    assert len(kills) >= 3, (kills, whole_run)


def _assert_same_end_state(raw, cut, expected) -> None:
    got = _dump(cut / "giflab.db")
    for table, rows in expected.items():
        assert got[table] == rows, table  # no lost rows, no extra rows, no torn values
    with sqlite3.connect(cut / "giflab.db") as conn:
        for table, key in KEYS.items():  # no duplicates
            n, distinct = conn.execute(
                f"SELECT COUNT(*), COUNT(DISTINCT {key.replace(', ', ' || ')}) FROM {table}"
            ).fetchone()
            assert n == distinct, table
    assert list((cut / "tmp").iterdir()) == []  # no orphan temp files
    os.environ["DAGSTER_HOME"] = str(cut / "dagster_home")
    try:
        with DagsterInstance.get() as instance:
            live = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
            assert instance.get_runs(filters=RunsFilter(statuses=live)) == []  # no run in limbo
            parts = set(instance.get_dynamic_partitions("gifs"))
            assert parts == {r[0] for r in expected["gif_metadata"]}
    finally:
        del os.environ["DAGSTER_HOME"]
    again = giflab("run", str(raw), *ARGS, data_dir=cut)
    assert "0 asset partitions to materialise" in again.stdout
