r"""Deterministic annealing with splitting by critical temperatures (Rose et al.).

The centers start as one center at the (weighted) mean of the data.  At every
temperature σ the free energy :math:`F_\sigma` is minimised by fixed-point (soft Lloyd)
iterations, warm started; then each center's *critical temperature* is computed from
the top eigenpair of its responsibility-weighted covariance, and every center whose
critical temperature lies above σ is split in two along its principal axis, until there
are ``n_clusters`` centers (centers that run together are merged, freeing their slot).
The temperature then jumps straight to just below the next critical temperature
(levels where nothing would change are skipped) and, once all centers exist, cools
geometrically until the soft and hard distortions agree; utility-based center swaps
between hard Lloyd runs finish the job.

The loop synchronises with the host once per fixed-point iteration (center shift and
objectives: :mod:`.fixed_point`) and once per level for the principal axes; the
arithmetic is behind :mod:`arbf._math.seam`, and the hard Lloyd runs are the engine's
(:mod:`.engine`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, fields, replace
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, is_sparse, to_host
from .._math import seam
from .._messages import convergence_warning, emit
from .._scaling import units
from .._validation import (
    BOOLEAN,
    NONE,
    Interval,
    Options,
    check_fit_inputs,
    check_kind,
    check_param,
)
from .engine import finish as engine_finish
from .engine import lloyd, prepare, tolerance
from .fixed_point import fixed_point
from .results import DeterministicAnnealingResult, KMeansResult

__all__ = [
    "MAX_LEVELS",
    "AnnealOptions",
    "anneal_centers",
    "anneal_init",
    "critical_factor",
    "deterministic_annealing",
]


def warn_fewer_distinct(C: Array, k: int) -> None:
    """:func:`arbf.kmeans`'s warning when fewer than ``k`` distinct centers came out
    (fewer distinct points than clusters): the centers are duplicated."""
    distinct = int(np.unique(to_host(C).astype(np.float64), axis=0).shape[0])
    if distinct < k:
        warnings.warn(
            f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({k}). "
            "Possibly due to duplicate points in X.",
            convergence_warning(),
            stacklevel=3,
        )


def critical_factor(kind: str) -> float:
    r"""The constant :math:`c` in the critical temperature :math:`\sigma_c = c\,\lambda`.

    Two coincident centers sharing a cluster whose responsibility-weighted covariance
    has largest eigenvalue :math:`\lambda` (direction :math:`v`) separate when σ falls
    below :math:`c\lambda`.  Perturb them to :math:`\mu \pm \epsilon v`; a sample with
    :math:`u_i = (x_i - \mu)\cdot v` sees the logit difference
    :math:`\delta z_i = 4\epsilon u_i/\sigma`, and the responsibility of the first center
    moves by :math:`s\,\delta z_i` with :math:`s` the diagonal of the Jacobian of the
    map at two equal logits: :math:`s = 1/4` for softmax (:math:`p(1-p)`) and
    :math:`s = 1/(2\sqrt2)` for entmax-1.5 (:math:`\sqrt p - p/\sum_l\sqrt{p_l}` with
    :math:`p = 1/2`).  The soft centroid then moves to
    :math:`\epsilon \cdot 8 s \lambda / \sigma` along v: the merged point is unstable iff
    :math:`\sigma < 8 s \lambda`, i.e. :math:`c = 2` for softmax (Rose, Gurewitz & Fox
    1990, with σ dividing the squared distance) and :math:`c = 2\sqrt2` for entmax-1.5.
    """
    kind = check_kind(kind, ("softmax", "entmax15"))
    return 2.0 if kind == "softmax" else 2.0 * math.sqrt(2.0)


def _top_eigen(
    X: Array,
    C: Array,
    V: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    n_power: int,
    xp: ModuleType,
    working_memory: Any,
) -> tuple[Array, np.ndarray, np.ndarray]:
    """``n_power`` warm-started power iterations; returns ``(V, lam, mass)``, two on host.

    ``lam_j`` is the Rayleigh quotient of the last iterate (a lower bound on the largest
    eigenvalue of center j's weighted covariance).  One host sync.
    """
    rq = mass = None
    for _ in range(n_power):
        A, N = seam.principal_axes_pass(
            X, C, V, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
        )
        rq = xp.sum(A * V, axis=1)
        mass = N
        norm = xp.sqrt(xp.sum(A * A, axis=1))
        ok = norm > 0
        V = xp.where(ok[:, None], A / xp.where(ok, norm, xp.ones_like(norm))[:, None], V)
    assert rq is not None and mass is not None
    host = to_host(xp.stack([rq, mass])).astype(np.float64)
    rq_h, n_h = host[0], host[1]
    lam = np.where(n_h > 0, rq_h / np.where(n_h > 0, n_h, 1.0), 0.0)
    return V, np.maximum(lam, 0.0), n_h


def _merge_coincident(C_h: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the centers to keep: of each group closer than ``sqrt(threshold)``, the
    first (single linkage, on host, k x k)."""
    m = C_h.shape[0]
    if m < 2:
        return np.arange(m)
    sq = (C_h * C_h).sum(1)
    D = sq[:, None] + sq[None, :] - 2.0 * (C_h @ C_h.T)
    close = D <= threshold
    parent = np.arange(m)
    for i, j in zip(*np.nonzero(np.triu(close, 1)), strict=True):
        ri, rj = i, j
        while parent[ri] != ri:
            ri = parent[ri]
        while parent[rj] != rj:
            rj = parent[rj]
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([_root(parent, i) for i in range(m)])
    return np.flatnonzero(roots == np.arange(m))


def _root(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        i = int(parent[i])
    return int(i)


#: Largest number of temperature levels of one annealing run: with ``cooling <= 0.99``
#: the cooling phase needs :math:`\\log(\\sigma_c/\\sigma_{hard}) / 0.01` levels, a few
#: hundred for twelve decades; past the cap Lloyd's iterations take over (with a
#: :class:`arbf.ConvergenceWarning`).
MAX_LEVELS = 1000


def _pad_centers(C: Array, k: int, *, xp: ModuleType) -> Array:
    """``C`` with copies of its first row appended up to ``k`` rows (fewer distinct
    points than clusters: Lloyd's relocation then places the copies, as in
    :func:`arbf.kmeans`)."""
    m = C.shape[0]
    if m >= k:
        return C
    return xp.concat([C, *([C[:1, ...]] * (k - m))], axis=0)


def _anneal_impl(
    X: Array,
    k: int,
    w: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
    opts: AnnealOptions,
    working_memory: Any,
    scale: float = 1.0,
) -> tuple[Array, dict[str, Any]]:
    """The annealing loop on prepared ``X`` (centred, divided by ``scale``: σ and the
    record are in those units, the ``verbose`` lines in the data's); returns exactly
    ``k`` centers (:func:`_pad_centers` when fewer distinct points exist) and the
    record."""
    kind, cooling, tol, verbose = opts.kind, opts.cooling, opts.tol, opts.verbose
    d = X.shape[1]
    dev, dtype = device_of(X), X.dtype
    c = critical_factor(kind)
    C = xp.zeros((1, d), dtype=dtype, device=dev)
    v0 = rng.standard_normal(d)  # the start of the power iteration when d is large
    rec: dict[str, Any] = {
        "sigmas": [],
        "n_centers": [],
        "n_iter": [],
        "free_energy": [],
        "soft_distortion": [],
        "inertia": [],
        "splits": [],
        "merges": [],
        "sigma_critical": float("nan"),
        "n_passes": 0,
    }

    def converge(C: Array, s: float) -> tuple[Array, int, np.ndarray]:
        fp = fixed_point(
            X, C, w, xp=xp, sigma=s, kind=kind, max_iter=opts.max_iter, tol=tol * s * C.shape[0],
            lr="lloyd", working_memory=working_memory,
        )  # fmt: skip
        rec["n_passes"] += fp.n_iter
        return fp.centers, fp.n_iter, fp.last

    # one center: the weighted mean, whatever the temperature; its critical temperature
    # from the principal axis of the weighted covariance (the one lambda_max)
    C, _, host = converge(C, 1.0)
    lam0, axis0 = seam.principal_axis(X, w, xp=xp, v0=v0)
    V = from_host(axis0[None, :], xp=xp, device=dev, dtype=dtype)
    lam = np.asarray([lam0])
    rec["n_passes"] += 1
    rec["sigma_critical"] = float(c * lam0)
    sigma = cooling * rec["sigma_critical"]
    level = 0
    while k > 1 and sigma > 0:
        if level >= MAX_LEVELS:
            warnings.warn(
                f"deterministic annealing stopped after {MAX_LEVELS} temperature levels "
                f"(cooling={cooling}) before the soft and hard distortions agreed; Lloyd's "
                "iterations finish",
                convergence_warning(),
                stacklevel=4,
            )
            break
        level += 1
        iters = 0
        for _round in range(opts.max_rounds):
            C, it, host = converge(C, sigma)
            iters += it
            m = C.shape[0]
            if m > 1:
                keep = _merge_coincident(to_host(C).astype(np.float64), opts.merge_tol * sigma)
                if keep.size < m:
                    rec["merges"].append((float(sigma), m - int(keep.size)))
                    idx = from_host(keep, xp=xp, device=dev)
                    C, V = xp.take(C, idx, axis=0), xp.take(V, idx, axis=0)
                    m = C.shape[0]
            if m >= k:
                lam = np.zeros(m)
                break
            V, lam, mass = _top_eigen(
                X,
                C,
                V,
                w,
                sigma=sigma,
                kind=kind,
                n_power=opts.n_power,
                xp=xp,
                working_memory=working_memory,
            )
            rec["n_passes"] += opts.n_power
            crit = c * lam
            cand = np.flatnonzero(crit > sigma)
            if cand.size == 0:
                break
            # the most distortion-reducing splits first when slots are short
            cand = cand[np.argsort(-(mass[cand] * lam[cand]), kind="stable")][: k - m]
            C_h = to_host(C).astype(np.float64)
            V_h = to_host(V).astype(np.float64)
            new_c, new_v = [], []
            for j in cand:
                step = opts.split_distance * math.sqrt(lam[j]) * V_h[j]
                new_c.append(C_h[j] - step)
                C_h[j] = C_h[j] + step
                r = rng.standard_normal(d)
                r -= (r @ V_h[j]) * V_h[j]  # the children's next axis: across the split
                nr = np.linalg.norm(r)
                r = r / nr if nr > 0 else V_h[j]
                new_v.append(r)
                V_h[j] = r
                rec["splits"].append((float(sigma), int(j), float(crit[j])))
            C = from_host(np.vstack([C_h, *new_c]), xp=xp, device=dev, dtype=dtype)
            V = from_host(np.vstack([V_h, *new_v]), xp=xp, device=dev, dtype=dtype)
            emit(
                verbose, "sigma %.4g: split %d center(s), now %d", units(sigma, scale), cand.size,
                C.shape[0],
            )  # fmt: skip
        m = C.shape[0]
        rec["sigmas"].append(sigma)
        rec["n_centers"].append(m)
        rec["n_iter"].append(iters)
        rec["free_energy"].append(host[1])
        rec["soft_distortion"].append(host[2])
        rec["inertia"].append(host[3])
        emit(
            verbose,
            "level %d: sigma %.4g, %d centers, %d iteration(s), F %.6g, L %.6g, J %.6g",
            level,
            units(sigma, scale),
            m,
            iters,
            units(host[1], scale),
            units(host[2], scale),
            units(host[3], scale),
        )
        # ---- the next temperature ------------------------------------------------
        if m >= k:
            L, J = host[2], host[3]
            if L - J <= opts.hard_tol * J or J <= 0:
                break
            sigma *= cooling
            continue
        top = float(c * np.max(lam))
        if not top > 0:
            # no cluster has any spread left (fewer distinct points than clusters)
            break
        # skip the levels where nothing splits: jump just below the next critical σ
        sigma = cooling * min(sigma, top)
    # fewer centers than clusters (no spread left, constant data, one positive weight):
    # copies of the first, placed by Lloyd's relocation
    return _pad_centers(C, k, xp=xp), rec


def _swap_refine(
    X: Array,
    C: Array,
    w: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
    max_fail: int,
    working_memory: Any,
) -> tuple[Array, int, int]:
    """Utility-based center swaps between Lloyd runs (after Fritzke's k-means-u*).

    From a K-Means fixed point: move the center of least utility (removing it costs
    least inertia) next to the center of largest error, split that cluster in two along
    a random direction at its RMS radius, run Lloyd; keep the result if the inertia fell,
    else try the next-least useful center.  Stops after ``max_fail`` failures in a row.
    Returns ``(C, n_tried, n_accepted)``.
    """
    k, d = C.shape
    if k < 2:
        return C, 0, 0
    dev, dtype = device_of(X), X.dtype
    tol = tolerance(X, 1e-4, xp=xp)  # Lloyd as arbf.kmeans runs it by default

    def run_lloyd(C0: Array) -> KMeansResult:
        return lloyd(
            X, w, C0, xp=xp, max_iter=300, tol=tol, working_memory=working_memory, warm=True
        )

    def utility_pass(C: Array) -> tuple[np.ndarray, np.ndarray]:
        ue = to_host(seam.utilities(X, C, w, xp=xp, working_memory=working_memory))
        return ue[:, 0].astype(np.float64), ue[:, 1].astype(np.float64)

    res = run_lloyd(C)
    C, best = res.centers, res.inertia
    util, err = utility_pass(C)
    mass: np.ndarray | None = None
    tried = accepted = fails = 0
    order = list(np.argsort(util, kind="stable"))
    while fails < max_fail and order:
        j_min = int(order.pop(0))
        e = err.copy()
        e[j_min] = -np.inf
        j_max = int(np.argmax(e))
        if mass is None:
            st = seam.soft_stats(
                X, C, w, sigma=0.0, kind="hard", xp=xp, working_memory=working_memory
            )
            mass = to_host(st.mass).astype(np.float64)
        radius = math.sqrt(err[j_max] / mass[j_max]) if mass[j_max] > 0 else 0.0
        u = rng.standard_normal(d)
        u *= 0.5 * radius / max(float(np.linalg.norm(u)), 1e-300)
        C_h = to_host(C).astype(np.float64)
        C_h[j_min] = C_h[j_max] - u
        C_h[j_max] = C_h[j_max] + u
        trial = run_lloyd(from_host(C_h, xp=xp, device=dev, dtype=dtype))
        tried += 1
        if trial.inertia < best * (1 - 1e-12):
            C, best = trial.centers, trial.inertia
            accepted += 1
            fails = 0
            util, err = utility_pass(C)
            mass = None
            order = list(np.argsort(util, kind="stable"))
        else:
            fails += 1
    return C, tried, accepted


@dataclass(frozen=True)
class AnnealOptions:
    """The options of :func:`deterministic_annealing` (validated by :meth:`check`)."""

    kind: str = "softmax"
    cooling: float = 0.8
    max_iter: int = 20
    tol: float = 1e-3
    hard_tol: float = 1e-2
    n_power: int = 1
    split_distance: float = 0.5
    merge_tol: float = 0.01
    max_rounds: int = 4
    refine: int = 3
    max_samples: int | str | None = "auto"
    verbose: bool = False

    @classmethod
    def check(cls, **options: Any) -> AnnealOptions:
        """Validated options (unknown names are a :class:`TypeError`)."""
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
        o = replace(cls(), **options)
        positive = Interval(numbers.Real, 0, None, "neither")
        count = Interval(numbers.Integral, 1)
        verbose = check_param("verbose", o.verbose, BOOLEAN, Interval(numbers.Integral, 0))
        return cls(
            kind=check_kind(o.kind, ("softmax", "entmax15")),
            cooling=check_param("cooling", o.cooling, Interval(numbers.Real, 0, 0.99, "right")),
            max_iter=check_param("max_iter", o.max_iter, count),
            tol=check_param("tol", o.tol, positive),
            hard_tol=check_param("hard_tol", o.hard_tol, positive),
            n_power=check_param("n_power", o.n_power, count),
            split_distance=check_param("split_distance", o.split_distance, positive),
            merge_tol=check_param("merge_tol", o.merge_tol, positive),
            max_rounds=check_param("max_rounds", o.max_rounds, count),
            refine=check_param("refine", o.refine, Interval(numbers.Integral, 0)),
            max_samples=check_param("max_samples", o.max_samples, Options("auto"), NONE, count),
            verbose=bool(verbose),
        )


def _anneal_prepared(
    Xc: Array,
    k: int,
    w: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
    opts: AnnealOptions,
    working_memory: Any,
    scale: float = 1.0,
) -> tuple[Array, dict[str, Any]]:
    """Annealing (on a subsample when ``max_samples`` says so) then the center swaps, on
    validated, prepared ``Xc`` (centred, divided by ``scale``); returns exactly ``k``
    centers (``Xc``'s coordinates) and the record (in those units)."""
    if is_sparse(Xc):
        raise TypeError(
            "deterministic annealing does not support scipy.sparse input (its splits need "
            "per-cluster covariances of centred data); pass a dense array or use "
            "init='k-means++'"
        )
    n, d = Xc.shape
    m: int | None = None
    if opts.max_samples == "auto":
        m = max(2000, 20 * k, 125 * d)
    elif opts.max_samples is not None:
        m = max(int(opts.max_samples), k)
    Xa, wa = Xc, w
    # zero-weight samples never move a center: the annealing sees the others only
    pos = None if w is None else np.flatnonzero(to_host(w) > 0)
    if pos is not None and pos.size == n:
        pos = None
    pool = n if pos is None else int(pos.size)
    if (m is not None and pool > m) or pos is not None:
        # a uniform subsample of them (weights kept); swaps and Lloyd see all the data
        pick = np.arange(pool) if m is None or pool <= m else rng.choice(pool, m, replace=False)
        pick = np.sort(pick if pos is None else pos[pick])
        idx = from_host(pick.astype(np.int64), xp=xp, device=device_of(Xc))
        Xa = xp.take(Xc, idx, axis=0)
        wa = None if w is None else xp.take(w, idx, axis=0)
    C, rec = _anneal_impl(
        Xa, k, wa, rng, xp=xp, opts=opts, working_memory=working_memory, scale=scale
    )
    if opts.refine:
        C, n_tried, n_acc = _swap_refine(
            Xc, C, w, rng, xp=xp, max_fail=opts.refine, working_memory=working_memory
        )
        rec["swaps"] = (n_tried, n_acc)
    return C, rec


def anneal_centers(
    Xc: Array,
    k: int,
    w: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    **options: Any,
) -> Array:
    """Initial centers for K-Means by deterministic annealing and swaps (no final Lloyd)
    on validated, prepared data: ``init="anneal"`` of every driver and estimator."""
    opts = AnnealOptions.check(**options)
    return _anneal_prepared(Xc, k, w, rng, xp=xp, opts=opts, working_memory=working_memory)[0]


def deterministic_annealing(
    X: Any,
    n_clusters: int,
    /,
    *,
    kind: str = "softmax",
    sample_weight: Any = None,
    random_state: Any = None,
    cooling: float = 0.8,
    max_iter: int = 20,
    tol: float = 1e-3,
    hard_tol: float = 1e-2,
    n_power: int = 1,
    split_distance: float = 0.5,
    merge_tol: float = 0.01,
    max_rounds: int = 4,
    refine: int = 3,
    max_samples: int | str | None = "auto",
    finish: bool = True,
    working_memory: Any = None,
    verbose: bool = False,
    algorithm: str = "auto",
) -> DeterministicAnnealingResult:
    r"""K-Means by deterministic annealing, splitting centers at critical temperatures.

    Deterministic annealing (Rose, Gurewitz & Fox 1990; Rose 1998) minimises the free
    energy of the normalised RBF network,
    :math:`F_\sigma(\mu) = \sum_i w_i \big(\sum_j r_{ij} D_{ij} - \sigma H(r_i)\big)`,
    :math:`D_{ij} = \lVert x_i - \mu_j\rVert^2`, while the temperature σ falls, so that
    the centers follow the minimum from the convex high-temperature regime (one center
    at the mean) down to K-Means (σ → 0), instead of starting in the basin of whatever
    local minimum a random seeding lands in.

    *Fixed points.*  At each σ, soft Lloyd iterations
    :math:`\mu_j \leftarrow \sum_i w_i r_{ij} x_i / N_j` (Lemma 1) run, warm started,
    until :math:`\sum_j \lVert\Delta\mu_j\rVert^2 \le` ``tol`` :math:`\cdot\,\sigma\,m`
    (``m`` centers; σ is the squared length scale) or ``max_iter`` iterations.

    *Splitting at critical temperatures.*  A center whose responsibility-weighted
    covariance :math:`\Sigma_j = \sum_i w_i r_{ij}(x_i - \mu_j)(x_i - \mu_j)^\top / N_j`
    has largest eigenvalue :math:`\lambda_j` would split, if it had a coincident twin,
    once :math:`\sigma < \sigma_{c,j} = c\,\lambda_j`, with :math:`c = 2` for softmax and
    :math:`c = 2\sqrt 2` for entmax-1.5 (:func:`critical_factor` derives both).  So the
    algorithm keeps one center per effective cluster, estimates :math:`\lambda_j` and its
    eigenvector :math:`v_j` by warm-started power iteration (``n_power`` chunked passes
    per level), and replaces every center with :math:`\sigma_{c,j} > \sigma` by the pair
    :math:`\mu_j \pm \delta\sqrt{\lambda_j}\,v_j` (``split_distance`` δ), the largest
    :math:`N_j\lambda_j` (most distortion-reducing) first when fewer than ``n_clusters``
    slots remain; then it converges again at the same σ and repeats (at most
    ``max_rounds`` times).  Centers that have run together (squared distance below
    ``merge_tol`` :math:`\cdot\,\sigma`: one effective cluster above its critical
    temperature) are merged, which frees their slot for a later split.  The first split
    is at :math:`\sigma_c = c\,\lambda_{\max}(\mathrm{Cov}_w X)`.

    *Schedule from the data.*  The next temperature is
    :math:`\sigma \leftarrow \gamma \min(\sigma, \max_j \sigma_{c,j})` (``cooling``
    γ): the start and every step come from the predicted critical temperatures, and the
    levels at which no center would split are skipped.  Once all ``n_clusters`` centers
    exist it cools by γ per level until the soft and hard distortions agree,
    :math:`L_\sigma - J \le` ``hard_tol`` :math:`\cdot J`, and hands over to Lloyd.
    With entmax-1.5 this hand-over is exact: a sample whose two nearest centers differ
    by :math:`\Delta_i \ge 2\sigma` has a one-hot row, and once
    :math:`\sigma \le \min_i\Delta_i/2` the annealing step *is* Lloyd's step
    (Theorem 4), so the low-temperature levels are left to the (cheaper) hard iterations.

    *After the annealing* (``refine``): utility-based center swaps between Lloyd runs
    (after Fritzke's k-means-u*): the center whose removal costs least inertia is moved
    into the cluster of largest error, which is split along a random direction; the
    Lloyd result is kept if its inertia is lower.  It stops after ``refine`` failed swaps
    in a row (0: no swaps).  ``finish=True`` then runs hard Lloyd (``tol=0``) to an exact
    K-Means fixed point.

    The annealing runs on a uniform subsample of ``max_samples`` rows when ``X`` has
    more ("auto": :math:`\max(2000, 20k, 125d)` rows, enough per cluster and per feature);
    the swaps and Lloyd use all the data.

    The loop synchronises with the host once per fixed-point iteration (shift and
    objectives) and once per level (the principal axes, and the k×d centers when they
    split or merge).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Any Array API array.

        **Batched**: an array of shape ``(B, n_samples, n_features)`` holds B
        independent problems, annealed together: each problem keeps its own state (its
        centers, temperature, splits, merges, swaps and records), and every pass over
        the data -- the fixed-point iterations of a round, the power-iteration products,
        the swaps' Lloyd runs and utilities, the finish -- is one batched pass over the
        problems still at it (problem ``b`` over its first :math:`m_b` centers at its
        own σ).  ``sample_weight`` is then ``(B, n_samples)`` or ``(n_samples,)``;
        problem ``b`` draws from ``np.random.default_rng(random_state).spawn(B)[b]`` (or
        the b-th of a sequence of B seeds), so ``result[b]`` of the
        :class:`BatchedDeterministicAnnealingResult` equals the call on ``X[b]`` with
        that generator, to rounding.  :func:`anneal_init` takes it too (centers
        ``(B, n_clusters, n_features)``).  Dask arrays are refused (``TypeError``).
    n_clusters : int
    kind : {"softmax", "entmax15"}, default "softmax"
        The responsibilities.
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights (annealing, swaps and Lloyd).
    random_state : int, numpy Generator or None
        Seeds the power-iteration starts, the subsample and the swap directions.
    cooling : float in (0, 0.99], default 0.8
        γ, the factor between levels and below each critical temperature.  At most
        :data:`MAX_LEVELS` (1000) levels run; past them Lloyd's iterations finish (with
        a :class:`arbf.ConvergenceWarning`).
    max_iter : int, default 20
        Fixed-point iterations per round at one temperature.
    tol : float, default 1e-3
        Per-level stopping tolerance, relative to σ.
    hard_tol : float, default 1e-2
        Hand over to Lloyd when :math:`L_\sigma - J \le` ``hard_tol`` :math:`\cdot J`.
    n_power : int, default 1
        Warm-started power iterations per level for the principal axes.
    split_distance : float, default 0.5
        δ: the two children start at :math:`\mu_j \pm \delta\sqrt{\lambda_j}\,v_j`.
    merge_tol : float, default 0.01
        Centers closer than :math:`\sqrt{\text{merge\_tol}\cdot\sigma}` are merged.
    max_rounds : int, default 4
        Split-and-converge rounds at one temperature.
    refine : int, default 3
        Failed center swaps in a row before stopping; 0 turns the swaps off.
    max_samples : int, "auto" or None, default "auto"
        Anneal on a uniform subsample of this many rows (None: all rows).
    finish : bool, default True
        Run hard Lloyd to convergence at the end.
    working_memory : float, optional
        Memory budget in MiB for one chunk.
    verbose : bool
        Print every level and split.
    algorithm : {"auto", "lloyd", "elkan", "hamerly", "yinyang"}, default "auto"
        How the final hard Lloyd run computes its assignments (as :func:`arbf.kmeans`;
        every value gives the same result).

    Returns
    -------
    DeterministicAnnealingResult or BatchedDeterministicAnnealingResult

    See Also
    --------
    anneal_init : the same, returning the centers for :func:`arbf.kmeans`
        (``init="anneal"``).
    arbf.anneal : annealing given centers along a fixed schedule.

    References
    ----------
    K. Rose, E. Gurewitz, G. Fox, "Statistical mechanics and phase transitions in
    clustering", Phys. Rev. Lett. 65 (1990).  K. Rose, "Deterministic annealing for
    clustering, compression, classification, regression, and related optimization
    problems", Proc. IEEE 86 (1998).  B. Fritzke, "The k-means-u* algorithm: non-local
    jumps and greedy retries improve k-means++ clustering", arXiv:1706.09059 (2017).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [10.0], [11.0], [20.0], [21.0]])
    >>> res = arbf.deterministic_annealing(X, 3, random_state=0)
    >>> xp.sort(res.centers, axis=0)
    Array([[ 0.5],
           [10.5],
           [20.5]], dtype=array_api_strict.float64)
    >>> res.kmeans.inertia
    1.5
    """
    # the extent pass of `prepare` proves X finite (one pass over X saved)
    X, xp, k, w, rng = check_fit_inputs(X, n_clusters, sample_weight, random_state, finite=False)
    opts = AnnealOptions.check(
        kind=kind, cooling=cooling, max_iter=max_iter, tol=tol, hard_tol=hard_tol,
        n_power=n_power, split_distance=split_distance, merge_tol=merge_tol,
        max_rounds=max_rounds, refine=refine, max_samples=max_samples, verbose=verbose,
    )  # fmt: skip
    finish = check_param("finish", finish, BOOLEAN)
    algorithm = check_param("algorithm", algorithm, Options(*seam.ALGORITHMS))
    prep = prepare(X, xp=xp, finite_check="X")
    sc = prep.scale
    C, rec = _anneal_prepared(
        prep.X, k, w, rng, xp=xp, opts=opts, working_memory=working_memory, scale=sc
    )
    km: KMeansResult | None = None
    if finish:
        C, km = engine_finish(
            prep, C, w, xp=xp, working_memory=working_memory, algorithm=algorithm
        )
    else:
        warn_fewer_distinct(C, k)
    n_iter = np.asarray(rec["n_iter"], dtype=np.int64)
    return DeterministicAnnealingResult(
        centers=prep.to_data(C),
        sigmas=units(np.asarray(rec["sigmas"], dtype=np.float64), sc),
        n_centers=np.asarray(rec["n_centers"], dtype=np.int64),
        n_iter=int(n_iter.sum()),
        n_iter_per_level=n_iter,
        objectives={
            name: units(np.asarray(rec[name], dtype=np.float64), sc)
            for name in ("free_energy", "soft_distortion", "inertia")
        },
        splits=[(prep.sigma_out(a), j, prep.sigma_out(c)) for a, j, c in rec["splits"]],
        sigma_critical=prep.sigma_out(rec["sigma_critical"]),
        n_passes=int(rec["n_passes"]),
        kmeans=km,
    )


def anneal_init(
    X: Any,
    n_clusters: int,
    /,
    *,
    kind: str = "softmax",
    sample_weight: Any = None,
    random_state: Any = None,
    **options: Any,
) -> Array:
    """Initial centers for K-Means by deterministic annealing (``init="anneal"``).

    :func:`deterministic_annealing` with ``finish=False``: the centers at the end of the
    annealing (and of the center swaps, unless ``refine=0``), for Lloyd's algorithm to
    finish.  ``options`` are passed on (``cooling``, ``max_iter``, ``tol``,
    ``hard_tol``, ``n_power``, ``split_distance``, ``merge_tol``, ``max_rounds``,
    ``refine``, ``max_samples``, ``working_memory``, ``verbose``).

    Returns
    -------
    centers : array of shape (n_clusters, n_features)
        In the namespace, device and dtype of ``X`` (``(B, n_clusters, n_features)`` for
        batched ``X`` of shape ``(B, n_samples, n_features)``, as
        :func:`deterministic_annealing`).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [10.0], [11.0]])
    >>> C = arbf.anneal_init(X, 2)
    >>> arbf.kmeans(X, 2, init=C).inertia
    1.0
    """
    working_memory = options.pop("working_memory", None)
    opts = AnnealOptions.check(kind=kind, **options)  # no "finish": a TypeError
    X, xp, k, w, rng = check_fit_inputs(X, n_clusters, sample_weight, random_state, finite=False)
    prep = prepare(X, xp=xp, finite_check="X")  # the extent proves X finite
    C, _ = _anneal_prepared(
        prep.X, k, w, rng, xp=xp, opts=opts, working_memory=working_memory, scale=prep.scale
    )
    warn_fewer_distinct(C, k)
    return prep.to_data(C)
