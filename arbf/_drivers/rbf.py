"""Drivers of the RBF relaxation: fixed-σ training (A2/A3) and σ-annealing (A4).

Both run the one fixed-point loop (:mod:`.fixed_point`), which synchronises with the host
once per iteration (the center shift and the objectives); annealing ends with the Lloyd
engine's exact hand-over (:func:`arbf._drivers.engine.finish`).  The public functions
validate and centre once; the estimators call the ``*_prepared`` twins.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, to_host
from .._math import seam
from .._math.batched import is_batched
from .._math.metric import COSINE, check_metric, project, to_sphere
from .._math.metric import prepare as metric_prepare
from .._messages import emit
from .._scaling import units
from .._validation import (
    BOOLEAN,
    Interval,
    Options,
    check_data,
    check_kind,
    check_param,
    check_random_state,
    check_sample_weight,
    check_sigma,
    check_x_centers_weights,
)
from .batched_rbf import anneal_batched, rbf_kmeans_batched
from .deterministic_annealing import critical_factor
from .engine import Prepared, halve_inertia, prepare, sphere_prepared
from .engine import finish as engine_finish
from .fixed_point import FixedPoint, fixed_point
from .rbf_options import (
    MAX_LEVELS,
    check_schedule,
    check_schedule_bounds,
    check_update,
    schedule_from,
)
from .results import (
    AnnealResult,
    BatchedAnnealResult,
    BatchedRBFResult,
    KMeansResult,
    RBFResult,
)

__all__ = [
    "MAX_LEVELS",
    "anneal",
    "anneal_prepared",
    "check_schedule",
    "check_update",
    "critical_sigma",
    "default_schedule",
    "fit_fixed_sigma",
    "min_margin",
    "rbf_kmeans",
]


def fit_fixed_sigma(
    Xc: Array,
    Cc: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    sigma: float,
    kind: str,
    max_iter: int,
    tol: float,
    lr: float | str,
    working_memory: Any,
    verbose: bool,
    label: str = "",
    scale: float = 1.0,
    cosine: bool = False,
) -> FixedPoint:
    """The fixed-point run of :func:`rbf_kmeans` on prepared data (``sigma == 0``: hard;
    σ and ``tol`` in the prepared units, the data divided by ``scale``), with its
    ``verbose`` line (in the data's units).

    ``cosine``: ``Xc`` and ``Cc`` are on the unit sphere and ``sigma``, ``lr`` and the
    objectives are the cosine metric's: the Euclidean loop runs at ``2 sigma`` with step
    ``lr / 2`` and the centers projected onto the sphere after each update, and the
    objectives it reports are halved (:mod:`arbf._math.metric`).
    """
    fp = fixed_point(
        Xc, Cc, w, xp=xp, sigma=2 * sigma if cosine else sigma,
        kind="hard" if sigma == 0 else kind, max_iter=max_iter, tol=tol,
        lr=lr / 2 if cosine and not isinstance(lr, str) else lr,
        working_memory=working_memory, scale=scale,
        project=_on_sphere(xp) if cosine else None,
    )  # fmt: skip
    if cosine:
        fp = _halve(fp)
    h = fp.history
    emit(
        verbose, "%ssigma %.4g: %d iteration(s), F %.6g, L %.6g, J %.6g", label,
        units(sigma, scale), fp.n_iter, h["free_energy"][-1], h["soft_distortion"][-1],
        h["inertia"][-1],
    )  # fmt: skip
    return fp


def _on_sphere(xp: ModuleType) -> Any:
    def on_sphere(C_new: Array, C_old: Array) -> Array:
        return project(C_new, C_old, xp=xp)

    return on_sphere


def _halve(fp: FixedPoint) -> FixedPoint:
    """A spherical run's objectives in the cosine convention (half the Euclidean ones of
    the unit rows at twice the temperature); the center shift is unchanged."""
    hist = {
        name: v if name == "center_shift" else [x / 2 for x in v] for name, v in fp.history.items()
    }
    last = fp.last.copy()
    last[1:] = last[1:] / 2
    return FixedPoint(fp.centers, fp.n_iter, fp.converged, last, hist)


def min_margin(X: Array, C: Array, *, xp: ModuleType, working_memory: Any = None) -> float:
    """``min_i (D_i(2) - D_i(1))`` as a host float (``inf`` with one center): the
    smallest gap between the two nearest centers.  One host sync."""
    return float(to_host(seam.min_margin(X, C, xp=xp, working_memory=working_memory)))


def critical_sigma(X: Array, w: Array | None, *, xp: ModuleType) -> float:
    r"""``σ_c = 2 λ_max(Cov_w X)``: above it the softmax fixed point is all centers at the
    mean (Rose, Gurewitz & Fox 1990, in our convention where σ divides the squared
    distance).  One host sync."""
    return 2.0 * seam.principal_axis(X, w, xp=xp)[0]


def rbf_kmeans(
    X: Any,
    init: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    max_iter: int = 300,
    tol: float = 1e-6,
    update: str = "fixed_point",
    lr: Any = "lloyd",
    working_memory: Any = None,
    verbose: bool = False,
    metric: str = "sqeuclidean",
) -> RBFResult | BatchedRBFResult:
    r"""Train the centers of a normalised RBF network at a fixed temperature (A2, A3).

    Each iteration computes the responsibilities :math:`r_{ij}` (softmax or entmax-1.5 of
    :math:`-D_{ij}/\sigma`, or hard) and either jumps to the soft centroid (Lemma 1)

    .. math:: \mu_j \leftarrow m_j = \frac{\sum_i w_i r_{ij} x_i}{N_j},
              \qquad N_j = \sum_i w_i r_{ij},

    (``update="fixed_point"``) or takes a gradient step on the free energy
    :math:`\mu_j \leftarrow \mu_j - \eta_j \nabla_{\mu_j} F_\sigma`,
    :math:`\nabla_{\mu_j} F_\sigma = 2 \sum_i w_i r_{ij}(\mu_j - x_i)`
    (``update="gradient"``); ``lr="lloyd"`` means :math:`\eta_j = 1/(2N_j)`, which is the
    same step (Theorem 2).  It stops when :math:`\sum_j\lVert\Delta\mu_j\rVert^2 \le`
    ``tol`` times the mean feature variance, or after ``max_iter`` iterations.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        **Batched**: an array of shape ``(B, n_samples, n_features)`` holds B
        independent problems, solved together: every iteration is one batched pass over
        all of them (batched matrix products, problem ``b`` at its own temperature
        :math:`\sigma_b = \sigma` in its own units), not B calls, and a problem whose
        shift has fallen to its own ``tol`` stays frozen while the others go on.
        ``init`` is then ``(B, n_clusters, n_features)``, ``sample_weight``
        ``(B, n_samples)`` or ``(n_samples,)``, and a :class:`BatchedRBFResult` comes
        back (``result[b]`` equals ``rbf_kmeans(X[b], init[b], ...)`` to rounding).
        Dask arrays are refused (``TypeError``); ``metric="cosine"`` works per problem.
    init : array of shape (n_clusters, n_features)
        Initial centers (same namespace and device as ``X``).
    sigma : float
        Temperature σ ≥ 0; it divides the squared distance (a Gaussian of width ``s`` is
        ``σ = 2 s²``); 0 means hard (Lloyd).
    kind : {"softmax", "entmax15", "hard"}
    sample_weight : array of shape (n_samples,), optional
    max_iter : int
    tol : float
    update : {"fixed_point", "gradient"}
    lr : "lloyd" or float
    working_memory : float, optional
        Memory budget in MiB for one chunk.
    verbose : bool
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": the spherical relaxation (a von Mises-Fisher mixture with equal
        weights and shared concentration :math:`1/\sigma`).  The rows of ``X`` and
        ``init`` are normalised (a row of norm 0 raises ``ValueError``), :math:`D_{ij}`
        is the cosine distance :math:`1 - \cos(x_i, \mu_j)` (logits
        :math:`(\cos - 1)/\sigma`), and every update is projected onto the sphere:
        :math:`\mu_j \leftarrow m_j / \lVert m_j \rVert` (the fixed-point step), or
        :math:`P(\mu_j - \eta_j \sum_i w_i r_{ij}(\mu_j - \hat x_i))` with
        ``lr="lloyd"`` meaning :math:`\eta_j = 1/N_j` (the same step).  The objectives
        in ``history`` are the cosine ones; ``tol`` scales with the mean feature
        variance of the normalised rows; the centers have unit norm.

    Returns
    -------
    RBFResult or BatchedRBFResult

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [10.0], [11.0]])
    >>> res = arbf.rbf_kmeans(X, xp.asarray([[2.0], [8.0]]), sigma=0.5, kind="entmax15")
    >>> res.centers
    Array([[ 0.5],
           [10.5]], dtype=array_api_strict.float64)

    Two problems in one call (a leading batch axis; each converges on its own):

    >>> Xb = xp.stack([X, 2 * X])
    >>> rb = arbf.rbf_kmeans(Xb, xp.asarray([[[2.0], [8.0]], [[4.0], [16.0]]]), sigma=0.5,
    ...                      kind="entmax15")
    >>> rb.centers[:, :, 0], rb.n_iter
    (Array([[ 0.5, 10.5],
           [ 1. , 21. ]], dtype=array_api_strict.float64), array([2, 2]))
    """
    if is_batched(X):  # (B, n, d): B problems, one batched pass per iteration
        return rbf_kmeans_batched(
            X, init, sigma=sigma, kind=kind, sample_weight=sample_weight, max_iter=max_iter,
            tol=tol, update=update, lr=lr, working_memory=working_memory, verbose=verbose,
            metric=metric,
        )  # fmt: skip
    X, C, w, xp = check_x_centers_weights(X, init, sample_weight, centers_name="init")
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    lr = check_update(update, lr)
    max_iter = check_param("max_iter", max_iter, Interval(numbers.Integral, 1))
    tol = check_param("tol", tol, Interval(numbers.Real, 0))
    verbose = check_param("verbose", verbose, BOOLEAN, Interval(numbers.Integral, 0))
    metric = check_metric(metric)
    if metric == COSINE:
        X, C, _, _ = metric_prepare(X, C, metric, xp=xp, name="init")
        sp = sphere_prepared(X, xp=xp, tol=tol)
        fp = fit_fixed_sigma(
            sp.X, C, w, xp=xp, sigma=sigma, kind=kind, max_iter=max_iter, tol=sp.tol,
            lr=lr, working_memory=working_memory, verbose=bool(verbose), cosine=True,
        )  # fmt: skip
        return RBFResult(
            centers=fp.centers,
            n_iter=fp.n_iter,
            converged=fp.converged,
            history={name: np.asarray(v) for name, v in fp.history.items()},
        )
    prep = prepare(X, xp=xp, tol=tol, others=(C,))
    fp = fit_fixed_sigma(
        prep.X, prep.from_data(C), w, xp=xp, sigma=prep.sigma_in(sigma), kind=kind,
        max_iter=max_iter, tol=prep.tol, lr=lr, working_memory=working_memory,
        verbose=bool(verbose), scale=prep.scale,
    )  # fmt: skip
    return RBFResult(
        centers=prep.to_data(fp.centers),
        n_iter=fp.n_iter,
        converged=fp.converged,
        history={name: np.asarray(v) for name, v in fp.history.items()},
    )


def _split_coincident(
    C: Array, radius: float, rng: np.random.Generator, *, xp: ModuleType
) -> Array:
    """Move each center within ``radius`` of a lower-numbered one by ``radius`` (random
    direction).  Host-side on the small ``k x d`` array; returns ``C`` itself when no
    center moves."""
    Ch = to_host(C).astype(np.float64)
    k, d = Ch.shape
    d2 = np.sum((Ch[:, None, :] - Ch[None, :, :]) ** 2, axis=-1)
    close = np.tril(d2 < radius * radius, k=-1).any(axis=1)
    if not close.any():
        return C
    step = rng.normal(size=(k, d))
    step /= np.maximum(np.linalg.norm(step, axis=1, keepdims=True), 1e-300)
    Ch = Ch + np.where(close[:, None], radius * step, 0.0)
    return from_host(Ch, xp=xp, device=device_of(C), dtype=C.dtype)


def default_schedule(
    X: Any,
    init: Any = None,
    /,
    *,
    kind: str = "softmax",
    sample_weight: Any = None,
    sigma_max: float | None = None,
    sigma_min: float | None = None,
    n_levels: int | None = None,
    metric: str = "sqeuclidean",
) -> np.ndarray:
    r"""The default geometric σ schedule, chosen from the data.

    It starts at the critical temperature :math:`\sigma_c = c\,\lambda_{\max}(\mathrm{Cov}\,X)`
    where the first split happens (:math:`c = 2` for softmax, :math:`2\sqrt2` for
    entmax-1.5: :func:`arbf._drivers.deterministic_annealing.critical_factor`) and ends at
    :math:`\sigma_{\min} = \min(\min_i \Delta_i/2,\ 10^{-3}\sigma_c)` evaluated at ``init``
    (below :math:`\min\Delta/2` entmax-1.5 is exactly hard), with ``n_levels`` (default
    30) geometrically spaced levels.  Returns a host NumPy array, decreasing.
    With ``metric="cosine"`` it is computed on the normalised rows (and ``init``) and
    expressed in the cosine temperature (half the Euclidean one of the unit rows: the
    margin is then the gap :math:`\cos_{(1)} - \cos_{(2)}` of the two largest cosines).
    """
    if init is None:
        Xv, xp = check_data(X)
        w = check_sample_weight(
            sample_weight, Xv.shape[0], xp=xp, dtype=Xv.dtype, device=device_of(Xv), like=Xv
        )
        C = None
    else:
        Xv, C, w, xp = check_x_centers_weights(X, init, sample_weight, centers_name="init")
    kind = check_kind(kind, ("softmax", "entmax15"))
    if check_metric(metric) == COSINE:
        Xv = to_sphere(Xv, xp=xp)
        C = None if C is None else to_sphere(C, xp=xp, name="init")
        return _cosine_schedule(
            Xv, C, w, xp=xp, kind=kind, sigma_max=sigma_max, sigma_min=sigma_min,
            n_levels=n_levels,
        )  # fmt: skip
    prep = prepare(Xv, xp=xp, others=(C,))
    return _default_schedule(
        prep.X, None if C is None else prep.from_data(C), w, xp=xp, kind=kind,
        sigma_max=sigma_max, sigma_min=sigma_min, n_levels=n_levels, scale=prep.scale,
    )  # fmt: skip


def _cosine_schedule(
    U: Array,
    C: Array | None,
    w: Array | None,
    *,
    xp: ModuleType,
    kind: str,
    sigma_max: Any,
    sigma_min: Any,
    n_levels: Any,
) -> np.ndarray:
    """:func:`_default_schedule` for the cosine metric on unit rows ``U`` (and centers
    ``C``): the Euclidean schedule of the unit rows, halved (the given bounds are cosine
    temperatures, doubled on the way in)."""
    twice = {
        name: None if v is None else 2.0 * float(check_sigma(v, allow_zero=False, name=name))
        for name, v in (("sigma_max", sigma_max), ("sigma_min", sigma_min))
    }
    sig = _default_schedule(
        U, C, w, xp=xp, kind=kind, sigma_max=twice["sigma_max"], sigma_min=twice["sigma_min"],
        n_levels=n_levels,
    )  # fmt: skip
    return sig / 2


def _default_schedule(
    X: Array,
    C: Array | None,
    w: Array | None,
    *,
    xp: ModuleType,
    kind: str,
    sigma_max: Any,
    sigma_min: Any,
    n_levels: Any,
    scale: float = 1.0,
) -> np.ndarray:
    """:func:`default_schedule` on validated, prepared arrays (divided by ``scale``;
    ``sigma_max``/``sigma_min`` and the result in the data's units)."""
    bounds = check_schedule_bounds(sigma_max, sigma_min, n_levels)
    s_c = units(critical_sigma(X, w, xp=xp) * critical_factor(kind) / 2.0, scale)
    margin = None if C is None else units(min_margin(X, C, xp=xp), scale)
    return schedule_from(s_c, margin, *bounds)


def anneal(
    X: Any,
    init: Any,
    /,
    *,
    kind: str = "softmax",
    schedule: Sequence[float] | Any = None,
    sigma_max: float | None = None,
    sigma_min: float | None = None,
    n_levels: int | None = None,
    sample_weight: Any = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    update: str = "fixed_point",
    lr: Any = "lloyd",
    finish: bool = True,
    perturbation: float = 1e-2,
    random_state: Any = 0,
    working_memory: Any = None,
    verbose: bool = False,
    algorithm: str = "auto",
    metric: str = "sqeuclidean",
) -> AnnealResult | BatchedAnnealResult:
    r"""Anneal the RBF temperature σ down to K-Means (A4), recording the path of centers.

    At each level of a decreasing schedule :math:`\sigma_1 > \dots > \sigma_L` the
    centers are trained to a fixed point of the RBF network (:func:`rbf_kmeans`), warm
    started from the previous level.  As σ → 0 the objectives Γ-converge to the K-Means
    distortion (Theorem 1); entmax-1.5 is exactly hard once
    :math:`\sigma \le \min_i \Delta_i / 2` (Theorem 4).  With ``finish=True`` a final hard
    Lloyd run from the last level ends at an exact K-Means fixed point.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        **Batched**: an array of shape ``(B, n_samples, n_features)`` holds B
        independent problems, annealed together: each level is a vector of
        temperatures :math:`(\sigma_{1\ell}, \dots, \sigma_{B\ell})` (the default
        schedule is each problem's own; an explicit ``schedule`` is shared), every
        fixed-point iteration one batched pass over all problems (a problem that has
        converged at a level waits, frozen, for the others), and ``finish`` one batched
        Lloyd run.  ``init`` is then ``(B, n_clusters, n_features)``,
        ``sample_weight`` ``(B, n_samples)`` or ``(n_samples,)``; problem ``b`` draws
        its perturbations from ``np.random.default_rng(random_state).spawn(B)[b]`` (or
        the b-th of a sequence of B seeds), so ``result[b]`` of the
        :class:`BatchedAnnealResult` equals ``anneal(X[b], init[b], ...,
        random_state=that generator)`` to rounding.  ``algorithm`` is Lloyd's; Dask
        arrays are refused (``TypeError``); ``metric="cosine"`` works per problem.  Problems
        whose default schedules differ in length (constant data) need ``schedule``.
    init : array of shape (n_clusters, n_features)
    kind : {"softmax", "entmax15"}
    schedule : sequence of float, optional
        Explicit decreasing temperatures.  Default: :func:`default_schedule` (geometric,
        from the critical temperature :math:`2\lambda_{\max}(\mathrm{Cov}X)` to below
        :math:`\min\Delta/2`), shaped by ``sigma_max``, ``sigma_min``, ``n_levels``.
    sample_weight : array of shape (n_samples,), optional
    max_iter, tol, update, lr
        Per level, as in :func:`rbf_kmeans`.
    finish : bool
        Run hard Lloyd (``tol=0``) from the last level to an exact K-Means fixed point.
    perturbation : float
        Symmetry breaking (Rose, Gurewitz & Fox 1990): at the start of each level, a
        center closer than ``perturbation * sqrt(σ)`` to a lower-numbered one is moved by
        ``perturbation * sqrt(σ)`` in a random direction.  Coincident centers are a fixed
        point of every soft update (and near-coincident ones sit at an unstable one whose
        first steps fall below ``tol``), so without this they never split again once a
        high temperature has merged them.  ``0`` turns it off.
    random_state : int, numpy Generator or None
        Seeds the directions of the perturbations (default 0: ``anneal`` is
        deterministic; ``None`` draws fresh entropy).
    working_memory : float, optional
    verbose : bool
        Print each level.
    algorithm : {"auto", "lloyd", "elkan", "hamerly", "yinyang"}, default "auto"
        How the final hard Lloyd run computes its assignments (as :func:`arbf.kmeans`;
        every value gives the same result).
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": anneal the spherical relaxation (:func:`rbf_kmeans` with
        ``metric="cosine"``) down to spherical K-Means (:func:`arbf.kmeans` with
        ``metric="cosine"``, which ``finish`` runs).  The schedule, ``sigmas``, the
        objectives, ``one_hot`` and ``sigma_exact`` are in the cosine convention
        (σ divides :math:`1 - \cos`; entmax-1.5 is exactly hard once σ is at most half
        the smallest gap between the two largest cosines of a row); the default
        schedule is :func:`default_schedule`'s for that metric; the path lies on the
        sphere.

    Returns
    -------
    AnnealResult or BatchedAnnealResult

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [10.0], [11.0]])
    >>> res = arbf.anneal(X, xp.asarray([[4.0], [6.0]]), kind="entmax15",
    ...                   schedule=[100.0, 10.0, 1.0])
    >>> res.path[:, :, 0].round(2)  # merged near the mean at σ = 100, split by σ = 10
    array([[ 5.49,  5.51],
           [10.5 ,  0.5 ],
           [10.5 ,  0.5 ]])
    >>> [bool(b) for b in res.one_hot], res.sigma_exact
    ([False, True, True], 45.0)

    Two problems in one call; the second is the first doubled, so its ``sigma_exact`` and
    inertia are four times the first's:

    >>> Xb = xp.stack([X, 2 * X])
    >>> rb = arbf.anneal(Xb, xp.asarray([[[4.0], [6.0]], [[8.0], [12.0]]]),
    ...                  kind="entmax15", schedule=[100.0, 10.0, 1.0])
    >>> rb.sigma_exact, rb.kmeans.inertia
    (array([ 45., 180.]), array([1., 4.]))
    """
    if is_batched(X):  # (B, n, d): B problems, one batched pass per iteration
        return anneal_batched(
            X, init, kind=kind, schedule=schedule, sigma_max=sigma_max, sigma_min=sigma_min,
            n_levels=n_levels, sample_weight=sample_weight, max_iter=max_iter, tol=tol,
            update=update, lr=lr, finish=finish, perturbation=perturbation,
            random_state=random_state, working_memory=working_memory, verbose=verbose,
            algorithm=algorithm, metric=metric,
        )  # fmt: skip
    X, C, w, xp = check_x_centers_weights(X, init, sample_weight, centers_name="init")
    kind = check_kind(kind, ("softmax", "entmax15"))
    lr = check_update(update, lr)
    max_iter = check_param("max_iter", max_iter, Interval(numbers.Integral, 1))
    tol = check_param("tol", tol, Interval(numbers.Real, 0))
    finish = check_param("finish", finish, BOOLEAN)
    verbose = check_param("verbose", verbose, BOOLEAN, Interval(numbers.Integral, 0))
    perturbation = check_param("perturbation", perturbation, Interval(numbers.Real, 0))
    algorithm = check_param("algorithm", algorithm, Options(*seam.ALGORITHMS))
    cosine = check_metric(metric) == COSINE
    if cosine:
        X, C, _, _ = metric_prepare(X, C, COSINE, xp=xp, name="init")
        prep = sphere_prepared(X, xp=xp, tol=tol)
    else:
        prep = prepare(X, xp=xp, tol=tol, others=(C,))
    if schedule is None:
        if cosine:
            sigmas = _cosine_schedule(
                prep.X, C, w, xp=xp, kind=kind, sigma_max=sigma_max, sigma_min=sigma_min,
                n_levels=n_levels,
            )  # fmt: skip
        else:
            sigmas = _default_schedule(
                prep.X, prep.from_data(C), w, xp=xp, kind=kind, sigma_max=sigma_max,
                sigma_min=sigma_min, n_levels=n_levels, scale=prep.scale,
            )  # fmt: skip
    else:
        sigmas = check_schedule(schedule)
    rng = check_random_state(random_state)
    return anneal_prepared(
        prep, prep.from_data(C), w, xp=xp, kind=kind, sigmas=sigmas, max_iter=max_iter,
        lr=lr, finish=finish, perturbation=perturbation, rng=rng,
        working_memory=working_memory, verbose=bool(verbose), algorithm=algorithm,
        cosine=cosine,
    )  # fmt: skip


def anneal_prepared(
    prep: Prepared,
    Cc: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    kind: str,
    sigmas: np.ndarray,
    max_iter: int,
    lr: float | str,
    finish: bool,
    perturbation: float,
    rng: np.random.Generator,
    working_memory: Any,
    verbose: bool,
    algorithm: str = "auto",
    cosine: bool = False,
) -> AnnealResult:
    """:func:`anneal` on prepared data (:func:`arbf._drivers.engine.prepare`; centers
    ``Cc`` in its coordinates, ``prep.tol`` absolute, the schedule ``sigmas`` in the
    data's units); the result is in the data's coordinates and units.

    ``cosine``: ``prep.X`` and ``Cc`` are unit rows (:func:`arbf._drivers.engine.
    sphere_prepared`), ``sigmas`` cosine temperatures (:func:`fit_fixed_sigma`); margins
    and objectives are reported in the cosine convention (half the Euclidean ones of the
    unit rows), and the hard finish projects its centers onto the sphere (spherical
    K-Means).
    """
    Xc, tol, sc = prep.X, prep.tol, prep.scale
    half = 0.5 if cosine else 1.0
    k, d = Cc.shape
    L = sigmas.size
    path = np.empty((L, k, d))
    obj = {name: np.empty(L) for name in ("free_energy", "soft_distortion", "inertia")}
    iters = np.empty(L, dtype=np.int64)
    one_hot = np.empty(L, dtype=bool)
    tiny = float(np.finfo(to_host(Cc[:1, :1]).dtype).tiny)
    for li, s_data in enumerate(sigmas):
        s = prep.sigma_in(float(s_data))  # σ in the prepared units
        level_kind = "hard" if s == 0 else kind
        if perturbation > 0 and s > 0:
            Cc = _split_coincident(Cc, perturbation * float(np.sqrt(s)), rng, xp=xp)
        fp = fit_fixed_sigma(
            Xc, Cc, w, xp=xp, sigma=s, kind=level_kind, max_iter=max_iter, tol=tol, lr=lr,
            working_memory=working_memory, verbose=verbose, label=f"level {li + 1}/{L}: ",
            scale=sc, cosine=cosine,
        )  # fmt: skip
        Cc = fp.centers
        st = seam.soft_stats(
            Xc, Cc, w, sigma=s / half, kind=level_kind, xp=xp, working_memory=working_memory
        )
        parts = (seam.free_energy_base(st, level_kind), st.entropy, st.soft_distortion, st.inertia)
        vals = to_host(xp.stack([xp.astype(v, Cc.dtype) for v in parts])).astype(np.float64)
        vals[[0, 2, 3]] *= half  # the cosine objectives are half the Euclidean ones of U
        obj["free_energy"][li] = seam.free_energy_at(
            vals[0], vals[1], sigma=float(s_data), scale=sc
        )
        obj["soft_distortion"][li] = units(vals[2], sc)
        obj["inertia"][li] = units(vals[3], sc)
        path[li] = to_host(prep.to_data(Cc))
        iters[li] = fp.n_iter
        margin = half * min_margin(Xc, Cc, xp=xp, working_memory=working_memory)
        if level_kind == "hard":
            one_hot[li] = True
        elif level_kind == "entmax15":
            one_hot[li] = bool(margin >= 2 * s)
        else:  # softmax: exactly one-hot only if exp underflows for every runner-up
            one_hot[li] = bool(margin / s > -np.log(tiny))
    km: KMeansResult | None = None
    if finish:
        Cc, km = engine_finish(
            prep, Cc, w, xp=xp, working_memory=working_memory, algorithm=algorithm,
            project=_on_sphere(xp) if cosine else None,
        )  # fmt: skip
        if cosine:
            km = halve_inertia(km)
    return AnnealResult(
        centers=prep.to_data(Cc),
        sigmas=sigmas,
        path=path,
        objectives=obj,
        n_iter=int(iters.sum()),
        n_iter_per_level=iters,
        one_hot=one_hot,
        sigma_exact=prep.sigma_out(
            half * min_margin(Xc, Cc, xp=xp, working_memory=working_memory) / 2
        ),
        kmeans=km,
    )
