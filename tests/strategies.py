"""Shared Hypothesis strategies: problems where the theory has content.

- ``k >= 2`` clusters and **distinct** points (no zero margins from duplicates);
- ``n`` up to 200, ``d`` up to 16, data around a random mixture at a random scale;
- weights that include zeros (never all zero);
- σ log-uniform over ``1e-8 … 1e3`` times the data's squared scale (the median squared
  distance to the centers): from exactly hard to nearly uniform responsibilities;
- σ placed within ±1 % of a row's entmax threshold ``Δ_i / 2`` (:func:`near_threshold`).

Data come from a NumPy generator seeded by Hypothesis (fast for large arrays; Hypothesis
still shrinks the seed, the shape and the knobs).  JAX and Dask compile or build a graph
per shape, so on those backends the shape is drawn from :data:`SLOW_SHAPES` (three
shapes) instead of freely.

Examples per property (profile ``ci``): :data:`EXAMPLES` on the eager backends,
:data:`SLOW_EXAMPLES` on JAX and Dask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests import reference as ref

#: Backends that compile (JAX) or build graphs (Dask) per shape.
SLOW = frozenset({"jax", "dask"})
#: ``(n, d, k)`` drawn on the slow backends.
SLOW_SHAPES = ((12, 2, 2), (40, 3, 4), (90, 6, 5))
#: Examples per property on the eager backends (NumPy, array-api-strict, torch).
EXAMPLES = 25
#: Examples per property on JAX and Dask (covering the three shapes).
SLOW_EXAMPLES = 9


@dataclass(frozen=True)
class Problem:
    """Host float64 data ``X`` (n×d), centers ``C`` (k×d), weights ``w`` or ``None``,
    and ``scale2``: the data's squared scale (median squared distance to the centers)."""

    X: np.ndarray
    C: np.ndarray
    w: np.ndarray | None
    scale2: float

    @property
    def D(self) -> np.ndarray:
        return ref.sqdist(self.X, self.C)

    def margins(self) -> np.ndarray:
        """``Δ_i = D_i(2) − D_i(1)`` per row."""
        Ds = np.sort(self.D, axis=1)
        return Ds[:, 1] - Ds[:, 0]


@st.composite
def problems(
    draw: Any,
    *,
    backend: str = "numpy",
    min_k: int = 2,
    max_k: int = 6,
    max_n: int = 200,
    max_d: int = 16,
    weighted: bool | None = None,
    shape: tuple[int, int, int] | None = None,
) -> Problem:
    """A clustering problem (see the module docstring)."""
    if shape is None and backend in SLOW:
        shape = draw(st.sampled_from(SLOW_SHAPES))
    if shape is None:
        k = draw(st.integers(min_k, max_k))
        n = draw(st.integers(max(k + 1, 3), max_n))
        d = draw(st.integers(1, max_d))
    else:
        n, d, k = shape
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = 10.0 ** draw(st.floats(-2.0, 2.0))
    separation = draw(st.floats(0.5, 8.0))
    # a mixture of m components (not necessarily k) at the drawn scale
    m = draw(st.integers(1, max(1, k + 1)))
    means = rng.normal(size=(m, d)) * separation
    X = (means[rng.integers(m, size=n)] + rng.normal(size=(n, d))) * scale
    assume(np.unique(X, axis=0).shape[0] == n)  # distinct points
    # centers: data rows, moved a little (distinct as well)
    C = X[rng.choice(n, size=k, replace=False)] + rng.normal(size=(k, d)) * 0.3 * scale
    w = None
    if weighted is None:
        weighted = draw(st.booleans())
    if weighted:
        w = rng.uniform(0.0, 3.0, size=n)
        zeros = draw(st.floats(0.0, 0.5))
        w[rng.uniform(size=n) < zeros] = 0.0
        w[rng.integers(n)] = rng.uniform(0.5, 3.0)  # never all zero
    D = ref.sqdist(X, C)
    scale2 = float(np.median(D))
    assume(scale2 > 0)
    return Problem(X, C, w, scale2)


