r"""B independent deterministic annealings in one call: batched
:func:`arbf.deterministic_annealing` and :func:`arbf.anneal_init`.

The front doors hand data of shape ``(B, n, d)`` here.  Each problem runs the
one-problem algorithm (:mod:`.deterministic_annealing`) with its own state -- its
number of centers :math:`m_b`, its temperature :math:`\sigma_b` and level, its splits,
merges and records, its random stream (:func:`arbf._drivers.batched.problem_generators`)
-- and the passes over the data are batched over the problems that take part in them:

- the fixed-point iterations of a round: one batched pass per iteration over every
  problem's first :math:`m_b` centers at its own :math:`\sigma_b`
  (:func:`arbf._drivers.batched_fixed_point.fixed_point_batched` with ``counts``; a problem that
  has converged, or that sits this round out, is frozen);
- the power-iteration products for the critical temperatures
  (:func:`arbf._math.seam.batched_principal_axes_pass`), the first principal axes (one
  batched covariance), the center utilities of the swaps
  (:func:`arbf._math.seam.batched_utilities`) and the Lloyd runs between swaps and at
  the finish (:func:`arbf._drivers.batched._lloyd_batched`).

The decisions between passes (which centers split, which merge, the next temperature,
whether a swap is kept) are host work on the small ``k x d`` arrays, problem by problem,
as in the one-problem loop; every level, round and swap is one batched pass for all the
problems still at it.  Dask and sparse input are refused.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, to_host
from .._math import seam
from .._math.batched import check_batched_data, check_batched_weights, is_batched
from .._messages import convergence_warning, emit
from .._validation import BOOLEAN, Options, check_n_clusters, check_param
from . import deterministic_annealing as _one
from .batched_engine import lloyd_batched as _lloyd_batched
from .batched_engine import problem_generators
from .batched_fixed_point import BatchedPrepared, fixed_point_batched, prepare_batched
from .deterministic_annealing import (
    MAX_LEVELS,
    AnnealOptions,
    _merge_coincident,
    critical_factor,
    warn_fewer_distinct,
)
from .engine import warn_fewer_clusters
from .results import (
    BatchedDeterministicAnnealingResult,
    BatchedKMeansResult,
    DeterministicAnnealingResult,
)

__all__ = [
    "anneal_centers_batched",
    "anneal_init",
    "anneal_init_batched",
    "deterministic_annealing",
    "deterministic_annealing_batched",
]


def _new_record() -> dict[str, Any]:
    return {
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


class _Annealing:
    """The per-problem state of the batched annealing loop (host) and its centers and
    axes ``(B, k, d)`` (device)."""

    def __init__(
        self,
        X: Array,
        k: int,
        w: Array | None,
        rngs: list[np.random.Generator],
        *,
        xp: ModuleType,
        opts: AnnealOptions,
        working_memory: Any,
    ) -> None:
        self.X, self.k, self.w, self.rngs, self.xp = X, k, w, rngs, xp
        self.opts, self.wm = opts, working_memory
        self.B, _, self.d = X.shape
        self.dev, self.dtype = device_of(X), X.dtype
        self.c = critical_factor(opts.kind)
        self.m = np.ones(self.B, dtype=np.intp)
        self.C = xp.zeros((self.B, k, self.d), dtype=self.dtype, device=self.dev)
        self.V = xp.zeros((self.B, k, self.d), dtype=self.dtype, device=self.dev)
        self.rec = [_new_record() for _ in range(self.B)]
        self.host = np.zeros((self.B, 4))

    def converge(self, sigma: np.ndarray, running: np.ndarray) -> np.ndarray:
        """Fixed-point iterations of the running problems at ``sigma``; their ``[shift, F,
        L, J]`` go to ``self.host``; returns the iterations per problem."""
        s = np.where(running, sigma, 1.0)
        fp = fixed_point_batched(
            self.X, self.C, self.w, xp=self.xp, sigma=s, kind=self.opts.kind,
            max_iter=self.opts.max_iter, tol=self.opts.tol * s * self.m, lr="lloyd",
            scale=np.ones(self.B), working_memory=self.wm, counts=self.m, running=running,
        )  # fmt: skip
        self.C = fp.centers
        for b in _where(running):
            h = fp.history[b]
            self.host[b] = [h[name][-1] for name in _LAST]
            self.rec[b]["n_passes"] += int(fp.n_iter[b])
        return fp.n_iter

    def top_eigen(self, sigma: np.ndarray, running: np.ndarray) -> tuple[np.ndarray, ...]:
        """``n_power`` warm-started power iterations of every running problem's centers
        (:func:`arbf._drivers.deterministic_annealing._top_eigen`): ``(lam, mass)`` on
        the host, ``(B, k)``; the axes of the other problems are unchanged."""
        xp = self.xp
        sig = from_host(np.where(running, sigma, 1.0), xp=xp, device=self.dev, dtype=self.dtype)
        V = self.V
        rq = mass = None
        for _ in range(self.opts.n_power):
            A, N = seam.batched_principal_axes_pass(
                self.X, self.C, V, self.w, sigmas=sig, counts=self.m, kind=self.opts.kind,
                xp=xp, working_memory=self.wm,
            )  # fmt: skip
            rq = xp.sum(A * V, axis=-1)
            mass = N
            norm = xp.sqrt(xp.sum(A * A, axis=-1))
            ok = norm > 0
            V = xp.where(ok[..., None], A / xp.where(ok, norm, xp.ones_like(norm))[..., None], V)
        assert rq is not None and mass is not None
        keep = from_host(running, xp=xp, device=self.dev)
        self.V = xp.where(keep[:, None, None], V, self.V)
        host = to_host(xp.stack([rq, mass])).astype(np.float64)
        rq_h, n_h = host[0], host[1]
        lam = np.where(n_h > 0, rq_h / np.where(n_h > 0, n_h, 1.0), 0.0)
        for b in _where(running):
            self.rec[b]["n_passes"] += self.opts.n_power
        return np.maximum(lam, 0.0), n_h

    def host_centers(self) -> tuple[np.ndarray, np.ndarray]:
        host = to_host(self.xp.stack([self.C, self.V])).astype(np.float64)
        return host[0], host[1]

    def set_centers(self, C_h: np.ndarray, V_h: np.ndarray) -> None:
        self.C = from_host(C_h, xp=self.xp, device=self.dev, dtype=self.dtype)
        self.V = from_host(V_h, xp=self.xp, device=self.dev, dtype=self.dtype)


_LAST = ("center_shift", "free_energy", "soft_distortion", "inertia")


def _where(mask: np.ndarray) -> list[int]:
    """The problems where ``mask`` holds, as Python ints."""
    return [int(b) for b in np.flatnonzero(mask)]


def _anneal_batched(
    X: Array,
    k: int,
    w: Array | None,
    rngs: list[np.random.Generator],
    *,
    xp: ModuleType,
    opts: AnnealOptions,
    working_memory: Any,
    scale: np.ndarray,
) -> tuple[Array, list[dict[str, Any]]]:
    """:func:`arbf._drivers.deterministic_annealing._anneal_impl` of every problem (on
    prepared ``X``); returns exactly ``k`` centers per problem and the records."""
    st = _Annealing(X, k, w, rngs, xp=xp, opts=opts, working_memory=working_memory)
    B, d, c, cooling = st.B, st.d, st.c, opts.cooling
    v0 = [r.standard_normal(d) for r in rngs]
    everyone = np.ones(B, dtype=bool)
    st.converge(np.ones(B), everyone)
    lam0, axis0 = seam.batched_principal_axis(X, w, xp=xp, v0=v0)
    C_h, V_h = st.host_centers()
    V_h[:, 0, :] = axis0
    st.set_centers(C_h, V_h)
    lam = [np.asarray([lam0[b]]) for b in range(B)]
    sigma = np.empty(B)
    for b in range(B):
        st.rec[b]["n_passes"] += 1
        st.rec[b]["sigma_critical"] = float(c * lam0[b])
        sigma[b] = cooling * st.rec[b]["sigma_critical"]
    going = np.asarray([k > 1 and s > 0 for s in sigma])
    level = np.zeros(B, dtype=np.int64)
    while going.any():
        over = going & (level >= MAX_LEVELS)
        if over.any():
            warnings.warn(
                f"deterministic annealing stopped after {MAX_LEVELS} temperature levels "
                f"(cooling={cooling}) before the soft and hard distortions agreed; Lloyd's "
                "iterations finish",
                convergence_warning(),
                stacklevel=5,
            )
            going &= ~over
            if not going.any():
                break
        level[going] += 1
        iters = np.zeros(B, dtype=np.int64)
        rnd = going.copy()  # the problems still in this level's rounds
        for _round in range(opts.max_rounds):
            if not rnd.any():
                break
            iters += np.where(rnd, st.converge(sigma, rnd), 0)
            C_h, V_h = st.host_centers()
            moved = False
            for b in _where(rnd & (st.m > 1)):
                mb = int(st.m[b])
                keep = _merge_coincident(C_h[b, :mb], opts.merge_tol * sigma[b])
                if keep.size < mb:
                    st.rec[b]["merges"].append((float(sigma[b]), mb - int(keep.size)))
                    C_h[b, : keep.size] = C_h[b, keep]
                    V_h[b, : keep.size] = V_h[b, keep]
                    st.m[b] = keep.size
                    moved = True
            if moved:
                st.set_centers(C_h, V_h)
            full = rnd & (st.m >= k)
            for b in _where(full):
                lam[b] = np.zeros(int(st.m[b]))
            rnd &= ~full
            if not rnd.any():
                break
            lam_all, mass = st.top_eigen(sigma, rnd)
            C_h, V_h = st.host_centers()
            split = False
            for b in _where(rnd):
                mb = int(st.m[b])
                lam[b] = lam_all[b, :mb]
                crit = c * lam[b]
                cand = np.flatnonzero(crit > sigma[b])
                if cand.size == 0:
                    rnd[b] = False
                    continue
                cand = cand[np.argsort(-(mass[b, cand] * lam[b][cand]), kind="stable")][: k - mb]
                for j in cand:
                    step = opts.split_distance * math.sqrt(lam[b][j]) * V_h[b, j]
                    C_h[b, st.m[b]] = C_h[b, j] - step
                    C_h[b, j] = C_h[b, j] + step
                    r = st.rngs[b].standard_normal(d)
                    r -= (r @ V_h[b, j]) * V_h[b, j]
                    nr = np.linalg.norm(r)
                    r = r / nr if nr > 0 else V_h[b, j]
                    V_h[b, st.m[b]] = r
                    V_h[b, j] = r
                    st.m[b] += 1
                    st.rec[b]["splits"].append((float(sigma[b]), int(j), float(crit[j])))
                split = True
                emit(
                    opts.verbose, "problem %d, sigma %.4g: split %d center(s), now %d", b,
                    float(sigma[b] * scale[b] ** 2), cand.size, int(st.m[b]),
                )  # fmt: skip
            if split:
                st.set_centers(C_h, V_h)
        for b in _where(going):
            rec, host, mb = st.rec[b], st.host[b], int(st.m[b])
            rec["sigmas"].append(float(sigma[b]))
            rec["n_centers"].append(mb)
            rec["n_iter"].append(int(iters[b]))
            rec["free_energy"].append(host[1])
            rec["soft_distortion"].append(host[2])
            rec["inertia"].append(host[3])
            if mb >= k:
                L, J = host[2], host[3]
                if L - J <= opts.hard_tol * J or J <= 0:
                    going[b] = False
                    continue
                sigma[b] *= cooling
                continue
            top = float(c * np.max(lam[b]))
            if not top > 0:
                going[b] = False
                continue
            sigma[b] = cooling * min(sigma[b], top)
        emit(opts.verbose, "level %s: %s centers", level, st.m)
    C_h, _ = st.host_centers()
    for b in _where(st.m < k):  # copies of the first (:func:`_pad_centers`)
        C_h[b, st.m[b] :] = C_h[b, 0]
    return from_host(C_h, xp=xp, device=st.dev, dtype=st.dtype), st.rec


def _swap_refine_batched(
    X: Array,
    C: Array,
    w: Array | None,
    rngs: list[np.random.Generator],
    *,
    xp: ModuleType,
    max_fail: int,
    working_memory: Any,
    tol: np.ndarray,
) -> tuple[Array, list[tuple[int, int]]]:
    """:func:`arbf._drivers.deterministic_annealing._swap_refine` of every problem: each
    round of trials is one batched Lloyd run (the problems that are done ride along
    from their own centers and keep them)."""
    B, k, d = C.shape
    if k < 2:
        return C, [(0, 0)] * B
    dev, dtype = device_of(X), X.dtype

    def run_lloyd(C0: Array) -> BatchedKMeansResult:
        return _lloyd_batched(
            X, w, C0, xp=xp, max_iter=300, tol=tol, verbose=False, working_memory=working_memory
        )

    def utility_pass(C: Array) -> np.ndarray:
        return to_host(seam.batched_utilities(X, C, w, xp=xp, working_memory=working_memory))

    res = run_lloyd(C)
    C, best = res.centers, res.inertia.copy()
    ue = utility_pass(C).astype(np.float64)
    util, err = ue[:, :, 0].copy(), ue[:, :, 1].copy()
    mass: np.ndarray | None = None
    tried = np.zeros(B, dtype=np.int64)
    accepted = np.zeros(B, dtype=np.int64)
    fails = np.zeros(B, dtype=np.int64)
    order = [list(np.argsort(util[b], kind="stable")) for b in range(B)]
    while True:
        going = np.asarray([fails[b] < max_fail and bool(order[b]) for b in range(B)])
        if not going.any():
            break
        if mass is None:
            _, _, wts, _ = seam.batched_lloyd_sums(X, C, w, xp=xp, working_memory=working_memory)
            mass = to_host(wts).astype(np.float64)
        C_h = to_host(C).astype(np.float64)
        for b in _where(going):
            j_min = int(order[b].pop(0))
            e = err[b].copy()
            e[j_min] = -np.inf
            j_max = int(np.argmax(e))
            radius = math.sqrt(err[b, j_max] / mass[b, j_max]) if mass[b, j_max] > 0 else 0.0
            u = rngs[b].standard_normal(d)
            u *= 0.5 * radius / max(float(np.linalg.norm(u)), 1e-300)
            C_h[b, j_min] = C_h[b, j_max] - u
            C_h[b, j_max] = C_h[b, j_max] + u
        trial = run_lloyd(from_host(C_h, xp=xp, device=dev, dtype=dtype))
        tried += going
        take = going & (trial.inertia < best * (1 - 1e-12))
        fails = np.where(take, 0, np.where(going, fails + 1, fails))
        if take.any():
            t = from_host(take, xp=xp, device=dev)
            C = xp.where(t[:, None, None], trial.centers, C)
            best = np.where(take, trial.inertia, best)
            accepted += take
            ue = utility_pass(C).astype(np.float64)
            for b in _where(take):
                util[b], err[b] = ue[b, :, 0], ue[b, :, 1]
                order[b] = list(np.argsort(util[b], kind="stable"))
            mass = None
        # a problem whose trial failed keeps its centers, mass and utilities
    return C, [(int(tried[b]), int(accepted[b])) for b in range(B)]


def _subsample(
    Xc: Array,
    k: int,
    w: Array | None,
    rngs: list[np.random.Generator],
    *,
    xp: ModuleType,
    opts: AnnealOptions,
) -> tuple[Array, Array | None]:
    """The rows each problem anneals on (:func:`arbf._drivers.deterministic_annealing.
    _anneal_prepared`: its positive-weight rows, a uniform subsample of ``max_samples``
    of them), gathered into ``(B, m, d)``; problems with fewer rows are padded with
    weight-0 copies of their first row (which change no sum)."""
    B, n, d = Xc.shape
    m: int | None = None
    if opts.max_samples == "auto":
        m = max(2000, 20 * k, 125 * d)
    elif opts.max_samples is not None:
        m = max(int(opts.max_samples), k)
    w_h = None if w is None else to_host(w)
    picks: list[np.ndarray | None] = []
    for b in range(B):
        pos = None if w_h is None else np.flatnonzero(w_h[b] > 0)
        if pos is not None and pos.size == n:
            pos = None
        pool = n if pos is None else int(pos.size)
        if (m is not None and pool > m) or pos is not None:
            pick = (
                np.arange(pool)
                if m is None or pool <= m
                else rngs[b].choice(pool, m, replace=False)
            )
            picks.append(np.sort(pick if pos is None else pos[pick]))
        else:
            picks.append(None)
    if all(p is None for p in picks):
        return Xc, w
    rows = max(n if p is None else p.size for p in picks)
    idx = np.zeros((B, rows), dtype=np.int64)
    real = np.zeros((B, rows), dtype=bool)
    for b, p in enumerate(picks):
        p = np.arange(n) if p is None else p
        idx[b, : p.size], idx[b, p.size :] = p, p[0]
        real[b, : p.size] = True
    flat = (idx + n * np.arange(B)[:, None]).reshape(-1)
    gather = from_host(flat, xp=xp, device=device_of(Xc))
    Xa = xp.reshape(xp.take(xp.reshape(Xc, (B * n, d)), gather, axis=0), (B, rows, d))
    if w is None and real.all():
        return Xa, None
    base = np.ones((B, rows)) if w_h is None else np.take_along_axis(w_h, idx, axis=1)
    wa = np.where(real, base, 0.0)
    return Xa, from_host(wa, xp=xp, device=device_of(Xc), dtype=Xc.dtype)


def _run(
    X: Any,
    n_clusters: Any,
    sample_weight: Any,
    random_state: Any,
    opts: AnnealOptions,
    working_memory: Any,
) -> tuple[BatchedPrepared, Array, Array | None, ModuleType, list[dict[str, Any]]]:
    X, xp = check_batched_data(X)
    B, n, _ = X.shape
    k = check_n_clusters(n_clusters, n)
    w = check_batched_weights(sample_weight, X, xp=xp)
    rngs = problem_generators(random_state, B)
    prep = prepare_batched(X, X[:, :1, :], xp=xp, tol=0.0, metric="sqeuclidean")
    C, recs = _anneal_prepared_batched(
        prep.X, k, w, rngs, xp=xp, opts=opts, working_memory=working_memory, scale=prep.scale
    )
    return prep, C, w, xp, recs


def _anneal_prepared_batched(
    Xc: Array,
    k: int,
    w: Array | None,
    rngs: list[np.random.Generator],
    *,
    xp: ModuleType,
    opts: AnnealOptions,
    working_memory: Any,
    scale: np.ndarray,
) -> tuple[Array, list[dict[str, Any]]]:
    """:func:`arbf._drivers.deterministic_annealing._anneal_prepared` of every problem:
    annealing on each problem's subsample, then the center swaps on all rows."""
    Xa, wa = _subsample(Xc, k, w, rngs, xp=xp, opts=opts)
    C, recs = _anneal_batched(
        Xa, k, wa, rngs, xp=xp, opts=opts, working_memory=working_memory, scale=scale
    )
    if opts.refine:
        var = to_host(xp.mean(xp.var(Xc, axis=1), axis=-1)).astype(np.float64)
        C, swaps = _swap_refine_batched(
            Xc, C, w, rngs, xp=xp, max_fail=opts.refine, working_memory=working_memory,
            tol=var * 1e-4,
        )  # fmt: skip
        for rec, sw in zip(recs, swaps, strict=True):
            rec["swaps"] = sw
    return C, recs


