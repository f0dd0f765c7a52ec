r"""The two temperature protocols of the paper's Figure 1 and the paths of its Figure 2.

For one data set and one initialisation :math:`\mu^{(0)}`:

- the **reference** :math:`c^*` is the K-Means fixed point reached by Lloyd's algorithm
  from :math:`\mu^{(0)}` (computed as the hard, σ = 0, RBF network with ``tol=0`` so it is
  an exact fixed point, and cross-checked against :func:`arbf.kmeans`);
- at every σ of a decreasing schedule the RBF network (softmax or entmax-1.5) is trained
  from the *same* :math:`\mu^{(0)}` to its fixed point :math:`\mu(\sigma)`
  (:func:`arbf.rbf_kmeans`), and :math:`d_j(\sigma) = \lVert\mu_j(\sigma) -
  c^*_{\pi(j)}\rVert` (:func:`arbf.centroid_discrepancy`, Hungarian matching).

Two temperatures come from SPEC §1, Theorem 4 (entmax-1.5 row ``i`` is one-hot iff
:math:`\Delta_i \ge 2\sigma`):

- ``sigma_pred`` :math:`= \min_i \Delta_i(c^*)/2`: at or below it :math:`c^*` is a fixed
  point of the entmax network, above it it is not — so the entmax discrepancy can be
  exactly 0 only at :math:`\sigma \le` ``sigma_pred``;
- ``sigma_traj`` :math:`= \min_t \min_i \Delta_i(\mu^{(t)})/2` over Lloyd's iterates
  from :math:`\mu^{(0)}`: at or below it every entmax step *is* the Lloyd step, so the
  whole entmax trajectory equals Lloyd's and the discrepancy is exactly 0.

The **monotone regime** (Theorems M and E of the theory page, :func:`arbf.monotone_regime`)
comes from :math:`c^*`: below σ₀ (softmax) and σ_e (entmax-1.5) the discrepancy of the
branch of fixed points that continues :math:`c^*` is proved non-increasing as σ falls.
The **branch** is computed by continuation from :math:`c^*` (:func:`arbf.anneal` down the
levels at or below that temperature, no perturbation, no finish).  Whether the
same-start σ-wise discrepancy is monotone *outside* the regime is an observation.

Everything returned lives on the host (NumPy), ready for tables and figures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import arbf

from .._backend import array_namespace, device_of, from_host, to_host
from .._drivers.rbf import critical_sigma, min_margin
from .._math.seam import geometric

__all__ = [
    "KINDS",
    "Branch",
    "DatasetRun",
    "Reference",
    "Settings",
    "branch",
    "critical_sigma_host",
    "make_problem",
    "reference_fixed_point",
    "run_dataset",
    "sweep",
]

KINDS = ("softmax", "entmax15")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """How hard one reproduction run works (see ``QUICK`` and ``DEFAULT`` in ``runner``)."""

    n_levels: int = 30
    n_inits: int = 10
    max_iter: int = 300
    tol: float = 1e-13
    size_factor: float = 1.0
    lower_factor: float = 32.0  # the grid ends at (at most) min(sigma_pred) / this


@dataclass
class Reference:
    """The K-Means fixed point from one initialisation, and the two entmax temperatures."""

    init: np.ndarray
    centers: Any  # backend array
    centers_host: np.ndarray
    n_iter: int
    inertia: float
    sigma_pred: float
    sigma_traj: float
    kmeans_agreement: float  # max |c*_hard-RBF - c*_arbf.kmeans|


@dataclass
class Sweep:
    """One kind, one initialisation, every σ: per-center discrepancies and run statistics."""

    sigmas: np.ndarray  # (L,)
    d: np.ndarray  # (L, k) matched per-center discrepancy
    centers: np.ndarray  # (L, k, dim)
    n_iter: np.ndarray  # (L,)
    converged: np.ndarray  # (L,)
    half_margin: np.ndarray  # (L,) min_i Δ_i / 2 at μ(σ): entmax rows all one-hot iff σ <= it


@dataclass
class Annealing:
    """One warm-started annealing run (A4, :func:`arbf.anneal`) from the initialisation."""

    sigmas: np.ndarray  # (L,)
    path: np.ndarray  # (L, k, dim) centers at the end of each level
    final: np.ndarray  # (k, dim) the exact K-Means fixed point it ends in
    d: np.ndarray  # (L,) max_j discrepancy of each level to ``final``
    one_hot: np.ndarray  # (L,)
    sigma_exact: float  # min Δ/2 at ``final``
    n_iter: np.ndarray  # (L,)
    inertia: float


@dataclass
class Branch:
    """The branch of fixed points that continues c* below the certified temperature."""

    regime_sigma: float  # σ₀ (softmax) or σ_e (entmax-1.5); NaN when not certified
    exact_sigma: float  # min Δ/2 at c*
    reason: str | None  # why the certificate failed (None: it holds)
    sigmas: np.ndarray  # (L,) the regime temperature, then the grid's levels below it
    d: np.ndarray  # (L,) max_j d_j along the branch (to c*)
    bound: np.ndarray  # (L,) the certified d(σ) (softmax: an upper bound; entmax: exact)
    converged: np.ndarray  # (L,)


@dataclass
class DatasetRun:
    """Everything the table, the figures and the JSON need for one data set."""

    name: str
    title: str
    n: int
    dim: int
    k: int
    backend: str
    X: np.ndarray
    y: np.ndarray
    scale: float
    exact_atol: float
    sigma_c: float
    grid: np.ndarray
    reference: Reference
    sigma_wise: dict[str, Sweep]
    init_refs: list[Reference]
    init_wise: dict[str, list[Sweep]]
    annealing: dict[str, Annealing] = field(default_factory=dict)
    branches: dict[str, Branch] = field(default_factory=dict)
    wall_time: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def critical_sigma_host(X: np.ndarray) -> float:
    """``σ_c = 2 λ_max(Cov X)``: the temperature of the first split (Rose et al. 1990)."""
    return critical_sigma(X, None, xp=array_namespace(X))


def _host_init(Xh: np.ndarray, k: int, seed: np.random.SeedSequence) -> np.ndarray:
    """k-means++ on the host copy, so every backend starts from the same centers."""
    C, _ = arbf.kmeans_plusplus(Xh, k, random_state=np.random.default_rng(seed))
    return np.asarray(C, dtype=np.float64)


def reference_fixed_point(X: Any, init_h: np.ndarray, *, max_iter: int = 300) -> Reference:
    """Lloyd from ``init_h`` to its exact fixed point, and ``sigma_pred``, ``sigma_traj``."""
    xp = array_namespace(X)
    C0 = from_host(init_h, xp=xp, device=device_of(X), dtype=X.dtype)
    hard = arbf.rbf_kmeans(X, C0, sigma=0.0, kind="hard", tol=0.0, max_iter=max_iter)
    km = arbf.kmeans(X, init_h.shape[0], init=C0, n_init=1, tol=0.0, max_iter=max_iter)
    agreement = float(to_host(arbf.centroid_discrepancy(hard.centers, km.centers)).max())
    # Lloyd's iterates from the same start: the smallest margin met on the way
    margins = []
    C = C0
    for _ in range(max_iter):
        margins.append(min_margin(X, C, xp=xp))
        C_next = arbf.lloyd_step(X, C)
        if bool(to_host(xp.all(C_next == C))):
            break
        C = C_next
    margins.append(min_margin(X, hard.centers, xp=xp))
    return Reference(
        init=init_h,
        centers=hard.centers,
        centers_host=to_host(hard.centers).astype(np.float64),
        n_iter=int(hard.n_iter),
        inertia=float(to_host(arbf.inertia(X, hard.centers))),
        sigma_pred=margins[-1] / 2.0,
        sigma_traj=min(margins) / 2.0,
        kmeans_agreement=agreement,
    )


def sweep(
    X: Any,
    ref: Reference,
    sigmas: np.ndarray,
    kind: str,
    settings: Settings,
    progress: Progress | None = None,
) -> Sweep:
    """Train from ``ref.init`` at every σ of ``sigmas`` and measure the discrepancy to ``ref``."""
    xp = array_namespace(X)
    C0 = from_host(ref.init, xp=xp, device=device_of(X), dtype=X.dtype)
    L, (k, dim) = sigmas.size, ref.init.shape
    out = Sweep(
        sigmas=np.asarray(sigmas, dtype=np.float64),
        d=np.empty((L, k)),
        centers=np.empty((L, k, dim)),
        n_iter=np.empty(L, dtype=np.int64),
        converged=np.empty(L, dtype=bool),
        half_margin=np.empty(L),
    )
    for li, s in enumerate(sigmas):
        res = arbf.rbf_kmeans(
            X, C0, sigma=float(s), kind=kind, tol=settings.tol, max_iter=settings.max_iter
        )
        out.d[li] = to_host(arbf.centroid_discrepancy(res.centers, ref.centers))
        out.centers[li] = to_host(res.centers)
        out.n_iter[li] = res.n_iter
        out.converged[li] = res.converged
        out.half_margin[li] = min_margin(X, res.centers, xp=xp) / 2.0
        if progress is not None:
            progress(kind)
    return out


def _anneal(
    X: Any,
    ref: Reference,
    sigmas: np.ndarray,
    kind: str,
    settings: Settings,
    progress: Progress | None = None,
) -> Annealing:
    """The annealing path (A4) from ``ref.init`` down ``sigmas``, warm started per level."""
    xp = array_namespace(X)
    C0 = from_host(ref.init, xp=xp, device=device_of(X), dtype=X.dtype)
    a = arbf.anneal(
        X, C0, kind=kind, schedule=sigmas, max_iter=settings.max_iter, tol=settings.tol
    )
    final = to_host(a.centers).astype(np.float64)
    d = np.array([float(to_host(arbf.centroid_discrepancy(P, final)).max()) for P in a.path])
    if progress is not None:
        progress(kind)
    return Annealing(
        sigmas=np.asarray(a.sigmas, dtype=np.float64),
        path=np.asarray(a.path, dtype=np.float64),
        final=final,
        d=d,
        one_hot=np.asarray(a.one_hot, dtype=bool),
        sigma_exact=float(a.sigma_exact),
        n_iter=np.asarray(a.n_iter_per_level),
        inertia=float(a.kmeans.inertia) if a.kmeans is not None else math.nan,
    )


def _schedule(sigma_hi: float, sigma_lo: float, n_levels: int) -> np.ndarray:
    return geometric(sigma_hi, sigma_lo, max(2, n_levels))


def _with(grid: np.ndarray, *extra: float) -> np.ndarray:
    """``grid`` with the temperatures ``extra`` inserted, decreasing and without duplicates."""
    s = np.unique(np.concatenate([grid, np.asarray(extra, dtype=np.float64)]))
    return s[::-1].copy()


def branch(X: Any, ref: Reference, grid: np.ndarray, kind: str, settings: Settings) -> Branch:
    """The certified regime at ``ref.centers`` and the branch below it.

    The branch is continued from c* (:func:`arbf.anneal` with ``perturbation=0``, no
    finish, warm-started level by level) down the regime temperature and the levels of
    ``grid`` below it; its discrepancy is measured to c*.  Each level may take up to 20
    times ``settings.max_iter`` iterations (the entmax branch converges slowly near σ_e,
    where it folds).
    """
    reg = arbf.monotone_regime(X, ref.centers, kind=kind)
    top = reg.sigma0
    if not math.isfinite(top):
        empty = np.zeros(0)
        return Branch(top, reg.exact_sigma, reg.reason, empty, empty, empty, empty.astype(bool))
    sigmas = np.concatenate([[top], grid[grid < top * (1 - 1e-12)]])
    max_iter = 20 * settings.max_iter
    a = arbf.anneal(
        X, ref.centers, kind=kind, schedule=sigmas, perturbation=0.0, finish=False,
        tol=settings.tol * 1e-12, max_iter=max_iter,
    )  # fmt: skip
    d = np.array([float(np.max(arbf.centroid_discrepancy(P, ref.centers_host))) for P in a.path])
    return Branch(
        regime_sigma=top,
        exact_sigma=reg.exact_sigma,
        reason=reg.reason,
        sigmas=sigmas,
        d=d,
        bound=np.array([reg.bound(float(s)) for s in sigmas]),
        converged=np.asarray(a.n_iter_per_level) < max_iter,
    )


def make_problem(
    name: str, *, xp: Any, device: Any, seed: int, settings: Settings
) -> tuple[Any, Any, np.ndarray, int, list[np.ndarray]]:
    """The data set ``name`` and its initialisations, as every backend sees them.

    Returns ``(X, y, Xh, k, inits)``: the data in ``xp`` on ``device``, its host float64
    copy, the number of clusters and ``1 + settings.n_inits`` k-means++ initialisations
    drawn on the host (the first is the σ-wise protocol's).
    """
    from ..datasets import DATASETS

    spec = DATASETS[name]
    ss = np.random.SeedSequence([seed, sorted(DATASETS).index(name)])
    data_seed, init_seed, *multi = ss.spawn(2 + settings.n_inits)
    n = max(4 * spec.n_clusters, round(spec.n_samples * settings.size_factor))
    X, y = spec(n, random_state=np.random.default_rng(data_seed), xp=xp, device=device)
    Xh = to_host(X).astype(np.float64)
    k = spec.n_clusters
    inits = [_host_init(Xh, k, s) for s in (init_seed, *multi)]
    return X, y, Xh, k, inits


def n_units(settings: Settings) -> int:
    """Progress units of one data set: one per RBF training run."""
    return len(KINDS) * ((settings.n_levels + 4) + settings.n_inits * settings.n_levels)


def run_dataset(
    name: str,
    *,
    xp: Any,
    device: Any,
    backend: str,
    seed: int,
    settings: Settings,
    progress: Progress | None = None,
) -> DatasetRun:
    """Both protocols on the data set ``name`` of :data:`arbf.datasets.DATASETS`."""
    from ..datasets import DATASETS

    t0 = time.perf_counter()
    X, y, Xh, k, inits = make_problem(name, xp=xp, device=device, seed=seed, settings=settings)
    scale = float(np.max(np.abs(Xh)))
    eps = float(np.finfo(to_host(X[:1, :1]).dtype).eps)
    exact_atol = 1e3 * eps * max(scale, 1.0)

    timings: dict[str, float] = {}
    t = time.perf_counter()
    ref = reference_fixed_point(X, inits[0], max_iter=settings.max_iter)
    init_refs = [reference_fixed_point(X, c, max_iter=settings.max_iter) for c in inits[1:]]
    timings["reference"] = time.perf_counter() - t

    sigma_c = critical_sigma_host(Xh)
    # the common grid: from the first split (σ_c) down past the temperatures where both
    # maps have reached K-Means: 1/32 of the smallest predicted entmax temperature (softmax
    # is then equal to K-Means by rounding) and half the margin met along Lloyd's path
    floor = 1e-9 * sigma_c
    lows = [r.sigma_pred / settings.lower_factor for r in [ref, *init_refs]]
    lows.append(ref.sigma_traj / 2)
    sigma_lo = max(min(lows), floor)
    grid = _schedule(sigma_c, min(sigma_lo, sigma_c / 2), settings.n_levels)
    extra = [s for s in (ref.sigma_pred, ref.sigma_traj) if sigma_lo < s < sigma_c]
    sigmas = _with(grid, *extra)

    t = time.perf_counter()
    sigma_wise = {kind: sweep(X, ref, sigmas, kind, settings, progress) for kind in KINDS}
    if progress is not None:  # keep the progress count honest when σ* fell off the grid
        for _ in range(len(KINDS) * (settings.n_levels + 2 - sigmas.size)):
            progress("")
    timings["sigma_wise"] = time.perf_counter() - t
    t = time.perf_counter()
    init_wise = {
        kind: [sweep(X, r, grid, kind, settings, progress) for r in init_refs] for kind in KINDS
    }
    timings["init_wise"] = time.perf_counter() - t
    t = time.perf_counter()
    annealing = {kind: _anneal(X, ref, grid, kind, settings, progress) for kind in KINDS}
    timings["annealing"] = time.perf_counter() - t
    t = time.perf_counter()
    branches = {}
    for kind in KINDS:
        branches[kind] = branch(X, ref, sigmas, kind, settings)
        if progress is not None:
            progress(kind)
    timings["branch"] = time.perf_counter() - t

    return DatasetRun(
        name=name,
        title=DATASETS[name].title,
        n=int(Xh.shape[0]),
        dim=int(Xh.shape[1]),
        k=k,
        backend=backend,
        X=Xh,
        y=to_host(y).astype(np.int64),
        scale=scale,
        exact_atol=exact_atol,
        sigma_c=sigma_c,
        grid=grid,
        reference=ref,
        sigma_wise=sigma_wise,
        init_refs=init_refs,
        init_wise=init_wise,
        annealing=annealing,
        branches=branches,
        wall_time=time.perf_counter() - t0,
        timings=timings,
    )
