"""Bad input gets a clear error: the exception type and a message naming the problem.

One test per case, on every backend where the case can be expressed.  The checks live in
:mod:`arbf._validation`; they are exercised here through the public functions.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import arbf

X_OK = np.array([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0], [5.0, 6.0], [9.0, 0.0]])
C_OK = X_OK[[0, 2]]


def _kmeans(backend, X=X_OK, k=2, **kw):
    return arbf.kmeans(backend.asarray(X) if isinstance(X, np.ndarray) else X, k, **kw)


def _needs(mod: str) -> None:
    if importlib.util.find_spec(mod) is None:
        pytest.skip(f"{mod} not installed")


# ---- X ---------------------------------------------------------------------------------


class TestData:
    def test_1d(self, backend):
        with pytest.raises(ValueError, match=r"X must be a 2-D array.*1 dimension"):
            _kmeans(backend, X_OK[:, 0])

    def test_4d(self, backend):
        # 3-D input is a batch of problems (tests/test_batched.py); 4-D is refused
        with pytest.raises(ValueError, match=r"X must be a 2-D array.*4 dimension"):
            _kmeans(backend, X_OK[:, :, None, None])

    def test_no_samples(self, backend):
        with pytest.raises(ValueError, match=r"X has 0 sample\(s\) \(shape=\(0, 2\)\)"):
            _kmeans(backend, np.zeros((0, 2)), 1)

    def test_no_features(self, backend):
        with pytest.raises(ValueError, match=r"X has 0 feature\(s\) \(shape=\(5, 0\)\)"):
            _kmeans(backend, np.zeros((5, 0)), 1)

    def test_nan(self, backend):
        X = X_OK.copy()
        X[1, 1] = np.nan
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            _kmeans(backend, X)

    def test_inf(self, backend):
        X = X_OK.copy()
        X[3, 0] = -np.inf
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            _kmeans(backend, X)

    @pytest.mark.parametrize("fast", [True, False])
    @pytest.mark.parametrize("init", ["k-means++", "random", "k-means||", "array"])
    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_every_init_and_route(self, backend, bad, init, fast):
        """``kmeans`` proves X finite with its extent pass (``max`` and ``min`` propagate
        NaN and inf) instead of a separate scan: every entry position, init and route
        still raises the validation's error, before any center is drawn."""
        for row, col in ((0, 0), (4, 1)):
            X = X_OK.copy()
            X[row, col] = bad
            i = backend.asarray(X_OK[:2].copy()) if init == "array" else init
            with arbf.config_context(fast_paths=fast):
                with pytest.raises(ValueError, match=r"^X contains NaN or infinity$"):
                    _kmeans(backend, X, init=i, n_init=1)

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    @pytest.mark.parametrize(
        "entry",
        ["kmeans_plusplus", "kmeans_parallel", "deterministic_annealing", "anneal_init"],
    )
    def test_non_finite_other_entry_points(self, backend, entry, bad):
        """The entry points whose extent pass proves X finite (no separate scan) raise
        the validation's error for NaN and inf anywhere in X."""
        call = {
            "kmeans_plusplus": lambda X: arbf.kmeans_plusplus(X, 2, random_state=0),
            "kmeans_parallel": lambda X: arbf.kmeans_parallel(X, 2, random_state=0),
            "deterministic_annealing": lambda X: arbf.deterministic_annealing(
                X, 2, random_state=0
            ),
            "anneal_init": lambda X: arbf.anneal_init(X, 2, random_state=0),
        }[entry]
        call(backend.asarray(X_OK.copy()))  # finite data pass
        for row, col in ((0, 0), (4, 1)):
            X = X_OK.copy()
            X[row, col] = bad
            with pytest.raises(ValueError, match=r"^X contains NaN or infinity$"):
                call(backend.asarray(X))

    def test_complex(self, backend):
        with pytest.raises(ValueError, match="Complex data not supported: X"):
            _kmeans(backend, X_OK + 1j)

    @pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
    def test_integer_and_bool_promoted_to_default_float(self, backend, dtype):
        X = backend.asarray(np.array([[0, 0], [0, 1], [1, 1], [1, 0]]).astype(dtype))
        res = arbf.kmeans(X, 2, random_state=0)
        xp = backend.xp
        default = xp.__array_namespace_info__().default_dtypes(device=backend.device)[
            "real floating"
        ]
        backend.check_same_kind(res.centers, dtype=default)

    def test_object_dtype_with_non_numbers(self):
        X = X_OK.astype(object)
        X[0, 0] = {"a": 1}
        with pytest.raises(TypeError, match="X has dtype object with entries that are not"):
            arbf.kmeans(X, 2)

    def test_strings(self):
        with pytest.raises(TypeError, match="X has unsupported dtype <U"):
            arbf.kmeans(np.array([["a", "b"], ["c", "d"]]), 1)

    def test_sparse_data_accepted_sparse_weights_and_centers_refused(self):
        # sparse data are clustered (tests/test_sparse.py); weights and centers are dense
        sparse = pytest.importorskip("scipy.sparse")
        arbf.kmeans(sparse.csr_matrix(X_OK), 2, random_state=0)
        w = sparse.csr_matrix(np.ones((1, X_OK.shape[0])))
        with pytest.raises(TypeError, match="Sparse data was passed for sample_weight"):
            arbf.kmeans(X_OK, 2, sample_weight=w)
        with pytest.raises(TypeError, match="Sparse data was passed for init"):
            arbf.kmeans(X_OK, 2, init=sparse.csr_matrix(X_OK[:2]))

    def test_dask_unknown_chunk_sizes(self):
        _needs("dask")
        import dask.array as da

        X = da.from_array(X_OK, chunks=(2, 2))
        X = X[X[:, 0] >= 0]  # boolean indexing: row count unknown until computed
        with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
            arbf.kmeans(X, 2)


