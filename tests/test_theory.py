"""Property tests of the facts of SPEC §1 (Hypothesis, on every backend of the matrix).

Each property draws problems where the statement has content (:mod:`tests.strategies`:
k >= 2, distinct points, n up to 200, d up to 16, weights with zeros, σ from 1e-8 to 1e3
times the squared data scale, margins within 1 % of the entmax threshold) and compares the
library with the independent NumPy reference of :mod:`tests.reference`.  Examples per
property: ``strategies.EXAMPLES`` (25) on NumPy, array-api-strict and torch,
``strategies.SLOW_EXAMPLES`` (9, over three shapes) on JAX and Dask.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import arbf  # noqa: E402
from tests import reference as ref  # noqa: E402
from tests.backends import skip_unless_selected  # noqa: E402
from tests.strategies import (  # noqa: E402
    Problem,
    arrays,
    near_threshold,
    problems,
    problems_and_sigma,
    run,
)

SOFT_KINDS = ["softmax", "entmax15"]


def _have(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


def _np(backend: Any, x: Any) -> np.ndarray:
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _atol(p: Problem, sigma: float = 0.0) -> float:
    """Absolute tolerance for sums over the data: float64 rounding of terms of size
    (data scale)² + σ, summed over Σ w."""
    total = float(len(p.X) if p.w is None else p.w.sum())
    return 1e-10 * (float(p.D.max()) + sigma) * max(total, 1.0)


def _center_tol(p: Problem) -> float:
    return 1e-9 * (1.0 + float(np.abs(p.X).max()))


def _sigmas(p: Problem) -> Any:
    return st.floats(-8.0, 3.0).map(lambda u: p.scale2 * 10.0**u)


# ------------------------------------------------------------------------------------
# Lemma 1 and Theorem 2: the gradient, the soft Lloyd step, the gradient step
# ------------------------------------------------------------------------------------


class TestGradientAndSteps:
    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_values_against_the_reference(self, backend, kind):
        """∇F = 2Σ w r (μ − x); soft Lloyd = Σ w r x / N; the gradient step with
        ``lr="lloyd"`` (η_j = 1/(2N_j)) lands on it and a float ``lr`` is μ − lr ∇F."""

        def prop(p: Problem, sigma: float, lr: float) -> None:
            Xb, Cb, wb = arrays(backend, p)
            kw = {"sigma": sigma, "kind": kind, "sample_weight": wb}
            grad_ref = ref.gradient(p.X, p.C, sigma, kind, p.w)
            m_ref, N = ref.soft_centroids(p.X, p.C, sigma, kind, p.w)
            gscale = 1e-9 * (1.0 + np.abs(grad_ref).max() + N.max() * np.abs(p.C).max())
            np.testing.assert_allclose(
                _np(backend, arbf.center_gradient(Xb, Cb, **kw)), grad_ref, atol=gscale
            )
            soft = _np(backend, arbf.soft_lloyd_step(Xb, Cb, **kw))
            step = _np(backend, arbf.gradient_step(Xb, Cb, **kw))
            # compare where the mass is representable well (a softmax mass of 1e-300 is
            # a ratio of subnormals in any implementation)
            ok = N > 1e-200 * N.max()
            np.testing.assert_allclose(soft[ok], m_ref[ok], atol=_center_tol(p))
            np.testing.assert_allclose(step[ok], m_ref[ok], atol=_center_tol(p))
            np.testing.assert_array_equal(soft[N == 0], p.C[N == 0])  # no mass: stays
            lr_abs = lr / max(float(N.max()), 1e-300)
            fixed = _np(backend, arbf.gradient_step(Xb, Cb, lr=lr_abs, **kw))
            np.testing.assert_allclose(fixed, p.C - lr_abs * grad_ref, atol=lr_abs * gscale)

        strat = st.tuples(
            problems_and_sigma(backend=backend.name, lo=-6.0, hi=2.0), st.floats(0.01, 0.5)
        ).map(lambda t: (*t[0], t[1]))
        run(backend, strat, prop)

    @pytest.mark.parametrize("kind", [*SOFT_KINDS, "hard"])
    def test_sigma_zero_is_lloyds_step(self, backend, kind):
        def prop(p: Problem) -> None:
            Xb, Cb, wb = arrays(backend, p)
            expected = ref.lloyd_step(p.X, p.C, p.w)
            got = _np(backend, arbf.lloyd_step(Xb, Cb, sample_weight=wb))
            np.testing.assert_allclose(got, expected, atol=_center_tol(p))
            for step in (arbf.gradient_step, arbf.soft_lloyd_step):
                got = _np(backend, step(Xb, Cb, sigma=0.0, kind=kind, sample_weight=wb))
                np.testing.assert_allclose(got, expected, atol=_center_tol(p))

        run(backend, problems(backend=backend.name), prop)

    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_tiny_sigma_is_lloyds_step(self, backend, kind):
        """σ = 1e-8 × scale²: entmax-1.5 is exactly hard where every margin is >= 2σ
        (Theorem 4); softmax is within (k − 1) e^{−Δ/σ} (Theorem 3) on occupied cells."""

        def prop(p: Problem) -> None:
            sigma = 1e-8 * p.scale2
            Xb, Cb, wb = arrays(backend, p)
            got = _np(
                backend, arbf.gradient_step(Xb, Cb, sigma=sigma, kind=kind, sample_weight=wb)
            )
            lloyd = _np(backend, arbf.lloyd_step(Xb, Cb, sample_weight=wb))
            if kind == "entmax15":
                assume(p.margins().min() >= 2 * sigma * (1 + 1e-9))
                # the same centroids (to rounding: the soft pass sums by a product, the
                # hard pass by a segment sum; the compiled kernels agree to the bit)
                np.testing.assert_allclose(got, lloyd, rtol=1e-14, atol=1e-300)
            else:
                ww = np.ones(len(p.X)) if p.w is None else p.w
                occupied = np.bincount(np.argmin(p.D, 1), weights=ww, minlength=len(p.C)) > 0
                bound = (len(p.C) - 1) * np.exp(-p.margins().min() / sigma)
                tol = _center_tol(p) + bound * 1e3 * (1.0 + float(np.abs(p.X).max()))
                np.testing.assert_allclose(got[occupied], lloyd[occupied], atol=tol)

        run(backend, problems(backend=backend.name), prop)

    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_huge_sigma_is_the_weighted_mean(self, backend, kind):
        """As σ → ∞ every center's soft centroid tends to the weighted mean x̄: with
        δ = e^{(D_max − D_min)/σ} − 1 (softmax) or s(2√k + k s), s = D_max/(2σ)
        (entmax-1.5), |m_j − x̄| <= δ/(1 − δ) · Σ w |x − x̄| / Σ w."""

        def prop(p: Problem, u: float) -> None:
            sigma = p.scale2 * 10.0**u
            Xb, Cb, wb = arrays(backend, p)
            m = _np(
                backend, arbf.soft_lloyd_step(Xb, Cb, sigma=sigma, kind=kind, sample_weight=wb)
            )
            ww = np.ones(len(p.X)) if p.w is None else p.w
            xbar = (ww[:, None] * p.X).sum(0) / ww.sum()
            spread = float((ww * np.linalg.norm(p.X - xbar, axis=1)).sum() / ww.sum())
            D = p.D
            k = len(p.C)
            if kind == "softmax":
                delta = np.expm1((D.max() - D.min()) / sigma)
            else:
                s = D.max() / (2 * sigma)
                delta = s * (2 * np.sqrt(k) + k * s)
            assume(delta < 0.5)
            bound = delta / (1 - delta) * spread + _center_tol(p)
            assert np.linalg.norm(m - xbar, axis=1).max() <= bound

        strat = st.tuples(problems(backend=backend.name), st.floats(3.0, 9.0))
        run(backend, strat, prop)


# ------------------------------------------------------------------------------------
# Theorem 1 (Γ-convergence, checkable form) and monotonicity in σ at fixed μ
# ------------------------------------------------------------------------------------


def _objectives(backend: Any, p: Problem, sigma: float, kind: str) -> tuple:
    Xb, Cb, wb = arrays(backend, p)
    kw = {"sigma": sigma, "kind": kind, "sample_weight": wb}
    L = float(_np(backend, arbf.soft_distortion(Xb, Cb, **kw)))
    F = float(_np(backend, arbf.free_energy(Xb, Cb, **kw)))
    J = float(_np(backend, arbf.inertia(Xb, Cb, sample_weight=wb)))
    R = _np(backend, arbf.responsibilities(Xb, Cb, sigma=sigma, kind=kind))
    return L, F, J, R


class TestGammaConvergence:
    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_values_and_bounds(self, backend, kind):
        def prop(p: Problem, sigma: float) -> None:
            L, F, J, R = _objectives(backend, p, sigma, kind)
            tol = _atol(p, sigma)
            assert L == pytest.approx(ref.soft_distortion(p.X, p.C, sigma, kind, p.w), abs=tol)
            assert F == pytest.approx(ref.free_energy(p.X, p.C, sigma, kind, p.w), abs=tol)
            assert J == pytest.approx(ref.inertia(p.X, p.C, p.w), abs=tol)
            np.testing.assert_allclose(R, ref.responsibilities(p.X, p.C, sigma, kind), atol=1e-9)
            k = len(p.C)
            sw = float(len(p.X) if p.w is None else p.w.sum())
            if kind == "softmax":
                upper_l, upper_f = (k - 1) * sigma * sw / np.e, sigma * np.log(k) * sw
            else:
                upper_l, upper_f = 2 * sigma * sw, 4 / 3 * (1 - 1 / np.sqrt(k)) * sigma * sw
            assert -tol <= L - J <= upper_l + tol
            assert -tol <= J - F <= upper_f + tol

        run(backend, problems_and_sigma(backend=backend.name), prop)

    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_monotone_in_sigma(self, backend, kind):
        """At fixed μ, L − J, J − F and the off-nearest mass are nondecreasing in σ."""

        def prop(p: Problem, sigma: float, factor: float) -> None:
            near = np.argmin(p.D, axis=1)
            ww = np.ones(len(p.X)) if p.w is None else p.w
            vals = []
            for s in (sigma, sigma * factor):
                L, F, J, R = _objectives(backend, p, s, kind)
                off = float(np.sum(ww * (1 - R[np.arange(len(p.X)), near])))
                vals.append((L - J, J - F, off))
            tol = _atol(p, sigma * factor)
            for lo, hi in zip(vals[0], vals[1], strict=True):
                assert lo <= hi + tol

        strat = st.tuples(problems_and_sigma(backend=backend.name), st.floats(1.0, 100.0))
        run(backend, strat.map(lambda t: (*t[0], t[1])), prop)


# ------------------------------------------------------------------------------------
# Voronoi preservation; Theorem 3 (softmax tail); Theorem 4 (entmax exactly hard)
# ------------------------------------------------------------------------------------


class TestResponsibilityFacts:
    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_voronoi(self, backend, kind):
        def prop(p: Problem, sigma: float) -> None:
            Xb, Cb, _ = arrays(backend, p)
            R = _np(backend, arbf.responsibilities(Xb, Cb, sigma=sigma, kind=kind))
            hard = _np(backend, arbf.responsibilities(Xb, Cb, sigma=0.0))
            rows = np.arange(len(p.X))
            # exact on the library's own distances ...
            np.testing.assert_array_equal(R[rows, np.argmax(hard, 1)], R.max(1))
            # ... and against brute force wherever the top gap is not a rounding tie
            clear = p.margins() > 1e-9 * (1 + np.sort(p.D, 1)[:, 1])
            assert np.all(np.argmax(R, 1)[clear] == np.argmin(p.D, 1)[clear])

        run(backend, problems_and_sigma(backend=backend.name), prop)

    def test_softmax_tail(self, backend):
        def prop(p: Problem, sigma: float) -> None:
            Xb, Cb, _ = arrays(backend, p)
            R = _np(backend, arbf.responsibilities(Xb, Cb, sigma=sigma))
            bound = (len(p.C) - 1) * np.exp(-p.margins() / sigma)
            assert np.all(1 - R.max(1) <= bound + 1e-12)

        run(backend, problems_and_sigma(backend=backend.name), prop)

    def test_entmax_one_hot_exactly_at_the_threshold(self, backend):
        """Row i is one-hot iff Δ_i >= 2σ, read from the responsibilities themselves,
        with σ within 1 % of the row's threshold on either side."""

        def prop(p: Problem, sigma: float, i: int, eps: float) -> None:
            Xb, Cb, _ = arrays(backend, p)
            R = _np(backend, arbf.responsibilities(Xb, Cb, sigma=sigma, kind="entmax15"))
            assert (R[i].max() == 1.0) == (eps >= 0)
            one_hot = R.max(1) == 1.0
            gaps = p.margins()
            clear = np.abs(gaps - 2 * sigma) > 1e-9 * (1 + np.sort(p.D, 1)[:, 1])
            np.testing.assert_array_equal(one_hot[clear], (gaps >= 2 * sigma)[clear])

        run(backend, near_threshold(backend=backend.name), prop)

    def test_entmax_two_center_closed_form(self, backend):
        """k = 2: the runner-up gets p₂ = ((√(2 − g²) − g)/2)², g = Δ/(2σ) < 1."""

        def prop(p: Problem, sigma: float) -> None:
            Xb, Cb, _ = arrays(backend, p)
            R = _np(backend, arbf.responsibilities(Xb, Cb, sigma=sigma, kind="entmax15"))
            g = np.minimum(p.margins() / (2 * sigma), 1.0)
            p2 = ((np.sqrt(2 - g**2) - g) / 2) ** 2
            np.testing.assert_allclose(np.sort(R, 1)[:, 0], p2, atol=1e-9)
            np.testing.assert_allclose(R.sum(1), 1.0, atol=1e-12)

        shape = (40, 3, 2) if backend.name in ("jax", "dask") else None
        strat = problems_and_sigma(
            backend=backend.name, min_k=2, max_k=2, shape=shape, lo=-3, hi=1
        )
        run(backend, strat, prop)


