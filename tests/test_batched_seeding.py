"""The seedings with a leading batch axis: ``arbf.kmeans_plusplus`` and
``arbf.kmeans_parallel`` on ``(B, n, d)`` equal B separate one-problem calls (the same
draws, the same centers), with one batched pass per center / per round."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from arbf._math import seam
from tests.backends import assert_close, tolerance

B, N, D, K = 3, 80, 3, 5
SEEDS = [11, 12, 13]


def _blobs(rng: np.random.Generator, b: int = B, n: int = N, d: int = D, k: int = K):
    means = rng.normal(scale=6.0, size=(b, k, d))
    lab = rng.integers(0, k, size=(b, n))
    return means[np.arange(b)[:, None], lab] + rng.normal(size=(b, n, d))


def _skip_dask(backend):
    if backend.name == "dask":
        pytest.skip("batched input is refused on Dask (tested in test_dask_refused)")


def _weights(rng: np.random.Generator, dtype: str) -> np.ndarray:
    w = rng.uniform(0.2, 3.0, size=(B, N))
    w[:, :7] = 0.0  # zero weights: never drawn
    return w.astype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("weighted", [False, True])
class TestEqualsSeparateCalls:
    def test_kmeans_plusplus(self, backend, rng, dtype, weighted):
        _skip_dask(backend)
        X = _blobs(rng).astype(dtype)
        w = _weights(rng, dtype) if weighted else None
        extra = {} if w is None else {"sample_weight": backend.asarray(w)}
        C, idx = arbf.kmeans_plusplus(backend.asarray(X), K, random_state=SEEDS, **extra)
        backend.check_same_kind(C)
        assert C.shape == (B, K, D) and C.dtype == backend.xp.asarray(X).dtype
        assert isinstance(idx, np.ndarray) and idx.shape == (B, K)
        for b in range(B):
            Cb, ib = arbf.kmeans_plusplus(
                X[b], K, random_state=SEEDS[b], **({} if w is None else {"sample_weight": w[b]})
            )
            np.testing.assert_array_equal(idx[b], ib)
            # the centers are rows of X: exactly equal
            np.testing.assert_array_equal(backend.to_numpy(C[b, ...]), Cb)
            np.testing.assert_array_equal(Cb, X[b][ib])
            if w is not None:
                assert (w[b][ib] > 0).all()

    def test_kmeans_parallel(self, backend, rng, dtype, weighted):
        _skip_dask(backend)
        X = _blobs(rng).astype(dtype)
        w = _weights(rng, dtype) if weighted else None
        extra = {} if w is None else {"sample_weight": backend.asarray(w)}
        C = arbf.kmeans_parallel(backend.asarray(X), K, random_state=SEEDS, **extra)
        backend.check_same_kind(C)
        assert C.shape == (B, K, D)
        for b in range(B):
            Cb = arbf.kmeans_parallel(
                X[b], K, random_state=SEEDS[b], **({} if w is None else {"sample_weight": w[b]})
            )
            assert_close(
                C[b, ...], Cb, backend=backend, rtol=tolerance(dtype, scale=100), atol=1e-4
            )


def test_spawned_seeds_and_options(rng):
    """An int seeds a parent Generator whose spawn(B) children are the problems' own;
    ``n_local_trials``, ``x_squared_norms``, ``oversampling_factor`` and ``n_rounds`` act
    per problem as in the one-problem call."""
    X = _blobs(rng)
    gens = np.random.default_rng(5).spawn(B)
    xsq = (X * X).sum(-1)
    _, idx = arbf.kmeans_plusplus(X, K, random_state=5, n_local_trials=1, x_squared_norms=xsq)
    Cp = arbf.kmeans_parallel(X, K, random_state=5, oversampling_factor=0.5, n_rounds=2)
    gens2 = np.random.default_rng(5).spawn(B)
    for b in range(B):
        _, ib = arbf.kmeans_plusplus(X[b], K, random_state=gens[b], n_local_trials=1)
        np.testing.assert_array_equal(idx[b], ib)
        Cpb = arbf.kmeans_parallel(
            X[b], K, random_state=gens2[b], oversampling_factor=0.5, n_rounds=2
        )
        np.testing.assert_allclose(Cp[b], Cpb, rtol=1e-10, atol=1e-10)
    # n_local_trials=1 is plain (not greedy) k-means++: another draw than the default
    assert not np.array_equal(idx, arbf.kmeans_plusplus(X, K, random_state=5)[1])


def test_kmeans_init_k_means_parallel_is_batched(rng):
    """``kmeans(X, k, init="k-means||")`` on (B, n, d) seeds with the batched k-means||:
    the same centers as B separate fits."""
    X = _blobs(rng)
    res = arbf.kmeans(X, K, init="k-means||", n_init=1, random_state=SEEDS)
    for b in range(B):
        one = arbf.kmeans(X[b], K, init="k-means||", n_init=1, random_state=SEEDS[b])
        np.testing.assert_allclose(res.centers[b], one.centers, atol=1e-10)
        np.testing.assert_array_equal(res.labels[b], one.labels)


def test_fewer_candidates_than_clusters_padded_as_separately(rng):
    """Few distinct rows: the candidate set is padded with data rows (drawn per problem)."""
    base = rng.normal(size=(B, 6, D))
    X = np.repeat(base, 10, axis=1)  # 6 distinct rows, 60 samples
    C = arbf.kmeans_parallel(X, 6, random_state=SEEDS, n_rounds=1, oversampling_factor=0.1)
    for b in range(B):
        Cb = arbf.kmeans_parallel(
            X[b], 6, random_state=SEEDS[b], n_rounds=1, oversampling_factor=0.1
        )
        np.testing.assert_allclose(C[b], Cb, atol=1e-12)


def test_one_batched_pass_per_center_and_round(rng, monkeypatch):
    """No loop over B on the data: the number of batched distance passes does not grow
    with B (the same problem repeated B times, with the same seed each), and no
    one-problem distance pass over the data runs (the weighted K-Means of each problem's
    candidates, on the host, is per problem)."""
    X1 = _blobs(rng, b=1)
    calls = {"batched": 0, "one": 0}
    real_b, real_one = seam.batched_sq_distances, seam.dist_to_rows

    def counted_b(*a, **k):
        calls["batched"] += 1
        return real_b(*a, **k)

    def counted_one(*a, **k):  # a pass over one problem's data (not the small candidate set)
        calls["one"] += int(a[0].shape[0] == N)
        return real_one(*a, **k)

    monkeypatch.setattr(seam, "batched_sq_distances", counted_b)
    monkeypatch.setattr(seam, "dist_to_rows", counted_one)
    passes = {}
    for b in (1, 4):
        X = np.repeat(X1, b, axis=0)
        calls["batched"] = 0
        arbf.kmeans_plusplus(X, K, random_state=[3] * b)
        assert calls["batched"] == K  # the first center, then one per further center
        calls["batched"] = 0
        arbf.kmeans_parallel(X, K, random_state=[3] * b)
        passes[b] = calls["batched"]
    assert calls["one"] == 0
    assert 2 <= passes[1] == passes[4]  # the first candidate, then one per round


def test_errors_and_inputs_unchanged(rng):
    X = _blobs(rng)
    X.flags.writeable = False
    arbf.kmeans_plusplus(X, K, random_state=0)
    arbf.kmeans_parallel(X, K, random_state=0)
    with pytest.raises(ValueError, match="random_state"):
        arbf.kmeans_plusplus(X, K, random_state=[1, 2])
    with pytest.raises(ValueError, match="sample_weight"):
        arbf.kmeans_parallel(X, K, sample_weight=np.ones((B + 1, N)))
    with pytest.raises(ValueError, match="n_samples"):
        arbf.kmeans_plusplus(X, N + 1)
    with pytest.raises(ValueError, match="x_squared_norms"):
        arbf.kmeans_plusplus(X, K, x_squared_norms=np.ones(N))
    with pytest.raises(ValueError, match="n_local_trials"):
        arbf.kmeans_plusplus(X, K, n_local_trials=N + 1)
    with pytest.raises(ValueError, match="n_rounds"):
        arbf.kmeans_parallel(X, K, n_rounds=0)
    with pytest.raises(ValueError, match="oversampling_factor"):
        arbf.kmeans_parallel(X, K, oversampling_factor=0.0)
    with pytest.raises(ValueError, match="NaN"):
        Y = X.copy()
        Y[1, 2, 0] = np.nan
        arbf.kmeans_parallel(Y, K)


def test_dask_refused():
    da = pytest.importorskip("dask.array")
    X = da.zeros((2, 10, 3), chunks=(1, 5, 3))
    for f in (arbf.kmeans_plusplus, arbf.kmeans_parallel):
        with pytest.raises(TypeError, match="Dask"):
            f(X, 2)


@pytest.mark.parametrize("seeds", [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
def test_rounds_where_some_problems_pick_nothing(rng, seeds):
    """A small oversampling factor (ℓ = 0.5 candidates per round) leaves some problems
    without a new candidate in rounds where others have one: their distances must stay
    as they are (the padded columns are not theirs), as in the separate calls."""
    X = _blobs(rng)
    C = arbf.kmeans_parallel(X, K, random_state=seeds, oversampling_factor=0.1, n_rounds=8)
    for b in range(B):
        Cb = arbf.kmeans_parallel(
            X[b], K, random_state=seeds[b], oversampling_factor=0.1, n_rounds=8
        )
        np.testing.assert_allclose(C[b], Cb, rtol=1e-10, atol=1e-10)
