"""``metric="cosine"`` (spherical K-Means and its relaxation) on every backend.

The references are written here in plain NumPy, independently of the library's
"Euclidean engine on unit rows at 2σ, then project" construction: cosines
``U V^T`` of the normalised rows, a spherical Lloyd loop (Dhillon & Modha), softmax /
entmax-1.5 of ``(cos - 1)/σ``.  faiss's ``Kmeans(spherical=True)`` is a second, external
reference for the K-Means result.
"""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from arbf._backend import array_namespace
from tests import reference as ref
from tests.backends import assert_close, skip_unless_selected, tolerance

# --------------------------------------------------------------------------------------
# the NumPy references
# --------------------------------------------------------------------------------------


def unit(A: np.ndarray) -> np.ndarray:
    A = np.asarray(A, dtype=np.float64)
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def cos_dist(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``1 - cos(x_i, c_j)``."""
    return 1.0 - unit(X) @ unit(C).T


def resp_ref(X, C, sigma, kind):
    if sigma == 0 or kind == "hard":
        D = cos_dist(X, C)
        R = np.zeros_like(D)
        R[np.arange(len(D)), np.argmin(D, axis=1)] = 1.0
        return R
    z = (unit(X) @ unit(C).T - 1.0) / sigma
    if kind == "softmax":
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return ref.entmax15(z)


def spherical_lloyd(X, C0, w=None, max_iter=300):
    """Dhillon & Modha's spherical K-Means from ``C0`` until the labels repeat:
    ``(centers, labels, J = Σ w (1 - cos), n_iter)``."""
    U, C = unit(X), unit(C0)
    w = np.ones(len(U)) if w is None else np.asarray(w, dtype=np.float64)
    labels_old = None
    for it in range(1, max_iter + 1):  # noqa: B007 - it is returned
        labels = np.argmax(U @ C.T, axis=1)
        S = np.zeros_like(C)
        np.add.at(S, labels, w[:, None] * U)
        assert (np.linalg.norm(S, axis=1) > 0).all()  # no empty cell in these cases
        C = unit(S)
        if labels_old is not None and np.array_equal(labels, labels_old):
            break
        labels_old = labels
    labels = np.argmax(U @ C.T, axis=1)
    J = float(np.sum(w * (1.0 - np.max(U @ C.T, axis=1))))
    return C, labels, J, it


def directions(seed=0, n_per=40, d=5, k=4, spread=0.15, offset=0.0):
    """``k`` bundles of directions (rows of random norms, in [0.1, 10]); with ``offset``
    every row is shifted by a fixed vector, which moves the mean far from the origin."""
    rng = np.random.default_rng(seed)
    M = unit(rng.normal(size=(k, d)))
    X = np.concatenate([M[j] + spread * rng.normal(size=(n_per, d)) for j in range(k)])
    X *= rng.uniform(0.1, 10.0, size=(len(X), 1))
    X += offset
    return X


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


# --------------------------------------------------------------------------------------
# K-Means
# --------------------------------------------------------------------------------------


class TestKMeans:
    @pytest.mark.parametrize("weighted", [False, True])
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    def test_against_the_spherical_lloyd_reference(self, backend, weighted, dtype):
        X = directions(seed=1)
        rng = np.random.default_rng(2)
        w = rng.uniform(0.2, 3.0, size=len(X)) if weighted else None
        C0 = X[[0, 1, 2, 40]] * 3.0  # not unit: normalised by the library; 3 in bundle 0
        C_ref, l_ref, J_ref, it_ref = spherical_lloyd(X, C0, w)
        X_in = X.copy()
        Xb, Cb = backend.asarray(X, dtype), backend.asarray(C0, dtype)
        wb = None if w is None else backend.asarray(w, dtype)
        res = arbf.kmeans(Xb, 4, init=Cb, sample_weight=wb, tol=0.0, metric="cosine")
        tol = tolerance(Xb.dtype, scale=100)
        np.testing.assert_array_equal(backend.to_numpy(res.labels), l_ref)
        assert_close(res.centers, C_ref, backend=backend, rtol=tol, atol=tol)
        np.testing.assert_allclose(res.inertia, J_ref, rtol=tol * 10)
        assert res.n_iter == it_ref and res.converged
        np.testing.assert_allclose(np.linalg.norm(_np(backend, res.centers), axis=1), 1, rtol=tol)
        np.testing.assert_allclose(res.history["inertia"][-1], J_ref, rtol=tol * 10)
        np.testing.assert_array_equal(_np(backend, Xb), X.astype(dtype))  # not mutated
        np.testing.assert_array_equal(X, X_in)

    @pytest.mark.parametrize("algorithm", ["lloyd", "elkan", "hamerly", "yinyang"])
    def test_every_algorithm_and_the_uncentred_data(self, algorithm):
        """Cosine is not translation invariant: data far from the origin (the library
        centres Euclidean data, lazily on NumPy with an array init) must be normalised as
        they are, never centred first.  Every exact algorithm gives the same result."""
        X = directions(seed=3, offset=np.array([4.0, -2.0, 0.0, 1.0, 3.0]))
        C0 = X[[0, 40, 80, 120]]
        C_ref, l_ref, J_ref, it_ref = spherical_lloyd(X, C0)
        res = arbf.kmeans(X, 4, init=C0, tol=0.0, metric="cosine", algorithm=algorithm)
        np.testing.assert_array_equal(res.labels, l_ref)
        np.testing.assert_allclose(res.centers, C_ref, atol=1e-12)
        np.testing.assert_allclose(res.inertia, J_ref, rtol=1e-12)
        assert res.n_iter == it_ref
        # the centred data would give another answer here (so the test can fail)
        Xc = X - X.mean(axis=0)
        assert not np.array_equal(spherical_lloyd(Xc, C0 - X.mean(axis=0))[1], l_ref)

    def test_invariant_to_positive_row_scales(self):
        X = directions(seed=4)
        s = np.random.default_rng(0).uniform(1e-3, 1e3, size=(len(X), 1))
        a = arbf.kmeans(X, 4, metric="cosine", random_state=0)
        b = arbf.kmeans(X * s, 4, metric="cosine", random_state=0)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.centers, b.centers, atol=1e-12)

    @pytest.mark.parametrize("init", ["k-means++", "random", "k-means||"])
    def test_named_inits_end_at_a_spherical_fixed_point(self, backend, init):
        X = directions(seed=5)
        Xb = backend.asarray(X)
        res = arbf.kmeans(Xb, 4, init=init, random_state=0, tol=0.0, metric="cosine")
        C = _np(backend, res.centers)
        np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-12)
        C_ref, l_ref, J_ref, _ = spherical_lloyd(X, C)  # a fixed point: one step, same
        np.testing.assert_array_equal(backend.to_numpy(res.labels), l_ref)
        np.testing.assert_allclose(C, C_ref, atol=1e-12)
        np.testing.assert_allclose(res.inertia, J_ref, rtol=1e-10)

    def test_sparse_equals_dense(self):
        sp = pytest.importorskip("scipy.sparse")
        rng = np.random.default_rng(6)
        X = directions(seed=6, d=30, spread=0.3)
        X[rng.random(X.shape) < 0.6] = 0.0
        X = X[np.abs(X).sum(axis=1) > 0]
        S = sp.csr_matrix(X)
        data_before = S.data.copy()
        C0 = X[[0, 1, 50, 100]]
        a = arbf.kmeans(S, 4, init=C0, tol=0.0, metric="cosine")
        b = arbf.kmeans(X, 4, init=C0, tol=0.0, metric="cosine")
        C_ref, l_ref, J_ref, _ = spherical_lloyd(X, C0)
        np.testing.assert_array_equal(a.labels, l_ref)
        np.testing.assert_array_equal(b.labels, l_ref)
        np.testing.assert_allclose(a.centers, C_ref, atol=1e-12)
        np.testing.assert_allclose(a.inertia, J_ref, rtol=1e-12)
        np.testing.assert_array_equal(S.data, data_before)

    def test_empty_cluster_is_relocated_onto_the_sphere(self):
        X = directions(seed=7)
        C0 = np.stack([X[0], X[0], X[40], X[80]])  # a duplicate: one cell is empty
        res = arbf.kmeans(X, 4, init=C0, metric="cosine")
        C = np.asarray(res.centers)
        np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-12)
        assert np.unique(res.labels).size == 4
        _C_ref, _l_ref, J_ref, _ = spherical_lloyd(X, C)
        np.testing.assert_allclose(res.inertia, J_ref, rtol=1e-10)

    def test_a_zero_sum_cell_keeps_its_center(self):
        """Two opposite unit vectors in one cell sum to 0: no direction, the center stays
        (normalised), as an empty cell's does in a plain update."""
        X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
        C = np.array([[0.0, -2.0], [0.0, 1.0]])
        out = np.asarray(arbf.lloyd_step(X, C, metric="cosine"))
        # the first center's cell holds rows 0 and 1 (cos 0 with both centers, tie to 0)
        np.testing.assert_allclose(out, [[0.0, -1.0], [0.0, 1.0]])

    def test_estimator(self, backend):
        X = directions(seed=8)
        Xb = backend.asarray(X)
        km = arbf.KMeans(4, metric="cosine", random_state=0, tol=0.0).fit(Xb)
        C = _np(backend, km.cluster_centers_)
        D = cos_dist(X, C)
        np.testing.assert_array_equal(backend.to_numpy(km.predict(Xb)), np.argmin(D, axis=1))
        np.testing.assert_array_equal(backend.to_numpy(km.labels_), np.argmin(D, axis=1))
        assert_close(km.transform(Xb), D, backend=backend, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(km.inertia_, D.min(axis=1).sum(), rtol=1e-10)
        np.testing.assert_allclose(km.score(Xb), -D.min(axis=1).sum(), rtol=1e-10)
        assert km.get_params()["metric"] == "cosine"

    def test_faiss_spherical_kmeans(self):
        """faiss's ``Kmeans(spherical=True)`` on the normalised data from the same initial
        centers: the same labels and centers (float32 rounding)."""
        faiss = pytest.importorskip("faiss")
        X = directions(seed=9, n_per=200, d=16, k=6, spread=0.4).astype(np.float32)
        U = unit(X).astype(np.float32)
        C0 = U[np.random.default_rng(0).choice(len(U), 6, replace=False)]
        km = faiss.Kmeans(16, 6, niter=100, spherical=True, max_points_per_centroid=10**7, seed=0)
        km.train(U, init_centroids=C0.copy())
        _, fl = km.index.search(U, 1)
        res = arbf.kmeans(X, 6, init=C0, max_iter=100, tol=0.0, metric="cosine")
        assert res.converged
        np.testing.assert_array_equal(res.labels, fl[:, 0])
        np.testing.assert_allclose(res.centers, km.centroids, atol=2e-6)
        J_faiss = float(np.sum(1.0 - np.max(U.astype(np.float64) @ km.centroids.T, axis=1)))
        np.testing.assert_allclose(res.inertia, J_faiss, rtol=1e-5)


# --------------------------------------------------------------------------------------
# the relaxation: responsibilities, objectives, steps, rbf_kmeans, anneal, RBFKMeans
# --------------------------------------------------------------------------------------


def _problem(seed=10, n=60, d=4, k=3):
    rng = np.random.default_rng(seed)
    X = directions(seed=seed, n_per=n // k, d=d, k=k, spread=0.5)
    C = rng.normal(size=(k, d)) * 2.0
    w = rng.uniform(0.0, 2.0, size=len(X))
    return X, C, w


class TestRelaxation:
    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    @pytest.mark.parametrize("sigma", [0.0, 0.03, 0.4, 5.0])
    def test_responsibilities_objectives_and_steps(self, backend, kind, sigma):
        X, C, w = _problem()
        Xb, Cb, wb = backend.asarray(X), backend.asarray(C), backend.asarray(w)
        R = resp_ref(X, C, sigma, kind)
        D = cos_dist(X, C)
        kw = {"sigma": sigma, "kind": kind, "metric": "cosine"}
        atol = 1e-10 * w.sum()
        assert_close(arbf.responsibilities(Xb, Cb, **kw), R, backend=backend, atol=1e-12)
        J = float(np.sum(w * D.min(axis=1)))
        L = float(np.sum(w * (R * D).sum(axis=1)))
        np.testing.assert_allclose(
            float(arbf.inertia(Xb, Cb, sample_weight=wb, metric="cosine")), J, atol=atol
        )
        np.testing.assert_allclose(
            float(arbf.soft_distortion(Xb, Cb, sample_weight=wb, **kw)), L, atol=atol
        )
        if kind == "softmax" and sigma > 0:
            z = -D / sigma
            zmax = z.max(axis=1, keepdims=True)
            F = float(np.sum(w * -sigma * (zmax[:, 0] + np.log(np.exp(z - zmax).sum(1)))))
        elif kind == "entmax15" and sigma > 0:
            H = (4.0 / 3.0) * (R - R**1.5).sum(axis=1)
            F = float(np.sum(w * ((R * D).sum(axis=1) - sigma * H)))
        else:
            F = J
        np.testing.assert_allclose(
            float(arbf.free_energy(Xb, Cb, sample_weight=wb, **kw)), F, atol=atol
        )
        U, V = unit(X), unit(C)
        N = (w[:, None] * R).sum(axis=0)
        S = (w[:, None] * R).T @ U
        g = N[:, None] * V - S  # Σ w r (ĉ - x̂)
        assert_close(
            arbf.center_gradient(Xb, Cb, sample_weight=wb, **kw), g, backend=backend, atol=atol
        )
        m = np.where(np.linalg.norm(S, axis=1, keepdims=True) > 0, unit(S + 1e-300), V)
        assert_close(
            arbf.soft_lloyd_step(Xb, Cb, sample_weight=wb, **kw), m, backend=backend, atol=1e-12
        )
        assert_close(
            arbf.gradient_step(Xb, Cb, sample_weight=wb, **kw), m, backend=backend, atol=1e-12
        )
        step = unit(V - 0.01 * g)
        assert_close(
            arbf.gradient_step(Xb, Cb, sample_weight=wb, lr=0.01, **kw),
            step,
            backend=backend,
            atol=1e-12,
        )
        if sigma == 0:
            assert_close(
                arbf.lloyd_step(Xb, Cb, sample_weight=wb, metric="cosine"),
                m,
                backend=backend,
                atol=1e-12,
            )

    def test_float32(self, backend):
        X, C, _w = _problem(seed=11)
        Xb, Cb = backend.asarray(X, "float32"), backend.asarray(C, "float32")
        R = resp_ref(X, C, 0.1, "softmax")
        out = arbf.responsibilities(Xb, Cb, sigma=0.1, metric="cosine")
        assert_close(out, R, backend=backend, dtype=Xb.dtype, atol=1e-5)
        J = float(cos_dist(X, C).min(axis=1).sum())
        np.testing.assert_allclose(float(arbf.inertia(Xb, Cb, metric="cosine")), J, rtol=1e-5)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    @pytest.mark.parametrize("update", ["fixed_point", "gradient"])
    def test_rbf_kmeans_against_the_reference_loop(self, backend, kind, update):
        X, C, w = _problem(seed=12)
        sigma = 0.05
        Cr = unit(C)
        for _ in range(25):
            R = resp_ref(X, Cr, sigma, kind)
            Cr = unit((w[:, None] * R).T @ unit(X))
        res = arbf.rbf_kmeans(
            backend.asarray(X), backend.asarray(C), sigma=sigma, kind=kind,
            sample_weight=backend.asarray(w), max_iter=25, tol=0.0, update=update,
            metric="cosine",
        )  # fmt: skip
        assert_close(res.centers, Cr, backend=backend, atol=1e-10)
        R = resp_ref(X, Cr, sigma, kind)
        L = float(np.sum(w * (R * cos_dist(X, Cr)).sum(axis=1)))
        # history holds the objectives at the centers before the last update
        assert res.history["soft_distortion"].shape == (25,)
        np.testing.assert_allclose(res.history["soft_distortion"][-1], L, rtol=1e-6)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_anneal_ends_at_spherical_kmeans(self, backend, kind):
        X, C, _w = _problem(seed=13)
        res = arbf.anneal(
            backend.asarray(X), backend.asarray(C), kind=kind, metric="cosine", n_levels=12
        )
        assert res.sigmas[0] > res.sigmas[-1] > 0
        path = np.asarray(res.path)
        np.testing.assert_allclose(np.linalg.norm(path, axis=2), 1.0, rtol=1e-12)
        C_end = _np(backend, res.centers)
        C_ref, _l_ref, J_ref, _ = spherical_lloyd(X, path[-1])
        np.testing.assert_allclose(C_end, C_ref, atol=1e-12)
        np.testing.assert_allclose(res.kmeans.inertia, J_ref, rtol=1e-10)
        # sigma_exact in the cosine convention: half the smallest gap of the two largest
        # cosines at the final centers
        cs = np.sort(unit(X) @ C_ref.T, axis=1)
        np.testing.assert_allclose(res.sigma_exact, (cs[:, -1] - cs[:, -2]).min() / 2, rtol=1e-8)
        # the objectives of the last level are the cosine ones at that level's centers
        D = cos_dist(X, path[-1])
        R = resp_ref(X, path[-1], res.sigmas[-1], kind)
        np.testing.assert_allclose(res.objectives["soft_distortion"][-1], (R * D).sum(), rtol=1e-8)

    def test_estimator(self, backend):
        X, _C, _ = _problem(seed=14)
        Xb = backend.asarray(X)
        est = arbf.RBFKMeans(3, sigma=0.1, metric="cosine", random_state=0).fit(Xb)
        Cf = _np(backend, est.cluster_centers_)
        np.testing.assert_allclose(np.linalg.norm(Cf, axis=1), 1.0, rtol=1e-12)
        assert_close(est.predict_proba(Xb), resp_ref(X, Cf, 0.1, "softmax"), backend=backend,
                     atol=1e-12)  # fmt: skip
        D = cos_dist(X, Cf)
        np.testing.assert_array_equal(backend.to_numpy(est.predict(Xb)), np.argmin(D, axis=1))
        np.testing.assert_allclose(est.inertia_, D.min(axis=1).sum(), rtol=1e-10)
        assert_close(est.transform(Xb), D, backend=backend, atol=1e-10)
        z = -D / 0.1
        F = float(np.sum(-0.1 * (z.max(1) + np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)))))
        np.testing.assert_allclose(est.score(Xb), -F, rtol=1e-10)
        ann = arbf.RBFKMeans(3, metric="cosine", kind="entmax15", random_state=0).fit(Xb)
        _C_ref, _l_ref, J_ref, _ = spherical_lloyd(X, _np(backend, ann.cluster_centers_))
        np.testing.assert_allclose(ann.inertia_, J_ref, rtol=1e-10)


# --------------------------------------------------------------------------------------
# errors and validation
# --------------------------------------------------------------------------------------


class TestErrors:
    def test_metric_values(self):
        X = np.eye(3)
        with pytest.raises(ValueError, match="metric must be"):
            arbf.kmeans(X, 2, metric="euclidean")
        with pytest.raises(TypeError, match="metric must be"):
            arbf.responsibilities(X, X, sigma=1.0, metric=1)
        with pytest.raises(ValueError, match="metric must be"):
            arbf.KMeans(2, metric="cos").fit(X)
        with pytest.raises(ValueError, match="metric must be"):
            arbf.anneal(X, X[:2], metric="l2")

    def test_zero_rows(self, backend):
        X = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        Xb = backend.asarray(X)
        with pytest.raises(ValueError, match=r"X has 1 row\(s\) of zero norm \(first: row 1\)"):
            arbf.kmeans(Xb, 2, metric="cosine", random_state=0)
        with pytest.raises(ValueError, match="X has 1 row"):
            arbf.responsibilities(Xb, backend.asarray(np.eye(2)), sigma=1.0, metric="cosine")
        Xok = backend.asarray(X[[0, 2, 3]])
        C = backend.asarray(np.array([[1.0, 0.0], [0.0, 0.0]]))
        with pytest.raises(ValueError, match="centers has 1 row"):
            arbf.free_energy(Xok, C, sigma=1.0, metric="cosine")
        with pytest.raises(ValueError, match="init has 1 row"):
            arbf.kmeans(Xok, 2, init=C, metric="cosine")
        with pytest.raises(ValueError, match="init has 1 row"):
            arbf.rbf_kmeans(Xok, C, sigma=1.0, metric="cosine")
        # the Euclidean metric takes zero rows as they are
        arbf.kmeans(Xb, 2, random_state=0)

    def test_sqeuclidean_is_the_default_and_unchanged(self):
        X, C, w = _problem(seed=15)
        a = arbf.kmeans(X, 3, init=C, sample_weight=w)
        b = arbf.kmeans(X, 3, init=C, sample_weight=w, metric="sqeuclidean")
        np.testing.assert_array_equal(a.centers, b.centers)
        assert a.inertia == b.inertia
        r = arbf.responsibilities(X, C, sigma=0.3)
        np.testing.assert_array_equal(
            r, arbf.responsibilities(X, C, sigma=0.3, metric="sqeuclidean")
        )


class TestDrivers:
    def test_rbf_kmeans_float_lr(self, backend):
        """A float ``lr`` is a step on the cosine gradient Σ w r (ĉ − x̂), then the
        projection."""
        X, C, w = _problem(seed=16)
        U, V = unit(X), unit(C)
        for _ in range(3):
            R = resp_ref(X, V, 0.2, "softmax")
            g = (w[:, None] * R).sum(axis=0)[:, None] * V - (w[:, None] * R).T @ U
            V = unit(V - 0.01 * g)
        res = arbf.rbf_kmeans(
            backend.asarray(X), backend.asarray(C), sigma=0.2, sample_weight=backend.asarray(w),
            update="gradient", lr=0.01, max_iter=3, tol=0.0, metric="cosine",
        )  # fmt: skip
        assert_close(res.centers, V, backend=backend, atol=1e-12)

    def test_fixed_point_reports_the_cosine_objectives(self):
        from arbf._drivers.rbf import fit_fixed_sigma

        X, C, w = _problem(seed=17)
        U, V = unit(X), unit(C)
        fp = fit_fixed_sigma(
            U, V, w, xp=array_namespace(U), sigma=0.1, kind="softmax", max_iter=1, tol=0.0,
            lr="lloyd", working_memory=None, verbose=False, cosine=True,
        )  # fmt: skip
        R = resp_ref(X, V, 0.1, "softmax")
        D = cos_dist(X, V)
        np.testing.assert_allclose(fp.last[2], np.sum(w * (R * D).sum(1)), rtol=1e-10)
        np.testing.assert_allclose(fp.last[3], np.sum(w * D.min(1)), rtol=1e-10)
        np.testing.assert_allclose(fp.history["inertia"][-1], fp.last[3])

    def test_default_schedule_in_cosine_units(self):
        """The default schedule starts at the Euclidean critical temperature of the unit
        rows, 2 λ_max(Cov Û), halved into the cosine convention: λ_max(Cov Û)."""
        X, C, w = _problem(seed=18)
        U = unit(X)
        mu = (w[:, None] * U).sum(0) / w.sum()
        cov = ((w[:, None] * (U - mu)).T @ (U - mu)) / w.sum()
        res = arbf.anneal(X, C, sample_weight=w, metric="cosine", n_levels=3, max_iter=5)
        np.testing.assert_allclose(res.sigmas[0], np.linalg.eigvalsh(cov)[-1], rtol=1e-8)


class TestMiniBatch:
    @pytest.mark.parametrize("sigma", [0.0, 0.1])
    def test_partial_fit_is_the_online_spherical_step(self, backend, sigma):
        """Two ``partial_fit`` calls from given centers: μ ← normalise(M μ + S^B) with the
        masses M accumulated so far (hard, or softmax of (cos − 1)/σ)."""
        X, C, w = _problem(seed=19)
        kind = "hard" if sigma == 0 else "softmax"
        V, M = unit(C), np.zeros(len(C))
        for part in (slice(0, 30), slice(30, None)):
            R = resp_ref(X[part], V, sigma, kind)
            N = (w[part, None] * R).sum(0)
            S = (w[part, None] * R).T @ unit(X[part])
            V = unit(M[:, None] * V + S)
            M = M + N
        if sigma == 0:
            est = arbf.MiniBatchKMeans(3, init=C, metric="cosine", reassignment_ratio=0.0)
        else:
            est = arbf.MiniBatchRBFKMeans(
                3, sigma=sigma, init=C, metric="cosine", reassignment_ratio=0.0
            )
        for part in (slice(0, 30), slice(30, None)):
            est.partial_fit(backend.asarray(X[part]), sample_weight=backend.asarray(w[part]))
        assert_close(est.cluster_centers_, V, backend=backend, atol=1e-12)
        assert_close(est.counts_, M, backend=backend, atol=1e-12)
        D = cos_dist(X[30:], V)
        np.testing.assert_allclose(est.inertia_, np.sum(w[30:] * D.min(1)), rtol=1e-10)

    def test_fit(self, backend):
        X = directions(seed=20, n_per=100)
        Xb = backend.asarray(X)
        est = arbf.MiniBatchKMeans(
            4, metric="cosine", batch_size=128, max_iter=10, random_state=0
        ).fit(Xb)
        C = _np(backend, est.cluster_centers_)
        np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-12)
        D = cos_dist(X, C)
        np.testing.assert_array_equal(backend.to_numpy(est.labels_), np.argmin(D, 1))
        np.testing.assert_allclose(est.inertia_, D.min(1).sum(), rtol=1e-10)
        np.testing.assert_allclose(est.score(Xb), -D.min(1).sum(), rtol=1e-10)
        assert_close(est.transform(Xb), D, backend=backend, atol=1e-10)
        assert np.all(est.history_["batch_inertia"] <= 2.0)
        # the bundles are found: the spherical K-Means from here moves little
        J_ref = spherical_lloyd(X, C)[2]
        assert est.inertia_ <= 1.05 * J_ref
        rbf = arbf.MiniBatchRBFKMeans(
            4, sigma=0.05, metric="cosine", batch_size=128, max_iter=3, random_state=0
        ).fit(Xb)
        Cr = _np(backend, rbf.cluster_centers_)
        assert_close(rbf.predict_proba(Xb), resp_ref(X, Cr, 0.05, "softmax"), backend=backend,
                     atol=1e-10)  # fmt: skip

    def test_float_lr(self):
        X, C, w = _problem(seed=21)
        V = unit(C)
        R = resp_ref(X, V, 0.1, "softmax")
        N = (w[:, None] * R).sum(0)
        S = (w[:, None] * R).T @ unit(X)
        expected = unit(V - 0.01 * (N[:, None] * V - S))
        est = arbf.MiniBatchRBFKMeans(
            3, sigma=0.1, lr=0.01, init=C, metric="cosine", reassignment_ratio=0.0
        ).partial_fit(X, sample_weight=w)
        np.testing.assert_allclose(est.cluster_centers_, expected, atol=1e-12)
        np.testing.assert_allclose(
            est.score(X, sample_weight=w),
            -float(np.sum(w * -0.1 * np.log(np.exp(-cos_dist(X, expected) / 0.1).sum(1)))),
            rtol=1e-10,
        )

    def test_driver_batch_objective_and_init(self):
        """The driver normalises given initial centers and reports the batch objective
        in the cosine convention, mean_B (1 − max cos), at the centers before the step."""
        from arbf._drivers.minibatch import minibatch_fit

        X, C, _ = _problem(seed=22)
        U, n = unit(X), len(X)
        res = minibatch_fit(
            U, 3, None, np.random.default_rng(0), xp=array_namespace(U), sigma=0.0,
            sigma_end=None, kind="hard", lr="lloyd", init=5.0 * C, n_init=1, init_size=None,
            batch_size=n, max_iter=1, tol=0.0, max_no_improvement=None, reassignment_ratio=0.0,
            working_memory=None, verbose=False, name="MiniBatchKMeans", cosine=True,
        )  # fmt: skip
        idx = np.random.default_rng(0).integers(0, n, size=n)
        expected = float(np.mean(cos_dist(X[idx], C).min(1)))
        np.testing.assert_allclose(res.history["batch_inertia"][0], expected, rtol=1e-12)


