"""The worker pool: results in order, errors kept per task, a crashing task blamed alone."""

import os
import signal
import sys

import pytest

from giflab import parallel
from giflab.parallel import WorkerCrashed, map_tasks, shared_pool


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


# os.kill with SIGTERM terminates the process on Windows, where no handler can run
INTERRUPTS = [
    "SIGINT",
    pytest.param("SIGTERM", marks=pytest.mark.skipif(sys.platform == "win32", reason="kills")),
]


@pytest.mark.parametrize("signum", INTERRUPTS)
def test_sigint_watch_sees_a_signal_whose_handler_exception_was_lost(signum):
    """Dagster's handler raises wherever the main thread is; inside a weakref callback that
    exception is only printed. The watch still sees the signal (it reads the wakeup fd), a
    SIGTERM as a Ctrl-C."""
    import os
    import signal

    from giflab.parallel import sigint_watch

    signum = getattr(signal, signum)
    previous = signal.signal(signum, lambda *_: None)  # a handler that "loses" it
    try:
        with sigint_watch() as seen:
            assert not seen()
            os.kill(os.getpid(), signum)
            for _ in range(100):  # the handler runs between bytecodes: give it a few
                if seen():
                    break
            assert seen() and seen()  # and it stays seen
        with sigint_watch() as seen:
            assert not seen()  # a new watch starts clean
    finally:
        signal.signal(signum, previous)


@pytest.mark.parametrize("signum", INTERRUPTS)
def test_a_signal_inside_stop_on_sigint_sets_stop_instead_of_raising(signum):
    import threading

    from giflab.parallel import stop_on_sigint

    signum = getattr(signal, signum)
    before = signal.getsignal(signum)
    stop = threading.Event()
    with stop_on_sigint(stop):
        os.kill(os.getpid(), signum)
        for _ in range(100):  # the handler runs between bytecodes
            if stop.is_set():
                break
    assert stop.is_set()
    assert signal.getsignal(signum) is before  # restored on the way out


_inits: list[str] = []  # in a worker: the initializer calls this process has seen


def record_init(tag: str) -> None:
    _inits.append(tag)


def worker_state(x: int) -> tuple[int, tuple[str, ...], bool]:
    """This worker's pid, its initializer calls so far, and whether it ignores SIGINT."""
    return os.getpid(), tuple(_inits), signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def _by_pid(done) -> dict[int, tuple[str, ...]]:
    """The last initializer calls each worker reported."""
    assert not done.errors
    return {pid: inits for pid, inits, _ in done.results.values()}


def test_a_shared_pool_serves_every_call_and_initialises_each_worker_once_per_initializer():
    with shared_pool(2) as pool:
        first = map_tasks(
            worker_state, range(12), workers=2, initializer=record_init, initargs=("a",)
        )
        again = map_tasks(
            worker_state, range(12), workers=2, initializer=record_init, initargs=("a",)
        )
        other = map_tasks(
            worker_state, range(12), workers=2, initializer=record_init, initargs=("b",)
        )
        plain = map_tasks(worker_state, range(12), workers=2)
        executor = pool.executor()
    pids = {pid for done in (first, again, other, plain) for pid in _by_pid(done)}
    assert len(pids) <= 2  # the same two processes throughout
    assert all(inits == ("a",) for inits in _by_pid(again).values())  # once per worker
    # A different initializer's state replaces the last one's: it runs, once, in each worker.
    assert all(inits[-1] == "b" and inits.count("b") == 1 for inits in _by_pid(other).values())
    assert all(ignores for _, _, ignores in plain.results.values())  # Ctrl-C is the parent's
    assert parallel._shared is None and executor._shutdown_thread  # shut down on the way out


def test_outside_a_shared_pool_each_call_starts_its_own():
    first = map_tasks(worker_state, range(6), workers=2, initializer=record_init, initargs=("a",))
    again = map_tasks(worker_state, range(6), workers=2, initializer=record_init, initargs=("a",))
    assert not set(_by_pid(first)) & set(_by_pid(again))
    assert all(inits == ("a",) for inits in _by_pid(again).values())


def test_a_worker_crash_in_a_shared_pool_is_blamed_alone_and_the_pool_replaced():
    items = list(range(20))
    with shared_pool(2) as pool:
        broken = pool.executor()
        done = map_tasks(square_or_die, items, workers=2)
        assert pool.executor() is not broken
        after = map_tasks(square_or_die, [2, 3], workers=2)
    assert set(done.errors) == {7, 13}
    assert isinstance(done.errors[13], WorkerCrashed)
    assert done.results == {i: i * i for i in items if i not in (7, 13)}
    assert after.results == {0: 4, 1: 9} and not after.errors


@pytest.mark.parametrize("workers", [1, 2])
def test_nested_shared_pools_use_the_outer_one(workers):
    with shared_pool(2) as outer, shared_pool(workers) as inner:
        assert inner is outer


def die_on_start() -> None:
    os._exit(1)  # a worker that cannot start: a broken install, a __main__ that re-runs a CLI


def test_workers_that_die_before_any_task_blame_no_task():
    """If no worker can even start, no item is at fault: the map refuses to run (ingest would
    otherwise quarantine every file of the folder as a decoder crash)."""
    with pytest.raises(parallel.PoolUnusable, match="before running any task"):
        map_tasks(square_or_die, [1, 2, 3], workers=2, initializer=die_on_start)