# ------------------------------------------------------------------------------------
# autodiff: torch autograd and jax.grad agree with the closed forms
# ------------------------------------------------------------------------------------


def _closed_form_entmax_vjp(p: np.ndarray, dy: np.ndarray) -> np.ndarray:
    g = np.sqrt(p)
    return g * dy - g * (g * dy).sum(-1, keepdims=True) / g.sum(-1, keepdims=True)


_ad_examples = st.tuples(
    hnp.arrays(np.float64, (4, 5), elements=st.floats(-5, 5)),
    hnp.arrays(np.float64, (4, 5), elements=st.floats(-1, 1)),
)


@pytest.mark.skipif(not _have("torch"), reason="torch not installed")
class TestAutodiffTorch:
    @pytest.mark.parametrize("kind", SOFT_KINDS)
    @settings(max_examples=10)
    @given(example=problems_and_sigma(max_n=60, max_d=4, lo=-4, hi=2))
    def test_free_energy_gradient(self, kind, example):
        import torch

        p, sigma = example
        Ct = torch.tensor(p.C, requires_grad=True)
        wt = None if p.w is None else torch.tensor(p.w)
        F = arbf.free_energy(torch.tensor(p.X), Ct, sigma=sigma, kind=kind, sample_weight=wt)
        F.backward()
        expected = ref.gradient(p.X, p.C, sigma, kind, p.w)
        atol = 1e-9 * (1.0 + np.abs(expected).max())
        np.testing.assert_allclose(Ct.grad.numpy(), expected, atol=atol)

    @settings(max_examples=15)
    @given(example=_ad_examples)
    def test_entmax15_vjp(self, example):
        import torch

        z, dy = example
        for f in (arbf.entmax15, lambda t: arbf.entmax_bisect(t, alpha=1.5)):
            zt = torch.tensor(z, requires_grad=True)
            p = f(zt)
            (p * torch.tensor(dy)).sum().backward()
            expected = _closed_form_entmax_vjp(p.detach().numpy(), dy)
            np.testing.assert_allclose(zt.grad.numpy(), expected, atol=1e-10)

    @pytest.mark.parametrize("alpha", [1.25, 2.0, 3.0])
    def test_entmax_bisect_vjp_general_alpha(self, rng, alpha):
        # α-entmax Jacobian: g = p^(2-α) on the support; dz = g dy - g Σ(g dy) / Σ g
        import torch

        z, dy = rng.normal(size=(6, 5)) * 2, rng.normal(size=(6, 5))
        zt = torch.tensor(z, requires_grad=True)
        p = arbf.entmax_bisect(zt, alpha=alpha)
        (p * torch.tensor(dy)).sum().backward()
        pn = p.detach().numpy()
        g = np.power(pn, 2 - alpha, out=np.zeros_like(pn), where=pn > 0)
        expected = g * dy - g * (g * dy).sum(-1, keepdims=True) / g.sum(-1, keepdims=True)
        np.testing.assert_allclose(zt.grad.numpy(), expected, atol=1e-9)


