"""The runtime of the compiled kernels: worker threads, BLAS limits, the chunk plan.

Rows are processed in chunks small enough to stay in cache; each worker thread owns its
buffers and float64 partial sums and calls a single-threaded BLAS (limited with
:mod:`threadpoolctl`) and a compiled ``nogil`` kernel (:mod:`numba`), so the threads do
not wait for each other or for the GIL.  Thread ``t`` takes the ``t``-th contiguous
block of chunks and the partial sums are reduced in block order: results do not depend on
thread timing.

The worker threads come from one pool, created on first use (room for :data:`MAX_THREADS`)
and never replaced, so concurrent callers never see it shut down; its threads start on
demand.  ``n_threads`` of :func:`arbf.get_config` chooses how many a call uses (default:
as many as NumPy's BLAS, at most the CPUs and 16).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ..._chunking import budget_mb
from ..._config import get_config

__all__ = [
    "CACHE_BYTES",
    "HAVE_NUMBA",
    "MAX_THREADS",
    "MIN_ROWS",
    "chunk_plan",
    "n_threads",
    "run_chunks",
    "single_threaded_blas",
]

#: Bytes of per-thread chunk temporaries aimed at (they should stay in L2 cache).
CACHE_BYTES: int = 1 << 20

#: Fewest rows per chunk (small chunks make the BLAS call and Python overhead dominate).
MIN_ROWS: int = 256

#: Whether numba is importable (the compiled kernels need it); imported on first use.
HAVE_NUMBA: bool = importlib.util.find_spec("numba") is not None

_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
#: The pool's size: the most threads one call may use.
MAX_THREADS = 64

lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_controller: Any = None
_controller_failed = False


def _blas_controller() -> Any:
    """A cached :class:`threadpoolctl.ThreadpoolController` (``None`` if unavailable)."""
    global _controller, _controller_failed
    if _controller is None and not _controller_failed:
        with lock:
            if _controller is None and not _controller_failed:
                try:
                    from threadpoolctl import ThreadpoolController

                    _controller = ThreadpoolController().select(user_api="blas")
                except Exception:  # pragma: no cover - threadpoolctl missing or broken
                    _controller_failed = True
    return _controller


def n_threads() -> int:
    """Worker threads for one call: ``n_threads`` of the configuration (at most
    :data:`MAX_THREADS`), else as many as NumPy's BLAS currently uses (1 without
    threadpoolctl), at most the CPUs and 16."""
    wanted = get_config().n_threads
    if wanted is not None:
        return min(int(wanted), MAX_THREADS)
    ctl = _blas_controller()
    if ctl is None:
        return 1
    try:
        counts = [int(info["num_threads"]) for info in ctl.info()]
    except Exception:  # pragma: no cover
        return 1
    return max(1, min(max(counts, default=1), _CPUS or 1, 16))


def single_threaded_blas(threads: int = 2) -> AbstractContextManager[Any]:
    """BLAS limited to one thread inside (unless ``threads <= 1``: nothing to do)."""
    ctl = _blas_controller()
    if threads <= 1 or ctl is None:
        return nullcontext()
    return ctl.limit(limits=1)


def _after_fork_in_child() -> None:
    """A forked child inherits the pool object but not its threads (work submitted to it
    would wait forever) and possibly a lock held by a thread that no longer exists: start
    both afresh (``multiprocessing`` with the fork start method, test runners that fork)."""
    global _pool
    _pool = None
    reinit = getattr(lock, "_at_fork_reinit", None)
    if reinit is not None:
        reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="arbf")
    return _pool


def chunk_plan(n: int, k: int, d: int, itemsize: int, working_memory: Any) -> tuple[int, int]:
    """``(rows, threads)``: cache-sized chunks, within the ``working_memory`` budget.

    Each thread holds a ``rows x k`` score buffer and up to two ``rows x d`` buffers;
    all threads together stay within the budget (:func:`arbf._chunking.budget_mb`, the
    CPU value of ``"auto"``).
    """
    budget = budget_mb(working_memory)
    per_row = (k + 2 * d) * itemsize
    rows = max(CACHE_BYTES // per_row, MIN_ROWS)
    threads = min(n_threads(), max(1, -(-n // rows)))
    rows = min(rows, int(budget * 2**20) // (threads * per_row))
    rows = max(1, min(rows, n))
    threads = min(threads, -(-n // rows))
    return rows, threads


def run_chunks(
    n: int,
    rows: int,
    threads: int,
    work: Callable[[int, Any], None],
    make_state: Callable[[], Any],
) -> list[Any]:
    """Run ``work(start, state)`` for every chunk start, over ``threads`` threads.

    Thread ``t`` takes the ``t``-th contiguous block of chunks and owns one ``state``
    (buffers and partial sums); the states come back in block order, so the caller's
    reduction -- and hence the result -- does not depend on thread timing.
    """
    starts = list(range(0, n, rows))
    bounds = [len(starts) * t // threads for t in range(threads + 1)]
    states = [make_state() for _ in range(threads)]

    def loop(t: int) -> None:
        for start in starts[bounds[t] : bounds[t + 1]]:
            work(start, states[t])

    with single_threaded_blas(threads):
        if threads == 1:
            loop(0)
        else:
            pool = _get_pool()
            futures = [pool.submit(loop, t) for t in range(1, threads)]
            loop(0)
            for f in futures:
                f.result()
    return states
