"""Per-GIF work inside one step: a worker pool over the step's partitions, all or nothing."""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, Failure

from giflab.db import connect_readonly, table_exists
from giflab.parallel import MapResult, map_tasks
from giflab.schemas import Record
from io_managers import SqliteIOManager
from io_managers.sqlite_io_manager import RecordT, read_records
from resources import GifLabResource

PARTITION_COLUMN = "gif_sha"  # every per-GIF table's partition column


def run_per_gif(
    giflab: GifLabResource,
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    save_each: Callable[[int, Any], None],
) -> MapResult:
    """Run ``fn`` over ``items`` on the resource's workers; fail the step if interrupted.

    A partition is only ever marked materialised with its rows. ``save_each(index, result)``
    stores each item's result as soon as it arrives (through the IO manager's
    ``write_partitions``), without marking anything materialised: a SIGKILL, a failing item or
    Ctrl-C then loses no finished work, and interrupted, only the active tasks finish (within
    one task's time) before the step fails; the next run redoes none of the saved work
    (``saved_rows``, or the sweeps' missing variants).
    """
    done = map_tasks(
        fn,
        items,
        workers=giflab.workers,
        initializer=initializer,
        initargs=initargs,
        on_result=save_each,
    )
    unfinished = done.unfinished(len(items))
    if unfinished:
        raise Failure(
            f"interrupted: {len(unfinished)} of {len(items)} GIFs not processed; "
            f"{len(done.results)} finished GIFs saved, their partitions left to redo"
        )
    return done


def saved_rows(
    context: AssetExecutionContext,
    io_manager: SqliteIOManager,
    model: type[RecordT],
    keys: Sequence[str],
) -> dict[str, RecordT]:
    """The rows of the step's asset already stored for those of ``keys`` that are not
    materialised: what an interrupted or killed step saved one GIF at a time. A resumed step
    uses them instead of redoing that work; a materialised partition is always recomputed
    (re-materialising from the UI means "do it again")."""
    done = context.instance.get_materialized_partitions(context.asset_key)
    todo = [k for k in keys if k not in done]
    if not todo:
        return {}
    table = context.asset_key.path[-1]
    rows = read_records(io_manager.db_path, table, model, PARTITION_COLUMN, todo)
    return {getattr(r, PARTITION_COLUMN): r for r in rows}


def unsaved_keys(db_path: Path, table: str, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` without a row in ``table`` (all of them before the database or the
    table exists): Dagster remembers a partition as materialised after its rows are deleted,
    so planning a resume from Dagster's record alone would never make them again."""
    if not db_path.exists():
        return set(keys)
    conn = connect_readonly(db_path)
    try:
        if not table_exists(conn, table):
            return set(keys)
        have = {sha for (sha,) in conn.execute(f'SELECT "{PARTITION_COLUMN}" FROM "{table}"')}
    finally:
        conn.close()
    return set(keys) - have


def save_row(io_manager: SqliteIOManager, table: str, row: Record) -> None:
    """Store one GIF's row of ``table`` now (replacing any), without materialising anything."""
    io_manager.write_partitions(table, [row], PARTITION_COLUMN, [getattr(row, PARTITION_COLUMN)])
