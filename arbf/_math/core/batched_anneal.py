r"""Batched problems: the per-problem quantities of the RBF annealer (the reference).

With a leading batch axis (``X`` of shape ``(B, n, d)``, centers ``(B, k, d)``, weights
``(B, n)`` or ``None``), each function returns problem ``b``'s value of its one-problem
counterpart, computed with batched products and reductions along the trailing axes (no
Python loop over B):

- :func:`mean_rows`: the column means :math:`\bar x_b` ``(B, 1, d)``
  (:func:`arbf._math.core.distances.mean_rows`);
- :func:`covariance`: :math:`\mathrm{Cov}_{w_b} X_b = \sum_i w_{bi}(x_{bi} - m_b)
  (x_{bi} - m_b)^\top / \sum_i w_{bi}` ``(B, d, d)``, :math:`m_b` the weighted mean
  (:func:`arbf._math.core.spectral.covariance`);
- :func:`min_margin`: :math:`\min_i (D_{bi(2)} - D_{bi(1)})` ``(B,)``, the smallest gap
  between the two nearest centers (``inf`` with one center;
  :func:`arbf._math.core.distances.min_margin`).

No host sync, no in-place writes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..._backend import Array, device_of, has_float64
from ..._chunking import iter_chunks
from .batched import batch_rows, sq_distances, sq_norms

__all__ = ["covariance", "mean_rows", "min_margin"]


def mean_rows(X: Array, *, xp: ModuleType) -> Array:
    """Column means ``(B, 1, d)`` of every problem in ``X``'s dtype (float32 summed in
    float64 where the backend has it)."""
    if X.dtype == xp.float32 and has_float64(xp, device_of(X)):
        total = xp.sum(X, axis=1, keepdims=True, dtype=xp.float64)
        return xp.astype(total / X.shape[1], X.dtype)
    return xp.mean(X, axis=1, keepdims=True)


def covariance(X: Array, w: Array | None, *, xp: ModuleType) -> Array:
    r"""The weighted covariance of every problem, ``(B, d, d)``:
    :math:`\sum_i w_{bi} (x_{bi} - m_b)(x_{bi} - m_b)^\top / \sum_i w_{bi}`."""
    if w is None:
        Xc = X - xp.mean(X, axis=1, keepdims=True)
        return xp.matmul(xp.matrix_transpose(Xc), Xc) / X.shape[1]
    total = xp.sum(w, axis=1)
    m = xp.sum(X * w[:, :, None], axis=1, keepdims=True) / total[:, None, None]
    Xc = X - m
    return xp.matmul(xp.matrix_transpose(Xc), Xc * w[:, :, None]) / total[:, None, None]


def min_margin(X: Array, C: Array, *, xp: ModuleType, working_memory: Any = None) -> Array:
    """``min_i (D_bi(2) - D_bi(1))`` of every problem, ``(B,)`` (``inf`` with one center);
    over chunks of rows."""
    B, k, _ = C.shape
    dev = device_of(X)
    if k < 2:
        return xp.full((B,), float("inf"), dtype=X.dtype, device=dev)
    rows = batch_rows(X, k, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    ks = xp.arange(k, device=dev)
    inf = xp.asarray(float("inf"), dtype=X.dtype, device=dev)
    mins = []
    for a, b in iter_chunks(X.shape[1], rows):
        D = sq_distances(X[:, a:b, ...], C, xp=xp, c_sq=c_sq)
        lab = xp.argmin(D, axis=-1)
        d1 = xp.min(D, axis=-1)
        at = xp.astype(ks, lab.dtype)[None, None, :] == lab[:, :, None]
        d2 = xp.min(xp.where(at, inf, D), axis=-1)
        mins.append(xp.min(d2 - d1, axis=-1))
    return mins[0] if len(mins) == 1 else xp.min(xp.stack(mins, axis=-1), axis=-1)
