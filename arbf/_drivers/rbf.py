"""Drivers of the RBF relaxation: fixed-σ training (A2/A3) and σ-annealing (A4).

Both loops synchronise with the host once per iteration (a few scalars: the center shift
and the objectives); the arithmetic is in :mod:`arbf._math`.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, materialize, to_host
from .._chunking import chunk_rows, iter_chunks
from .._math.distances import _itemsize, sq_distances, sq_norms
from .._math.steps import safe_divide_centers
from .._validation import (
    check_data,
    check_kind,
    check_random_state,
    check_sample_weight,
    check_sigma,
    check_x_centers_weights,
)
from .deterministic_annealing import critical_factor
from .kmeans import KMeansResult, _emit, _mean_rows, _tolerance, finish_lloyd

__all__ = ["AnnealResult", "RBFResult", "anneal", "default_schedule", "rbf_kmeans"]

logger = logging.getLogger("arbf")

_UPDATES = ("fixed_point", "gradient")


@dataclass
class RBFResult:
    """What :func:`arbf.rbf_kmeans` returns.

    Attributes
    ----------
    centers : array (n_clusters, n_features)
    n_iter : int
    converged : bool
        Whether the center shift fell to ``tol`` (relative) before ``max_iter``.
    history : dict
        Per-iteration host arrays ``"free_energy"``, ``"soft_distortion"``,
        ``"inertia"`` (each at the centers *before* that iteration's update) and
        ``"center_shift"`` (squared norm of the update).
    """

    centers: Array
    n_iter: int
    converged: bool
    history: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class AnnealResult:
    """What :func:`arbf.anneal` returns.

    Attributes
    ----------
    centers : array (n_clusters, n_features)
        Final centers: an exact K-Means fixed point when ``finish=True``.
    sigmas : numpy array (L,)
        The temperature levels, decreasing.
    path : numpy array (L, n_clusters, n_features)
        Centers at the end of each level.
    objectives : dict of numpy arrays (L,)
        ``"free_energy"``, ``"soft_distortion"``, ``"inertia"`` at the end of each level.
    n_iter : numpy int array (L,)
        Iterations spent at each level.
    one_hot : numpy bool array (L,)
        Whether every row's responsibilities were one-hot at that level's final centers
        (for entmax-1.5 this is ``min_i Δ_i >= 2σ``, SPEC Theorem 4).
    sigma_exact : float
        ``min_i Δ_i / 2`` at the final centers, with ``Δ_i`` the gap between the two
        smallest squared distances of row ``i``: below it entmax-1.5 is exactly hard.
    kmeans : KMeansResult or None
        The final hard Lloyd run (``finish=True``).
    """

    centers: Array
    sigmas: np.ndarray
    path: np.ndarray
    objectives: dict[str, np.ndarray]
    n_iter: np.ndarray
    one_hot: np.ndarray
    sigma_exact: float
    kmeans: KMeansResult | None = None


def _check_update(update: Any, lr: Any) -> None:
    if update not in _UPDATES:
        raise ValueError(f"update must be one of {_UPDATES}, got {update!r}")
    if isinstance(lr, str):
        if lr != "lloyd":
            raise ValueError(f"lr must be 'lloyd' or a positive float, got {lr!r}")
    elif isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (0 < float(lr) < np.inf):
        raise ValueError(f"lr must be 'lloyd' or a positive float, got {lr!r}")


def _check_iter_tol(max_iter: Any, tol: Any) -> tuple[int, float]:
    if (
        isinstance(max_iter, bool)
        or not isinstance(max_iter, numbers.Integral)
        or int(max_iter) < 1
    ):
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not float(tol) >= 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    return int(max_iter), float(tol)


def min_margin(
    X: Array, C: Array, *, xp: ModuleType, working_memory: float | None = None
) -> float:
    """``min_i (D_i(2) - D_i(1))``: the smallest gap between the two nearest centers.

    Chunked; one host sync.  With a single center the margin is ``inf``.
    """
    n, k = X.shape[0], C.shape[0]
    if k < 2:
        return float("inf")
    rows = chunk_rows(n, k, _itemsize(X), xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    mins = []
    for a, b in iter_chunks(n, rows):
        D = sq_distances(X[a:b, ...], C, xp=xp, c_sq=c_sq)
        d1 = xp.min(D, axis=1)
        j1 = xp.argmin(D, axis=1)
        ks = xp.arange(k, device=device_of(D))
        inf = xp.asarray(float("inf"), dtype=D.dtype, device=device_of(D))
        d2 = xp.min(xp.where(ks[None, :] == j1[:, None], inf, D), axis=1)
        mins.append(xp.min(d2 - d1))
    return float(to_host(xp.min(xp.stack(mins))))


def _fixed_sigma(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    sigma: float,
    kind: str,
    max_iter: int,
    tol_abs: float,
    update: str,
    lr: Any,
    working_memory: float | None,
    verbose: bool,
    label: str = "",
) -> tuple[Array, int, bool, dict[str, list[float]]]:
    hist: dict[str, list[float]] = {
        "free_energy": [],
        "soft_distortion": [],
        "inertia": [],
        "center_shift": [],
    }
    converged = False
    it = 0
    from .._math.rbf_objectives import soft_stats_impl

    for it in range(1, max_iter + 1):
        st = soft_stats_impl(X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory)
        if update == "fixed_point" or lr == "lloyd":
            # lr="lloyd": eta_j = 1/(2 N_j) lands exactly on the soft centroid (Theorem 2)
            C_new = safe_divide_centers(st.sums, st.mass, C, xp=xp)
        else:
            grad = 2.0 * (st.mass[:, None] * C - st.sums)
            C_new = C - float(lr) * grad
        diff = C_new - C
        stats = xp.stack(
            [
                xp.sum(diff * diff),
                xp.astype(st.free_energy, C.dtype),
                xp.astype(st.soft_distortion, C.dtype),
                xp.astype(st.inertia, C.dtype),
            ]
        )
        C_new, stats = materialize(C_new, stats, xp=xp)  # one evaluation per iteration
        host = to_host(stats)
        shift = float(host[0])
        hist["center_shift"].append(shift)
        hist["free_energy"].append(float(host[1]))
        hist["soft_distortion"].append(float(host[2]))
        hist["inertia"].append(float(host[3]))
        if not np.isfinite(shift):
            raise FloatingPointError(
                f"non-finite center update at sigma={sigma:g} (iteration {it}); "
                "with update='gradient' the learning rate is probably too large"
            )
        C = C_new
        if shift <= tol_abs:
            converged = True
            break
    _emit(
        verbose,
        "%ssigma %.4g: %d iteration(s), F %.6g, L %.6g, J %.6g",
        label,
        sigma,
        it,
        hist["free_energy"][-1],
        hist["soft_distortion"][-1],
        hist["inertia"][-1],
    )
    return C, it, converged, hist


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
    working_memory: float | None = None,
    verbose: bool = False,
) -> RBFResult:
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

    Returns
    -------
    RBFResult

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [10.0], [11.0]])
    >>> res = arbf.rbf_kmeans(X, xp.asarray([[2.0], [8.0]]), sigma=0.5, kind="entmax15")
    >>> res.centers
    Array([[ 0.5],
           [10.5]], dtype=array_api_strict.float64)
    """
    X, C, w, xp = check_x_centers_weights(X, init, sample_weight, centers_name="init")
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    _check_update(update, lr)
    max_iter, tol = _check_iter_tol(max_iter, tol)
    if sigma == 0:
        kind = "hard"
    mean = _mean_rows(X, xp=xp)
    C, n_iter, converged, hist = _fixed_sigma(
        X - mean,
        C - mean,
        w,
        xp=xp,
        sigma=sigma,
        kind=kind,
        max_iter=max_iter,
        tol_abs=_tolerance(X, tol, xp=xp),
        update=update,
        lr=lr,
        working_memory=working_memory,
        verbose=verbose,
    )
    return RBFResult(
        centers=C + mean,
        n_iter=n_iter,
        converged=converged,
        history={k: np.asarray(v) for k, v in hist.items()},
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


def critical_sigma(X: Array, w: Array | None, *, xp: ModuleType) -> float:
    r"""``σ_c = 2 λ_max(Cov_w X)``: above it the softmax fixed point is all centers at the mean.

    (Rose, Gurewitz & Fox 1990, in our convention where σ divides the squared distance.)
    """
    mean = _mean_rows(X, xp=xp) if w is None else xp.sum(X * w[:, None], axis=0) / xp.sum(w)
    Xc = X - mean
    if w is None:
        cov = (Xc.T @ Xc) / X.shape[0]
    else:
        cov = (Xc.T @ (Xc * w[:, None])) / xp.sum(w)
    cov_h = to_host(cov).astype(np.float64)
    return float(2.0 * np.linalg.eigvalsh(cov_h)[-1])


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
) -> np.ndarray:
    r"""The default geometric σ schedule, chosen from the data.

    It starts at the critical temperature :math:`\sigma_c = c\,\lambda_{\max}(\mathrm{Cov}\,X)`
    where the first split happens (:math:`c = 2` for softmax, :math:`2\sqrt2` for
    entmax-1.5: :func:`arbf._drivers.deterministic_annealing.critical_factor`) and ends at
    :math:`\sigma_{\min} = \min(\min_i \Delta_i/2,\ 10^{-3}\sigma_c)` evaluated at ``init``
    (below :math:`\min\Delta/2` entmax-1.5 is exactly hard), with ``n_levels`` (default
    30) geometrically spaced levels.  Returns a host NumPy array, decreasing.
    """
    if init is None:
        Xv, xp = check_data(X)
        w = check_sample_weight(
            sample_weight, Xv.shape[0], xp=xp, dtype=Xv.dtype, device=device_of(Xv), like=Xv
        )
        C = None
    else:
        Xv, C, w, xp = check_x_centers_weights(X, init, sample_weight, centers_name="init")
    s_c = critical_sigma(Xv, w, xp=xp) * critical_factor(kind) / 2.0
    hi = float(sigma_max) if sigma_max is not None else s_c
    if sigma_min is not None:
        lo = float(sigma_min)
    else:
        lo = 1e-3 * s_c
        if C is not None:
            m = min_margin(Xv, C, xp=xp)
            if np.isfinite(m) and m > 0:
                lo = min(lo, m / 2)
    if n_levels is None:
        n_levels = 30
    if s_c == 0 and sigma_max is None and sigma_min is None:
        # constant data: every temperature gives the same (hard) answer
        return np.zeros(1)
    if not (hi > 0 and lo > 0 and np.isfinite(hi) and np.isfinite(lo)):
        raise ValueError(f"schedule bounds must be positive and finite, got {hi}, {lo}")
    if lo > hi:
        lo, hi = hi, lo
    if n_levels < 1:
        raise ValueError(f"n_levels must be >= 1, got {n_levels}")
    return np.geomspace(hi, lo, int(n_levels)) if n_levels > 1 else np.asarray([hi])


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
    working_memory: float | None = None,
    verbose: bool = False,
) -> AnnealResult:
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
        Run hard Lloyd (:func:`arbf.kmeans`, ``tol=0``) from the last level.
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
        Log each level on the ``"arbf"`` logger.

    Returns
    -------
    AnnealResult

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
    """
    X, C, w, xp = check_x_centers_weights(X, init, sample_weight, centers_name="init")
    kind = check_kind(kind, ("softmax", "entmax15"))
    _check_update(update, lr)
    max_iter, tol = _check_iter_tol(max_iter, tol)
    if schedule is None:
        sigmas = default_schedule(
            X,
            C,
            kind=kind,
            sample_weight=w,
            sigma_max=sigma_max,
            sigma_min=sigma_min,
            n_levels=n_levels,
        )
    else:
        sigmas = np.asarray(
            to_host(schedule) if not isinstance(schedule, Sequence) else schedule, dtype=np.float64
        ).reshape(-1)
        if sigmas.size == 0:
            raise ValueError("schedule must hold at least one temperature")
        for s in sigmas:
            check_sigma(float(s))
        if np.any(np.diff(sigmas) > 0):
            raise ValueError("schedule must be non-increasing (annealing lowers σ)")
    if isinstance(perturbation, bool) or not isinstance(perturbation, numbers.Real):
        raise ValueError(f"perturbation must be a non-negative number, got {perturbation!r}")
    if not 0 <= float(perturbation) < np.inf:
        raise ValueError(f"perturbation must be a non-negative number, got {perturbation!r}")
    rng = check_random_state(random_state)
    mean = _mean_rows(X, xp=xp)
    Xc, Cc = X - mean, C - mean
    tol_abs = _tolerance(X, tol, xp=xp)
    k, d = C.shape
    path = np.empty((sigmas.size, k, d))
    obj = {name: np.empty(sigmas.size) for name in ("free_energy", "soft_distortion", "inertia")}
    iters = np.empty(sigmas.size, dtype=np.int64)
    one_hot = np.empty(sigmas.size, dtype=bool)
    from .._math.rbf_objectives import soft_stats_impl

    for li, s in enumerate(sigmas):
        level_kind = "hard" if s == 0 else kind
        if perturbation > 0 and s > 0:
            Cc = _split_coincident(Cc, float(perturbation) * float(np.sqrt(s)), rng, xp=xp)
        Cc, it, _, _ = _fixed_sigma(
            Xc,
            Cc,
            w,
            xp=xp,
            sigma=float(s),
            kind=level_kind,
            max_iter=max_iter,
            tol_abs=tol_abs,
            update=update,
            lr=lr,
            working_memory=working_memory,
            verbose=verbose,
            label=f"level {li + 1}/{sigmas.size}: ",
        )
        st = soft_stats_impl(
            Xc, Cc, w, sigma=float(s), kind=level_kind, xp=xp, working_memory=working_memory
        )
        vals = to_host(
            xp.stack(
                [xp.astype(v, Cc.dtype) for v in (st.free_energy, st.soft_distortion, st.inertia)]
            )
        )
        obj["free_energy"][li], obj["soft_distortion"][li], obj["inertia"][li] = vals
        path[li] = to_host(Cc + mean)
        iters[li] = it
        margin = min_margin(Xc, Cc, xp=xp, working_memory=working_memory)
        if level_kind == "hard":
            one_hot[li] = True
        elif level_kind == "entmax15":
            one_hot[li] = bool(margin >= 2 * s)
        else:  # softmax: exactly one-hot only if exp underflows for every runner-up
            one_hot[li] = bool(margin / s > -np.log(np.finfo(to_host(Cc).dtype).tiny))
    km: KMeansResult | None = None
    if finish:
        Cc, km = finish_lloyd(Xc, Cc, w, mean, working_memory=working_memory)
    return AnnealResult(
        centers=Cc + mean,
        sigmas=sigmas,
        path=path,
        objectives=obj,
        n_iter=iters,
        one_hot=one_hot,
        sigma_exact=min_margin(Xc, Cc, xp=xp, working_memory=working_memory) / 2,
        kmeans=km,
    )
