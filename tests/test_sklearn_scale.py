"""K-Means against scikit-learn at scale: the same labels, centers, inertia and n_iter
from the same initial centers, at n >= 10⁴, d up to 128, k up to 256, float32 and
float64, with and without sample weights, on the compiled path and on the pure Array
API path (``config_context(fast_paths=...)``).  NumPy only: scikit-learn is the
reference."""

from __future__ import annotations

import numpy as np
import pytest

import arbf

sklearn_cluster = pytest.importorskip("sklearn.cluster")

SHAPES = [(10_000, 2, 8), (10_000, 16, 64), (10_000, 128, 256), (20_000, 32, 32)]


def _problem(n: int, d: int, k: int, dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.uniform(-5, 5, size=(k, d))
    X = means[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    C0 = X[rng.choice(n, k, replace=False)]
    w = rng.uniform(0.5, 2.0, n)
    return X.astype(dtype), C0.astype(dtype), w.astype(dtype)


@pytest.mark.parametrize("fast_paths", [True, False], ids=["compiled", "pure"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_same_fit_as_scikit_learn(shape, dtype, weighted, fast_paths):
    n, d, k = shape
    X, C0, w = _problem(n, d, k, dtype)
    sw = w if weighted else None
    sk = sklearn_cluster.KMeans(
        k, init=C0, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd"
    ).fit(X, sample_weight=sw)
    with arbf.config_context(fast_paths=fast_paths):
        res = arbf.kmeans(X, k, init=C0, max_iter=300, tol=1e-4, sample_weight=sw)
    np.testing.assert_array_equal(np.asarray(res.labels), sk.labels_)
    assert res.n_iter == sk.n_iter_
    rtol = 1e-12 if dtype == "float64" else 5e-6
    assert res.inertia == pytest.approx(sk.inertia_, rel=rtol)
    centers = np.asarray(res.centers)
    assert centers.dtype == X.dtype
    np.testing.assert_allclose(centers, sk.cluster_centers_, rtol=rtol, atol=rtol * 5)
