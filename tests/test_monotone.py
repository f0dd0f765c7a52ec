"""The monotone regime of the centroid discrepancy (Theorems M and E), on every backend.

:func:`arbf.monotone_regime` certifies, from the data and a non-degenerate K-Means fixed
point c*, a temperature below which the discrepancy ``d(σ) = max_j ||μ_j(σ) − c*_j||`` of
the branch of RBF fixed points that continues c* is non-increasing as σ falls (σ₀ for
softmax, σ_e for entmax-1.5), with the bound ``d(σ) <= bound(σ)``.  The properties draw
well-separated weighted mixtures (:func:`tests.strategies.mixtures`), take c* =
``arbf.kmeans(tol=0)`` from the components' means on the backend, compute the branch with
the library on that backend (``arbf.anneal`` down a σ grid below σ₀, warm-started from c*,
no perturbation, no finish) and check the theorems' statements against it.

Examples per property (profile ``ci``): :data:`EXAMPLES` on NumPy, array-api-strict and
torch (free shapes, k 2–5, d 1–6, n 20–200), :data:`SLOW_EXAMPLES` on JAX and Dask (the
two shapes of ``strategies.SLOW_MIXTURE_SHAPES``).  A draw would be discarded
(Hypothesis ``assume``) if Lloyd from the means ended at a degenerate fixed point or the
certificate failed (``sigma0 = nan``); none was: with the ``ci`` profile every backend
kept all its draws (20 of 20 per property on NumPy, array-api-strict and torch, 4 of 4 on
JAX and Dask), and 300 softmax and 400 entmax-1.5 further random draws on NumPy were all
kept and passed.  Over those, ``d(σ₀)`` was at least ``1.9e-9 max|x|`` (median
``4.7e-4``), far above the rounding ``~1e-13 max|x|`` of the tolerances; the entmax
branch at 90 % of ``(Δ_min/2, σ_e]`` at least ``8e-9 max|x|``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, event, given, settings  # noqa: E402

import arbf  # noqa: E402
from arbf._math.core import monotone as core  # noqa: E402
from tests import reference as ref  # noqa: E402
from tests.strategies import SLOW, Mixture, mixtures  # noqa: E402

EPS = float(np.finfo(np.float64).eps)
#: Examples per property on the eager backends.
EXAMPLES = 20
#: Examples per property on JAX and Dask.
SLOW_EXAMPLES = 4
#: σ levels of the softmax grid below σ₀ (eager backends, JAX and Dask).
LEVELS, SLOW_LEVELS = 10, 8
#: The softmax grid ends where the exponential bound has fallen by this factor.
DROP = 1e6


def _run(backend: Any, strategy: Any, prop: Any) -> None:
    n = SLOW_EXAMPLES if backend.name in SLOW else EXAMPLES

    @settings(max_examples=n)
    @given(strategy)
    def inner(example: Any) -> None:
        prop(example)

    inner()


def _fixed_point(backend: Any, mix: Mixture) -> tuple[Any, Any, Any, np.ndarray]:
    """``(X, c*, w)`` on the backend and c* on the host: Lloyd (``arbf.kmeans``,
    ``tol=0``) from the components' means to its exact fixed point."""
    X = backend.asarray(mix.X)
    w = None if mix.w is None else backend.asarray(mix.w)
    km = arbf.kmeans(
        X, mix.means.shape[0], init=backend.asarray(mix.means), n_init=1, tol=0.0,
        max_iter=1000, sample_weight=w,
    )  # fmt: skip
    assume(km.converged)
    return X, km.centers, w, np.asarray(backend.to_numpy(km.centers), dtype=np.float64)


def _regime(X: Any, c: Any, w: Any, kind: str) -> arbf.MonotoneRegime:
    try:
        reg = arbf.monotone_regime(X, c, kind=kind, sample_weight=w)
    except ValueError:
        event("discarded: degenerate K-Means fixed point")
        assume(False)
        raise  # pragma: no cover - assume(False) raises
    return reg