@pytest.mark.skipif(not _have("jax"), reason="jax not installed")
class TestAutodiffJax:
    @pytest.mark.parametrize("kind", SOFT_KINDS)
    @settings(max_examples=8)
    @given(example=problems_and_sigma(shape=(40, 3, 4), lo=-4, hi=2))
    def test_free_energy_gradient(self, kind, example):
        skip_unless_selected("jax")
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp

        p, sigma = example
        wj = None if p.w is None else jnp.asarray(p.w)

        def F(c):
            return arbf.free_energy(jnp.asarray(p.X), c, sigma=sigma, kind=kind, sample_weight=wj)

        grad = np.asarray(jax.grad(F)(jnp.asarray(p.C)))
        expected = ref.gradient(p.X, p.C, sigma, kind, p.w)
        atol = 1e-9 * (1.0 + np.abs(expected).max())
        np.testing.assert_allclose(grad, expected, atol=atol)

    @settings(max_examples=5)
    @given(example=_ad_examples)
    def test_entmax15_vjp(self, example):
        skip_unless_selected("jax")
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp

        z, dy = example
        p, vjp = jax.vjp(arbf.entmax15, jnp.asarray(z))
        (dz,) = vjp(jnp.asarray(dy))
        np.testing.assert_allclose(
            np.asarray(dz), _closed_form_entmax_vjp(np.asarray(p), dy), atol=1e-10
        )


