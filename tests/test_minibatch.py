"""Mini-batch K-Means / mini-batch RBF: the step, the estimators, streaming (partial_fit)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from arbf._drivers.minibatch import minibatch_step
from arbf._estimators.minibatch import MiniBatchKMeans, MiniBatchRBFKMeans
from tests.backends import assert_close, skip_unless_selected


def _blobs(seed: int = 0, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    return np.concatenate([rng.normal(m, 1.0, (n, 2)) for m in means])


X = _blobs()
C0 = X[[0, 40, 80]]


class TestStep:
    def test_first_step_is_the_lloyd_step(self, backend):
        """With no mass so far, eta_j = 1/(2 N_j) lands on the batch centroid (Theorem 2)."""
        import arbf

        Xb, Cb = backend.asarray(X), backend.asarray(C0)
        counts = backend.xp.zeros((3,), dtype=Xb.dtype, device=backend.device)
        C1, m1, _ = minibatch_step(Xb, Cb, counts, None, sigma=0.0, kind="hard", xp=backend.xp)
        assert_close(C1, backend.to_numpy(arbf.lloyd_step(Xb, Cb)), backend=backend)
        assert_close(m1, np.full(3, 40.0), backend=backend)

    def test_running_mean_equals_full_centroid_when_labels_are_fixed(self, backend):
        """Two half batches with unchanged labels give the centroid of the union."""
        xp = backend.xp
        order = np.random.default_rng(1).permutation(X.shape[0])
        halves = [X[order[:60]], X[order[60:]]]
        C = backend.asarray(np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]]))
        counts = xp.zeros((3,), dtype=C.dtype, device=backend.device)
        for h in halves:
            C, counts, _ = minibatch_step(
                backend.asarray(h), C, counts, None, sigma=0.0, kind="hard", xp=xp
            )
        expected = np.stack([X[i * 40 : (i + 1) * 40].mean(axis=0) for i in range(3)])
        assert_close(C, expected, backend=backend, rtol=1e-10)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_soft_step_is_a_gradient_step_on_F(self, backend, kind):
        """C_new = C - eta * grad F_batch with eta_j = 1/(2 (M_j + N_j))."""
        import arbf

        xp = backend.xp
        Xb, Cb = backend.asarray(X), backend.asarray(C0 + 0.5)
        counts = backend.asarray(np.array([3.0, 0.0, 10.0]))
        C1, _, st = minibatch_step(Xb, Cb, counts, None, sigma=4.0, kind=kind, xp=xp)
        g = backend.to_numpy(arbf.center_gradient(Xb, Cb, sigma=4.0, kind=kind))
        N = backend.to_numpy(st.mass)
        eta = 1.0 / (2.0 * (np.array([3.0, 0.0, 10.0]) + N))
        assert_close(C1, (C0 + 0.5) - eta[:, None] * g, backend=backend, rtol=1e-9)

    def test_constant_lr(self, backend):
        xp = backend.xp
        Xb, Cb = backend.asarray(X), backend.asarray(C0)
        counts = xp.zeros((3,), dtype=Xb.dtype, device=backend.device)
        C1, _, st = minibatch_step(Xb, Cb, counts, None, sigma=0.0, kind="hard", lr=1e-3, xp=xp)
        N, S = backend.to_numpy(st.mass), backend.to_numpy(st.sums)
        assert_close(C1, C0 - 1e-3 * 2 * (N[:, None] * C0 - S), backend=backend, rtol=1e-10)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    def test_step_has_no_host_sync(self, kind):
        """The step traces under ``jax.jit`` (a host sync would raise while tracing)."""
        skip_unless_selected("jax")
        jax = pytest.importorskip("jax")
        import array_api_compat

        jnp = jax.numpy
        xp = array_api_compat.array_namespace(jnp.zeros(1))
        sigma = 0.0 if kind == "hard" else 2.0

        def step(Xb, C, m):
            C1, m1, st = minibatch_step(Xb, C, m, None, sigma=sigma, kind=kind, xp=xp)
            return C1, m1, st.free_energy

        Xj, Cj = jnp.asarray(X), jnp.asarray(C0)
        m = jnp.zeros(3, dtype=Xj.dtype)
        got = jax.jit(step)(Xj, Cj, m)
        ref = step(Xj, Cj, m)
        np.testing.assert_allclose(np.asarray(got[0]), np.asarray(ref[0]), rtol=1e-10)


class TestEstimatorsOnBackends:
    @pytest.mark.parametrize("cls", [MiniBatchKMeans, MiniBatchRBFKMeans])
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    def test_outputs_keep_namespace_device_dtype(self, backend, cls, dtype):
        xdt = backend.dtype(dtype)
        Xb = backend.asarray(X, dtype)
        est = cls(3, init=backend.asarray(C0, dtype), batch_size=32, max_iter=2, random_state=0)
        est.fit(Xb)
        backend.check_same_kind(est.cluster_centers_, dtype=xdt)
        backend.check_same_kind(est.counts_, dtype=xdt)
        backend.check_same_kind(est.labels_)
        backend.check_same_kind(est.predict(Xb))
        backend.check_same_kind(est.transform(Xb), dtype=xdt)
        assert isinstance(est.inertia_, float)
        assert isinstance(est.score(Xb), float)
        np.testing.assert_array_equal(backend.to_numpy(est.labels_), np.repeat(np.arange(3), 40))

    def test_same_fit_on_every_backend(self, backend):
        ref = MiniBatchKMeans(3, batch_size=16, random_state=3, max_iter=2).fit(X)
        got = MiniBatchKMeans(3, batch_size=16, random_state=3, max_iter=2).fit(backend.asarray(X))
        assert got.n_steps_ == ref.n_steps_
        assert_close(got.cluster_centers_, ref.cluster_centers_, backend=backend, rtol=1e-9)

    @pytest.mark.parametrize("cls", [MiniBatchKMeans, MiniBatchRBFKMeans])
    def test_partial_fit_stream(self, backend, cls):
        est = cls(3, init=backend.asarray(C0), random_state=0)
        order = np.random.default_rng(0).permutation(X.shape[0])
        for piece in np.array_split(X[order], 6):
            est.partial_fit(backend.asarray(piece))
        assert est.n_steps_ == 6
        backend.check_same_kind(est.cluster_centers_)
        C = backend.to_numpy(est.cluster_centers_)
        true = np.stack([X[i * 40 : (i + 1) * 40].mean(axis=0) for i in range(3)])
        np.testing.assert_allclose(C, true, atol=0.05)
        assert float(np.sum(backend.to_numpy(est.counts_))) == pytest.approx(X.shape[0])

    def test_partial_fit_feature_count_change_is_a_clear_error(self, backend):
        est = MiniBatchKMeans(3, random_state=0).partial_fit(backend.asarray(X))
        with pytest.raises(
            ValueError, match="X has 3 features, but MiniBatchKMeans is expecting 2"
        ):
            est.partial_fit(backend.asarray(np.ones((10, 3))))
        # the estimator is unchanged and still usable
        assert est.n_steps_ == 1
        est.partial_fit(backend.asarray(X))
        assert est.n_steps_ == 2


class TestBehaviour:
    def test_close_to_sklearn_minibatch(self):
        sk = pytest.importorskip("sklearn.cluster")
        from sklearn.datasets import make_blobs

        Xl, _ = make_blobs(4000, centers=6, n_features=5, random_state=0)
        ours = MiniBatchKMeans(6, batch_size=256, random_state=0).fit(Xl)
        ref = sk.MiniBatchKMeans(6, batch_size=256, random_state=0, n_init=1).fit(Xl)
        full = sk.KMeans(6, random_state=0).fit(Xl)
        assert ours.inertia_ <= 1.05 * full.inertia_
        assert ours.inertia_ <= 1.05 * ref.inertia_

    def test_rbf_annealing_ends_near_kmeans(self):
        import arbf

        rbf = MiniBatchRBFKMeans(
            3, sigma=20.0, sigma_end=0.05, init=C0, batch_size=32, max_no_improvement=None,
            max_iter=20, random_state=0,
        ).fit(X)  # fmt: skip
        assert rbf.sigma_ == pytest.approx(0.05)
        assert rbf.history_["sigma"][0] == pytest.approx(20.0)
        km = arbf.kmeans(X, 3, init=C0)
        assert rbf.inertia_ <= 1.02 * km.inertia

    def test_entmax_small_sigma_equals_hard(self):
        """Entmax-1.5 is exactly hard once sigma <= min gap / 2 (Theorem 4)."""
        a = MiniBatchRBFKMeans(3, sigma=1e-6, kind="entmax15", init=C0, random_state=0)
        b = MiniBatchKMeans(3, init=C0, random_state=0)
        a.fit(X), b.fit(X)
        np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)

    def test_early_stopping_and_tol(self):
        est = MiniBatchKMeans(3, init=C0, batch_size=8, max_iter=50, random_state=0).fit(X)
        assert est.converged_ and est.n_steps_ < 50 * X.shape[0] // 8
        est = MiniBatchKMeans(
            3, init=C0, batch_size=8, max_iter=2, max_no_improvement=None, random_state=0
        ).fit(X)
        assert not est.converged_ and est.n_steps_ == 2 * X.shape[0] // 8
        assert est.history_["center_shift"].shape == (est.n_steps_,)

    def test_sample_weight_zero_ignores_samples(self):
        w = np.ones(X.shape[0])
        w[:40] = 0.0
        est = MiniBatchKMeans(2, init=C0[1:], random_state=0).fit(X, sample_weight=w)
        C = est.cluster_centers_
        assert np.all(C[:, 0] + C[:, 1] > 4)  # nothing pulled towards the ignored blob

    @pytest.mark.parametrize(
        "params",
        [
            {"batch_size": 0},
            {"max_iter": -1},
            {"tol": -1.0},
            {"n_init": "x"},
            {"max_no_improvement": -1},
            {"init": "bogus"},
        ],
    )
    def test_bad_params(self, params):
        with pytest.raises(ValueError):
            MiniBatchKMeans(3, **params).fit(X)

    @pytest.mark.parametrize(
        "params", [{"sigma": -1.0}, {"kind": "hard"}, {"lr": 0.0}, {"lr": "adam"}]
    )
    def test_bad_rbf_params(self, params):
        with pytest.raises(ValueError):
            MiniBatchRBFKMeans(3, **params).fit(X)

    def test_init_does_no_work_and_clone(self):
        sk_base = pytest.importorskip("sklearn.base")
        est = MiniBatchRBFKMeans(3, sigma=-5, kind="nonsense")
        assert est.sigma == -5
        assert sk_base.clone(est).get_params() == est.get_params()

    def test_unknown_chunk_sizes(self):
        da = pytest.importorskip("dask.array")
        Xd = da.from_array(X, chunks=20)
        Xu = Xd[Xd[:, 0] > -100]
        for est in (MiniBatchKMeans(3), MiniBatchRBFKMeans(3)):
            with pytest.raises(ValueError, match="unknown chunk sizes"):
                est.fit(Xu)
            with pytest.raises(ValueError, match="unknown chunk sizes"):
                est.partial_fit(Xu)


# scikit-learn's sparse check reads ``classifier_tags`` of every estimator that has
# ``predict_proba``; a clusterer has none (AttributeError on None).  Sparse fit, predict
# and predict_proba are tested in tests/test_sparse.py.
SPARSE_CHECK_XFAIL = {
    name: "scikit-learn's check reads classifier_tags of a clusterer with predict_proba"
    for name in ("check_estimator_sparse_array", "check_estimator_sparse_matrix")
}


class TestSklearnConformance:
    @pytest.mark.parametrize("cls", [MiniBatchKMeans, MiniBatchRBFKMeans])
    def test_check_estimator(self, cls):
        estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator_checks.check_estimator(
                cls(),
                expected_failed_checks={
                    # as for scikit-learn's MiniBatchKMeans: batches are drawn by index,
                    # so repeating a sample is not the same as weighting it
                    "check_sample_weight_equivalence_on_dense_data": (
                        "sample_weight is not equivalent to removing/repeating samples."
                    ),
                    "check_sample_weight_equivalence_on_sparse_data": (
                        "sample_weight is not equivalent to removing/repeating samples."
                    ),
                    **(SPARSE_CHECK_XFAIL if cls is MiniBatchRBFKMeans else {}),
                },
            )
