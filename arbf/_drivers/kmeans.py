"""Lloyd's K-Means with scikit-learn's semantics (SPEC §2, A1).

The driver loop lives here and synchronises with the host once per iteration (to test
convergence and find empty clusters); the arithmetic is in :mod:`arbf._math`.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import (
    Array,
    device_of,
    from_host,
    has_float64,
    host_view,
    like_view,
    materialize,
    to_host,
)
from .._chunking import Accumulator, chunk_rows, iter_chunks
from .._math import fast_dask, fast_numpy
from .._math.distances import _itemsize, assign_inertia, labelled_sq_distances, lloyd_sums
from .._math.steps import safe_divide_centers
from .._validation import (
    check_centers,
    check_data,
    check_n_clusters,
    check_random_state,
    check_sample_weight,
)
from .init import kmeans_parallel_impl, kmeans_plusplus_impl, random_init_impl

__all__ = ["ConvergenceWarning", "KMeansResult", "kmeans"]

logger = logging.getLogger("arbf")


class ConvergenceWarning(UserWarning):
    """Raised when K-Means finds fewer distinct clusters than asked for, or stops early."""


@dataclass
class KMeansResult:
    """What :func:`arbf.kmeans` returns.

    Attributes
    ----------
    centers : array (n_clusters, n_features)
        Final centers, in the namespace, device and dtype of the (promoted) input.
    labels : array (n_samples,)
        Index of the nearest center of each sample (consistent with ``centers``).
    inertia : float
        :math:`\\sum_i w_i \\lVert x_i - \\mu_{labels_i}\\rVert^2`.
    n_iter : int
        Lloyd iterations of the best run.
    converged : bool
        Whether the best run stopped on strict label convergence or on ``tol`` (rather
        than on ``max_iter``).
    history : dict
        Per-iteration ``"inertia"`` (w.r.t. the centers used for that assignment) and
        ``"center_shift"`` (squared Frobenius norm of the update) of the best run, as
        host NumPy arrays.
    n_init_inertia : list of float
        Final inertia of every run.
    """

    centers: Array
    labels: Array
    inertia: float
    n_iter: int
    converged: bool
    history: dict[str, np.ndarray] = field(default_factory=dict)
    n_init_inertia: list[float] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``centers, labels, inertia`` (like ``sklearn.cluster.k_means``)."""
        return iter((self.centers, self.labels, self.inertia))


def _emit(verbose: bool, msg: str, *args: Any) -> None:
    if not verbose:
        logger.debug(msg, *args)
        return
    if not logger.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.info(msg, *args)


def _tolerance(X: Array, tol: float, *, xp: ModuleType) -> float:
    """scikit-learn's absolute tolerance: ``tol * mean_f Var(X[:, f])``."""
    if tol == 0:
        return 0.0
    return float(to_host(xp.mean(xp.var(X, axis=0)))) * tol


def _mean_rows(X: Array, *, xp: ModuleType) -> Array:
    hX = host_view(X)  # NumPy, or a CPU torch tensor needing no gradient
    if hX is not None and fast_numpy.applies(hX, hX):
        # chunked float64 column sums (no copy of X)
        return like_view(fast_numpy.mean_rows(hX), X)
    dev = device_of(X)
    if X.dtype == xp.float32 and has_float64(xp, dev):
        # a float64 accumulator without a float64 copy of X
        return xp.astype(xp.sum(X, axis=0, dtype=xp.float64) / X.shape[0], X.dtype)
    return xp.mean(X, axis=0)


def _relocate_empty(
    X: Array,
    w: Array | None,
    C_old: Array,
    sums: Array,
    weights: Array,
    labels: Array,
    empty: np.ndarray,
    *,
    xp: ModuleType,
    working_memory: float | None,
) -> tuple[Array, Array]:
    """Move each empty cluster onto one of the samples farthest from their center.

    scikit-learn's rule: the ``n_empty`` samples with the largest
    ``||x_i - c_{labels_i}||^2`` become the new centers (largest first); their weight and
    mass are moved out of their old cluster.  Nothing moves when every sample sits on its
    center (more clusters than distinct samples).  Host-side on k x d arrays (rare path).
    """
    n = X.shape[0]
    rows = chunk_rows(n, 1, _itemsize(X), xp=xp, working_memory=working_memory)
    dist = xp.concat(
        [
            labelled_sq_distances(X[a:b, ...], C_old, labels[a:b], xp=xp)
            for a, b in iter_chunks(n, rows)
        ]
    )
    n_empty = int(empty.shape[0])
    if not float(to_host(xp.max(dist))) > 0:
        # more clusters than distinct samples: relocating is pointless (scikit-learn)
        return sums, weights
    far = to_host(xp.argsort(dist, descending=True, stable=True)[:n_empty]).astype(np.int64)
    dev = device_of(X)
    far_d = from_host(far, xp=xp, device=dev)
    Xf = to_host(xp.take(X, far_d, axis=0)).astype(np.float64)
    wf = np.ones(n_empty) if w is None else to_host(xp.take(w, far_d, axis=0)).astype(np.float64)
    lf = to_host(xp.take(labels, far_d, axis=0)).astype(np.int64)
    sums_h = to_host(sums).astype(np.float64, copy=True)
    weights_h = to_host(weights).astype(np.float64, copy=True)
    for e, j in enumerate(empty):
        old = lf[e]
        sums_h[old] -= Xf[e] * wf[e]
        sums_h[j] = Xf[e] * wf[e]
        weights_h[j] = wf[e]
        weights_h[old] -= wf[e]
    return (
        from_host(sums_h, xp=xp, device=dev, dtype=X.dtype),
        from_host(weights_h, xp=xp, device=dev, dtype=X.dtype),
    )


