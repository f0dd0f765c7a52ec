"""Compiled hard-assignment kernels: nearest centers, the fused Lloyd sums, column means.

The contracts are those of :mod:`arbf._math.core.distances` (the tested reference); the
arithmetic is the same -- scores ``s_ij = ||c_j||^2 - 2 x_i . c_j`` (argmin, ties to the
lowest index), exact ``||x_i - c_{l_i}||^2`` for the inertia -- organised for a CPU:

- cache-sized chunks of rows (:func:`arbf._math.kernels.runtime.chunk_plan`) over a few
  threads, each reusing one preallocated ``rows x k`` buffer
  (``np.matmul(X_chunk, C.T, out=buf)``): allocating fresh large temporaries costs page
  faults, which dominate this problem;
- a compiled ``nogil`` kernel (:mod:`numba`) that fuses the argmin, the exact distance and
  the weighted accumulation into per-thread partial sums;
- partial sums, weights and inertia accumulated in float64 whatever the input dtype, so
  float32 results agree with a float64 reference to about ``1e-6`` relative.

Nothing here writes into its inputs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .runtime import CACHE_BYTES, chunk_plan, lock, run_chunks

__all__ = [
    "assign",
    "assign_inertia",
    "get_sq_dist",
    "labelled_inertia",
    "lloyd_sums",
    "mean_rows",
    "pairwise_distances",
]

#: Expanded squared distances at most this fraction of ``||x||^2 + ||c||^2`` are
#: recomputed directly by :func:`pairwise_distances` (there the expansion cancels).
RECOMPUTE_BELOW = 2.0**-10


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


_sq_dist: Any = None  # the compiled _sq_dist_python, set by get_sq_dist


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


def _labelled_python(X, C, w, labels, inertia):
    """``inertia[0] += Σ_i w_i ||x_i - c_{labels_i}||^2`` over one chunk, accumulated as
    :func:`_chunk_python` accumulates it (so equal labels give equal bits)."""
    m = X.shape[0]
    has_w = w.shape[0] > 0
    tot = 0.0
    for i in range(m):
        wi = np.float64(w[i]) if has_w else 1.0
        tot += wi * _sq_dist(X, C, i, labels[i])
    inertia[0] += tot


def _pairwise_python(X, C, G, c_sq, tau, out):
    """``out_ij = ||x_i - c_j||`` for one chunk from ``G = X C^T`` (float64): the expansion
    ``||x_i||^2 + ||c_j||^2 - 2 G_ij`` clamped at 0, recomputed directly (float64) where
    it is at most ``tau (||x_i||^2 + ||c_j||^2)`` -- where it cancels; so a point on a
    center is at exactly 0."""
    m, k = G.shape
    d = X.shape[1]
    for i in range(m):
        xs = 0.0
        for c in range(d):
            v = np.float64(X[i, c])
            xs += v * v
        for j in range(k):
            scale = xs + c_sq[j]
            v = scale - 2.0 * G[i, j]
            if v <= tau * scale:
                v = _sq_dist(X, C, i, j)
            out[i, j] = math.sqrt(v) if v > 0.0 else 0.0


_kernels: dict[str, Any] = {}


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


def _get_kernels() -> dict[str, Any]:
    """The compiled chunk kernels (numba imported and the kernels jitted on first use)."""
    if not _kernels:
        with lock:
            if not _kernels:
                get_sq_dist()
                import numba

                jit = numba.njit(nogil=True, cache=True)
                _kernels["labelled"] = jit(_labelled_python)
                _kernels["pairwise"] = jit(_pairwise_python)
                _kernels["chunk"] = jit(_chunk_python)
    return _kernels


class _State:
    """One thread's buffers and float64 partial sums."""

    def __init__(
        self, rows: int, k: int, d: int, dtype: Any, x_contig: bool, scores: bool = True
    ) -> None:
        self.G = np.empty((rows if scores else 0, k), dtype=dtype)
        self.xbuf = None if x_contig else np.empty((rows, d), dtype=dtype)
        self.sums = np.zeros((k, d), dtype=np.float64)
        self.wsum = np.zeros(k, dtype=np.float64)
        self.inertia_arr = np.zeros(1, dtype=np.float64)

    def rows_of(self, X: np.ndarray, a: int, b: int) -> np.ndarray:
        """``X[a:b]``, copied into this thread's contiguous buffer when ``X`` is not."""
        if self.xbuf is None:
            return X[a:b]
        out = self.xbuf[: b - a]
        np.copyto(out, X[a:b])
        return out


def _weights(sample_weight: np.ndarray | None) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.ascontiguousarray(sample_weight)
    return w if w.dtype in (np.float32, np.float64) else w.astype(np.float64)


