"""Per-GIF work inside one step: a worker pool over the step's partitions, all or nothing."""

from collections.abc import Callable, Sequence
from typing import Any

from dagster import AssetExecutionContext, Failure

from giflab.parallel import MapResult, map_tasks
from giflab.schemas import Record
from resources import GifLabResource


def run_per_gif(
    giflab: GifLabResource,
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    save_each: Callable[[int, Any], None] | None = None,
) -> MapResult:
    """Run ``fn`` over ``items`` on the resource's workers; fail the step if interrupted.

    A partition is only ever marked materialised with its rows. A step with ``save_each`` has
    it store each item's result as soon as it arrives (``save_partitions``), without marking
    anything materialised: a SIGKILL, a failing item or Ctrl-C then loses no finished work, and
    interrupted, only the active tasks finish before the step fails; the next run redoes none
    of the saved work. A step without it saves nothing when interrupted (the CLI instead lets
    its batch finish, ``finish_batch_on_interrupt``, then stops launching runs).
    """
    done = map_tasks(
        fn,
        items,
        workers=giflab.workers,
        initializer=initializer,
        initargs=initargs,
        finish_all=giflab.finish_batch_on_interrupt and save_each is None,
        on_result=save_each,
    )
    unfinished = done.unfinished(len(items))
    if unfinished:
        saved = "nothing saved"
        if save_each is not None:
            saved = f"{len(done.results)} finished GIFs saved, their partitions left to redo"
        raise Failure(f"interrupted: {len(unfinished)} of {len(items)} GIFs not processed; {saved}")
    return done


def save_partitions(
    context: AssetExecutionContext, rows: Sequence[Record], keys: Sequence[str]
) -> None:
    """Write ``rows`` for ``keys`` of the step's asset as its IO manager writes an output, but
    without materialising them in Dagster: work kept before the step itself ends (or fails)."""
    io_manager = getattr(
        context.resources, context.assets_def.get_io_manager_key_for_asset_key(context.asset_key)
    )
    column = context.assets_def.metadata_by_key[context.asset_key].get("partition_expr")
    io_manager.write_partitions(context.asset_key.path[-1], rows, column, keys)
