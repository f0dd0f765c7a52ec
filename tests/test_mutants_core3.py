"""Tests written to kill survivors of the mutation run in ``core.entmax`` (the sort-based
entmax-1.5 and its route), ``core.spectral.principal_axis`` (power iteration) and
``core.distances.labelled_inertia`` (docs/testing.md, "Mutation testing").  Every value is
checked against an independent reference (SciPy's root finder, a closed form, plain
NumPy), never another arbf path.
"""

from __future__ import annotations

import math
import types
import warnings

import numpy as np
import pytest
from scipy.optimize import brentq

from tests.backends import Backend, assert_close, skip_unless_selected


def _host(backend: Backend, a) -> np.ndarray:
    return np.asarray(backend.to_numpy(a), dtype=np.float64)


# ---------------------------------------------------------------------------------------
# core.entmax: exact entmax-1.5, sort-based where the namespace allows it
# ---------------------------------------------------------------------------------------


def _entmax15_ref(z: np.ndarray) -> np.ndarray:
    """entmax-1.5 of each row: ``p = [z/2 - τ]_+²`` with τ from SciPy's brentq on
    ``Σ [z/2 - max - τ]_+² = 1`` (τ lies in ``[-1, 0]`` after the max-shift)."""
    out = []
    for row in np.asarray(z, np.float64).reshape(-1, np.shape(z)[-1]):
        y = row / 2.0 - row.max() / 2.0

        def f(tau: float, y: np.ndarray = y) -> float:
            return float(np.sum(np.clip(y - tau, 0.0, None) ** 2) - 1.0)

        tau = brentq(f, -1.0, 0.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
        out.append(np.clip(y - tau, 0.0, None) ** 2)
    return np.stack(out).reshape(np.shape(z))


def _wide_rows(dtype: str) -> np.ndarray:
    """Row 0: at support sizes 3 and 4 the top scores' variance exceeds ``1/ρ`` (so the
    candidate ``τ(ρ) = mean - sqrt((1 - ρ var)/ρ)`` has a negative radicand); row 1:
    scores ``∓1e300`` (``∓1e30`` in float32) apart, whose squares are beyond the dtype's
    range."""
    big = 1e300 if dtype == "float64" else 1e30
    return np.array([[0.0, -3.0, -3.0, -0.5], [1.0, -big, 2.0, -big]], dtype=dtype)


def _float32_on_jax_without_x64(fn, z: np.ndarray) -> np.ndarray:
    """``fn(z, xp=...)`` on a float32 JAX array with 64-bit mode off and warnings as
    errors (JAX warns when asked for int64 there); asserts a float32 result and returns
    it as float64 NumPy.  Skips unless JAX is selected."""
    skip_unless_selected("jax")
    jax = pytest.importorskip("jax")
    import array_api_compat as aac

    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        zj = jax.numpy.asarray(z)
        out = fn(zj, xp=aac.array_namespace(zj))
        assert out.dtype == jax.numpy.float32
        return np.asarray(out, dtype=np.float64)


class TestEntmax15SqrtNoFloatingPointWarnings:
    """``entmax15_sqrt`` (``u = sqrt(entmax15(z))``) raises no floating-point warning:
    the sort-based statistics clamp the radicand of every candidate τ at 0 (a candidate
    with a negative one is never the support: its top scores are not all equal, so
    ``τ = mean > y_(ρ)``) and the max-shifted scores at -2 (below ``τ >= -1``: never in
    the support), so neither ``sqrt`` of a negative number nor the square of ``1e300``
    is ever formed.  The values are the root finder's, in the input's dtype."""

    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    def test_rows_with_negative_radicands_and_huge_ranges(self, dbackend, dtype):
        from arbf._math.core.entmax import entmax15_sqrt

        z = _wide_rows(dtype)
        ref = np.sqrt(_entmax15_ref(z))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            u = entmax15_sqrt(dbackend.asarray(z), xp=dbackend.xp)
            got = _host(dbackend, u)
        dbackend.check_same_kind(u, dtype=dbackend.dtype(dtype))
        tol = 1e-12 if dtype == "float64" else 2e-6
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol)
        assert got[0, 1] == got[0, 2] == got[1, 1] == got[1, 3] == 0.0

    def test_jax_without_x64(self):
        """On JAX without x64 the support size is counted in the namespace's indexing
        dtype (int32), so no int64 is requested (JAX would warn and truncate it)."""
        from arbf._math.core.entmax import entmax15_sqrt

        z = _wide_rows("float32")
        got = _float32_on_jax_without_x64(entmax15_sqrt, z)
        np.testing.assert_allclose(got, np.sqrt(_entmax15_ref(z)), rtol=0, atol=2e-6)


