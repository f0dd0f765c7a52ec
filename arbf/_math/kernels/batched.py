"""Batched Lloyd passes on the host: B problems as (problem, chunk) tiles of one kernel run.

:func:`arbf._math.core.batched.lloyd_sums` for NumPy arrays (and CPU tensors without
gradient) of shape ``(B, n, d)``: the tiles ``(b, rows a:b)`` of all problems form one
index space that the worker threads of :mod:`.runtime` split into contiguous blocks;
each tile is one BLAS product ``C_b X_{b,a:b}^T`` and one call of the compiled chunk
kernel of :mod:`.hard` (the same arithmetic as a one-problem pass, so the labels agree
with it), accumulating into the thread's float64 partial sums of problem ``b``.  There
is no per-problem Python loop: the work per call is one dispatch per tile, as for one
problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .hard import _get_kernels
from .runtime import chunk_plan, n_threads, run_chunks

__all__ = ["lloyd_sums"]


class _State:
    def __init__(self, B: int, rows: int, k: int, d: int, dtype: Any) -> None:
        self.GT = np.empty((k, rows), dtype=dtype)
        self.best = np.empty(rows, dtype=dtype)
        self.sums = np.zeros((B, k, d), dtype=np.float64)
        self.wsum = np.zeros((B, k), dtype=np.float64)
        self.inertia = np.zeros(B, dtype=np.float64)


def lloyd_sums(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: Any,
    do_sums: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(labels (B, n), sums (B, k, d), weights (B, k), inertia (B,))`` in ``X``'s dtype
    (accumulated in float64); with ``do_sums=False`` the sums and weights are zeros."""
    B, n, d = X.shape
    k = C.shape[1]
    dtype = X.dtype
    X = np.ascontiguousarray(X)
    C = np.ascontiguousarray(C)
    c_sq = np.sum(C * C, axis=-1)  # the pure path's sq_norms, problem by problem
    w = None if sample_weight is None else np.ascontiguousarray(sample_weight)
    if w is not None and w.dtype not in (np.float32, np.float64):
        w = w.astype(np.float64)
    labels = np.empty((B, n), dtype=np.intp)
    rows, _ = chunk_plan(n, k, d, dtype.itemsize, working_memory)
    per = -(-n // rows)
    threads = max(1, min(n_threads(), B * per))
    kernel = _get_kernels()["chunk"]
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    empty_min = np.empty(0, dtype=np.float64)

    def work(t: int, st: _State) -> None:
        b, c = divmod(t, per)
        a = c * rows
        e = min(a + rows, n)
        Xc = X[b, a:e]
        GT = st.GT if e - a == rows else np.empty((k, e - a), dtype=dtype)
        np.dot(C[b], Xc.T, out=GT)
        kernel(
            Xc, GT, C[b], c_sq[b], empty_w if w is None else w[b, a:e], labels[b, a:e],
            st.best, empty_min, st.sums[b], st.wsum[b], st.inertia[b : b + 1], do_sums,
        )  # fmt: skip

    states = run_chunks(B * per, 1, threads, work, lambda: _State(B, rows, k, d, dtype))
    sums, wsum, inertia = states[0].sums, states[0].wsum, states[0].inertia
    for st in states[1:]:
        sums += st.sums
        wsum += st.wsum
        inertia += st.inertia
    return labels, sums.astype(dtype), wsum.astype(dtype), inertia.astype(dtype)