def _branch(
    X: Any, c: Any, w: Any, c_h: np.ndarray, grid: np.ndarray, kind: str, max_iter: int
) -> np.ndarray:
    """The library's continuation from c* down ``grid``: ``max_j d_j`` per level (the
    path comes back on the host; ``c_h`` is c* there)."""
    a = arbf.anneal(
        X, c, kind=kind, schedule=[float(s) for s in grid], sample_weight=w,
        perturbation=0.0, finish=False, tol=1e-28, max_iter=max_iter,
    )  # fmt: skip
    assert np.all(a.n_iter_per_level < max_iter), a.n_iter_per_level  # every level converged
    return np.array([float(np.max(arbf.centroid_discrepancy(P, c_h))) for P in a.path])


class TestSoftmaxTheorem:
    """Theorem M on the branch computed by the library."""

    def test_monotone_and_bounded_below_sigma0(self, backend):
        def prop(mix: Mixture) -> None:
            X, c, w, c_h = _fixed_point(backend, mix)
            reg = _regime(X, c, w, "softmax")
            if not math.isfinite(reg.sigma0):
                event(f"discarded: {reg.reason}")
                assume(False)
            event("kept")
            s0, dm = reg.sigma0, reg.delta_min
            assert 0 < s0 < math.inf and reg.reason is None
            # geometric grid from σ₀ down to where A e^{-Δ/σ} has fallen by DROP
            s_lo = dm / (dm / s0 + math.log(DROP))
            grid = np.geomspace(s0, s_lo, SLOW_LEVELS if backend.name in SLOW else LEVELS)
            d = _branch(X, c, w, c_h, grid, "softmax", max_iter=2000)
            scale = mix.scale
            atol = 1e3 * EPS * scale + reg.centroid_residual
            rel = 1e3 * EPS * (1.0 + 4.0 * scale * scale / grid)
            # non-vacuous: at σ₀ the branch is far from c* (far above rounding)
            assert d[0] > 1e-10 * scale, (d[0], scale)
            # non-increasing as σ falls
            assert np.all(d[1:] <= d[:-1] * (1 + rel[1:]) + atol), d
            # d <= bound(σ) <= A e^{-Δ_min/σ}
            b = np.array([reg.bound(float(s)) for s in grid])
            assert np.all(np.isfinite(b)), b
            assert np.all(d <= b * (1 + rel) + atol), (d, b)
            assert np.all(b <= reg.rate_constant * np.exp(-dm / grid) * (1 + 1e-12))
            # the bound is of the right size: within a factor 10 of d at σ₀
            assert b[0] <= 10 * d[0]

        _run(backend, mixtures(backend=backend.name), prop)


