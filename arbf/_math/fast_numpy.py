"""Native NumPy fast paths for the nearest-center assignment and the Lloyd sums.

The pure-standard functions in :mod:`arbf._math.distances` are the tested reference;
for NumPy inputs they dispatch here.  The arithmetic is the same -- scores
``s_ij = ||c_j||^2 - 2 x_i . c_j`` (argmin, ties to the lowest index), exact
``||x_i - c_{l_i}||^2`` for the inertia -- but organised for speed on a CPU:

- rows are processed in chunks small enough to stay in cache, and each worker thread
  reuses one preallocated ``rows x k`` buffer (``np.matmul(X_chunk, C.T, out=buf)``);
  allocating fresh large temporaries costs page faults, which dominate this problem;
- chunks are spread over a few Python threads, each calling a single-threaded BLAS
  (limited with :mod:`threadpoolctl` when it is installed) and a compiled
  ``nogil`` kernel (with :mod:`numba`, the ``arbf[fast]`` extra) that fuses the argmin,
  the exact distance and the weighted accumulation into per-thread partial sums;
- partial sums, weights and inertia are accumulated in float64 whatever the input dtype,
  so float32 results agree with a float64 reference to about ``1e-6`` relative.

Without numba a NumPy-only chunk kernel is used (the same buffers and threads; the
update is a one-hot ``onehot^T @ X`` product per chunk).

Switch the fast paths off with the environment variable ``ARBF_DISABLE_FAST_PATHS=1``
(read at import) or by setting :data:`ENABLED` to ``False`` at run time; the callers
then use the pure-standard path.  Nothing here writes into its inputs.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from .._chunking import DEFAULT_WORKING_MEMORY_MB

__all__ = [
    "ENABLED",
    "HAVE_NUMBA",
    "applies",
    "assign",
    "assign_inertia",
    "lloyd_sums",
    "mean_rows",
]

#: Whether the NumPy fast paths are used (``ARBF_DISABLE_FAST_PATHS=1`` turns them off).
ENABLED: bool = os.environ.get("ARBF_DISABLE_FAST_PATHS", "").strip().lower() not in (
    "1",
    "true",
    "yes",
    "on",
)

#: Whether the compiled kernels may be used (set to ``False`` to test the NumPy kernel).
USE_NUMBA: bool = True

#: Bytes of per-thread chunk temporaries aimed at (they should stay in L2 cache).
CACHE_BYTES: int = 1 << 20

#: Fewest rows per chunk (small chunks make the BLAS call and Python overhead dominate).
MIN_ROWS: int = 256

#: Whether numba (the ``arbf[fast]`` extra) is installed; it is imported on first use.
HAVE_NUMBA: bool = importlib.util.find_spec("numba") is not None


# --------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------


def applies(X: Any, C: Any, sample_weight: Any = None) -> bool:
    """Whether the fast path handles these arrays (NumPy float32/float64, same dtype)."""
    if not ENABLED:
        return False
    if not (_plain_ndarray(X) and _plain_ndarray(C)):
        return False
    if X.dtype not in (np.float32, np.float64) or C.dtype != X.dtype:
        return False
    if X.ndim != 2 or C.ndim != 2 or X.shape[1] != C.shape[1] or C.shape[0] < 1:
        return False
    if sample_weight is not None and (
        not _plain_ndarray(sample_weight)
        or sample_weight.shape != (X.shape[0],)
        or sample_weight.dtype.kind != "f"
    ):
        return False
    return True


def _plain_ndarray(a: Any) -> bool:
    """An ``ndarray`` or a subclass with array semantics (``np.memmap``), not ``np.matrix``."""
    return isinstance(a, np.ndarray) and not isinstance(a, np.matrix)


# --------------------------------------------------------------------------------------
# threads and BLAS
# --------------------------------------------------------------------------------------

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_controller: Any = None
_controller_failed = False


def _blas_controller() -> Any:
    """A cached :class:`threadpoolctl.ThreadpoolController` (``None`` if unavailable)."""
    global _controller, _controller_failed
    if _controller is None and not _controller_failed:
        with _lock:
            if _controller is None and not _controller_failed:
                try:
                    from threadpoolctl import ThreadpoolController

                    _controller = ThreadpoolController().select(user_api="blas")
                except Exception:  # pragma: no cover - threadpoolctl missing or broken
                    _controller_failed = True
    return _controller


def _n_threads() -> int:
    """Worker threads: as many as NumPy's BLAS currently uses (1 without threadpoolctl)."""
    ctl = _blas_controller()
    if ctl is None:
        return 1
    try:
        counts = [int(info["num_threads"]) for info in ctl.info()]
    except Exception:  # pragma: no cover
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(max(counts, default=1), cpus or 1, 16))