class TestSparsemaxJaxWithoutX64:
    """``sparsemax`` on JAX without x64 counts the support in the namespace's indexing
    dtype (int32): no int64 is requested, so JAX does not warn; the values equal the
    Euclidean projection onto the simplex (Martins & Astudillo 2016, sort-based closed
    form computed here in plain NumPy)."""

    @staticmethod
    def _sparsemax_ref(z: np.ndarray) -> np.ndarray:
        zs = -np.sort(-z.astype(np.float64), axis=-1)
        k = np.arange(1, z.shape[-1] + 1)
        cs = np.cumsum(zs, axis=-1)
        support = 1 + k * zs > cs
        rho = support.sum(-1, keepdims=True)
        tau = (np.take_along_axis(cs, rho - 1, -1) - 1) / rho
        return np.maximum(z - tau, 0.0)

    def test_jax_without_x64(self):
        from arbf._math.core.entmax import sparsemax

        z = np.array([[0.0, -0.5, 1.0], [0.2, 0.1, -3.0]], dtype=np.float32)
        got = _float32_on_jax_without_x64(sparsemax, z)
        np.testing.assert_allclose(got, self._sparsemax_ref(z), rtol=0, atol=2e-7)


class _Without(types.ModuleType):
    """The NumPy array namespace less some functions (as Dask lacks ``take_along_axis``)."""

    def __init__(self, missing: str) -> None:
        import array_api_compat.numpy as npx

        super().__init__("numpy_without_" + missing)
        self._base, self._missing = npx, missing

    def __getattr__(self, name: str):
        if name == self._missing:
            raise AttributeError(name)
        return getattr(self._base, name)


