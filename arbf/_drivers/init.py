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
from .._chunking import DEFAULT_WORKING_MEMORY_MB, chunk_rows, iter_chunks
from .._math.distances import _itemsize, sq_distances, sq_norms
from .._validation import (
    check_data,
    check_n_clusters,
    check_random_state,
    check_sample_weight,
)

__all__ = [
    "kmeans_parallel",
    "kmeans_parallel_impl",
    "kmeans_plusplus",
    "kmeans_plusplus_impl",
    "random_init_impl",
]


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

        k-means++ is sequential: one pass over the data and one host sync per center.
        On Dask the cumulative sums of the sampling weights are formed on the host, so
        each center also moves an ``n``-vector to the client: fine for moderate ``n``;
        for data that do not fit one memory use k-means|| (``init="k-means||"``,
        :func:`kmeans_parallel`), a few passes in all.
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


# --------------------------------------------------------------------------------------
# k-means|| (Bahmani, Moseley, Vattani, Kumar & Vassilvitskii 2012)
# --------------------------------------------------------------------------------------


def _nearest_candidates(
    X: Array, cands: Array, *, xp: ModuleType, working_memory: float | None
) -> Array:
    """Index of the nearest of ``m`` (possibly many) candidates for every row.

    Eager backends walk the rows in chunks (:func:`arbf._math.distances.assign`).  Dask
    arrays are one lazy chunk whose row blocks are Dask's own, so the candidates are
    walked in blocks instead, keeping a running minimum: no ``rows x m`` temporary larger
    than the memory budget for any ``m``.
    """
    from .._math.distances import assign

    if not is_dask(xp):
        return assign(X, cands, xp=xp, working_memory=working_memory)[0]
    from .._math import fast_dask

    if fast_dask.applies(X, cands):  # one task per row block
        return fast_dask.nearest_labels(X, cands)
    m = cands.shape[0]
    rows = max(max(X.chunks[0]), 1)
    budget = DEFAULT_WORKING_MEMORY_MB if working_memory is None else float(working_memory)
    block = max(1, min(m, int(budget * 2**20) // (4 * rows * _itemsize(X))))
    best_d = best_i = None
    for a in range(0, m, block):
        b = min(a + block, m)
        C = cands[a:b, ...]
        D = sq_norms(C, xp=xp)[None, :] - 2.0 * (X @ C.T)  # ||x||^2 does not change argmin
        d = xp.min(D, axis=1)
        i = xp.argmin(D, axis=1) + a
        if best_d is None:
            best_d, best_i = d, i
        else:
            better = d < best_d  # strict: ties stay with the lower index
            best_d = xp.where(better, d, best_d)
            best_i = xp.where(better, i, best_i)
    return best_i


def _candidate_weights(
    labels: Array, w: Array | None, m: int, *, xp: ModuleType, dtype: Any
) -> np.ndarray:
    """``W_c = sum_{i: nearest candidate of x_i is c} w_i`` on the host (one sync)."""
    if is_dask(xp):
        import dask.array as da

        return to_host(da.bincount(labels, weights=w, minlength=m)).astype(np.float64)
    from .._backend import segment_sum

    vals = xp.ones(labels.shape, dtype=dtype, device=device_of(labels)) if w is None else w
    return to_host(segment_sum(vals, labels, m, xp=xp)).astype(np.float64)


def _bernoulli_pick(
    wd: Array, ell: float, phi: float, rng: np.random.Generator, *, xp: ModuleType
) -> np.ndarray:
    """Indices ``i`` kept with probability ``min(1, ell * wd_i / phi)``.

    The uniforms come from the host Generator: drawn on the host for eager backends (one
    host round trip of the ``n``-vector ``wd``), or from a Dask Generator seeded by it,
    so on Dask only the ~``ell`` chosen indices leave the cluster.
    """
    if is_dask(xp):
        import dask.array as da

        seed = int(rng.integers(2**63 - 1))
        u = da.random.default_rng(seed).random(wd.shape[0], chunks=wd.chunks)
        keep = da.flatnonzero(u * phi < ell * xp.astype(wd, xp.float64))
        return np.asarray(to_host(keep), dtype=np.int64)
    wd_h = to_host(wd).astype(np.float64)
    u = rng.uniform(size=wd_h.shape[0])
    return np.flatnonzero(u * phi < ell * wd_h).astype(np.int64)


def kmeans_parallel_impl(
    X: Array,
    n_clusters: int,
    sample_weight: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
    oversampling_factor: float = 2.0,
    n_rounds: int = 5,
    working_memory: float | None = None,
) -> Array:
    """k-means|| candidates, then weighted k-means on them on the host (see
    :func:`kmeans_parallel`).  Returns the centers in the namespace of ``X``."""
    import warnings

    from .kmeans import kmeans

    n = X.shape[0]
    dev = device_of(X)
    ell = float(oversampling_factor) * n_clusters
    acc_dtype = xp.float64 if has_float64(xp, dev) else X.dtype
    first = int(rng.choice(n, p=_host_probabilities(sample_weight, n)))
    picked = [first]
    x_sq = sq_norms(X, xp=xp)
    closest = _dist_to_rows(
        X, X[first : first + 1, ...], x_sq, xp=xp, working_memory=working_memory
    )[:, 0]
    x_sq, closest = materialize(x_sq, closest, xp=xp)
    max_rounds = 4 * max(int(n_rounds), 1)
    r = 0
    while r < max_rounds:
        if r >= n_rounds and len(set(picked)) >= n_clusters:
            break
        r += 1
        wd = closest if sample_weight is None else closest * sample_weight
        wd = xp.astype(wd, acc_dtype)
        phi = float(to_host(xp.sum(wd)))
        if not phi > 0:  # every sample sits on a candidate
            break
        new = np.setdiff1d(_bernoulli_pick(wd, ell, phi, rng, xp=xp), picked)
        if new.size == 0:
            continue
        picked.extend(int(i) for i in new)
        rows = xp.take(X, from_host(new, xp=xp, device=dev), axis=0)
        D = _dist_to_rows(X, rows, x_sq, xp=xp, working_memory=working_memory)
        (closest,) = materialize(xp.minimum(closest, xp.min(D, axis=1)), xp=xp)
    idx = np.asarray(picked, dtype=np.int64)
    cand_h = to_host(xp.take(X, from_host(idx, xp=xp, device=dev), axis=0)).astype(np.float64)
    _, first_of = np.unique(cand_h, axis=0, return_index=True)
    keep = np.sort(first_of)  # distinct rows, in the order they were picked
    idx, cand_h = idx[keep], cand_h[keep]
    m = idx.shape[0]
    labels = _nearest_candidates(
        X,
        from_host(cand_h, xp=xp, device=dev, dtype=X.dtype),
        xp=xp,
        working_memory=working_memory,
    )
    wc = _candidate_weights(labels, sample_weight, m, xp=xp, dtype=X.dtype)
    if m < n_clusters:  # fewer distinct candidates than clusters: pad with data rows
        p = _host_probabilities(sample_weight, n)
        p[idx] = 0.0
        n_pad = min(n_clusters - m, int(np.count_nonzero(p)))
        if n_pad:
            extra = np.asarray(
                rng.choice(n, size=n_pad, replace=False, p=p / p.sum()), dtype=np.int64
            )
            rows_h = to_host(xp.take(X, from_host(extra, xp=xp, device=dev), axis=0))
            cand_h = np.concatenate([cand_h, rows_h.astype(np.float64)])
            wc = np.concatenate([wc, np.full(n_pad, 1e-12 * max(wc.sum(), 1.0))])
        while cand_h.shape[0] < n_clusters:  # fewer distinct rows than clusters
            cand_h = np.concatenate([cand_h, cand_h[: n_clusters - cand_h.shape[0]]])
            wc = np.concatenate([wc, wc[: n_clusters - wc.shape[0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = kmeans(cand_h, n_clusters, sample_weight=wc, n_init=1, random_state=rng)
    return from_host(np.asarray(res.centers), xp=xp, device=dev, dtype=X.dtype)


def kmeans_parallel(
    X: Any,
    n_clusters: int,
    /,
    *,
    sample_weight: Any = None,
    random_state: Any = None,
    oversampling_factor: float = 2.0,
    n_rounds: int = 5,
    working_memory: float | None = None,
) -> Array:
    r"""Choose initial centers with k-means|| (scalable k-means++).

    Bahmani et al. (2012), "Scalable K-Means++", weight-aware.  Start from one sample
    drawn with probability :math:`w_i/\sum w`; then, for ``n_rounds`` rounds, with
    :math:`D_i = \min_{c \in \mathcal C} \lVert x_i - c\rVert^2` the squared distance
    to the current candidate set :math:`\mathcal C` and
    :math:`\varphi = \sum_i w_i D_i`, add every sample independently with probability

    .. math:: \min\bigl(1,\ \ell\, w_i D_i / \varphi\bigr), \qquad
              \ell = \text{oversampling\_factor} \times k .

    Each round is one pass over the data (the ``n``-vector :math:`D` is updated with the
    distances to the new candidates only).  About :math:`1 + \ell \cdot` ``n_rounds``
    candidates result; each gets the weight :math:`W_c = \sum_{i \to c} w_i` of the
    samples nearest to it, and weighted k-means (greedy k-means++ then Lloyd) on the small
    weighted candidate set, on the host, gives the ``k`` centers.  Rounds continue past
    ``n_rounds`` while there are fewer than ``k`` distinct candidates.

    Random numbers come from the host Generator.  On eager backends the uniforms are
    drawn on the host (one round trip of an ``n``-vector per round, against one per
    *center* for k-means++); on Dask they are drawn on the workers from a Generator
    seeded by it, so only the chosen indices travel, and the result differs from the
    other backends' for the same seed.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    n_clusters : int
    sample_weight : array of shape (n_samples,), optional
    random_state : int, numpy Generator or None
    oversampling_factor : float, default=2.0
        :math:`\ell / k`.
    n_rounds : int, default=5
    working_memory : float, optional
        Memory budget in MiB for one chunk.

    Returns
    -------
    centers : array of shape (n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> from arbf._drivers.init import kmeans_parallel
    >>> X = xp.asarray([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
    >>> C = kmeans_parallel(X, 2, random_state=0)
    >>> sorted(float(v) for v in C[:, 0])
    [0.0, 9.0]
    """
    X, xp = check_data(X)
    n_clusters = check_n_clusters(n_clusters, X.shape[0])
    w = check_sample_weight(
        sample_weight, X.shape[0], xp=xp, dtype=X.dtype, device=device_of(X), like=X
    )
    rng = check_random_state(random_state)
    if not (isinstance(oversampling_factor, int | float) and oversampling_factor > 0):
        raise ValueError(f"oversampling_factor must be > 0, got {oversampling_factor!r}")
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, numbers.Integral) or n_rounds < 1:
        raise ValueError(f"n_rounds must be a positive integer, got {n_rounds!r}")
    return kmeans_parallel_impl(
        X,
        n_clusters,
        w,
        rng,
        xp=xp,
        oversampling_factor=float(oversampling_factor),
        n_rounds=int(n_rounds),
        working_memory=working_memory,
    )
