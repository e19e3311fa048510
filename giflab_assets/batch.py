"""Per-GIF work inside one step: a worker pool over the step's partitions, all or nothing."""

from collections.abc import Callable, Sequence
from typing import Any

from dagster import Failure

from giflab.parallel import MapResult, map_tasks
from resources import GifLabResource


def run_per_gif(
    giflab: GifLabResource,
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> MapResult:
    """Run ``fn`` over ``items`` on the resource's workers; fail the step if interrupted.

    A partition is only ever marked materialised with its rows: an interrupted step saves
    nothing (the CLI instead lets the batch finish, then stops launching runs).
    """
    done = map_tasks(
        fn,
        items,
        workers=giflab.workers,
        initializer=initializer,
        initargs=initargs,
        finish_all=giflab.finish_batch_on_interrupt,
    )
    unfinished = done.unfinished(len(items))
    if unfinished:
        raise Failure(
            f"interrupted: {len(unfinished)} of {len(items)} GIFs not processed; nothing saved"
        )
    return done
