"""The analysis functions with a leading batch axis: ``centroid_discrepancy`` and
``monotone_regime`` on ``(B, ...)`` equal B separate calls (and an independent
reference: SciPy's assignment, the one-problem certificates)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import arbf
from tests.backends import assert_close


def _skip_dask(backend):
    if backend.name == "dask":
        pytest.skip("batched input is refused on Dask (tested below)")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_centroid_discrepancy_batched(backend, rng, dtype):
    _skip_dask(backend)
    B, k, k_ref, d = 4, 5, 6, 3
    M = rng.normal(size=(B, k, d)).astype(dtype)
    R = rng.normal(size=(B, k_ref, d)).astype(dtype)
    got = arbf.centroid_discrepancy(backend.asarray(M), backend.asarray(R))
    backend.check_same_kind(got)
    assert got.shape == (B, k)
    for b in range(B):
        # independent reference: SciPy's Hungarian method on the squared distances
        D = ((M[b][:, None, :].astype(np.float64) - R[b][None, :, :]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(D)
        ref = np.sqrt(D[rows, cols])
        tol = 1e-12 if dtype == "float64" else 1e-5
        assert_close(got[b, ...], ref, backend=backend, rtol=tol, atol=tol)
        one = arbf.centroid_discrepancy(backend.asarray(M[b]), backend.asarray(R[b]))
        assert_close(got[b, ...], backend.to_numpy(one), backend=backend, rtol=tol, atol=tol)


def test_centroid_discrepancy_batched_errors(rng):
    M = rng.normal(size=(2, 3, 2))
    with pytest.raises(ValueError, match=r"reference must have shape \(B, k_ref"):
        arbf.centroid_discrepancy(M, M[0])
    with pytest.raises(ValueError, match="same number of problems"):
        arbf.centroid_discrepancy(M, rng.normal(size=(3, 3, 2)))
    with pytest.raises(ValueError, match="one-to-one"):
        arbf.centroid_discrepancy(M, M[:, :2, :])


@pytest.mark.parametrize("kind", ["softmax", "entmax15"])
def test_monotone_regime_batched(backend, rng, kind):
    _skip_dask(backend)
    B, k, d, n = 3, 3, 2, 90
    means = rng.normal(scale=8.0, size=(B, k, d))
    X = np.repeat(means, n // k, axis=1) + rng.normal(size=(B, n, d))
    w = rng.uniform(0.5, 2.0, size=(B, n))
    w[:, :4] = 0.0
    C = np.stack(
        [arbf.kmeans(X[b], k, init=means[b], tol=0, sample_weight=w[b]).centers for b in range(B)]
    )
    got = arbf.monotone_regime(
        backend.asarray(X), backend.asarray(C), kind=kind, sample_weight=backend.asarray(w)
    )
    assert isinstance(got, tuple) and len(got) == B
    for b in range(B):
        one = arbf.monotone_regime(X[b], C[b], kind=kind, sample_weight=w[b])
        assert got[b].sigma0 == pytest.approx(one.sigma0, rel=1e-12)
        assert got[b].delta_min == pytest.approx(one.delta_min, rel=1e-12)
        assert got[b].exact_sigma == pytest.approx(one.delta_min / 2, rel=1e-12)
    # the problems differ: so do their certificates
    assert len({round(r.delta_min, 6) for r in got}) == B


def test_monotone_regime_batched_names_the_problem(rng):
    X = rng.normal(size=(2, 20, 2))
    C = X[:, :3, :]  # not fixed points
    with pytest.raises(ValueError, match="not a non-degenerate K-Means fixed point"):
        arbf.monotone_regime(X, C)


def test_dask_refused():
    da = pytest.importorskip("dask.array")
    X = da.zeros((2, 10, 3), chunks=(1, 5, 3))
    with pytest.raises(TypeError, match="Dask"):
        arbf.centroid_discrepancy(X[:, :2, :], X[:, :3, :])
    with pytest.raises(TypeError, match="Dask"):
        arbf.monotone_regime(X, X[:, :2, :])
