"""Running per-GIF work on a pool of worker processes, stoppable between tasks.

``STOP`` is set by the CLI's Ctrl-C (or SIGTERM) handler: no new task starts, active ones
finish and their results are returned, so the caller can flush them. Workers are started with
``spawn`` on every OS (identical behaviour on Linux, macOS and Windows, and no fork of a
threaded parent).

Each ``map_tasks`` call starts its own pool, unless it runs inside ``shared_pool``: then every
call with that many workers reuses one pool, whose workers import their modules only once.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from giflab.errors import GifLabError

STOP = threading.Event()
# What stops a run the way Ctrl-C does: SIGTERM too (`kill`, a service manager, a CI's cancel).
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)
_shared: WorkerPool | None = None
_progress_hook: Callable[[int], None] | None = None
_total_hook: Callable[[int], None] | None = None


def set_progress_hook(
    hook: Callable[[int], None] | None, total: Callable[[int], None] | None = None
) -> None:
    """Install callables told how many tasks finished and how many a map will run (for an ETA)."""
    global _progress_hook, _total_hook
    _progress_hook, _total_hook = hook, total


@dataclass
class MapResult:
    """Results in input order for finished tasks; failures keep their exception."""

    results: dict[int, Any] = field(default_factory=dict)
    errors: dict[int, BaseException] = field(default_factory=dict)
    interrupted: bool = False
    # Called in the parent as each task succeeds, with its index and result (``map_tasks``).
    on_result: Callable[[int, Any], None] | None = field(default=None, repr=False)

    def _succeeded(self, i: int, value: Any) -> None:
        self.results[i] = value
        if self.on_result is not None:
            self.on_result(i, value)

    def unfinished(self, n: int) -> list[int]:
        """Indices in ``range(n)`` that neither succeeded nor failed."""
        return [i for i in range(n) if i not in self.results and i not in self.errors]


@contextmanager
def stop_on_sigint(stop: threading.Event) -> Iterator[None]:
    """While inside, Ctrl-C (or SIGTERM) sets ``stop`` instead of raising (main thread only).

    This also shields an in-process Dagster run, whose own handler would otherwise abandon the
    step (and the finished work in it) at its next checkpoint.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in INTERRUPTS}
    for signum in INTERRUPTS:
        signal.signal(signum, lambda *_: stop.set())
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def sigint_watch() -> Iterator[Callable[[], bool]]:
    """Notice every SIGINT or SIGTERM delivered while inside, whichever Python handler runs and
    even when that handler's exception is lost; yields ``seen()``: has one arrived since the
    start?

    Dagster's own handler (installed while a run executes) raises an exception wherever the
    main thread is; raised inside a weakref callback or ``__del__`` it is only printed
    ("Exception ignored in ...") and the run goes on as if nothing happened. The interpreter's
    wakeup fd receives the signal number before any handler runs, so it cannot be lost.
    Main thread only (elsewhere ``seen()`` is always False).
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    reader, writer = socket.socketpair()  # a socket: what Windows accepts as a wakeup fd
    reader.setblocking(False)
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    got = False

    def seen() -> bool:
        nonlocal got
        try:
            while data := reader.recv(512):
                got = got or any(signum in data for signum in INTERRUPTS)
        except BlockingIOError:
            pass
        return got

    try:
        yield seen
    finally:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()


def _worker_init(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    # Ctrl-C in a terminal reaches the whole process group: workers ignore it and finish their
    # task; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


_initialised_with: tuple | None = None  # in a shared pool's worker: the initializer last run


def _call_initialised(fn: Callable[..., Any], initializer, initargs: tuple, item: Any) -> Any:
    """``fn(item)`` in a shared pool's worker, after ``initializer(*initargs)`` unless it was
    the last one this process ran (initializers set per-process state, such as a loaded model,
    so one that differs from the last must run again)."""
    global _initialised_with
    if initializer is not None and _initialised_with != (initializer, initargs):
        _initialised_with = None
        initializer(*initargs)
        _initialised_with = (initializer, initargs)
    return fn(item)


def _spawn_pool(workers: int, initializer=None, initargs: tuple = ()) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(initializer, initargs),
    )


class WorkerPool:
    """One pool of ``workers`` spawned processes kept across ``map_tasks`` calls (see
    ``shared_pool``); started on first use and replaced after a worker dies."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def executor(self) -> ProcessPoolExecutor:
        """The live pool, started if need be."""
        if self._executor is None:
            self._executor = _spawn_pool(self.workers)
        return self._executor

    def replace(self) -> None:
        """Drop a broken pool; the next ``executor()`` starts a fresh one."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


@contextmanager
def shared_pool(workers: int) -> Iterator[WorkerPool | None]:
    """While inside, ``map_tasks`` calls with ``workers`` workers share one pool instead of
    starting one each; initializers then run lazily, once per worker process, before its first
    task of that (initializer, initargs). Nested, the outermost pool serves. The pool is shut
    down on the way out, whatever the exit."""
    global _shared
    if workers <= 1 or _shared is not None:
        yield _shared
        return
    _shared = WorkerPool(workers)
    try:
        yield _shared
    finally:
        pool, _shared = _shared, None
        pool.replace()  # stops the workers; tasks already running finish first


def map_tasks(
    fn: Callable[..., Any],
    items: Sequence[Any],
    *,
    workers: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: Iterable[Any] = (),
    on_result: Callable[[int, Any], None] | None = None,
) -> MapResult:
    """Call ``fn(item)`` for each item on ``workers`` processes (inline when 1).

    Exceptions are collected per item, never raised. Ctrl-C (or ``STOP``) ends submission early
    and the tasks already running finish. Inside ``shared_pool`` of ``workers``, its pool is used.
    ``on_result(index, result)`` runs in this process as each task succeeds (e.g. to store its
    rows at once); an exception from it is raised, not collected.
    """
    if _total_hook is not None:
        _total_hook(len(items))
    with stop_on_sigint(STOP):
        return _map_tasks(fn, items, workers, initializer, tuple(initargs), STOP, on_result)


def _map_tasks(fn, items, workers, initializer, initargs, stop, on_result=None) -> MapResult:
    out = MapResult(on_result=on_result)
    if workers <= 1 or len(items) <= 1:
        if initializer is not None:
            initializer(*initargs)
        for i, item in enumerate(items):
            if stop.is_set():
                out.interrupted = True
                break
            try:
                value = fn(item)
            except Exception as e:
                out.errors[i] = e
            else:
                out._succeeded(i, value)
            _report(1)
        return out
    remaining = list(range(len(items)))
    suspects: list[int] = []
    while remaining:
        crashed = _pool_pass(fn, items, remaining, workers, initializer, initargs, stop, out)
        if not crashed:
            break
        # A worker died (segfault, OOM kill): the tasks in flight are suspects. Each is retried
        # alone in a one-worker pool, so only the task that kills its worker is blamed.
        done = set(out.results) | set(out.errors)
        suspects = [i for i in crashed if i not in done]
        for i in suspects:
            if stop.is_set():
                break
            if _pool_pass(fn, items, [i], 1, initializer, initargs, stop, out):
                _check_workers_start(initializer, initargs)  # else no task is to blame
                out.errors[i] = WorkerCrashed(f"worker process died while running task {i}")
                _report(1)
        done = set(out.results) | set(out.errors)
        remaining = [i for i in remaining if i not in done and i not in suspects]
    out.interrupted = len(out.results) + len(out.errors) < len(items)
    return out


class WorkerCrashed(RuntimeError):
    """The worker process running a task died (killed, or a crash in native code)."""


class PoolUnusable(GifLabError):
    """Worker processes die before running any task: the installation or the environment is
    at fault, not the items (which are left alone)."""


def _canary(x: int) -> int:
    return x


def _check_workers_start(initializer, initargs) -> None:
    """Raise ``PoolUnusable`` unless a fresh worker, set up like the others, runs a no-op."""
    probe = MapResult()
    if _pool_pass(_canary, [0], [0], 1, initializer, initargs, threading.Event(), probe):
        raise PoolUnusable(
            "worker processes die before running any task (a broken installation, or a "
            "script that starts giflab without `if __name__ == '__main__':`); nothing was "
            "blamed on the input"
        )


def _pool_pass(fn, items, indices, workers, initializer, initargs, stop, out) -> list[int]:
    """Run ``items[indices]`` on the shared pool of ``workers`` if there is one, else on a fresh
    pool; return the in-flight indices if a worker died (a shared pool is then replaced)."""
    shared = _shared if _shared is not None and _shared.workers == workers else None
    if shared is None:
        with _spawn_pool(max(1, min(workers, len(indices))), initializer, initargs) as pool:
            return _drain(pool, fn, items, indices, workers, stop, out)
    task = partial(_call_initialised, fn, initializer, initargs)
    crashed = _drain(shared.executor(), task, items, indices, workers, stop, out)
    if crashed:
        shared.replace()
    return crashed


def _drain(pool, fn, items, indices, workers, stop, out) -> list[int]:
    """Submit ``items[indices]`` (at most ``2 x workers`` in flight) and collect the results."""
    from concurrent.futures.process import BrokenProcessPool

    pending: dict[Future, int] = {}
    queue = list(indices)
    try:
        while True:
            while queue and len(pending) < workers * 2 and not stop.is_set():
                i = queue.pop(0)
                pending[pool.submit(fn, items[i])] = i
            if not pending:
                return []
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                i = pending.pop(f)
                try:
                    value = f.result()
                except BrokenProcessPool:
                    pending[f] = i
                    raise
                except Exception as e:
                    out.errors[i] = e
                else:
                    out._succeeded(i, value)
                _report(1)
    except BrokenProcessPool:
        return sorted(pending.values())


def _report(n: int) -> None:
    if _progress_hook is not None:
        _progress_hook(n)
