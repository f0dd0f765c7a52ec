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
as many as NumPy's BLAS, at most the CPUs and 16).  Where a call uses every CPU the
calling thread may run on, its threads are bound to one CPU each for the duration of the
call (:func:`_pin_plan`: after an idle pause Linux otherwise runs both threads of a
2-CPU machine on one CPU), and get their affinity back afterwards.
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

#: Whether a multi-threaded call pins its threads to distinct CPUs while it runs
#: (:func:`_pin_plan`; Linux only).  Tests switch it off to compare.
PIN_THREADS: bool = True

lock = threading.Lock()
_pin_lock = threading.Lock()  # held by the one call whose threads are pinned
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


def single_threaded_blas(limit: bool = True) -> AbstractContextManager[Any]:
    """BLAS limited to one thread inside (nothing done for ``limit=False``)."""
    ctl = _blas_controller()
    if not limit or ctl is None:
        return nullcontext()
    return ctl.limit(limits=1)


def _after_fork_in_child() -> None:
    """A forked child inherits the pool object but not its threads (work submitted to it
    would wait forever) and possibly locks held by threads that no longer exist (the
    pool's lock; the pinning lock of a call running in another thread, which would
    leave the child's calls unpinned for good): start them afresh (``multiprocessing``
    with the fork start method, test runners that fork)."""
    global _pool
    _pool = None
    for lk in (lock, _pin_lock):
        reinit = getattr(lk, "_at_fork_reinit", None)
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
    reduction -- and hence the result -- does not depend on thread timing.  While the
    call runs, its threads may be bound to one CPU each (:func:`_pin_plan`).  BLAS is
    limited to one thread inside when the call runs on several threads or while
    ``n_threads`` is configured (so ``n_threads=1`` uses one CPU); a one-thread call
    by default (one chunk, or NumPy's BLAS on one thread) leaves BLAS as it is.
    """
    starts = list(range(0, n, rows))
    bounds = [len(starts) * t // threads for t in range(threads + 1)]
    states = [make_state() for _ in range(threads)]
    cpus = _pin_plan(threads)

    def loop(t: int) -> None:
        with _pinned(cpus, t):
            for start in starts[bounds[t] : bounds[t + 1]]:
                work(start, states[t])

    # one BLAS thread inside each worker; also in a one-thread call when the caller chose
    # the threads (``n_threads=1`` means one CPU, not OpenBLAS's threads on every chunk,
    # which keep spinning ~0.1 s after the call)
    with single_threaded_blas(threads > 1 or get_config().n_threads is not None):
        if threads == 1:
            loop(0)
        else:
            futures: list[Any] = []
            try:
                pool = _get_pool()
                futures = [pool.submit(loop, t) for t in range(1, threads)]
                loop(0)
                for f in futures:
                    f.result()
            finally:
                # if a block raised, the other threads still finish theirs (and restore
                # their masks) before the call returns and its CPUs are free again
                for f in futures:
                    f.exception()
                if cpus is not None:
                    _pin_lock.release()
    return states


def _pin_plan(threads: int) -> list[int] | None:
    """Distinct CPUs for the ``threads`` threads of one call, or ``None`` (no pinning).

    Measured on the 2-CPU machines of the benchmarks: after the process has been idle
    for ~50 ms or more, Linux wakes the pool's worker on the CPU of the calling thread
    and leaves both there for the whole call, so a two-thread pass takes *longer* than a
    one-thread pass (45 ms against 41 ms for a one-iteration fit at (2e5, 32, 64)
    float32; 24-27 ms when the two threads are on two CPUs).  So while a call runs,
    thread ``t`` is bound to the ``t``-th CPU the calling thread may use
    (``os.sched_getaffinity``), and every thread gets its own mask back afterwards.
    Only where the call uses exactly as many threads as the calling thread may use CPUs
    (the default wherever NumPy's BLAS uses every CPU, up to 16): each CPU then runs
    one thread of the call, as an unpinned scheduler would ideally place them, so
    several processes calling at once are spread no worse than before; with fewer
    threads than CPUs, binding them to the first CPUs could crowd processes that the
    scheduler had spread out.  Not where the platform has no ``sched_setaffinity``, for
    one thread, when :data:`PIN_THREADS` is off, and not while another call is pinned
    (concurrent calls from several user threads would otherwise share the same CPUs):
    such calls run unpinned, as before.
    """
    if threads <= 1 or not PIN_THREADS or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except OSError:  # pragma: no cover - a restricted sandbox
        return None
    if len(allowed) != threads or not _pin_lock.acquire(blocking=False):
        return None
    return allowed


class _pinned:
    """Bind the current thread to ``cpus[t]`` inside the block, then restore its mask
    (a no-op for ``cpus is None`` or if the system refuses)."""

    def __init__(self, cpus: list[int] | None, t: int) -> None:
        self.cpus, self.t = cpus, t
        self.old: set[int] | None = None

    def __enter__(self) -> None:
        if self.cpus is not None:
            try:
                self.old = os.sched_getaffinity(0)
                os.sched_setaffinity(0, {self.cpus[self.t]})
            except OSError:  # pragma: no cover - e.g. a CPU taken offline meanwhile
                self.old = None

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            try:
                os.sched_setaffinity(0, self.old)
            except OSError:  # pragma: no cover
                pass
