"""Initialisation: greedy, weight-aware k-means++ and weighted random sampling.

Random numbers come from one host NumPy Generator, so the same ``random_state`` gives the
same initial centers on every backend.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import arbf
from arbf._drivers.init import kmeans_plusplus_impl, random_init_impl
from tests.backends import assert_close


def _blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 8.0]])
    return np.concatenate([rng.normal(m, 1.0, (15, 2)) for m in means])


def _reference_kmeans_plusplus(X, k, w, rng, n_local_trials=None):
    """scikit-learn's greedy k-means++ (``_kmeans_plusplus``), written plainly with a
    NumPy Generator: the specification our implementation is checked against."""
    n = X.shape[0]
    w = np.ones(n) if w is None else np.asarray(w, dtype=float)
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(k))
    first = rng.choice(n, p=w / w.sum())
    idx = [first]
    closest = ((X - X[first]) ** 2).sum(axis=1)
    for _ in range(1, k):
        cum = np.cumsum(w * closest)
        rand = rng.uniform(size=n_local_trials) * cum[-1]
        cand = np.minimum(np.searchsorted(cum, rand), n - 1)
        D = np.minimum(closest[:, None], ((X[:, None, :] - X[cand][None]) ** 2).sum(-1))
        best = int(np.argmin((w[:, None] * D).sum(axis=0)))
        closest = D[:, best]
        idx.append(int(cand[best]))
    return np.asarray(idx)


class TestKMeansPlusPlus:
    @pytest.mark.parametrize("weighted", [False, True])
    def test_matches_reference_algorithm(self, backend, weighted):
        X = _blobs(1)
        w = np.random.default_rng(2).uniform(0.1, 2.0, X.shape[0]) if weighted else None
        expected = _reference_kmeans_plusplus(X, 4, w, np.random.default_rng(42))
        centers, idx = arbf.kmeans_plusplus(
            backend.asarray(X),
            4,
            sample_weight=None if w is None else backend.asarray(w),
            random_state=42,
        )
        np.testing.assert_array_equal(idx, expected)
        assert_close(centers, X[expected], backend=backend, rtol=0, dtype=backend.xp.float64)

    def test_greedy_trials_change_the_draw(self):
        X = _blobs(3)
        rng_ref = np.random.default_rng(5)
        expected = _reference_kmeans_plusplus(X, 4, None, rng_ref, n_local_trials=1)
        _, idx = arbf.kmeans_plusplus(X, 4, random_state=5, n_local_trials=1)
        np.testing.assert_array_equal(idx, expected)

    def test_default_number_of_local_trials(self, monkeypatch):
        draws = []

        class Spy(np.random.Generator):
            def uniform(self, *a, size=None, **kw):
                draws.append(size)
                return super().uniform(*a, size=size, **kw)

        rng = Spy(np.random.PCG64(0))
        kmeans_plusplus_impl(_blobs(), 8, None, rng, xp=np)
        assert draws == [2 + int(math.log(8))] * 7

    def test_same_seed_same_centers_on_every_backend(self, backend):
        X = _blobs(4)
        ref_c, ref_i = arbf.kmeans_plusplus(X, 4, random_state=123)
        c, i = arbf.kmeans_plusplus(backend.asarray(X), 4, random_state=123)
        np.testing.assert_array_equal(i, ref_i)
        assert_close(c, ref_c, backend=backend, rtol=0)

    def test_zero_weight_samples_are_never_chosen(self, backend):
        X = _blobs(5)
        w = np.ones(X.shape[0])
        w[30:] = 0.0  # two of the four blobs
        for seed in range(5):
            _, idx = arbf.kmeans_plusplus(
                backend.asarray(X), 2, sample_weight=backend.asarray(w), random_state=seed
            )
            assert np.all(idx < 30)

    def test_unit_weights_equal_no_weights(self):
        X = _blobs(6)
        _, a = arbf.kmeans_plusplus(X, 4, random_state=9)
        _, b = arbf.kmeans_plusplus(X, 4, random_state=9, sample_weight=np.ones(X.shape[0]))
        np.testing.assert_array_equal(a, b)

    def test_one_center_per_blob(self):
        X = _blobs(7)
        _, idx = arbf.kmeans_plusplus(X, 4, random_state=0)
        assert sorted(i // 15 for i in idx) == [0, 1, 2, 3]

    def test_generator_is_consumed(self):
        rng = np.random.default_rng(0)
        X = _blobs(8)
        _, a = arbf.kmeans_plusplus(X, 4, random_state=rng)
        _, b = arbf.kmeans_plusplus(X, 4, random_state=rng)
        assert not np.array_equal(a, b)

    def test_output_keeps_dtype(self, backend):
        X = _blobs(9)
        c, idx = arbf.kmeans_plusplus(backend.asarray(X, "float32"), 3, random_state=0)
        backend.check_same_kind(c, dtype=backend.xp.float32)
        assert isinstance(idx, np.ndarray)
        assert idx.dtype == np.int64

    @pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (-1, ValueError),
                                                (1.5, TypeError), ("3", TypeError),
                                                (True, TypeError)])  # fmt: skip
    def test_bad_n_local_trials(self, bad, error):
        with pytest.raises(error, match="n_local_trials"):
            arbf.kmeans_plusplus(_blobs(), 3, n_local_trials=bad)


class TestRandomInit:
    def test_distinct_rows_and_same_on_every_backend(self, backend):
        X = _blobs(10)
        c_ref, i_ref = random_init_impl(X, 5, None, np.random.default_rng(1), xp=np)
        assert len(set(i_ref.tolist())) == 5
        xp = backend.xp
        c, i = random_init_impl(backend.asarray(X), 5, None, np.random.default_rng(1), xp=xp)
        np.testing.assert_array_equal(i, i_ref)
        assert_close(c, c_ref, backend=backend, rtol=0)

    def test_weight_aware(self):
        X = _blobs(11)
        w = np.zeros(X.shape[0])
        w[[3, 17, 40]] = [1.0, 2.0, 3.0]
        _, idx = random_init_impl(X, 3, w, np.random.default_rng(0), xp=np)
        assert sorted(idx.tolist()) == [3, 17, 40]

    def test_too_few_positive_weights(self):
        X = _blobs(12)
        w = np.zeros(X.shape[0])
        w[:2] = 1.0
        with pytest.raises(ValueError, match="at least n_clusters=3 samples with positive"):
            arbf.kmeans(X, 3, init="random", sample_weight=w)