def _single_threaded_blas(n_threads: int) -> AbstractContextManager[Any]:
    ctl = _blas_controller()
    if n_threads <= 1 or ctl is None:
        return nullcontext()
    return ctl.limit(limits=1)


def _get_pool(n_workers: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or _pool._max_workers < n_workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="arbf")
        return _pool


def _chunk_plan(n: int, k: int, d: int, itemsize: int, working_memory: float | None) -> tuple:
    """``(rows, n_threads)``: cache-sized chunks, within the ``working_memory`` budget.

    Each thread holds a ``rows x k`` score buffer and up to two ``rows x d`` buffers;
    all threads together stay within the budget.
    """
    budget = DEFAULT_WORKING_MEMORY_MB if working_memory is None else float(working_memory)
    if not budget > 0:
        raise ValueError(
            f"working_memory must be a positive number of MiB, got {working_memory!r}"
        )
    per_row = (k + 2 * d) * itemsize
    rows = max(CACHE_BYTES // per_row, MIN_ROWS)
    threads = min(_n_threads(), max(1, -(-n // rows)))
    rows = min(rows, int(budget * 2**20) // (threads * per_row))
    rows = max(1, min(rows, n))
    threads = min(threads, -(-n // rows))
    return rows, threads


def _run_chunks(
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

    with _single_threaded_blas(threads):
        if threads == 1:
            loop(0)
        else:
            pool = _get_pool(threads - 1)
            futures = [pool.submit(loop, t) for t in range(1, threads)]
            loop(0)
            for f in futures:
                f.result()
    return states


# --------------------------------------------------------------------------------------
# chunk kernels
# --------------------------------------------------------------------------------------


def _chunk_numpy(
    Xc: np.ndarray,
    G: np.ndarray,
    C: np.ndarray,
    c_sq: np.ndarray,
    wc: np.ndarray | None,
    labels: np.ndarray,
    min_sq: np.ndarray | None,
    st: _State,
    do_sums: bool,
) -> None:
    """NumPy chunk kernel: ``G`` holds ``Xc @ C.T`` on entry and is reused as scratch."""
    m = Xc.shape[0]
    np.add(G, G, out=G)
    np.subtract(c_sq, G, out=G)  # s_ij = ||c_j||^2 - 2 x_i . c_j, as in the pure path
    np.argmin(G, axis=1, out=labels)
    diff = st.dbuf[:m]
    np.take(C, labels, axis=0, out=diff)
    np.subtract(Xc, diff, out=diff)
    np.multiply(diff, diff, out=diff)
    dist = np.add.reduce(diff, axis=1, dtype=np.float64)
    if min_sq is not None:
        min_sq[...] = dist
    if wc is None:
        st.inertia += float(dist.sum())
    else:
        st.inertia += float(np.dot(dist, wc.astype(np.float64, copy=False)))
    if do_sums:
        st.wsum += np.bincount(labels, weights=wc, minlength=st.wsum.shape[0])
        G.fill(0)
        G[np.arange(m), labels] = 1 if wc is None else wc
        st.sums += (G.T @ Xc).astype(np.float64, copy=False)


def _sq_dist_python(X, C, i, j):
    """``||x_i - c_j||^2`` in float64.  Compiled with reassociation, so the sum over the
    features vectorises (a strict sequential sum is a latency-bound chain that dominated
    the kernel's time); every kernel that needs the exact nearest distance calls this
    one helper, so they agree to the bit."""
    dist = 0.0
    for c in range(X.shape[1]):
        t = np.float64(X[i, c]) - np.float64(C[j, c])
        dist += t * t
    return dist


_sq_dist: Any = None  # the compiled _sq_dist_python, set by _get_numba_kernel


def _chunk_python(X, G, C, c_sq, w, labels, min_sq, sums, wsum, inertia, do_sums):
    """Fused argmin, exact distance and weighted accumulation for one chunk (compiled).

    ``G`` holds ``X @ C.T``.  ``w`` and ``min_sq`` of length 0 mean unit weights and
    "not wanted".  ``sums``, ``wsum`` and ``inertia`` (float64) are this thread's partial
    sums.  Scores ``c_sq[j] - (g + g)`` are rounded exactly as the pure path's
    ``c_sq - 2.0 * G`` (doubling is exact), so labels agree, ties to the lowest index.
    """
    m, k = G.shape
    d = X.shape[1]
    has_w = w.shape[0] > 0
    want_min = min_sq.shape[0] > 0
    tot = 0.0
    for i in range(m):
        g = G[i, 0]
        best = c_sq[0] - (g + g)
        lab = 0
        for j in range(1, k):
            g = G[i, j]
            v = c_sq[j] - (g + g)
            if v < best:
                best = v
                lab = j
        labels[i] = lab
        dist = _sq_dist(X, C, i, lab)
        if want_min:
            min_sq[i] = dist
        wi = np.float64(w[i]) if has_w else 1.0
        tot += wi * dist
        if do_sums:
            wsum[lab] += wi
            for c in range(d):
                sums[lab, c] += wi * np.float64(X[i, c])
    inertia[0] += tot


_numba_kernel: Any = None


def _get_numba_kernel() -> Any:
    """The compiled chunk kernel (numba imported and the kernel jitted on first use)."""
    global _numba_kernel
    if _numba_kernel is None:
        with _lock:
            if _numba_kernel is None:
                get_sq_dist()
                import numba

                _numba_kernel = numba.njit(nogil=True, cache=True)(_chunk_python)
    return _numba_kernel


def get_sq_dist() -> Any:
    """The compiled :func:`_sq_dist_python` (also used by the soft-statistics kernels)."""
    global _sq_dist
    if _sq_dist is None:
        import numba

        # fastmath given explicitly (numba lets a callee that leaves it unset inherit
        # its caller's flags); reassociation only where it is wanted, the feature sum
        _sq_dist = numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})(
            _sq_dist_python
        )
    return _sq_dist


class _State:
    """One thread's buffers and float64 partial sums."""

    def __init__(self, rows: int, k: int, d: int, dtype: Any, need_dbuf: bool) -> None:
        self.G = np.empty((rows, k), dtype=dtype)
        self.xbuf: np.ndarray | None = None
        self.dbuf = np.empty((rows, d), dtype=dtype) if need_dbuf else self.G[:0]
        self.sums = np.zeros((k, d), dtype=np.float64)
        self.wsum = np.zeros(k, dtype=np.float64)
        self.inertia = 0.0
        self.inertia_arr = np.zeros(1, dtype=np.float64)


def _pass(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: float | None,
    do_sums: bool,
    want_min_sq: bool,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, float]:
    """One pass over ``X``: labels, optional min distances, float64 sums/weights/inertia."""
    n, d = X.shape
    k = C.shape[0]
    dtype = X.dtype
    C = np.ascontiguousarray(C)
    c_sq = np.sum(C * C, axis=1)  # the same expression as the pure path's sq_norms
    CT = C.T
    w = None
    if sample_weight is not None:
        w = np.ascontiguousarray(sample_weight)
        if w.dtype not in (np.float32, np.float64):
            w = w.astype(np.float64)
    labels = np.empty(n, dtype=np.intp)
    min_sq = np.empty(n, dtype=np.float64) if want_min_sq else None
    rows, threads = _chunk_plan(n, k, d, dtype.itemsize, working_memory)
    use_numba = HAVE_NUMBA and USE_NUMBA
    kernel = _get_numba_kernel() if use_numba else None
    x_contig = X.flags.c_contiguous
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    empty_min = np.empty(0, dtype=np.float64)

    def make_state() -> _State:
        st = _State(rows, k, d, dtype, need_dbuf=not use_numba)
        if not x_contig:
            st.xbuf = np.empty((rows, d), dtype=dtype)
        return st

    def work(a: int, st: _State) -> None:
        b = min(a + rows, n)
        m = b - a
        Xc = X[a:b]
        if st.xbuf is not None:
            np.copyto(st.xbuf[:m], Xc)
            Xc = st.xbuf[:m]
        G = st.G[:m]
        np.matmul(Xc, CT, out=G)
        wc = None if w is None else w[a:b]
        mc = None if min_sq is None else min_sq[a:b]
        if kernel is not None:
            kernel(
                Xc,
                G,
                C,
                c_sq,
                empty_w if wc is None else wc,
                labels[a:b],
                empty_min if mc is None else mc,
                st.sums,
                st.wsum,
                st.inertia_arr,
                do_sums,
            )
        else:
            _chunk_numpy(Xc, G, C, c_sq, wc, labels[a:b], mc, st, do_sums)

    states = _run_chunks(n, rows, threads, work, make_state)
    sums = states[0].sums
    wsum = states[0].wsum
    inertia = 0.0
    for i, st in enumerate(states):
        inertia += st.inertia + float(st.inertia_arr[0])
        if i:
            sums += st.sums
            wsum += st.wsum
    return labels, min_sq, sums, wsum, inertia


# --------------------------------------------------------------------------------------
# public fast paths (same contracts as the pure functions in distances.py)
# --------------------------------------------------------------------------------------


def lloyd_sums(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fast :func:`arbf._math.distances.lloyd_sums` for NumPy: ``(labels, sums, weights,
    inertia)`` in ``X``'s dtype (accumulated in float64)."""
    dtype = X.dtype
    labels, _, sums, wsum, inertia = _pass(
        X, C, sample_weight, working_memory=working_memory, do_sums=True, want_min_sq=False
    )
    return labels, sums.astype(dtype), wsum.astype(dtype), np.asarray(inertia, dtype=dtype)


def assign(
    X: np.ndarray, C: np.ndarray, *, working_memory: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fast :func:`arbf._math.distances.assign` for NumPy: ``(labels, min_sq)``."""
    labels, min_sq, _, _, _ = _pass(
        X, C, None, working_memory=working_memory, do_sums=False, want_min_sq=True
    )
    assert min_sq is not None
    return labels, min_sq.astype(X.dtype, copy=False)


def assign_inertia(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fast :func:`arbf._math.distances.assign_inertia` for NumPy: ``(labels, inertia)``."""
    labels, _, _, _, inertia = _pass(
        X, C, sample_weight, working_memory=working_memory, do_sums=False, want_min_sq=False
    )
    return labels, np.asarray(inertia, dtype=X.dtype)


def mean_rows(X: np.ndarray) -> np.ndarray:
    """Column means of ``X`` in ``X``'s dtype, accumulated in float64 over chunks.

    NumPy's own ``X.mean(axis=0)`` walks a tall, narrow array row by row (slow for small
    ``d``) and ``X.astype(float64)`` would copy all of ``X``; here each cache-sized
    chunk is (converted to float64 and) summed by a BLAS ``ones @ chunk`` product.
    """
    n, d = X.shape
    rows = max(1, min(n, CACHE_BYTES // (8 * d)))
    ones = np.ones(rows, dtype=np.float64)
    buf = None if X.dtype == np.float64 else np.empty((rows, d), dtype=np.float64)
    total = np.zeros(d, dtype=np.float64)
    for a in range(0, n, rows):
        b = min(a + rows, n)
        chunk = X[a:b]
        if buf is not None:
            np.copyto(buf[: b - a], chunk)
            chunk = buf[: b - a]
        total += ones[: b - a] @ chunk
    return (total / n).astype(X.dtype)
