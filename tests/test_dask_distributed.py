"""Dask on a real ``distributed.LocalCluster`` (two worker processes, one thread each).

Each K-Means iteration is one graph evaluation that persists the centers and the labels,
so its graph does not grow with the iteration count; the results equal NumPy's; a worker
killed mid-fit does not change the result; unknown chunk sizes are a clear error.
"""

from __future__ import annotations

import os
import signal
import warnings

import numpy as np
import pytest

import arbf
from arbf._drivers import engine as kmeans_module

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


def _data(n: int = 1200, d: int = 3, seed: int = 0) -> np.ndarray:
    # uniform data: Lloyd takes many iterations (no clean cluster structure)
    return np.random.default_rng(seed).uniform(size=(n, d))


X = _data()
C0 = X[:5].copy()


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit="1GiB",
        )
        c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _dask(a: np.ndarray, chunks: int = 300):
    return da.from_array(a, chunks=(chunks, a.shape[1]) if a.ndim == 2 else chunks)


class TestAgreesWithNumpy:
    def test_kmeans(self, client):
        ref = arbf.kmeans(X, 5, init=C0, max_iter=6, tol=0)
        got = arbf.kmeans(_dask(X), 5, init=C0, max_iter=6, tol=0)
        assert got.n_iter == ref.n_iter == 6
        np.testing.assert_array_equal(np.asarray(got.labels.compute()), ref.labels)
        np.testing.assert_allclose(np.asarray(got.centers.compute()), ref.centers, rtol=1e-12)
        assert got.inertia == pytest.approx(ref.inertia, rel=1e-12)
        assert got.converged == ref.converged
        assert isinstance(got.labels, da.Array)

    def test_kmeans_with_weights_and_kmeanspp(self, client):
        w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
        ref = arbf.kmeans(X, 4, sample_weight=w, random_state=0, max_iter=4)
        got = arbf.kmeans(_dask(X), 4, sample_weight=_dask(w), random_state=0, max_iter=4)
        assert got.n_iter == ref.n_iter
        np.testing.assert_array_equal(np.asarray(got.labels.compute()), ref.labels)
        np.testing.assert_allclose(np.asarray(got.centers.compute()), ref.centers, rtol=1e-10)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_rbf_kmeans(self, client, kind):
        Xs, Cs = X[:200], C0[:3]
        ref = arbf.rbf_kmeans(Xs, Cs, sigma=0.05, kind=kind, max_iter=3)
        got = arbf.rbf_kmeans(_dask(Xs, 100), Cs, sigma=0.05, kind=kind, max_iter=3)
        assert got.n_iter == ref.n_iter
        np.testing.assert_allclose(np.asarray(got.centers.compute()), ref.centers, rtol=1e-10)

    def test_anneal(self, client):
        Xs, Cs = X[:200], C0[:3]
        sched = [0.2, 0.01]
        ref = arbf.anneal(Xs, Cs, schedule=sched, max_iter=3)
        got = arbf.anneal(_dask(Xs, 100), Cs, schedule=sched, max_iter=3)
        np.testing.assert_allclose(np.asarray(got.centers.compute()), ref.centers, rtol=1e-9)


class TestFlatIterations:
    def test_graph_per_iteration_does_not_grow(self, client, monkeypatch):
        """The graph evaluated at iteration t has the same size for every t."""
        sizes: list[int] = []
        real = kmeans_module.materialize

        def recording(*arrays, xp):
            if len(arrays) == 5:  # the per-iteration call in the engine's lloyd
                keys = {k for a in arrays for k in dict(a.__dask_graph__())}
                sizes.append(len(keys))
            return real(*arrays, xp=xp)

        monkeypatch.setattr(kmeans_module, "materialize", recording)
        res = arbf.kmeans(_dask(X), 5, init=C0, max_iter=6, tol=0)
        assert res.n_iter == 6
        assert len(set(sizes[1:])) == 1, sizes  # iteration 0 has no "labels unchanged" test

    def test_wall_time_per_iteration_is_flat(self, client):
        import time

        per_iter = []
        for max_iter in (2, 8):
            t = time.perf_counter()
            res = arbf.kmeans(_dask(X), 5, init=C0, max_iter=max_iter, tol=0)
            per_iter.append((time.perf_counter() - t) / res.n_iter)
        # quadratic growth would make the 12-iteration run ~4x slower per iteration
        assert per_iter[1] < 2.5 * per_iter[0], per_iter


