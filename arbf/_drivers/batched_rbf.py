r"""B independent RBF problems in one call: batched :func:`arbf.rbf_kmeans` and
:func:`arbf.anneal`.

:func:`arbf.rbf_kmeans` and :func:`arbf.anneal` hand data of shape ``(B, n, d)`` (and
centers ``(B, k, d)``, weights ``(B, n)`` or ``(n,)``) here.  Each problem keeps the
one-problem semantics -- its own exact power-of-two rescaling and centring
(:func:`arbf._drivers.engine.prepare`), its tolerance relative to its own mean feature
variance, its own default σ schedule, its own random stream -- and the arithmetic of
every fixed-point iteration is one batched pass over all B problems
(:func:`arbf._math.seam.batched_soft_stats` with a per-problem temperature
:math:`\sigma_b`: batched matrix products, no Python loop over B) and one host sync.

Per-problem convergence: a problem whose squared center shift has fallen to its
tolerance is frozen (its centers, iteration count and history stop changing) while the
others go on, so problem ``b``'s result equals the one-problem call on ``X[b]`` (to
rounding: batched products instead of the compiled kernels).  The σ levels of
:func:`arbf.anneal` are a ``(B,)`` vector per level (the default schedule depends on each
problem's data); its hard finish is the batched Lloyd run
(:func:`arbf._drivers.batched._lloyd_batched`).

Random numbers (the symmetry-breaking perturbations of :func:`arbf.anneal`): problem
``b`` draws from its own Generator, as :func:`arbf._drivers.batched.problem_generators`
(an int, a Generator or ``None`` seeds a parent whose ``spawn(B)`` children are the
problems'; a sequence of B seeds gives them directly).

Host work per iteration is O(B) bookkeeping of host floats (histories, the free energy
assembled in float64); per level, the perturbation draws of the problems that need one.
Dask arrays are refused (:func:`arbf._math.batched.check_batched_data`).

``metric="cosine"`` enters in one place, :func:`.batched_fixed_point.prepare_batched`:
the rows on the unit sphere (not rescaled, not centred), the ``project`` hook that the
loops apply after every update, and ``prep.half = 0.5``: the cosine problem at σ is run
as the Euclidean one of the unit rows at ``2σ`` (a numeric ``lr`` halved) with every
objective halved, as the one-problem path (:func:`arbf._drivers.rbf.fit_fixed_sigma`,
:func:`arbf._drivers.rbf.anneal_prepared`); the hard finish is the batched spherical
Lloyd run and the default schedule each problem's cosine one.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, to_host
from .._math import seam
from .._math.batched import check_batched_centers, check_batched_data, check_batched_weights
from .._messages import emit
from .._validation import (
    BOOLEAN,
    Interval,
    Options,
    check_kind,
    check_param,
    check_sigma,
)
from .batched_engine import lloyd_batched as _lloyd_batched
from .batched_engine import problem_generators
from .batched_fixed_point import (
    NAMES,
    BatchedFixedPoint,
    BatchedPrepared,
    fixed_point_batched,
    prepare_batched,
    units,
)
from .deterministic_annealing import critical_factor
from .engine import warn_fewer_clusters
from .rbf_options import check_schedule, check_schedule_bounds, check_update, schedule_from
from .results import BatchedAnnealResult, BatchedKMeansResult, BatchedRBFResult

__all__ = ["anneal_batched", "default_schedules", "rbf_kmeans_batched"]


def _history(fp: BatchedFixedPoint) -> dict[str, list[np.ndarray]]:
    return {name: [np.asarray(h[name]) for h in fp.history] for name in NAMES}


def _fixed_point(
    prep: BatchedPrepared,
    Cc: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    sigma: np.ndarray,
    kind: str,
    max_iter: int,
    lr: float | str,
    working_memory: Any,
) -> BatchedFixedPoint:
    """:func:`.batched_fixed_point.fixed_point_batched` on ``prep`` at the per-problem
    temperatures ``sigma`` (prepared units of the metric).  Cosine (``prep.half`` 0.5):
    the Euclidean loop on the unit rows at ``σ / half`` with step ``lr * half`` and the
    centers projected after each update; its objectives times ``half`` (the center
    shift unchanged), as :func:`arbf._drivers.rbf.fit_fixed_sigma`."""
    half = prep.half
    fp = fixed_point_batched(
        prep.X, Cc, w, xp=xp, sigma=sigma / half, kind=kind, max_iter=max_iter, tol=prep.tol,
        lr=lr if isinstance(lr, str) else lr * half, scale=prep.scale,
        working_memory=working_memory, project=prep.project,
    )  # fmt: skip
    if half == 1.0:
        return fp
    hist = [
        {name: v if name == "center_shift" else [x * half for x in v] for name, v in h.items()}
        for h in fp.history
    ]
    return dataclasses.replace(fp, history=hist)


def _check_batch(
    X: Any, init: Any, sample_weight: Any
) -> tuple[Array, Array, Array | None, ModuleType]:
    X, xp = check_batched_data(X)
    C = check_batched_centers(init, None, X, xp=xp, name="init")
    return X, C, check_batched_weights(sample_weight, X, xp=xp), xp


def rbf_kmeans_batched(
    X: Any,
    init: Any,
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
) -> BatchedRBFResult:
    """:func:`arbf.rbf_kmeans` of ``B`` problems: ``X`` ``(B, n, d)``, ``init``
    ``(B, k, d)`` (see the module docstring)."""
    X, C, w, xp = _check_batch(X, init, sample_weight)
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    lr = check_update(update, lr)
    max_iter = check_param("max_iter", max_iter, Interval(numbers.Integral, 1))
    tol = check_param("tol", tol, Interval(numbers.Real, 0))
    verbose = check_param("verbose", verbose, BOOLEAN, Interval(numbers.Integral, 0))
    prep = prepare_batched(X, C, xp=xp, tol=tol, metric=metric)
    B = X.shape[0]
    fp = _fixed_point(
        prep, prep.from_data(C, xp=xp), w, xp=xp,
        sigma=prep.sigma_in(np.full(B, float(sigma))), kind=kind, max_iter=max_iter, lr=lr,
        working_memory=working_memory,
    )  # fmt: skip
    emit(
        bool(verbose), "sigma %.4g: %s iteration(s), F %s", sigma, fp.n_iter,
        [h["free_energy"][-1] for h in fp.history],
    )  # fmt: skip
    return BatchedRBFResult(
        centers=prep.to_data(fp.centers, xp=xp),
        n_iter=fp.n_iter,
        converged=fp.converged,
        history=_history(fp),
    )


def default_schedules(
    prep: BatchedPrepared,
    Cc: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    kind: str,
    sigma_max: Any,
    sigma_min: Any,
    n_levels: Any,
    working_memory: Any = None,
) -> np.ndarray:
    """Each problem's :func:`arbf._drivers.rbf.default_schedule` (data units), ``(B, L)``:
    the critical temperatures from one batched covariance, the margins at ``Cc`` from one
    batched pass.  Problems whose schedules differ in length (only constant data, whose
    default schedule is ``[0]``) raise a ``ValueError``: pass ``schedule``.

    Cosine (``prep.half`` 0.5): :func:`arbf._drivers.rbf._cosine_schedule` per problem,
    the Euclidean schedule of the unit rows (the given bounds doubled) halved."""
    half = prep.half
    if half != 1.0:
        sigma_max, sigma_min = (
            None if v is None else float(check_sigma(v, allow_zero=False, name=name)) / half
            for name, v in (("sigma_max", sigma_max), ("sigma_min", sigma_min))
        )
    bounds = check_schedule_bounds(sigma_max, sigma_min, n_levels)
    lam = seam.batched_principal_value(prep.X, w, xp=xp)
    s_c = units(2.0 * lam * critical_factor(kind) / 2.0, prep.scale)
    margin = seam.batched_min_margin(prep.X, Cc, xp=xp, working_memory=working_memory)
    m = units(to_host(margin), prep.scale)
    scheds = [schedule_from(float(s_c[b]), float(m[b]), *bounds) for b in range(s_c.shape[0])]
    sizes = {s.size for s in scheds}
    if len(sizes) > 1:
        flat = [b for b, s in enumerate(scheds) if s.size == 1 and s[0] == 0]
        raise ValueError(
            f"the default schedules of the problems differ in length (problem(s) {flat} "
            "have constant data, whose schedule is [0]): pass schedule= (shared by all "
            "problems), or anneal those problems separately"
        )
    return np.stack(scheds) * half


def _split_coincident(
    C: Array, radius: np.ndarray, rngs: list[np.random.Generator], *, xp: ModuleType
) -> Array:
    """:func:`arbf._drivers.rbf._split_coincident` of every problem (radius ``radius[b]``,
    directions from ``rngs[b]``, drawn only by problems with a center to move).  One host
    sync; ``C`` itself when no center moves."""
    Ch = to_host(C).astype(np.float64)
    _, k, d = Ch.shape
    d2 = np.sum((Ch[:, :, None, :] - Ch[:, None, :, :]) ** 2, axis=-1)
    low = np.tril(np.ones((k, k), dtype=bool), k=-1)
    close = (low & (d2 < (radius * radius)[:, None, None])).any(axis=2)
    moving = np.flatnonzero(close.any(axis=1))
    if moving.size == 0:
        return C
    for b in moving:
        step = rngs[b].normal(size=(k, d))
        step /= np.maximum(np.linalg.norm(step, axis=1, keepdims=True), 1e-300)
        Ch[b] = Ch[b] + np.where(close[b][:, None], radius[b] * step, 0.0)
    return from_host(Ch, xp=xp, device=device_of(C), dtype=C.dtype)


def _finish(
    prep: BatchedPrepared, Cc: Array, w: Array | None, *, xp: ModuleType, working_memory: Any
) -> tuple[Array, BatchedKMeansResult]:
    """Hard Lloyd of every problem to an exact K-Means fixed point (``tol=0``, at most
    300 iterations: :func:`arbf._drivers.engine.finish`); the final centers in the
    prepared coordinates and the result in the data's.  Cosine: spherical Lloyd (the
    updates projected) with the inertia halved (:func:`arbf._drivers.engine.
    halve_inertia`)."""
    B, k, _ = Cc.shape
    half = prep.half
    km = _lloyd_batched(
        prep.X, w, Cc, xp=xp, max_iter=300, tol=np.zeros(B), verbose=False,
        working_memory=working_memory, project=prep.project,
    )  # fmt: skip
    for b in range(B):
        warn_fewer_clusters(km.labels[b, ...], k, stacklevel=5)
    inertia = units(km.inertia, prep.scale) * half
    history = {
        name: [units(v[b], prep.scale[b]) * (half if name == "inertia" else 1.0) for b in range(B)]
        for name, v in km.history.items()
    }
    out = dataclasses.replace(
        km,
        centers=prep.to_data(km.centers, xp=xp),
        inertia=inertia,
        history=history,
        n_init_inertia=inertia[:, None],
    )
    return km.centers, out


def anneal_batched(
    X: Any,
    init: Any,
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
) -> BatchedAnnealResult:
    """:func:`arbf.anneal` of ``B`` problems: ``X`` ``(B, n, d)``, ``init`` ``(B, k, d)``
    (see the module docstring).  ``schedule``, when given, is shared by every problem;
    the default is each problem's own (:func:`default_schedules`)."""
    X, C, w, xp = _check_batch(X, init, sample_weight)
    kind = check_kind(kind, ("softmax", "entmax15"))
    lr = check_update(update, lr)
    max_iter = check_param("max_iter", max_iter, Interval(numbers.Integral, 1))
    tol = check_param("tol", tol, Interval(numbers.Real, 0))
    finish = check_param("finish", finish, BOOLEAN)
    verbose = check_param("verbose", verbose, BOOLEAN, Interval(numbers.Integral, 0))
    perturbation = check_param("perturbation", perturbation, Interval(numbers.Real, 0))
    check_param("algorithm", algorithm, Options(*seam.ALGORITHMS))
    prep = prepare_batched(X, C, xp=xp, tol=tol, metric=metric)
    B, k, d = C.shape
    Cc = prep.from_data(C, xp=xp)
    if schedule is None:
        sigmas = default_schedules(
            prep, Cc, w, xp=xp, kind=kind, sigma_max=sigma_max, sigma_min=sigma_min,
            n_levels=n_levels, working_memory=working_memory,
        )  # fmt: skip
    else:
        shared = check_schedule(schedule)
        sigmas = np.broadcast_to(shared, (B, shared.size)).copy()
    rngs = problem_generators(random_state, B)
    L = sigmas.shape[1]
    sc, half = prep.scale, prep.half
    path = np.empty((B, L, k, d))
    obj = {name: np.empty((B, L)) for name in ("free_energy", "soft_distortion", "inertia")}
    iters = np.empty((B, L), dtype=np.int64)
    one_hot = np.empty((B, L), dtype=bool)
    tiny = float(np.finfo(to_host(Cc[:1, :1, :1]).dtype).tiny)
    for li in range(L):
        s = prep.sigma_in(sigmas[:, li])  # σ in each problem's prepared units
        hard = bool(np.all(s == 0))
        level_kind = "hard" if hard else kind
        if perturbation > 0 and not hard:
            Cc = _split_coincident(Cc, perturbation * np.sqrt(s), rngs, xp=xp)
        fp = _fixed_point(
            prep, Cc, w, xp=xp, sigma=s, kind=level_kind, max_iter=max_iter, lr=lr,
            working_memory=working_memory,
        )  # fmt: skip
        Cc = fp.centers
        s_run = from_host(s / half, xp=xp, device=device_of(Cc), dtype=Cc.dtype)
        st = seam.batched_soft_stats(
            prep.X, Cc, w, sigma=0.0 if hard else 1.0, kind=level_kind, xp=xp,
            working_memory=working_memory, sigmas=None if hard else s_run,
        )  # fmt: skip
        parts = (seam.free_energy_base(st, level_kind), st.entropy, st.soft_distortion, st.inertia)
        margin = seam.batched_min_margin(prep.X, Cc, xp=xp, working_memory=working_memory)
        vals = to_host(xp.stack([xp.astype(v, Cc.dtype) for v in (*parts, margin)], axis=1))
        vals = vals.astype(np.float64)
        vals[:, [0, 2, 3, 4]] *= half  # cosine: half the Euclidean objectives of the unit rows
        for b in range(B):
            obj["free_energy"][b, li] = seam.free_energy_at(
                vals[b, 0], vals[b, 1], sigma=float(sigmas[b, li]), scale=float(sc[b])
            )
        obj["soft_distortion"][:, li] = units(vals[:, 2], sc)
        obj["inertia"][:, li] = units(vals[:, 3], sc)
        path[:, li] = to_host(prep.to_data(Cc, xp=xp))
        iters[:, li] = fp.n_iter
        if level_kind == "hard":
            one_hot[:, li] = True
        elif level_kind == "entmax15":
            one_hot[:, li] = vals[:, 4] >= 2 * s
        else:  # softmax: exactly one-hot only if exp underflows for every runner-up
            one_hot[:, li] = vals[:, 4] / s > -np.log(tiny)
        emit(
            bool(verbose), "level %d/%d: %s iteration(s), F %s", li + 1, L, fp.n_iter,
            obj["free_energy"][:, li],
        )  # fmt: skip
    km: BatchedKMeansResult | None = None
    if finish:
        Cc, km = _finish(prep, Cc, w, xp=xp, working_memory=working_memory)
    last = to_host(seam.batched_min_margin(prep.X, Cc, xp=xp, working_memory=working_memory))
    return BatchedAnnealResult(
        centers=prep.to_data(Cc, xp=xp),
        sigmas=sigmas,
        path=path,
        objectives=obj,
        n_iter=iters.sum(axis=1),
        n_iter_per_level=iters,
        one_hot=one_hot,
        sigma_exact=units(half * last.astype(np.float64) / 2, sc),
        kmeans=km,
    )