# --------------------------------------------------------------------------------------
# the network layers
# --------------------------------------------------------------------------------------


def _riemannian(X, C, sigma, kind, w=None):
    """d/dC of F(normalise(C)) = (I − ĉĉᵀ)/‖c‖ · Σ w r (ĉ − x̂), row by row."""
    g = np.asarray(arbf.center_gradient(X, C, sigma=sigma, kind=kind, sample_weight=w,
                                        metric="cosine"))  # fmt: skip
    V = unit(C)
    tang = g - (g * V).sum(1, keepdims=True) * V
    return tang / np.linalg.norm(C, axis=1, keepdims=True)


class TestLayers:
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_torch_layer(self, kind):
        skip_unless_selected("torch")
        torch = pytest.importorskip("torch")
        from arbf.torch import RBFClustering

        X, C, w = _problem(seed=23)
        layer = RBFClustering(
            3, 4, sigma=0.2, kind=kind, reduction="sum", centers=torch.tensor(C),
            dtype=torch.float64, metric="cosine",
        )  # fmt: skip
        R, loss = layer(torch.tensor(X), sample_weight=torch.tensor(w))
        F = float(arbf.free_energy(X, C, sigma=0.2, kind=kind, sample_weight=w, metric="cosine"))
        np.testing.assert_allclose(float(loss.detach()), F, rtol=1e-12)
        np.testing.assert_allclose(R.detach().numpy(), resp_ref(X, C, 0.2, kind), atol=1e-12)
        loss.backward()
        np.testing.assert_allclose(
            layer.centers.grad.numpy(), _riemannian(X, C, 0.2, kind, w), atol=1e-10
        )
        np.testing.assert_array_equal(
            layer.predict(torch.tensor(X)).numpy(), np.argmin(cos_dist(X, C), 1)
        )
        with pytest.raises(ValueError, match="nll"):
            RBFClustering(3, 4, objective="nll", metric="cosine")
        with pytest.raises(ValueError, match="metric must be"):
            RBFClustering(3, 4, metric="dot")
        fitted = RBFClustering.from_data(torch.tensor(X), 3, random_state=0, metric="cosine")
        np.testing.assert_allclose(fitted.centers.detach().norm(dim=1).numpy(), 1.0, rtol=1e-6)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_jax(self, kind):
        skip_unless_selected("jax")
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        from arbf import jax as ajax

        X, C, w = _problem(seed=24)
        p = ajax.init_params(centers=jnp.asarray(C), sigma=0.2)
        kw = {"kind": kind, "reduction": "sum", "metric": "cosine", "sample_weight": w}
        F = float(arbf.free_energy(X, C, sigma=0.2, kind=kind, sample_weight=w, metric="cosine"))
        np.testing.assert_allclose(float(ajax.loss(p, jnp.asarray(X), **kw)), F, rtol=1e-12)
        g = jax.jit(jax.grad(lambda q: ajax.loss(q, jnp.asarray(X), **kw)))(p)
        np.testing.assert_allclose(
            np.asarray(g["centers"]), _riemannian(X, C, 0.2, kind, w), atol=1e-10
        )
        R = ajax.apply(p, jnp.asarray(X), kind=kind, metric="cosine")
        np.testing.assert_allclose(np.asarray(R), resp_ref(X, C, 0.2, kind), atol=1e-12)
        np.testing.assert_array_equal(
            np.asarray(ajax.predict(p, jnp.asarray(X), metric="cosine")),
            np.argmin(cos_dist(X, C), 1),
        )
        with pytest.raises(ValueError, match="nll"):
            ajax.loss(p, jnp.asarray(X), objective="nll", metric="cosine")
        q = ajax.init_params(jnp.asarray(X), 3, random_state=0, metric="cosine")
        np.testing.assert_allclose(np.linalg.norm(np.asarray(q["centers"]), axis=1), 1.0)


