r"""B independent K-Means problems in one call: the batched Lloyd driver.

:func:`arbf.kmeans` hands data of shape ``(B, n, d)`` here.  Each problem keeps
scikit-learn's semantics (centred data, the relative tolerance scaled by its own mean
feature variance, strict label convergence, a final assignment, empty clusters moved to
the farthest samples, the best of ``n_init`` runs) and stops on its own; the arithmetic
of every iteration is one batched pass (:func:`arbf._math.seam.batched_lloyd_sums`:
batched matrix products, no Python loop over B) and one host sync.  A problem that has
stopped keeps its centers while the others go on.

Random numbers: problem ``b`` draws from its own NumPy Generator.  ``random_state`` (an
int, a Generator or ``None``) seeds one parent Generator whose ``spawn(B)`` children
are the problems' generators; a sequence of B seeds or Generators gives them directly.
So ``kmeans(X, k, random_state=s)[b]`` equals
``kmeans(X[b], k, random_state=np.random.default_rng(s).spawn(B)[b])`` (to rounding).

Initialisation: ``"k-means++"`` draws for all B problems at once (one batched distance
pass per center; the per-problem candidate draws are B small host calls), ``"random"``
gathers the rows in one take, ``"k-means||"`` makes one batched pass per round (the
Bernoulli draws and the final K-Means of the small candidate sets are per problem, on the
host), ``"anneal"`` is the batched deterministic annealing (:mod:`.batched_da`);
callables run once per problem (a loop over B in the initialisation only); an array has
shape ``(B, k, d)``.
Empty-cluster relocation (rare) runs on the host for the problems that need it.

``metric="cosine"``: spherical K-Means of every problem, as
:func:`arbf._drivers.kmeans._spherical` does for one: the rows of every problem are
normalised once and not centred, the initial centers are normalised, every updated set of
centers is projected onto the sphere (:func:`arbf._math.metric.project`: a cell whose
vectors sum to 0 keeps its center) and the inertia reported is
:math:`\sum_i w_{bi}(1 - \cos(x_{bi}, \mu_{b,l_{bi}}))`, half the engine's.
"""

from __future__ import annotations

import dataclasses
import numbers
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
    host_view,
    itemsize,
    to_host,
)
from .._math import seam
from .._math.batched import check_batched_centers, check_batched_data, check_batched_weights
from .._math.metric import COSINE, check_metric, project, to_sphere
from .._scaling import rescale, unscale
from .._validation import (
    BOOLEAN,
    NONE,
    Interval,
    as_array,
    check_n_clusters,
    check_param,
    check_x_squared_norms,
)
from .batched_da import anneal_centers_batched
from .batched_engine import lloyd_batched as _lloyd_batched
from .batched_engine import problem_generators
from .engine import Projection, same_clustering, scale_data
from .init import (
    _bernoulli_pick,
    _candidate_block,
    candidate_kmeans,
    check_init,
    distinct_candidates,
    resolve_init,
    resolve_n_init,
)
from .results import BatchedKMeansResult

__all__ = [
    "kmeans_batched",
    "kmeans_parallel_batched",
    "kmeans_parallel_front",
    "kmeans_plusplus_batched",
    "kmeans_plusplus_front",
    "problem_generators",
]


def _take_rows(X: Array, idx: np.ndarray, *, xp: ModuleType) -> Array:
    """``X[b, idx[b]]`` for host indices ``idx`` of shape ``(B, m)``: ``(B, m, d)``."""
    B, n, d = X.shape
    flat = (idx + n * np.arange(B)[:, None]).reshape(-1).astype(np.int64)
    rows = xp.take(xp.reshape(X, (B * n, d)), from_host(flat, xp=xp, device=device_of(X)), axis=0)
    return xp.reshape(rows, (B, idx.shape[1], d))


def _probabilities(w_h: np.ndarray | None, B: int, n: int) -> np.ndarray:
    """Per-problem sampling probabilities ``w / sum(w)`` (host, ``(B, n)``)."""
    if w_h is None:
        return np.full((B, n), 1.0 / n)
    p = w_h.astype(np.float64)
    return p / p.sum(axis=1, keepdims=True)