def _pass(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: Any,
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
    w = _weights(sample_weight)
    labels = np.empty(n, dtype=np.intp)
    min_sq = np.empty(n, dtype=np.float64) if want_min_sq else None
    rows, threads = chunk_plan(n, k, d, dtype.itemsize, working_memory)
    kernel = _get_kernels()["chunk"]
    x_contig = X.flags.c_contiguous
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    empty_min = np.empty(0, dtype=np.float64)

    def work(a: int, st: _State) -> None:
        b = min(a + rows, n)
        Xc = st.rows_of(X, a, b)
        G = st.G[: b - a]
        np.matmul(Xc, CT, out=G)
        kernel(
            Xc,
            G,
            C,
            c_sq,
            empty_w if w is None else w[a:b],
            labels[a:b],
            empty_min if min_sq is None else min_sq[a:b],
            st.sums,
            st.wsum,
            st.inertia_arr,
            do_sums,
        )

    states = run_chunks(n, rows, threads, work, lambda: _State(rows, k, d, dtype, x_contig))
    sums = states[0].sums
    wsum = states[0].wsum
    inertia = 0.0
    for i, st in enumerate(states):
        inertia += float(st.inertia_arr[0])
        if i:
            sums += st.sums
            wsum += st.wsum
    return labels, min_sq, sums, wsum, inertia


def lloyd_sums(
    X: np.ndarray, C: np.ndarray, sample_weight: np.ndarray | None, *, working_memory: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`arbf._math.core.distances.lloyd_sums` for NumPy: ``(labels, sums, weights,
    inertia)`` in ``X``'s dtype (accumulated in float64)."""
    dtype = X.dtype
    labels, _, sums, wsum, inertia = _pass(
        X, C, sample_weight, working_memory=working_memory, do_sums=True, want_min_sq=False
    )
    return labels, sums.astype(dtype), wsum.astype(dtype), np.asarray(inertia, dtype=dtype)


def assign(X: np.ndarray, C: np.ndarray, *, working_memory: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`arbf._math.core.distances.assign` for NumPy: ``(labels, min_sq)``."""
    labels, min_sq, _, _, _ = _pass(
        X, C, None, working_memory=working_memory, do_sums=False, want_min_sq=True
    )
    assert min_sq is not None
    return labels, min_sq.astype(X.dtype, copy=False)


def assign_inertia(
    X: np.ndarray, C: np.ndarray, sample_weight: np.ndarray | None, *, working_memory: Any
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`arbf._math.core.distances.assign_inertia` for NumPy: ``(labels, inertia)``."""
    labels, _, _, _, inertia = _pass(
        X, C, sample_weight, working_memory=working_memory, do_sums=False, want_min_sq=False
    )
    return labels, np.asarray(inertia, dtype=X.dtype)


def labelled_inertia(
    X: np.ndarray,
    C: np.ndarray,
    labels: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: Any,
) -> np.ndarray:
    """:func:`arbf._math.core.distances.labelled_inertia` for NumPy: the inertia of given
    labels, chunked and accumulated exactly as :func:`assign_inertia` (so the inertia of
    the nearest-center labels equals :func:`assign_inertia`'s to the bit)."""
    n, d = X.shape
    k = C.shape[0]
    dtype = X.dtype
    C = np.ascontiguousarray(C)
    w = _weights(sample_weight)
    lab = np.ascontiguousarray(labels, dtype=np.intp)
    rows, threads = chunk_plan(n, k, d, dtype.itemsize, working_memory)
    kernel = _get_kernels()["labelled"]
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    x_contig = X.flags.c_contiguous

    def work(a: int, st: _State) -> None:
        b = min(a + rows, n)
        wc = empty_w if w is None else w[a:b]
        kernel(st.rows_of(X, a, b), C, wc, lab[a:b], st.inertia_arr)

    def make_state() -> _State:
        return _State(rows, k, d, dtype, x_contig, scores=False)

    states = run_chunks(n, rows, threads, work, make_state)
    inertia = 0.0
    for st in states:
        inertia += float(st.inertia_arr[0])
    return np.asarray(inertia, dtype=dtype)


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


def pairwise_distances(X: np.ndarray, C: np.ndarray, *, working_memory: Any) -> np.ndarray:
    """Euclidean distances ``||x_i - c_j||`` (``n x k``, ``X``'s dtype) for NumPy.

    ``X C^T`` in float64 by BLAS (float32 chunks are converted first), the expansion
    ``||x||^2 + ||c||^2 - 2 x.c`` clamped at 0, and the entries where that cancels (at
    most :data:`RECOMPUTE_BELOW` of ``||x||^2 + ||c||^2``) computed directly: a point on a
    center is at exactly 0, and every entry is at least as precise as the float64
    expansion (scikit-learn's ``euclidean_distances``).
    """
    n, d = X.shape
    k = C.shape[0]
    C64 = np.ascontiguousarray(C, dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", C64, C64)
    CT = C64.T
    out = np.empty((n, k), dtype=X.dtype)
    rows, threads = chunk_plan(n, 2 * k, 2 * d, 8, working_memory)
    kernel = _get_kernels()["pairwise"]
    upcast = X.dtype != np.float64

    def make_state() -> tuple[np.ndarray, np.ndarray | None]:
        buf = np.empty((rows, d), dtype=np.float64) if upcast else None
        return np.empty((rows, k), dtype=np.float64), buf

    def work(a: int, st: tuple[np.ndarray, np.ndarray | None]) -> None:
        b = min(a + rows, n)
        G, buf = st
        Xc = X[a:b]
        if buf is not None:
            np.copyto(buf[: b - a], Xc)
            Xc = buf[: b - a]
        np.matmul(Xc, CT, out=G[: b - a])
        kernel(Xc, C64, G[: b - a], c_sq, RECOMPUTE_BELOW, out[a:b])

    run_chunks(n, rows, threads, work, make_state)
    return out
