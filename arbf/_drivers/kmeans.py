"""Lloyd's K-Means with scikit-learn's semantics (SPEC §2, A1): the public front door.

:func:`kmeans` validates, centres and resolves the initialisation once, then runs the
engine (:mod:`arbf._drivers.engine`); the loop synchronises with the host once per
iteration, and the arithmetic is behind :mod:`arbf._math.seam`.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from .._math import seam
from .._math.batched import is_batched
from .._math.metric import COSINE, check_metric, project, to_sphere
from .._math.seam import ALGORITHMS
from .._validation import BOOLEAN, Interval, Options, check_fit_inputs, check_param
from .batched import kmeans_batched, kmeans_parallel_front, kmeans_plusplus_front
from .engine import (
    best_of,
    halve_inertia,
    prepare,
    result_to_data,
    tolerance,
    warn_fewer_clusters,
)
from .init import (
    MAX_LOCAL_TRIALS,
    MAX_ROUNDS,
    array_init,
    check_init,
    kmeans_parallel_one,
    kmeans_plusplus_one,
    resolve_init,
    resolve_n_init,
)
from .results import BatchedKMeansResult, KMeansResult

__all__ = ["kmeans", "kmeans_parallel", "kmeans_plusplus"]


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
    copy_x: bool = True,
    working_memory: Any = None,
    algorithm: str = "auto",
    metric: str = "sqeuclidean",
) -> KMeansResult | BatchedKMeansResult:
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
    X : array or scipy.sparse matrix of shape (n_samples, n_features)
        Any Array API array (NumPy, CuPy, PyTorch, JAX, Dask, ...); lists are converted
        with NumPy.  Integer and bool input is promoted to the default float.  A
        :mod:`scipy.sparse` matrix or array (CSR/CSC/...) is clustered as canonical CSR
        on the host without being densified or centred (as scikit-learn); the centers
        are dense NumPy arrays.

        **Batched**: an array of shape ``(B, n_samples, n_features)`` holds B independent
        problems, solved together -- every Lloyd iteration is one batched pass
        (batched matrix products, or the compiled kernel's (problem, chunk) tiles on the
        CPU), not B calls -- and a :class:`BatchedKMeansResult` comes back
        (``result[b]`` is problem ``b``'s :class:`KMeansResult`).  Each problem keeps the
        semantics below and stops on its own.  ``init`` is then a name, a callable
        (called once per problem) or an array ``(B, n_clusters, n_features)``;
        ``sample_weight`` is ``(B, n_samples)`` or ``(n_samples,)``; problem ``b`` draws
        from ``np.random.default_rng(random_state).spawn(B)[b]`` (``random_state`` may
        also be a sequence of B seeds or Generators), so it equals
        ``kmeans(X[b], ..., random_state=that generator)`` to rounding.  ``algorithm``
        is Lloyd's.  Dask arrays are refused (``TypeError``).
    n_clusters : int
    init : {"k-means++", "k-means||", "random", "anneal"}, array or callable
        An array has shape (n_clusters, n_features).
        "k-means||" is the scalable k-means++ of Bahmani et al. (2012): a few passes over
        the data instead of one per center (:func:`arbf._drivers.init.kmeans_parallel`;
        for data that do not fit one memory, e.g. Dask).  "anneal" is deterministic
        annealing with splitting at critical temperatures, then center swaps
        (:func:`arbf.anneal_init`, default options):
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
        Print each iteration's inertia and the convergence reason (as scikit-learn).
    copy_x : bool
        Accepted for scikit-learn compatibility.  arbf never writes into ``X`` (it
        centres into a new array), so ``X`` is left unchanged either way.
    working_memory : float or "auto", optional
        Memory budget in MiB for one chunk's temporaries (default: the configuration's,
        :func:`arbf.get_config`).
    algorithm : {"auto", "lloyd", "elkan", "hamerly", "yinyang"}, default "auto"
        How the assignment is computed -- not what it is: every value gives the same
        labels, centers, inertia and ``n_iter`` (to rounding).  "lloyd" computes all
        distances every iteration; the others carry bounds on the distances between
        iterations and skip the points whose label cannot change (exact triangle
        inequality bounds): "hamerly" (one lower bound per point; best for few
        clusters), "yinyang" (one per group of about ten centers; best for many),
        "elkan" (one per center, as scikit-learn's; memory ``n x k``).  "auto" chooses
        from ``n``, ``d`` and ``k`` by a cost model measured on a CPU (see the user
        guide, "Choosing an algorithm").  The bound methods run on the NumPy fast path
        (NumPy arrays and CPU tensors without gradient); elsewhere every value runs
        Lloyd.

    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine" is spherical K-Means (Dhillon & Modha 2001): the rows of ``X`` are
        normalised to unit norm (a row of norm 0 raises ``ValueError``) and not centred,
        a sample goes to the center of largest cosine similarity, and a center is the
        normalised weighted sum of its cell,

        .. math:: \mu_j = \frac{s_j}{\lVert s_j\rVert},\qquad
                  s_j = \sum_{l_i = j} w_i \frac{x_i}{\lVert x_i\rVert}

        (a cell whose sum is exactly 0 keeps its center; empty cells are relocated as
        above), minimising
        :math:`J^{\cos}(\mu) = \sum_i w_i \min_j \big(1 - \cos(x_i, \mu_j)\big)
        = \tfrac12 \sum_i w_i \min_j \lVert\hat x_i - \mu_j\rVert^2`, which is the
        ``inertia`` reported.  Initialisations see the normalised rows (k-means++ samples
        proportionally to :math:`1 - \cos`); initial centers are normalised; ``tol``
        scales with the mean feature variance of the normalised rows.  The centers
        returned have unit norm.  faiss's ``Kmeans(spherical=True)`` on normalised data
        from the same initial centers gives the same labels (its empty-cluster rule
        differs).  With a batch axis ``(B, n, d)`` every problem is this spherical
        K-Means (rows normalised per problem, not centred; a row of norm 0 is reported
        with its problem), equal to the one-problem call with its generator.

    Returns
    -------
    KMeansResult or BatchedKMeansResult
        ``.centers``, ``.labels``, ``.inertia``, ``.n_iter``, ``.converged``,
        ``.history`` (per problem for batched data).

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
    metric = check_metric(metric)
    if is_batched(X):  # (B, n, d): B independent problems, one batched pass each iteration
        check_param("copy_x", copy_x, BOOLEAN)
        check_param("algorithm", algorithm, Options(*ALGORITHMS))
        return kmeans_batched(
            X, n_clusters, init=init, n_init=n_init, max_iter=max_iter, tol=tol,
            sample_weight=sample_weight, random_state=random_state, verbose=verbose,
            working_memory=working_memory, metric=metric,
        )  # fmt: skip
    # dense euclidean data: the extent pass of `prepare` proves X finite (one pass saved)
    X, xp, n_clusters, w, rng = check_fit_inputs(
        X, n_clusters, sample_weight, random_state, finite=metric == COSINE
    )
    if metric == COSINE:
        return _spherical(
            X, xp, n_clusters, w, rng, init=init, n_init=n_init, max_iter=max_iter, tol=tol,
            verbose=verbose, copy_x=copy_x, working_memory=working_memory,
            algorithm=algorithm,
        )  # fmt: skip
    max_iter, tol, verbose, algorithm = _check_options(
        n_clusters, max_iter=max_iter, tol=tol, verbose=verbose, copy_x=copy_x,
        algorithm=algorithm,
    )  # fmt: skip
    init = check_init(init)
    runs = resolve_n_init(n_init, init, auto_many=10)
    # an explicit or callable init needs no centred data: on the host route the kernels
    # centre X chunk by chunk (the same bits) and no centred copy of X is made
    lazy = not isinstance(init, str) and seam.lazily_centred(X, w)
    prep = prepare(
        X, xp=xp, tol=tol, others=(array_init(init, n_clusters, X, xp=xp),), lazy=lazy,
        finite_check="X",
    )  # fmt: skip
    make_init = resolve_init(
        init, n_clusters, X=X, Xc=prep.X, mean=prep.mean, scale=prep.scale, w=w, rng=rng,
        xp=xp, working_memory=working_memory,
    )  # fmt: skip
    res = best_of(
        prep.X, w, make_init, runs, xp=xp, max_iter=max_iter, tol=prep.tol,
        verbose=bool(verbose), working_memory=working_memory, algorithm=algorithm,
        offset=prep.offset,
    )  # fmt: skip
    warn_fewer_clusters(res.labels, n_clusters)
    return result_to_data(res, prep)


def _check_options(
    n_clusters: int,
    *,
    max_iter: Any,
    tol: Any,
    verbose: Any,
    copy_x: Any,
    algorithm: Any,
    stacklevel: int = 3,
) -> tuple[int, float, Any, str]:
    max_iter = check_param("max_iter", max_iter, Interval(numbers.Integral, 1))
    tol = check_param("tol", tol, Interval(numbers.Real, 0))
    verbose = check_param("verbose", verbose, BOOLEAN, Interval(numbers.Integral, 0))
    check_param("copy_x", copy_x, BOOLEAN)
    algorithm = check_param("algorithm", algorithm, Options(*ALGORITHMS))
    if algorithm == "elkan" and n_clusters == 1:
        warnings.warn(
            "algorithm='elkan' doesn't make sense for a single cluster. Using 'lloyd' instead.",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        algorithm = "lloyd"
    return max_iter, tol, verbose, algorithm


def _spherical(
    X: Any,
    xp: Any,
    n_clusters: int,
    w: Any,
    rng: Any,
    *,
    init: Any,
    n_init: Any,
    max_iter: Any,
    tol: Any,
    verbose: Any,
    copy_x: Any,
    working_memory: Any,
    algorithm: Any,
) -> KMeansResult:
    r""":func:`kmeans` with ``metric="cosine"``: Dhillon & Modha's spherical K-Means.

    The rows are normalised once (:func:`arbf._math.metric.to_sphere`) and not centred
    (cosine is not translation invariant); the Euclidean engine runs on them with every
    updated center projected back onto the sphere, which is the spherical update
    :math:`\mu_j = s_j/\lVert s_j\rVert`, :math:`s_j = \sum_{l_i=j} w_i\hat x_i`, and its
    nearest centers are those of largest cosine
    (:math:`\lVert\hat x-\hat\mu\rVert^2 = 2(1-\cos)`).  The inertia it reports is
    :math:`\sum_i w_i (1 - \cos(x_i, \mu_{l_i}))`, half the engine's.
    """
    max_iter, tol, verbose, algorithm = _check_options(
        n_clusters, max_iter=max_iter, tol=tol, verbose=verbose, copy_x=copy_x,
        algorithm=algorithm, stacklevel=4,
    )  # fmt: skip
    init = check_init(init)
    runs = resolve_n_init(n_init, init, auto_many=10)
    U = to_sphere(X, xp=xp)
    tol_abs = tolerance(U, tol, xp=xp)
    make_init = resolve_init(
        init, n_clusters, X=U, Xc=U, mean=None, w=w, rng=rng, xp=xp,
        working_memory=working_memory,
    )  # fmt: skip

    def on_sphere(C_new: Any, C_old: Any) -> Any:
        return project(C_new, C_old, xp=xp)

    def make_unit_init() -> Any:
        return to_sphere(make_init(), xp=xp, name="init")

    res = best_of(
        U, w, make_unit_init, runs, xp=xp, max_iter=max_iter, tol=tol_abs,
        verbose=bool(verbose), working_memory=working_memory, algorithm=algorithm,
        project=on_sphere, inertia_scale=0.5,
    )  # fmt: skip
    warn_fewer_clusters(res.labels, n_clusters)
    return halve_inertia(res)


# --------------------------------------------------------------------------------------
# the seedings' front doors: one problem (init.py) or a batch of them (batched.py)
# --------------------------------------------------------------------------------------


def kmeans_plusplus(
    X: Any,
    n_clusters: int,
    /,
    *,
    sample_weight: Any = None,
    random_state: Any = None,
    n_local_trials: int | None = None,
    x_squared_norms: Any = None,
    working_memory: Any = None,
) -> tuple[Any, np.ndarray]:
    r"""Choose initial centers with greedy, weight-aware k-means++.

    The first center is drawn with probability :math:`w_i / \sum w`; each next one is the
    best of ``n_local_trials`` candidates drawn with probability proportional to
    :math:`w_i \min_j \lVert x_i - \mu_j\rVert^2`, keeping the candidate that most
    lowers the potential :math:`\sum_i w_i \min_j \lVert x_i-\mu_j\rVert^2`.

    Parameters
    ----------
    X : array or scipy.sparse matrix (n_samples, n_features), or array (B, n_samples, n_features)
        A sparse matrix is not densified; the centers come back dense (NumPy).  With a
        leading batch axis, ``B`` independent seedings in one call: each center is one
        batched distance pass over all problems (no loop over ``B`` on the data).
    n_clusters : int
    sample_weight : array of shape (n_samples,) or (B, n_samples), optional
    random_state : int, numpy Generator or None; or a sequence of B of them
        Seeds one host NumPy Generator: the same seed gives the same centers on every
        backend.  Batched: problem ``b`` draws from the ``b``-th child of
        ``np.random.default_rng(random_state).spawn(B)`` (a sequence gives each problem
        its own), so ``kmeans_plusplus(X, k, random_state=[s0, s1])[0][b]`` equals
        ``kmeans_plusplus(X[b], k, random_state=s_b)[0]``.

        k-means++ is sequential: one pass over the data and one host sync per center.
        On Dask the cumulative sums of the sampling weights are formed on the host, so
        each center also moves an ``n``-vector to the client: fine for moderate ``n``;
        for data that do not fit one memory use k-means|| (``init="k-means||"``,
        :func:`kmeans_parallel`), a few passes in all.
    n_local_trials : int, optional
        Candidates per center (default ``2 + floor(ln k)``); at most ``n_samples`` and
        :data:`MAX_LOCAL_TRIALS` (100).  The ``n x n_local_trials`` distances are formed
        in blocks of columns within ``working_memory``.
    x_squared_norms : array of shape (n_samples,) or (B, n_samples), optional
        The squared row norms :math:`\lVert x_i\rVert^2` when already computed
        (scikit-learn's parameter; validated, then used in the distances).
    working_memory : float, optional
        Memory budget in MiB for one chunk.

    Returns
    -------
    centers : array of shape (n_clusters, n_features) or (B, n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.
    indices : numpy array of shape (n_clusters,) or (B, n_clusters)
        Row of ``X`` (of problem ``b``) each center was taken from.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> centers, idx = arbf.kmeans_plusplus(X, 2, random_state=0)
    >>> sorted(int(i) // 2 for i in idx)
    [0, 1]
    """
    if is_batched(X):
        return kmeans_plusplus_front(
            X, n_clusters, sample_weight=sample_weight, random_state=random_state,
            n_local_trials=n_local_trials, x_squared_norms=x_squared_norms,
            working_memory=working_memory, max_local_trials=MAX_LOCAL_TRIALS,
        )  # fmt: skip
    return kmeans_plusplus_one(
        X, n_clusters, sample_weight=sample_weight, random_state=random_state,
        n_local_trials=n_local_trials, x_squared_norms=x_squared_norms,
        working_memory=working_memory,
    )  # fmt: skip


def kmeans_parallel(
    X: Any,
    n_clusters: int,
    /,
    *,
    sample_weight: Any = None,
    random_state: Any = None,
    oversampling_factor: float = 2.0,
    n_rounds: int = 5,
    working_memory: Any = None,
) -> Any:
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
    X : array of shape (n_samples, n_features) or (B, n_samples, n_features)
        With a leading batch axis, ``B`` independent seedings in one call: every round is
        one batched pass over all problems (their new candidates padded to a common
        count); the Bernoulli draws and the final weighted K-Means of each problem's
        small candidate set run per problem on the host.
    n_clusters : int
    sample_weight : array of shape (n_samples,) or (B, n_samples), optional
    random_state : int, numpy Generator or None; or a sequence of B of them
        Batched: the seeds of :func:`kmeans_plusplus`.
    oversampling_factor : float, default=2.0
        :math:`\ell / k`.
    n_rounds : int, default=5
        At most :data:`MAX_ROUNDS` (100); rounds continue past it only while fewer than
        ``n_clusters`` distinct candidates exist (at most ``4 n_rounds`` in all).
    working_memory : float, optional
        Memory budget in MiB for one chunk.

    Returns
    -------
    centers : array of shape (n_clusters, n_features) or (B, n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
    >>> C = arbf.kmeans_parallel(X, 2, random_state=0)
    >>> sorted(float(v) for v in C[:, 0])
    [0.0, 9.0]
    """
    if is_batched(X):
        oversampling_factor = check_param(
            "oversampling_factor", oversampling_factor, Interval(numbers.Real, 0, None, "neither")
        )
        n_rounds = check_param("n_rounds", n_rounds, Interval(numbers.Integral, 1, MAX_ROUNDS))
        return kmeans_parallel_front(
            X, n_clusters, sample_weight=sample_weight, random_state=random_state,
            oversampling_factor=float(oversampling_factor), n_rounds=int(n_rounds),
            working_memory=working_memory,
        )  # fmt: skip
    return kmeans_parallel_one(
        X, n_clusters, sample_weight=sample_weight, random_state=random_state,
        oversampling_factor=oversampling_factor, n_rounds=n_rounds,
        working_memory=working_memory,
    )  # fmt: skip