def kmeans_plusplus_batched(
    X: Array,
    k: int,
    w: Array | None,
    rngs: list[np.random.Generator],
    *,
    xp: ModuleType,
    working_memory: Any = None,
    n_local_trials: int | None = None,
    x_sq: Array | None = None,
) -> tuple[Array, np.ndarray]:
    """Greedy k-means++ for every problem at once (:func:`arbf.kmeans_plusplus` per
    problem, with problem ``b`` drawing from ``rngs[b]``): ``(centers (B, k, d),
    indices (B, k))``, the indices on the host.

    Each center costs one batched distance pass to the ``n_local_trials`` (default
    ``2 + floor(ln k)``) candidates of every problem and one host sync; the draws are B
    small host calls.  ``x_sq`` are the squared row norms ``(B, n)`` when known.
    """
    B, n, _ = X.shape
    dev = device_of(X)
    trials = min(2 + int(np.log(k)), n) if n_local_trials is None else int(n_local_trials)
    w_h = None if w is None else to_host(w)
    p = _probabilities(w_h, B, n)
    first = np.asarray([[int(r.choice(n, p=p[b]))] for b, r in enumerate(rngs)], dtype=np.int64)
    chosen = [first]
    if x_sq is None:
        x_sq = xp.sum(X * X, axis=-1)
    closest = seam.batched_sq_distances(X, _take_rows(X, first, xp=xp), xp=xp, x_sq=x_sq)[:, :, 0]
    acc_dtype = xp.float64 if has_float64(xp, dev) else X.dtype
    for _ in range(1, k):
        wd = closest if w is None else closest * w
        cum = xp.cumulative_sum(xp.astype(wd, acc_dtype), axis=-1)
        cum_h = host_view(cum)
        pot = to_host(cum[:, -1]) if cum_h is None else cum_h[:, -1]
        rand = np.stack([r.uniform(size=trials) * pot[b] for b, r in enumerate(rngs)])
        if cum_h is not None:  # host data: B binary searches
            cand = np.stack([np.searchsorted(cum_h[b], rand[b]) for b in range(B)])
        else:  # device data: the search as a count (cum is non-decreasing)
            r_d = from_host(rand, xp=xp, device=dev, dtype=acc_dtype)
            below = xp.astype(cum[:, None, :] < r_d[:, :, None], xp.int64)
            cand = to_host(xp.sum(below, axis=-1))
        cand = np.minimum(cand, n - 1).astype(np.int64)
        D = seam.batched_sq_distances(X, _take_rows(X, cand, xp=xp), xp=xp, x_sq=x_sq)
        D = xp.minimum(closest[:, :, None], D)
        weighted = D if w is None else D * w[:, :, None]
        pots = to_host(xp.sum(weighted, axis=1))
        best = np.argmin(pots, axis=1)
        # closest[b, i] = D[b, i, best_b]: one gather from the flattened D
        flat = (np.arange(B)[:, None] * n + np.arange(n)[None, :]) * trials + best[:, None]
        idx = from_host(flat.reshape(-1).astype(np.int64), xp=xp, device=dev)
        closest = xp.reshape(xp.take(xp.reshape(D, (-1,)), idx, axis=0), (B, n))
        chosen.append(cand[np.arange(B), best][:, None])
    idx = np.concatenate(chosen, axis=1)
    return _take_rows(X, idx, xp=xp), idx


