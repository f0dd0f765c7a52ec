"""Center initialisation: greedy k-means++, weighted random sampling, k-means‖, and the
one resolver that turns an ``init`` option into centers for every driver and estimator.

Random numbers come from one seeded NumPy Generator on the host, so the same
``random_state`` draws the same numbers on every backend; the distance computations run
on the data's own device.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import (
    Array,
    array_namespace,
    device_of,
    from_host,
    has_float64,
    is_dask,
    is_sparse,
    itemsize,
    materialize,
    to_host,
)
from .._chunking import budget_mb
from .._math import seam
from .._messages import user_stacklevel
from .._scaling import rescale, unscale
from .._validation import (
    NONE,
    Interval,
    Options,
    check_centers,
    check_fit_inputs,
    check_param,
    check_x_squared_norms,
)
from .engine import center, lloyd, scale_data, tolerance

__all__ = [
    "INIT_NAMES",
    "MAX_LOCAL_TRIALS",
    "MAX_ROUNDS",
    "array_init",
    "candidate_kmeans",
    "check_init",
    "distinct_candidates",
    "kmeans_parallel_impl",
    "kmeans_parallel_one",
    "kmeans_plusplus_impl",
    "kmeans_plusplus_one",
    "random_init_impl",
    "resolve_init",
    "resolve_n_init",
]


#: Largest ``n_local_trials`` of k-means++ (the default is ``2 + floor(ln k)``: 2 to 9 for
#: k up to 1000; the greedy candidates' returns diminish long before 100).
MAX_LOCAL_TRIALS = 100

#: Largest ``n_rounds`` of k-means|| (Bahmani et al. use about 5: the candidate set's
#: cost falls geometrically per round).
MAX_ROUNDS = 100


def _candidate_block(n: int, itemsize: int, working_memory: Any, like: Array) -> int:
    """How many candidate columns an ``n x m`` distance block may have within the
    memory budget (at least 1)."""
    budget = budget_mb(working_memory, like) * 2**20
    return max(1, int(budget // (2 * max(n, 1) * itemsize)))


def _host_probabilities(sample_weight: Array | None, n: int) -> np.ndarray:
    """Sampling probabilities ``w / sum(w)`` on the host.

    Unit weights give an explicit uniform vector, not ``None``: NumPy's ``choice`` draws
    differently with and without ``p``, and ``sample_weight=ones`` must equal ``None``.
    """
    if sample_weight is None:
        return np.full(n, 1.0 / n)
    p = to_host(sample_weight).astype(np.float64)
    return p / p.sum()


def kmeans_plusplus_impl(
    X: Array,
    n_clusters: int,
    sample_weight: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
    n_local_trials: int | None = None,
    working_memory: Any = None,
    x_sq: Array | None = None,
) -> tuple[Array, np.ndarray]:
    """Greedy k-means++ (Arthur & Vassilvitskii 2007; scikit-learn's greedy variant).

    Each new center is the best of ``n_local_trials`` (default ``2 + floor(ln k)``)
    candidates drawn with probability proportional to ``w_i D(x_i)^2``, "best" meaning the
    lowest resulting potential ``sum_i w_i min(D_i, D(x_i, candidate))``.  One host sync
    per center.  ``x_sq`` are the squared row norms when already known.  Returns
    ``(centers, indices)`` with ``indices`` a host array.
    """
    n = X.shape[0]
    dev = device_of(X)
    if n_local_trials is None:
        n_local_trials = min(2 + int(math.log(n_clusters)), n)
    p = _host_probabilities(sample_weight, n)
    first = int(rng.choice(n, p=p))
    indices = [first]
    if x_sq is None:
        x_sq = seam.sq_norms(X, xp=xp)
    closest = seam.dist_to_rows(
        X, seam.dense_rows(X, [first], xp=xp), x_sq, xp=xp, working_memory=working_memory
    )[:, 0]
    # Dask: keep the n-vectors as concrete chunks so each center's graph is shallow
    x_sq, closest = materialize(x_sq, closest, xp=xp)
    acc_dtype = xp.float64 if has_float64(xp, dev) else X.dtype
    block = _candidate_block(n, itemsize(X), working_memory, X)
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
        # the candidates in blocks of columns within the memory budget (one block for
        # the default number of trials), the first best kept
        best_pot, best, best_col = math.inf, 0, closest
        for a in range(0, n_local_trials, block):
            cand_b = cand_h[a : a + block]
            cand_rows = seam.dense_rows(X, cand_b, xp=xp)
            D = xp.minimum(
                closest[:, None],
                seam.dist_to_rows(X, cand_rows, x_sq, xp=xp, working_memory=working_memory),
            )
            weighted = D if sample_weight is None else D * sample_weight[:, None]
            D, pots_d = materialize(D, xp.sum(weighted, axis=0), xp=xp)
            pots = to_host(pots_d)
            j = int(np.argmin(pots))
            if a == 0 or pots[j] < best_pot:
                best_pot, best, best_col = float(pots[j]), a + j, D[:, j]
        closest = best_col
        indices.append(int(cand_h[best]))
    idx_h = np.asarray(indices, dtype=np.int64)
    return seam.dense_rows(X, idx_h, xp=xp), idx_h


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
    return seam.dense_rows(X, idx, xp=xp), idx


def kmeans_plusplus_one(
    X: Any,
    n_clusters: int,
    /,
    *,
    sample_weight: Any = None,
    random_state: Any = None,
    n_local_trials: int | None = None,
    x_squared_norms: Any = None,
    working_memory: Any = None,
) -> tuple[Array, np.ndarray]:
    """One problem of :func:`arbf.kmeans_plusplus` (``X`` of shape ``(n, d)``)."""
    # the extent pass of `scale_data` proves X finite (one pass over X saved)
    X, xp, n_clusters, w, rng = check_fit_inputs(
        X, n_clusters, sample_weight, random_state, finite=False
    )
    n_local_trials = check_param(
        "n_local_trials", n_local_trials, NONE, Interval(numbers.Integral, 1, MAX_LOCAL_TRIALS)
    )
    if n_local_trials is not None and n_local_trials > X.shape[0]:
        raise ValueError(f"n_local_trials must be <= n_samples={X.shape[0]}, got {n_local_trials}")
    # distances on the data divided by an exact power of two (no overflow); the centers
    # are rows of X itself
    scale = scale_data(X, xp=xp, finite_check="X")
    x_sq = None
    if x_squared_norms is not None:
        x_sq = check_x_squared_norms(
            x_squared_norms, X.shape[0], xp=xp, dtype=X.dtype, device=device_of(X), like=X
        )
        x_sq = rescale(rescale(x_sq, scale), scale)
    _, idx = kmeans_plusplus_impl(
        rescale(X, scale),
        n_clusters,
        w,
        rng,
        xp=xp,
        n_local_trials=n_local_trials,
        working_memory=working_memory,
        x_sq=x_sq,
    )
    return seam.dense_rows(X, idx, xp=xp), idx


# --------------------------------------------------------------------------------------
# k-means|| (Bahmani, Moseley, Vattani, Kumar & Vassilvitskii 2012)
# --------------------------------------------------------------------------------------


def _candidate_weights(
    labels: Array, w: Array | None, m: int, *, xp: ModuleType, dtype: Any
) -> np.ndarray:
    """``W_c = sum_{i: nearest candidate of x_i is c} w_i`` on the host (one sync)."""
    if is_dask(xp):
        import dask.array as da

        return to_host(da.bincount(labels, weights=w, minlength=m)).astype(np.float64)
    vals = xp.ones(labels.shape, dtype=dtype, device=device_of(labels)) if w is None else w
    return to_host(seam.segment_sum(vals, labels, m, xp=xp)).astype(np.float64)


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
    working_memory: Any = None,
) -> Array:
    """k-means|| candidates, then weighted k-means on them on the host (see
    :func:`kmeans_parallel`).  Returns the centers in the namespace of ``X``."""
    n = X.shape[0]
    dev = device_of(X)
    ell = float(oversampling_factor) * n_clusters
    acc_dtype = xp.float64 if has_float64(xp, dev) else X.dtype
    first = int(rng.choice(n, p=_host_probabilities(sample_weight, n)))
    picked = [first]
    x_sq = seam.sq_norms(X, xp=xp)
    closest = seam.dist_to_rows(
        X, seam.dense_rows(X, [first], xp=xp), x_sq, xp=xp, working_memory=working_memory
    )[:, 0]
    x_sq, closest = materialize(x_sq, closest, xp=xp)
    max_rounds = 4 * max(int(n_rounds), 1)
    block = _candidate_block(n, itemsize(X), working_memory, X)
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
        for a in range(0, new.shape[0], block):  # blocks of columns within the budget
            rows = seam.dense_rows(X, new[a : a + block], xp=xp)
            D = seam.dist_to_rows(X, rows, x_sq, xp=xp, working_memory=working_memory)
            (closest,) = materialize(xp.minimum(closest, xp.min(D, axis=1)), xp=xp)
    idx = np.asarray(picked, dtype=np.int64)
    idx, cand_h = distinct_candidates(idx, to_host(seam.dense_rows(X, idx, xp=xp)))
    labels = seam.nearest_labels(
        X, from_host(cand_h, xp=xp, device=dev, dtype=X.dtype), xp=xp,
        working_memory=working_memory,
    )  # fmt: skip
    wc = _candidate_weights(labels, sample_weight, idx.shape[0], xp=xp, dtype=X.dtype)
    C = candidate_kmeans(
        cand_h, idx, wc, n_clusters, _host_probabilities(sample_weight, n), rng,
        lambda extra: to_host(seam.dense_rows(X, extra, xp=xp)),
    )  # fmt: skip
    return from_host(C, xp=xp, device=dev, dtype=X.dtype)


def distinct_candidates(idx: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The k-means|| candidates ``idx`` (host rows ``rows``) with repeated rows removed,
    in the order they were picked: ``(idx, rows)`` (rows as float64)."""
    rows = np.asarray(rows, dtype=np.float64)
    _, first_of = np.unique(rows, axis=0, return_index=True)
    keep = np.sort(first_of)
    return idx[keep], rows[keep]


def candidate_kmeans(
    cand_h: np.ndarray,
    idx: np.ndarray,
    wc: np.ndarray,
    n_clusters: int,
    p: np.ndarray,
    rng: np.random.Generator,
    data_rows: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """The last step of k-means||: weighted K-Means of the distinct candidates ``cand_h``
    (rows ``idx`` of the data, weights ``wc``) on the host, a ``(k, d)`` float64 array.

    Fewer than ``n_clusters`` candidates are padded with data rows drawn with the sampling
    probabilities ``p`` (``data_rows(indices)`` fetches them) and a negligible weight.
    scikit-learn's semantics: centred, greedy k-means++, Lloyd with the relative tolerance
    1e-4, by the engine.
    """
    m = idx.shape[0]
    if m < n_clusters:  # fewer distinct candidates than clusters: pad with data rows
        p = p.copy()
        p[idx] = 0.0
        n_pad = min(n_clusters - m, int(np.count_nonzero(p)))
        if n_pad:
            extra = np.asarray(
                rng.choice(p.shape[0], size=n_pad, replace=False, p=p / p.sum()), dtype=np.int64
            )
            cand_h = np.concatenate([cand_h, np.asarray(data_rows(extra), dtype=np.float64)])
            wc = np.concatenate([wc, np.full(n_pad, 1e-12 * max(wc.sum(), 1.0))])
        while cand_h.shape[0] < n_clusters:  # fewer distinct rows than clusters
            cand_h = np.concatenate([cand_h, cand_h[: n_clusters - cand_h.shape[0]]])
            wc = np.concatenate([wc, wc[: n_clusters - wc.shape[0]]])
    hxp = array_namespace(cand_h)
    mean, cand_c = center(cand_h, xp=hxp)
    C0, _ = kmeans_plusplus_impl(cand_c, n_clusters, wc, rng, xp=hxp)
    km = lloyd(cand_c, wc, C0, xp=hxp, max_iter=300, tol=tolerance(cand_h, 1e-4, xp=hxp))
    return np.asarray(km.centers + mean)


def kmeans_parallel_one(
    X: Any,
    n_clusters: int,
    /,
    *,
    sample_weight: Any = None,
    random_state: Any = None,
    oversampling_factor: float = 2.0,
    n_rounds: int = 5,
    working_memory: Any = None,
) -> Array:
    """One problem of :func:`arbf.kmeans_parallel` (``X`` of shape ``(n, d)``)."""
    X, xp, n_clusters, w, rng = check_fit_inputs(
        X, n_clusters, sample_weight, random_state, finite=False
    )
    oversampling_factor = check_param(
        "oversampling_factor", oversampling_factor, Interval(numbers.Real, 0, None, "neither")
    )
    n_rounds = check_param("n_rounds", n_rounds, Interval(numbers.Integral, 1, MAX_ROUNDS))
    scale = scale_data(X, xp=xp, finite_check="X")  # the extent proves X finite
    C = kmeans_parallel_impl(
        rescale(X, scale),
        n_clusters,
        w,
        rng,
        xp=xp,
        oversampling_factor=float(oversampling_factor),
        n_rounds=int(n_rounds),
        working_memory=working_memory,
    )
    return unscale(C, scale)


# --------------------------------------------------------------------------------------
# the one init resolver
# --------------------------------------------------------------------------------------

#: The initialisations every estimator and driver accepts by name.
INIT_NAMES = ("k-means++", "k-means||", "random", "anneal")


def check_init(init: Any) -> Any:
    """``init`` must be one of :data:`INIT_NAMES`, an array or a callable."""
    if isinstance(init, str):
        if init not in INIT_NAMES:
            raise ValueError(
                "init must be 'k-means++', 'k-means||', 'random', 'anneal', an array or a "
                f"callable, got {init!r}"
            )
        return init
    if init is None or isinstance(init, bool | int | float):
        raise TypeError(
            "init must be 'k-means++', 'k-means||', 'random', 'anneal', an array or a "
            f"callable, got {init!r}"
        )
    return init


def resolve_n_init(n_init: Any, init: Any, *, auto_many: int, name: str = "KMeans") -> int:
    """Runs for ``n_init``: ``"auto"`` means ``auto_many`` for ``"random"`` and callables
    (10 for K-Means, 3 for mini-batch, as scikit-learn), else 1.  An explicit array of
    centers runs once (with scikit-learn's RuntimeWarning when more were asked for)."""
    n_init = check_param("n_init", n_init, Options("auto"), Interval(numbers.Integral, 1))
    if n_init == "auto":
        return auto_many if (isinstance(init, str) and init == "random") or callable(init) else 1
    if not isinstance(init, str) and not callable(init) and n_init != 1:
        warnings.warn(
            "Explicit initial center position passed: performing only one init in "
            f"{name} instead of n_init={n_init}.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
        return 1
    return int(n_init)


def array_init(init: Any, n_clusters: int, X: Array, *, xp: ModuleType) -> Array | None:
    """``init`` validated as centers in ``X``'s namespace, device and dtype when it is
    an array (or a list), else ``None`` (a name or a callable)."""
    if isinstance(init, str) or callable(init):
        return None
    return check_centers(
        init, n_clusters, X.shape[1], xp=xp, dtype=X.dtype, device=device_of(X), like=X
    )


def resolve_init(
    init: Any,
    n_clusters: int,
    *,
    X: Array,
    Xc: Array,
    mean: Array | None,
    w: Array | None,
    rng: np.random.Generator,
    xp: ModuleType,
    scale: float = 1.0,
    working_memory: Any = None,
) -> Callable[[], Array]:
    """A function returning initial centers (in ``Xc``'s coordinates) for one run.

    ``Xc`` is the prepared data, ``X / scale - mean`` (``mean=None``: not centred;
    ``scale`` the power of two of :func:`arbf._drivers.engine.scale_data`); ``X`` is what a
    callable ``init`` sees: ``init(X, n_clusters, random_state=rng)``, in the data's
    own units.  Names: :data:`INIT_NAMES` (``"anneal"``: deterministic annealing then
    center swaps, :func:`arbf._drivers.deterministic_annealing.anneal_centers`).  An
    array is validated once.  Random draws come from ``rng``.
    """
    init = check_init(init)
    d = X.shape[1]
    dev = device_of(X)
    if isinstance(init, str) and init == "anneal" and is_sparse(X):
        raise TypeError(
            "init='anneal' (deterministic annealing) does not support scipy.sparse input; "
            "use init='k-means++', 'k-means||', 'random', an array or a callable"
        )

    def shift(C: Array) -> Array:
        C = rescale(C, scale)
        return C if mean is None else C - mean

    if isinstance(init, str):
        if init == "k-means++":
            return lambda: kmeans_plusplus_impl(
                Xc, n_clusters, w, rng, xp=xp, working_memory=working_memory
            )[0]
        if init == "k-means||":
            return lambda: kmeans_parallel_impl(
                Xc, n_clusters, w, rng, xp=xp, working_memory=working_memory
            )
        if init == "random":
            return lambda: random_init_impl(Xc, n_clusters, w, rng, xp=xp)[0]
        from .deterministic_annealing import anneal_centers

        return lambda: anneal_centers(Xc, n_clusters, w, rng, xp=xp, working_memory=working_memory)
    if callable(init):
        return lambda: shift(
            check_centers(
                init(X, n_clusters, random_state=rng), n_clusters, d, xp=xp,
                dtype=X.dtype, device=dev, like=X,
            )
        )  # fmt: skip
    C = shift(check_centers(init, n_clusters, d, xp=xp, dtype=X.dtype, device=dev, like=X))
    return lambda: C
