"""Batched deterministic annealing (a leading axis B): every field equals B separate calls."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from arbf._math import seam
from tests.backends import assert_close, tolerance

B, N, D, K = 3, 90, 3, 4


def _blobs(seed: int = 0, b: int = B, n: int = N, d: int = D, k: int = K) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=6.0, size=(b, k, d))
    lab = rng.integers(0, k, size=(b, n))
    return means[np.arange(b)[:, None], lab] + rng.normal(size=(b, n, d))


def _weights(seed: int = 1, b: int = B, n: int = N) -> np.ndarray:
    """Weights with exact zeros, a different number per problem (the problems anneal on
    different numbers of rows)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.2, 3.0, size=(b, n))
    for p in range(b):
        w[p, :: 5 + p] = 0.0
    return w


def _dtype_or_skip(backend, name):
    got = backend.asarray(np.zeros(1, dtype=name)).dtype
    if str(got).rsplit(".", 1)[-1] != name:
        pytest.skip(f"{backend.name} has no {name}")
    return got


def _close(got, want, rtol):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(float(np.abs(want).max()), 1e-300) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def _check(backend, res, ones, dtype):
    assert isinstance(res, arbf.BatchedDeterministicAnnealingResult) and len(res) == len(ones)
    backend.check_same_kind(res.centers, dtype=dtype)
    rtol = tolerance(dtype, scale=1e3)
    for b, one in enumerate(ones):
        got = res[b]
        scale = float(np.abs(backend.to_numpy(one.centers)).max())
        assert_close(
            res.centers[b, ...], backend.to_numpy(one.centers), backend=backend, rtol=rtol,
            atol=rtol * scale,
        )  # fmt: skip
        _close(got.sigmas, one.sigmas, rtol)
        np.testing.assert_array_equal(got.n_centers, one.n_centers)
        np.testing.assert_array_equal(got.n_iter_per_level, one.n_iter_per_level)
        assert got.n_iter == one.n_iter and got.n_passes == one.n_passes
        for name, v in one.objectives.items():
            _close(got.objectives[name], v, rtol)
        assert [j for _, j, _ in got.splits] == [j for _, j, _ in one.splits]
        _close([(s, c) for s, _, c in got.splits], [(s, c) for s, _, c in one.splits], rtol)
        _close(got.sigma_critical, one.sigma_critical, rtol)
        if one.kmeans is None:
            assert got.kmeans is None
            continue
        np.testing.assert_array_equal(
            backend.to_numpy(got.kmeans.labels), backend.to_numpy(one.kmeans.labels)
        )
        _close(got.kmeans.inertia, one.kmeans.inertia, rtol)
        assert abs(got.kmeans.n_iter - one.kmeans.n_iter) <= 1  # see test_batched_rbf