class TestBatchedAndHeads:
    """metric="cosine" with a batch axis, heads and the EMA update runs the spherical
    problem of each (the full equalities are in tests/test_batched.py and
    tests/test_torch_heads.py): here, that it is not the Euclidean answer."""

    def test_batched_functions_are_not_euclidean(self):
        X = directions(seed=3).reshape(4, 40, 5) * np.array([1.0, 5.0, 0.2, 3.0])[:, None, None]
        C = X[:, :3, :] + 0.1
        for f, kw in (
            (arbf.responsibilities, {"sigma": 0.3}),
            (arbf.lloyd_step, {}),
            (arbf.soft_lloyd_step, {"sigma": 0.3}),
            (arbf.inertia, {}),
            (arbf.free_energy, {"sigma": 0.3}),
        ):
            cos = np.asarray(f(X, C, metric="cosine", **kw))
            euc = np.asarray(f(X, C, **kw))
            assert not np.allclose(cos, euc), f.__name__
            np.testing.assert_allclose(cos[1], f(X[1], C[1], metric="cosine", **kw), rtol=1e-10)

    def test_jax_batched_params(self):
        """arbf.jax with batched params and the cosine metric: ``init_params`` runs the
        batched spherical K-Means, ``loss`` is the batched cosine free energy."""
        skip_unless_selected("jax")
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        from arbf import jax as ajax

        X = directions(seed=4).reshape(4, 40, 5) + 0.5
        q = ajax.init_params(jnp.asarray(X), 3, random_state=0, metric="cosine", sigma=0.2)
        res = arbf.kmeans(X, 3, random_state=0, metric="cosine")
        np.testing.assert_allclose(np.asarray(q["centers"]), res.centers, rtol=1e-12)
        got = ajax.loss(q, jnp.asarray(X), reduction="sum", metric="cosine")
        F = arbf.free_energy(X, res.centers, sigma=0.2, metric="cosine")
        np.testing.assert_allclose(np.asarray(got), F, rtol=1e-10)


@pytest.mark.parametrize("kind", ["softmax", "entmax15"])
def test_cosine_terms_entropy(kind):
    """The cosine per-sample terms keep F_i = B_i - σ t_i in the cosine convention
    (B_i = d_i for softmax, L_i for entmax-1.5): the entropy term is the Euclidean one of
    the unit rows at 2σ, unchanged."""
    import array_api_compat.numpy as npx

    from arbf._math import seam

    X, C, _ = _problem(seed=5)
    t = seam.cosine_sample_terms(X, C, 0.3, kind=kind, xp=npx)
    base = t.inertia if kind == "softmax" else t.distortion
    np.testing.assert_allclose(t.free_energy, base - 0.3 * t.entropy, rtol=1e-12, atol=1e-14)
    assert np.all(t.entropy >= 0)
