r"""Principal axes: of the data (the critical temperature) and of each soft cluster.

- :func:`covariance` and :func:`principal_axis` give the largest eigenvalue
  :math:`\lambda_{\max}` of the weighted covariance :math:`\mathrm{Cov}_w X` and its
  eigenvector.  The first split of the RBF network (softmax) happens at
  :math:`\sigma_c = 2\lambda_{\max}` (Rose, Gurewitz & Fox 1990, with σ dividing the
  squared distance); every σ schedule and the deterministic annealing start from it.
- :func:`principal_axes_pass` is one power-iteration product with every center's
  responsibility-weighted covariance (deterministic annealing's splits).

No host sync, except in :func:`principal_axis` (which returns host values).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..._backend import Array, device_of, from_host, to_host
from ..._chunking import Accumulator, chunk_rows, iter_chunks
from .distances import mean_rows, sq_distances, sq_norms
from .responsibilities import soft_from_gaps

__all__ = ["EIGH_MAX_FEATURES", "covariance", "principal_axes_pass", "principal_axis"]

#: Up to this many features the covariance is formed and diagonalised exactly (on the
#: host); above, power iteration on products with the centred data.
EIGH_MAX_FEATURES = 1024


def _weighted_mean(X: Array, w: Array | None, *, xp: ModuleType) -> Array:
    if w is None:
        return mean_rows(X, xp=xp)
    return xp.sum(X * w[:, None], axis=0) / xp.sum(w)


def covariance(X: Array, w: Array | None, *, xp: ModuleType) -> Array:
    """The weighted covariance :math:`\\sum_i w_i (x_i - m)(x_i - m)^\\top / \\sum_i w_i`
    (``d x d``), :math:`m` the weighted mean."""
    Xc = X - _weighted_mean(X, w, xp=xp)
    if w is None:
        return (Xc.T @ Xc) / X.shape[0]
    return (Xc.T @ (Xc * w[:, None])) / xp.sum(w)


def principal_axis(
    X: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    v0: np.ndarray | None = None,
    max_iter: int = 300,
    rtol: float = 1e-10,
) -> tuple[float, np.ndarray]:
    """``(λ_max, v)``: the largest eigenvalue of :math:`\\mathrm{Cov}_w X` and a unit
    eigenvector (host float64).  One host sync (one per power iteration above
    :data:`EIGH_MAX_FEATURES` features).

    Up to :data:`EIGH_MAX_FEATURES` features: ``eigh`` of the covariance on the host.
    Above: power iteration with products :math:`X_c^\\top (W X_c v)` (no ``d x d``
    matrix), from ``v0`` (default a fixed random vector), until the Rayleigh quotient
    changes by less than ``rtol`` relative.
    """
    d = X.shape[1]
    if d <= EIGH_MAX_FEATURES:
        cov = to_host(covariance(X, w, xp=xp)).astype(np.float64)
        vals, vecs = np.linalg.eigh(cov)  # reads the lower triangle
        return float(max(vals[-1], 0.0)), vecs[:, -1]
    Xc = X - _weighted_mean(X, w, xp=xp)
    total = float(X.shape[0]) if w is None else float(to_host(xp.sum(w)))
    v = np.random.default_rng(0).standard_normal(d) if v0 is None else np.array(v0, float)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(max_iter):
        u = Xc @ from_host(v, xp=xp, device=device_of(X), dtype=X.dtype)
        if w is not None:
            u = u * w
        a = to_host(Xc.T @ u).astype(np.float64) / total
        new = float(a @ v)
        norm = float(np.linalg.norm(a))
        if norm == 0.0:
            return 0.0, v
        v = a / norm
        if abs(new - lam) <= rtol * abs(new):
            lam = new
            break
        lam = new
    return max(lam, 0.0), v


def principal_axes_pass(
    X: Array,
    C: Array,
    V: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    xp: ModuleType,
    working_memory: Any = None,
) -> tuple[Array, Array]:
    r"""One power-iteration product with every center's weighted covariance.

    Returns ``(A, N)`` with :math:`A_j = \sum_i w_i r_{ij} (x_i - \mu_j)
    \big((x_i - \mu_j)\cdot v_j\big)` and :math:`N_j = \sum_i w_i r_{ij}`, so that
    :math:`A_j / N_j = \Sigma_j v_j`.  One chunked pass, no host sync.
    """
    k = C.shape[0]
    rows = chunk_rows(X, 2 * k, xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    cv = xp.sum(C * V, axis=1)
    acc_a, acc_n = Accumulator(xp), Accumulator(xp)
    for a, b in iter_chunks(X.shape[0], rows):
        Xc = X[a:b, ...]
        D = sq_distances(Xc, C, xp=xp, c_sq=c_sq)
        G = D - xp.min(D, axis=1, keepdims=True)
        G = xp.where(G > 0, G, xp.zeros_like(G))
        R, _ = soft_from_gaps(G, sigma=sigma, kind=kind, xp=xp)
        if w is not None:
            R = R * w[a:b, None]
        RU = R * (Xc @ V.T - cv[None, :])
        acc_a.add(RU.T @ Xc - xp.sum(RU, axis=0)[:, None] * C)
        acc_n.add(xp.sum(R, axis=0))
    return acc_a.result(), acc_n.result()
