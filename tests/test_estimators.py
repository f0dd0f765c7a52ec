"""The scikit-learn-style ``KMeans`` estimator and the shared estimator base."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import arbf
from arbf._estimators._base import NotFittedError
from tests.backends import assert_close


def _blobs(seed: int = 0, n: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    return np.concatenate([rng.normal(m, 1.0, (n, 2)) for m in means])


X = _blobs()
C0 = X[[0, 1, 2]]
X_NEW = _blobs(seed=1, n=5)


class TestSklearnConformance:
    def test_check_estimator(self):
        estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator_checks.check_estimator(
                arbf.KMeans(),
                expected_failed_checks={
                    # scikit-learn's own KMeans carries the same expected failure: the
                    # initialisation draws differ when samples are repeated instead of
                    # weighted, and the tolerance (mean feature variance) ignores weights.
                    "check_sample_weight_equivalence_on_dense_data": (
                        "sample_weight is not equivalent to removing/repeating samples."
                    ),
                    "check_sample_weight_equivalence_on_sparse_data": (
                        "sample_weight is not equivalent to removing/repeating samples."
                    ),
                },
            )

    def test_matches_sklearn_estimator(self):
        sk = pytest.importorskip("sklearn.cluster").KMeans
        w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
        ref = sk(n_clusters=3, init=C0, n_init=1).fit(X, sample_weight=w)
        got = arbf.KMeans(n_clusters=3, init=C0).fit(X, sample_weight=w)
        np.testing.assert_array_equal(got.labels_, ref.labels_)
        np.testing.assert_allclose(got.cluster_centers_, ref.cluster_centers_, rtol=1e-10)
        assert got.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)
        assert got.n_iter_ == ref.n_iter_
        np.testing.assert_array_equal(got.predict(X_NEW), ref.predict(X_NEW))
        np.testing.assert_allclose(got.transform(X_NEW), ref.transform(X_NEW), rtol=1e-10)
        w_new = np.arange(1.0, X_NEW.shape[0] + 1)
        assert got.score(X_NEW, sample_weight=w_new) == pytest.approx(
            ref.score(X_NEW, sample_weight=w_new), rel=1e-10
        )


class TestOnBackends:
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    def test_outputs_keep_namespace_device_dtype(self, backend, dtype):
        xdt = backend.dtype(dtype)
        Xb = backend.asarray(X, dtype)
        km = arbf.KMeans(3, init=backend.asarray(C0, dtype)).fit(Xb)
        backend.check_same_kind(km.cluster_centers_, dtype=xdt)
        backend.check_same_kind(km.labels_)
        assert isinstance(km.inertia_, float)
        assert isinstance(km.n_iter_, int)
        assert km.n_features_in_ == 2
        assert km.converged_ is True
        assert km.history_["inertia"].shape == (km.n_iter_,)

        Xn = backend.asarray(X_NEW, dtype)
        labels = km.predict(Xn)
        backend.check_same_kind(labels)
        D = km.transform(Xn)
        backend.check_same_kind(D, dtype=xdt)
        assert tuple(D.shape) == (X_NEW.shape[0], 3)
        backend.check_same_kind(km.fit_predict(Xb))
        backend.check_same_kind(km.fit_transform(Xb), dtype=xdt)
        assert isinstance(km.score(Xn), float)

    def test_matches_the_function(self, backend):
        Xb = backend.asarray(X)
        res = arbf.kmeans(Xb, 3, random_state=4)
        km = arbf.KMeans(3, random_state=4).fit(Xb)
        np.testing.assert_array_equal(backend.to_numpy(km.labels_), backend.to_numpy(res.labels))
        assert_close(km.cluster_centers_, backend.to_numpy(res.centers), backend=backend)
        assert km.inertia_ == res.inertia

    def test_transform_is_euclidean_distance(self, backend):
        km = arbf.KMeans(3, init=backend.asarray(C0)).fit(backend.asarray(X))
        C = backend.to_numpy(km.cluster_centers_)
        expected = np.linalg.norm(X_NEW[:, None, :] - C[None], axis=-1)
        assert_close(km.transform(backend.asarray(X_NEW)), expected, backend=backend, rtol=1e-10)

    def test_transform_in_chunks(self, backend):
        km = arbf.KMeans(3, init=backend.asarray(C0), working_memory=0.001)
        km.fit(backend.asarray(X))
        C = backend.to_numpy(km.cluster_centers_)
        expected = np.linalg.norm(X[:, None, :] - C[None], axis=-1)
        assert_close(km.transform(backend.asarray(X)), expected, backend=backend, rtol=1e-10)

    def test_predict_is_nearest_center(self, backend):
        km = arbf.KMeans(3, init=backend.asarray(C0)).fit(backend.asarray(X))
        D = backend.to_numpy(km.transform(backend.asarray(X_NEW)))
        labels = backend.to_numpy(km.predict(backend.asarray(X_NEW)))
        np.testing.assert_array_equal(labels, np.argmin(D, axis=1))

    def test_fit_predict_equals_labels(self, backend):
        km = arbf.KMeans(3, random_state=0)
        labels = km.fit_predict(backend.asarray(X))
        np.testing.assert_array_equal(backend.to_numpy(labels), backend.to_numpy(km.labels_))

    def test_score_is_minus_weighted_inertia(self, backend):
        Xb = backend.asarray(X)
        km = arbf.KMeans(3, init=backend.asarray(C0)).fit(Xb)
        assert km.score(Xb) == pytest.approx(-km.inertia_, rel=1e-12)
        w = np.random.default_rng(1).uniform(0.0, 2.0, X.shape[0])
        J = float(
            backend.to_numpy(
                arbf.inertia(Xb, km.cluster_centers_, sample_weight=backend.asarray(w))
            )
        )
        assert km.score(Xb, sample_weight=backend.asarray(w)) == pytest.approx(-J, rel=1e-12)

    def test_fit_with_sample_weight(self, backend):
        w = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0])
        km = arbf.KMeans(3, init=backend.asarray(C0)).fit(
            backend.asarray(X), sample_weight=backend.asarray(w)
        )
        res = arbf.kmeans(X, 3, init=C0, sample_weight=w)
        np.testing.assert_allclose(backend.to_numpy(km.cluster_centers_), res.centers, rtol=1e-10)

    def test_integer_input(self, backend):
        Xi = backend.asarray(np.round(X).astype(np.int64))
        km = arbf.KMeans(3, random_state=0).fit(Xi)
        assert backend.xp.isdtype(km.cluster_centers_.dtype, "real floating")
        backend.check_same_kind(km.predict(Xi))

    def test_same_random_state_same_fit_on_every_backend(self, backend):
        ref = arbf.KMeans(3, init="random", n_init=3, random_state=11).fit(X)
        got = arbf.KMeans(3, init="random", n_init=3, random_state=11).fit(backend.asarray(X))
        np.testing.assert_array_equal(backend.to_numpy(got.labels_), ref.labels_)


class TestFittedState:
    @pytest.mark.parametrize("method", ["predict", "transform", "score"])
    def test_not_fitted(self, method):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            getattr(arbf.KMeans(), method)(X)

    def test_not_fitted_error_is_value_and_attribute_error(self):
        assert issubclass(NotFittedError, ValueError)
        assert issubclass(NotFittedError, AttributeError)

    def test_sklearn_check_is_fitted(self):
        validation = pytest.importorskip("sklearn.utils.validation")
        km = arbf.KMeans(3)
        with pytest.raises(NotFittedError):
            validation.check_is_fitted(km)
        validation.check_is_fitted(km.fit(X))

    def test_wrong_number_of_features(self):
        km = arbf.KMeans(3, random_state=0).fit(X)
        with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 2"):
            km.predict(np.ones((4, 3)))

    def test_new_data_from_another_library(self):
        torch = pytest.importorskip("torch")
        km = arbf.KMeans(3, random_state=0).fit(torch.asarray(X))
        with pytest.raises(TypeError, match="cluster_centers_ and X come from different"):
            km.predict(X)

    def test_numpy_fitted_centers_follow_new_data(self, backend):
        km = arbf.KMeans(3, random_state=0).fit(X)
        backend.check_same_kind(km.predict(backend.asarray(X_NEW)))

    def test_refit_on_arrays_forgets_feature_names(self):
        km = arbf.KMeans(3, random_state=0).fit(_Frame(X, ["a", "b"]))
        assert list(km.feature_names_in_) == ["a", "b"]
        km.fit(X)
        assert not hasattr(km, "feature_names_in_")


class _Frame:
    """The little of a data frame that feature-name handling looks at."""

    def __init__(self, values, columns):
        self.values, self.columns = np.asarray(values), list(columns)
        self.shape = self.values.shape

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)


class TestFeatureNames:
    def test_recorded(self):
        km = arbf.KMeans(3, random_state=0).fit(_Frame(X, ["a", "b"]))
        np.testing.assert_array_equal(km.feature_names_in_, np.array(["a", "b"], dtype=object))
        assert km.feature_names_in_.dtype == object

    def test_non_string_names_ignored(self):
        km = arbf.KMeans(3, random_state=0).fit(_Frame(X, [0, 1]))
        assert not hasattr(km, "feature_names_in_")

    def test_mixed_names_refused(self):
        with pytest.raises(TypeError, match="Feature names are only supported if all"):
            arbf.KMeans(3).fit(_Frame(X, ["a", 1]))

    def test_mismatch(self):
        km = arbf.KMeans(3, random_state=0).fit(_Frame(X, ["a", "b"]))
        with pytest.raises(ValueError, match="The feature names should match"):
            km.predict(_Frame(X_NEW, ["a", "c"]))

    def test_array_after_frame_warns(self):
        km = arbf.KMeans(3, random_state=0).fit(_Frame(X, ["a", "b"]))
        with pytest.warns(UserWarning, match="X does not have valid feature names"):
            km.predict(X_NEW)

    def test_frame_after_array_warns(self):
        km = arbf.KMeans(3, random_state=0).fit(X)
        with pytest.warns(UserWarning, match="X has feature names, but KMeans was fitted"):
            km.transform(_Frame(X_NEW, ["a", "b"]))

    def test_feature_names_out(self):
        km = arbf.KMeans(3, random_state=0).fit(X)
        assert list(km.get_feature_names_out()) == ["kmeans0", "kmeans1", "kmeans2"]


class TestParams:
    def test_init_does_no_work(self):
        km = arbf.KMeans(n_clusters=-5, init="nonsense", tol="x")  # validated in fit
        assert km.n_clusters == -5
        with pytest.raises(ValueError):
            km.fit(X)

    def test_get_set_params_and_repr(self):
        km = arbf.KMeans(3, tol=1e-3)
        params = km.get_params()
        assert params["n_clusters"] == 3
        assert params["tol"] == 1e-3
        assert params["working_memory"] is None
        assert km.set_params(max_iter=7) is km
        assert km.max_iter == 7
        assert "max_iter=7" in repr(km)
        assert "n_init" not in repr(km)
        with pytest.raises(ValueError, match="Invalid parameter"):
            km.set_params(n_cluster=2)

    def test_clone(self):
        base = pytest.importorskip("sklearn.base")
        km = arbf.KMeans(4, random_state=1).fit(X)
        c = base.clone(km)
        assert c.get_params() == km.get_params()
        assert not hasattr(c, "cluster_centers_")

    def test_verbose_prints(self, capsys):
        arbf.KMeans(3, init=C0, verbose=True).fit(X)
        assert "\nIteration 0, inertia " in capsys.readouterr().out

    def test_in_a_pipeline(self):
        pipeline = pytest.importorskip("sklearn.pipeline")
        preprocessing = pytest.importorskip("sklearn.preprocessing")
        pipe = pipeline.make_pipeline(preprocessing.StandardScaler(), arbf.KMeans(3, n_init=2))
        assert pipe.fit_transform(X).shape == (X.shape[0], 3)


def test_without_sklearn():
    """With scikit-learn absent the estimators use arbf's own minimal base classes."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["sklearn"] = None  # makes `import sklearn...` raise ImportError
        import numpy as np
        import arbf
        from arbf._estimators import _base
        assert not _base.HAVE_SKLEARN
        X = np.array([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
        km = arbf.KMeans(2, random_state=0, tol=1e-3)
        assert repr(km) == "KMeans(n_clusters=2, random_state=0, tol=0.001)", repr(km)
        assert km.get_params()["n_clusters"] == 2
        km.set_params(n_clusters=2, max_iter=50)
        try:
            km.set_params(bogus=1)
        except ValueError as e:
            assert "Invalid parameter" in str(e)
        else:
            raise AssertionError("set_params accepted a bogus parameter")
        try:
            km.predict(X)
        except _base.NotFittedError as e:
            assert isinstance(e, ValueError) and isinstance(e, AttributeError)
        else:
            raise AssertionError("predict before fit")
        labels = km.fit_predict(X)
        assert sorted(np.bincount(labels)) == [2, 2]
        assert km.fit_transform(X).shape == (4, 2)
        assert km._estimator_type == "clusterer"
        assert "sklearn" not in {m.split(".")[0] for m in sys.modules if sys.modules[m]}
        print("ok")
        """
    )
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
