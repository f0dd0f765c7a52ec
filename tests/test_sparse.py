"""scipy.sparse input: the seam's ``"sparse"`` route and every public entry point.

Sparse input is NumPy-only: a :mod:`scipy.sparse` matrix lives on the host and is not an
Array API array, so these tests do not run over the backend matrix (there is no sparse
CuPy/torch/JAX/Dask input to take; torch sparse tensors are refused, tested here).  The
reference for every operation is the pure Array API implementation on the same data
densified (``X.toarray()``, ``fast_paths=False``), and scikit-learn on the same sparse
matrix from the same initial centers.
"""

from __future__ import annotations

import tracemalloc

import array_api_compat.numpy as npx
import numpy as np
import pytest

import arbf
from arbf._math import seam

sp = pytest.importorskip("scipy.sparse")

DTYPES = ["float64", "float32"]
CONTAINERS = [sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.coo_array]


def _tol(dtype: str) -> float:
    return 1e-10 if dtype == "float64" else 2e-5


def _close(got, ref, dtype: str) -> None:
    tol = _tol(dtype)
    a, b = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))


def _sparse(n: int = 300, d: int = 40, density: float = 0.15, seed: int = 0, dtype="float64"):
    """Non-negative sparse rows (some empty) around a few sparse prototypes."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((4, d)) < 0.3) * rng.uniform(1, 3, (4, d))
    X = protos[rng.integers(4, size=n)] * (rng.random((n, d)) < 0.6)
    X += (rng.random((n, d)) < density / 3) * rng.random((n, d))
    X[:3] = 0.0  # empty rows
    return sp.csr_matrix(X.astype(dtype))


def _data(dtype="float64", k=5, seed=0):
    Xs = _sparse(dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    C = Xs[rng.choice(Xs.shape[0], k, replace=False)].toarray() + 0.05
    w = rng.uniform(0.0, 2.0, Xs.shape[0]).astype(dtype)
    return Xs, C.astype(dtype), w


def _ref(fn, Xs, *args, **kwargs):
    """The pure Array API reference on the densified data."""
    with arbf.config_context(fast_paths=False):
        return fn(Xs.toarray(), *args, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
class TestSeamSparseRouteIsTheReference:
    """Every seam operation on CSR equals the pure reference on ``X.toarray()``."""

    def test_route(self, dtype):
        Xs, C, w = _data(dtype)
        for fast in (True, False):  # no pure path for sparse: the route ignores fast_paths
            with arbf.config_context(fast_paths=fast):
                assert seam.route(Xs, C, w)[0] == "sparse"

    @pytest.mark.parametrize("weighted", [False, True])
    def test_lloyd_sums(self, dtype, weighted):
        Xs, C, w = _data(dtype)
        w = w if weighted else None
        lab, sums, wsum, J = seam.lloyd_sums(Xs, C, w, xp=npx)
        rl, rs, rw, rJ = _ref(seam.lloyd_sums, Xs, C, w, xp=npx)
        np.testing.assert_array_equal(lab, rl)
        for got, ref in ((sums, rs), (wsum, rw), (J, rJ)):
            assert got.dtype == np.dtype(dtype)
            _close(got, ref, dtype)

    def test_assign_and_inertia(self, dtype):
        Xs, C, w = _data(dtype)
        lab, dist = seam.assign(Xs, C, xp=npx)
        rl, rd = _ref(seam.assign, Xs, C, xp=npx)
        np.testing.assert_array_equal(lab, rl)
        _close(dist, rd, dtype)
        assert dist.dtype == np.dtype(dtype)
        lab2, J = seam.assign_inertia(Xs, C, w, xp=npx)
        np.testing.assert_array_equal(lab2, rl)
        _close(J, _ref(seam.assign_inertia, Xs, C, w, xp=npx)[1], dtype)
        # the inertia of the nearest labels, summed the same way: bit for bit
        assert seam.labelled_inertia(Xs, C, lab, w, xp=npx) == J
        other = (lab + 1) % C.shape[0]
        _close(
            seam.labelled_inertia(Xs, C, other, w, xp=npx),
            _ref(seam.labelled_inertia, Xs, C, other, w, xp=npx),
            dtype,
        )
        _close(
            seam.labelled_distances(Xs, C, other, xp=npx),
            np.sum((Xs.toarray() - C[other]) ** 2, axis=1),
            dtype,
        )

    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    @pytest.mark.parametrize("sigma", [0.0, 0.3, 5.0])
    def test_soft_stats(self, dtype, kind, sigma):
        Xs, C, w = _data(dtype)
        st = seam.soft_stats(Xs, C, w, sigma=sigma, kind=kind, xp=npx)
        ref = _ref(seam.soft_stats, Xs, C, w, sigma=sigma, kind=kind, xp=npx)
        for got, want in zip(st, ref, strict=True):
            assert got.dtype == np.dtype(dtype)
            _close(got, want, dtype)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    def test_responsibilities(self, dtype, kind):
        Xs, C, _ = _data(dtype)
        R = seam.responsibilities(Xs, C, sigma=0.7, kind=kind, xp=npx)
        assert R.dtype == np.dtype(dtype)
        _close(R, _ref(seam.responsibilities, Xs, C, sigma=0.7, kind=kind, xp=npx), dtype)

    def test_distances(self, dtype):
        Xs, C, _ = _data(dtype)
        Xd = Xs.toarray().astype(np.float64)
        exact = np.sqrt(((Xd[:, None, :] - C[None].astype(np.float64)) ** 2).sum(-1))
        T = seam.pairwise_distances(Xs, C, xp=npx)
        assert T.dtype == np.dtype(dtype)
        _close(T, exact, dtype)
        x_sq = seam.sq_norms(Xs, xp=npx)
        _close(x_sq, (Xd**2).sum(1), dtype)
        rows = C[:3]
        _close(seam.dist_to_rows(Xs, rows, x_sq, xp=npx), exact[:, :3] ** 2, dtype)
        _close(seam.min_margin(Xs, C, xp=npx), _ref(seam.min_margin, Xs, C, xp=npx), dtype)

    def test_rows_means_variance(self, dtype):
        Xs, _, _ = _data(dtype)
        Xd = Xs.toarray()
        idx = np.array([5, 0, 5, 17])
        np.testing.assert_array_equal(seam.dense_rows(Xs, idx, xp=npx), Xd[idx])
        sub = seam.take_rows(Xs, idx, xp=npx)
        assert sp.issparse(sub)
        np.testing.assert_array_equal(sub.toarray(), Xd[idx])
        _close(seam.mean_rows(Xs, xp=npx), Xd.astype(np.float64).mean(0), dtype)
        _close(seam.mean_variance(Xs, xp=npx), Xd.astype(np.float64).var(0).mean(), dtype)
        mean, Xc = seam.centre(Xs, xp=npx)
        assert Xc is Xs and not mean.any()  # sparse data are not centred

    @pytest.mark.parametrize("weighted", [False, True])
    def test_principal_axis(self, dtype, weighted):
        Xs, _, w = _data(dtype)
        w = w if weighted else None
        lam, v = seam.principal_axis(Xs, w, xp=npx)
        rlam, rv = _ref(seam.principal_axis, Xs, w, xp=npx)
        assert lam == pytest.approx(rlam, rel=1e-9 if dtype == "float64" else 1e-4)
        assert abs(float(v @ rv)) == pytest.approx(1.0, abs=1e-6)


class TestSparseKernelsDirectly:
    def test_power_iteration_above_the_eigh_limit(self):
        from arbf._math.kernels import sparse as ks

        Xs, _, w = _data()
        lam, v = ks.principal_axis(Xs, w, eigh_max_features=1)  # forces power iteration
        rlam, rv = ks.principal_axis(Xs, w)
        assert lam == pytest.approx(rlam, rel=1e-8)
        assert abs(float(v @ rv)) == pytest.approx(1.0, abs=1e-5)

    def test_row_on_a_center_is_at_exactly_zero(self):
        Xs, C, _ = _data()
        C = np.vstack([Xs[7].toarray(), Xs[11].toarray(), C])
        T = seam.pairwise_distances(Xs, C, xp=npx)
        assert T[7, 0] == 0.0 and T[11, 1] == 0.0
        assert seam.assign(Xs, C, xp=npx)[1][7] == 0.0

    def test_distances_exact_where_the_expansion_cancels(self):
        """Rows and centers far from the origin: ||x||^2 + ||c||^2 - 2 x.c loses ~8 digits;
        those entries are recomputed from the nonzeros."""
        rng = np.random.default_rng(5)
        Xd = (1e4 + rng.random((200, 6))) * (rng.random((200, 6)) < 0.7)
        Xs = sp.csr_matrix(Xd)
        C = Xd[rng.choice(200, 4, replace=False)] + rng.normal(0, 1e-2, (4, 6))
        exact = np.sqrt(((Xd[:, None, :] - C[None]) ** 2).sum(-1))
        np.testing.assert_allclose(seam.pairwise_distances(Xs, C, xp=npx), exact, rtol=1e-10)
        np.testing.assert_allclose(
            seam.dist_to_rows(Xs, C, seam.sq_norms(Xs, xp=npx), xp=npx), exact**2, rtol=1e-10
        )
        lab, dist = seam.assign(Xs, C, xp=npx)  # the nearest distance of the Lloyd passes
        np.testing.assert_allclose(dist, exact[np.arange(200), lab] ** 2, rtol=1e-10)

    def test_thread_count_does_not_change_labels(self):
        Xs, C, w = _data()
        with arbf.config_context(n_threads=1):
            one = seam.lloyd_sums(Xs, C, w, xp=npx)
        with arbf.config_context(n_threads=3):
            three = seam.lloyd_sums(Xs, C, w, xp=npx)
        np.testing.assert_array_equal(one[0], three[0])
        for a, b in zip(one[1:], three[1:], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12)

    def test_small_working_memory_still_correct(self):
        Xs, C, w = _data()
        tiny = seam.lloyd_sums(Xs, C, w, xp=npx, working_memory=0.001)
        ref = seam.lloyd_sums(Xs, C, w, xp=npx)
        np.testing.assert_array_equal(tiny[0], ref[0])
        np.testing.assert_allclose(tiny[1], ref[1], rtol=1e-12)


class TestValidation:
    @pytest.mark.parametrize("container", CONTAINERS)
    def test_any_format_becomes_csr_without_touching_the_input(self, container):
        Xs, _, _ = _data()
        X_in = container(Xs)
        before = X_in.copy()
        res = arbf.kmeans(X_in, 3, random_state=0)
        assert res.centers.shape == (3, Xs.shape[1])
        assert type(X_in) is type(before)
        assert (X_in != before).nnz == 0

    def test_duplicates_are_summed_in_a_copy(self):
        # non-canonical CSR: entries (0, 1) twice; the math must see their sum
        X = sp.csr_matrix(
            (np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0]), np.array([0, 2, 3])), shape=(2, 2)
        )
        data_before = X.data.copy()
        C = np.array([[0.0, 3.0], [3.0, 0.0]])
        assert arbf.inertia(X, C) == 0.0
        np.testing.assert_array_equal(X.data, data_before)
        assert not X.has_canonical_format or X.nnz == 3

    def test_explicit_zeros_and_integer_and_int64_indices(self):
        Xd = np.array([[0, 2, 0], [1, 0, 0], [0, 2, 1], [1, 0, 1]])
        X = sp.csr_matrix(Xd)
        X.data[0] = 0  # an explicit zero
        Xd = X.toarray()
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
        init = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]])
        res = arbf.kmeans(X, 2, init=init)
        ref = arbf.kmeans(Xd, 2, init=init)
        assert res.centers.dtype == np.float64  # integers promoted
        np.testing.assert_array_equal(res.labels, ref.labels)
        np.testing.assert_allclose(res.centers, ref.centers, rtol=1e-12, atol=1e-15)

    def test_nan_complex_strings_refused(self):
        X = sp.csr_matrix(np.array([[np.nan, 1.0], [0.0, 1.0]]))
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            arbf.kmeans(X, 1)
        with pytest.raises(ValueError, match="Complex data not supported"):
            arbf.kmeans(sp.csr_matrix(np.array([[1j, 1.0]])), 1)

    def test_sparse_weights_and_centers_refused(self):
        Xs, C, _ = _data()
        with pytest.raises(TypeError, match="Sparse data was passed for sample_weight"):
            arbf.kmeans(Xs, 2, sample_weight=sp.csr_matrix(np.ones((1, Xs.shape[0]))))
        with pytest.raises(TypeError, match="Sparse data was passed for centers"):
            arbf.inertia(Xs, sp.csr_matrix(C))

    def test_mixing_with_another_library_is_refused(self):
        torch = pytest.importorskip("torch")
        Xs, C, _ = _data()
        with pytest.raises(TypeError, match="different array libraries"):
            arbf.inertia(Xs, torch.asarray(C))

    @pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
    def test_torch_sparse_and_meta_tensors_refused_clearly(self):
        torch = pytest.importorskip("torch")
        dense = torch.asarray(_data()[0].toarray())
        for t, match in (
            (dense.to_sparse(), "torch sparse tensor .*sparse_coo"),
            (dense.to_sparse_csr(), "torch sparse tensor .*sparse_csr"),
            (torch.empty((5, 2), device="meta"), "'meta' device"),
        ):
            with pytest.raises(TypeError, match=match):
                arbf.kmeans(t, 2)
            with pytest.raises(TypeError, match=match):
                arbf.KMeans(2).fit(dense).predict(t)

    def test_deterministic_annealing_refuses_sparse(self):
        Xs, _, _ = _data()
        with pytest.raises(TypeError, match=r"init=.anneal.*scipy\.sparse"):
            arbf.kmeans(Xs, 3, init="anneal")
        with pytest.raises(TypeError, match="deterministic annealing does not support"):
            arbf.deterministic_annealing(Xs, 3)


@pytest.mark.parametrize("dtype", DTYPES)
class TestAgainstScikitLearn:
    """Sparse K-Means equals scikit-learn's on the same sparse matrix from the same init."""

    @pytest.mark.parametrize("seed", [0, 1, 2])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_kmeans_same_init(self, dtype, seed, weighted):
        skc = pytest.importorskip("sklearn.cluster")
        Xs, C, w = _data(dtype, k=6, seed=seed)
        w = w if weighted else None
        res = arbf.kmeans(Xs, 6, init=C, n_init=1, sample_weight=w)
        ref = skc.KMeans(6, init=C, n_init=1, algorithm="lloyd").fit(Xs, sample_weight=w)
        np.testing.assert_array_equal(res.labels, ref.labels_)
        assert res.n_iter == ref.n_iter_
        assert res.centers.dtype == np.dtype(dtype)
        _close(res.centers, ref.cluster_centers_, dtype)
        assert res.inertia == pytest.approx(ref.inertia_, rel=_tol(dtype))

    def test_tolerance_is_scikit_learns(self, dtype):
        utils = pytest.importorskip("sklearn.utils.sparsefuncs")
        Xs, _, _ = _data(dtype)
        ref = float(np.mean(utils.mean_variance_axis(Xs, axis=0)[1]))
        assert seam.mean_variance(Xs, xp=npx) == pytest.approx(ref, rel=_tol(dtype))

    def test_estimator_methods(self, dtype):
        skc = pytest.importorskip("sklearn.cluster")
        Xs, C, w = _data(dtype, k=4)
        km = arbf.KMeans(4, init=C, n_init=1).fit(Xs, sample_weight=w)
        ref = skc.KMeans(4, init=C, n_init=1).fit(Xs, sample_weight=w)
        np.testing.assert_array_equal(km.labels_, ref.labels_)
        np.testing.assert_array_equal(km.predict(Xs), ref.predict(Xs))
        _close(km.transform(Xs), ref.transform(Xs), dtype)
        assert km.score(Xs, sample_weight=w) == pytest.approx(
            ref.score(Xs, sample_weight=w), rel=_tol(dtype)
        )
        # fitted on sparse, used on dense and back
        np.testing.assert_array_equal(km.predict(Xs.toarray()), km.labels_)

    def test_relocates_empty_clusters_as_scikit_learn(self, dtype):
        skc = pytest.importorskip("sklearn.cluster")
        Xs, C, _ = _data(dtype, k=4)
        C = np.vstack([C[:3], np.full((1, C.shape[1]), 50.0, dtype=dtype)])  # empty at first
        res = arbf.kmeans(Xs, 4, init=C, n_init=1)
        ref = skc.KMeans(4, init=C, n_init=1).fit(Xs)
        np.testing.assert_array_equal(res.labels, ref.labels_)
        _close(res.centers, ref.cluster_centers_, dtype)