def kmeans_parallel_batched(
    X: Array,
    k: int,
    w: Array | None,
    rngs: list[np.random.Generator],
    *,
    xp: ModuleType,
    oversampling_factor: float = 2.0,
    n_rounds: int = 5,
    working_memory: Any = None,
) -> Array:
    """k-means|| for every problem at once (:func:`arbf.kmeans_parallel` per problem,
    problem ``b`` drawing from ``rngs[b]``): centers ``(B, k, d)``.

    Every round is one batched pass: the distances of all rows of every problem to that
    problem's new candidates (padded to a common count with repeats of a new candidate,
    which leave the minimum unchanged), in blocks of candidates within the memory budget.
    The Bernoulli draws are B host calls per round (each problem's own ``n`` uniforms, as
    in the one-problem version), and each problem stops its rounds on its own.  The
    candidates' weights come from one batched pass (:func:`arbf._math.seam.batched_lloyd_sums`);
    the weighted K-Means of each problem's ~``ℓ · n_rounds`` candidates then runs on the
    host, per problem (:func:`arbf._drivers.init.candidate_kmeans`).
    """
    B, n, _ = X.shape
    dev = device_of(X)
    ell = float(oversampling_factor) * k
    acc_dtype = xp.float64 if has_float64(xp, dev) else X.dtype
    w_h = None if w is None else to_host(w)
    p = _probabilities(w_h, B, n)
    picked = [[int(r.choice(n, p=p[b]))] for b, r in enumerate(rngs)]
    x_sq = xp.sum(X * X, axis=-1)
    first = np.asarray([pk[:1] for pk in picked], dtype=np.int64)
    closest = seam.batched_sq_distances(X, _take_rows(X, first, xp=xp), xp=xp, x_sq=x_sq)
    closest = closest[:, :, 0]
    max_rounds = 4 * max(int(n_rounds), 1)
    block = _candidate_block(B * n, itemsize(X), working_memory, X)
    rounds = np.zeros(B, dtype=np.int64)
    done = np.zeros(B, dtype=bool)
    while True:
        for b in range(B):
            if rounds[b] >= max_rounds or (rounds[b] >= n_rounds and len(set(picked[b])) >= k):
                done[b] = True
        if done.all():
            break
        wd = closest if w is None else closest * w
        wd = xp.astype(wd, acc_dtype)
        phi = to_host(xp.sum(wd, axis=1)).astype(np.float64)
        wd_h = to_host(wd).astype(np.float64)
        new: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * B
        for b in map(int, np.flatnonzero(~done)):
            rounds[b] += 1
            if not phi[b] > 0:  # every sample sits on a candidate
                done[b] = True
                continue
            new[b] = np.setdiff1d(_bernoulli_pick(wd_h[b], ell, float(phi[b]), rngs[b], xp=np),
                                  picked[b])  # fmt: skip
            picked[b].extend(int(i) for i in new[b])
        m = max(v.shape[0] for v in new)
        if m == 0:
            continue
        has_new = from_host(np.asarray([v.shape[0] > 0 for v in new]), xp=xp, device=dev)
        pad = np.stack([np.resize(v, m) if v.shape[0] else np.zeros(m, np.int64) for v in new])
        for a in range(0, m, block):
            D = seam.batched_sq_distances(
                X, _take_rows(X, pad[:, a : a + block], xp=xp), xp=xp, x_sq=x_sq
            )
            lower = xp.minimum(closest, xp.min(D, axis=-1))
            closest = xp.where(has_new[:, None], lower, closest)
    # the distinct candidates of every problem, padded with repeats of their first one
    # (ties go to the lowest index, so a repeat never takes a row) for one batched pass
    cands = []
    for b in range(B):
        idx_b = np.asarray(picked[b], dtype=np.int64)
        cands.append(distinct_candidates(idx_b, _host_rows(X, b, idx_b, xp=xp)))
    m = max(c[0].shape[0] for c in cands)
    padded = np.stack([np.concatenate([r, np.repeat(r[:1], m - r.shape[0], axis=0)])
                       for _, r in cands])  # fmt: skip
    _, _, weights, _ = seam.batched_lloyd_sums(
        X, from_host(padded, xp=xp, device=dev, dtype=X.dtype), w, xp=xp,
        working_memory=working_memory,
    )  # fmt: skip
    wc = to_host(weights).astype(np.float64)
    out = []
    for b, (idx, rows) in enumerate(cands):

        def data_rows(extra: np.ndarray, b: int = b) -> np.ndarray:
            return _host_rows(X, b, extra, xp=xp)

        out.append(candidate_kmeans(rows, idx, wc[b, : idx.shape[0]], k, p[b], rngs[b], data_rows))
    return from_host(np.stack(out), xp=xp, device=dev, dtype=X.dtype)


def _host_rows(X: Array, b: int, idx: np.ndarray, *, xp: ModuleType) -> np.ndarray:
    """Rows ``idx`` of problem ``b`` on the host (float64)."""
    one = np.asarray(idx, dtype=np.int64)[None, :]
    rows = _take_rows(X[b : b + 1, ...], one, xp=xp)
    return to_host(rows)[0].astype(np.float64)


def _random_batched(
    X: Array, k: int, w: Array | None, rngs: list[np.random.Generator], *, xp: ModuleType
) -> Array:
    """``k`` distinct rows per problem, drawn with probability proportional to ``w``."""
    B, n, _ = X.shape
    p = _probabilities(None if w is None else to_host(w), B, n)
    for b in range(B):
        if int(np.count_nonzero(p[b])) < k:
            raise ValueError(
                f"init='random' needs at least n_clusters={k} samples with positive weight "
                f"in every problem; problem {b} has {int(np.count_nonzero(p[b]))}"
            )
    idx = np.stack([r.choice(n, size=k, replace=False, p=p[b]) for b, r in enumerate(rngs)])
    return _take_rows(X, idx.astype(np.int64), xp=xp)


