r"""Batched soft statistics on the host: B problems as (problem, chunk) tiles of one run.

:func:`arbf._math.core.batched.soft_stats` (with a per-problem temperature
:math:`\sigma_b`) for NumPy arrays (and CPU tensors without gradient) of shape
``(B, n, d)``: the tiles ``(b, rows a:e)`` of all problems form one index space that the
worker threads of :mod:`.runtime` split into contiguous blocks; each tile is one BLAS
product ``C_b X_{b,a:e}^T``, one call of the compiled chunk kernel of :mod:`.soft` (the
one-problem pass's arithmetic, at problem ``b``'s temperature) and, where the kernel
leaves them, one product of the weighted responsibilities with the chunk, accumulating
into the thread's float64 partial sums of problem ``b``.  There is no per-problem Python
loop: the work per call is one dispatch per tile, as for one problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import soft as _soft
from .runtime import chunk_plan, n_threads, run_chunks

__all__ = ["soft_stats"]


class _State:
    def __init__(self, B: int, rows: int, k: int, d: int, dtype: Any, softmax: bool) -> None:
        self.GT = np.empty((k, rows), dtype=dtype)
        self.XS = np.empty((rows, d) if softmax else (0, 0), dtype=dtype)
        self.best = np.empty(rows, dtype=dtype)
        self.lab = np.empty(rows, dtype=np.intp)
        self.scr = np.empty((8, rows), dtype=np.float64)
        self.scr32 = np.empty((2, rows if softmax and dtype == np.float32 else 0), np.float32)
        self.s_buf = np.empty(rows if softmax else 0, dtype=np.float64)
        self.prod = np.empty((k, d), dtype=dtype)
        self.sums = np.zeros((B, k, d), dtype=np.float64)
        self.mass = np.zeros((B, k), dtype=np.float64)
        self.acc = np.zeros((B, 4), dtype=np.float64)


def soft_stats(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    sigmas: np.ndarray,
    kind: str,
    working_memory: Any = None,
    counts: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """``(sums (B, k, d), mass (B, k), L, F, J, T (B,))`` in ``X``'s dtype (accumulated in
    float64) for soft ``kind`` and positive per-problem ``sigmas`` (host float64
    ``(B,)``, clamped to the dtype's normal range as the one-problem pass clamps σ).
    ``counts``: problem ``b`` uses its first ``counts[b]`` centers only (the others get
    zero sums and mass): the one-problem pass on ``C[b, :counts[b]]``."""
    B, n, d = X.shape
    k = C.shape[1]
    dtype = X.dtype
    softmax = kind == "softmax"
    fi = np.finfo(dtype)
    sig = np.clip(np.asarray(sigmas, dtype=np.float64), float(fi.smallest_normal), float(fi.max))
    scales = -1.0 / sig if softmax else -0.5 / sig
    scales32 = np.maximum(scales, -float(np.finfo(np.float32).max)).astype(np.float32)
    X = np.ascontiguousarray(X)
    C = np.ascontiguousarray(C)
    c_sq = np.sum(C * C, axis=-1)  # in X's dtype, as the one-problem pass
    w = None if sample_weight is None else np.ascontiguousarray(sample_weight)
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    kernel = _soft._get_kernels()["chunk"]
    rows, _ = chunk_plan(n, k, d, dtype.itemsize, working_memory)
    per = -(-n // rows)
    ks = np.full(B, k, dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
    threads = max(1, min(n_threads(), B * per))

    def work(t: int, st: _State) -> None:
        b, c = divmod(t, per)
        a = c * rows
        e = min(a + rows, n)
        m = e - a
        Xc = X[b, a:e]
        wc = empty_w if w is None else w[b, a:e]
        kb = int(ks[b])
        GT = st.GT[:kb] if m == rows else np.empty((kb, m), dtype=dtype)
        Cb = C[b, :kb]
        np.dot(Cb, Xc.T, out=GT)
        s_out = st.s_buf[:m]
        dense = kernel(
            Xc, GT, st.XS, Cb, c_sq[b, :kb], wc, float(scales[b]), scales32[b], softmax,
            float(sig[b]), st.best, st.lab, st.scr, st.scr32, s_out, st.mass[b, :kb],
            st.sums[b, :kb], st.acc[b],
        )  # fmt: skip
        if dense:
            _soft.dense_sums(
                GT, Xc, st.XS[:m], softmax, st.prod[:kb], st.sums[b, :kb], st.mass[b, :kb]
            )
        if softmax:
            logs = np.log(s_out)
            total = float(logs.sum() if w is None else np.dot(wc, logs))
            st.acc[b, 1] -= sig[b] * total
            st.acc[b, 3] += total

    states = run_chunks(B * per, 1, threads, work, lambda: _State(B, rows, k, d, dtype, softmax))
    sums, mass, acc = states[0].sums, states[0].mass, states[0].acc
    for st in states[1:]:
        sums += st.sums
        mass += st.mass
        acc += st.acc
    with np.errstate(over="ignore"):  # F beyond the dtype's range is -inf (documented)
        out = acc.astype(dtype)
        return sums.astype(dtype), mass.astype(dtype), out[:, 0], out[:, 1], out[:, 2], out[:, 3]