def test_ties_break_as_in_scikit_learn():
    """Unit rows with few terms: many rows share no term with any center, so their scores
    are the centers' squared norms, all 1 up to rounding; the nearest is decided by that
    rounding, which must be scikit-learn's (its row norms) for equal labels."""
    skc = pytest.importorskip("sklearn.cluster")
    rng = np.random.default_rng(7)
    n, d = 3000, 400
    rows = np.repeat(np.arange(n), 3)
    X = sp.csr_matrix((rng.random(3 * n), (rows, rng.integers(d, size=3 * n))), shape=(n, d))
    X.sum_duplicates()
    X = sp.csr_matrix(X.multiply(1.0 / np.sqrt(X.multiply(X).sum(axis=1))))
    C = X[rng.choice(n, 20, replace=False)].toarray()
    res = arbf.kmeans(X, 20, init=C, n_init=1, max_iter=3, tol=0)
    ref = skc.KMeans(20, init=C, n_init=1, max_iter=3, tol=0).fit(X)
    np.testing.assert_array_equal(res.labels, ref.labels_)
    assert res.inertia == pytest.approx(ref.inertia_, rel=1e-12)


class TestPublicEntryPointsSparseEqualsDense:
    def test_kmeans_plusplus_and_kmeans_parallel(self):
        Xs, _, w = _data()
        c_s, i_s = arbf.kmeans_plusplus(Xs, 5, sample_weight=w, random_state=3)
        c_d, i_d = arbf.kmeans_plusplus(Xs.toarray(), 5, sample_weight=w, random_state=3)
        np.testing.assert_array_equal(i_s, i_d)
        np.testing.assert_array_equal(c_s, Xs[i_s].toarray())
        np.testing.assert_array_equal(c_s, c_d)
        p_s = arbf.kmeans_parallel(Xs, 5, random_state=3)
        p_d = arbf.kmeans_parallel(Xs.toarray(), 5, random_state=3)
        np.testing.assert_allclose(p_s, p_d, rtol=1e-9, atol=1e-12)

    def test_kmeans_from_kmeans_plusplus(self):
        Xs, _, _ = _data()
        for seed in range(3):
            a = arbf.kmeans(Xs, 5, random_state=seed)
            b = arbf.kmeans(Xs.toarray(), 5, random_state=seed)
            np.testing.assert_array_equal(a.labels, b.labels)
            np.testing.assert_allclose(a.centers, b.centers, rtol=1e-9, atol=1e-12)
            assert a.n_iter == b.n_iter

    def test_math_functions(self):
        Xs, C, w = _data()
        Xd = Xs.toarray()
        for name in ("inertia", "lloyd_step"):
            kw = {"sample_weight": w}
            _close(getattr(arbf, name)(Xs, C, **kw), getattr(arbf, name)(Xd, C, **kw), "float64")
        for name in ("soft_distortion", "free_energy", "center_gradient", "soft_lloyd_step"):
            for kind in ("softmax", "entmax15"):
                kw = {"sigma": 0.5, "kind": kind, "sample_weight": w}
                got = getattr(arbf, name)(Xs, C, **kw)
                _close(got, getattr(arbf, name)(Xd, C, **kw), "float64")
        _close(
            arbf.responsibilities(Xs, C, sigma=0.5),
            arbf.responsibilities(Xd, C, sigma=0.5),
            "float64",
        )
        a = arbf.rbf_kmeans(Xs, C, sigma=0.5, kind="entmax15")
        b = arbf.rbf_kmeans(Xd, C, sigma=0.5, kind="entmax15")
        np.testing.assert_allclose(a.centers, b.centers, rtol=1e-8, atol=1e-10)
        a = arbf.anneal(Xs, C, n_levels=5)
        b = arbf.anneal(Xd, C, n_levels=5)
        np.testing.assert_allclose(a.centers, b.centers, rtol=1e-6, atol=1e-8)

    def test_rbf_estimators(self):
        Xs, C, w = _data()
        Xd = Xs.toarray()
        for est in (
            arbf.RBFKMeans(5, init=C, sigma=0.5, kind="entmax15"),
            arbf.RBFKMeans(5, init=C, schedule=[2.0, 0.5, 0.1]),
        ):
            a = est.fit(Xs, sample_weight=w)
            ca, la, pa = a.cluster_centers_, a.labels_, a.predict_proba(Xs)
            b = est.fit(Xd, sample_weight=w)
            np.testing.assert_allclose(ca, b.cluster_centers_, rtol=1e-7, atol=1e-9)
            np.testing.assert_array_equal(la, b.labels_)
            np.testing.assert_allclose(pa, b.predict_proba(Xd), rtol=1e-7, atol=1e-9)

    @pytest.mark.parametrize("cls", [arbf.MiniBatchKMeans, arbf.MiniBatchRBFKMeans])
    def test_minibatch_fit_and_partial_fit(self, cls):
        Xs, _, w = _data()
        Xd = Xs.toarray()
        kw = {"batch_size": 64, "random_state": 0, "max_iter": 5}
        a = cls(5, **kw).fit(Xs, sample_weight=w)
        b = cls(5, **kw).fit(Xd, sample_weight=w)
        np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-7, atol=1e-9)
        np.testing.assert_array_equal(a.labels_, b.labels_)
        assert a.n_steps_ == b.n_steps_
        a, b = cls(5, random_state=1), cls(5, random_state=1)
        for start in range(0, Xs.shape[0], 100):
            a.partial_fit(Xs[start : start + 100])
            b.partial_fit(Xd[start : start + 100])
        np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-7, atol=1e-9)
        assert a.score(Xs) == pytest.approx(b.score(Xd), rel=1e-9)


def test_x_is_never_densified():
    """A matrix whose dense copy would take 1.6 GB is clustered in a few MiB."""
    rng = np.random.default_rng(0)
    n, d, nnz = 20_000, 10_000, 40_000
    X = sp.csr_matrix(
        (rng.random(nnz), (rng.integers(n, size=nnz), rng.integers(d, size=nnz))), shape=(n, d)
    )
    X.sum_duplicates()
    arbf.kmeans(X[:500], 4, random_state=0, max_iter=2)  # compile first
    tracemalloc.start()
    try:
        km = arbf.KMeans(4, random_state=0, max_iter=5).fit(X)
        km.transform(X)
        arbf.MiniBatchKMeans(4, random_state=0, max_iter=1, batch_size=256).fit(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense = n * d * 8
    assert peak < 40 * 2**20, peak  # the per-thread k x d sums and n-vectors, no n x d
    assert peak < dense / 40
