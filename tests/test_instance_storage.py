"""The instance storage GifLab configures: Dagster's SQLite files, asset events in batches."""

from __future__ import annotations

from dagster import (
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    DynamicPartitionsDefinition,
    EventRecordsFilter,
    asset,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from giflab_assets.instance_storage import BatchingSqliteEventLogStorage
from giflab_assets.runner import EVENT_BATCH_ENV, open_instance

parts = DynamicPartitionsDefinition(name="parts")
KEYS = [f"k{i:03d}" for i in range(30)]


@asset(partitions_def=parts, backfill_policy=BackfillPolicy.single_run())
def ranged(context) -> None:
    """A no-op over a partition range: what a GifLab batch run records, without the work."""


def _range_run(instance: DagsterInstance) -> dict:
    """Materialise ``ranged`` over KEYS in one run; what the instance then says about it."""
    instance.add_dynamic_partitions("parts", KEYS)
    tags = {ASSET_PARTITION_RANGE_START_TAG: KEYS[0], ASSET_PARTITION_RANGE_END_TAG: KEYS[-1]}
    assert materialize([ranged], instance=instance, tags=tags).success
    key = AssetKey("ranged")

    planned = instance.get_event_records(
        EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=key)
    )
    done = instance.fetch_materializations(key, limit=1000).records
    return {
        "materialized": sorted(instance.get_materialized_partitions(key)),
        "planned": sorted(r.event_log_entry.dagster_event.partition for r in planned),
        "materializations": sorted(r.partition_key for r in done),
        "latest": instance.get_latest_materialization_event(key) is not None,
    }


def test_a_range_run_records_the_same_in_batches_as_event_by_event(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # both restored afterwards
    monkeypatch.setenv(EVENT_BATCH_ENV, "500")
    batches: list[int] = []
    store_batch = BatchingSqliteEventLogStorage.store_event_batch

    def spy(self, events):
        batches.append(len(events))
        store_batch(self, events)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "store_event_batch", spy)
    with open_instance(tmp_path / "ours") as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        ours = _range_run(instance)
    assert batches == [len(KEYS), len(KEYS)]  # planned at run creation, then materialised

    monkeypatch.delenv(EVENT_BATCH_ENV)
    (tmp_path / "plain").mkdir()
    with DagsterInstance.from_config(str(tmp_path / "plain")) as instance:  # Dagster's defaults
        assert type(instance.event_log_storage) is not BatchingSqliteEventLogStorage
        plain = _range_run(instance)
    assert ours == plain
    assert ours["materialized"] == ours["planned"] == ours["materializations"] == KEYS

    # The files are Dagster's own: its default SQLite storage reads what ours wrote.
    (tmp_path / "ours" / "dagster.yaml").unlink()
    with DagsterInstance.from_config(str(tmp_path / "ours")) as instance:
        assert sorted(instance.get_materialized_partitions(AssetKey("ranged"))) == KEYS


def run_at_once(
    script: str, args: list[str], processes: int, timeout: float, extra: tuple[str, ...] = ()
) -> None:
    """Run ``script`` in ``processes`` interpreters given ``args``, a start time 6 s ahead (when
    they have all started and imported) and ``extra``; each must exit 0."""
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    start = str(time.time() + 6)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args, start, *extra],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err[-2000:]


OPEN_AT = """
import sys, time
from giflab_assets.runner import open_instance
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))  # every process opens the instance at that moment
with open_instance(__import__("pathlib").Path(sys.argv[1])) as instance:
    instance.get_runs(limit=1)
"""


def test_processes_opening_a_new_instance_at_once_all_succeed(tmp_path):
    """The CLI, the sensor and the UI may open a fresh instance together; Dagster's SQLite
    storage creates its files unlocked (two processes stamped the schedule store's migration
    table twice in CI, breaking every later open), so GifLab's storage creates them under a
    file lock."""
    import sqlite3

    home = tmp_path / "dagster_home"
    run_at_once(OPEN_AT, [str(home)], processes=6, timeout=120)
    for db in home.rglob("*.db"):
        with sqlite3.connect(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "alembic_version" in tables:
                (n,) = conn.execute("SELECT COUNT(*) FROM alembic_version").fetchone()
                assert n == 1, db
    with open_instance(home) as instance:  # and it opens afterwards
        assert instance.get_runs(limit=1) == []


ADD_AT = """
import sys, time
from giflab_assets.runner import open_instance
start = float(sys.argv[2])
with open_instance(__import__("pathlib").Path(sys.argv[1])) as instance:
    time.sleep(max(0.0, start - time.time()))  # every process adds at that moment
    for i in range(int(sys.argv[3])):
        instance.add_dynamic_partitions("gifs", [f"k{i}", f"shared{i // 3}"])
"""


def test_processes_adding_the_same_partitions_at_once_all_succeed(tmp_path):
    """The CLI and the sensor daemon both register new files. Dagster reads which keys exist,
    then inserts the rest, so two processes adding one key at once broke the second on the
    unique index (CI: the sensor died with an IntegrityError). Adding is idempotent here."""
    import subprocess
    import sys

    from tests.conftest import REPO

    home = tmp_path / "dagster_home"
    subprocess.run([sys.executable, "-c", OPEN_AT, str(home), "0"], cwd=REPO, check=True)
    rounds = 150
    run_at_once(ADD_AT, [str(home)], processes=4, timeout=300, extra=(str(rounds),))
    with open_instance(home) as instance:
        keys = instance.get_dynamic_partitions("gifs")
    wanted = {f"k{i}" for i in range(rounds)} | {f"shared{i // 3}" for i in range(rounds)}
    assert sorted(keys) == sorted(wanted)
