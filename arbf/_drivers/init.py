"""Center initialisation: greedy k-means++ and weighted random sampling.

Random numbers come from one seeded NumPy Generator on the host, so the same
``random_state`` draws the same numbers on every backend; the distance computations run
on the data's own device.
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import (
    Array,
    device_of,
    from_host,
    has_float64,
    is_dask,
    materialize,
    to_host,
)
from .._chunking import chunk_rows, iter_chunks
from .._math.distances import _itemsize, sq_distances, sq_norms
from .._validation import (
    check_data,
    check_n_clusters,
    check_random_state,
    check_sample_weight,
)

__all__ = ["kmeans_plusplus", "kmeans_plusplus_impl", "random_init_impl"]


def _host_probabilities(sample_weight: Array | None, n: int) -> np.ndarray:
    """Sampling probabilities ``w / sum(w)`` on the host.

    Unit weights give an explicit uniform vector, not ``None``: NumPy's ``choice`` draws
    differently with and without ``p``, and ``sample_weight=ones`` must equal ``None``.
    """
    if sample_weight is None:
        return np.full(n, 1.0 / n)
    p = to_host(sample_weight).astype(np.float64)
    return p / p.sum()


def _dist_to_rows(
    X: Array, rows: Array, x_sq: Array, *, xp: ModuleType, working_memory: float | None
) -> Array:
    """``n x m`` squared distances to ``m`` (few) rows, over chunks, concatenated."""
    n = X.shape[0]
    step = chunk_rows(n, rows.shape[0], _itemsize(X), xp=xp, working_memory=working_memory)
    r_sq = sq_norms(rows, xp=xp)
    parts = [
        sq_distances(X[a:b, ...], rows, xp=xp, x_sq=x_sq[a:b], c_sq=r_sq)
        for a, b in iter_chunks(n, step)
    ]
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def _weighted_sum0(D: Array, w: Array | None, *, xp: ModuleType) -> Array:
    return xp.sum(D if w is None else D * w[:, None], axis=0)


def kmeans_plusplus_impl(
    X: Array,
    n_clusters: int,
    sample_weight: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
    n_local_trials: int | None = None,
    working_memory: float | None = None,
) -> tuple[Array, np.ndarray]:
    """Greedy k-means++ (Arthur & Vassilvitskii 2007; scikit-learn's greedy variant).

    Each new center is the best of ``n_local_trials`` (default ``2 + floor(ln k)``)
    candidates drawn with probability proportional to ``w_i D(x_i)^2``, "best" meaning the
    lowest resulting potential ``sum_i w_i min(D_i, D(x_i, candidate))``.  One host sync
    per center.  Returns ``(centers, indices)`` with ``indices`` a host array.
    """
    n = X.shape[0]
    dev = device_of(X)
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    p = _host_probabilities(sample_weight, n)
    first = int(rng.choice(n, p=p))
    indices = [first]
    x_sq = sq_norms(X, xp=xp)
    closest = _dist_to_rows(
        X, X[first : first + 1, ...], x_sq, xp=xp, working_memory=working_memory
    )[:, 0]
    # Dask: keep the n-vectors as concrete chunks so each center's graph is shallow
    x_sq, closest = materialize(x_sq, closest, xp=xp)
    acc_dtype = xp.float64 if has_float64(xp, dev) else X.dtype
    for _ in range(1, n_clusters):
        wd = closest if sample_weight is None else closest * sample_weight
        cum = xp.astype(wd, acc_dtype)
        if is_dask(xp):
            cum_h = np.cumsum(to_host(cum))
            pot = float(cum_h[-1])
            rand = rng.uniform(size=n_local_trials) * pot
            cand_h = np.minimum(np.searchsorted(cum_h, rand), n - 1)
        else:
            cum = xp.cumulative_sum(cum)
            pot = float(to_host(cum[-1]))
            rand = rng.uniform(size=n_local_trials) * pot
            cand = xp.searchsorted(cum, from_host(rand, xp=xp, device=dev, dtype=acc_dtype))
            cand_h = np.minimum(to_host(cand), n - 1).astype(np.int64)
        cand_rows = xp.take(X, from_host(cand_h, xp=xp, device=dev), axis=0)
        D = xp.minimum(
            closest[:, None],
            _dist_to_rows(X, cand_rows, x_sq, xp=xp, working_memory=working_memory),
        )
        D, pots_d = materialize(D, _weighted_sum0(D, sample_weight, xp=xp), xp=xp)
        pots = to_host(pots_d)
        best = int(np.argmin(pots))
        closest = D[:, best]
        indices.append(int(cand_h[best]))
    idx_h = np.asarray(indices, dtype=np.int64)
    centers = xp.take(X, from_host(idx_h, xp=xp, device=dev), axis=0)
    return centers, idx_h


def random_init_impl(
    X: Array,
    n_clusters: int,
    sample_weight: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
) -> tuple[Array, np.ndarray]:
    """``n_clusters`` distinct rows drawn with probability proportional to ``w_i``."""
    n = X.shape[0]
    p = _host_probabilities(sample_weight, n)
    if int(np.count_nonzero(p)) < n_clusters:
        raise ValueError(
            f"init='random' needs at least n_clusters={n_clusters} samples with positive "
            f"weight, got {int(np.count_nonzero(p))}"
        )
    idx = np.asarray(rng.choice(n, size=n_clusters, replace=False, p=p), dtype=np.int64)
    return xp.take(X, from_host(idx, xp=xp, device=device_of(X)), axis=0), idx


def kmeans_plusplus(
    X: Any,
    n_clusters: int,
    /,
    *,
    sample_weight: Any = None,
    random_state: Any = None,
    n_local_trials: int | None = None,
    working_memory: float | None = None,
) -> tuple[Array, np.ndarray]:
    r"""Choose initial centers with greedy, weight-aware k-means++.

    The first center is drawn with probability :math:`w_i / \sum w`; each next one is the
    best of ``n_local_trials`` candidates drawn with probability proportional to
    :math:`w_i \min_j \lVert x_i - \mu_j\rVert^2`, keeping the candidate that most
    lowers the potential :math:`\sum_i w_i \min_j \lVert x_i-\mu_j\rVert^2`.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    n_clusters : int
    sample_weight : array of shape (n_samples,), optional
    random_state : int, numpy Generator or None
        Seeds one host NumPy Generator: the same seed gives the same centers on every
        backend.
    n_local_trials : int, optional
        Candidates per center (default ``2 + floor(ln k)``).
    working_memory : float, optional
        Memory budget in MiB for one chunk.

    Returns
    -------
    centers : array of shape (n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.
    indices : numpy array of shape (n_clusters,)
        Row of ``X`` each center was taken from.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> centers, idx = arbf.kmeans_plusplus(X, 2, random_state=0)
    >>> sorted(int(i) // 2 for i in idx)
    [0, 1]
    """
    X, xp = check_data(X)
    n_clusters = check_n_clusters(n_clusters, X.shape[0])
    w = check_sample_weight(
        sample_weight, X.shape[0], xp=xp, dtype=X.dtype, device=device_of(X), like=X
    )
    rng = check_random_state(random_state)
    if n_local_trials is not None and (
        isinstance(n_local_trials, bool)
        or not isinstance(n_local_trials, numbers.Integral)
        or n_local_trials < 1
    ):
        raise ValueError(f"n_local_trials must be a positive integer, got {n_local_trials!r}")
    return kmeans_plusplus_impl(
        X,
        n_clusters,
        w,
        rng,
        xp=xp,
        n_local_trials=n_local_trials,
        working_memory=working_memory,
    )
