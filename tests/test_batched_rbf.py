"""Batched rbf_kmeans and anneal (a leading axis B): every field equals B separate calls."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from arbf._math import seam
from tests.backends import assert_close, tolerance

B, N, D, K = 3, 60, 3, 4


def _blobs(seed: int = 0, b: int = B, n: int = N, d: int = D, k: int = K):
    """``(b, n, d)`` blobs, a different layout per problem, and ``(b, k, d)`` starts."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=6.0, size=(b, k, d))
    lab = rng.integers(0, k, size=(b, n))
    X = means[np.arange(b)[:, None], lab] + rng.normal(size=(b, n, d))
    C = X[:, :k, :] + 0.3 * rng.normal(size=(b, k, d))
    return X, C


def _weights(seed: int = 1, b: int = B, n: int = N):
    """Positive weights with some exact zeros in every problem."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.2, 3.0, size=(b, n))
    w[:, ::7] = 0.0
    return w


def _skip_dask(backend):
    if backend.name == "dask":
        pytest.skip("batched input is refused on Dask (tested in test_dask_refused)")


def _dtype_or_skip(backend, name):
    """The backend's dtype ``name``; skip float64 where the backend has no float64
    (JAX without x64 turns float64 input into float32)."""
    got = backend.asarray(np.zeros(1, dtype=name)).dtype
    if str(got).rsplit(".", 1)[-1] != name:
        pytest.skip(f"{backend.name} has no {name}")
    return got


def _rtol(dtype, scale: float = 1.0) -> float:
    """Batched products against the compiled one-problem kernels: rounding only."""
    return tolerance(dtype, scale=1e3 * scale)


def _hist_close(got, want, rtol):
    """Per-iteration objectives: relative to their own size (the shifts fall to ~0)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(np.abs(want).max(), 1e-300))


def _check_rbf(backend, res, ones, dtype):
    assert isinstance(res, arbf.BatchedRBFResult) and len(res) == len(ones)
    backend.check_same_kind(res.centers, dtype=dtype)
    rtol = _rtol(dtype)
    for b, one in enumerate(ones):
        scale = float(np.abs(backend.to_numpy(one.centers)).max())
        assert_close(
            res.centers[b, ...], backend.to_numpy(one.centers), backend=backend, rtol=rtol,
            atol=rtol * scale,
        )  # fmt: skip
        assert res.n_iter[b] == one.n_iter
        assert res.converged[b] == one.converged
        assert set(res.history) == set(one.history)
        for name, h in one.history.items():
            _hist_close(res.history[name][b], h, rtol)
        got = res[b]
        assert isinstance(got, arbf.RBFResult) and got.n_iter == one.n_iter


