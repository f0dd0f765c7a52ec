"""Batched problems (a leading axis B): every result equals B separate calls."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from tests.backends import assert_close, tolerance

B, N, D, K = 3, 60, 3, 4


def _blobs(rng: np.random.Generator, b: int = B, n: int = N, d: int = D, k: int = K):
    """``(b, n, d)`` well separated blobs (no near ties), a different layout per problem."""
    means = rng.normal(scale=6.0, size=(b, k, d))
    lab = rng.integers(0, k, size=(b, n))
    return means[np.arange(b)[:, None], lab] + rng.normal(size=(b, n, d))


def _skip_dask(backend):
    if backend.name == "dask":
        pytest.skip("batched input is refused on Dask (tested in test_dask_refused)")


def _stack(backend, arrays):
    return np.stack([backend.to_numpy(a) for a in arrays])


MATH = [
    (arbf.responsibilities, {"sigma": 0.8}),
    (arbf.responsibilities, {"sigma": 0.8, "kind": "entmax15"}),
    (arbf.responsibilities, {"sigma": 0.0}),
    (arbf.lloyd_step, {}),
    (arbf.soft_lloyd_step, {"sigma": 0.5}),
    (arbf.soft_lloyd_step, {"sigma": 2.0, "kind": "entmax15"}),
    (arbf.gradient_step, {"sigma": 0.5, "lr": 0.01}),
    (arbf.inertia, {}),
    (arbf.soft_distortion, {"sigma": 0.5}),
    (arbf.free_energy, {"sigma": 0.5}),
    (arbf.free_energy, {"sigma": 0.5, "kind": "entmax15"}),
    (arbf.center_gradient, {"sigma": 0.5}),
]
WEIGHTED = {
    "lloyd_step", "soft_lloyd_step", "gradient_step", "inertia", "soft_distortion",
    "free_energy", "center_gradient",
}  # fmt: skip


class TestMath:
    @pytest.mark.parametrize(("f", "kw"), MATH, ids=lambda v: getattr(v, "__name__", str(v)))
    @pytest.mark.parametrize("weighted", [False, True])
    def test_equals_separate_calls(self, backend, rng, f, kw, weighted):
        _skip_dask(backend)
        if weighted and f.__name__ not in WEIGHTED:
            pytest.skip("no weights")
        X = _blobs(rng)
        C = X[:, :K, :] + 0.3 * rng.normal(size=(B, K, D))
        w = rng.uniform(0.2, 3.0, size=(B, N))
        extra = {"sample_weight": backend.asarray(w)} if weighted else {}
        got = f(backend.asarray(X), backend.asarray(C), **kw, **extra)
        # the NumPy one-problem functions are the reference (compiled kernels there)
        exp = np.stack(
            [
                np.asarray(f(X[b], C[b], **kw, **({"sample_weight": w[b]} if weighted else {})))
                for b in range(B)
            ]
        )
        assert_close(got, exp, backend=backend, rtol=1e-10, atol=1e-10)

    def test_soft_lloyd_closed_form(self, backend, rng):
        """Independent reference: the softmax centroids written out with NumPy."""
        _skip_dask(backend)
        X = _blobs(rng)
        C = X[:, :K, :] + 0.3 * rng.normal(size=(B, K, D))
        sigma = 3.0
        Dm = ((X[:, :, None, :] - C[:, None, :, :]) ** 2).sum(-1)
        R = np.exp(-(Dm - Dm.min(-1, keepdims=True)) / sigma)
        R /= R.sum(-1, keepdims=True)
        M = np.einsum("bnk,bnd->bkd", R, X) / R.sum(1)[:, :, None]
        got = arbf.soft_lloyd_step(backend.asarray(X), backend.asarray(C), sigma=sigma)
        assert_close(got, M, backend=backend, rtol=1e-10, atol=1e-12)
        F = -sigma * np.log(np.exp(-Dm / sigma).sum(-1)).sum(-1)
        got_f = arbf.free_energy(backend.asarray(X), backend.asarray(C), sigma=sigma)
        assert_close(got_f, F, backend=backend, rtol=1e-10)

    def test_shared_weights_broadcast(self, rng):
        X = _blobs(rng)
        C = X[:, :K, :].copy()
        w = rng.uniform(0.5, 2.0, size=N)
        a = arbf.lloyd_step(X, C, sample_weight=w)
        b = arbf.lloyd_step(X, C, sample_weight=np.broadcast_to(w, (B, N)))
        np.testing.assert_array_equal(a, b)

    def test_float32(self, rng):
        X = _blobs(rng).astype(np.float32)
        C = X[:, :K, :].copy()
        got = arbf.soft_lloyd_step(X, C, sigma=0.5)
        assert got.dtype == np.float32
        exp = np.stack([arbf.soft_lloyd_step(X[b], C[b], sigma=0.5) for b in range(B)])
        np.testing.assert_allclose(got, exp, rtol=tolerance(np.float32, scale=100), atol=1e-5)


class TestKMeans:
    @pytest.mark.parametrize("init", ["k-means++", "random"])
    def test_equals_separate_calls(self, backend, rng, init):
        _skip_dask(backend)
        X = _blobs(rng)
        res = arbf.kmeans(backend.asarray(X), K, init=init, random_state=7)
        gens = np.random.default_rng(7).spawn(B)
        assert isinstance(res, arbf.BatchedKMeansResult)
        backend.check_same_kind(res.centers)
        assert res.centers.shape == (B, K, D) and res.labels.shape == (B, N)
        for b in range(B):
            one = arbf.kmeans(X[b], K, init=init, random_state=gens[b])
            assert_close(res.centers[b, ...], one.centers, backend=backend, atol=1e-10)
            np.testing.assert_array_equal(backend.to_numpy(res.labels[b, ...]), one.labels)
            assert res.n_iter[b] == one.n_iter
            np.testing.assert_allclose(res.inertia[b], one.inertia, rtol=1e-10)
            np.testing.assert_allclose(res[b].n_init_inertia, one.n_init_inertia, rtol=1e-10)
            np.testing.assert_allclose(res.history["inertia"][b], one.history["inertia"])

    def test_weights_init_array_float32(self, backend, rng):
        _skip_dask(backend)
        X = _blobs(rng).astype(np.float32)
        C0 = X[:, :K, :].copy()
        w = rng.uniform(0.2, 3.0, size=(B, N)).astype(np.float32)
        res = arbf.kmeans(
            backend.asarray(X), K, init=backend.asarray(C0), sample_weight=backend.asarray(w)
        )
        assert res.centers.dtype == backend.xp.float32
        for b in range(B):
            one = arbf.kmeans(X[b], K, init=C0[b], sample_weight=w[b])
            assert_close(res.centers[b, ...], one.centers, backend=backend, atol=1e-4)
            np.testing.assert_array_equal(backend.to_numpy(res.labels[b, ...]), one.labels)

    def test_n_init_keeps_best_per_problem(self, rng):
        X = _blobs(rng, k=6)
        res = arbf.kmeans(X, 6, init="random", n_init=4, random_state=3)
        gens = np.random.default_rng(3).spawn(B)
        for b in range(B):
            one = arbf.kmeans(X[b], 6, init="random", n_init=4, random_state=gens[b])
            np.testing.assert_allclose(res[b].n_init_inertia, one.n_init_inertia, rtol=1e-10)
            np.testing.assert_allclose(res.inertia[b], one.inertia, rtol=1e-10)
            np.testing.assert_allclose(res.centers[b], one.centers, atol=1e-10)
        assert res.n_init_inertia.shape == (B, 4)
        np.testing.assert_allclose(res.inertia, res.n_init_inertia.min(axis=1), rtol=1e-12)

    def test_empty_cluster_relocated_as_separately(self, rng):
        X = _blobs(rng)
        C0 = X[:, :K, :].copy()
        C0[1, 2] = 1e3  # problem 1's third center starts far away: its cluster is empty
        res = arbf.kmeans(X, K, init=C0)
        for b in range(B):
            one = arbf.kmeans(X[b], K, init=C0[b])
            np.testing.assert_allclose(res.centers[b], one.centers, atol=1e-10)
            np.testing.assert_array_equal(res.labels[b], one.labels)
        assert np.abs(res.centers[1]).max() < 100

    @pytest.mark.parametrize("init", ["k-means||", "anneal"])
    def test_per_problem_inits(self, rng, init):
        X = _blobs(rng)
        res = arbf.kmeans(X, K, init=init, random_state=1)
        gens = np.random.default_rng(1).spawn(B)
        for b in range(B):
            one = arbf.kmeans(X[b], K, init=init, random_state=gens[b])
            np.testing.assert_allclose(res.centers[b], one.centers, atol=1e-8)

    def test_sequence_of_seeds(self, rng):
        X = _blobs(rng)
        res = arbf.kmeans(X, K, random_state=[4, 5, 6])
        for b, s in enumerate([4, 5, 6]):
            np.testing.assert_allclose(
                res.centers[b], arbf.kmeans(X[b], K, random_state=s).centers
            )

    def test_inputs_unchanged_and_errors(self, rng):
        X = _blobs(rng)
        X.flags.writeable = False
        arbf.kmeans(X, K, random_state=0)
        with pytest.raises(ValueError, match="random_state"):
            arbf.kmeans(X, K, random_state=[1, 2])
        with pytest.raises(ValueError, match="init"):
            arbf.kmeans(X, K, init=np.zeros((B, K, D + 1)))
        with pytest.raises(ValueError, match="sample_weight"):
            arbf.kmeans(X, K, sample_weight=np.ones((B + 1, N)))
        with pytest.raises(ValueError, match="n_samples"):
            arbf.kmeans(X, N + 1)
        with pytest.raises(ValueError, match="NaN"):
            Y = X.copy()
            Y[2, 3, 1] = np.nan
            arbf.kmeans(Y, K)
        with pytest.raises(ValueError, match="problem"):
            w = np.ones((B, N))
            w[1] = 0
            arbf.kmeans(X, K, sample_weight=w)

    def test_centers_shape_errors(self, rng):
        X = _blobs(rng)
        with pytest.raises(ValueError, match=r"\(B, k, d\)"):
            arbf.lloyd_step(X, X[0, :K, :])


def test_dask_refused():
    da = pytest.importorskip("dask.array")
    X = da.zeros((2, 10, 3), chunks=(1, 5, 3))
    with pytest.raises(TypeError, match="Dask"):
        arbf.kmeans(X, 2)
    with pytest.raises(TypeError, match="Dask"):
        arbf.responsibilities(X, np.zeros((2, 2, 3)), sigma=1.0)
    with pytest.raises(TypeError, match="Dask"):
        arbf.kmeans(X, 2, metric="cosine")
    with pytest.raises(TypeError, match="Dask"):
        arbf.lloyd_step(X, np.ones((2, 2, 3)), metric="cosine")


def test_unbatched_entry_points_say_what_to_do():
    """A 3-D X where one problem is expected: a ValueError that names the batched entry
    points (not scikit-learn's reshape hint, and not an error from deep inside)."""
    X = np.random.default_rng(0).normal(size=(2, 20, 3))
    with pytest.raises(ValueError, match=r"KMeans.fit takes X of shape .* arbf.kmeans"):
        arbf.KMeans(3).fit(X)
    for call in (lambda: arbf.RBFKMeans(3).fit(X),):
        with pytest.raises(ValueError, match=r"leading batch axis .* once per problem"):
            call()


@pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
def test_batched_entropy_term_equals_per_problem(kind):
    """The entropy term T (F = B - σT) of the batched statistics and per-sample terms is
    each problem's own (:class:`arbf._math.core.soft.SoftStats`), all fields compared."""
    import array_api_compat.numpy as npx

    from arbf._math import seam

    rng = np.random.default_rng(3)
    X = rng.normal(size=(3, 40, 4))
    C = X[:, :5, :].copy()
    w = rng.uniform(0.5, 2.0, size=(3, 40))
    with arbf.config_context(fast_paths=False):
        st = seam.batched_soft_stats(X, C, w, sigma=0.8, kind=kind, xp=npx)
        terms = seam.batched_sample_terms(X, C, 0.8, kind=kind, xp=npx)
        for b in range(3):
            one = seam.soft_stats(X[b], C[b], w[b], sigma=0.8, kind=kind, xp=npx)
            for got, want in zip(st, one, strict=True):
                np.testing.assert_allclose(got[b], want, rtol=1e-10, atol=1e-12)
            one_t = seam.sample_terms(X[b], C[b], 0.8, kind=kind, xp=npx)
            for got, want in zip(terms, one_t, strict=True):
                np.testing.assert_allclose(got[b], want, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------
# metric="cosine" with a batch axis: spherical problems, each equal to its own call
# --------------------------------------------------------------------------------------


def _directions(rng: np.random.Generator, b: int = B, n: int = N, d: int = D + 2, k: int = K):
    """``(b, n, d)`` bundles of directions around ``k`` random axes per problem, rows of
    random norms in [0.1, 10] and a common offset (so the mean is far from 0: centring
    would change the answer)."""
    axes = rng.normal(size=(b, k, d))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    lab = rng.integers(0, k, size=(b, n))
    X = axes[np.arange(b)[:, None], lab] + 0.15 * rng.normal(size=(b, n, d))
    return X * rng.uniform(0.1, 10.0, size=(b, n, 1)) + 0.2


def _unit(A: np.ndarray) -> np.ndarray:
    return A / np.linalg.norm(A, axis=-1, keepdims=True)


def _weights_with_zeros(rng: np.random.Generator, dtype: type = np.float64) -> np.ndarray:
    w = rng.uniform(0.2, 3.0, size=(B, N))
    w[:, :: N // 6] = 0.0  # some samples carry no weight in every problem
    return w.astype(dtype)


COSINE_MATH = [
    (arbf.responsibilities, {"sigma": 0.3}),
    (arbf.responsibilities, {"sigma": 0.3, "kind": "entmax15"}),
    (arbf.responsibilities, {"sigma": 0.0}),
    (arbf.lloyd_step, {}),
    (arbf.soft_lloyd_step, {"sigma": 0.2}),
    (arbf.soft_lloyd_step, {"sigma": 0.5, "kind": "entmax15"}),
    (arbf.gradient_step, {"sigma": 0.2, "lr": 0.05}),
    (arbf.gradient_step, {"sigma": 0.2}),
    (arbf.inertia, {}),
    (arbf.soft_distortion, {"sigma": 0.2}),
    (arbf.soft_distortion, {"sigma": 0.2, "kind": "entmax15"}),
    (arbf.free_energy, {"sigma": 0.2}),
    (arbf.free_energy, {"sigma": 0.2, "kind": "entmax15"}),
    (arbf.free_energy, {"sigma": 0.0}),
    (arbf.center_gradient, {"sigma": 0.2}),
]


class TestCosine:
    @pytest.mark.parametrize(
        ("f", "kw"), COSINE_MATH, ids=lambda v: getattr(v, "__name__", str(v))
    )
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    def test_math_equals_separate_calls(self, backend, rng, f, kw, dtype):
        """Every batched function with metric="cosine" (weights with zeros where it takes
        weights) is the one-problem cosine call on each problem, in both dtypes."""
        _skip_dask(backend)
        npdt = np.dtype(dtype).type
        X = _directions(rng).astype(npdt)
        C = (X[:, :K, :] + 0.3 * rng.normal(size=(B, K, D + 2))).astype(npdt)
        weighted = f is not arbf.responsibilities
        w = _weights_with_zeros(rng, npdt)
        extra = {"sample_weight": backend.asarray(w)} if weighted else {}
        got = f(backend.asarray(X), backend.asarray(C), metric="cosine", **kw, **extra)
        exp = np.stack(
            [
                np.asarray(
                    f(
                        X[b],
                        C[b],
                        metric="cosine",
                        **kw,
                        **({"sample_weight": w[b]} if weighted else {}),
                    )
                )
                for b in range(B)
            ]
        )
        assert exp.dtype == npdt
        tol = tolerance(npdt, scale=100)
        # objectives are sums over the n samples (values up to ~n): atol scaled to them
        atol = tol * max(1.0, float(np.abs(exp).max()))
        assert_close(got, exp, backend=backend, rtol=tol, atol=atol, dtype=backend.dtype(dtype))

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_against_a_numpy_reference(self, backend, rng, kind):
        """Independent reference written out with NumPy: cosines of the unit rows, the
        maps of (cos - 1)/σ, the normalised weighted soft sums (the spherical soft Lloyd
        step), the cosine free energy and the gradient Σ w r (μ̂ - x̂)."""
        _skip_dask(backend)
        from tests import reference as ref

        X = _directions(rng)
        C = X[:, :K, :] * 3.0 + 0.2 * rng.normal(size=(B, K, D + 2))
        w = _weights_with_zeros(rng)
        sigma = 0.25
        U, V = _unit(X), _unit(C)
        cos = np.einsum("bnd,bkd->bnk", U, V)
        z = (cos - 1.0) / sigma
        if kind == "softmax":
            R = np.exp(z - z.max(-1, keepdims=True))
            R /= R.sum(-1, keepdims=True)
            H = -(R * np.log(np.where(R > 0, R, 1.0))).sum(-1)
        else:
            R = np.stack([ref.entmax15(z[b]) for b in range(B)])
            H = (4.0 / 3.0) * (R - R**1.5).sum(-1)
        Dc = 1.0 - cos
        S = np.einsum("bnk,bnd->bkd", R * w[:, :, None], U)
        F = (w * ((R * Dc).sum(-1) - sigma * H)).sum(-1)
        G = np.einsum("bnk,bkd->bkd", R * w[:, :, None], V) - S
        Xb, Cb, wb = backend.asarray(X), backend.asarray(C), backend.asarray(w)
        kw = {"sigma": sigma, "kind": kind, "metric": "cosine"}
        assert_close(arbf.responsibilities(Xb, Cb, **kw), R, backend=backend, atol=1e-12)
        assert_close(
            arbf.soft_lloyd_step(Xb, Cb, sample_weight=wb, **kw), _unit(S), backend=backend,
            atol=1e-12,
        )  # fmt: skip
        assert_close(arbf.free_energy(Xb, Cb, sample_weight=wb, **kw), F, backend=backend)
        assert_close(
            arbf.center_gradient(Xb, Cb, sample_weight=wb, **kw), G, backend=backend,
            atol=1e-12,
        )  # fmt: skip
        J = (w * Dc.min(-1)).sum(-1)
        assert_close(arbf.inertia(Xb, Cb, sample_weight=wb, metric="cosine"), J, backend=backend)

    def test_lloyd_step_reference_and_zero_sum_cell(self):
        """The spherical Lloyd step is Σ_{cell} w x̂ normalised; in a problem where a
        cell's unit vectors sum to 0 that center keeps its (normalised) row while the
        other problem's centers move."""
        X = np.array(
            [
                [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]],  # rows 0 and 1 cancel in cell 0
                [[1.0, 0.2], [2.0, 0.0], [0.0, 3.0]],
            ]
        )
        C = np.array([[[0.0, -2.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
        out = np.asarray(arbf.lloyd_step(X, C, metric="cosine"))
        np.testing.assert_allclose(out[0], [[0.0, -1.0], [0.0, 1.0]])
        np.testing.assert_allclose(out[1], [_unit(_unit(X[1, 0]) + _unit(X[1, 1])), [0, 1.0]])
        for b in range(2):
            np.testing.assert_allclose(out[b], arbf.lloyd_step(X[b], C[b], metric="cosine"))

    def test_zero_row_names_the_problem_and_inputs_unchanged(self, rng):
        X = _directions(rng)
        C = X[:, :K, :].copy()
        X[2, 5] = 0.0
        X.flags.writeable = C.flags.writeable = False
        with pytest.raises(ValueError, match="row 5 of problem 2"):
            arbf.inertia(X, C, metric="cosine")
        with pytest.raises(ValueError, match="row 5 of problem 2"):
            arbf.kmeans(X, K, metric="cosine")
        Y = X.copy()
        Y[2, 5] = 1.0
        Z = C.copy()
        Z[1, 0] = 0.0
        with pytest.raises(ValueError, match=r"centers .* row 0 of problem 1"):
            arbf.lloyd_step(Y, Z, metric="cosine")


class TestCosineKMeans:
    @pytest.mark.parametrize("init", ["k-means++", "random"])
    def test_equals_separate_calls(self, backend, rng, init):
        """Same seeds, same per-problem results: problem b of the batched spherical
        K-Means is kmeans(X[b], metric="cosine") with generator b (weights with zeros)."""
        _skip_dask(backend)
        X = _directions(rng)
        w = _weights_with_zeros(rng)
        res = arbf.kmeans(
            backend.asarray(X), K, init=init, random_state=7, metric="cosine",
            sample_weight=backend.asarray(w),
        )  # fmt: skip
        gens = np.random.default_rng(7).spawn(B)
        backend.check_same_kind(res.centers)
        assert res.centers.shape == (B, K, D + 2)
        np.testing.assert_allclose(
            np.linalg.norm(backend.to_numpy(res.centers), axis=-1), 1.0, rtol=1e-12
        )
        for b in range(B):
            one = arbf.kmeans(
                X[b], K, init=init, random_state=gens[b], metric="cosine", sample_weight=w[b]
            )
            assert_close(res.centers[b, ...], one.centers, backend=backend, atol=1e-10)
            np.testing.assert_array_equal(backend.to_numpy(res.labels[b, ...]), one.labels)
            assert res.n_iter[b] == one.n_iter and res.converged[b] == one.converged
            np.testing.assert_allclose(res.inertia[b], one.inertia, rtol=1e-10)
            np.testing.assert_allclose(res[b].n_init_inertia, one.n_init_inertia, rtol=1e-10)
            np.testing.assert_allclose(res.history["inertia"][b], one.history["inertia"])
            np.testing.assert_allclose(
                res.history["center_shift"][b], one.history["center_shift"], atol=1e-12
            )

    def test_init_array_float32_and_reference(self, backend, rng):
        """float32, an initial array (normalised by the driver), weights with zeros:
        each problem as its own call, and the reported inertia is Σ w (1 - cos)."""
        _skip_dask(backend)
        X = _directions(rng).astype(np.float32)
        C0 = (X[:, :K, :] * 5.0).astype(np.float32)
        w = _weights_with_zeros(rng, np.float32)
        res = arbf.kmeans(
            backend.asarray(X), K, init=backend.asarray(C0), sample_weight=backend.asarray(w),
            metric="cosine",
        )  # fmt: skip
        assert res.centers.dtype == backend.xp.float32
        tol = tolerance(np.float32, scale=100)
        for b in range(B):
            one = arbf.kmeans(X[b], K, init=C0[b], sample_weight=w[b], metric="cosine")
            assert_close(res.centers[b, ...], one.centers, backend=backend, rtol=tol, atol=tol)
            np.testing.assert_array_equal(backend.to_numpy(res.labels[b, ...]), one.labels)
            np.testing.assert_allclose(res.inertia[b], one.inertia, rtol=tol * 10)
            U = _unit(X[b].astype(np.float64))
            Cb = backend.to_numpy(res.centers[b, ...]).astype(np.float64)
            J = float((w[b] * (1.0 - (U @ Cb.T).max(axis=1))).sum())
            np.testing.assert_allclose(res.inertia[b], J, rtol=tol * 10, atol=tol)

    def test_against_the_spherical_lloyd_reference(self, rng):
        """Independent reference: Dhillon & Modha's loop (tests/test_metric.py)."""
        from tests.test_metric import spherical_lloyd

        X = _directions(rng)
        C0 = X[:, ::15, :][:, :K, :]
        res = arbf.kmeans(X, K, init=C0, metric="cosine", tol=0.0)
        for b in range(B):
            C_ref, l_ref, J_ref, _ = spherical_lloyd(X[b], C0[b])
            np.testing.assert_allclose(res.centers[b], C_ref, atol=1e-12)
            np.testing.assert_array_equal(res.labels[b], l_ref)
            np.testing.assert_allclose(res.inertia[b], J_ref, rtol=1e-12)

    def test_n_init_empty_cluster_and_per_problem_inits(self, rng):
        X = _directions(rng)
        res = arbf.kmeans(X, K, init="random", n_init=4, random_state=3, metric="cosine")
        gens = np.random.default_rng(3).spawn(B)
        for b in range(B):
            one = arbf.kmeans(X[b], K, init="random", n_init=4, random_state=gens[b],
                              metric="cosine")  # fmt: skip
            np.testing.assert_allclose(res[b].n_init_inertia, one.n_init_inertia, rtol=1e-10)
            np.testing.assert_allclose(res.centers[b], one.centers, atol=1e-10)
        np.testing.assert_allclose(res.inertia, res.n_init_inertia.min(axis=1), rtol=1e-12)
        # a duplicated initial center: its cell is empty and is relocated, onto the sphere
        C0 = X[:, :K, :].copy()
        C0[1, 2] = C0[1, 1] * 4.0
        res = arbf.kmeans(X, K, init=C0, metric="cosine")
        for b in range(B):
            one = arbf.kmeans(X[b], K, init=C0[b], metric="cosine")
            np.testing.assert_allclose(res.centers[b], one.centers, atol=1e-10)
            np.testing.assert_array_equal(res.labels[b], one.labels)
            # the shifts include the relocation step's (its centers projected too)
            np.testing.assert_allclose(
                res.history["center_shift"][b], one.history["center_shift"], atol=1e-12
            )
        np.testing.assert_allclose(np.linalg.norm(res.centers, axis=-1), 1.0, rtol=1e-12)
        assert np.unique(res.labels[1]).size == K
        for init in ("k-means||", "anneal"):
            res = arbf.kmeans(X, K, init=init, random_state=1, metric="cosine")
            gens = np.random.default_rng(1).spawn(B)
            for b in range(B):
                one = arbf.kmeans(X[b], K, init=init, random_state=gens[b], metric="cosine")
                np.testing.assert_allclose(res.centers[b], one.centers, atol=1e-8)

    def test_verbose_prints_the_cosine_inertia(self, rng, capsys):
        X = _directions(rng)
        res = arbf.kmeans(X, K, init=X[:, :K, :], metric="cosine", verbose=True, max_iter=1)
        out = capsys.readouterr().out
        first = next(ln for ln in out.splitlines() if ln.startswith("Iteration 0"))
        printed = np.array(first.split("[")[1].split("]")[0].split(), dtype=float)
        np.testing.assert_allclose(printed, [h[0] for h in res.history["inertia"]], rtol=1e-5)

    def test_not_centred(self, rng):
        """Cosine is not translation invariant: the driver must not centre the rows (a
        shift of the data changes the batched answer exactly as the one-problem one)."""
        X = _directions(rng)
        C0 = X[:, :K, :].copy()
        a = arbf.kmeans(X, K, init=C0, metric="cosine")
        b = arbf.kmeans(X + 3.0, K, init=C0, metric="cosine")
        for p in range(B):
            one = arbf.kmeans(X[p] + 3.0, K, init=C0[p], metric="cosine")
            np.testing.assert_allclose(b.centers[p], one.centers, atol=1e-10)
        assert not np.allclose(a.inertia, b.inertia)
