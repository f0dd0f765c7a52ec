"""Soft Lloyd and gradient steps: references, the Lloyd limit, empty centers, errors."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from tests import reference as ref
from tests.backends import assert_close

KINDS = ["softmax", "entmax15", "hard"]


def _data(rng: np.random.Generator, n: int = 40, d: int = 2, k: int = 3):
    X = rng.normal(size=(n, d))
    C = X[:k] + 0.3 * rng.normal(size=(k, d))
    w = rng.uniform(0.2, 3.0, size=n)
    return X, C, w


def _soft_centroids(X, C, w, sigma, kind):
    D = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)
    if sigma == 0 or kind == "hard":
        R = np.eye(C.shape[0])[np.argmin(D, 1)]
    elif kind == "softmax":
        from scipy.special import softmax

        R = softmax(-D / sigma, axis=1)
    else:
        torch = pytest.importorskip("torch")
        entmax = pytest.importorskip("entmax")
        R = entmax.entmax15(torch.as_tensor(-D / sigma), dim=-1).numpy()
    Rw = R * w[:, None]
    N = Rw.sum(0)
    M = np.where(N[:, None] > 0, Rw.T @ X / np.where(N > 0, N, 1)[:, None], C)
    return M, N, Rw.T @ X


class TestSoftLloydStep:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("sigma", [0.0, 0.05, 1.0])
    def test_matches_reference(self, backend, rng, kind, sigma):
        X, C, w = _data(rng)
        M, _, _ = _soft_centroids(X, C, w, sigma, kind)
        got = arbf.soft_lloyd_step(
            backend.asarray(X),
            backend.asarray(C),
            sigma=sigma,
            kind=kind,
            sample_weight=backend.asarray(w),
        )
        assert_close(got, M, backend=backend, rtol=1e-11, atol=1e-12, dtype=backend.xp.float64)

    @pytest.mark.parametrize("kind", KINDS)
    def test_sigma_zero_is_lloyd_step(self, backend, rng, kind):
        X, C, w = _data(rng)
        args = (backend.asarray(X), backend.asarray(C))
        ref = backend.to_numpy(arbf.lloyd_step(*args, sample_weight=backend.asarray(w)))
        for step in (arbf.soft_lloyd_step, arbf.gradient_step):
            got = step(*args, sigma=0.0, kind=kind, sample_weight=backend.asarray(w))
            assert_close(got, ref, backend=backend, rtol=1e-15, atol=1e-15)

    def test_entmax_below_half_gap_is_lloyd_step(self, backend):
        # two tight clusters; min gap Δ is large, so σ < Δ/2 makes entmax exactly hard
        rng = np.random.default_rng(3)
        X = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))])
        C = np.array([[0.2, 0.0], [4.8, 5.1]])
        args = (backend.asarray(X), backend.asarray(C))
        ref = backend.to_numpy(arbf.lloyd_step(*args))
        got = arbf.soft_lloyd_step(*args, sigma=1.0, kind="entmax15")
        assert_close(got, ref, backend=backend, rtol=1e-14, atol=1e-15)

    def test_empty_center_keeps_position(self, backend, rng):
        X, _, _ = _data(rng)
        C = np.array([[0.0, 0.0], [1e3, 1e3]])
        for kind in KINDS:
            got = backend.to_numpy(
                arbf.soft_lloyd_step(backend.asarray(X), backend.asarray(C), sigma=0.01, kind=kind)
            )
            np.testing.assert_array_equal(got[1], C[1])
            np.testing.assert_allclose(got[0], X.mean(0), rtol=1e-12)

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_extreme_sigma_values(self, backend, rng, dtype):
        """σ = 1e-8 gives Lloyd's step (the occupied cells; entmax exactly hard), σ = 1e3
        the soft centroids of nearly uniform responsibilities, i.e. near the mean."""
        X, C, _ = _data(rng)
        Xd, Cd = X.astype(dtype).astype(np.float64), C.astype(dtype).astype(np.float64)
        occupied = np.bincount(np.argmin(ref.sqdist(Xd, Cd), 1), minlength=len(C)) > 0
        tol = 1e-4 if dtype == "float32" else 1e-11
        for kind in ["softmax", "entmax15"]:
            for sigma in [1e3, 1e-8]:
                got = arbf.soft_lloyd_step(
                    backend.asarray(X.astype(dtype)),
                    backend.asarray(C.astype(dtype)),
                    sigma=sigma,
                    kind=kind,
                )
                backend.check_same_kind(got, dtype=backend.dtype(dtype))
                expected, _ = ref.soft_centroids(Xd, Cd, sigma, kind)
                if sigma < 1:
                    np.testing.assert_allclose(
                        expected[occupied], ref.lloyd_step(Xd, Cd)[occupied], atol=tol
                    )
                else:
                    assert np.abs(expected - Xd.mean(0)).max() < 0.02
                np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=tol, atol=tol)


class TestGradientStep:
    @pytest.mark.parametrize("kind", KINDS)
    def test_lloyd_rate_lands_on_soft_centroid(self, backend, rng, kind):
        X, C, w = _data(rng)
        M, _, _ = _soft_centroids(X, C, w, 0.5, kind)
        got = arbf.gradient_step(
            backend.asarray(X),
            backend.asarray(C),
            sigma=0.5,
            kind=kind,
            lr="lloyd",
            sample_weight=backend.asarray(w),
        )
        assert_close(got, M, backend=backend, rtol=1e-11, atol=1e-12)

    @pytest.mark.parametrize("kind", KINDS)
    def test_float_rate(self, backend, rng, kind):
        X, C, w = _data(rng)
        _, N, S = _soft_centroids(X, C, w, 0.5, kind)
        expected = C - 0.01 * 2 * (N[:, None] * C - S)
        got = arbf.gradient_step(
            backend.asarray(X),
            backend.asarray(C),
            sigma=0.5,
            kind=kind,
            lr=0.01,
            sample_weight=backend.asarray(w),
        )
        assert_close(got, expected, backend=backend, rtol=1e-11, atol=1e-12)

    @pytest.mark.parametrize(
        ("lr", "exc"),
        [
            ("fast", ValueError),
            (0.0, ValueError),
            (-1.0, ValueError),
            (float("inf"), ValueError),
            (None, TypeError),
            (True, TypeError),
        ],
    )
    def test_invalid_lr(self, lr, exc):
        with pytest.raises(exc, match="lr"):
            arbf.gradient_step(np.zeros((3, 2)), np.zeros((2, 2)), sigma=1.0, lr=lr)

    def test_invalid_sigma_kind(self):
        with pytest.raises(ValueError, match="sigma"):
            arbf.gradient_step(np.zeros((3, 2)), np.zeros((2, 2)), sigma=-0.1)
        with pytest.raises(ValueError, match="kind"):
            arbf.soft_lloyd_step(np.zeros((3, 2)), np.zeros((2, 2)), sigma=1.0, kind="x")