# ------------------------------------------------------------------------------------
# the spherical statements (metric="cosine"; docs/theory.md, "Spherical K-Means")
# ------------------------------------------------------------------------------------


def _sph_resp(p: Any, sigma: float, kind: str) -> np.ndarray:
    """Independent reference: softmax / entmax-1.5 of (cos − 1)/σ, or one-hot."""
    if sigma == 0:
        R = np.zeros_like(p.Dc)
        R[np.arange(len(p.Dc)), np.argmin(p.Dc, axis=1)] = 1.0
        return R
    z = -p.Dc / sigma
    if kind == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return ref.entmax15(z)


def _sph_arrays(backend: Any, p: Any) -> tuple:
    return (
        backend.asarray(p.X),
        backend.asarray(p.C),
        None if p.w is None else backend.asarray(p.w),
    )


def _sph_tol(p: Any, sigma: float = 0.0) -> float:
    total = float(len(p.X) if p.w is None else p.w.sum())
    return 1e-10 * (2.0 + sigma) * max(total, 1.0)


class TestSpherical:
    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_gamma_bounds(self, backend, kind):
        """Theorem 1 on the sphere: the objectives with Dᶜ = 1 − cos equal the reference
        and obey the Euclidean bounds with the same constants (they hold row by row for
        any values of D), uniformly on the compact set of unit centers."""
        from tests.strategies import spherical_and_sigma

        def prop(p: Any, sigma: float) -> None:
            Xb, Cb, wb = _sph_arrays(backend, p)
            kw = {"sigma": sigma, "kind": kind, "sample_weight": wb, "metric": "cosine"}
            L = float(_np(backend, arbf.soft_distortion(Xb, Cb, **kw)))
            F = float(_np(backend, arbf.free_energy(Xb, Cb, **kw)))
            J = float(_np(backend, arbf.inertia(Xb, Cb, sample_weight=wb, metric="cosine")))
            ww = np.ones(len(p.X)) if p.w is None else p.w
            R = _sph_resp(p, sigma, kind)
            tol = _sph_tol(p, sigma)
            assert J == pytest.approx(float(np.sum(ww * p.Dc.min(1))), abs=tol)
            assert L == pytest.approx(float(np.sum(ww * (R * p.Dc).sum(1))), abs=tol)
            k, sw = len(p.C), float(ww.sum())
            if kind == "softmax":
                upper_l, upper_f = (k - 1) * sigma * sw / np.e, sigma * np.log(k) * sw
            else:
                upper_l, upper_f = 2 * sigma * sw, 4 / 3 * (1 - 1 / np.sqrt(k)) * sigma * sw
            assert -tol <= L - J <= upper_l + tol
            assert -tol <= J - F <= upper_f + tol

        run(backend, spherical_and_sigma(backend=backend.name), prop)

    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_fixed_point(self, backend, kind):
        """Lemma 1 on the sphere: the Riemannian gradient (I − μμᵀ)∇F of F at unit μ is
        −N_j‖m_j‖ (I − μμᵀ) T_j with T_j = m_j/‖m_j‖ the spherical soft Lloyd step, so it
        vanishes exactly where μ_j = normalise(Σ w r x̂)."""
        from tests.strategies import spherical_and_sigma

        def prop(p: Any, sigma: float) -> None:
            Xb, Cb, wb = _sph_arrays(backend, p)
            kw = {"sigma": sigma, "kind": kind, "sample_weight": wb, "metric": "cosine"}
            g = _np(backend, arbf.center_gradient(Xb, Cb, **kw))
            T = _np(backend, arbf.soft_lloyd_step(Xb, Cb, **kw))
            ww = np.ones(len(p.X)) if p.w is None else p.w
            R = _sph_resp(p, sigma, kind)
            N = (ww[:, None] * R).sum(0)
            S = (ww[:, None] * R).T @ p.U
            V = p.V
            np.testing.assert_allclose(g, N[:, None] * V - S, atol=_sph_tol(p))
            live = np.linalg.norm(S, axis=1) > 1e-6 * max(N.max(), 1e-300)
            assume(live.any())
            np.testing.assert_allclose(T[live], S[live] / np.linalg.norm(S[live], axis=1)[:, None],
                                       atol=1e-9)  # fmt: skip
            tang = g - (g * V).sum(1, keepdims=True) * V
            tT = T - (T * V).sum(1, keepdims=True) * V
            expect = -np.linalg.norm(S, axis=1)[:, None] * tT
            np.testing.assert_allclose(tang[live], expect[live], atol=_sph_tol(p))

        run(backend, spherical_and_sigma(backend=backend.name), prop)

    @pytest.mark.parametrize("kind", [*SOFT_KINDS, "hard"])
    def test_gradient_step_is_the_spherical_lloyd_step(self, backend, kind):
        """Theorem 2 on the sphere: the ambient gradient step with η_j = 1/N_j followed by
        the projection is the spherical soft Lloyd step; at σ = 0 it is Dhillon & Modha's
        spherical K-Means update normalise(Σ_{l_i = j} w_i x̂_i)."""
        from tests.strategies import spherical_and_sigma

        def prop(p: Any, sigma: float) -> None:
            Xb, Cb, wb = _sph_arrays(backend, p)
            kw = {"kind": kind, "sample_weight": wb, "metric": "cosine"}
            for s in (sigma, 0.0):
                a = _np(backend, arbf.gradient_step(Xb, Cb, sigma=s, **kw))
                b = _np(backend, arbf.soft_lloyd_step(Xb, Cb, sigma=s, **kw))
                np.testing.assert_allclose(a, b, atol=1e-12)
            ww = np.ones(len(p.X)) if p.w is None else p.w
            lab = np.argmin(p.Dc, axis=1)
            S = np.zeros_like(p.V)
            np.add.at(S, lab, ww[:, None] * p.U)
            nrm = np.linalg.norm(S, axis=1, keepdims=True)
            expected = np.where(nrm > 0, S / np.where(nrm > 0, nrm, 1.0), p.V)
            got = _np(backend, arbf.lloyd_step(Xb, Cb, sample_weight=wb, metric="cosine"))
            clear = np.all(p.margins() > 1e-9)
            assume(clear)
            np.testing.assert_allclose(got, expected, atol=1e-9)
            np.testing.assert_allclose(a, expected, atol=1e-9)  # σ = 0 (last loop pass)

        run(backend, spherical_and_sigma(backend=backend.name), prop)

    def test_entmax_exact_below_the_cosine_threshold(self, backend):
        """Theorem 4 on the sphere: row i is one-hot iff cos_i(1) − cos_i(2) ≥ 2σ (σ
        within 1 % of the row's threshold on either side); so once
        σ ≤ min_i Δᶜ_i / 2 the entmax-1.5 spherical step is the spherical Lloyd step."""
        from tests.strategies import spherical_near_threshold

        def prop(p: Any, sigma: float, i: int, eps: float) -> None:
            Xb, Cb, wb = _sph_arrays(backend, p)
            R = _np(
                backend,
                arbf.responsibilities(Xb, Cb, sigma=sigma, kind="entmax15", metric="cosine"),
            )
            assert (R[i].max() == 1.0) == (eps >= 0)
            gaps = p.margins()
            clear = np.abs(gaps - 2 * sigma) > 1e-9
            np.testing.assert_array_equal((R.max(1) == 1.0)[clear], (gaps >= 2 * sigma)[clear])
            # below the smallest threshold the whole step is Lloyd's
            s_all = gaps.min() / 2 * (1 - 1e-6)
            assume(s_all > 1e-9)
            kw = {"sample_weight": wb, "metric": "cosine"}
            a = _np(backend, arbf.soft_lloyd_step(Xb, Cb, sigma=s_all, kind="entmax15", **kw))
            b = _np(backend, arbf.lloyd_step(Xb, Cb, **kw))
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)

        run(backend, spherical_near_threshold(backend=backend.name), prop)

    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_voronoi_and_tail(self, backend, kind):
        """argmax_j r_ij = argmax_j cos(x_i, μ_j) for every σ; softmax's off-nearest mass
        is at most (k − 1) e^{−Δᶜ_i/σ} (Theorem 3 on the sphere)."""
        from tests.strategies import spherical_and_sigma

        def prop(p: Any, sigma: float) -> None:
            Xb, Cb, _ = _sph_arrays(backend, p)
            R = _np(
                backend, arbf.responsibilities(Xb, Cb, sigma=sigma, kind=kind, metric="cosine")
            )
            np.testing.assert_allclose(R, _sph_resp(p, sigma, kind), atol=1e-9)
            clear = p.margins() > 1e-9
            assert np.all(np.argmax(R, 1)[clear] == np.argmin(p.Dc, 1)[clear])
            if kind == "softmax":
                bound = (len(p.C) - 1) * np.exp(-p.margins() / sigma)
                assert np.all(1 - R.max(1) <= bound + 1e-12)

        run(backend, spherical_and_sigma(backend=backend.name), prop)
