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


def test_sigint_watch_sees_a_signal_whose_handler_exception_was_lost():
    """Dagster's handler raises wherever the main thread is; inside a weakref callback that
    exception is only printed. The watch still sees the signal (it reads the wakeup fd)."""
    import os
    import signal

    from giflab.parallel import sigint_watch

    previous = signal.signal(signal.SIGINT, lambda *_: None)  # a handler that "loses" it
    try:
        with sigint_watch() as seen:
            assert not seen()
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):  # the handler runs between bytecodes: give it a few
                if seen():
                    break
            assert seen() and seen()  # and it stays seen
        with sigint_watch() as seen:
            assert not seen()  # a new watch starts clean
    finally:
        signal.signal(signal.SIGINT, previous)
