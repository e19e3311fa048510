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
    save_each: Callable[[int, Any], None] | None = None,
) -> MapResult:
    """Run ``fn`` over ``items`` on the resource's workers; fail the step if interrupted.

    A partition is only ever marked materialised with its rows. A step with ``save_each`` has
    it store each item's result as soon as it arrives (through the IO manager's
    ``write_partitions``), without marking anything materialised: a SIGKILL, a failing item or
    Ctrl-C then loses no finished work, and interrupted, only the active tasks finish before
    the step fails; the next run redoes none of the saved work. A step without it saves nothing when interrupted (the CLI instead lets
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