class TestEntmaxTheorem:
    """Theorem E on the branch computed by the library."""

    def test_exact_zero_then_closed_form(self, backend):
        def prop(mix: Mixture) -> None:
            X, c, w, c_h = _fixed_point(backend, mix)
            reg = _regime(X, c, w, "entmax15")
            half, se, dm = reg.exact_sigma, reg.sigma0, reg.delta_min
            assert half == dm / 2 and se >= half
            scale = mix.scale
            r2 = 4.0 * scale * scale
            # every row one-hot, zero-weight rows included, below half the smallest margin
            # over all samples: there the library's sums are those of a hard pass
            margins = np.diff(np.sort(ref.sqdist(mix.X, c_h), axis=1)[:, :2], axis=1)
            all_hard = min(half, float(margins.min()) / 2)
            # below Δ_min/2 (less the rounding of a margin, ~eps R²): d == 0
            below = np.array([half * (1.0 - 1e3 * EPS * r2 / dm), 0.9 * half, 0.5 * all_hard])
            if reg.reason is None:
                event("kept")
                assert se > half
                fractions = [0.6, 0.2] if backend.name in SLOW else [0.9, 0.6, 0.3, 0.1]
                above = half + (se - half) * np.array(fractions)
            else:  # the smallest margin is tied: only d = 0 below Δ_min/2 is certified
                event(f"tied: {reg.reason}")
                above = np.zeros(0)
            grid = np.concatenate([above, below])
            # c* in the backend's own arithmetic: the library's entmax fixed point where
            # every row is one-hot (Lloyd's step, summed as the entmax pass sums)
            fp = arbf.rbf_kmeans(
                X, c, sigma=float(below[-1]), kind="entmax15", tol=0.0, max_iter=100,
                sample_weight=w,
            )  # fmt: skip
            assert fp.converged
            c_e = np.asarray(backend.to_numpy(fp.centers), dtype=np.float64)
            assert np.abs(c_e - c_h).max() <= 1e3 * EPS * scale
            d = _branch(X, fp.centers, w, c_e, grid, "entmax15", max_iter=20000)
            na = above.size
            # Theorem E.1: d = 0.  Exactly (bit for bit) where every row is one-hot; where
            # a zero-weight row is not, the library may sum in another order (rounding)
            exact = grid <= all_hard * (1 + 1e-12)
            assert np.all(d[exact] == 0.0), d
            atol = 1e3 * EPS * scale + reg.centroid_residual
            assert np.all(d[na:] <= atol), d
            assert np.all(d[1:] <= d[:-1] + atol), d  # nondecreasing in σ on (0, σ_e]
            if na:
                # the closed form of Theorem E, to the rounding of the margin
                u = 1.0 - half / above
                b = np.array([reg.bound(float(s)) for s in above])
                rtol = 1e5 * EPS * (1.0 + r2 / (above * u))
                assert np.all(np.abs(d[:na] - b) <= rtol * b + atol), (d[:na], b)
                assert d[0] > 1e3 * atol, (d[0], atol)  # non-vacuous

        _run(backend, mixtures(backend=backend.name), prop)


#: A 1-D fixed point: cells {0, 1, 2} and {10, …, 13}; the smallest margin, 78.75, is the
#: sample 10's (nearest 11.5, runner-up 1).
LINE_X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [13.0]])
LINE_C = np.array([[1.0], [11.5]])


def _reference_branch(X, c, sigma, kind, w=None, iters=20000):
    """The branch at σ by the independent reference: soft Lloyd iterations
    (:func:`tests.reference.soft_centroids`) from c* until the centers repeat."""
    mu = np.array(c, dtype=np.float64)
    for _ in range(iters):
        new, _ = ref.soft_centroids(X, mu, sigma, kind, w)
        if np.array_equal(new, mu):
            break
        mu = new
    return float(np.max(np.linalg.norm(mu - c, axis=1)))


