"""Product quantization: codebooks, encode, decode against independent references."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from tests.backends import assert_close

N, D, M, K = 300, 12, 4, 8


def _data(rng: np.random.Generator) -> np.ndarray:
    means = rng.normal(scale=4.0, size=(6, D))
    return means[rng.integers(0, 6, size=N)] + rng.normal(size=(N, D))


def _skip_dask(backend):
    if backend.name == "dask":
        pytest.skip("batched input is refused on Dask")


def test_codebooks_equal_sklearn_per_subspace(backend, rng):
    """Same init, same iterations: each codebook is scikit-learn's KMeans of its block."""
    _skip_dask(backend)
    from sklearn.cluster import KMeans

    X = _data(rng)
    s = D // M
    C0 = np.stack([X[rng.choice(N, K, replace=False), m * s : (m + 1) * s] for m in range(M)])
    pq = arbf.pq_train(backend.asarray(X), M, K, init=backend.asarray(C0), max_iter=50)
    assert pq.codebooks.shape == (M, K, s)
    backend.check_same_kind(pq.codebooks)
    for m in range(M):
        km = KMeans(K, init=C0[m], n_init=1, max_iter=50, algorithm="lloyd").fit(
            X[:, m * s : (m + 1) * s]
        )
        assert_close(pq.codebooks[m, ...], km.cluster_centers_, backend=backend, atol=1e-8)
        np.testing.assert_allclose(pq.inertia[m], km.inertia_, rtol=1e-8)


def test_seeded_equals_loop_of_kmeans(rng):
    X = _data(rng)
    pq = arbf.pq_train(X, M, K, random_state=5)
    gens = np.random.default_rng(5).spawn(M)
    s = D // M
    for m in range(M):
        one = arbf.kmeans(X[:, m * s : (m + 1) * s], K, random_state=gens[m], max_iter=25)
        np.testing.assert_allclose(pq.codebooks[m], one.centers, atol=1e-10)


def test_encode_decode(backend, rng):
    _skip_dask(backend)
    X = _data(rng)
    pq = arbf.pq_train(backend.asarray(X), M, K, random_state=0)
    cb = backend.to_numpy(pq.codebooks)
    s = D // M
    Y = rng.normal(scale=3.0, size=(50, D))
    codes = pq.encode(backend.asarray(Y))
    backend.check_same_kind(codes, dtype=backend.xp.uint8)
    assert codes.shape == (50, M)
    sub = Y.reshape(50, M, s)
    brute = np.argmin(((sub[:, :, None, :] - cb[None]) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(backend.to_numpy(codes), brute)
    dec = pq.decode(codes)
    backend.check_same_kind(dec)
    np.testing.assert_array_equal(
        backend.to_numpy(dec), cb[np.arange(M)[None, :], brute].reshape(50, D)
    )
    # on the training data the squared reconstruction error is the sum of the inertias
    err = ((X - backend.to_numpy(pq.decode(pq.encode(backend.asarray(X))))) ** 2).sum()
    np.testing.assert_allclose(err, pq.inertia.sum(), rtol=1e-10)


def test_many_codes_are_int32(rng):
    X = rng.normal(size=(600, 4))
    pq = arbf.pq_train(X, 2, 300, init="random", random_state=0, max_iter=2)
    codes = pq.encode(X)
    assert codes.dtype == np.int32 and int(codes.max()) >= 256


def test_float32(rng):
    X = _data(rng).astype(np.float32)
    pq = arbf.pq_train(X, M, K, random_state=0)
    assert pq.codebooks.dtype == np.float32
    err = ((X.astype(np.float64) - pq.decode(pq.encode(X))) ** 2).sum()
    np.testing.assert_allclose(err, pq.inertia.sum(), rtol=1e-4)


def test_errors(rng):
    X = _data(rng)
    with pytest.raises(ValueError, match="multiple"):
        arbf.pq_train(X, 5, K)
    with pytest.raises(ValueError, match="n_subspaces"):
        arbf.pq_train(X, 0, K)
    pq = arbf.pq_train(X, M, K, random_state=0, max_iter=2)
    with pytest.raises(ValueError, match="features"):
        pq.encode(X[:, :8])
    with pytest.raises(ValueError, match="shape"):
        pq.decode(np.zeros((3, M + 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="lie in"):
        pq.decode(np.full((3, M), K, dtype=np.int64))
    with pytest.raises(TypeError, match="integers"):
        pq.decode(np.zeros((3, M)))
    da = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="Dask"):
        arbf.pq_train(da.from_array(X, chunks=(100, D)), M, K)


def test_bench_pq_quick(capsys):
    """The benchmark script runs (tiny size) and prints its table."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pq.py"
    spec = importlib.util.spec_from_file_location("bench_pq", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--quick", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "arbf.pq_train" in out and "MSE" in out
