"""Dagster instance storage in PostgreSQL, chosen by configuration alone.

The server is the one ``scripts/postgres.sh`` starts on loopback (``.ci/run`` does it and
exports ``GIFLAB_TEST_POSTGRES_URL``); each test makes a database of its own there. Under CI
a missing server is a failure, elsewhere a skip.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from giflab_assets.runner import POSTGRES_URL_ENV
from tests.conftest import REPO
from tests.test_cli import GOOD, _raw, _table, giflab

SERVER = os.environ.get("GIFLAB_TEST_POSTGRES_URL")


@pytest.fixture
def new_database():
    """A function making fresh, empty databases on the test server; dropped afterwards."""
    if not SERVER:
        if os.environ.get("CI"):
            pytest.fail("CI must provide GIFLAB_TEST_POSTGRES_URL (scripts/postgres.sh)")
        pytest.skip('no PostgreSQL server: eval "$(bash scripts/postgres.sh)" to start one')
    psycopg2 = pytest.importorskip("psycopg2")
    admin = psycopg2.connect(libpq(SERVER))
    admin.autocommit = True
    names: list[str] = []

    def make() -> str:
        names.append(f"giflab_test_{uuid.uuid4().hex[:12]}")
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {names[-1]}")
        return urlunsplit(urlsplit(SERVER)._replace(path=f"/{names[-1]}"))

    yield make
    with admin.cursor() as cur:
        for name in names:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def postgres_url(new_database):
    """One fresh database on the test server."""
    return new_database()


def libpq(url: str) -> str:
    """The URL as libpq takes it (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def _count(url: str, sql: str) -> int:
    import psycopg2

    with psycopg2.connect(libpq(url)) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def test_runs_and_resume_live_in_postgres(tmp_path, postgres_url):
    raw = _raw(tmp_path, GOOD[:2], with_bad=False)
    data = tmp_path / "data"
    env = {POSTGRES_URL_ENV: postgres_url}
    first = giflab("run", str(raw), "--no-progress", data_dir=data, extra_env=env)
    assert "2 new GIFs" in first.stdout, first.stdout

    yaml = (data / "dagster_home" / "dagster.yaml").read_text()
    assert f"env: {POSTGRES_URL_ENV}" in yaml and "postgresql://" not in yaml  # no secret on disk
    assert not list((data / "dagster_home").rglob("*.db"))  # no SQLite instance storage at all
    assert _count(postgres_url, "SELECT count(*) FROM runs") >= 1
    assert _count(postgres_url, "SELECT count(*) FROM dynamic_partitions") == 2
    assert len(_table(data / "giflab.db", "SELECT gif_sha FROM gif_metadata")) == 2

    # Resume reads what is done from Postgres: nothing left.
    again = giflab("run", str(raw), "--no-progress", data_dir=data, extra_env=env)
    assert "0 asset partitions to materialise" in again.stdout, again.stdout

    # The dagster CLI on the same instance (Definitions' multiprocess executor) sees the
    # partitions and records its run in Postgres too.
    sha = _table(data / "giflab.db", "SELECT gif_sha FROM gif_metadata")[0][0]
    runs_before = _count(postgres_url, "SELECT count(*) FROM runs")
    proc = subprocess.run(
        ["dagster", "asset", "materialize", "-m", "giflab_assets.definitions"]
        + ["--select", "gif_metadata", "--partition", sha],
        cwd=tmp_path,
        env=os.environ
        | env
        | {
            "GIFLAB_DATA_DIR": str(data),
            "DAGSTER_HOME": str(data / "dagster_home"),
            "PYTHONPATH": str(REPO),
        },
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RUN_SUCCESS" in proc.stderr
    assert _count(postgres_url, "SELECT count(*) FROM runs") == runs_before + 1


def test_switching_storage_rewrites_only_our_own_config(tmp_path, postgres_url, monkeypatch):
    from giflab_assets.runner import LEGACY_YAML, instance_yaml, open_instance

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # restored afterwards
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = home / "dagster.yaml"

    def opened(url: str | None) -> str:
        if url:
            monkeypatch.setenv(POSTGRES_URL_ENV, url)
        else:
            monkeypatch.delenv(POSTGRES_URL_ENV, raising=False)
        with open_instance(home) as instance:
            instance.get_dynamic_partitions("gifs")  # the storage really answers
        return config.read_text()

    config.write_text(LEGACY_YAML)  # as written by earlier versions: ours to rewrite
    assert opened(libpq(postgres_url)) == instance_yaml(postgres=True)
    assert os.environ[POSTGRES_URL_ENV].startswith("postgresql+psycopg2://")
    assert opened(None) == instance_yaml(postgres=False)

    own = "telemetry:\n  enabled: false\n"
    own += "run_storage:\n  module: dagster._core.storage.runs\n  class: SqliteRunStorage\n"
    own += f"  config:\n    base_dir: {tmp_path / 'runs'}\n"
    config.write_text(own)  # a user's own file: never touched
    assert opened(postgres_url) == own


def test_celery_executor_runs_steps_on_a_worker(tmp_path, new_database):
    """GIFLAB_EXECUTOR=celery: a run launched by the dagster CLI executes its step on a
    separate Celery worker process; broker and result backend are Postgres databases too
    (kombu's SQLAlchemy transport), so nothing but PostgreSQL is needed."""
    instance_url = new_database()
    broker_db = new_database().split("://", 1)[1]
    raw = _raw(tmp_path, GOOD[:1], with_bad=False)
    data = tmp_path / "data"
    env = {POSTGRES_URL_ENV: instance_url}
    giflab("run", str(raw), "--no-progress", data_dir=data, extra_env=env)
    sha = _table(data / "giflab.db", "SELECT gif_sha FROM gif_metadata")[0][0]

    env = (
        os.environ
        | env
        | {
            "GIFLAB_DATA_DIR": str(data),
            "DAGSTER_HOME": str(data / "dagster_home"),
            "PYTHONPATH": str(REPO),
            "GIFLAB_EXECUTOR": "celery",
            "GIFLAB_CELERY_BROKER": f"sqla+postgresql+psycopg2://{broker_db}",
            "GIFLAB_CELERY_BACKEND": f"db+postgresql+psycopg2://{broker_db}",
        }
    )
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(
            ["dagster-celery", "worker", "start", "-A", "dagster_celery.app"]
            + ["-y", str(REPO / "scripts" / "celery_worker.yaml"), "--", "--concurrency", "1"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while " ready." not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        proc = subprocess.run(
            ["dagster", "asset", "materialize", "-m", "giflab_assets.definitions"]
            + ["--select", "gif_metadata", "--partition", sha],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "RUN_SUCCESS" in proc.stderr
        run_id = re.search(r"- ([0-9a-f-]{36}) - \d+ - RUN_SUCCESS", proc.stderr)
        assert run_id, proc.stderr[-3000:]
        # The step ran in the worker: its events, tagged with this run, are in the worker's log.
        worked = [line for line in log.read_text().splitlines() if run_id[1] in line]
        assert any("gif_metadata - STEP_SUCCESS" in line for line in worked), worked[-20:]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)


def test_executor_is_chosen_by_configuration():
    from giflab_assets.definitions import build_executor

    assert build_executor("multiprocess").name == "multiprocess"
    assert build_executor("celery").name == "celery"
    with pytest.raises(ValueError, match="GIFLAB_EXECUTOR='threads'"):
        build_executor("threads")
