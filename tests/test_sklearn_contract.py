"""The scikit-learn estimator contract (issue 15, point 2), beyond scikit-learn's own
test file (run against arbf by ``tests/sklearn_compat``): ``algorithm``, ``copy_x``,
``kmeans_plusplus(x_squared_norms=...)``, mini-batch ``init_size`` and random
reassignment of small clusters, exact ``transform`` distances, ``verbose`` lines.

Where the point is about arrays it runs over the backend matrix; the rest is about
options and runs on NumPy.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import arbf
from arbf._drivers.minibatch import Reassigner, init_size_rule, reassign_small
from tests.backends import assert_close


def _blobs(seed: int = 0, n: int = 40, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 1.0], [0.0, 8.0, -1.0]]) + offset
    return np.concatenate([rng.normal(m, 1.0, (n, 3)) for m in means])


X = _blobs()
C0 = X[[0, 40, 80]]


class TestAlgorithmAndCopyX:
    @pytest.mark.parametrize("algorithm", ["lloyd", "elkan", "auto"])
    def test_every_algorithm_runs_lloyd(self, backend, algorithm):
        Xb = backend.asarray(X)
        got = arbf.kmeans(Xb, 3, init=backend.asarray(C0), algorithm=algorithm)
        ref = arbf.kmeans(X, 3, init=C0)
        assert_close(got.centers, backend.to_numpy(ref.centers), backend=backend)
        assert got.n_iter == ref.n_iter

    def test_estimator_parameters(self):
        km = arbf.KMeans(3, algorithm="elkan", copy_x=False, random_state=0).fit(X)
        assert km.get_params()["algorithm"] == "elkan"
        assert km.get_params()["copy_x"] is False

    def test_bad_values(self):
        with pytest.raises(ValueError, match="algorithm must be one of 'lloyd', 'elkan'"):
            arbf.kmeans(X, 3, algorithm="full")
        with pytest.raises(TypeError, match="algorithm must be"):
            arbf.KMeans(3, algorithm=1).fit(X)
        with pytest.raises(TypeError, match="copy_x must be True or False"):
            arbf.kmeans(X, 3, copy_x="yes")

    def test_elkan_with_one_cluster_warns_as_scikit_learn(self):
        with pytest.warns(RuntimeWarning, match="algorithm='elkan' doesn't make sense"):
            arbf.kmeans(X, 1, algorithm="elkan")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            arbf.kmeans(X, 1, algorithm="lloyd")
            arbf.kmeans(X, 2, algorithm="elkan", random_state=0)

    @pytest.mark.parametrize("copy_x", [True, False])
    def test_x_is_never_written(self, backend, copy_x):
        Xb = backend.asarray(X + 100.0)  # centred inside: a write would show
        before = backend.to_numpy(Xb).copy()
        arbf.KMeans(3, copy_x=copy_x, random_state=0).fit(Xb)
        np.testing.assert_array_equal(backend.to_numpy(Xb), before)

    def test_n_init_attribute(self):
        assert arbf.KMeans(3, random_state=0).fit(X)._n_init == 1
        assert arbf.KMeans(3, init="random", random_state=0).fit(X)._n_init == 10
        assert arbf.KMeans(3, n_init=4, random_state=0).fit(X)._n_init == 4


class TestKMeansPlusPlusNorms:
    def test_norms_are_used(self, backend):
        Xb = backend.asarray(X)
        norms = np.sum(X * X, axis=1)
        a, ia = arbf.kmeans_plusplus(Xb, 3, random_state=1)
        b, ib = arbf.kmeans_plusplus(Xb, 3, random_state=1, x_squared_norms=backend.asarray(norms))
        np.testing.assert_array_equal(ia, ib)
        assert_close(b, backend.to_numpy(a), backend=backend)
        # wrong (but valid) norms change the distances, hence the draws: they are used
        wrong = np.zeros_like(norms)
        wrong[40:] = 1e6
        _, ic = arbf.kmeans_plusplus(Xb, 3, random_state=1, x_squared_norms=backend.asarray(wrong))
        assert not np.array_equal(ia, ic)

    def test_validation(self):
        with pytest.raises(ValueError, match="The length of x_squared_norms 2 should be equal"):
            arbf.kmeans_plusplus(X, 3, x_squared_norms=X[:2])
        with pytest.raises(ValueError, match="x_squared_norms must be 1-D"):
            arbf.kmeans_plusplus(X, 3, x_squared_norms=X)
        with pytest.raises(ValueError, match="x_squared_norms contains negative"):
            arbf.kmeans_plusplus(X, 3, x_squared_norms=-np.ones(X.shape[0]))
        with pytest.raises(ValueError, match="x_squared_norms contains NaN"):
            arbf.kmeans_plusplus(X, 3, x_squared_norms=np.full(X.shape[0], np.nan))
        with pytest.raises(TypeError, match="x_squared_norms has unsupported dtype"):
            arbf.kmeans_plusplus(X, 3, x_squared_norms=np.array(["a"] * X.shape[0]))

    def test_sparse(self):
        sp = pytest.importorskip("scipy.sparse")
        Xs = sp.csr_matrix(np.maximum(X, 0))
        norms = np.asarray(Xs.multiply(Xs).sum(axis=1)).ravel()
        a = arbf.kmeans_plusplus(Xs, 3, random_state=2)
        b = arbf.kmeans_plusplus(Xs, 3, random_state=2, x_squared_norms=norms)
        np.testing.assert_array_equal(a[1], b[1])


class TestInitSize:
    @pytest.mark.parametrize(
        ("init_size", "batch", "k", "n", "expected"),
        [
            (None, 5, 10, 100, 15),  # 3 * batch_size
            (None, 1, 10, 100, 30),  # 3 * batch_size < k: 3 * k
            (None, 500, 3, 100, 100),  # batch_size clipped to n, then at most n
            (101, 5, 10, 100, 100),  # at most n
            (12, 5, 10, 100, 12),
        ],
    )
    def test_rule(self, init_size, batch, k, n, expected):
        assert init_size_rule(init_size, batch, k, n) == expected

    def test_small_init_size_warns_and_uses_3k(self):
        with pytest.warns(RuntimeWarning, match=r"init_size=4 should be larger than n_clusters=5"):
            assert init_size_rule(4, 100, 5, 1000) == 15
        with pytest.warns(RuntimeWarning, match=r"init_size.* should be larger than n_clusters"):
            km = arbf.MiniBatchKMeans(5, init_size=4, random_state=0).fit(X)
        assert km._init_size == 15

    def test_estimator_attributes(self):
        km = arbf.MiniBatchKMeans(10, batch_size=5, n_init=1, random_state=0).fit(X)
        assert (km._init_size, km._batch_size, km._n_init) == (15, 5, 1)
        km = arbf.MiniBatchKMeans(3, init="random", random_state=0).fit(X)
        assert km._n_init == 3
        pf = arbf.MiniBatchKMeans(3, batch_size=10, random_state=0).partial_fit(X)
        assert pf._init_size == 30


class TestReassignment:
    def test_which_centers_move_and_where(self):
        """Below ratio * max: moved onto distinct batch rows; weight = least weight kept."""
        Xb = np.arange(40.0).reshape(20, 2)
        C = np.zeros((5, 2))
        counts = np.array([100.0, 0.5, 2.0, 0.9, 1.0])  # 1 and 3 below 0.01 * 100 = 1
        C2, counts2, moved = reassign_small(
            Xb, C, counts, np.random.default_rng(0), ratio=0.01, xp=np
        )
        assert moved == 2
        np.testing.assert_array_equal(C2[[0, 2, 4]], C[[0, 2, 4]])  # 1.0 is not below 1
        rows = {tuple(r) for r in Xb}
        assert tuple(C2[1]) in rows and tuple(C2[3]) in rows
        assert tuple(C2[1]) != tuple(C2[3])  # distinct samples
        np.testing.assert_array_equal(counts2, [100.0, 1.0, 2.0, 1.0, 1.0])
        np.testing.assert_array_equal(counts, [100.0, 0.5, 2.0, 0.9, 1.0])  # input untouched

    def test_at_most_half_the_batch_lightest_first(self):
        Xb = np.arange(8.0).reshape(4, 2)  # batch of 4: at most 2 moves
        counts = np.array([50.0, 0.1, 0.3, 0.2, 0.0])
        C = np.zeros((5, 2))
        C2, counts2, moved = reassign_small(
            Xb, C, counts, np.random.default_rng(0), ratio=0.5, xp=np
        )
        assert moved == 2
        changed = np.flatnonzero(np.any(C2 != C, axis=1))
        assert set(changed) <= {1, 4}  # the two lightest
        np.testing.assert_array_equal(counts2[[1, 4]], [0.2, 0.2])

    def test_nothing_moves(self):
        C = np.zeros((2, 2))
        counts = np.array([10.0, 9.0])
        for ratio in (0.0, 0.5):
            C2, c2, moved = reassign_small(
                np.ones((4, 2)), C, counts, np.random.default_rng(0), ratio=ratio, xp=np
            )
            assert moved == 0 and C2 is C and c2 is counts

    def test_schedule(self):
        s = Reassigner(3)  # every 10 * 3 = 30 samples, or at any zero weight
        assert s.due(10, np.zeros(3))  # a zero weight
        assert not s.due(10, np.ones(3)) and not s.due(10, np.ones(3))
        assert s.due(10, np.ones(3))  # 30 samples
        assert s.since == 0
        assert not s.due(29, np.ones(3)) and s.due(1, np.ones(3))

    def test_dead_center_is_revived(self, backend):
        """A center that no sample ever reaches has zero weight: reassigned, it joins."""
        Xb = backend.asarray(X)
        init = backend.asarray(np.vstack([C0[:2], [[500.0, 500.0, 500.0]]]))
        kw = {"init": init, "n_init": 1, "batch_size": 20, "random_state": 0, "max_iter": 3}
        alive = arbf.MiniBatchKMeans(3, **kw).fit(Xb)
        dead = arbf.MiniBatchKMeans(3, reassignment_ratio=0.0, **kw).fit(Xb)
        assert len(np.unique(backend.to_numpy(alive.labels_))) == 3
        assert len(np.unique(backend.to_numpy(dead.labels_))) == 2
        assert float(np.abs(backend.to_numpy(dead.cluster_centers_)).max()) == 500.0
        assert alive.inertia_ < dead.inertia_

    def test_dead_rbf_unit_is_revived(self, backend):
        Xb = backend.asarray(X)
        init = backend.asarray(np.vstack([C0[:2], [[500.0, 500.0, 500.0]]]))
        kw = {"init": init, "sigma": 1.0, "batch_size": 30, "random_state": 0, "max_iter": 3}
        alive = arbf.MiniBatchRBFKMeans(3, **kw).fit(Xb)
        dead = arbf.MiniBatchRBFKMeans(3, reassignment_ratio=0.0, **kw).fit(Xb)
        assert float(np.abs(backend.to_numpy(alive.cluster_centers_)).max()) < 50
        assert float(np.abs(backend.to_numpy(dead.cluster_centers_)).max()) == 500.0

    def test_partial_fit_reassigns(self):
        zeroed = X.copy()
        zeroed[::2] = 0.0
        km = arbf.MiniBatchKMeans(20, init="random", random_state=0)
        for _ in range(30):
            km.partial_fit(zeroed)
        assert int(np.any(km.cluster_centers_ != 0, axis=1).sum()) > 9
        off = arbf.MiniBatchKMeans(20, init="random", random_state=0, reassignment_ratio=0)
        assert off.get_params()["reassignment_ratio"] == 0

    def test_bad_ratio(self):
        with pytest.raises(ValueError, match="reassignment_ratio must be a non-negative"):
            arbf.MiniBatchKMeans(3, reassignment_ratio=-1).fit(X)
        with pytest.raises(TypeError, match="reassignment_ratio must be"):
            arbf.MiniBatchKMeans(3, reassignment_ratio="a").fit(X)


class TestExactTransform:
    @pytest.mark.parametrize("offset", [0.0, 1e4])
    def test_distances_exact_and_zero_on_centers(self, backend, offset):
        Xh = _blobs(offset=offset)
        Xb = backend.asarray(Xh)
        km = arbf.KMeans(3, random_state=0).fit(Xb)
        C = backend.to_numpy(km.cluster_centers_).astype(np.float64)
        T = km.transform(km.cluster_centers_)
        diag = np.diagonal(backend.to_numpy(T))
        np.testing.assert_array_equal(diag, 0.0)
        exact = np.sqrt(((Xh[:, None, :] - C[None]) ** 2).sum(-1))
        got = backend.to_numpy(km.transform(Xb)).astype(np.float64)
        # far from the origin (offset 1e4) the plain expansion loses ~8 digits
        np.testing.assert_allclose(got, exact, rtol=1e-11 if "64" in str(Xb.dtype) else 1e-5)

    @pytest.mark.parametrize("cls", [arbf.MiniBatchKMeans, arbf.RBFKMeans])
    def test_other_estimators(self, cls):
        Xh = _blobs(offset=1e4)
        est = cls(3, random_state=0).fit(Xh)
        C = est.cluster_centers_
        np.testing.assert_array_equal(np.diagonal(est.transform(C)), 0.0)
        exact = np.sqrt(((Xh[:, None, :] - C[None]) ** 2).sum(-1))
        np.testing.assert_allclose(est.transform(Xh), exact, rtol=1e-11)

    def test_float32_as_precise_as_float64_rounded(self):
        Xh = _blobs(offset=300.0)
        km = arbf.KMeans(3, random_state=0).fit(Xh.astype(np.float32))
        C = km.cluster_centers_.astype(np.float64)
        exact = np.sqrt(((Xh.astype(np.float32)[:, None, :] - C[None]) ** 2).sum(-1))
        got = km.transform(Xh.astype(np.float32))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, exact, rtol=2e-7)


class TestVerbose:
    def test_kmeans_lines(self, capsys):
        arbf.KMeans(3, random_state=0, verbose=1, tol=0).fit(X)
        out = capsys.readouterr().out
        assert "Initialization complete" in out
        assert re.search(r"Iteration 0, inertia [0-9.]+\.", out)
        assert re.search(r"Converged at iteration [0-9]+: strict convergence\.", out)
        arbf.KMeans(3, random_state=0, verbose=1, tol=10.0).fit(X)
        assert re.search(r"center shift .* within tolerance", capsys.readouterr().out)

    def test_minibatch_lines(self, capsys):
        arbf.MiniBatchKMeans(
            20, init="random", n_init=2, batch_size=10, random_state=0, verbose=1
        ).fit(X)
        out = capsys.readouterr().out
        assert "Init 1/2 with method random" in out
        assert re.search(r"Inertia for init 2/2: [0-9.]+", out)
        assert re.search(r"Minibatch step 1/[0-9]+: mean batch inertia: [0-9.]+\n", out)
        assert re.search(r"Minibatch step 2/[0-9]+: mean batch inertia: .*, ewa inertia", out)
        assert re.search(r"\[MiniBatchKMeans\] Reassigning [0-9]+ cluster centers\.", out)
        assert "Converged (lack of improvement in inertia)" in out
