"""Tests written to kill survivors of the mutation run on the HEAD of 2026-12-02 in
``core.soft.soft_stats`` (the route for namespaces without ``take_along_axis``, the
temperature in the free energy) and the other modules that run covered completely
(docs/testing.md, "Mutation testing").  Values are checked against an independent
reference: a closed form, or the same function on the other route in plain NumPy.
"""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest

from arbf._math.core import soft

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _np(a) -> np.ndarray:
    """An array-api-strict array (on any of its devices) as NumPy."""
    return np.asarray(a.to_device(xps.Device("CPU_DEVICE")))


def _data(dtype: str = "float64"):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((37, 3)).astype(dtype)
    C = X[[0, 5, 9, 20]].copy()
    C[1] = C[0]  # an exact tie in every row's gaps to those two centers
    w = rng.uniform(0.0, 2.0, 37).astype(dtype)
    w[3] = 0.0
    return X, C, w


class TestSoftStatsWithoutTakeAlongAxis:
    """Namespaces without ``take_along_axis`` (Dask) gather ``D[i, l_i]`` with a one-hot
    mask over ``arange(k)`` on the data's device: the same statistics to the bit as the
    ``take_along_axis`` route (the gather of one entry and a sum of it with zeros are
    both exact)."""

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_same_statistics_on_a_second_device(self, kind, weighted, monkeypatch):
        X, C, w = _data()
        dev = xps.Device("device1")
        Xs, Cs = xps.asarray(X, device=dev), xps.asarray(C, device=dev)
        ws = xps.asarray(w, device=dev) if weighted else None

        def run():
            return soft.soft_stats(Xs, Cs, ws, sigma=0.7, kind=kind, xp=xps, working_memory=1)

        want = run()
        monkeypatch.setattr(soft, "has_take_along_axis", lambda xp: False)
        got = run()
        for a, b in zip(want, got, strict=True):
            assert b.device == dev
            np.testing.assert_array_equal(_np(a), _np(b))


class TestSoftStatsFreeEnergyTemperature:
    """``F = B - σ T`` uses σ as the gaps see it: clamped to the dtype's smallest normal
    number (so a σ below it gives the free energy of that σ, not of the raw one)."""

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_sigma_below_the_smallest_normal(self, dtype):
        # every row sits on a center that is duplicated: J = 0, each row's two tied
        # gaps are 0 and the others are >= 1, so T = n log 2 and F = -σ_eff n log 2
        C = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]], dtype=dtype)
        X = np.array([[0.0, 0.0]] * 6, dtype=dtype)
        tiny = float(np.finfo(dtype).smallest_normal)
        st = soft.soft_stats(X, C, None, sigma=tiny / 10, kind="softmax", xp=np)
        assert float(st.inertia) == 0.0
        np.testing.assert_allclose(float(st.entropy), 6 * np.log(2.0), rtol=1e-6)
        np.testing.assert_allclose(float(st.free_energy), -tiny * 6 * np.log(2.0), rtol=1e-5)


class TestSampleTermsLogSigmaGradient:
    """With ``log_sigma`` the scores are the product ``-G e^{-log σ}``, so the gradient
    with respect to ``log σ`` stays finite down to the clamp at the dtype's smallest
    normal σ (a quotient ``G / σ`` would bring ``σ²``, which underflows to 0 there).
    The reference: ``dF/d log σ`` in closed form for softmax with two centers."""

    @pytest.mark.parametrize("log_sigma", [-700.0, -80.0])
    def test_gradient_finite_at_the_smallest_sigma(self, log_sigma):
        torch = pytest.importorskip("torch")
        import array_api_compat.torch as xpt

        from arbf._math.core.terms import sample_terms

        X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 1e-19]], dtype=torch.float32)
        C = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float32)
        ls = torch.tensor(log_sigma, dtype=torch.float32, requires_grad=True)
        terms = sample_terms(X, C, None, kind="softmax", xp=xpt, log_sigma=ls)
        terms.distortion.sum().backward()
        assert ls.grad is not None and bool(torch.isfinite(ls.grad))
        # L_i = d_i + Σ_j r_ij G_ij: at σ ≈ 2.4e-38 every gap but the tie's is far
        # beyond the support, so L is flat in log σ: the gradient is exactly 0
        assert float(ls.grad) == 0.0