class TestRBFKMeans:
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    @pytest.mark.parametrize("max_iter", [300, 9])
    def test_equals_separate_calls(self, backend, dtype, kind, max_iter):
        """Weights with zeros; the problems converge at different iterations (8, 10, 12
        for softmax), so with ``max_iter=9`` one has converged and two have not."""
        _skip_dask(backend)
        dt = _dtype_or_skip(backend, dtype)
        X, C = _blobs()
        w = _weights()
        args = [backend.asarray(a.astype(dtype)) for a in (X, C, w)]
        kw = {"sigma": 2.0, "kind": kind, "max_iter": max_iter}
        res = arbf.rbf_kmeans(args[0], args[1], sample_weight=args[2], **kw)
        ones = [
            arbf.rbf_kmeans(args[0][b, ...], args[1][b, ...], sample_weight=args[2][b, ...], **kw)
            for b in range(B)
        ]
        _check_rbf(backend, res, ones, dt)
        if max_iter == 9 and kind == "softmax":
            assert 0 < res.converged.sum() < B  # some frozen, some still running

    @pytest.mark.parametrize(
        "kw",
        [
            {"sigma": 0.0},
            {"sigma": 1.5, "update": "gradient", "lr": 0.004},
            {"sigma": 1.5, "kind": "hard"},
        ],
        ids=["hard", "gradient", "kind-hard"],
    )
    def test_other_updates(self, backend, kw):
        _skip_dask(backend)
        X, C = _blobs(3)
        res = arbf.rbf_kmeans(backend.asarray(X), backend.asarray(C), max_iter=40, **kw)
        ones = [
            arbf.rbf_kmeans(backend.asarray(X[b]), backend.asarray(C[b]), max_iter=40, **kw)
            for b in range(B)
        ]
        _check_rbf(backend, res, ones, ones[0].centers.dtype)

    def test_fixed_point_closed_form(self):
        """Independent reference: at convergence each problem's centers are its softmax
        soft centroids, written out with NumPy (weights with zeros)."""
        X, C = _blobs(4)
        w = _weights(5)
        sigma = 3.0
        res = arbf.rbf_kmeans(X, C, sigma=sigma, sample_weight=w, tol=1e-24, max_iter=5000)
        assert res.converged.all()
        M = res.centers
        Dm = ((X[:, :, None, :] - M[:, None, :, :]) ** 2).sum(-1)
        R = np.exp(-(Dm - Dm.min(-1, keepdims=True)) / sigma)
        R /= R.sum(-1, keepdims=True)
        Rw = R * w[:, :, None]
        want = np.einsum("bnk,bnd->bkd", Rw, X) / Rw.sum(1)[:, :, None]
        np.testing.assert_allclose(M, want, rtol=1e-9, atol=1e-9)
        F = -sigma * (w * np.log(np.exp(-Dm / sigma).sum(-1))).sum(-1)
        last = np.asarray([h[-1] for h in res.history["free_energy"]])
        np.testing.assert_allclose(last, F, rtol=1e-9)

    def test_scaled_data(self):
        """Data far beyond float64's squared range: each problem rescaled by its own
        power of two, as the one-problem call (centers, σ and history in data units)."""
        X, C = _blobs(6)
        s = np.asarray([1e100, 1.0, 1e-100])[:, None, None]
        X, C = X * s, C * s
        # one σ for all: nearly hard for the first problem, all at the mean for the last
        res = arbf.rbf_kmeans(X, C, sigma=2.0, max_iter=50)
        ones = [arbf.rbf_kmeans(X[b], C[b], sigma=2.0, max_iter=50) for b in range(B)]
        for b, one in enumerate(ones):
            np.testing.assert_allclose(res.centers[b], one.centers, rtol=1e-12)
            assert res.n_iter[b] == one.n_iter
            for name, h in one.history.items():
                _hist_close(res.history[name][b], h, 1e-9)


def _check_anneal(backend, res, ones, dtype, *, finish_slack: int = 0):
    assert isinstance(res, arbf.BatchedAnnealResult) and len(res) == len(ones)
    backend.check_same_kind(res.centers, dtype=dtype)
    rtol = _rtol(dtype)
    for b, one in enumerate(ones):
        scale = float(np.abs(backend.to_numpy(one.centers)).max())
        assert_close(
            res.centers[b, ...], backend.to_numpy(one.centers), backend=backend, rtol=rtol,
            atol=rtol * scale,
        )  # fmt: skip
        np.testing.assert_allclose(res.sigmas[b], one.sigmas, rtol=rtol)
        np.testing.assert_allclose(res.path[b], one.path, rtol=rtol, atol=rtol * scale)
        for name, v in one.objectives.items():
            _hist_close(res.objectives[name][b], v, rtol)
        np.testing.assert_array_equal(res.n_iter_per_level[b], one.n_iter_per_level)
        assert res.n_iter[b] == one.n_iter
        np.testing.assert_array_equal(res.one_hot[b], one.one_hot)
        np.testing.assert_allclose(res.sigma_exact[b], one.sigma_exact, rtol=rtol * 10)
        if one.kmeans is None:
            assert res.kmeans is None
            continue
        km, okm = res.kmeans[b], one.kmeans
        np.testing.assert_array_equal(backend.to_numpy(km.labels), backend.to_numpy(okm.labels))
        np.testing.assert_allclose(km.inertia, okm.inertia, rtol=rtol)
        assert km.converged == okm.converged
        # when the annealed centers are already a K-Means fixed point, the first Lloyd
        # shift is rounding: exactly 0 in one call (it stops at once), not in the other
        # (it stops one iteration later, its labels unchanged)
        assert abs(km.n_iter - okm.n_iter) <= finish_slack
        assert_close(
            res.kmeans.centers[b, ...], backend.to_numpy(okm.centers), backend=backend,
            rtol=rtol, atol=rtol * scale,
        )  # fmt: skip


