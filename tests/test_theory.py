"""Property tests of the facts of SPEC §1 (Hypothesis, on every backend of the matrix).

Each test draws small problems (data, centers, weights, σ) with ``hypothesis.extra.numpy``
and converts them with ``backend.asarray``.  The lazy/compiled backends (JAX, Dask) run
fewer examples than the eager ones, so the file stays fast on two cores.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import arbf  # noqa: E402

SOFT_KINDS = ["softmax", "entmax15"]


def _have(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


_SLOW = {"jax", "dask"}


@st.composite
def problems(
    draw: Any, *, max_k: int = 4, weighted: bool = True, shape: tuple | None = None
) -> tuple:
    """``(X, C, w)``: float64 data in [-10, 10], centers, weights in [0.1, 3] (or None).

    ``shape=(n, d, k)`` fixes the sizes (JAX compiles each primitive once per shape).
    """
    if shape is None:
        n, d, k = draw(st.integers(2, 9)), draw(st.integers(1, 3)), draw(st.integers(1, max_k))
    else:
        n, d, k = shape
    elems = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)
    X = draw(hnp.arrays(np.float64, (n, d), elements=elems))
    C = draw(hnp.arrays(np.float64, (k, d), elements=elems))
    w = None
    if weighted and draw(st.booleans()):
        w = draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.1, 3.0)))
    return X, C, w


#: temperatures log-spread over 1e-3 .. 1e2
sigmas = st.builds(lambda m, e: m * 10.0**e, st.floats(1.0, 9.99), st.integers(-3, 1))


def _with(problem: Any, *extra: Any) -> Any:
    """Examples ``(X, C, w, *extra)``."""
    return st.tuples(problem, *extra).map(lambda t: (*t[0], *t[1:]))


def _shape(backend: Any) -> tuple | None:
    """Fixed sizes on the compiled/lazy backends (one compilation), free elsewhere."""
    return (6, 2, 3) if backend.name in _SLOW else None


def run(backend: Any, strategy: Any, prop: Callable[..., None]) -> None:
    """Run ``prop(backend, *example)`` over Hypothesis examples of ``strategy``."""
    n = settings.default.max_examples
    if backend.name in _SLOW:
        n = min(n, 4)

    @settings(max_examples=n)
    @given(strategy)
    def inner(example: tuple) -> None:
        prop(backend, *example)

    inner()


def _sqd(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    return ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)


def _arrays(backend: Any, X: np.ndarray, C: np.ndarray, w: np.ndarray | None) -> tuple:
    return backend.asarray(X), backend.asarray(C), None if w is None else backend.asarray(w)


def _f(backend: Any, x: Any) -> float:
    return float(backend.to_numpy(x))


def _tol(X: np.ndarray, C: np.ndarray, w: np.ndarray | None, sigma: float = 0.0) -> float:
    scale = 1.0 + float(np.abs(X).max() + np.abs(C).max()) ** 2
    total = float(len(X) if w is None else w.sum())
    return 1e-11 * (scale + sigma) * total


# ------------------------------------------------------------------------------------
# Theorem 2: the gradient step with η_j = 1/(2 N_j) is the soft Lloyd step, and Lloyd's
# ------------------------------------------------------------------------------------


class TestGradientStepIsLloydStep:
    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_lloyd_rate_equals_soft_lloyd(self, backend, kind):
        def prop(backend, X, C, w, sigma):
            Xb, Cb, wb = _arrays(backend, X, C, w)
            grad = backend.to_numpy(
                arbf.center_gradient(Xb, Cb, sigma=sigma, kind=kind, sample_weight=wb)
            )
            R = backend.to_numpy(arbf.responsibilities(Xb, Cb, sigma=sigma, kind=kind))
            N = ((np.ones(len(X)) if w is None else w)[:, None] * R).sum(0)
            soft = backend.to_numpy(
                arbf.soft_lloyd_step(Xb, Cb, sigma=sigma, kind=kind, sample_weight=wb)
            )
            step = backend.to_numpy(
                arbf.gradient_step(Xb, Cb, sigma=sigma, kind=kind, sample_weight=wb)
            )
            np.testing.assert_array_equal(step, soft)
            big = N > 1e-3
            manual = C[big] - grad[big] / (2 * N[big, None])
            np.testing.assert_allclose(
                soft[big], manual, rtol=1e-9, atol=1e-9 * (1 + 20 / N[big].min(initial=1.0))
            )
            # a center with no mass has zero gradient and stays where it is
            zero = N == 0
            np.testing.assert_array_equal(soft[zero], C[zero])

        run(backend, _with(problems(shape=_shape(backend)), sigmas), prop)

    @pytest.mark.parametrize("kind", [*SOFT_KINDS, "hard"])
    def test_sigma_zero_is_lloyd(self, backend, kind):
        def prop(backend, X, C, w):
            Xb, Cb, wb = _arrays(backend, X, C, w)
            ref = backend.to_numpy(arbf.lloyd_step(Xb, Cb, sample_weight=wb))
            for step in (arbf.gradient_step, arbf.soft_lloyd_step):
                got = backend.to_numpy(step(Xb, Cb, sigma=0.0, kind=kind, sample_weight=wb))
                np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)

        run(backend, problems(shape=_shape(backend)), prop)

    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_small_sigma_is_lloyd(self, backend, kind):
        # entmax: exactly hard once σ <= min Δ / 2 (Theorem 4); softmax: within e^{-Δ/σ}
        def prop(backend, X, C, w):
            D = np.sort(_sqd(X, C), axis=1)
            gap = float((D[:, 1] - D[:, 0]).min()) if C.shape[0] > 1 else 1.0
            assume(gap > 1e-6 * (1 + D.max()))
            sigma = 0.49 * gap if kind == "entmax15" else gap / 60.0
            Xb, Cb, wb = _arrays(backend, X, C, w)
            ref = backend.to_numpy(arbf.lloyd_step(Xb, Cb, sample_weight=wb))
            got = backend.to_numpy(
                arbf.gradient_step(Xb, Cb, sigma=sigma, kind=kind, sample_weight=wb)
            )
            if kind == "softmax":
                # softmax never empties a cell: a center with no Lloyd cell still gets a
                # (tiny) mass and moves to its soft centroid, so compare the occupied cells
                occupied = np.bincount(np.argmin(_sqd(X, C), 1), minlength=C.shape[0]) > 0
                got, ref = got[occupied], ref[occupied]
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * (1 + np.abs(X).max()))

        run(backend, problems(shape=_shape(backend)), prop)


# ------------------------------------------------------------------------------------
# Theorem 1 (Γ-convergence, checkable form) and monotonicity in σ
# ------------------------------------------------------------------------------------


def _objectives(backend: Any, X: Any, C: Any, w: Any, sigma: float, kind: str) -> tuple:
    Xb, Cb, wb = _arrays(backend, X, C, w)
    L = _f(backend, arbf.soft_distortion(Xb, Cb, sigma=sigma, kind=kind, sample_weight=wb))
    F = _f(backend, arbf.free_energy(Xb, Cb, sigma=sigma, kind=kind, sample_weight=wb))
    J = _f(backend, arbf.inertia(Xb, Cb, sample_weight=wb))
    R = backend.to_numpy(arbf.responsibilities(Xb, Cb, sigma=sigma, kind=kind))
    return L, F, J, R


class TestGammaConvergence:
    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_bounds(self, backend, kind):
        def prop(backend, X, C, w, sigma):
            L, F, J, _ = _objectives(backend, X, C, w, sigma, kind)
            k = C.shape[0]
            sw = float(len(X) if w is None else w.sum())
            if kind == "softmax":
                upper_l, upper_f = (k - 1) * sigma * sw / np.e, sigma * np.log(k) * sw
            else:
                upper_l, upper_f = 2 * sigma * sw, 4 / 3 * (1 - 1 / np.sqrt(k)) * sigma * sw
            tol = _tol(X, C, w, sigma)
            assert -tol <= L - J <= upper_l + tol
            assert -tol <= J - F <= upper_f + tol

        run(backend, _with(problems(shape=_shape(backend)), sigmas), prop)

    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_monotone_in_sigma(self, backend, kind):
        # at fixed μ, L - J, J - F and the off-nearest mass are nondecreasing in σ
        def prop(backend, X, C, w, sigma, factor):
            near = np.argmin(_sqd(X, C), axis=1)
            ww = np.ones(len(X)) if w is None else w
            vals = []
            for s in (sigma, sigma * factor):
                L, F, J, R = _objectives(backend, X, C, w, s, kind)
                off = float(np.sum(ww * (1 - R[np.arange(len(X)), near])))
                vals.append((L - J, J - F, off))
            tol = _tol(X, C, w, sigma * factor)
            for lo, hi in zip(vals[0], vals[1], strict=True):
                assert lo <= hi + tol

        run(
            backend,
            _with(problems(shape=_shape(backend)), sigmas, st.floats(1.0, 100.0)),
            prop,
        )


# ------------------------------------------------------------------------------------
# Voronoi preservation; Theorem 3 (softmax tail); Theorem 4 (entmax exactly hard)
# ------------------------------------------------------------------------------------


class TestResponsibilityFacts:
    @pytest.mark.parametrize("kind", SOFT_KINDS)
    def test_voronoi(self, backend, kind):
        def prop(backend, X, C, _w, sigma):
            Xb, Cb, _ = _arrays(backend, X, C, None)
            R = backend.to_numpy(arbf.responsibilities(Xb, Cb, sigma=sigma, kind=kind))
            hard = backend.to_numpy(arbf.responsibilities(Xb, Cb, sigma=0.0))
            rows = np.arange(len(X))
            # exact on the library's own distances ...
            np.testing.assert_array_equal(R[rows, np.argmax(hard, 1)], R.max(1))
            # ... and against brute-force distances wherever the top gap is not a rounding tie
            D = _sqd(X, C)
            Ds = np.sort(D, axis=1)
            clear = (Ds[:, 1] - Ds[:, 0] > 1e-9 * (1 + Ds[:, 1])) if C.shape[0] > 1 else rows >= 0
            assert np.all(np.argmax(R, 1)[clear] == np.argmin(D, 1)[clear])

        run(backend, _with(problems(shape=_shape(backend)), sigmas), prop)

    def test_softmax_tail(self, backend):
        def prop(backend, X, C, _w, sigma):
            assume(C.shape[0] > 1)
            Xb, Cb, _ = _arrays(backend, X, C, None)
            R = backend.to_numpy(arbf.responsibilities(Xb, Cb, sigma=sigma))
            Ds = np.sort(_sqd(X, C), axis=1)
            bound = (C.shape[0] - 1) * np.exp(-(Ds[:, 1] - Ds[:, 0]) / sigma)
            assert np.all(1 - R.max(1) <= bound + 1e-9)

        run(backend, _with(problems(shape=_shape(backend)), sigmas), prop)

    def test_entmax_one_hot_iff_gap_at_least_two_sigma(self, backend):
        def prop(backend, X, C, _w, sigma):
            assume(C.shape[0] > 1)
            Xb, Cb, _ = _arrays(backend, X, C, None)
            R = backend.to_numpy(arbf.responsibilities(Xb, Cb, sigma=sigma, kind="entmax15"))
            Ds = np.sort(_sqd(X, C), axis=1)
            gap = Ds[:, 1] - Ds[:, 0]
            clear = np.abs(gap - 2 * sigma) > 1e-9 * (1 + Ds[:, 1])
            one_hot = R.max(1) == 1.0
            np.testing.assert_array_equal(one_hot[clear], (gap >= 2 * sigma)[clear])
            # two-center closed form for the runner-up: ((sqrt(2 - g^2) - g)/2)^2
            if C.shape[0] == 2:
                g = np.minimum(gap / (2 * sigma), 1.0)
                p2 = ((np.sqrt(2 - g**2) - g) / 2) ** 2
                np.testing.assert_allclose(np.sort(R, 1)[:, 0], p2, atol=1e-7)

        run(backend, _with(problems(shape=_shape(backend)), sigmas), prop)


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
    @given(problem=problems(), sigma=sigmas)
    def test_free_energy_gradient(self, kind, problem, sigma):
        import torch

        X, C, w = problem
        Ct = torch.tensor(C, requires_grad=True)
        wt = None if w is None else torch.tensor(w)
        F = arbf.free_energy(torch.tensor(X), Ct, sigma=sigma, kind=kind, sample_weight=wt)
        F.backward()
        expected = arbf.center_gradient(X, C, sigma=sigma, kind=kind, sample_weight=w)
        np.testing.assert_allclose(Ct.grad.numpy(), expected, rtol=1e-8, atol=1e-8 * _tol(X, C, w))

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
    @given(problem=problems(shape=(7, 2, 3)), sigma=sigmas)
    def test_free_energy_gradient(self, kind, problem, sigma):
        import jax
        import jax.numpy as jnp

        X, C, w = problem
        wj = None if w is None else jnp.asarray(w)

        def F(c):
            return arbf.free_energy(jnp.asarray(X), c, sigma=sigma, kind=kind, sample_weight=wj)

        grad = np.asarray(jax.grad(F)(jnp.asarray(C)))
        expected = arbf.center_gradient(X, C, sigma=sigma, kind=kind, sample_weight=w)
        np.testing.assert_allclose(grad, expected, rtol=1e-8, atol=1e-8 * _tol(X, C, w))

    @settings(max_examples=5)
    @given(example=_ad_examples)
    def test_entmax15_vjp(self, example):
        import jax
        import jax.numpy as jnp

        z, dy = example
        p, vjp = jax.vjp(arbf.entmax15, jnp.asarray(z))
        (dz,) = vjp(jnp.asarray(dy))
        np.testing.assert_allclose(
            np.asarray(dz), _closed_form_entmax_vjp(np.asarray(p), dy), atol=1e-10
        )
