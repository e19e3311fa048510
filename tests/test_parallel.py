"""The worker pool: results in order, errors kept per task, a crashing task blamed alone."""

import os

from giflab.parallel import WorkerCrashed, map_tasks


def square_or_die(x: int) -> int:
    if x == 13:
        os._exit(139)  # what a segfault in a native decoder looks like from outside
    if x == 7:
        raise ValueError("seven")
    return x * x


def test_errors_are_kept_per_task():
    done = map_tasks(square_or_die, [1, 7, 3], workers=2)
    assert done.results == {0: 1, 2: 9}
    assert isinstance(done.errors[1], ValueError)
    assert not done.interrupted


def test_a_task_that_kills_its_worker_is_blamed_and_the_rest_complete():
    items = list(range(20))
    done = map_tasks(square_or_die, items, workers=2)
    assert set(done.errors) == {7, 13}
    assert isinstance(done.errors[13], WorkerCrashed)
    assert done.results == {i: i * i for i in items if i not in (7, 13)}
    assert not done.interrupted