def _init_maker(
    init: Any, k: int, X: Array, Xc: Array, mean: Array | None, w: Array | None,
    rngs: list[np.random.Generator], *, xp: ModuleType, working_memory: Any,
) -> Any:  # fmt: skip
    """A function returning ``(B, k, d)`` initial centers in the centred coordinates
    (``mean=None``: the data are not centred, ``Xc`` is ``X``)."""
    if isinstance(init, str) and init == "k-means++":
        return lambda: kmeans_plusplus_batched(
            Xc, k, w, rngs, xp=xp, working_memory=working_memory
        )[0]
    if isinstance(init, str) and init == "k-means||":
        return lambda: kmeans_parallel_batched(
            Xc, k, w, rngs, xp=xp, working_memory=working_memory
        )
    if isinstance(init, str) and init == "random":
        return lambda: _random_batched(Xc, k, w, rngs, xp=xp)
    if isinstance(init, str) and init == "anneal":
        return lambda: anneal_centers_batched(Xc, k, w, rngs, xp=xp, working_memory=working_memory)
    if isinstance(init, str) or callable(init):  # one problem at a time
        makers = [
            resolve_init(
                init,
                k,
                X=X[b, ...],
                Xc=Xc[b, ...],
                mean=None if mean is None else mean[b, 0, :],
                w=None if w is None else w[b, ...],
                rng=rngs[b],
                xp=xp,
                working_memory=working_memory,
            )
            for b in range(X.shape[0])
        ]
        return lambda: xp.stack([m() for m in makers])
    C = check_batched_centers(init, k, X, xp=xp, name="init")
    C = C if mean is None else C - mean
    return lambda: C


def _on_sphere(make_init: Callable[[], Array], *, xp: ModuleType) -> Callable[[], Array]:
    """``make_init`` with its ``(B, k, d)`` centers normalised row by row."""
    return lambda: to_sphere(make_init(), xp=xp, name="init")


def _merge_best(
    best: BatchedKMeansResult, out: BatchedKMeansResult, *, xp: ModuleType
) -> BatchedKMeansResult:
    """Per problem, ``out`` replaces ``best`` if its inertia is lower *and* it is a
    different partition (scikit-learn's rule, as :func:`arbf._drivers.engine.best_of`)."""
    B = best.inertia.shape[0]
    take = np.asarray(
        [
            out.inertia[b] < best.inertia[b]
            and not same_clustering(out.labels[b, ...], best.labels[b, ...])
            for b in range(B)
        ]
    )
    if not take.any():
        return best
    t = from_host(take, xp=xp, device=device_of(best.centers))
    hist = {
        key: [out.history[key][b] if take[b] else best.history[key][b] for b in range(B)]
        for key in best.history
    }
    return dataclasses.replace(
        best,
        centers=xp.where(t[:, None, None], out.centers, best.centers),
        labels=xp.where(t[:, None], out.labels, best.labels),
        inertia=np.where(take, out.inertia, best.inertia),
        n_iter=np.where(take, out.n_iter, best.n_iter),
        converged=np.where(take, out.converged, best.converged),
        history=hist,
    )


def kmeans_batched(
    X: Any,
    n_clusters: int,
    *,
    init: Any = "k-means++",
    n_init: int | str = "auto",
    max_iter: int = 300,
    tol: float = 1e-4,
    sample_weight: Any = None,
    random_state: Any = None,
    verbose: bool = False,
    working_memory: Any = None,
    metric: str = "sqeuclidean",
) -> BatchedKMeansResult:
    """:func:`arbf.kmeans` of ``B`` problems, ``X`` of shape ``(B, n, d)`` (see the module
    docstring for the seeds, the initialisations and ``metric="cosine"``)."""
    X, xp = check_batched_data(X)
    B, n, _ = X.shape
    k = check_n_clusters(n_clusters, n)
    w = check_batched_weights(sample_weight, X, xp=xp)
    max_iter = check_param("max_iter", max_iter, Interval(numbers.Integral, 1))
    tol = check_param("tol", tol, Interval(numbers.Real, 0))
    verbose = check_param("verbose", verbose, BOOLEAN, Interval(numbers.Integral, 0))
    init = check_init(init)
    runs = resolve_n_init(n_init, init, auto_many=10)
    rngs = problem_generators(random_state, B)
    spherical = check_metric(metric) == COSINE
    mean: Array | None = None
    if spherical:  # unit rows, not centred (cosine is not translation invariant)
        X = to_sphere(X, xp=xp)
        Xc = seam.batched_prepare(X, xp=xp)
    else:
        mean = xp.mean(X, axis=1, keepdims=True)
        Xc = seam.batched_prepare(X - mean, xp=xp)
    if tol == 0:
        tol_abs = np.zeros(B)
    else:
        tol_abs = to_host(xp.mean(xp.var(X, axis=1), axis=-1)).astype(np.float64) * tol
    make_init = _init_maker(init, k, X, Xc, mean, w, rngs, xp=xp, working_memory=working_memory)
    on_sphere: Projection | None = None
    if spherical:  # initial centers normalised, updates projected, as for one problem
        make_init = _on_sphere(make_init, xp=xp)

        def on_sphere(C_new: Array, C_old: Array) -> Array:
            return project(C_new, C_old, xp=xp)

    best: BatchedKMeansResult | None = None
    all_inertia = []
    for _ in range(runs):
        C0 = make_init()
        out = _lloyd_batched(
            Xc, w, C0, xp=xp, max_iter=max_iter, tol=tol_abs, verbose=bool(verbose),
            working_memory=working_memory, project=on_sphere,
            inertia_scale=0.5 if spherical else 1.0,
        )  # fmt: skip
        all_inertia.append(out.inertia)
        best = out if best is None else _merge_best(best, out, xp=xp)
    assert best is not None
    n_init_inertia = np.stack(all_inertia, axis=1)
    if spherical:  # the engine's Σ w ||x̂ - μ||² is twice Σ w (1 - cos)
        return dataclasses.replace(
            best,
            inertia=best.inertia / 2,
            history={**best.history, "inertia": [h / 2 for h in best.history["inertia"]]},
            n_init_inertia=n_init_inertia / 2,
        )
    assert mean is not None
    return dataclasses.replace(best, centers=best.centers + mean, n_init_inertia=n_init_inertia)