class TestEntmax15SqrtRoute:
    """A namespace without ``take_along_axis`` or without ``cumulative_sum`` gets the
    bisection route (documented: sort-based only where the backend has both), and still
    exact entmax-1.5."""

    @pytest.mark.parametrize("missing", ["take_along_axis", "cumulative_sum"])
    def test_namespace_missing_a_sort_primitive(self, missing):
        from arbf._math.core.entmax import entmax15_sqrt

        xp = _Without(missing)
        assert not hasattr(xp, missing) and hasattr(xp, "sort")
        rng = np.random.default_rng(3)
        z = rng.normal(scale=2.0, size=(5, 6))
        z[0] = 0.5  # a uniform row
        u = entmax15_sqrt(z, xp=xp)
        np.testing.assert_allclose(u, np.sqrt(_entmax15_ref(z)), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------
# core.spectral.principal_axis: power iteration above EIGH_MAX_FEATURES
# ---------------------------------------------------------------------------------------


def _two_axis_data(a: float, b: float, w: np.ndarray | None = None):
    """Four rows ``3 + (±a e_1)``, ``3 + (±b e_2)`` in ``EIGH_MAX_FEATURES + 1``
    dimensions: the (weighted, with ``w = (w_1, w_1, w_2, w_2)``) mean is 3 and the
    covariance is ``diag(λ_1, λ_2, 0, …)``, ``λ_1 = 2 w_1 a²/Σw``, ``λ_2 = 2 w_2 b²/Σw``."""
    from arbf._math.core.spectral import EIGH_MAX_FEATURES

    X = np.zeros((4, EIGH_MAX_FEATURES + 1))
    X[0, 0], X[1, 0], X[2, 1], X[3, 1] = a, -a, b, -b
    ww = np.ones(4) if w is None else np.asarray(w, float)
    return X + 3.0, 2 * ww[0] * a * a / ww.sum(), 2 * ww[2] * b * b / ww.sum()


def _power_reference(lam1, lam2, c1, c2, d, *, rtol=1e-10, max_iter=300):
    """The documented iteration in closed form on ``Cov = diag(λ_1, λ_2, 0, …)`` from
    ``v_0 = c_1 e_1 + c_2 e_2``: ``v_t ∝ c_1 λ_1^t e_1 + c_2 λ_2^t e_2``; step ``t``
    computes the Rayleigh quotient ``R(v_t)`` and ``v_{t+1}``, and stops once
    ``|R(v_t) - R(v_{t-1})| <= rtol |R(v_t)|`` (``R(v_{-1}) = 0``).  Returns
    ``(R, v, t)`` at the stop, or after ``max_iter`` steps."""

    def ratio(t: int) -> float:  # the e_2 / e_1 component of v_t
        return (c2 / c1) * (lam2 / lam1) ** t

    lam = 0.0
    for t in range(max_iter):
        r = ratio(t)
        new = (lam1 + lam2 * r * r) / (1.0 + r * r)
        r1 = ratio(t + 1)
        v = np.zeros(d)
        v[0], v[1] = math.copysign(1.0, c1), math.copysign(r1, c1)
        v /= math.hypot(1.0, r1)
        if abs(new - lam) <= rtol * abs(new):
            return new, v, t
        lam = new
    return lam, v, max_iter


class TestPrincipalAxisPowerIterationClosedForm:
    """``principal_axis`` above ``EIGH_MAX_FEATURES`` features on a covariance with two
    nonzero eigenvalues, against the iteration in closed form: the stop rule
    ``|Δλ| <= rtol |λ|`` (here with ``|λ|`` far from 1 and a loose rtol, so that ``/``
    or ``+`` for ``*`` or ``-`` stops elsewhere), the last iterate after ``max_iter``
    steps (default 300), ``rtol = 0`` (stops at the first exact repeat of the Rayleigh
    quotient, not at ``max_iter``), a start whose Rayleigh quotient is 1, eigenvalues
    below 1 (returned as they are) and float32 data (worked in X's dtype)."""

    @pytest.mark.parametrize("weighted", [False, True])
    def test_stop_rule(self, dbackend, weighted):
        from arbf._math.core.spectral import principal_axis

        w = np.array([1.0, 1.0, 2.0, 2.0]) if weighted else None
        X, lam1, lam2 = _two_axis_data(0.5, 0.45 if weighted else 0.4, w)
        d = X.shape[1]
        assert max(lam1, lam2) < 0.3
        v0 = np.zeros(d)
        v0[:2] = [1.0, 2.0 if weighted else 1.0]
        wb = None if w is None else dbackend.asarray(w)
        lam, v = principal_axis(dbackend.asarray(X), wb, xp=dbackend.xp, v0=v0, rtol=1e-3)
        rl, rv, t = _power_reference(lam1, lam2, v0[0], v0[1], d, rtol=1e-3)
        assert 5 <= t <= 20
        assert isinstance(lam, float) and lam == pytest.approx(rl, rel=1e-12)
        np.testing.assert_allclose(v, rv, rtol=0, atol=1e-12)

    def test_last_iterate_after_max_iter(self, dbackend):
        """``λ_2/λ_1 = (1 - 2^-8)²``: the Rayleigh quotient still changes by ~1e-6
        relative after 300 steps, so the default ``max_iter`` returns ``(R(v_299),
        v_300)``; ``max_iter=7`` returns ``(R(v_6), v_7)``."""
        from arbf._math.core.spectral import principal_axis

        X, lam1, lam2 = _two_axis_data(1.0, 1.0 - 2.0**-8)
        d = X.shape[1]
        v0 = np.zeros(d)
        v0[:2] = 1.0
        for kw in ({}, {"max_iter": 7}):
            lam, v = principal_axis(dbackend.asarray(X), None, xp=dbackend.xp, v0=v0, **kw)
            rl, rv, t = _power_reference(lam1, lam2, 1.0, 1.0, d, **kw)
            assert t == kw.get("max_iter", 300)
            assert lam == pytest.approx(rl, rel=1e-12)
            np.testing.assert_allclose(v, rv, rtol=0, atol=1e-12)

    def test_rtol_zero_stops_at_an_exact_repeat(self, dbackend):
        """``λ = (2, 1/2)``: ``v_t ∝ (1, 4^-t)``, the Rayleigh quotient is 2 exactly once
        ``4^-2t`` is below the rounding of 2, after about 15 steps; ``rtol = 0`` stops
        there (``|Δλ| = 0 <= 0``), with ``v_2 = 4^-t`` still about 1e-9 (300 steps would
        leave ``4^-300``)."""
        from arbf._math.core.spectral import principal_axis

        X, lam1, lam2 = _two_axis_data(2.0, 1.0)
        assert (lam1, lam2) == (2.0, 0.5)
        v0 = np.zeros(X.shape[1])
        v0[:2] = 1.0
        lam, v = principal_axis(dbackend.asarray(X), None, xp=dbackend.xp, v0=v0, rtol=0.0)
        assert lam == pytest.approx(2.0, rel=1e-15)
        assert 4.0**-25 < v[1] < 4.0**-10
        assert v[0] == pytest.approx(1.0, abs=1e-15)

    def test_start_with_rayleigh_quotient_one(self, dbackend):
        """``Cov = diag(2, 0, …)`` from ``v_0 = (e_1 + e_2)/√2``: ``R(v_0) = 1`` is a
        change of 1 from the initial 0, so the iteration goes on to ``v_1 = e_1`` and
        ``λ = 2``."""
        from arbf._math.core.spectral import principal_axis

        X, lam1, lam2 = _two_axis_data(2.0, 0.0)
        assert (lam1, lam2) == (2.0, 0.0)
        v0 = np.zeros(X.shape[1])
        v0[:2] = 1.0
        lam, v = principal_axis(dbackend.asarray(X), None, xp=dbackend.xp, v0=v0)
        e1 = np.zeros(X.shape[1])
        e1[0] = 1.0
        assert lam == pytest.approx(2.0, rel=1e-15)
        np.testing.assert_allclose(v, e1, rtol=0, atol=1e-15)

    def test_float32_data(self, dbackend):
        """float32 data: the products run in float32 (the iterate is cast to X's dtype;
        torch refuses a float32 @ float64 product); λ and v to float32 accuracy."""
        from arbf._math.core.spectral import principal_axis

        X, lam1, lam2 = _two_axis_data(2.0, 1.0)
        assert (lam1, lam2) == (2.0, 0.5)
        v0 = np.zeros(X.shape[1])
        v0[:2] = [1.0, -1.0]
        Xb = dbackend.asarray(X.astype(np.float32))
        lam, v = principal_axis(Xb, None, xp=dbackend.xp, v0=v0, rtol=1e-6)
        assert isinstance(lam, float) and lam == pytest.approx(lam1, rel=1e-5)
        assert v.dtype == np.float64
        assert v[0] == pytest.approx(1.0, abs=1e-5) and abs(v[1]) < 1e-2


class TestPrincipalAxisZeroVariance:
    """Data of one repeated point (power-iteration branch): ``Cov v = 0`` at the first
    step, so ``(0.0, v_0/|v_0|)`` is returned -- the given start normalised, or the
    default start: the fixed vector ``default_rng(0).standard_normal(d)`` normalised,
    the same at every call (so the axis' orientation is reproducible)."""

    def test_returns_the_normalised_start(self, dbackend):
        from arbf._math.core.spectral import EIGH_MAX_FEATURES, principal_axis

        d = EIGH_MAX_FEATURES + 3
        X = dbackend.asarray(np.full((5, d), 2.5))
        v0 = np.linspace(-1.0, 2.0, d)
        lam, v = principal_axis(X, None, xp=dbackend.xp, v0=v0)
        assert lam == 0.0
        np.testing.assert_allclose(v, v0 / np.linalg.norm(v0), rtol=1e-15, atol=1e-18)
        start = np.random.default_rng(0).standard_normal(d)
        for _ in range(2):
            lam, v = principal_axis(X, None, xp=dbackend.xp)
            assert lam == 0.0
            np.testing.assert_allclose(v, start / np.linalg.norm(start), rtol=1e-15,
                                       atol=1e-18)  # fmt: skip


# ---------------------------------------------------------------------------------------
# core.distances.labelled_inertia
# ---------------------------------------------------------------------------------------


class TestLabelledInertiaWorkingMemory:
    """``labelled_inertia``: ``Σ_i w_i ||x_i - c_{l_i}||²`` for any given labels (not
    the nearest ones), at any chunk size, and its ``working_memory`` is validated (a
    positive number of MiB or ``"auto"``) -- on Dask, whose own chunks bound the memory,
    it is not read."""

    def test_values_and_refusals(self, dbackend):
        from arbf._math.core.distances import labelled_inertia

        rng = np.random.default_rng(8)
        X, C = rng.normal(size=(9, 3)), rng.normal(size=(4, 3))
        labels = np.array([3, 0, 0, 2, 1, 3, 3, 2, 0])
        w = rng.uniform(0.5, 2.0, size=9)
        sq = ((X - C[labels]) ** 2).sum(axis=1)
        args = (dbackend.asarray(X), dbackend.asarray(C), dbackend.asarray(labels))
        for wm in (None, 1e-6, "auto"):
            got = labelled_inertia(*args, None, xp=dbackend.xp, working_memory=wm)
            assert_close(got, sq.sum(), backend=dbackend, rtol=1e-13)
            got = labelled_inertia(*args, dbackend.asarray(w), xp=dbackend.xp,
                                   working_memory=wm)  # fmt: skip
            assert_close(got, sq @ w, backend=dbackend, rtol=1e-13)
        if dbackend.lazy:
            return
        msg = r"^working_memory must be a positive number of MiB or 'auto', got "
        for bad in (0, -1.0, math.nan, "lots"):
            with pytest.raises(ValueError, match=msg):
                labelled_inertia(*args, None, xp=dbackend.xp, working_memory=bad)
        with pytest.raises(TypeError, match=msg):
            labelled_inertia(*args, None, xp=dbackend.xp, working_memory=True)


class TestLinearAssignmentInputs:
    """``linear_assignment`` takes any 2-D array-like of real numbers (Python
    ``Fraction`` objects included: they are cast to float64 before the finiteness check)
    and solves a square matrix as given, so tied optima come out as SciPy's
    ``linear_sum_assignment`` returns them on these matrices (rows augmented in order)."""

    def test_exact_rationals(self):
        from fractions import Fraction

        from scipy.optimize import linear_sum_assignment

        from arbf._math.core.matching import linear_assignment

        cost = [[Fraction(1, 2), Fraction(1)], [Fraction(1), Fraction(0)],
                [Fraction(1, 3), Fraction(2)]]  # fmt: skip
        rows, cols = linear_assignment(cost)
        want = linear_sum_assignment(np.array(cost, dtype=np.float64))
        assert rows.tolist() == want[0].tolist() and cols.tolist() == want[1].tolist()

    @pytest.mark.parametrize(
        "cost",
        [[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[0.0] * 3] * 3],
        ids=["one-row-constant", "all-tied"],
    )
    def test_square_ties_as_scipy(self, cost):
        from scipy.optimize import linear_sum_assignment

        from arbf._math.core.matching import linear_assignment

        C = np.array(cost)
        rows, cols = linear_assignment(C)
        want = linear_sum_assignment(C)
        assert rows.tolist() == want[0].tolist() and cols.tolist() == want[1].tolist()
