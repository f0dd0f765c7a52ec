"""k-means|| (scalable k-means++): backends, weights, degenerate data, quality."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import arbf
from arbf import kmeans_parallel


def _blobs(n_per: int = 50, k: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.uniform(-20, 20, size=(k, 3))
    return np.concatenate([rng.normal(m, 1.0, (n_per, 3)) for m in means])


X = _blobs()


class TestKMeansParallel:
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    def test_outputs_keep_namespace_device_dtype(self, backend, dtype):
        C = kmeans_parallel(backend.asarray(X, dtype), 6, random_state=0)
        backend.check_same_kind(C, dtype=backend.dtype(dtype))
        assert tuple(C.shape) == (6, 3)

    def test_one_center_per_blob(self, backend):
        C = backend.to_numpy(kmeans_parallel(backend.asarray(X), 6, random_state=0))
        blob_of_center = np.argmin(
            ((C[:, None, :] - X.reshape(6, 50, 3).mean(axis=1)[None]) ** 2).sum(-1), axis=1
        )
        assert sorted(blob_of_center) == list(range(6))

    def test_same_seed_same_centers(self, backend):
        got = kmeans_parallel(backend.asarray(X), 6, random_state=3)
        if backend.lazy:
            # Dask draws its uniforms on the workers (documented): the centers differ from
            # NumPy's, but the same seed and chunking give the same centers every time
            again = kmeans_parallel(backend.asarray(X), 6, random_state=3)
            np.testing.assert_array_equal(backend.to_numpy(got), backend.to_numpy(again))
            return
        ref = kmeans_parallel(X, 6, random_state=3)
        np.testing.assert_allclose(backend.to_numpy(got), ref, rtol=1e-9)

    def test_deterministic(self):
        a = kmeans_parallel(X, 6, random_state=7)
        b = kmeans_parallel(X, 6, random_state=7)
        np.testing.assert_array_equal(a, b)

    def test_zero_weight_samples_are_ignored(self):
        w = np.ones(X.shape[0])
        w[:50] = 0.0  # the first blob does not exist
        C = kmeans_parallel(X, 5, sample_weight=w, random_state=0)
        d_first = ((C[:, None, :] - X[:50][None]) ** 2).sum(-1).min(axis=1)
        d_rest = ((C[:, None, :] - X[50:][None]) ** 2).sum(-1).min(axis=1)
        assert np.all(d_rest < d_first)

    def test_fewer_distinct_points_than_candidates(self):
        Xd = np.repeat(np.eye(3), 10, axis=0)  # 3 distinct points
        C = kmeans_parallel(Xd, 3, random_state=0)
        assert {tuple(r) for r in np.round(C, 12)} == {tuple(r) for r in np.eye(3)}

    def test_fewer_distinct_points_than_clusters(self):
        Xd = np.repeat(np.eye(2), 5, axis=0)
        C = kmeans_parallel(Xd, 4, random_state=0)
        assert C.shape == (4, 2)
        assert {tuple(r) for r in np.round(C, 12)} == {(1.0, 0.0), (0.0, 1.0)}

    @pytest.mark.parametrize(
        ("kw", "error"),
        [({"oversampling_factor": 0}, ValueError), ({"n_rounds": 0}, ValueError),
         ({"n_rounds": 1.5}, TypeError), ({"oversampling_factor": "2"}, TypeError)],
    )  # fmt: skip
    def test_bad_params(self, kw, error):
        with pytest.raises(error, match=next(iter(kw))):
            kmeans_parallel(X, 3, **kw)

    def test_quality_comparable_to_kmeanspp(self):
        from sklearn.datasets import make_blobs

        Xb, _ = make_blobs(3000, centers=15, n_features=5, random_state=1, cluster_std=2.0)
        par_init, pp_init, par, pp = [], [], [], []
        for s in range(4):
            par_init.append(float(arbf.inertia(Xb, kmeans_parallel(Xb, 15, random_state=s))))
            pp_init.append(
                float(arbf.inertia(Xb, arbf.kmeans_plusplus(Xb, 15, random_state=s)[0]))
            )
            par.append(arbf.kmeans(Xb, 15, init="k-means||", random_state=s).inertia)
            pp.append(arbf.kmeans(Xb, 15, init="k-means++", random_state=s).inertia)
        assert np.mean(par_init) <= 1.2 * np.mean(pp_init)
        assert np.mean(par) <= 1.05 * np.mean(pp)


class TestThroughKMeans:
    def test_function_and_estimator(self, backend):
        Xb = backend.asarray(X)
        res = arbf.kmeans(Xb, 6, init="k-means||", random_state=0)
        km = arbf.KMeans(6, init="k-means||", random_state=0).fit(Xb)
        backend.check_same_kind(res.centers)
        assert res.inertia == pytest.approx(km.inertia_)
        assert len(res.n_init_inertia) == 1  # n_init="auto" is one run
        ref = arbf.kmeans(X, 6, init="k-means++", random_state=0)
        assert res.inertia == pytest.approx(ref.inertia, rel=1e-6)  # both find the blobs

    def test_minibatch_accepts_it(self):
        from arbf._estimators.minibatch import MiniBatchKMeans

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            est = MiniBatchKMeans(6, init="k-means||", random_state=0, batch_size=64).fit(X)
        assert est.cluster_centers_.shape == (6, 3)

    def test_bad_init_string(self):
        with pytest.raises(ValueError, match="k-means\\|\\|"):
            arbf.kmeans(X, 3, init="kmeans||")
