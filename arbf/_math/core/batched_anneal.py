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
  :func:`arbf._math.core.distances.min_margin`);
- :func:`utilities`: per center :math:`[U_{bj}, E_{bj}]` ``(B, k, 2)``
  (:func:`arbf._math.core.distances.utilities`);
- the passes of deterministic annealing, where problem ``b`` has its first ``m_b``
  centers (a mask ``active`` ``(B, k)``) at its own temperature :math:`\sigma_b`: the
  soft statistics :func:`masked_soft_stats` (:func:`arbf._math.core.soft.soft_stats` of
  ``X[b]``, ``C[b, :m_b]``) and :func:`principal_axes_pass`
  (:func:`arbf._math.core.spectral.principal_axes_pass`).  An inactive center gets
  :math:`r_{bij} = 0` exactly: its gap is ``inf`` (softmax) or puts its entmax-1.5 score
  4 below the row's smallest (entmax-1.5's threshold lies within 1 of half the largest
  score, so such an entry is clipped to 0).

No host sync, no in-place writes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..._backend import Array, device_of, has_float64
from ..._chunking import Accumulator, iter_chunks
from .batched import (
    batch_rows,
    labelled_sq_distances,
    segment_sum,
    soft_from_gaps,
    sq_distances,
    sq_norms,
)
from .segments import SegmentSum
from .soft import SoftStats

__all__ = [
    "covariance",
    "masked_soft_stats",
    "mean_rows",
    "min_margin",
    "principal_axes_pass",
    "utilities",
]


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


def _two_nearest(D: Array, *, xp: ModuleType) -> tuple[Array, Array, Array]:
    """``(l, D_(1), D_(2))`` along the last axis of ``(B, rows, k)`` distances."""
    k = D.shape[-1]
    lab = xp.argmin(D, axis=-1)
    d1 = xp.min(D, axis=-1)
    ks = xp.arange(k, device=device_of(D))
    inf = xp.asarray(float("inf"), dtype=D.dtype, device=device_of(D))
    d2 = xp.min(
        xp.where(xp.astype(ks, lab.dtype)[None, None, :] == lab[:, :, None], inf, D), axis=-1
    )
    return lab, d1, d2


