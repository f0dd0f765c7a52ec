"""Numerics that cannot go silent (issue 15, point 3): dtypes, scale, σ range.

Every expectation is an independent reference: the same computation on data at scale 1
(K-Means and the RBF steps are scale-equivariant), closed forms of the σ → 0 and σ → ∞
limits (Lloyd's step, the weighted mean, the uniform rows), a float64 NumPy evaluation of
the entropy term, or an explicit error naming the cause.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import arbf
from arbf._drivers import deterministic_annealing as da_mod
from arbf._drivers.rbf import default_schedule
from arbf._math import seam
from tests.backends import assert_close, tolerance

# --------------------------------------------------------------------------------------
# data: three well separated blobs, no ties at the nearest center
# --------------------------------------------------------------------------------------


def _blobs(n: int = 45, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [6.0, 0.5], [0.5, 6.0]])
    return np.concatenate([rng.normal(m, 0.6, (n // 3, 2)) for m in means])


def _init(X: np.ndarray) -> np.ndarray:
    n = X.shape[0] // 3
    return X[[0, n, 2 * n]].copy()


def _assert_scaled(got, ref, f, backend) -> None:
    """``got == ref * f`` bit for bit (a power-of-two rescaling is exact), except on Dask,
    whose NumPy blocks may sum in another order (SIMD reductions depend on the memory
    alignment of each block): there within a few units in the last place."""
    g, r = _host(got), _host(ref) * f
    if backend.name == "dask":
        np.testing.assert_allclose(g, r, rtol=8 * np.finfo(g.dtype).eps)
    else:
        np.testing.assert_array_equal(g, r)


def _host(x):
    from arbf._backend import to_host

    return np.asarray(to_host(x))


# the scales per dtype: powers of two (the rescaling is exact: results scale bit for bit)
# and decimal ones (rounded inputs: results agree to the dtype's precision)
POW2 = {"float32": [2.0**70, 2.0**-100], "float64": [2.0**500, 2.0**-700]}
DECIMAL = {"float32": [1e20, 1e-30], "float64": [1e200, 1e-200]}


# --------------------------------------------------------------------------------------
# dtypes: non-native float64 and longdouble work (and come back) in float64
# --------------------------------------------------------------------------------------


class TestDtypes:
    @pytest.mark.parametrize(
        ("dtype", "native"),
        [(">f8", np.float64), (">f4", np.float32), (np.longdouble, np.float64)],
    )
    def test_every_entry_point_works_in_the_native_float(self, dtype, native):
        X = _blobs()
        Xd, C = X.astype(dtype), _init(X)
        ref = X.astype(native)
        w = np.linspace(0.5, 1.5, X.shape[0]).astype(dtype)
        checks = {
            "kmeans": (arbf.kmeans(Xd, 3, init=C).centers, arbf.kmeans(ref, 3, init=C).centers),
            "responsibilities": (
                arbf.responsibilities(Xd, C.astype(dtype), sigma=0.5),
                arbf.responsibilities(ref, C, sigma=0.5),
            ),
            "free_energy": (
                arbf.free_energy(Xd, C, sigma=0.5, sample_weight=w),
                arbf.free_energy(ref, C, sigma=0.5, sample_weight=w.astype(native)),
            ),
            "lloyd_step": (arbf.lloyd_step(Xd, C), arbf.lloyd_step(ref, C)),
            "rbf_kmeans": (
                arbf.rbf_kmeans(Xd, C, sigma=0.5).centers,
                arbf.rbf_kmeans(ref, C, sigma=0.5).centers,
            ),
            "entmax15": (arbf.entmax15(-Xd), arbf.entmax15(-ref)),
            "KMeans.transform": (
                arbf.KMeans(3, init=C).fit(Xd).transform(Xd),
                arbf.KMeans(3, init=C).fit(ref).transform(ref),
            ),
            "centroid_discrepancy": (
                arbf.centroid_discrepancy(Xd[:3], C.astype(dtype)),
                arbf.centroid_discrepancy(ref[:3], C),
            ),
        }
        for name, (got, want) in checks.items():
            got, want = np.asarray(got), np.asarray(want)
            assert got.dtype == np.dtype(native), name
            assert got.dtype.isnative, name
            if dtype == np.longdouble:  # the same float64 values: the same answer
                np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name)
            else:
                np.testing.assert_array_equal(got, want, err_msg=name)

    def test_longdouble_is_computed_in_float64(self):
        # digits beyond float64 are not kept: the documented rule
        X = np.array([[0.0], [1.0], [2.0]], dtype=np.longdouble)
        X[1, 0] += np.longdouble(2.0) ** -60  # invisible in float64
        got = arbf.kmeans(X, 1, init=np.array([[0.0]])).centers
        assert got.dtype == np.float64 and float(got[0, 0]) == 1.0

    def test_half_precision_returns_its_own_dtype_from_entmax(self):
        z = np.array([0.0, -0.4, -6.0], dtype=np.float16)
        assert arbf.entmax15(z).dtype == np.float16  # computed in float32


# --------------------------------------------------------------------------------------
# K-Means is scale-proof
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
class TestKMeansScale:
    def test_power_of_two_scales_are_exact(self, backend, dtype):
        X = _blobs().astype(dtype)
        r0 = arbf.kmeans(backend.asarray(X), 3, random_state=0)
        for f in POW2[dtype]:
            r = arbf.kmeans(backend.asarray(X * f), 3, random_state=0)
            backend.check_same_kind(r.centers, dtype=backend.dtype(dtype))
            np.testing.assert_array_equal(_host(r.labels), _host(r0.labels))
            np.testing.assert_array_equal(_host(r.centers), _host(r0.centers) * f)
            assert r.inertia == r0.inertia * f * f
            assert r.n_iter == r0.n_iter

    def test_decimal_scales(self, backend, dtype):
        X = _blobs().astype(dtype)
        C = _init(X)
        r0 = arbf.kmeans(backend.asarray(X), 3, init=backend.asarray(C))
        for f in DECIMAL[dtype]:
            Xf = (X * f).astype(dtype)
            r = arbf.kmeans(backend.asarray(Xf), 3, init=backend.asarray((C * f).astype(dtype)))
            np.testing.assert_array_equal(_host(r.labels), _host(r0.labels))
            assert_close(
                r.centers, _host(r0.centers) * f, backend=backend, rtol=tolerance(dtype, scale=1e3)
            )
            if math.isfinite(r0.inertia * f * f):
                np.testing.assert_allclose(r.inertia, r0.inertia * f * f, rtol=1e-4)

    def test_inertia_beyond_float64_is_inf_and_said_so(self, dtype):
        if dtype == "float32":
            pytest.skip("float32 inertias always fit a float64")
        X = _blobs() * 1e200
        with pytest.warns(RuntimeWarning, match="beyond float64's range"):
            r = arbf.kmeans(X, 3, init=_init(X))
        assert r.inertia == math.inf
        assert np.all(np.isfinite(r.centers))

    def test_estimators_on_huge_and_tiny_data(self, backend, dtype):
        X = _blobs().astype(dtype)
        C = _init(X)
        B = backend.asarray
        km0 = arbf.KMeans(3, init=B(C)).fit(B(X))
        for f in POW2[dtype]:
            Xf = B(X * f)
            km = arbf.KMeans(3, init=B(C * f)).fit(Xf)
            np.testing.assert_array_equal(_host(km.predict(Xf)), _host(km0.predict(B(X))))
            np.testing.assert_array_equal(_host(km.transform(Xf)), _host(km0.transform(B(X))) * f)
            assert km.score(Xf) == km0.score(B(X)) * f * f
            # a model fitted at scale 1 predicts data at another scale without overflow
            assert np.all(np.isfinite(_host(km0.transform(Xf))))

    def test_minibatch(self, backend, dtype):
        X = _blobs().astype(dtype)
        C = _init(X)
        B = backend.asarray
        kw = {"batch_size": 15, "max_iter": 5, "random_state": 0}
        m0 = arbf.MiniBatchKMeans(3, init=B(C), **kw).fit(B(X))
        for f in POW2[dtype]:
            m = arbf.MiniBatchKMeans(3, init=B(C * f), **kw).fit(B(X * f))
            _assert_scaled(m.cluster_centers_, m0.cluster_centers_, f, backend)
            np.testing.assert_array_equal(_host(m.labels_), _host(m0.labels_))
            assert m.inertia_ == m0.inertia_ * f * f
            p = arbf.MiniBatchKMeans(3, init=B(C * f)).partial_fit(B(X * f))
            q = arbf.MiniBatchKMeans(3, init=B(C)).partial_fit(B(X))
            _assert_scaled(p.cluster_centers_, q.cluster_centers_, f, backend)

    def test_inits_and_annealing(self, backend, dtype):
        X = _blobs().astype(dtype)
        B = backend.asarray
        c0, i0 = arbf.kmeans_plusplus(B(X), 3, random_state=1)
        d0 = arbf.deterministic_annealing(B(X), 3, random_state=0)
        for f in POW2[dtype]:
            Xf = B(X * f)
            c, i = arbf.kmeans_plusplus(Xf, 3, random_state=1)
            np.testing.assert_array_equal(i, i0)
            np.testing.assert_array_equal(_host(c), _host(c0) * f)
            np.testing.assert_array_equal(
                _host(arbf.kmeans_parallel(Xf, 3, random_state=1)),
                _host(arbf.kmeans_parallel(B(X), 3, random_state=1)) * f,
            )
            d = arbf.deterministic_annealing(Xf, 3, random_state=0)
            np.testing.assert_array_equal(_host(d.centers), _host(d0.centers) * f)
            np.testing.assert_array_equal(d.sigmas, d0.sigmas * f * f)


# --------------------------------------------------------------------------------------
# σ from 1e-300 to 1e300 times the squared data scale
# --------------------------------------------------------------------------------------

TINY, HUGE = 1e-300, 1e300

# data scales for the σ range: the ends 1e-300 f**2 and 1e300 f**2 must themselves be
# float64 numbers (0 < σ < inf) to be passed at all
SIGMA_SCALES = {"float32": [1.0, 2.0**60, 2.0**-60], "float64": [1.0, 2.0**-3]}


def _tiny(f: float) -> float | None:
    s = TINY * f * f
    return s if s > 0 else None


def _huge(f: float) -> float | None:
    s = HUGE * f * f
    return s if math.isfinite(s) else None


def _weighted_mean(X, w):
    return (w[:, None] * X).sum(0) / w.sum()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["softmax", "entmax15"])
class TestSigmaRange:
    def test_responsibilities_limits(self, backend, dtype, kind):
        X = _blobs().astype(dtype)
        C = _init(X)
        hard = arbf.responsibilities(X, C, sigma=0.0)
        for f in SIGMA_SCALES[dtype]:
            Xf, Cf = backend.asarray(X * f), backend.asarray(C * f)
            if _tiny(f):
                R = arbf.responsibilities(Xf, Cf, sigma=_tiny(f), kind=kind)
                backend.check_same_kind(R, dtype=backend.dtype(dtype))
                np.testing.assert_array_equal(_host(R), hard)
            if _huge(f):
                R = arbf.responsibilities(Xf, Cf, sigma=_huge(f), kind=kind)
                np.testing.assert_allclose(_host(R), np.full(R.shape, 1 / 3), rtol=1e-6)

    def test_steps_limits(self, backend, dtype, kind):
        X = _blobs().astype(dtype)
        C = _init(X)
        w = np.linspace(0.2, 2.0, X.shape[0]).astype(dtype)
        lloyd = arbf.lloyd_step(X, C, sample_weight=w)
        mean = _weighted_mean(X.astype(np.float64), w.astype(np.float64))
        rtol = tolerance(dtype, scale=50)
        for f in SIGMA_SCALES[dtype]:
            Xf, Cf, wb = backend.asarray(X * f), backend.asarray(C * f), backend.asarray(w)
            for step in (arbf.soft_lloyd_step, arbf.gradient_step):
                if _tiny(f):  # Lloyd's step (up to the soft sums' own rounding)
                    lo = step(Xf, Cf, sigma=_tiny(f), kind=kind, sample_weight=wb)
                    np.testing.assert_allclose(_host(lo) / f, lloyd, rtol=rtol)
                if _huge(f):  # every center at the weighted mean
                    hi = step(Xf, Cf, sigma=_huge(f), kind=kind, sample_weight=wb)
                    np.testing.assert_allclose(
                        _host(hi) / f, np.broadcast_to(mean, C.shape), rtol=rtol
                    )

    def test_objectives_limits(self, backend, dtype, kind):
        X = _blobs().astype(dtype)
        C = _init(X)
        X64, C64 = X.astype(np.float64), C.astype(np.float64)
        J = float(arbf.inertia(X64, C64))
        D = ((X64[:, None, :] - C64[None]) ** 2).sum(-1)
        rtol = tolerance(dtype, scale=50)
        for f in SIGMA_SCALES[dtype]:
            Xf, Cf = backend.asarray(X * f), backend.asarray(C * f)
            u = f * f
            if _tiny(f):  # both tend to the inertia
                for fn in (arbf.soft_distortion, arbf.free_energy):
                    v = fn(Xf, Cf, sigma=_tiny(f), kind=kind)
                    backend.check_same_kind(v, dtype=backend.dtype(dtype))
                    np.testing.assert_allclose(float(_host(v)) / u, J, rtol=rtol)
            if _huge(f):  # uniform rows: the mean squared distance to the centers
                L = arbf.soft_distortion(Xf, Cf, sigma=_huge(f), kind=kind)
                np.testing.assert_allclose(float(_host(L)) / u, D.mean(1).sum(), rtol=rtol)
        H = math.log(3) if kind == "softmax" else 4 / 3 * (1 - 1 / math.sqrt(3))
        Xb, Cb = backend.asarray(X), backend.asarray(C)
        if dtype == "float64":  # F = L - σ n H(uniform), finite in float64
            F = float(_host(arbf.free_energy(Xb, Cb, sigma=HUGE, kind=kind)))
            np.testing.assert_allclose(F, D.mean(1).sum() - HUGE * X.shape[0] * H, rtol=1e-12)
        else:  # -1e300 * 45 * H is no float32: an error naming the value
            with pytest.raises(ValueError, match=r"at sigma=1e\+300 is .* range of float32"):
                arbf.free_energy(Xb, Cb, sigma=HUGE, kind=kind)

    def test_drivers_and_estimators_limits(self, backend, dtype, kind):
        X = _blobs().astype(dtype)
        C = _init(X)
        km = arbf.kmeans(backend.asarray(X), 3, init=backend.asarray(C))
        km_centers = _host(km.centers)
        mean = X.astype(np.float64).mean(0)
        # large data at a σ tiny against them, small data at a σ huge against them
        f_lo, f_hi = POW2[dtype][0], POW2[dtype][1]
        Xf, Cf = backend.asarray(X * f_lo), backend.asarray(C * f_lo)
        rtol = tolerance(dtype, scale=50)
        lo = arbf.rbf_kmeans(Xf, Cf, sigma=_tiny(f_lo), kind=kind)  # Lloyd's fixed point
        np.testing.assert_allclose(_host(lo.centers) / f_lo, km_centers, rtol=rtol)
        assert all(np.all(np.isfinite(v)) for v in lo.history.values())
        res = arbf.anneal(Xf, Cf, kind=kind, schedule=[f_lo * f_lo, _tiny(f_lo)])
        assert np.all(np.isfinite(res.path)) and np.all(np.isfinite(res.objectives["inertia"]))
        np.testing.assert_array_equal(_host(res.centers), km_centers * f_lo)
        est = arbf.RBFKMeans(3, sigma=_tiny(f_lo), kind=kind, init=Cf).fit(Xf)
        np.testing.assert_allclose(_host(est.cluster_centers_) / f_lo, km_centers, rtol=rtol)
        P = est.predict_proba(Xf)
        np.testing.assert_array_equal(_host(P), arbf.responsibilities(X, C, sigma=0.0))
        assert np.isfinite(est.score(Xf))

        Xf, Cf = backend.asarray(X * f_hi), backend.asarray(C * f_hi)
        hi = arbf.rbf_kmeans(Xf, Cf, sigma=_huge(f_hi), kind=kind)
        np.testing.assert_allclose(
            _host(hi.centers) / f_hi, np.broadcast_to(mean, C.shape), rtol=rtol
        )
        assert np.all(np.isfinite(hi.history["soft_distortion"]))
        assert np.all(hi.history["free_energy"] < 0)  # -σ n H in float64, not -inf
        mb = arbf.MiniBatchRBFKMeans(
            3, sigma=_huge(f_hi), kind=kind, init=Cf, batch_size=45, max_iter=3, random_state=0
        ).fit(Xf)
        M = _host(mb.cluster_centers_)
        assert np.all(np.isfinite(M))
        # uniform rows: every center is the same running mean of the batches drawn
        np.testing.assert_allclose(M / f_hi, np.broadcast_to(M[0] / f_hi, C.shape), rtol=rtol)
        assert math.isfinite(mb.score(Xf))


class TestEntropyTerm:
    """The soft pass's T against a float64 NumPy evaluation (F = B - σT)."""

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    @pytest.mark.parametrize("sigma", [0.3, 4.0])
    def test_against_numpy(self, backend, kind, sigma):
        X = _blobs()
        C = _init(X) + 0.7
        w = np.linspace(0.0, 2.0, X.shape[0])
        D = ((X[:, None, :] - C[None]) ** 2).sum(-1)
        G = D - D.min(1, keepdims=True)
        if kind == "softmax":
            T = float((w * np.log(np.exp(-G / sigma).sum(1))).sum())
            B = float((w * D.min(1)).sum())
        else:
            P = np.asarray(arbf.entmax15(-D / sigma))
            T = float((w * (4 / 3) * (P - P**1.5).sum(1)).sum())
            B = float((w * (P * D).sum(1)).sum())
        xp = backend.xp
        st = seam.soft_stats(
            backend.asarray(X), backend.asarray(C), backend.asarray(w), sigma=sigma, kind=kind,
            xp=xp,
        )  # fmt: skip
        np.testing.assert_allclose(float(_host(st.entropy)), T, rtol=1e-10)
        np.testing.assert_allclose(float(_host(seam.free_energy_base(st, kind))), B, rtol=1e-10)
        np.testing.assert_allclose(float(_host(st.free_energy)), B - sigma * T, rtol=1e-10)
        F = arbf.free_energy(backend.asarray(X), backend.asarray(C), sigma=sigma, kind=kind,
                             sample_weight=backend.asarray(w))  # fmt: skip
        np.testing.assert_allclose(float(_host(F)), B - sigma * T, rtol=1e-10)