def sigma_for(draw: Any, problem: Problem, lo: float = -8.0, hi: float = 3.0) -> float:
    """σ = scale² · 10^u, u uniform in [lo, hi]."""
    return problem.scale2 * 10.0 ** draw(st.floats(lo, hi))


@st.composite
def problems_and_sigma(draw: Any, *, lo: float = -8.0, hi: float = 3.0, **kw: Any) -> tuple:
    """``(problem, σ)`` with σ over ``10^lo … 10^hi`` times the squared scale."""
    p = draw(problems(**kw))
    return p, sigma_for(draw, p, lo, hi)


@st.composite
def near_threshold(draw: Any, **kw: Any) -> tuple:
    """``(problem, σ, i, ε)``: σ = Δ_i / (2 (1 + ε)) for a row ``i`` with a clear margin
    and ``|ε|`` in ``[1e-4, 1e-2]``: row ``i`` sits within 1 % of its entmax-1.5
    threshold, one-hot exactly when ``ε >= 0``."""
    p = draw(problems(**kw))
    gaps = p.margins()
    ok = np.flatnonzero(gaps > 1e-6 * (1.0 + np.sort(p.D, axis=1)[:, 1]))
    assume(ok.size > 0)
    i = int(ok[draw(st.integers(0, ok.size - 1))])
    eps = draw(st.floats(1e-4, 1e-2)) * draw(st.sampled_from([-1.0, 1.0]))
    return p, float(gaps[i] / (2.0 * (1.0 + eps))), i, eps


def run(backend: Any, strategy: Any, prop: Any) -> None:
    """Run ``prop(*example)`` over the examples of ``strategy`` for ``backend``."""
    n = SLOW_EXAMPLES if backend.name in SLOW else EXAMPLES

    @settings(max_examples=n)
    @given(strategy)
    def inner(example: Any) -> None:
        if isinstance(example, tuple):
            prop(*example)
        else:
            prop(example)

    inner()


def arrays(backend: Any, p: Problem) -> tuple:
    """``(X, C, w)`` of ``p`` as arrays of ``backend``."""
    return (
        backend.asarray(p.X),
        backend.asarray(p.C),
        None if p.w is None else backend.asarray(p.w),
    )


# --------------------------------------------------------------------------------------
# well-separated mixtures (the monotone regime of the centroid discrepancy)
# --------------------------------------------------------------------------------------

#: ``(n, d, k)`` of the mixtures drawn on the slow backends.
SLOW_MIXTURE_SHAPES = ((40, 2, 2), (90, 3, 4))


@dataclass(frozen=True)
class Mixture:
    """Host float64 data ``X`` (n×d) drawn from ``k`` Gaussian components, weights ``w``
    (or ``None``), and ``means``: the components' sample means, a good K-Means start."""

    X: np.ndarray
    w: np.ndarray | None
    means: np.ndarray

    @property
    def scale(self) -> float:
        """``max |x|``: the data's scale (its rounding is ``eps · scale``)."""
        return float(np.abs(self.X).max())


@st.composite
def mixtures(
    draw: Any,
    *,
    backend: str = "numpy",
    min_k: int = 2,
    max_k: int = 5,
    max_n: int = 200,
    max_d: int = 6,
    shape: tuple[int, int, int] | None = None,
) -> Mixture:
    """Well-separated mixtures: ``k`` isotropic components (standard deviations in
    [0.5, 1.5]) whose closest means are ``sep`` apart, ``sep`` log-uniform in [3, 20];
    every component holds a sample; a random offset and scale (``10^±2``); weights all
    ones, uniform in [0, 3] with ~15 % exact zeros, or integers in {0, …, 3}."""
    if shape is None and backend in SLOW:
        shape = draw(st.sampled_from(SLOW_MIXTURE_SHAPES))
    if shape is None:
        k = draw(st.integers(min_k, max_k))
        n = draw(st.integers(max(20, 6 * k), max_n))
        d = draw(st.integers(1, max_d))
    else:
        n, d, k = shape
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sep = float(np.exp(draw(st.floats(np.log(3.0), np.log(20.0)))))
    M = rng.uniform(-1.0, 1.0, size=(k, d))
    gaps = np.sqrt(((M[:, None] - M[None]) ** 2).sum(-1))[np.triu_indices(k, 1)]
    assume(gaps.min() > 1e-3)
    M *= sep / gaps.min()
    comp = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    std = rng.uniform(0.5, 1.5, size=k)
    scale = 10.0 ** draw(st.floats(-2.0, 2.0))
    offset = rng.normal(size=d) * 3.0
    X = (M[comp] + std[comp, None] * rng.standard_normal((n, d)) + offset) * scale
    mode = draw(st.sampled_from(["ones", "uniform", "integers"]))
    w = None
    if mode == "uniform":
        w = rng.uniform(0.0, 3.0, size=n) * (rng.random(n) > 0.15)
    elif mode == "integers":
        w = rng.integers(0, 4, size=n).astype(np.float64)
    ww = np.ones(n) if w is None else w
    assume(all(ww[comp == j].sum() > 0 for j in range(k)))
    means = np.stack(
        [(ww[comp == j, None] * X[comp == j]).sum(0) / ww[comp == j].sum() for j in range(k)]
    )
    return Mixture(X, w, means)