def utilities(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    segment_sum_native: SegmentSum | None = None,
) -> Array:
    r"""Per center of every problem :math:`[U_{bj}, E_{bj}]` ``(B, k, 2)``:
    :math:`U_{bj} = \sum_{l_{bi} = j} w_{bi}(D_{bi(2)} - D_{bi(1)})`,
    :math:`E_{bj} = \sum_{l_{bi} = j} w_{bi} D_{bi(1)}`."""
    k = C.shape[1]
    rows = batch_rows(X, k, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    total = None
    for a, b in iter_chunks(X.shape[1], rows):
        lab, d1, d2 = _two_nearest(sq_distances(X[:, a:b, ...], C, xp=xp, c_sq=c_sq), xp=xp)
        ue = xp.stack([d2 - d1, d1], axis=-1)
        if w is not None:
            ue = ue * w[:, a:b, None]
        part = segment_sum(ue, lab, k, xp=xp, native=segment_sum_native)
        total = part if total is None else total + part
    assert total is not None
    return total


def _masked_responsibilities(
    D: Array, active: Array, sigmas: Array, *, kind: str, xp: ModuleType
) -> tuple[Array, Array, Array, Array]:
    """``(R, aux, G, lab)`` of ``(B, rows, k)`` distances with the inactive centers
    (``active`` false) at responsibility 0: ``G`` the gaps to the nearest active center
    (0 at inactive ones), ``aux`` as :func:`.batched.soft_from_gaps`."""
    inf = xp.asarray(float("inf"), dtype=D.dtype, device=device_of(D))
    Dm = xp.where(active[:, None, :], D, inf)
    lab = xp.argmin(Dm, axis=-1)
    G = Dm - xp.min(Dm, axis=-1, keepdims=True)
    zero = xp.zeros_like(G)
    G_fin = xp.where(active[:, None, :], G, zero)
    s3 = sigmas[:, None, None]
    if kind == "softmax":
        R, aux = soft_from_gaps(G, sigma=s3, kind=kind, xp=xp)
    else:  # an inactive score 4 below the row's smallest active one: clipped to 0
        far = xp.max(G_fin, axis=-1, keepdims=True) + 4.0 * s3
        R, aux = soft_from_gaps(xp.where(active[:, None, :], G, far), sigma=s3, kind=kind, xp=xp)
    return R, aux, G_fin, lab


def masked_soft_stats(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    sigmas: Array,
    active: Array,
    kind: str,
    xp: ModuleType,
    working_memory: Any = None,
) -> SoftStats:
    """The soft statistics of every problem over its active centers (``active``
    ``(B, k)``, at ``sigmas`` ``(B,)`` > 0): sums ``(B, k, d)`` and masses ``(B, k)`` (0 at
    inactive centers), :math:`L_\\sigma, F_\\sigma, J, T` ``(B,)``."""
    B, k, d = C.shape
    rows = batch_rows(X, k, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    dev = device_of(X)
    acc = Accumulator(xp)
    for a, b in iter_chunks(X.shape[1], rows):
        Xc = X[:, a:b, ...]
        wc = None if w is None else w[:, a:b]
        D = sq_distances(Xc, C, xp=xp, c_sq=c_sq)
        R, aux, G, lab = _masked_responsibilities(D, active, sigmas, kind=kind, xp=xp)
        dist = labelled_sq_distances(Xc, C, lab, xp=xp)
        extra_l = xp.sum(R * G, axis=-1)
        if kind == "softmax":
            t_row = aux
        else:
            t_row = (4.0 / 3.0) * xp.sum(R - R * aux, axis=-1)
        extra_f = (0.0 if kind == "softmax" else extra_l) - sigmas[:, None] * t_row
        Rw = R if wc is None else R * wc[:, :, None]
        ones = xp.ones((B, b - a, 1), dtype=X.dtype, device=dev)
        sm_c = xp.matmul(xp.matrix_transpose(Rw), xp.concat([Xc, ones], axis=-1))
        per_row = xp.stack([dist + extra_l, dist + extra_f, dist, t_row], axis=-1)
        if wc is not None:
            per_row = per_row * wc[:, :, None]
        acc.add(xp.concat([xp.reshape(sm_c, (B, k * (d + 1))), xp.sum(per_row, axis=1)], axis=-1))
    tot = acc.result()
    sm = xp.reshape(tot[:, : k * (d + 1)], (B, k, d + 1))
    return SoftStats(sm[:, :, :d], sm[:, :, d], tot[:, -4], tot[:, -3], tot[:, -2], tot[:, -1])


def principal_axes_pass(
    X: Array,
    C: Array,
    V: Array,
    w: Array | None,
    *,
    sigmas: Array,
    active: Array,
    kind: str,
    xp: ModuleType,
    working_memory: Any = None,
) -> tuple[Array, Array]:
    r"""One power-iteration product with every active center's weighted covariance:
    ``(A (B, k, d), N (B, k))``, :math:`A_{bj} = \sum_i w_{bi} r_{bij} (x_{bi} -
    \mu_{bj})((x_{bi} - \mu_{bj})\cdot v_{bj})`, :math:`N_{bj} = \sum_i w_{bi} r_{bij}`
    (0 at inactive centers)."""
    B, k, d = C.shape
    rows = batch_rows(X, 2 * k, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    cv = xp.sum(C * V, axis=-1)
    acc = Accumulator(xp)
    for a, b in iter_chunks(X.shape[1], rows):
        Xc = X[:, a:b, ...]
        D = sq_distances(Xc, C, xp=xp, c_sq=c_sq)
        R, _, _, _ = _masked_responsibilities(D, active, sigmas, kind=kind, xp=xp)
        if w is not None:
            R = R * w[:, a:b, None]
        RU = R * (xp.matmul(Xc, xp.matrix_transpose(V)) - cv[:, None, :])
        A = xp.matmul(xp.matrix_transpose(RU), Xc) - xp.sum(RU, axis=1)[:, :, None] * C
        acc.add(xp.concat([xp.reshape(A, (B, k * d)), xp.sum(R, axis=1)], axis=-1))
    tot = acc.result()
    return xp.reshape(tot[:, : k * d], (B, k, d)), tot[:, k * d :]