# --------------------------------------------------------------------------------------
# the public seedings with a batch axis (arbf.kmeans_plusplus, arbf.kmeans_parallel)
# --------------------------------------------------------------------------------------


def _seeding_inputs(
    X: Any, n_clusters: Any, sample_weight: Any, random_state: Any
) -> tuple[Array, ModuleType, int, Array | None, list[np.random.Generator], float]:
    X, xp = check_batched_data(X)
    B, n, _ = X.shape
    k = check_n_clusters(n_clusters, n)
    w = check_batched_weights(sample_weight, X, xp=xp)
    return X, xp, k, w, problem_generators(random_state, B), scale_data(X, xp=xp)


def kmeans_plusplus_front(
    X: Any,
    n_clusters: Any,
    *,
    sample_weight: Any,
    random_state: Any,
    n_local_trials: Any,
    x_squared_norms: Any,
    working_memory: Any,
    max_local_trials: int,
) -> tuple[Array, np.ndarray]:
    """:func:`arbf.kmeans_plusplus` of ``B`` problems (``X`` of shape ``(B, n, d)``):
    ``(centers (B, k, d), indices (B, k))``."""
    X, xp, k, w, rngs, scale = _seeding_inputs(X, n_clusters, sample_weight, random_state)
    B, n, _ = X.shape
    n_local_trials = check_param(
        "n_local_trials", n_local_trials, NONE, Interval(numbers.Integral, 1, max_local_trials)
    )
    if n_local_trials is not None and n_local_trials > n:
        raise ValueError(f"n_local_trials must be <= n_samples={n}, got {n_local_trials}")
    x_sq = None
    if x_squared_norms is not None:
        v = as_array(x_squared_norms, "x_squared_norms")
        if tuple(v.shape) != (B, n):
            raise ValueError(
                f"x_squared_norms must have shape (B, n_samples) = {(B, n)} for batched X; "
                f"got shape {tuple(v.shape)}"
            )
        flat = array_namespace(v).reshape(v, (B * n,))
        x_sq = check_x_squared_norms(
            flat, B * n, xp=xp, dtype=X.dtype, device=device_of(X), like=X
        )
        x_sq = rescale(rescale(xp.reshape(x_sq, (B, n)), scale), scale)
    _, idx = kmeans_plusplus_batched(
        rescale(X, scale), k, w, rngs, xp=xp, working_memory=working_memory,
        n_local_trials=n_local_trials, x_sq=x_sq,
    )  # fmt: skip
    return _take_rows(X, idx, xp=xp), idx


def kmeans_parallel_front(
    X: Any,
    n_clusters: Any,
    *,
    sample_weight: Any,
    random_state: Any,
    oversampling_factor: float,
    n_rounds: int,
    working_memory: Any,
) -> Array:
    """:func:`arbf.kmeans_parallel` of ``B`` problems (``X`` of shape ``(B, n, d)``;
    ``oversampling_factor`` and ``n_rounds`` already validated): centers ``(B, k, d)``."""
    X, xp, k, w, rngs, scale = _seeding_inputs(X, n_clusters, sample_weight, random_state)
    C = kmeans_parallel_batched(
        rescale(X, scale), k, w, rngs, xp=xp, oversampling_factor=oversampling_factor,
        n_rounds=n_rounds, working_memory=working_memory,
    )  # fmt: skip
    return unscale(C, scale)