class TestMonotoneRegime:
    """Values, the closed forms against an independent reference, and validation."""

    def test_values_on_a_line(self):
        soft = arbf.monotone_regime(LINE_X, LINE_C)
        assert (soft.kind, soft.delta_min, soft.exact_sigma) == ("softmax", 78.75, 39.375)
        assert soft.reason is None and soft.centroid_residual == 0.0
        assert 0 < soft.sigma0 < soft.exact_sigma
        ent = arbf.monotone_regime(LINE_X, LINE_C, kind="entmax15")
        assert ent.kind == "entmax15" and ent.reason is None
        assert ent.exact_sigma < ent.sigma0 < 2 * ent.exact_sigma
        # C = max(w ρ_m / N_m, w ρ_l / N_l) with ρ_m = |10 - 1| = 9, N_m = 3, ρ_l = 1.5, N_l = 4
        assert ent.onset_coefficient == 3.0
        assert math.isnan(ent.rate_constant) and math.isnan(soft.onset_coefficient)

    def test_softmax_bound_holds_on_the_reference_branch(self):
        reg = arbf.monotone_regime(LINE_X, LINE_C)
        ds = []
        for f in (1.0, 0.8, 0.6, 0.4):
            s = f * reg.sigma0
            d = _reference_branch(LINE_X, LINE_C, s, "softmax")
            b = reg.bound(s)
            assert d <= b <= 3 * d, (s, d, b)
            assert b <= reg.rate_constant * math.exp(-reg.delta_min / s) * (1 + 1e-12)
            ds.append(d)
        assert np.all(np.diff(ds) < 0)  # strictly decreasing as σ falls
        assert math.isnan(reg.bound(10 * reg.delta_min))  # (E) fails far above σ₀

    def test_entmax_closed_form_equals_the_reference_branch(self):
        reg = arbf.monotone_regime(LINE_X, LINE_C, kind="entmax15")
        half, se = reg.exact_sigma, reg.sigma0
        for s in (0.5 * half, half):
            assert _reference_branch(LINE_X, LINE_C, s, "entmax15") == 0.0 == reg.bound(s)
        prev = 0.0
        for f in (0.1, 0.4, 0.7, 1.0):
            s = half + f * (se - half)
            d = _reference_branch(LINE_X, LINE_C, s, "entmax15")
            assert reg.bound(s) == pytest.approx(d, rel=1e-9, abs=1e-14)
            assert d > prev
            prev = d
        assert math.isnan(reg.bound(1.01 * se))
        # the onset is quadratic with zero slope: d = C u² (1 + O(u))
        u = 1e-4
        assert reg.bound(half / (1 - u)) / (reg.onset_coefficient * u * u) == pytest.approx(
            1.0, abs=1e-3
        )

    def test_tied_smallest_margin(self):
        X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
        c = np.array([[1.0], [11.0]])  # the samples 2 and 10 both have the margin 80
        ent = arbf.monotone_regime(X, c, kind="entmax15")
        assert ent.sigma0 == ent.exact_sigma == 40.0 and "single sample" in ent.reason
        assert ent.bound(40.0) == 0.0 and math.isnan(ent.bound(40.5))
        soft = arbf.monotone_regime(X, c)
        assert soft.reason is None and 0 < soft.sigma0 < 40.0

    def test_one_center(self):
        X = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, -1.0]])
        reg = arbf.monotone_regime(X, X.mean(axis=0, keepdims=True))
        assert reg.sigma0 == reg.exact_sigma == math.inf and reg.bound(5.0) == 0.0

    def test_zero_weights_are_ignored(self):
        # a zero-weight sample, even one on the boundary, does not enter the map
        X = np.vstack([LINE_X, [[6.25]], [[100.0]]])
        w = np.array([1.0] * 7 + [0.0, 0.0])
        for kind in ("softmax", "entmax15"):
            a = arbf.monotone_regime(LINE_X, LINE_C, kind=kind)
            b = arbf.monotone_regime(X, LINE_C, kind=kind, sample_weight=w)
            assert a == b

    def test_weights_count_like_repeats(self):
        w = np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0])
        X2 = np.vstack([LINE_X, [[1.0]]])
        for kind in ("softmax", "entmax15"):
            a = arbf.monotone_regime(LINE_X, LINE_C, kind=kind, sample_weight=w)
            b = arbf.monotone_regime(X2, LINE_C, kind=kind)
            assert a.sigma0 == pytest.approx(b.sigma0, rel=1e-12)
            assert a.bound(0.9 * a.sigma0) == pytest.approx(b.bound(0.9 * a.sigma0), rel=1e-12)

    def test_same_result_on_every_backend(self, backend):
        for kind in ("softmax", "entmax15"):
            a = arbf.monotone_regime(LINE_X, LINE_C, kind=kind)
            b = arbf.monotone_regime(
                backend.asarray(LINE_X), backend.asarray(LINE_C), kind=kind,
                sample_weight=backend.asarray(np.ones(7)),
            )  # fmt: skip
            assert a == b

    def test_not_a_fixed_point(self):
        with pytest.raises(ValueError, match="weighted mean"):
            arbf.monotone_regime(LINE_X, LINE_C + 1e-6)
        with pytest.raises(ValueError, match="empty cell"):
            arbf.monotone_regime(LINE_X, np.array([[1.0], [11.5], [100.0]]))
        with pytest.raises(ValueError, match="equidistant"):
            X = np.array([[0.0, 0.0], [-2.0, 0.0], [1.0, 1.0], [1.0, -1.0]])
            arbf.monotone_regime(X, np.array([[-1.0, 0.0], [1.0, 0.0]]))
        with pytest.raises(ValueError, match="non-degenerate K-Means fixed point"):
            arbf.monotone_regime(LINE_X, LINE_C, sample_weight=np.eye(7)[3])

    def test_parameters(self):
        with pytest.raises(ValueError, match="kind"):
            arbf.monotone_regime(LINE_X, LINE_C, kind="hard")
        with pytest.raises(TypeError, match="kind"):
            arbf.monotone_regime(LINE_X, LINE_C, kind=1)
        with pytest.raises(ValueError, match="features"):
            arbf.monotone_regime(LINE_X, np.zeros((2, 2)))
        reg = arbf.monotone_regime(LINE_X, LINE_C)
        with pytest.raises(ValueError, match="sigma"):
            reg.bound(-1.0)
        with pytest.raises(TypeError, match="sigma"):
            reg.bound("1")
        assert reg.bound(0.0) == 0.0
        with pytest.raises(AttributeError):
            reg.sigma0 = 1.0  # type: ignore[misc]

    def test_inputs_not_modified(self):
        X, c = LINE_X.copy(), LINE_C.copy()
        X.flags.writeable = c.flags.writeable = False
        arbf.monotone_regime(X, c)
        assert np.array_equal(X, LINE_X) and np.array_equal(c, LINE_C)


