"""The exact entmax-1.5 threshold of one row, and the compiled entmax-1.5 of a matrix.

``p_j = [y_j - τ]_+^2`` with ``y = (z - max z)/2`` and τ the root of
``Σ_j [y_j - τ]_+^2 = 1``: Newton on that convex decreasing function from ``τ = -1``
(left of the root, so the iterates increase), stopping as soon as the exact root for the
current support (the sort-based formula) is consistent with that support.  The
soft-statistics kernel (:mod:`.soft`) and the row kernel here share these helpers;
:func:`arbf._math.core.entmax.entmax15` (sort-based) is their tested reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .runtime import chunk_plan, lock, run_chunks

__all__ = ["entmax15_rows", "threshold_helpers"]


def _support_root_python(n_in, a1, a2):
    """The smaller root ``τ`` of ``Σ_{j∈S} (y_j - τ)^2 = 1`` for a support ``S`` of size
    ``n_in`` with ``Σ y_j = a1`` and ``Σ y_j^2 = a2`` (the sort-based formula)."""
    mean = a1 / n_in
    delta = (1.0 - (a2 - a1 * mean)) / n_in
    return mean - math.sqrt(delta if delta > 0.0 else 0.0)


def _entmax_tau_python(y):
    """``(τ, support size)`` with ``Σ_j [y_j - τ]_+^2 = 1`` for scores ``y`` whose maximum
    is 0: Newton on that convex decreasing function from ``τ = -1`` (left of the root, so
    the iterates increase), stopping as soon as the exact root for the current support is
    consistent with that support."""
    t = -1.0
    n_in = 0.0
    for _ in range(200):
        n_in = 0.0
        a1 = 0.0
        a2 = 0.0
        least = np.inf
        top_out = -np.inf
        for j in range(y.shape[0]):
            v = np.float64(y[j])
            if v > t:
                n_in += 1.0
                a1 += v
                a2 += v * v
                least = min(least, v)
            else:
                top_out = max(top_out, v)
        tq = _support_root(n_in, a1, a2)
        if least >= tq and top_out <= tq:
            return tq, n_in
        f = a2 - 2.0 * t * a1 + n_in * t * t - 1.0
        t = t + f / (2.0 * (a1 - n_in * t))
    return t, n_in


_support_root: Any = None  # compiled by threshold_helpers
_entmax_tau: Any = None


def threshold_helpers() -> tuple[Any, Any]:
    """The compiled ``(support_root, entmax_tau)`` (before any kernel that calls them)."""
    global _support_root, _entmax_tau
    if _entmax_tau is None:
        with lock:
            if _entmax_tau is None:
                import numba

                # strict, and fastmath set explicitly: numba lets a callee that leaves it
                # unset inherit its caller's flags
                strict = numba.njit(nogil=True, cache=True, fastmath=False)
                _support_root = strict(_support_root_python)
                _entmax_tau = strict(_entmax_tau_python)
    return _support_root, _entmax_tau


# --------------------------------------------------------------------------------------
# entmax-1.5 of a score matrix (rows independent)
# --------------------------------------------------------------------------------------


def _entmax15_rows_python(z, out):
    """``out_i = entmax15(z_i)`` for each row: the threshold τ of ``y = (z - max z)/2``
    by :func:`_entmax_tau_python` (as in the soft-statistics kernel); ``-inf`` scores
    get 0."""
    m, k = z.shape
    y = np.empty(k, dtype=np.float64)
    for i in range(m):
        mx = -np.inf
        for j in range(k):
            mx = max(mx, np.float64(z[i, j]))
        for j in range(k):
            y[j] = (np.float64(z[i, j]) - mx) * 0.5
        tau, _ = _entmax_tau(y)
        for j in range(k):
            u = y[j] - tau
            out[i, j] = u * u if u > 0.0 else 0.0


_row_kernels: dict[str, Any] = {}


def entmax15_rows(z: np.ndarray) -> np.ndarray:
    """Exact entmax-1.5 of every row of ``z`` (2-D float32/float64; compiled, over
    threads); never writes ``z``."""
    if not _row_kernels:
        threshold_helpers()
        with lock:
            if not _row_kernels:
                import numba

                _row_kernels["entmax15"] = numba.njit(nogil=True, cache=True)(
                    _entmax15_rows_python
                )
    kernel = _row_kernels["entmax15"]
    n, k = z.shape
    out = np.empty_like(z, order="C")
    rows, threads = chunk_plan(n, 2 * k, 0, z.dtype.itemsize, None)

    def work(a: int, _: None) -> None:
        b = min(a + rows, n)
        kernel(z[a:b], out[a:b])

    run_chunks(n, rows, threads, work, lambda: None)
    return out