def anneal_centers_batched(
    Xc: Array,
    k: int,
    w: Array | None,
    rngs: list[np.random.Generator],
    *,
    xp: ModuleType,
    working_memory: Any = None,
    **options: Any,
) -> Array:
    """``init="anneal"`` of the batched K-Means driver on its centred ``Xc``
    ``(B, n, d)``: :func:`arbf._drivers.deterministic_annealing.anneal_centers` of every
    problem, ``(B, k, d)``."""
    opts = AnnealOptions.check(**options)
    C, _ = _anneal_prepared_batched(
        Xc, k, w, rngs, xp=xp, opts=opts, working_memory=working_memory,
        scale=np.ones(Xc.shape[0]),
    )  # fmt: skip
    return C


def deterministic_annealing_batched(
    X: Any,
    n_clusters: int,
    *,
    kind: str = "softmax",
    sample_weight: Any = None,
    random_state: Any = None,
    finish: bool = True,
    working_memory: Any = None,
    algorithm: str = "auto",
    **options: Any,
) -> BatchedDeterministicAnnealingResult:
    """:func:`arbf.deterministic_annealing` of ``B`` problems, ``X`` ``(B, n, d)`` (see
    the module docstring); ``options`` are :class:`AnnealOptions`'."""
    opts = AnnealOptions.check(kind=kind, **options)
    finish = check_param("finish", finish, BOOLEAN)
    check_param("algorithm", algorithm, Options(*seam.ALGORITHMS))
    prep, C, w, xp, recs = _run(X, n_clusters, sample_weight, random_state, opts, working_memory)
    sc = prep.scale
    B, k, _ = C.shape
    km: BatchedKMeansResult | None = None
    if finish:
        km = _lloyd_batched(
            prep.X, w, C, xp=xp, max_iter=300, tol=np.zeros(B), verbose=False,
            working_memory=working_memory,
        )  # fmt: skip
        C = km.centers
        for b in range(B):
            warn_fewer_clusters(km.labels[b, ...], k, stacklevel=4)
        inertia = km.inertia * sc * sc
        km = dataclasses.replace(
            km,
            centers=prep.to_data(C, xp=xp),
            inertia=inertia,
            history={
                name: [v[b] * sc[b] ** 2 for b in range(B)] for name, v in km.history.items()
            },
            n_init_inertia=inertia[:, None],
        )
    else:
        for b in range(B):
            warn_fewer_distinct(C[b, ...], k)
    per = [np.asarray(r["n_iter"], dtype=np.int64) for r in recs]
    return BatchedDeterministicAnnealingResult(
        centers=prep.to_data(C, xp=xp),
        sigmas=[
            np.asarray(r["sigmas"], dtype=np.float64) * sc[b] ** 2 for b, r in enumerate(recs)
        ],
        n_centers=[np.asarray(r["n_centers"], dtype=np.int64) for r in recs],
        n_iter=np.asarray([int(p.sum()) for p in per], dtype=np.int64),
        n_iter_per_level=per,
        objectives={
            name: [np.asarray(r[name], dtype=np.float64) * sc[b] ** 2 for b, r in enumerate(recs)]
            for name in ("free_energy", "soft_distortion", "inertia")
        },
        splits=[
            [(a * sc[b] ** 2, j, cr * sc[b] ** 2) for a, j, cr in r["splits"]]
            for b, r in enumerate(recs)
        ],
        sigma_critical=np.asarray([r["sigma_critical"] * sc[b] ** 2 for b, r in enumerate(recs)]),
        n_passes=np.asarray([int(r["n_passes"]) for r in recs], dtype=np.int64),
        kmeans=km,
    )