class TestObjectivesBeyondTheDtype:
    def test_inertia_of_float32_at_1e20(self, backend):
        X = (_blobs() * 1e20).astype("float32")
        with pytest.raises(
            ValueError, match=r"inertia is .*e\+4[0-9], beyond the range of float32"
        ):
            arbf.inertia(backend.asarray(X), backend.asarray(_init(X)))
        # the estimator's score is a float64: no error
        km = arbf.KMeans(3, init=_init(X)).fit(X)
        assert math.isfinite(km.score(X)) and km.score(X) < -3.4e38

    def test_a_representable_value_is_returned(self, backend):
        X = (_blobs() * 1e18).astype("float32")
        J = arbf.inertia(backend.asarray(X), backend.asarray(_init(X)))
        backend.check_same_kind(J, dtype=backend.dtype("float32"))
        ref = float(arbf.inertia(_blobs(), _init(_blobs()))) * 1e36
        np.testing.assert_allclose(float(_host(J)), ref, rtol=1e-5)


# --------------------------------------------------------------------------------------
# entmax family: all -inf slices
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [arbf.entmax15, arbf.sparsemax, arbf.entmax_bisect])
def test_all_neg_inf_slice_is_refused(backend, fn):
    z = backend.asarray(np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]]))
    with pytest.raises(ValueError, match="all -inf"):
        fn(z)
    with pytest.raises(ValueError, match="along axis 0 whose scores are all -inf"):
        fn(backend.asarray(np.array([[-np.inf, 0.0], [-np.inf, 1.0]])), axis=0)
    p = fn(backend.asarray(np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]])))
    np.testing.assert_allclose(_host(p).sum(1), 1.0)
    np.testing.assert_array_equal(_host(p)[:, 1] > 0, [False, True])