def _park_weightless(C: Array, weights: Array, *, xp: ModuleType) -> Array:
    """Put centers whose cluster still has no weight on the heaviest cluster's center.

    That happens after relocation when the moved samples have zero weight, or when
    nothing could be relocated; scikit-learn does the same (rather than leave them at the
    origin or where they were).
    """
    weights_h = to_host(weights)
    if not (weights_h == 0).any():
        return C
    heavy = int(np.argmax(weights_h))
    return xp.where((weights > 0)[:, None], C, C[heavy : heavy + 1, ...])


def _labelled_inertia(
    X: Array,
    C: Array,
    labels: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: float | None,
) -> float:
    n = X.shape[0]
    rows = chunk_rows(n, 1, _itemsize(X), xp=xp, working_memory=working_memory)
    acc = Accumulator(xp)
    for a, b in iter_chunks(n, rows):
        d = labelled_sq_distances(X[a:b, ...], C, labels[a:b], xp=xp)
        acc.add(xp.sum(d if w is None else d * w[a:b]))
    return float(to_host(acc.result()))


def _single_lloyd(
    X: Array,
    w: Array | None,
    C0: Array,
    *,
    xp: ModuleType,
    max_iter: int,
    tol: float,
    verbose: bool,
    working_memory: float | None,
) -> tuple[Array, Array, float, int, bool, dict[str, np.ndarray]]:
    C = C0
    labels_old: Array | None = None
    inertias: list[float] = []
    shifts: list[float] = []
    strict = converged = False
    i = 0
    for i in range(max_iter):
        if fast_dask.applies(X, C, w):  # Dask: one task per row block, tree-reduced
            labels, sums, weights, inert = fast_dask.lloyd_sums(X, C, w)
        else:
            labels, sums, weights, inert = lloyd_sums(
                X, C, w, xp=xp, working_memory=working_memory
            )
        C_new = safe_divide_centers(sums, weights, C, xp=xp)
        diff = C_new - C
        stats = [xp.sum(diff * diff), xp.astype(inert, C.dtype)]
        # labels on the host (NumPy, CPU torch): compared there, without a device pass
        h_labels = host_view(labels, floats_only=False)
        same_host = None
        if labels_old is not None:
            h_old = host_view(labels_old, floats_only=False)
            if h_labels is not None and h_old is not None:
                same_host = bool(np.array_equal(h_labels, h_old))
            else:
                stats.append(xp.astype(xp.all(labels == labels_old), C.dtype))
        host_vec = xp.concat([xp.stack(stats), xp.astype(weights, C.dtype)])
        # Dask: evaluate this iteration's graph once (a tree reduction of the sums, counts
        # and inertia over the row chunks) and keep the new centers (k x d) and the labels
        # (distributed, n) as concrete chunks, so iteration t+1 does not re-run 1..t.
        C_new, labels, sums, weights, host_vec = materialize(
            C_new, labels, sums, weights, host_vec, xp=xp
        )
        # the one host sync of the iteration: shift, inertia, "labels unchanged", weights
        host = to_host(host_vec)
        shift, inertia_i = float(host[0]), float(host[1])
        if same_host is not None:
            same = same_host
        else:
            same = labels_old is not None and bool(host[2])
        empty = np.flatnonzero(host[len(stats) :] == 0)
        if empty.size:  # rare: relocate empty clusters, then recompute the shift
            sums, weights = _relocate_empty(
                X, w, C, sums, weights, labels, empty, xp=xp, working_memory=working_memory
            )
            C_new = _park_weightless(safe_divide_centers(sums, weights, C, xp=xp), weights, xp=xp)
            diff = C_new - C
            shift = float(to_host(xp.sum(diff * diff)))
        inertias.append(inertia_i)
        shifts.append(shift)
        _emit(verbose, "Iteration %d, inertia %.6g, center shift %.3g", i, inertia_i, shift)
        C = C_new
        if same:
            _emit(verbose, "Converged at iteration %d: strict convergence.", i)
            strict = converged = True
            break
        if shift <= tol:
            _emit(
                verbose,
                "Converged at iteration %d: center shift %g within tolerance %g.",
                i,
                shift,
                tol,
            )
            converged = True
            break
        labels_old = labels
    if strict:
        inertia = _labelled_inertia(X, C, labels, w, xp=xp, working_memory=working_memory)
    else:
        labels, inert = assign_inertia(X, C, w, xp=xp, working_memory=working_memory)
        labels, inert = materialize(labels, inert, xp=xp)
        inertia = float(to_host(inert))
    history = {"inertia": np.asarray(inertias), "center_shift": np.asarray(shifts)}
    return C, labels, inertia, i + 1, converged, history