# ---- n_clusters ------------------------------------------------------------------------


class TestNClusters:
    @pytest.mark.parametrize("k", [0, -2])
    def test_below_one(self, backend, k):
        with pytest.raises(ValueError, match=f"n_clusters must be a positive integer, got {k}"):
            _kmeans(backend, k=k)

    def test_more_than_samples(self, backend):
        with pytest.raises(ValueError, match="n_samples=5 should be >= n_clusters=6"):
            _kmeans(backend, k=6)

    @pytest.mark.parametrize("k", [2.0, "2", True, None])
    def test_not_an_integer(self, k):
        with pytest.raises(TypeError, match="n_clusters must be a positive integer"):
            arbf.kmeans(X_OK, k)

    def test_numpy_integer_accepted(self):
        assert arbf.kmeans(X_OK, np.int64(2), random_state=0).centers.shape == (2, 2)


# ---- sample_weight ---------------------------------------------------------------------


class TestSampleWeight:
    def test_nan(self, backend):
        w = np.ones(5)
        w[2] = np.nan
        with pytest.raises(ValueError, match="sample_weight contains NaN or infinity"):
            _kmeans(backend, sample_weight=backend.asarray(w))

    def test_inf(self, backend):
        w = np.ones(5)
        w[0] = np.inf
        with pytest.raises(ValueError, match="sample_weight contains NaN or infinity"):
            _kmeans(backend, sample_weight=backend.asarray(w))

    def test_negative(self, backend):
        w = np.ones(5)
        w[4] = -0.5
        with pytest.raises(ValueError, match="sample_weight contains negative values"):
            _kmeans(backend, sample_weight=backend.asarray(w))

    def test_all_zero(self, backend):
        with pytest.raises(ValueError, match="sample_weight sums to zero"):
            _kmeans(backend, sample_weight=backend.asarray(np.zeros(5)))

    def test_wrong_length(self, backend):
        with pytest.raises(ValueError, match=r"sample_weight must be 1-D with n_samples=5"):
            _kmeans(backend, sample_weight=backend.asarray(np.ones(4)))

    def test_two_dimensional(self, backend):
        with pytest.raises(ValueError, match=r"sample_weight must be 1-D.*shape \(5, 1\)"):
            _kmeans(backend, sample_weight=backend.asarray(np.ones((5, 1))))

    def test_complex(self):
        with pytest.raises(ValueError, match="Complex data not supported: sample_weight"):
            arbf.kmeans(X_OK, 2, sample_weight=np.ones(5) + 0j)

    def test_strings(self, backend):
        with pytest.raises(TypeError, match="sample_weight has unsupported dtype <U"):
            _kmeans(backend, sample_weight=["a", "b", "c", "d", "e"])

    @pytest.mark.parametrize("w", [0.0, -1.0, float("nan")])
    def test_bad_scalar(self, w):
        with pytest.raises(ValueError, match="sample_weight must be positive and finite"):
            arbf.kmeans(X_OK, 2, sample_weight=w)

    def test_list_accepted(self, backend):
        res = _kmeans(backend, sample_weight=[1, 2, 3, 4, 5], init=backend.asarray(C_OK))
        backend.check_same_kind(res.centers)


