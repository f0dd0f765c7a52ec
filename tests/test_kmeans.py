"""arbf.kmeans against scikit-learn's KMeans, on every backend of the matrix.

From the same initial centers, labels must be equal and centers, inertia and ``n_iter``
must match ``sklearn.cluster.KMeans(init=C0, n_init=1, algorithm="lloyd")`` (centers to
rtol 1e-6 in float64, 1e-4 in float32).  Plus the driver's own semantics: ``n_init``,
the restart rounding guard, warnings, logging, history.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings

import numpy as np
import pytest

import arbf
from arbf._drivers import engine as kmeans_module
from arbf._drivers.results import KMeansResult
from tests.backends import assert_close

sklearn_cluster = pytest.importorskip("sklearn.cluster")


# --------------------------------------------------------------------------------------
# the battery: (X, C0, sample_weight, options), all small
# --------------------------------------------------------------------------------------


def _blobs(seed: int = 0, n: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    return np.concatenate([rng.normal(m, 1.0, (n, 2)) for m in means])


def _case(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
    X = _blobs()
    start = X[[0, 1, 2]]  # all three in the first blob: several iterations
    if name == "blobs":
        return X, start, None, {}
    if name == "blobs_tol0":
        return X, start, None, {"tol": 0.0}
    if name == "blobs_loose_tol":
        return X, start, None, {"tol": 2.0}  # stops on the tolerance, not on labels
    if name == "blobs_max_iter2":
        return X, start, None, {"max_iter": 2}
    if name == "anisotropic":
        A = X @ np.array([[0.6, -0.6], [-0.4, 0.8]])
        return A, A[[0, 1, 2]], None, {}
    if name == "duplicates":  # 6 distinct points, 60 samples (same shape as the blobs)
        base = np.random.default_rng(1).normal(0.0, 3.0, (6, 2))
        D = np.repeat(base, [14, 1, 9, 11, 24, 1], axis=0)
        return D, D[[0, 14, 15]], None, {}
    if name == "fewer_distinct":  # 4 clusters, 3 distinct points: an empty one stays
        D = np.array([[0.0, 0.0]] * 3 + [[1.0, 1.0]] * 2 + [[5.0, 5.0]] * 2)
        return D, np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [9.0, 9.0]]), None, {}
    if name in ("ties", "ties_three"):
        # integer grid with mean 0: the centred data stay integral, so ties are exact
        g = np.array([[x, y] for x in range(-2, 3) for y in range(-6, 7) if y], dtype=float)
        if name == "ties":
            return g, np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 6.0]]), None, {}
        return g, np.array([[-2.0, -2.0], [2.0, -2.0], [0.0, 2.0]]), None, {}
    if name == "weights":
        w = np.random.default_rng(2).uniform(0.5, 3.0, X.shape[0])
        return X, start, w, {}
    if name == "zero_weights":
        w = np.random.default_rng(3).uniform(0.5, 3.0, X.shape[0])
        w[::4] = 0.0
        return X, X[[1, 2, 3]], w, {}
    if name == "empty_cluster":  # one initial center far from all data
        return X, np.vstack([X[[0, 25]], [[100.0, 100.0]]]), None, {}
    if name == "empty_cluster_weighted":
        w = np.random.default_rng(4).uniform(0.5, 3.0, X.shape[0])
        return X, np.vstack([[[-50.0, 80.0]], X[[0, 25]]]), w, {}
    raise ValueError(name)


CASES = [
    "blobs",
    "blobs_tol0",
    "blobs_loose_tol",
    "blobs_max_iter2",
    "anisotropic",
    "duplicates",
    "fewer_distinct",
    "ties",
    "ties_three",
    "weights",
    "zero_weights",
    "empty_cluster",
    "empty_cluster_weighted",
]


@functools.cache
def _sklearn_reference(name: str, dtype: str) -> tuple[np.ndarray, np.ndarray, float, int]:
    X, C0, w, opts = _case(name)
    X, C0 = X.astype(dtype), C0.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = sklearn_cluster.KMeans(
            n_clusters=C0.shape[0], init=C0, n_init=1, algorithm="lloyd", **opts
        ).fit(X, sample_weight=None if w is None else w.astype(dtype))
    return km.labels_, km.cluster_centers_, float(km.inertia_), int(km.n_iter_)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", CASES)
def test_matches_sklearn(backend, name, dtype):
    X, C0, w, opts = _case(name)
    labels, centers, inertia, n_iter = _sklearn_reference(name, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", arbf.ConvergenceWarning)
        res = arbf.kmeans(
            backend.asarray(X, dtype),
            C0.shape[0],
            init=backend.asarray(C0, dtype),
            sample_weight=None if w is None else backend.asarray(w, dtype),
            **opts,
        )
    rtol = 1e-6 if dtype == "float64" else 1e-4
    atol = rtol * float(np.abs(X).max())
    np.testing.assert_array_equal(backend.to_numpy(res.labels), labels)
    backend.check_same_kind(res.labels)
    assert_close(
        res.centers, centers, backend=backend, rtol=rtol, atol=atol, dtype=backend.dtype(dtype)
    )
    np.testing.assert_allclose(res.inertia, inertia, rtol=rtol, atol=atol**2)
    assert res.n_iter == n_iter
    assert isinstance(res.inertia, float)
    assert isinstance(res.n_iter, int)


def test_result_unpacks_like_sklearn_k_means():
    X, C0, _, _ = _case("blobs")
    centers, labels, inertia = arbf.kmeans(X, 3, init=C0)
    assert centers.shape == (3, 2)
    assert labels.shape == (X.shape[0],)
    assert isinstance(inertia, float)


# --------------------------------------------------------------------------------------
# initialisation inside kmeans, n_init and the restart guard
# --------------------------------------------------------------------------------------


class TestInitAndRestarts:
    def test_same_random_state_same_result_on_every_backend(self, backend):
        X = _blobs(5)
        ref = arbf.kmeans(X, 3, random_state=7)
        got = arbf.kmeans(backend.asarray(X), 3, random_state=7)
        np.testing.assert_array_equal(backend.to_numpy(got.labels), backend.to_numpy(ref.labels))
        assert_close(got.centers, ref.centers, backend=backend, rtol=1e-10)

    @pytest.mark.parametrize(
        ("init", "runs"),
        [("k-means++", 1), ("random", 10), ("callable", 10), ("array", 1)],
    )
    def test_n_init_auto(self, init, runs):
        X = _blobs(6)
        if init == "callable":

            def init(X, k, random_state):
                return X[random_state.choice(X.shape[0], k, replace=False)]

        elif init == "array":
            init = X[:3]
        res = arbf.kmeans(X, 3, init=init, n_init="auto", random_state=0)
        assert len(res.n_init_inertia) == runs

    def test_n_init_keeps_the_best_run(self, backend):
        X = _blobs(8)
        res = arbf.kmeans(backend.asarray(X), 3, init="random", n_init=3, random_state=3)
        assert len(res.n_init_inertia) == 3
        assert res.inertia == pytest.approx(min(res.n_init_inertia), rel=1e-12)

    def test_random_init_is_weight_aware(self, backend):
        X = _blobs(9)
        w = np.zeros(X.shape[0])
        w[:20] = 1.0  # only the first blob has weight
        res = arbf.kmeans(
            backend.asarray(X),
            2,
            init="random",
            n_init=1,
            random_state=0,
            sample_weight=backend.asarray(w),
            max_iter=1,
            tol=0.0,
        )
        # after one update both centers are weighted means of first-blob samples
        C = backend.to_numpy(res.centers)
        assert np.all(np.linalg.norm(C - X[:20].mean(axis=0), axis=1) < 3.0)

    def test_rounding_guard(self, monkeypatch):
        """A later run replaces the best only if lower *and* a different partition."""
        same_renamed = np.array([1, 1, 0, 0])
        outs = iter(
            [
                (None, np.array([0, 0, 1, 1]), 1.0, 2, True, {}),
                (None, same_renamed, 1.0 - 1e-15, 3, True, {}),  # rounding: same clustering
                (None, np.array([0, 1, 1, 1]), 0.9, 4, True, {}),  # truly better
                (None, np.array([0, 0, 0, 1]), 0.95, 5, True, {}),  # worse
            ]
        )

        def fake(X, w, C0, **kw):
            _, labels, inertia, n_iter, converged, history = next(outs)
            return KMeansResult(C0, labels, inertia, n_iter, converged, history)

        monkeypatch.setattr(kmeans_module, "lloyd", fake)
        X = np.array([[0.0], [0.1], [5.0], [5.1]])
        res = arbf.kmeans(X, 2, init="random", n_init=4, random_state=0)
        assert res.n_iter == 4
        assert res.inertia == 0.9
        assert res.n_init_inertia == [1.0, 1.0 - 1e-15, 0.9, 0.95]

    def test_rounding_guard_keeps_first_of_equal_partitions(self, monkeypatch):
        outs = iter(
            [
                (None, np.array([0, 0, 1, 1]), 1.0, 2, True, {}),
                (None, np.array([1, 1, 0, 0]), 1.0 - 1e-15, 3, True, {}),
            ]
        )
        monkeypatch.setattr(
            kmeans_module, "lloyd", lambda X, w, C0, **kw: KMeansResult(C0, *next(outs)[1:])
        )
        res = arbf.kmeans(np.array([[0.0], [0.1], [5.0], [5.1]]), 2, init="random", n_init=2)
        assert res.n_iter == 2
        assert res.inertia == 1.0

    def test_explicit_init_with_n_init_warns(self):
        X = _blobs()
        with pytest.warns(RuntimeWarning, match="Explicit initial center position passed"):
            res = arbf.kmeans(X, 3, init=X[:3], n_init=4)
        assert len(res.n_init_inertia) == 1

    def test_explicit_init_with_auto_n_init_does_not_warn(self):
        X = _blobs()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            arbf.kmeans(X, 3, init=X[:3])

    def test_callable_init_receives_data_and_generator(self, backend):
        seen = {}

        def init(X, k, random_state):
            seen["X"], seen["rng"] = X, random_state
            return X[:k, ...]

        X = _blobs()
        arbf.kmeans(backend.asarray(X), 3, init=init, n_init=1)
        backend.check_same_kind(seen["X"])
        assert isinstance(seen["rng"], np.random.Generator)


# --------------------------------------------------------------------------------------
# warnings, logging, history
# --------------------------------------------------------------------------------------


class TestProgress:
    def test_fewer_distinct_clusters_warns(self, backend):
        X, C0, _, _ = _case("fewer_distinct")
        with pytest.warns(arbf.ConvergenceWarning, match=r"distinct clusters \(3\).*\(4\)"):
            arbf.kmeans(backend.asarray(X), 4, init=backend.asarray(C0))

    def test_verbose_prints_each_iteration(self, capsys, caplog):
        """scikit-learn's lines, printed to stdout (not logged) at the time of the call."""
        X, C0, _, _ = _case("blobs")
        caplog.set_level(logging.DEBUG, logger="arbf")
        res = arbf.kmeans(X, 3, init=C0, verbose=True)
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == "Initialization complete"
        its = [m for m in lines if m.startswith("Iteration")]
        assert len(its) == res.n_iter
        assert its[0] == f"Iteration 0, inertia {res.history['inertia'][0]}."
        assert lines[-1] == f"Converged at iteration {res.n_iter - 1}: strict convergence."
        assert not [r for r in caplog.records if r.levelno >= logging.INFO]
        arbf.kmeans(X, 3, init=C0, verbose=True, tol=1e3)
        assert re.search(r"center shift .* within tolerance", capsys.readouterr().out)

    def test_verbose_cosine_prints_the_cosine_inertia(self, capsys):
        """Spherical K-Means reports sum w (1 - cos), half the engine's squared distances:
        the verbose lines print the same numbers as the result and its history."""
        X, _, _, _ = _case("blobs")
        X = X + 5.0  # off the origin: the directions differ
        res = arbf.kmeans(X, 3, metric="cosine", n_init=1, random_state=0, verbose=True)
        its = [m for m in capsys.readouterr().out.splitlines() if m.startswith("Iteration")]
        assert len(its) == res.n_iter
        for line, value in zip(its, res.history["inertia"], strict=True):
            assert line == f"Iteration {its.index(line)}, inertia {value}."
        assert float(its[-1].split()[-1].rstrip(".")) == pytest.approx(res.inertia, rel=1e-12)

    def test_not_verbose_prints_nothing(self, capsys, caplog):
        X, C0, _, _ = _case("blobs")
        caplog.set_level(logging.INFO, logger="arbf")
        arbf.kmeans(X, 3, init=C0)
        assert capsys.readouterr().out == ""
        assert not [r for r in caplog.records if r.name == "arbf" and r.levelno >= logging.INFO]

    def test_the_library_adds_only_a_null_handler(self):
        handlers = logging.getLogger("arbf").handlers
        assert [type(h) for h in handlers] == [logging.NullHandler]

    def test_history_and_converged(self, backend):
        X, C0, _, _ = _case("blobs")
        Xb = backend.asarray(X)
        res = arbf.kmeans(Xb, 3, init=backend.asarray(C0), tol=0.0)
        h = res.history
        assert set(h) == {"inertia", "center_shift"}
        assert isinstance(h["inertia"], np.ndarray)
        assert h["inertia"].shape == h["center_shift"].shape == (res.n_iter,)
        assert res.converged
        # the first entry is the inertia of the initial centers; Lloyd never increases it
        J0 = float(backend.to_numpy(arbf.inertia(Xb, backend.asarray(C0))))
        assert h["inertia"][0] == pytest.approx(J0, rel=1e-12)
        assert np.all(np.diff(h["inertia"]) <= 1e-9 * h["inertia"][0])
        # strict convergence: the last update moved nothing
        assert h["center_shift"][-1] == 0.0
        assert h["inertia"][-1] == pytest.approx(res.inertia, rel=1e-12)

    def test_one_host_sync_per_iteration(self, backend, monkeypatch):
        calls = []
        real = kmeans_module.to_host

        def counting(x):
            calls.append(1)
            return real(x)

        monkeypatch.setattr(kmeans_module, "to_host", counting)
        X, C0, _, _ = _case("blobs")
        counts = []
        for max_iter in (1, 2):
            calls.clear()
            arbf.kmeans(backend.asarray(X), 3, init=backend.asarray(C0), max_iter=max_iter, tol=0)
            counts.append(len(calls))
        assert counts[1] - counts[0] == 1

    def test_not_converged_at_max_iter(self):
        X, C0, _, _ = _case("blobs")
        res = arbf.kmeans(X, 3, init=C0, max_iter=1, tol=0.0)
        assert res.n_iter == 1
        assert not res.converged
        assert res.history["inertia"].shape == (1,)

    def test_converged_on_tolerance(self):
        X, C0, _, _ = _case("blobs")
        res = arbf.kmeans(X, 3, init=C0, tol=2.0)
        assert res.converged
        assert res.n_iter == 2
        assert res.history["center_shift"][-1] > 0


# --------------------------------------------------------------------------------------
# precision: float32 agrees with a float64 reference
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("working_memory", [None, 0.02])  # 0.02 MiB: 3 chunks
def test_float32_agrees_with_float64(backend, working_memory):
    rng = np.random.default_rng(11)
    means = rng.normal(0.0, 10.0, (4, 3)) + 100.0  # an offset far from 0 tests centring
    X = np.concatenate([rng.normal(m, 1.0, (200, 3)) for m in means])
    C0 = X[[0, 200, 400, 600]]
    ref = arbf.kmeans(X, 4, init=C0, working_memory=working_memory)
    got = arbf.kmeans(
        backend.asarray(X, "float32"),
        4,
        init=backend.asarray(C0, "float32"),
        working_memory=working_memory,
    )
    np.testing.assert_array_equal(backend.to_numpy(got.labels), backend.to_numpy(ref.labels))
    np.testing.assert_allclose(got.inertia, ref.inertia, rtol=1e-5)
    assert_close(got.centers, ref.centers, backend=backend, rtol=1e-5, dtype=backend.xp.float32)