class TestFreeEnergyAtExtremes:
    """``F = s² B - σ T`` on the host (float64), exact where its value is representable:
    the closed forms below are worked out by hand."""

    def test_zero_base_keeps_a_tiny_sigma_term(self):
        # B = 0: F = -σ T exactly; σ / s² would underflow to 0 for s = 2**100
        assert soft.free_energy_at(0.0, 1.0, sigma=1e-300, scale=2.0**100) == -1e-300

    def test_scaled_base_beyond_the_range_with_a_finite_result(self):
        # s = 2: 4 B and σ T both overflow, F = 4 (B - σ T / 4) = 4 (1e308 - 0.875e308)
        got = soft.free_energy_at(1e308, 3.5, sigma=1e308, scale=2.0)
        np.testing.assert_allclose(got, 5e307, rtol=1e-15)

    def test_unit_scale_and_zero_entropy(self):
        assert soft.free_energy_at(3.0, 2.0, sigma=0.25, scale=1.0) == 2.5
        assert soft.free_energy_at(3.0, 0.0, sigma=0.25, scale=4.0) == 48.0
        assert soft.free_energy_at(3.0, 2.0, sigma=0.25, scale=4.0) == 47.5


class TestMeanRowsWithoutFloat64:
    """``mean_rows`` sums float32 in float64 only where the backend has float64: on JAX
    without 64-bit mode it takes the float32 mean, with no warning (JAX warns when asked
    for float64 there).  The reference: NumPy's float64 mean, to float32 rounding."""

    def test_float32_on_jax_without_x64(self):
        from arbf._math.core.distances import mean_rows
        from tests.test_mutants_core3 import _float32_on_jax_without_x64

        X = np.random.default_rng(2).standard_normal((300, 4)).astype(np.float32)
        got = _float32_on_jax_without_x64(mean_rows, X)
        np.testing.assert_allclose(got, X.astype(np.float64).mean(axis=0), rtol=0, atol=1e-6)


class TestDistancesEdges:
    """``core.distances`` where the suite's inputs did not reach: a single center, a call
    without precomputed norms, a namespace without ``clip``, and the clamp at 0 of the
    expanded squared distances.  The references are NumPy loops."""

    def test_min_margin_single_center_keeps_the_dtype(self):
        from arbf._math.core.distances import min_margin

        X = np.ones((4, 2), dtype=np.float32)
        got = min_margin(X, X[:1], xp=np)
        assert got.dtype == np.float32 and np.isinf(got)

    def test_nearest_without_precomputed_norms(self):
        from arbf._math.core.distances import nearest

        rng = np.random.default_rng(8)
        X, C = rng.standard_normal((50, 3)), rng.standard_normal((6, 3))
        want = np.argmin(((X[:, None, :] - C[None, :, :]) ** 2).sum(-1), axis=1)
        np.testing.assert_array_equal(nearest(X, C, xp=np), want)

    def test_sq_distances_never_negative(self):
        from arbf._math.core.distances import sq_distances

        rng = np.random.default_rng(9)
        X = 1e4 + rng.standard_normal((400, 3))
        D = sq_distances(X, X[:40], xp=np)
        raw = (X * X).sum(1)[:, None] + (X[:40] * X[:40]).sum(1)[None, :] - 2 * X @ X[:40].T
        assert raw.min() < 0  # the expansion cancels below 0 here
        assert D.min() >= 0
        ref = ((X[:, None, :] - X[None, :40, :]) ** 2).sum(-1)
        np.testing.assert_allclose(D, ref, atol=1e-7 * 1e8)

    def test_sq_distances_on_a_namespace_without_clip(self):
        import types

        from arbf._math.core.distances import sq_distances

        no_clip = types.SimpleNamespace(
            **{n: getattr(np, n) for n in dir(np) if not n.startswith("_") and n != "clip"}
        )
        rng = np.random.default_rng(10)
        X = 1e4 + rng.standard_normal((100, 3))
        got = sq_distances(X, X[:7], xp=no_clip)
        np.testing.assert_array_equal(got, sq_distances(X, X[:7], xp=np))
        assert got.dtype == X.dtype and got.min() >= 0
