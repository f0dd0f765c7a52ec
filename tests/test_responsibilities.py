"""Responsibilities: softmax, entmax-1.5 and hard maps of -D/σ, chunked over rows."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from arbf._math.core.responsibilities import from_distances as responsibilities_impl
from tests import reference as ref
from tests.backends import assert_close

KINDS = ["softmax", "entmax15", "hard"]


def _data(rng: np.random.Generator, n: int = 30, d: int = 3, k: int = 4):
    X = rng.normal(size=(n, d))
    C = X[:k] + 0.1 * rng.normal(size=(k, d))
    return X, C


def _sqd(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    return ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)


def _softmax_ref(D: np.ndarray, sigma: float) -> np.ndarray:
    z = -D / sigma
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _entmax_ref(D: np.ndarray, sigma: float) -> np.ndarray:
    torch = pytest.importorskip("torch")
    entmax = pytest.importorskip("entmax")
    return entmax.entmax15(torch.as_tensor(-D / sigma), dim=-1).numpy()


class TestResponsibilities:
    @pytest.mark.parametrize("sigma", [0.05, 1.0, 30.0])
    def test_softmax_matches_reference(self, backend, rng, sigma):
        X, C = _data(rng)
        R = arbf.responsibilities(backend.asarray(X), backend.asarray(C), sigma=sigma)
        assert_close(
            R,
            _softmax_ref(_sqd(X, C), sigma),
            backend=backend,
            atol=1e-12,
            rtol=1e-10,
            dtype=backend.xp.float64,
        )

    @pytest.mark.parametrize("sigma", [0.05, 1.0, 30.0])
    def test_entmax_matches_reference(self, backend, rng, sigma):
        X, C = _data(rng)
        R = arbf.responsibilities(
            backend.asarray(X), backend.asarray(C), sigma=sigma, kind="entmax15"
        )
        assert_close(
            R,
            _entmax_ref(_sqd(X, C), sigma),
            backend=backend,
            atol=1e-12,
            rtol=1e-10,
            dtype=backend.xp.float64,
        )

    @pytest.mark.parametrize("kind", KINDS)
    def test_hard_and_sigma_zero_are_one_hot_argmin(self, backend, kind):
        # ties go to the lowest index: x = 1 is equidistant from 0 and 2
        X = np.array([[0.0], [1.0], [3.0], [2.1]])
        C = np.array([[0.0], [2.0], [2.0]])
        expected = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]], dtype=float)
        R = arbf.responsibilities(backend.asarray(X), backend.asarray(C), sigma=0.0, kind=kind)
        assert_close(R, expected, backend=backend, rtol=0)
        R = arbf.responsibilities(backend.asarray(X), backend.asarray(C), sigma=1.0, kind="hard")
        assert_close(R, expected, backend=backend, rtol=0)

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_simplex_and_voronoi(self, backend, rng, kind, dtype):
        X, C = _data(rng)
        X, C = X.astype(dtype), C.astype(dtype)
        for sigma in [1e3, 1.0, 1e-3, 1e-8]:
            R = arbf.responsibilities(
                backend.asarray(X), backend.asarray(C), sigma=sigma, kind=kind
            )
            backend.check_same_kind(R, dtype=backend.dtype(dtype))
            r = backend.to_numpy(R)
            expected = ref.responsibilities(
                X.astype(np.float64), C.astype(np.float64), sigma, kind
            )
            np.testing.assert_allclose(r, expected, atol=2e-6 if dtype == "float32" else 1e-12)
            assert np.all(r >= 0)
            np.testing.assert_allclose(r.sum(1), 1.0, rtol=1e-5 if dtype == "float32" else 1e-13)
            # Voronoi: the nearest center carries the largest responsibility
            near = np.argmin(_sqd(X.astype(np.float64), C.astype(np.float64)), axis=1)
            assert np.all(r[np.arange(len(r)), near] >= r.max(1) * (1 - 1e-6))

    @pytest.mark.parametrize("sigma", [0.2, 0.5, 1.0])
    def test_entmax_one_hot_iff_gap_at_least_two_sigma(self, backend, sigma):
        # x at 0, centers at 0 and c: D = (0, c^2), gap Δ = c^2
        gaps = sigma * np.array([0.1, 0.5, 1.0, 1.9, 1.999, 2.0, 2.001, 3.0, 10.0])
        X = np.zeros((len(gaps), 1))
        R = np.stack(
            [
                backend.to_numpy(
                    arbf.responsibilities(
                        backend.asarray(X[:1]),
                        backend.asarray(np.array([[0.0], [np.sqrt(g)]])),
                        sigma=sigma,
                        kind="entmax15",
                    )
                )[0]
                for g in gaps
            ]
        )
        one_hot = R[:, 1] == 0.0
        np.testing.assert_array_equal(one_hot, gaps >= 2 * sigma * (1 - 1e-15))
        g = np.minimum(gaps / (2 * sigma), 1.0)
        np.testing.assert_allclose(R[:, 1], ((np.sqrt(2 - g**2) - g) / 2) ** 2, atol=1e-14)

    def test_softmax_tail_bound(self, backend, rng):
        # Theorem 3: 1 - r_nearest <= (k - 1) exp(-Δ/σ)
        X, C = _data(rng, k=5)
        D = np.sort(_sqd(X, C), axis=1)
        for sigma in [0.01, 0.1, 1.0]:
            r = backend.to_numpy(
                arbf.responsibilities(backend.asarray(X), backend.asarray(C), sigma=sigma)
            )
            bound = 4 * np.exp(-(D[:, 1] - D[:, 0]) / sigma)
            assert np.all(1 - r.max(1) <= bound + 1e-12)

    @pytest.mark.parametrize("kind", KINDS)
    def test_chunking_does_not_change_the_result(self, backend, rng, kind):
        X, C = _data(rng, n=57)
        a = arbf.responsibilities(backend.asarray(X), backend.asarray(C), sigma=0.3, kind=kind)
        b = arbf.responsibilities(
            backend.asarray(X), backend.asarray(C), sigma=0.3, kind=kind, working_memory=1.5e-3
        )
        assert_close(b, backend.to_numpy(a), backend=backend, rtol=1e-14, atol=1e-15)

    def test_half_precision_computed_in_float32(self, backend, rng):
        if not hasattr(backend.xp, "float16"):
            pytest.skip(f"{backend.name} has no float16")
        X, C = _data(rng)
        R = arbf.responsibilities(
            backend.asarray(X.astype(np.float16)), backend.asarray(C.astype(np.float16)), sigma=0.5
        )
        backend.check_same_kind(R, dtype=backend.xp.float32)
        assert np.all(np.isfinite(backend.to_numpy(R)))

    def test_impl_on_a_chunk_of_distances(self, backend, rng):
        X, C = _data(rng)
        D = _sqd(X, C)
        xp = backend.xp
        cases = [("softmax", _softmax_ref(D, 0.7)), ("entmax15", _entmax_ref(D, 0.7))]
        for kind, expected in cases:
            R = responsibilities_impl(backend.asarray(D), sigma=0.7, kind=kind, xp=xp)
            assert_close(R, expected, backend=backend, atol=1e-12)
        R = responsibilities_impl(backend.asarray(D), sigma=0.0, kind="softmax", xp=xp)
        assert_close(R, np.eye(4)[np.argmin(D, 1)], backend=backend, rtol=0)

    def test_float32_no_underflow_to_nan(self, backend):
        # exp(-D/σ) raw would be 0/0 here in float32
        X = np.array([[0.0], [1000.0]], dtype=np.float32)
        C = np.array([[500.0], [600.0]], dtype=np.float32)
        for kind in ["softmax", "entmax15"]:
            R = backend.to_numpy(
                arbf.responsibilities(
                    backend.asarray(X), backend.asarray(C), sigma=1e-3, kind=kind
                )
            )
            np.testing.assert_array_equal(R, [[1, 0], [0, 1]])

    @pytest.mark.parametrize(
        ("kw", "exc"),
        [
            ({"sigma": -1.0}, ValueError),
            ({"sigma": float("nan")}, ValueError),
            ({"sigma": "a"}, TypeError),
            ({"sigma": 1.0, "kind": "sparsemax"}, ValueError),
        ],
    )
    def test_invalid(self, kw, exc):
        with pytest.raises(exc):
            arbf.responsibilities(np.zeros((3, 2)), np.zeros((2, 2)), **kw)

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="features"):
            arbf.responsibilities(np.zeros((3, 2)), np.zeros((2, 3)), sigma=1.0)
