"""Dagster's SQLite instance storage, with a batch of asset events written in one transaction.

A range run of N partitions logs N ``ASSET_MATERIALIZATION_PLANNED`` events when it is created
and N ``ASSET_MATERIALIZATION`` events when its step ends. Dagster hands such bursts to
``EventLogStorage.store_event_batch`` when ``$DAGSTER_EVENT_BATCH_SIZE`` is set, but the SQLite
event log does not override it: each event still opens two SQLite files (the run's shard and
the index) and commits twice, ~8 ms an event here. This storage writes a batch with one insert
per shard and the index's bookkeeping (tags, asset table) in the same transaction, the way
dagster-postgres writes materialisation batches: 200 partitions of a no-op asset 3.4 s -> 0.5 s.
Adding dynamic partitions is one upsert, as in dagster-postgres, so two writers adding one key
at once both succeed.
Everything else — layout under ``base_dir``, schema, reads — is ``DagsterSqliteStorage``'s, so
``dagster dev``, the daemon and earlier instances read the same files.

Opening it is serialised across processes by a file lock: Dagster's SQLite storages create
their files and stamp their migration tables without one, and the CLI, the sensor and the UI
opening a fresh instance together broke it for good ("alembic_version has more than one head").
A process that finds no ``dagster.yaml`` uses Dagster's own storage, without this lock, so
``scripts/setup.sh`` creates the instance first (``python -m giflab_assets.runner DAGSTER_HOME``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import DynamicPartitionsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from filelock import FileLock
from sqlalchemy.dialects import sqlite

# The burst events of a range run; other event types (step, run, check) are stored one by one.
BATCHED_EVENTS = {
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
}
# Events per batch the CLI asks Dagster for ($DAGSTER_EVENT_BATCH_SIZE): 7 bound values each,
# well under SQLite's 32 766 per statement.
EVENT_BATCH_SIZE = 500
# Partition keys per INSERT: 2 bound values each, under SQLite's 32 766 per statement.
PARTITION_ROWS_PER_INSERT = 10_000
LOCK_NAME = ".giflab-storage.lock"  # in base_dir; held while the storages open (or are created)


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose ``store_event_batch`` writes in one transaction per shard."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store ``events``: asset materialisations or planned events of one run, in bulk;
        any other mix event by event, as Dagster's SQLite storage does."""
        kinds = {e.dagster_event_type for e in events}
        runs = {e.run_id for e in events}
        if len(kinds) != 1 or not kinds <= BATCHED_EVENTS or len(runs) != 1:
            super().store_event_batch(events)
            return
        insert = self.prepare_insert_event_batch(events)
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(insert)
        # Mirrored in the index shard (cross-run asset queries), as store_event does per event.
        with self.index_transaction() as conn:
            result = conn.execute(insert.returning(SqlEventLogStorageTable.c.id))
            ids = [row[0] for row in result.fetchall()]
            self._store_asset_event_tags(conn, events, ids)
            for event, event_id in zip(events, ids, strict=True):
                self._store_asset_event(conn, event, event_id)

    def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        """Add the keys not present yet, as upserts in one transaction.

        Dagster's SQLite storage reads the existing keys and inserts the rest in two statements,
        so the CLI and the sensor daemon registering one new file at once broke the later on the
        unique index (IntegrityError). dagster-postgres pushes the upsert into the database the
        same way (``ON CONFLICT DO NOTHING``).
        """
        keys = list(dict.fromkeys(partition_keys))
        if not keys:
            return
        self._check_partitions_table()
        rows = [dict(partitions_def_name=partitions_def_name, partition=k) for k in keys]
        insert = sqlite.insert(DynamicPartitionsTable)
        with self.index_transaction() as conn:
            for i in range(0, len(rows), PARTITION_ROWS_PER_INSERT):
                chunk = rows[i : i + PARTITION_ROWS_PER_INSERT]
                conn.execute(insert.values(chunk).on_conflict_do_nothing())


class GifLabSqliteStorage(DagsterSqliteStorage):
    """``DagsterSqliteStorage`` (same files under ``base_dir``) with the batching event log."""

    def __init__(self, base_dir: str, inst_data=None) -> None:
        os.makedirs(base_dir, exist_ok=True)
        with FileLock(os.path.join(base_dir, LOCK_NAME)):
            super().__init__(base_dir, inst_data=inst_data)
            self._event_log_storage = BatchingSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> GifLabSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
