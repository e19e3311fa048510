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
    save_finished: Callable[[MapResult], int] | None = None,
) -> MapResult:
    """Run ``fn`` over ``items`` on the resource's workers; fail the step if interrupted.

    A partition is only ever marked materialised with its rows. Interrupted, a step with
    ``save_finished`` hands it the finished work (it stores those rows and returns how many GIFs
    it saved), then fails: only the active tasks finish after Ctrl-C, and the next run redoes
    none of the saved work. A step without saves nothing (the CLI instead lets its batch finish,
    ``finish_batch_on_interrupt``, then stops launching runs).
    """
    done = map_tasks(
        fn,
        items,
        workers=giflab.workers,
        initializer=initializer,
        initargs=initargs,
        finish_all=giflab.finish_batch_on_interrupt and save_finished is None,
    )
    unfinished = done.unfinished(len(items))
    if unfinished:
        saved = "nothing saved"
        if save_finished is not None:
            saved = f"{save_finished(done)} finished GIFs saved, their partitions left to redo"
        raise Failure(f"interrupted: {len(unfinished)} of {len(items)} GIFs not processed; {saved}")
    return done


def save_partitions(
    context: AssetExecutionContext, rows: Sequence[Record], keys: Sequence[str]
) -> None:
    """Write ``rows`` for ``keys`` of the step's asset as its IO manager writes an output, but
    without materialising them in Dagster: for a step about to fail after part of its work."""
    io_manager = getattr(
        context.resources, context.assets_def.get_io_manager_key_for_asset_key(context.asset_key)
    )
    column = context.assets_def.metadata_by_key[context.asset_key].get("partition_expr")
    io_manager.write_partitions(context.asset_key.path[-1], rows, column, keys)