class TestKMeansParallelOnCluster:
    def test_quality_close_to_kmeanspp(self, client):
        from sklearn.datasets import make_blobs

        Xb, _ = make_blobs(3000, centers=8, n_features=4, random_state=2, cluster_std=1.5)
        Xd = _dask(Xb, 750)
        par = [arbf.kmeans(Xd, 8, init="k-means||", random_state=s).inertia for s in range(2)]
        pp = [arbf.kmeans(Xb, 8, init="k-means++", random_state=s).inertia for s in range(2)]
        assert np.mean(par) <= 1.05 * np.mean(pp)


class TestFaults:
    def test_unknown_chunk_sizes_is_a_clear_error(self):
        Xd = _dask(X)
        Xu = Xd[Xd[:, 0] > -1.0]  # boolean mask: unknown chunk sizes
        msg = "unknown chunk sizes"
        with pytest.raises(ValueError, match=msg):
            arbf.kmeans(Xu, 3)
        with pytest.raises(ValueError, match=msg):
            arbf.rbf_kmeans(Xu, C0[:3], sigma=0.1)
        with pytest.raises(ValueError, match=msg):
            arbf.anneal(Xu, C0[:3])
        with pytest.raises(ValueError, match=msg):
            arbf.KMeans(3).fit(Xu)
        with pytest.raises(ValueError, match=msg):
            arbf.RBFKMeans(3, sigma=0.1).fit(Xu)
        km = arbf.KMeans(3, init=C0[:3]).fit(X)
        with pytest.raises(ValueError, match=msg):
            km.predict(Xu)

    def test_worker_killed_mid_fit_gives_the_right_result(self, client, monkeypatch):
        """Kill a worker process while iteration 3 is computing; Dask recomputes the lost
        chunks (the data and the persisted labels) and the fit ends as on NumPy."""
        ref = arbf.kmeans(X, 5, init=C0, max_iter=8, tol=0)
        real = kmeans_module.materialize
        calls = {"n": 0, "killed": None}

        def killing(*arrays, xp):
            out = real(*arrays, xp=xp)  # submitted to the cluster (asynchronous)
            if len(arrays) == 5:
                calls["n"] += 1
                if calls["n"] == 3:
                    pids = client.run(os.getpid)
                    addr, pid = sorted(pids.items())[0]
                    os.kill(pid, signal.SIGKILL)
                    calls["killed"] = addr
            return out

        monkeypatch.setattr(kmeans_module, "materialize", killing)
        got = arbf.kmeans(_dask(X), 5, init=C0, max_iter=8, tol=0)
        assert calls["killed"] is not None
        assert got.n_iter == ref.n_iter
        np.testing.assert_array_equal(np.asarray(got.labels.compute()), ref.labels)
        np.testing.assert_allclose(np.asarray(got.centers.compute()), ref.centers, rtol=1e-12)
        assert got.inertia == pytest.approx(ref.inertia, rel=1e-12)
        client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker


class TestDaskFastPath:
    """The one-task-per-block Lloyd pass (``arbf._math.kernels.dask``) equals the pure one."""

    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_same_as_generic_path(self, dtype, weighted):
        from arbf._math import seam

        Xt = X.astype(dtype)
        w = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0]) if weighted else None
        Xd = _dask(Xt)
        wd = None if w is None else _dask(w.astype(dtype))
        assert seam.route(Xd, Xd[:5], wd)[0] == "dask"
        fast = arbf.kmeans(Xd, 5, init=C0.astype(dtype), sample_weight=wd, max_iter=5, tol=0)
        with arbf.config_context(fast_paths=False):
            assert seam.route(Xd, Xd[:5], wd)[0] == "pure"
            slow = arbf.kmeans(Xd, 5, init=C0.astype(dtype), sample_weight=wd, max_iter=5, tol=0)
        rtol = 1e-12 if dtype == "float64" else 1e-5
        np.testing.assert_array_equal(fast.labels.compute(), slow.labels.compute())
        np.testing.assert_allclose(fast.centers.compute(), slow.centers.compute(), rtol=rtol)
        assert fast.inertia == pytest.approx(slow.inertia, rel=rtol)
        assert fast.centers.dtype == Xd.dtype and fast.labels.dtype == slow.labels.dtype

    def test_not_for_several_column_chunks(self):
        from arbf._math import seam

        Xd = da.from_array(X, chunks=(300, 1))
        assert seam.route(Xd, Xd[:5])[0] == "pure"
        res = arbf.kmeans(Xd, 5, init=C0, max_iter=3, tol=0)
        ref = arbf.kmeans(X, 5, init=C0, max_iter=3, tol=0)
        np.testing.assert_array_equal(res.labels.compute(), ref.labels)