# --------------------------------------------------------------------------------------
# spherical problems (metric="cosine")
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SphericalProblem:
    """A :class:`Problem` read on the sphere: ``X`` and ``C`` as drawn (any norms), ``U``
    and ``V`` their normalised rows, ``Dc = 1 − U Vᵀ`` the cosine distances, and
    ``scale``: their median (σ is drawn relative to it)."""

    X: np.ndarray
    C: np.ndarray
    w: np.ndarray | None
    scale: float

    @property
    def U(self) -> np.ndarray:
        return self.X / np.linalg.norm(self.X, axis=1, keepdims=True)

    @property
    def V(self) -> np.ndarray:
        return self.C / np.linalg.norm(self.C, axis=1, keepdims=True)

    @property
    def Dc(self) -> np.ndarray:
        return 1.0 - self.U @ self.V.T

    def margins(self) -> np.ndarray:
        """``Δᶜ_i = cos_i(1) − cos_i(2)``: the gap of the two largest cosines."""
        Ds = np.sort(self.Dc, axis=1)
        return Ds[:, 1] - Ds[:, 0]


@st.composite
def spherical_problems(draw: Any, **kw: Any) -> SphericalProblem:
    """:func:`problems` with ``d >= 2`` and distinct center directions (no rows or
    centers of norm 0: the drawn data are continuous), read on the sphere."""
    p = draw(problems(**kw))
    assume(p.X.shape[1] >= 2)
    V = p.C / np.linalg.norm(p.C, axis=1, keepdims=True)
    cv = V @ V.T
    assume(np.all(cv[np.triu_indices(len(V), 1)] < 1 - 1e-9))
    sp = SphericalProblem(p.X, p.C, p.w, 0.0)
    scale = float(np.median(sp.Dc))
    assume(scale > 1e-12)
    return SphericalProblem(p.X, p.C, p.w, scale)


@st.composite
def spherical_and_sigma(draw: Any, *, lo: float = -8.0, hi: float = 3.0, **kw: Any) -> tuple:
    """``(problem, σ)``, σ = scale · 10^u with u uniform in [lo, hi]."""
    p = draw(spherical_problems(**kw))
    return p, p.scale * 10.0 ** draw(st.floats(lo, hi))


@st.composite
def spherical_near_threshold(draw: Any, **kw: Any) -> tuple:
    """``(problem, σ, i, ε)``: σ = Δᶜ_i / (2 (1 + ε)) for a row with a clear cosine gap,
    ``|ε|`` in [1e-4, 1e-2]: row ``i`` within 1 % of its entmax-1.5 threshold."""
    p = draw(spherical_problems(**kw))
    gaps = p.margins()
    ok = np.flatnonzero(gaps > 1e-6)
    assume(ok.size > 0)
    i = int(ok[draw(st.integers(0, ok.size - 1))])
    eps = draw(st.floats(1e-4, 1e-2)) * draw(st.sampled_from([-1.0, 1.0]))
    return p, float(gaps[i] / (2.0 * (1.0 + eps))), i, eps