# ---- init ------------------------------------------------------------------------------


class TestInit:
    def test_nan(self, backend):
        C = C_OK.copy()
        C[1, 0] = np.nan
        with pytest.raises(ValueError, match="init contains NaN or infinity"):
            _kmeans(backend, init=backend.asarray(C))

    def test_inf(self, backend):
        C = C_OK.copy()
        C[0, 1] = np.inf
        with pytest.raises(ValueError, match="init contains NaN or infinity"):
            _kmeans(backend, init=backend.asarray(C))

    def test_wrong_number_of_centers(self, backend):
        with pytest.raises(ValueError, match=r"initial centers \(3, 2\).*number of clusters 2"):
            _kmeans(backend, init=backend.asarray(X_OK[:3]))

    def test_wrong_number_of_features(self, backend):
        with pytest.raises(ValueError, match=r"initial centers \(2, 1\).*number of features"):
            _kmeans(backend, init=backend.asarray(C_OK[:, :1]))

    def test_not_2d(self, backend):
        with pytest.raises(ValueError, match=r"init must be 2-D.*shape \(2,\)"):
            _kmeans(backend, init=backend.asarray(C_OK[:, 0]))

    def test_complex(self, backend):
        with pytest.raises(ValueError, match="Complex data not supported: init"):
            _kmeans(backend, init=backend.asarray(C_OK + 0j))

    def test_callable_returning_wrong_shape(self):
        with pytest.raises(ValueError, match="initial centers"):
            arbf.kmeans(X_OK, 2, init=lambda X, k, random_state: X[:3])

    @pytest.mark.parametrize("init", ["kmeans++", "Random", ""])
    def test_bad_string(self, init):
        with pytest.raises(ValueError, match=r"init must be 'k-means\+\+',.* 'random'"):
            arbf.kmeans(X_OK, 2, init=init)

    def test_host_numpy_init_is_moved_to_the_data(self, backend):
        res = _kmeans(backend, init=C_OK)  # plain NumPy centers are host data: allowed
        backend.check_same_kind(res.centers)


# ---- mixed namespaces and devices ------------------------------------------------------