def _same_clustering(a: Array, b: Array) -> bool:
    """Whether two labelings are the same partition up to a renaming of the labels."""
    la, lb = to_host(a).astype(np.int64), to_host(b).astype(np.int64)
    pairs = np.unique(la * (int(max(la.max(), lb.max())) + 1) + lb)
    return bool(pairs.size == np.unique(la).size == np.unique(lb).size)


def _resolve_n_init(n_init: Any, init: Any) -> int:
    if isinstance(n_init, str):
        if n_init != "auto":
            raise ValueError(f"n_init must be 'auto' or a positive integer, got {n_init!r}")
        return 10 if (isinstance(init, str) and init == "random") or callable(init) else 1
    if isinstance(n_init, bool) or not isinstance(n_init, numbers.Integral) or n_init < 1:
        raise ValueError(f"n_init must be 'auto' or a positive integer, got {n_init!r}")
    return int(n_init)


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def kmeans(
    X: Any,
    n_clusters: int,
    /,
    *,
    init: Any = "k-means++",
    n_init: int | str = "auto",
    max_iter: int = 300,
    tol: float = 1e-4,
    sample_weight: Any = None,
    random_state: Any = None,
    verbose: bool = False,
    working_memory: float | None = None,
) -> KMeansResult:
    r"""K-Means clustering by Lloyd's algorithm, with scikit-learn's semantics.

    Minimises the inertia :math:`J(\mu) = \sum_i w_i \min_j \lVert x_i - \mu_j\rVert^2`
    by alternating the assignment :math:`l_i = \operatorname{argmin}_j D_{ij}` and the
    update :math:`\mu_j = \sum_{l_i = j} w_i x_i / \sum_{l_i=j} w_i`.

    Semantics follow :class:`sklearn.cluster.KMeans` (``algorithm="lloyd"``): the data are
    centred before fitting; a run stops on strict label convergence, or when
    :math:`\sum_j \lVert \mu_j^{new} - \mu_j\rVert^2 \le` ``tol`` times the mean feature
    variance, or after ``max_iter`` iterations; unless labels converged strictly a final
    assignment makes labels match centers; an empty cluster is moved to the sample
    farthest from its center; of ``n_init`` runs the one with the lowest inertia is kept,
    a later run replacing it only if it is lower *and* a different partition.

    Each iteration walks the data in chunks (``working_memory`` MiB) and synchronises with
    the host once.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Any Array API array (NumPy, CuPy, PyTorch, JAX, Dask, ...); lists are converted
        with NumPy.  Integer and bool input is promoted to the default float.
    n_clusters : int
    init : {"k-means++", "k-means||", "random", "anneal"}, array or callable
        An array has shape (n_clusters, n_features).
        "k-means||" is the scalable k-means++ of Bahmani et al. (2012): a few passes over
        the data instead of one per center (:func:`arbf._drivers.init.kmeans_parallel`;
        for data that do not fit one memory, e.g. Dask).  "anneal" is deterministic
        annealing with splitting at critical temperatures, then center swaps
        (:func:`arbf._drivers.deterministic_annealing.anneal_init`, default options):
        slower than one k-means++ run, usually lower inertia than ten.  A callable is called as
        ``init(X, n_clusters, random_state=rng)`` with the (uncentred) data and a NumPy
        Generator, and must return centers.
    n_init : "auto" or int
        "auto" means 1 for "k-means++", "k-means||", "anneal" and arrays, 10 for
        "random" and callables.
    max_iter : int
    tol : float
        Relative tolerance (scaled by the mean feature variance).
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights used by the initialisation, the update and the inertia.
    random_state : int, numpy Generator or None
    verbose : bool
        Log each iteration's inertia and center shift on the ``"arbf"`` logger.
    working_memory : float, optional
        Memory budget in MiB for one chunk's temporaries.

    Returns
    -------
    KMeansResult
        ``.centers``, ``.labels``, ``.inertia``, ``.n_iter``, ``.converged``,
        ``.history``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
    >>> res = arbf.kmeans(X, 2, init=xp.asarray([[0.0, 0.0], [9.0, 9.0]]))
    >>> res.centers
    Array([[0. , 0.5],
           [9. , 9.5]], dtype=array_api_strict.float64)
    >>> res.inertia, res.n_iter, res.converged
    (1.0, 2, True)
    """
    X, xp = check_data(X)
    n, d = X.shape
    n_clusters = check_n_clusters(n_clusters, n)
    max_iter = _check_int("max_iter", max_iter, minimum=1)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    dev = device_of(X)
    w = check_sample_weight(sample_weight, n, xp=xp, dtype=X.dtype, device=dev, like=X)
    rng = check_random_state(random_state)
    runs = _resolve_n_init(n_init, init)

    is_array_init = not isinstance(init, str) and not callable(init)
    if isinstance(init, str) and init not in ("k-means++", "k-means||", "random", "anneal"):
        raise ValueError(
            "init must be 'k-means++', 'k-means||', 'random', 'anneal', an array or a "
            "callable, "
            f"got {init!r}"
        )
    if is_array_init:
        C_init = check_centers(init, n_clusters, d, xp=xp, dtype=X.dtype, device=dev, like=X)
        if runs != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"KMeans instead of n_init={runs}.",
                RuntimeWarning,
                stacklevel=2,
            )
            runs = 1

    tol_abs = _tolerance(X, float(tol), xp=xp)
    (X_mean,) = materialize(_mean_rows(X, xp=xp), xp=xp)  # Dask: one pass, kept
    Xc = X - X_mean

    best: tuple[Any, ...] | None = None
    all_inertia: list[float] = []
    for _ in range(runs):
        if is_array_init:
            C0 = C_init - X_mean
        elif callable(init):
            C0 = (
                check_centers(
                    init(X, n_clusters, random_state=rng),
                    n_clusters,
                    d,
                    xp=xp,
                    dtype=X.dtype,
                    device=dev,
                    like=X,
                )
                - X_mean
            )
        elif init == "k-means++":
            C0, _ = kmeans_plusplus_impl(
                Xc, n_clusters, w, rng, xp=xp, working_memory=working_memory
            )
        elif init == "k-means||":
            C0 = kmeans_parallel_impl(Xc, n_clusters, w, rng, xp=xp, working_memory=working_memory)
        elif init == "anneal":
            from .deterministic_annealing import anneal_init  # imports this module

            C0 = anneal_init(
                Xc, n_clusters, sample_weight=w, random_state=rng, working_memory=working_memory
            )
        else:
            C0, _ = random_init_impl(Xc, n_clusters, w, rng, xp=xp)
        out = _single_lloyd(
            Xc,
            w,
            C0,
            xp=xp,
            max_iter=max_iter,
            tol=tol_abs,
            verbose=verbose,
            working_memory=working_memory,
        )
        all_inertia.append(out[2])
        if best is None or (out[2] < best[2] and not _same_clustering(out[1], best[1])):
            best = out
    assert best is not None
    C, labels, inertia, n_iter, converged, history = best
    # labels are in [0, n_clusters): a bincount is several times cheaper than np.unique
    distinct = int(np.count_nonzero(np.bincount(to_host(labels), minlength=n_clusters)))
    if distinct < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
            f"({n_clusters}). Possibly due to duplicate points in X.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return KMeansResult(
        centers=C + X_mean,
        labels=labels,
        inertia=inertia,
        n_iter=n_iter,
        converged=converged,
        history=history,
        n_init_inertia=all_inertia,
    )


def finish_lloyd(
    Xc: Array, C: Array, w: Array | None, mean: Array, *, working_memory: float | None
) -> tuple[Array, KMeansResult]:
    """Hard Lloyd from ``C`` to an exact K-Means fixed point (``tol=0``), on data ``Xc``
    centred by ``mean``; the annealing drivers end with it.

    Returns the final centers in the centred coordinates and the :class:`KMeansResult`
    in the data's own coordinates.
    """
    km = kmeans(
        Xc, C.shape[0], init=C, n_init=1, max_iter=300, tol=0.0, sample_weight=w,
        working_memory=working_memory,
    )  # fmt: skip
    return km.centers, dataclasses.replace(km, centers=km.centers + mean)