# --------------------------------------------------------------------------------------
# annealing returns n_clusters centers
# --------------------------------------------------------------------------------------


class TestAnnealingCount:
    def test_constant_data(self, backend):
        X = backend.asarray(np.ones((10, 2)))
        with pytest.warns(arbf.ConvergenceWarning, match=r"distinct clusters \(1\)"):
            res = arbf.deterministic_annealing(X, 3)
        assert tuple(res.centers.shape) == (3, 2)
        np.testing.assert_array_equal(_host(res.centers), np.ones((3, 2)))
        with pytest.warns(arbf.ConvergenceWarning):
            assert tuple(arbf.anneal_init(X, 3).shape) == (3, 2)
        with pytest.warns(arbf.ConvergenceWarning):
            km = arbf.kmeans(X, 3, init="anneal")
        assert tuple(km.centers.shape) == (3, 2)
        with pytest.warns(arbf.ConvergenceWarning):
            res = arbf.deterministic_annealing(X, 3, finish=False)
        assert tuple(res.centers.shape) == (3, 2)

    def test_one_positive_weight(self, backend):
        X = _blobs()
        w = np.zeros(X.shape[0])
        w[7] = 2.0
        with pytest.warns(arbf.ConvergenceWarning):
            res = arbf.deterministic_annealing(
                backend.asarray(X), 3, sample_weight=backend.asarray(w)
            )
        assert tuple(res.centers.shape) == (3, 2)
        assert res.kmeans is not None and res.kmeans.inertia == 0.0

    def test_tiny_scale_keeps_every_cluster(self, backend):
        X = _blobs()
        d0 = arbf.deterministic_annealing(X, 3, random_state=0)
        ref = np.sort(d0.centers[:, 0])
        for f in (1e-200, 2.0**-700):
            d = arbf.deterministic_annealing(backend.asarray(X * f), 3, random_state=0)
            C = _host(d.centers)
            assert np.unique(C, axis=0).shape[0] == 3
            np.testing.assert_allclose(np.sort(C[:, 0]) / f, ref, rtol=1e-12)

    def test_level_cap(self, monkeypatch):
        monkeypatch.setattr(da_mod, "MAX_LEVELS", 2)
        with pytest.warns(arbf.ConvergenceWarning, match="stopped after 2 temperature levels"):
            res = arbf.deterministic_annealing(_blobs(), 3, cooling=0.99, hard_tol=1e-12)
        assert res.sigmas.size == 2 and tuple(res.centers.shape) == (3, 2)