class TestMixing:
    def test_torch_data_jax_init(self):
        _needs("torch")
        _needs("jax")
        import jax.numpy as jnp
        import torch

        with pytest.raises(TypeError, match="init and X come from different array libraries"):
            arbf.kmeans(torch.asarray(X_OK), 2, init=jnp.asarray(C_OK))

    def test_torch_data_jax_weights(self):
        _needs("torch")
        _needs("jax")
        import jax.numpy as jnp
        import torch

        with pytest.raises(TypeError, match="sample_weight and X come from different array"):
            arbf.kmeans(torch.asarray(X_OK), 2, sample_weight=jnp.ones(5))

    def test_numpy_data_torch_init(self):
        _needs("torch")
        import torch

        with pytest.raises(TypeError, match="init and X come from different array libraries"):
            arbf.kmeans(X_OK, 2, init=torch.asarray(C_OK))

    def test_functions_reject_mixed_libraries(self):
        _needs("torch")
        _needs("array_api_strict")
        import array_api_strict
        import torch

        with pytest.raises(TypeError, match="different array libraries"):
            arbf.inertia(torch.asarray(X_OK), array_api_strict.asarray(C_OK))

    def test_init_on_another_device(self):
        _needs("array_api_strict")
        import array_api_strict as xps

        C = xps.asarray(C_OK, device=xps.Device("device1"))
        with pytest.raises(ValueError, match="arrays are on different devices"):
            arbf.kmeans(xps.asarray(X_OK), 2, init=C)

    def test_weights_on_another_device(self):
        _needs("array_api_strict")
        import array_api_strict as xps

        w = xps.ones(5, dtype=xps.float64, device=xps.Device("device1"))
        with pytest.raises(ValueError, match="arrays are on different devices"):
            arbf.kmeans(xps.asarray(X_OK), 2, sample_weight=w)


# ---- options ---------------------------------------------------------------------------


class TestOptions:
    """A value of the wrong type is a TypeError, a wrong value of the right type a
    ValueError; the message names the parameter and what it must be."""

    @pytest.mark.parametrize(("n_init", "error"), [(0, ValueError), (-1, ValueError),
                                                   ("all", ValueError), (1.5, TypeError),
                                                   (True, TypeError)])  # fmt: skip
    def test_bad_n_init(self, n_init, error):
        with pytest.raises(error, match="n_init must be 'auto' or a positive integer"):
            arbf.kmeans(X_OK, 2, n_init=n_init)

    @pytest.mark.parametrize(("max_iter", "error"), [(0, ValueError), (-3, ValueError),
                                                     (2.5, TypeError), ("10", TypeError),
                                                     (False, TypeError)])  # fmt: skip
    def test_bad_max_iter(self, max_iter, error):
        with pytest.raises(error, match="max_iter must be a positive integer"):
            arbf.kmeans(X_OK, 2, max_iter=max_iter)

    @pytest.mark.parametrize(("tol", "error"), [(-1e-4, ValueError), (float("nan"), ValueError),
                                                (float("inf"), ValueError), ("0.1", TypeError),
                                                (None, TypeError), (True, TypeError)])  # fmt: skip
    def test_bad_tol(self, tol, error):
        with pytest.raises(error, match="tol must be a non-negative number"):
            arbf.kmeans(X_OK, 2, tol=tol)

    @pytest.mark.parametrize("random_state", ["0", 1.5, object()])
    def test_bad_random_state(self, random_state):
        with pytest.raises(TypeError, match="random_state must be None, an int"):
            arbf.kmeans(X_OK, 2, random_state=random_state)

    @pytest.mark.parametrize("wm", [0, -1.0])
    def test_bad_working_memory(self, wm):
        with pytest.raises(ValueError, match="working_memory must be a positive number"):
            arbf.kmeans(X_OK, 2, working_memory=wm)


# ---- the same checks behind the other entry points ---------------------------------------


class TestOtherEntryPoints:
    def test_kmeans_plusplus_validates(self, backend):
        X = X_OK.copy()
        X[0, 0] = np.nan
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            arbf.kmeans_plusplus(backend.asarray(X), 2)
        with pytest.raises(ValueError, match="sample_weight contains negative values"):
            arbf.kmeans_plusplus(
                backend.asarray(X_OK), 2, sample_weight=backend.asarray(-np.ones(5))
            )
        with pytest.raises(ValueError, match="n_samples=5 should be >= n_clusters=9"):
            arbf.kmeans_plusplus(backend.asarray(X_OK), 9)

    def test_estimator_fit_validates(self, backend):
        with pytest.raises(ValueError, match="n_samples=5 should be >= n_clusters=8"):
            arbf.KMeans().fit(backend.asarray(X_OK))
        with pytest.raises(ValueError, match="X must be a 2-D array"):
            arbf.KMeans(2).fit(backend.asarray(X_OK[:, 0]))