class TestDeterministicAnnealing:
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_equals_separate_calls(self, backend, dtype, kind):
        """Weights with zeros (a different count per problem), splits, swaps, the
        batched finish; seeds spawned per problem."""
        if backend.name == "dask":
            pytest.skip("batched input is refused on Dask (tested below)")
        dt = _dtype_or_skip(backend, dtype)
        X = _blobs().astype(dtype)
        w = _weights().astype(dtype)
        Xd, wd = backend.asarray(X), backend.asarray(w)
        res = arbf.deterministic_annealing(Xd, K, kind=kind, sample_weight=wd, random_state=5)
        gens = np.random.default_rng(5).spawn(B)
        ones = [
            arbf.deterministic_annealing(
                Xd[b, ...], K, kind=kind, sample_weight=wd[b, ...], random_state=gens[b]
            )
            for b in range(B)
        ]
        assert len({o.sigmas.size for o in ones}) > 1 or len({o.n_iter for o in ones}) > 1
        _check(backend, res, ones, dt)

    def test_subsample_no_finish_and_seed_sequence(self, backend):
        """A subsample (``max_samples``) drawn per problem, no swaps, no finish, seeds as
        a sequence."""
        if backend.name == "dask":
            pytest.skip("batched input is refused on Dask (tested below)")
        X = _blobs(2, n=150)
        kw = {"max_samples": 60, "refine": 0, "finish": False}
        Xd = backend.asarray(X)
        res = arbf.deterministic_annealing(Xd, K, random_state=[7, 8, 9], **kw)
        ones = [
            arbf.deterministic_annealing(Xd[b, ...], K, random_state=7 + b, **kw) for b in range(B)
        ]
        _check(backend, res, ones, ones[0].centers.dtype)

    def test_anneal_init(self, backend):
        if backend.name == "dask":
            pytest.skip("batched input is refused on Dask (tested below)")
        X = _blobs(3)
        Xd = backend.asarray(X)
        got = arbf.anneal_init(Xd, K, random_state=1, cooling=0.7)
        gens = np.random.default_rng(1).spawn(B)
        for b in range(B):
            one = arbf.anneal_init(Xd[b, ...], K, random_state=gens[b], cooling=0.7)
            assert_close(got[b, ...], backend.to_numpy(one), backend=backend, rtol=1e-9)

    def test_more_clusters_than_points(self):
        """A problem with fewer distinct points than clusters: its centers are padded with
        copies of the first, as the one-problem call (with its warning).  (No swaps: there
        they compare inertias that are rounding noise, every point on a center.)"""
        X = _blobs(4)
        X[1] = np.repeat(X[1, :2], N // 2, axis=0)
        kw = {"finish": False, "refine": 0}
        with pytest.warns(arbf.ConvergenceWarning):
            res = arbf.deterministic_annealing(X, K, random_state=0, **kw)
        gens = np.random.default_rng(0).spawn(B)
        with pytest.warns(arbf.ConvergenceWarning):
            one = arbf.deterministic_annealing(X[1], K, random_state=gens[1], **kw)
        np.testing.assert_allclose(res.centers[1], one.centers, rtol=1e-10, atol=1e-12)

    @pytest.mark.parametrize("k", [1, 3])
    @pytest.mark.filterwarnings("ignore:Number of distinct clusters")
    def test_one_cluster_and_constant_problem(self, k):
        """One cluster (no annealing loop, no swaps) and a problem with constant data
        (critical temperature 0: no level at all) beside ordinary ones."""
        X = np.random.default_rng(8).normal(size=(B, 50, 2))
        X[1] = 1.5
        res = arbf.deterministic_annealing(X, k, random_state=2)
        gens = np.random.default_rng(2).spawn(B)
        for b in range(B):
            one = arbf.deterministic_annealing(X[b], k, random_state=gens[b])
            np.testing.assert_allclose(res.centers[b], one.centers, rtol=1e-10, atol=1e-12)
            assert res[b].n_passes == one.n_passes and res[b].sigmas.size == one.sigmas.size


class TestNoLoopOverB:
    def test_passes_independent_of_b(self, monkeypatch):
        """Copies of one problem: the same number of batched passes for B = 1 and 5, and
        no one-problem pass."""
        names = ("batched_soft_stats", "batched_principal_axes_pass", "batched_lloyd_sums",
                 "soft_stats", "principal_axes_pass", "lloyd_sums")  # fmt: skip
        X = _blobs(5, b=1)
        counts = []
        for reps in (1, 5):
            calls = dict.fromkeys(names, 0)
            for name in names:
                real = getattr(seam, name)

                def counted(*a, _real=real, _name=name, _calls=calls, **k):
                    _calls[_name] += 1
                    return _real(*a, **k)

                monkeypatch.setattr(seam, name, counted)
            arbf.deterministic_annealing(np.repeat(X, reps, axis=0), K, random_state=[0] * reps)
            counts.append(calls)
            monkeypatch.undo()
        assert counts[0] == counts[1]
        assert counts[0]["batched_soft_stats"] > 0 and counts[0]["soft_stats"] == 0
        assert counts[0]["principal_axes_pass"] == 0 and counts[0]["lloyd_sums"] == 0


def test_masked_passes_equal_each_problem():
    """The passes over each problem's first m_b centers (both routes) against the
    one-problem passes on ``C[b, :m_b]``: statistics, principal-axes products, and the
    utilities of all centers."""
    import array_api_compat.numpy as npx

    rng = np.random.default_rng(6)
    X = rng.normal(size=(3, 300, 3)) * 3
    C = rng.normal(size=(3, 5, 3)) * 3
    V = rng.normal(size=(3, 5, 3))
    w = rng.uniform(0.0, 2.0, size=(3, 300))
    counts = np.asarray([1, 3, 5])
    sig = np.asarray([0.5, 2.0, 7.0])
    for kind in ("softmax", "entmax15"):
        for fast in (True, False):
            with arbf.config_context(fast_paths=fast):
                st = seam.batched_soft_stats(
                    X, C, w, sigma=1.0, sigmas=sig, kind=kind, xp=npx, counts=counts,
                    working_memory=0.02,
                )  # fmt: skip
                A, Nm = seam.batched_principal_axes_pass(
                    X, C, V, w, sigmas=sig, counts=counts, kind=kind, xp=npx
                )
            for b in range(3):
                m = counts[b]
                with arbf.config_context(fast_paths=False):
                    one = seam.soft_stats(X[b], C[b, :m], w[b], sigma=sig[b], kind=kind, xp=npx)
                    A1, N1 = seam.principal_axes_pass(
                        X[b], C[b, :m], V[b, :m], w[b], sigma=sig[b], kind=kind, xp=npx
                    )
                for got, want in zip(st, one, strict=True):
                    got_b = got[b][:m] if np.ndim(want) else got[b]
                    np.testing.assert_allclose(got_b, want, rtol=1e-10, atol=1e-9)
                assert not np.any(st.mass[b][m:]) and not np.any(st.sums[b][m:])
                np.testing.assert_allclose(A[b, :m], A1, rtol=1e-10, atol=1e-9)
                np.testing.assert_allclose(Nm[b, :m], N1, rtol=1e-10, atol=1e-9)
                assert not np.any(Nm[b, m:])
    U = seam.batched_utilities(X, C, w, xp=npx)
    for b in range(3):
        np.testing.assert_allclose(U[b], seam.utilities(X[b], C[b], w[b], xp=npx), rtol=1e-12)


def test_errors_and_dask():
    X = _blobs(7)
    with pytest.raises(ValueError, match="n_clusters"):
        arbf.deterministic_annealing(X, N + 1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        arbf.anneal_init(X, K, finish=True)
    with pytest.raises(ValueError, match="cooling"):
        arbf.deterministic_annealing(X, K, cooling=1.5)
    da = pytest.importorskip("dask.array")
    Xd = da.zeros((2, 10, 3), chunks=(1, 5, 3))
    with pytest.raises(TypeError, match="Dask"):
        arbf.deterministic_annealing(Xd, 2)
    with pytest.raises(TypeError, match="Dask"):
        arbf.anneal_init(Xd, 2)