def anneal_init_batched(
    X: Any,
    n_clusters: int,
    *,
    kind: str = "softmax",
    sample_weight: Any = None,
    random_state: Any = None,
    **options: Any,
) -> Array:
    """:func:`arbf.anneal_init` of ``B`` problems: centers ``(B, n_clusters, d)``."""
    working_memory = options.pop("working_memory", None)
    opts = AnnealOptions.check(kind=kind, **options)
    prep, C, _, xp, _ = _run(X, n_clusters, sample_weight, random_state, opts, working_memory)
    for b in range(C.shape[0]):
        warn_fewer_distinct(C[b, ...], C.shape[1])
    return prep.to_data(C, xp=xp)


# the public front doors: X of shape (B, n, d) here, one problem to the one-problem module
# (which sits below the batched drivers' imports, so the routing lives above it)


@functools.wraps(_one.deterministic_annealing)
def deterministic_annealing(
    X: Any, n_clusters: int, /, **kwargs: Any
) -> DeterministicAnnealingResult | BatchedDeterministicAnnealingResult:
    if is_batched(X):
        return deterministic_annealing_batched(X, n_clusters, **kwargs)
    return _one.deterministic_annealing(X, n_clusters, **kwargs)


@functools.wraps(_one.anneal_init)
def anneal_init(X: Any, n_clusters: int, /, **kwargs: Any) -> Array:
    if is_batched(X):
        return anneal_init_batched(X, n_clusters, **kwargs)
    return _one.anneal_init(X, n_clusters, **kwargs)
