"""L_σ, F_σ and ∇F_σ against brute-force references, finite differences and bounds."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from arbf._math.core.soft import SoftStats
from arbf._math.seam import soft_stats as soft_stats_impl
from tests import reference as ref
from tests.backends import assert_close

KINDS = ["softmax", "entmax15", "hard"]


def _data(rng: np.random.Generator, n: int = 40, d: int = 3, k: int = 4):
    X = rng.normal(size=(n, d))
    C = X[:k] + 0.3 * rng.normal(size=(k, d))
    w = rng.uniform(0.2, 3.0, size=n)
    return X, C, w


def _reference(X, C, w, sigma, kind):
    """(R, L, F, J) by brute force in float64 NumPy (independent of arbf)."""
    D = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)
    J = float(np.sum(w * D.min(1)))
    if sigma == 0 or kind == "hard":
        R = np.eye(C.shape[0])[np.argmin(D, 1)]
        return R, J, J, J
    if kind == "softmax":
        from scipy.special import logsumexp, softmax

        R = softmax(-D / sigma, axis=1)
        F = float(np.sum(w * -sigma * logsumexp(-D / sigma, axis=1)))
    else:
        torch = pytest.importorskip("torch")
        entmax = pytest.importorskip("entmax")
        R = entmax.entmax15(torch.as_tensor(-D / sigma), dim=-1).numpy()
        H = 4.0 / 3.0 * np.sum(R - R**1.5, axis=1)
        F = float(np.sum(w * (np.sum(R * D, 1) - sigma * H)))
    L = float(np.sum(w * np.sum(R * D, 1)))
    return R, L, F, J


class TestObjectives:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("sigma", [0.0, 0.1, 2.0])
    def test_match_reference(self, backend, rng, kind, sigma):
        X, C, w = _data(rng)
        R, L, F, _ = _reference(X, C, w, sigma, kind)
        args = (backend.asarray(X), backend.asarray(C))
        kw = {"sigma": sigma, "kind": kind, "sample_weight": backend.asarray(w)}
        f64 = backend.xp.float64
        assert_close(arbf.soft_distortion(*args, **kw), L, backend=backend, rtol=1e-11, dtype=f64)
        assert_close(arbf.free_energy(*args, **kw), F, backend=backend, rtol=1e-11, dtype=f64)
        N = (w[:, None] * R).sum(0)
        grad = 2 * (N[:, None] * C - (w[:, None] * R).T @ X)
        assert_close(
            arbf.center_gradient(*args, **kw),
            grad,
            backend=backend,
            rtol=1e-10,
            atol=1e-11,
            dtype=f64,
        )

    @pytest.mark.parametrize("kind", KINDS)
    def test_unit_weights_by_default(self, backend, rng, kind):
        X, C, _ = _data(rng)
        _, L, F, _ = _reference(X, C, np.ones(len(X)), 0.5, kind)
        args = (backend.asarray(X), backend.asarray(C))
        assert_close(
            arbf.soft_distortion(*args, sigma=0.5, kind=kind), L, backend=backend, rtol=1e-11
        )
        assert_close(arbf.free_energy(*args, sigma=0.5, kind=kind), F, backend=backend, rtol=1e-11)

    def test_hard_equals_inertia(self, backend, rng):
        X, C, w = _data(rng)
        args = (backend.asarray(X), backend.asarray(C))
        J = backend.to_numpy(arbf.inertia(*args, sample_weight=backend.asarray(w)))
        for kind in KINDS:
            for f in (arbf.soft_distortion, arbf.free_energy):
                v = f(*args, sigma=0.0, kind=kind, sample_weight=backend.asarray(w))
                assert_close(v, J, backend=backend, rtol=1e-14)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_gradient_matches_finite_differences(self, rng, kind):
        X, C, w = _data(rng, n=25, d=2, k=3)
        sigma = 0.7
        g = np.asarray(arbf.center_gradient(X, C, sigma=sigma, kind=kind, sample_weight=w))
        h = 1e-6
        fd = np.zeros_like(C)
        for j in range(C.shape[0]):
            for c in range(C.shape[1]):
                E = np.zeros_like(C)
                E[j, c] = h
                fp = float(arbf.free_energy(X, C + E, sigma=sigma, kind=kind, sample_weight=w))
                fm = float(arbf.free_energy(X, C - E, sigma=sigma, kind=kind, sample_weight=w))
                fd[j, c] = (fp - fm) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)

    @pytest.mark.parametrize("kind", KINDS)
    def test_chunked_equals_unchunked(self, backend, rng, kind):
        X, C, w = _data(rng, n=61)
        args = (backend.asarray(X), backend.asarray(C))
        for f in (arbf.soft_distortion, arbf.free_energy, arbf.center_gradient):
            a = f(*args, sigma=0.4, kind=kind, sample_weight=backend.asarray(w))
            b = f(
                *args,
                sigma=0.4,
                kind=kind,
                sample_weight=backend.asarray(w),
                working_memory=1.5e-3,
            )
            assert_close(b, backend.to_numpy(a), backend=backend, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_extreme_sigma_values(self, backend, rng, kind, dtype):
        """L, F and ∇F at σ from 1e-8 to 1e3 times the squared scale equal the float64
        reference (of the same rounded data), to the dtype's precision."""
        X, C, w = _data(rng)
        scale = 1e3
        X, C, w = (X * scale).astype(dtype), (C * scale).astype(dtype), w.astype(dtype)
        Xd, Cd, wd = (a.astype(np.float64) for a in (X, C, w))
        args = (backend.asarray(X), backend.asarray(C))
        J = ref.inertia(Xd, Cd, wd)
        tol = 2e-4 if dtype == "float32" else 1e-9
        for rel in [1e3, 1e-3, 1e-8]:
            sigma = rel * scale**2
            kw = {"sigma": sigma, "kind": kind, "sample_weight": backend.asarray(w)}
            expected = {
                arbf.soft_distortion: ref.soft_distortion(Xd, Cd, sigma, kind, wd),
                arbf.free_energy: ref.free_energy(Xd, Cd, sigma, kind, wd),
                arbf.center_gradient: ref.gradient(Xd, Cd, sigma, kind, wd),
            }
            for f, e in expected.items():
                v = f(*args, **kw)
                backend.check_same_kind(v, dtype=backend.dtype(dtype))
                mag = J + sigma * float(wd.sum()) if f is not arbf.center_gradient else None
                atol = tol * (mag if mag is not None else float(np.abs(e).max()) + 1.0)
                np.testing.assert_allclose(backend.to_numpy(v), e, rtol=tol, atol=atol)
            if rel <= 1e-8:  # far below the gaps: the hard values (entmax exactly)
                L = float(backend.to_numpy(arbf.soft_distortion(*args, **kw)))
                assert L == pytest.approx(J, rel=1e-4 if dtype == "float32" else 1e-10)

    def test_float16_computed_in_float32(self, backend, rng):
        if not hasattr(backend.xp, "float16"):
            pytest.skip(f"{backend.name} has no float16")
        X, C, _ = _data(rng)
        v = arbf.free_energy(
            backend.asarray(X.astype(np.float16)), backend.asarray(C.astype(np.float16)), sigma=0.5
        )
        backend.check_same_kind(v, dtype=backend.xp.float32)
        _, _, F, _ = _reference(
            X.astype(np.float16).astype(float),
            C.astype(np.float16).astype(float),
            np.ones(len(X)),
            0.5,
            "softmax",
        )
        assert float(backend.to_numpy(v)) == pytest.approx(F, rel=1e-5)

    def test_soft_stats_impl(self, backend, rng):
        X, C, w = _data(rng)
        R, L, F, J = _reference(X, C, w, 0.3, "entmax15")
        st = soft_stats_impl(
            backend.asarray(X),
            backend.asarray(C),
            backend.asarray(w),
            sigma=0.3,
            kind="entmax15",
            xp=backend.xp,
        )
        assert isinstance(st, SoftStats)
        assert_close(st.sums, (w[:, None] * R).T @ X, backend=backend, atol=1e-12)
        assert_close(st.mass, (w[:, None] * R).sum(0), backend=backend, atol=1e-12)
        assert_close(st.soft_distortion, L, backend=backend, rtol=1e-12)
        assert_close(st.free_energy, F, backend=backend, rtol=1e-12)
        assert_close(st.inertia, J, backend=backend, rtol=1e-12)

    def test_invalid(self):
        X, C = np.zeros((3, 2)), np.zeros((2, 2))
        with pytest.raises(ValueError, match="sigma"):
            arbf.free_energy(X, C, sigma=-1.0)
        with pytest.raises(ValueError, match="kind"):
            arbf.soft_distortion(X, C, sigma=1.0, kind="entmax")
        with pytest.raises(ValueError, match="sample_weight"):
            arbf.center_gradient(X, C, sigma=1.0, sample_weight=np.ones(4))
        with pytest.raises(ValueError, match="NaN"):
            arbf.free_energy(np.array([[np.nan, 0.0]]), C, sigma=1.0)
