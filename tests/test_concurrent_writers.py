"""Several processes writing one data directory at once: the CLI's run (with its worker pool),
sensor ticks registering new files on the same Dagster instance, and ``stats`` readers. None
may fail with "database is locked", and every file ends up registered exactly once."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time

from tests.conftest import REPO, good_corpus_gifs
from tests.test_cli import FAST

SENSOR_LOOP = """
import sys, time
from dagster import DagsterInstance, SensorResult, build_sensor_context
from giflab_assets.ingest.sensors import raw_gifs_sensor
from resources import EnginesResource, GifLabResource

data_dir, seconds = sys.argv[1], float(sys.argv[2])
resources = {
    "giflab": GifLabResource(data_dir=data_dir),
    "engines": EnginesResource(engines=["gifsicle"]),
}
ticks = 0
with DagsterInstance.get() as instance:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        result = raw_gifs_sensor(build_sensor_context(instance=instance, resources=resources))
        if isinstance(result, SensorResult):  # what the daemon does with it
            for req in result.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        ticks += 1
print("ticks", ticks)
"""


def test_cli_sensor_and_readers_at_once_never_lock(tmp_path):
    gifs = good_corpus_gifs()
    first, later = gifs[:4], gifs[4:9]
    data = tmp_path / "data"
    raw = data / "raw"
    raw.mkdir(parents=True)
    for p in first:
        shutil.copy(p, raw / p.name)
    env = os.environ | {
        "GIFLAB_DATA_DIR": str(data),
        "DAGSTER_HOME": str(data / "dagster_home"),
        "PYTHONPATH": str(REPO),
    }
    # The instance and its dagster.yaml exist before the sensor process opens it, as
    # scripts/setup.sh leaves them (a process finding no dagster.yaml would use Dagster's own
    # storage, which creates its files without GifLab's lock).
    subprocess.run(
        [sys.executable, "-m", "giflab_assets.runner", str(data / "dagster_home")],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )

    def start(args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    cli = start([sys.executable, "-m", "giflab", "run", "-j", "2", "--no-progress", *FAST])
    sensor = start([sys.executable, "-c", SENSOR_LOOP, str(data), "15"])
    readers = []
    for p in later:  # new files land while both write
        time.sleep(1)
        shutil.copy(p, raw / p.name)
        readers.append(start([sys.executable, "-m", "giflab", "stats", "--json"]))
    outputs = {
        "cli": cli.communicate(timeout=600),
        "sensor": sensor.communicate(timeout=600),
    }
    for i, r in enumerate(readers):
        outputs[f"stats {i}"] = r.communicate(timeout=120)
    codes = {"cli": cli.returncode, "sensor": sensor.returncode}
    codes |= {f"stats {i}": r.returncode for i, r in enumerate(readers)}
    for name, (out, err) in outputs.items():
        assert "database is locked" not in out + err, (name, err[-2000:])
        assert codes[name] == 0, (name, err[-2000:])
    assert int(outputs["sensor"][0].split()[-1]) >= 2  # the sensor really ticked meanwhile

    # A last tick and a last run pick up whatever arrived at the very end.
    again = subprocess.run(
        [sys.executable, "-m", "giflab", "run", "--no-progress", *FAST],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    with sqlite3.connect(data / "giflab.db") as conn:
        files = conn.execute("SELECT rel_path, sha256 FROM gif_files").fetchall()
        metadata = {s for (s,) in conn.execute("SELECT gif_sha FROM gif_metadata")}
        renders = conn.execute(
            "SELECT gif_sha, COUNT(*) FROM compression_runs_gifsicle GROUP BY gif_sha"
        ).fetchall()
    assert sorted(name for name, _ in files) == sorted(p.name for p in first + later)
    assert metadata == {sha for _, sha in files}
    assert dict(renders) == dict.fromkeys(metadata, 1)  # FAST: one variant, never twice