class TestAnneal:
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_equals_separate_calls(self, backend, dtype, kind):
        """The default schedule (each problem's own σ levels), weights with zeros,
        perturbations seeded per problem, the batched hard finish."""
        _skip_dask(backend)
        dt = _dtype_or_skip(backend, dtype)
        X, C = _blobs(7)
        C[:, 1, :] = C[:, 0, :]  # coincident centers: the perturbation draws directions
        w = _weights(8)
        kw = {"kind": kind, "n_levels": 8, "max_iter": 60}
        args = [backend.asarray(a.astype(dtype)) for a in (X, C, w)]
        res = arbf.anneal(args[0], args[1], sample_weight=args[2], random_state=11, **kw)
        gens = np.random.default_rng(11).spawn(B)
        ones = [
            arbf.anneal(
                args[0][b, ...],
                args[1][b, ...],
                sample_weight=args[2][b, ...],
                random_state=gens[b],
                **kw,
            )
            for b in range(B)
        ]
        assert len({tuple(np.round(o.sigmas, 6)) for o in ones}) == B  # σ differ per problem
        _check_anneal(backend, res, ones, dt, finish_slack=1)

    def test_shared_schedule_hard_level_and_seed_sequence(self, backend):
        """An explicit schedule (ending at σ = 0, a hard level) shared by every problem;
        ``random_state`` as a sequence of per-problem seeds; no finish."""
        _skip_dask(backend)
        X, C = _blobs(9)
        C[:, 2, :] = C[:, 0, :]
        kw = {"schedule": [40.0, 8.0, 2.0, 0.5, 0.0], "finish": False, "max_iter": 50}
        res = arbf.anneal(backend.asarray(X), backend.asarray(C), random_state=[5, 6, 7], **kw)
        ones = [
            arbf.anneal(backend.asarray(X[b]), backend.asarray(C[b]), random_state=5 + b, **kw)
            for b in range(B)
        ]
        assert res.one_hot[:, -1].all() and res.kmeans is None
        _check_anneal(backend, res, ones, ones[0].centers.dtype)

    def test_default_schedule_reference(self):
        """Independent reference for the default schedule of every problem: it starts at
        c λ_max of the weighted covariance (NumPy's ``np.cov``) and ends at
        min(min_i Δ_i / 2, 1e-3 σ_c) at the initial centers (brute force)."""
        X, C = _blobs(10)
        w = _weights(11)
        for kind, c in (("softmax", 2.0), ("entmax15", 2.0 * np.sqrt(2.0))):
            res = arbf.anneal(X, C, kind=kind, sample_weight=w, max_iter=2, finish=False)
            for b in range(B):
                lam = np.linalg.eigvalsh(np.cov(X[b].T, aweights=w[b], bias=True))[-1]
                Dm = np.sort(((X[b][:, None, :] - C[b][None]) ** 2).sum(-1), axis=1)
                lo = min((Dm[:, 1] - Dm[:, 0]).min() / 2, 1e-3 * c * lam)
                want = np.geomspace(c * lam, lo, 30)
                np.testing.assert_allclose(res.sigmas[b], want, rtol=1e-10)

    def test_one_hot_and_sigma_exact_reference(self):
        """``one_hot`` and ``sigma_exact`` against the brute-force margins."""
        X, C = _blobs(12)
        res = arbf.anneal(X, C, kind="entmax15", n_levels=6, max_iter=80)
        for b in range(B):
            for li in range(6):
                M = res.path[b, li]
                Dm = np.sort(((X[b][:, None, :] - M[None]) ** 2).sum(-1), axis=1)
                margin = (Dm[:, 1] - Dm[:, 0]).min()
                assert res.one_hot[b, li] == (margin >= 2 * res.sigmas[b, li])
            M = res.centers[b]
            Dm = np.sort(((X[b][:, None, :] - M[None]) ** 2).sum(-1), axis=1)
            np.testing.assert_allclose(res.sigma_exact[b], (Dm[:, 1] - Dm[:, 0]).min() / 2)

    def test_scaled_data(self):
        X, C = _blobs(13)
        s = np.asarray([1e120, 1.0, 1e-120])[:, None, None]
        X, C = X * s, C * s
        res = arbf.anneal(X, C, n_levels=5, max_iter=40)
        gens = np.random.default_rng(0).spawn(B)
        ones = [
            arbf.anneal(X[b], C[b], n_levels=5, max_iter=40, random_state=gens[b])
            for b in range(B)
        ]
        _check_anneal(arbf_numpy(), res, ones, np.dtype(np.float64), finish_slack=1)