def _lloyd(X: np.ndarray, C: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Lloyd's exact fixed point from C (reference steps until the centers repeat)."""
    for _ in range(200):
        new = ref.lloyd_step(X, C, w)
        if np.array_equal(new, C):
            break
        C = new
    return C


def _three_clusters(third: list[float], sample: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Three blobs at (0, 0), (10, 0) and ``third``, and one boundary ``sample`` (last)."""
    A = np.random.default_rng(0).normal(size=(6, 2)) * 0.3
    X = np.vstack([A, A + np.array([10.0, 0.0]), A + np.array(third), [sample]])
    return X, _lloyd(X, np.array([[0.0, 0.0], [10.0, 0.0], third]))


def _reference_fixed_point_at(X: np.ndarray, c: np.ndarray, sigma: float) -> np.ndarray:
    mu = c.copy()
    for _ in range(200_000):
        new, _ = ref.soft_centroids(X, mu, sigma, "entmax15")
        if np.array_equal(new, mu):
            break
        mu = new
    return mu


class TestCertificateDefinitions:
    """The certificate's sums against their definitions, the inequalities of Step 1 on
    random centers, and σ_e as the largest temperature of Theorem E's conditions."""

    def _case(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(7)
        M = np.array([[0.0, 0.0], [6.0, 0.0], [2.0, 5.0]])
        X = np.vstack([m + rng.normal(size=(10, 2)) for m in M])
        w = rng.uniform(0.5, 2.0, size=len(X))
        return X, _lloyd(X, M, w), w

    def test_sums_match_their_definitions(self):
        X, c, w = self._case()
        geo = core.Geometry(X, c, w)
        D = ref.sqdist(X, c)
        lab = D.argmin(1)
        k, n = c.shape[0], len(X)
        rho = np.sqrt(D)
        t, eps = 1.0 / (0.3 * geo.delta_min), 0.05
        h = 2 * eps * (rho[np.arange(n), lab] + rho.max(1)) + eps**2
        assert np.allclose(geo.h(eps), h, rtol=1e-14)
        for j in range(k):
            N = w[lab == j].sum()
            n_lo = N - sum(
                w[i] * math.exp(t * h[i]) * math.exp(-t * (D[i, m] - D[i, j]))
                for i in np.flatnonzero(lab == j) for m in range(k) if m != j
            )  # fmt: skip
            n_hi = N + sum(
                w[i] * math.exp(-t * (D[i, j] - D[i, lab[i]] - h[i]))
                for i in np.flatnonzero(lab != j)
            )
            pairs = [(i, D[i, j] - D[i, lab[i]], rho[i, j]) for i in np.flatnonzero(lab != j)]
            pairs += [
                (i, D[i, m] - D[i, j], rho[i, j])
                for i in np.flatnonzero(lab == j) for m in range(k) if m != j
            ]  # fmt: skip
            m_j = sum(w[i] * math.exp(-t * (g - h[i])) * r for i, g, r in pairs) / n_lo
            l_j = (4 * t / n_lo) * sum(
                w[i] * math.exp(-t * (g - h[i])) * (r + eps) * (rho[i].max() + eps)
                for i, g, r in pairs
            )
            assert geo.n_lower(t, eps)[j] == pytest.approx(n_lo, rel=1e-12)
            assert geo.n_upper(t, eps)[j] == pytest.approx(n_hi, rel=1e-12)
            assert geo.m_bound(t, eps)[0][j] == pytest.approx(m_j, rel=1e-12)
            assert geo.lipschitz(t, eps)[j] == pytest.approx(l_j, rel=1e-12)

    def test_step_one_inequalities_on_random_centers(self):
        """For μ in the ε-ball: the gaps move by at most h_i, N_j(μ) ∈ [N_j^-, N_j^+],
        ``||T_σ(μ)_j - c_j|| <= M_j`` and T is ``max_j L_j``-Lipschitz (reference map)."""
        X, c, w = self._case()
        geo = core.Geometry(X, c, w)
        rng = np.random.default_rng(3)
        D0 = ref.sqdist(X, c)
        lab = D0.argmin(1)
        for sigma_factor, eps in ((0.6, 0.3), (0.3, 0.1), (0.2, 0.6)):
            sigma = sigma_factor * geo.delta_min
            t = 1.0 / sigma
            n_lo, n_hi = geo.n_lower(t, eps), geo.n_upper(t, eps)
            m_j, lip = geo.m_bound(t, eps)[0], geo.lipschitz(t, eps).max()
            for _ in range(20):
                u = rng.normal(size=c.shape)
                mu = c + eps * u / np.linalg.norm(u, axis=1, keepdims=True) * rng.uniform(
                    0.5, 1.0, size=(len(c), 1)
                )
                D = ref.sqdist(X, mu)
                gap_mu = D - D[np.arange(len(X)), lab][:, None]
                gap_c = D0 - D0[np.arange(len(X)), lab][:, None]
                assert np.all(np.abs(gap_mu - gap_c) <= geo.h(eps)[:, None] * (1 + 1e-12))
                T, N = ref.soft_centroids(X, mu, sigma, "softmax", w)
                assert np.all((n_lo <= N * (1 + 1e-12)) & (N <= n_hi * (1 + 1e-12)))
                assert np.all(np.linalg.norm(T - c, axis=1) <= m_j * (1 + 1e-12))
                mu2 = mu + 1e-3 * eps * rng.normal(size=c.shape)
                T2, _ = ref.soft_centroids(X, mu2, sigma, "softmax", w)
                step = np.abs(np.linalg.norm(mu2 - mu, axis=1)).max()
                assert np.linalg.norm(T2 - T, axis=1).max() <= lip * step * (1 + 1e-6)

    def test_sigma_e_ends_where_the_third_center_could_enter(self):
        """Condition (i) binds: at σ_e the third gap of i*, less h(d(σ_e)), is 2σ_e."""
        X, c = _three_clusters([5.0, 8.0], [4.2, 2.5])
        reg = arbf.monotone_regime(X, c, kind="entmax15")
        se = reg.sigma0
        mu = _reference_fixed_point_at(X, c, se)
        d = float(np.max(np.linalg.norm(mu - c, axis=1)))
        assert reg.bound(se) == pytest.approx(d, rel=1e-9)
        D = ref.sqdist(X[-1:], c)[0]
        rho = np.sqrt(D)
        third = np.sort(D)[2] - D.min()
        h = 2 * d * (rho.min() + rho.max()) + d * d
        assert third - h == pytest.approx(2 * se, rel=1e-9)

    def test_sigma_e_ends_where_the_loop_gain_reaches_one(self):
        """Condition (ii) binds: at σ_e the loop gain bound of i*'s row is 1."""
        X, c = _three_clusters([5.0, 6.0], [4.5, 1.5])
        reg = arbf.monotone_regime(X, c, kind="entmax15")
        se, dm = reg.sigma0, reg.delta_min
        mu = _reference_fixed_point_at(X, c, se)
        D0, D = ref.sqdist(X[-1:], c)[0], ref.sqdist(X[-1:], mu)[0]
        nearest, runner = np.argsort(D0)[:2]
        p = float(ref.responsibilities(X[-1:], mu, se, "entmax15")[0, runner])
        lab = ref.sqdist(X, c).argmin(1)
        n_l, n_m = float(np.sum(lab == nearest)), float(np.sum(lab == runner))
        r_l2, r_m2 = D0[nearest], D0[runner]
        g = (D[runner] - D[nearest]) / (2 * se)
        s = math.sqrt(2 - g * g)
        dphi = ((s - g) / 2) * (1 + g / s)
        gain = dphi * (2 * r_m2 / n_m + 2 * r_l2 * n_l**2 / (n_l - p) ** 3) / dm
        assert gain == pytest.approx(1.0, abs=1e-6)


#: σ₀ (softmax), d(σ₀) on the branch and σ_e (entmax-1.5) on the data sets of
#: ``python -m arbf reproduce`` (seed 0, default sizes, c* from the run's k-means++ start),
#: as derived independently when the theorem was worked out.
REPRODUCE = {
    "blobs": (0.5351, 1.848e-03, 1.093),
    "anisotropic": (2.519, 2.342e-04, 6.239),
    "varied": (25.47, 8.652e-03, 45.31),
    "unbalanced": (8.186, 2.141e-02, 23.61),
    "moons": (4.702e-04, 3.022e-05, 1.352e-03),
    "circles": (1.59e-03, 1.176e-04, 4.014e-03),
    "highdim": (10.07, 5.433e-04, 30.21),
}


@pytest.mark.parametrize("name", list(REPRODUCE))
def test_not_vacuous_on_the_reproduce_data_sets(name):
    """σ₀ is where something moves: on every reproduce data set the softmax branch at σ₀
    is far from c* (``d(σ₀) >= 1e-7 max|x|``, more than 10⁸ roundings), and σ₀, σ_e and
    d(σ₀) are the values of the independent derivation."""
    from arbf._reproduce.protocols import make_problem, reference_fixed_point
    from arbf._reproduce.runner import DEFAULT

    X, _, Xh, _, inits = make_problem(name, xp=np, device=None, seed=0, settings=DEFAULT)
    ref_ = reference_fixed_point(X, inits[0], max_iter=DEFAULT.max_iter)
    c = ref_.centers_host
    soft = arbf.monotone_regime(X, c)
    ent = arbf.monotone_regime(X, c, kind="entmax15")
    s0, d0, se = REPRODUCE[name]
    assert soft.reason is None and ent.reason is None
    assert soft.sigma0 == pytest.approx(s0, rel=1e-3)
    assert ent.sigma0 == pytest.approx(se, rel=1e-3)
    assert ent.exact_sigma == soft.exact_sigma == pytest.approx(ref_.sigma_pred, rel=1e-9)
    fp = arbf.rbf_kmeans(X, c, sigma=soft.sigma0, kind="softmax", tol=1e-28, max_iter=2000)
    assert fp.converged
    d = float(np.max(arbf.centroid_discrepancy(fp.centers, c)))
    assert d == pytest.approx(d0, rel=1e-3)
    scale = float(np.abs(Xh).max())
    assert d >= 1e-7 * scale
    assert d <= soft.bound(soft.sigma0) <= 3 * d
