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


def test_unbatched_entry_points_say_what_to_do():
    """A 3-D X where one problem is expected: a ValueError that names the batched entry
    points (not scikit-learn's reshape hint, and not an error from deep inside)."""
    X = np.random.default_rng(0).normal(size=(2, 20, 3))
    with pytest.raises(ValueError, match=r"KMeans.fit takes X of shape .* arbf.kmeans"):
        arbf.KMeans(3).fit(X)
    for call in (
        lambda: arbf.kmeans_plusplus(X, 3),
        lambda: arbf.RBFKMeans(3).fit(X),
    ):
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
