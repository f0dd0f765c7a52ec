"""The scikit-learn-style ``RBFKMeans`` estimator."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import arbf
from tests.backends import assert_close


def _blobs(seed: int = 0, n: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    return np.concatenate([rng.normal(m, 1.0, (n, 2)) for m in means])


X = _blobs()
C0 = X[[0, 20, 40]]


@pytest.mark.parametrize(
    "est",
    [arbf.RBFKMeans(), arbf.RBFKMeans(sigma=0.5, kind="entmax15")],
    ids=["anneal-softmax", "fixed-entmax15"],
)
def test_check_estimator(est):
    estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator_checks.check_estimator(
            est,
            expected_failed_checks={
                # as for scikit-learn's KMeans: the k-means++ draws differ when samples
                # are repeated instead of weighted
                "check_sample_weight_equivalence_on_dense_data": (
                    "sample_weight is not equivalent to removing/repeating samples."
                ),
                "check_sample_weight_equivalence_on_sparse_data": (
                    "sample_weight is not equivalent to removing/repeating samples."
                ),
                # it reads classifier_tags of any estimator with predict_proba (None for
                # a clusterer); sparse input is tested in tests/test_sparse.py
                "check_estimator_sparse_array": "classifier_tags read on a clusterer",
                "check_estimator_sparse_matrix": "classifier_tags read on a clusterer",
            },
        )


class TestOnBackends:
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_fixed_sigma(self, backend, kind):
        Xb = backend.asarray(X)
        est = arbf.RBFKMeans(3, sigma=2.0, kind=kind, init=backend.asarray(C0)).fit(Xb)
        backend.check_same_kind(est.cluster_centers_, dtype=backend.xp.float64)
        ref = arbf.rbf_kmeans(X, C0, sigma=2.0, kind=kind, tol=1e-6)
        assert_close(est.cluster_centers_, ref.centers, backend=backend, rtol=1e-10)
        P = est.predict_proba(Xb)
        backend.check_same_kind(P, dtype=backend.xp.float64)
        Pn = backend.to_numpy(P)
        np.testing.assert_allclose(Pn.sum(axis=1), 1.0, rtol=1e-12)
        # Voronoi preservation: the most responsible center is the nearest one
        np.testing.assert_array_equal(np.argmax(Pn, axis=1), backend.to_numpy(est.labels_))
        np.testing.assert_array_equal(
            backend.to_numpy(est.predict(Xb)), backend.to_numpy(est.labels_)
        )
        F = arbf.free_energy(Xb, est.cluster_centers_, sigma=2.0, kind=kind)
        assert est.score(Xb) == pytest.approx(-float(backend.to_numpy(F)), rel=1e-12)
        assert est.transform(Xb).shape == (X.shape[0], 3)
        assert est.inertia_ == pytest.approx(
            float(backend.to_numpy(arbf.inertia(Xb, est.cluster_centers_))), rel=1e-12
        )

    def test_anneal_ends_at_kmeans_fixed_point(self, backend):
        Xb = backend.asarray(X)
        est = arbf.RBFKMeans(3, kind="entmax15", random_state=0).fit(Xb)
        assert est.path_.shape[1:] == (3, 2)
        assert est.sigmas_.shape == (est.path_.shape[0],)
        step = arbf.lloyd_step(Xb, est.cluster_centers_)
        assert_close(step, backend.to_numpy(est.cluster_centers_), backend=backend, rtol=1e-12)
        P = backend.to_numpy(est.predict_proba(Xb))
        assert np.all((P == 0) | (P == 1))  # entmax-1.5 at the last level is exactly hard


def test_anneal_finds_the_three_blobs():
    est = arbf.RBFKMeans(3, random_state=0).fit(X)
    got = np.sort(est.cluster_centers_[:, 0] + 10 * est.cluster_centers_[:, 1])
    truth = [X[20:40].mean(0), X[:20].mean(0), X[40:].mean(0)]
    exp = np.sort([c[0] + 10 * c[1] for c in truth])
    np.testing.assert_allclose(got, exp, rtol=1e-10)


def test_refit_drops_path():
    est = arbf.RBFKMeans(3, random_state=0).fit(X)
    assert hasattr(est, "path_")
    est.set_params(sigma=1.0).fit(X)
    assert not hasattr(est, "path_")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"sigma": "cold"}, "sigma"),
        ({"sigma": -1.0}, "sigma"),
        ({"kind": "hard"}, "kind"),
        ({"init": "best"}, "init"),
        ({"update": "newton"}, "update"),
        ({"n_clusters": 100}, "n_clusters"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        arbf.RBFKMeans(**{"n_clusters": 3, **params}).fit(X)


def test_not_fitted():
    from arbf._estimators._base import NotFittedError

    with pytest.raises(NotFittedError):
        arbf.RBFKMeans().predict_proba(X)