def arbf_numpy():
    from tests.backends import make_backend

    return make_backend("numpy")


@pytest.mark.parametrize("fast_paths", [True, False])
@pytest.mark.parametrize("kind", ["softmax", "entmax15"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_per_problem_sigma_statistics(fast_paths, kind, dtype):
    """The batched soft statistics with a temperature per problem (``sigmas``) are each
    problem's own at its σ: the compiled (problem, chunk) tiles (``fast_paths=True``) and
    the Array API reference, every field, weights with zeros, chunked rows."""
    import array_api_compat.numpy as npx

    X, C = _blobs(23, n=500)
    w = _weights(24, n=500)
    X, C, w = X.astype(dtype), C.astype(dtype), w.astype(dtype)
    sig = np.asarray([0.3, 2.0, 40.0])
    with arbf.config_context(fast_paths=fast_paths):
        st = seam.batched_soft_stats(
            X, C, w, sigma=1.0, sigmas=sig.astype(dtype), kind=kind, xp=npx, working_memory=0.05
        )
    rtol = tolerance(np.dtype(dtype), scale=100)
    for b in range(B):
        with arbf.config_context(fast_paths=False):
            one = seam.soft_stats(X[b], C[b], w[b], sigma=float(sig[b]), kind=kind, xp=npx)
        for got, want in zip(st, one, strict=True):
            want = np.asarray(want, dtype=np.float64)
            atol = rtol * max(float(np.abs(want).max()), 1.0)
            np.testing.assert_allclose(got[b], want, rtol=rtol, atol=atol)


class TestNoLoopOverB:
    """The hot path is batched: the number of passes does not grow with B."""

    @staticmethod
    def _count(monkeypatch):
        calls = {"batched_soft_stats": 0, "batched_lloyd_sums": 0, "soft_stats": 0}
        for name in list(calls):
            real = getattr(seam, name)

            def counted(*a, _real=real, _name=name, **k):
                calls[_name] += 1
                return _real(*a, **k)

            monkeypatch.setattr(seam, name, counted)
        return calls

    @pytest.mark.parametrize("f", ["rbf_kmeans", "anneal"])
    def test_passes_independent_of_b(self, monkeypatch, f):
        X, C = _blobs(14, b=1)
        counts = []
        for reps in (1, 6):
            calls = self._count(monkeypatch)
            Xr, Cr = np.repeat(X, reps, axis=0), np.repeat(C, reps, axis=0)
            if f == "rbf_kmeans":
                arbf.rbf_kmeans(Xr, Cr, sigma=2.0)
            else:
                arbf.anneal(Xr, Cr, n_levels=4, max_iter=30)
            counts.append(dict(calls))
            monkeypatch.undo()
        assert counts[0] == counts[1]
        assert counts[0]["batched_soft_stats"] > 0 and counts[0]["soft_stats"] == 0


class TestResultsAndErrors:
    def test_getitem_and_len(self):
        X, C = _blobs(15)
        res = arbf.rbf_kmeans(X, C, sigma=1.0)
        assert len(res) == B and res[-1].n_iter == res.n_iter[-1]
        with pytest.raises(IndexError):
            res[B]
        an = arbf.anneal(X, C, n_levels=3, max_iter=10)
        assert an[1].sigmas.shape == (3,) and an[1].kmeans.labels.shape == (N,)
        with pytest.raises(IndexError):
            an[-B - 1]

    def test_verbose(self, capsys):
        X, C = _blobs(25)
        arbf.rbf_kmeans(X, C, sigma=1.0, verbose=True)
        arbf.anneal(X, C, n_levels=2, max_iter=5, verbose=True)
        out = capsys.readouterr().out
        assert "sigma 1: " in out and "level 2/2: " in out

    def test_inputs_unchanged(self):
        X, C = _blobs(16)
        w = _weights(17)
        copies = [a.copy() for a in (X, C, w)]
        arbf.rbf_kmeans(X, C, sigma=1.0, sample_weight=w)
        arbf.anneal(X, C, sample_weight=w, n_levels=3, max_iter=10)
        for a, c in zip((X, C, w), copies, strict=True):
            np.testing.assert_array_equal(a, c)

    def test_shared_weights(self):
        X, C = _blobs(18)
        w = _weights(19)[0]
        a = arbf.rbf_kmeans(X, C, sigma=1.0, sample_weight=w)
        b = arbf.rbf_kmeans(X, C, sigma=1.0, sample_weight=np.broadcast_to(w, (B, N)))
        np.testing.assert_array_equal(a.centers, b.centers)

    def test_errors(self):
        X, C = _blobs(20)
        with pytest.raises(ValueError, match="metric"):
            arbf.rbf_kmeans(X, C, sigma=1.0, metric="cityblock")
        with pytest.raises(ValueError, match="metric"):
            arbf.anneal(X, C, metric="cityblock")
        with pytest.raises(ValueError, match=r"\(B, k, d\)"):
            arbf.rbf_kmeans(X, C[0], sigma=1.0)
        with pytest.raises(ValueError, match=r"\(B, k, d\)"):
            arbf.anneal(X, C[:2])
        with pytest.raises(ValueError, match="sigma"):
            arbf.rbf_kmeans(X, C, sigma=-1.0)
        with pytest.raises(ValueError, match="non-increasing"):
            arbf.anneal(X, C, schedule=[1.0, 2.0])
        with pytest.raises(ValueError, match="sigma_min"):
            arbf.anneal(X, C, sigma_min=2.0, sigma_max=1.0)
        with pytest.raises(ValueError, match="one seed per problem"):
            arbf.anneal(X, C, random_state=[1, 2])
        with pytest.raises(FloatingPointError, match="problem"), np.errstate(over="ignore"):
            arbf.rbf_kmeans(X, C, sigma=1.0, update="gradient", lr=1e200)

    def test_constant_problem_needs_a_schedule(self):
        X, C = _blobs(21)
        X[1] = 3.0
        with pytest.raises(ValueError, match="constant data"):
            arbf.anneal(X, C)
        with pytest.warns(arbf.ConvergenceWarning, match="distinct clusters"):
            res = arbf.anneal(X, C, schedule=[4.0, 1.0, 0.25])
        np.testing.assert_allclose(res.centers[1], 3.0)

    def test_unbatched_hint_names_the_batched_entry_points(self):
        X, _ = _blobs(22)
        with pytest.raises(ValueError, match=r"arbf\.rbf_kmeans, arbf\.anneal"):
            arbf.RBFKMeans(3).fit(X)

    def test_dask_refused(self):
        da = pytest.importorskip("dask.array")
        X = da.zeros((2, 10, 3), chunks=(1, 5, 3))
        with pytest.raises(TypeError, match="Dask"):
            arbf.rbf_kmeans(X, np.zeros((2, 2, 3)), sigma=1.0)
        with pytest.raises(TypeError, match="Dask"):
            arbf.anneal(X, np.zeros((2, 2, 3)))