# --------------------------------------------------------------------------------------
# bounds: no valid-looking call allocates gigabytes or runs without end
# --------------------------------------------------------------------------------------


class TestBounds:
    @pytest.mark.parametrize(
        ("call", "match"),
        [
            (lambda X: arbf.kmeans_plusplus(X, 3, n_local_trials=10**9), "n_local_trials"),
            (
                lambda X: arbf.kmeans_plusplus(X, 3, n_local_trials=46),
                "n_local_trials must be <= n_samples=45",
            ),
            (lambda X: arbf.kmeans_parallel(X, 3, n_rounds=10**9), "n_rounds"),
            (lambda X: arbf.anneal(X, _init(X), n_levels=10**9), "n_levels"),
            (lambda X: default_schedule(X, n_levels=10_001), "n_levels"),
            (lambda X: arbf.deterministic_annealing(X, 3, cooling=0.999999), "cooling"),
            (lambda X: arbf.anneal_init(X, 3, cooling=0.995), "cooling"),
        ],
    )
    def test_refused(self, call, match):
        with pytest.raises(ValueError, match=match):
            call(_blobs())

    def test_kmeanspp_candidate_blocks_equal_one_block(self):
        X = _blobs(300)
        a = arbf.kmeans_plusplus(X, 5, n_local_trials=20, random_state=3)
        b = arbf.kmeans_plusplus(X, 5, n_local_trials=20, random_state=3, working_memory=0.001)
        np.testing.assert_array_equal(a[1], b[1])

    def test_kmeans_parallel_candidate_blocks_equal_one_block(self):
        X = _blobs(300)
        a = arbf.kmeans_parallel(X, 5, oversampling_factor=20, random_state=3)
        b = arbf.kmeans_parallel(
            X, 5, oversampling_factor=20, random_state=3, working_memory=0.001
        )
        np.testing.assert_allclose(a, b, rtol=1e-12)


class TestMessages:
    def test_minibatch_float_lr_names_lr(self):
        X = _blobs().astype("float32")
        est = arbf.MiniBatchRBFKMeans(3, sigma=1.0, lr=1e38, init=_init(X), batch_size=45)
        with pytest.raises(FloatingPointError, match="learning rate lr=1e\\+38"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                est.fit(X)

    def test_minibatch_on_overflowing_data_now_fits(self):
        X = (_blobs() * 1e20).astype("float32")
        est = arbf.MiniBatchKMeans(3, init=_init(X), random_state=0).fit(X)
        assert np.all(np.isfinite(est.cluster_centers_)) and np.isfinite(est.inertia_)

    def test_centroid_discrepancy_of_huge_centers(self, backend):
        C = _init(_blobs()) * 1e200
        got = arbf.centroid_discrepancy(backend.asarray(C[::-1]), backend.asarray(C + 3e199))
        np.testing.assert_allclose(_host(got), math.sqrt(2) * 3e199, rtol=1e-12)
