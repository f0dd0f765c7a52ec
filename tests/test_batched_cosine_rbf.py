"""Batched rbf_kmeans and anneal with metric="cosine" (a leading axis B): every field
equals B separate one-problem cosine calls; independent NumPy references for the fixed
point, the default schedule, ``one_hot`` and ``sigma_exact``."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from tests.test_batched_rbf import (
    _check_anneal,
    _check_rbf,
    _dtype_or_skip,
    _hist_close,
    _skip_dask,
    _weights,
)

B, N, D, K = 3, 60, 4, 4


def _directions(seed: int = 0, b: int = B, n: int = N, d: int = D, k: int = K):
    """``(b, n, d)`` bundles of directions around ``k`` axes per problem, rows of random
    norms in [0.1, 10] and a common offset (centring would change the answer), and
    ``(b, k, d)`` starts near the first rows, not of unit norm."""
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(b, k, d))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    lab = rng.integers(0, k, size=(b, n))
    X = axes[np.arange(b)[:, None], lab] + 0.2 * rng.normal(size=(b, n, d))
    X = X * rng.uniform(0.1, 10.0, size=(b, n, 1)) + 0.2
    C = 3.0 * (X[:, :k, :] + 0.1 * rng.normal(size=(b, k, d)))
    return X, C


def _unit(A: np.ndarray) -> np.ndarray:
    return A / np.linalg.norm(A, axis=-1, keepdims=True)


def _cos_margins(X: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Per row: the gap between the two largest cosines with the centers ``M``."""
    cos = np.sort(_unit(X) @ _unit(M).T, axis=1)
    return cos[:, -1] - cos[:, -2]


def _finish_history(res, ones) -> None:
    """The finish's per-iteration history (inertia in cosine units) of every problem.

    A squared center shift is compared down to rounding: on unit vectors one of
    ``(64 eps)^2`` or less (the last iterations' shifts, ~1e-14 in float32 and ~1e-32 in
    float64) is rounding noise, whose value depends on the order of the sums."""
    for b, one in enumerate(ones):
        got, want = res.kmeans[b].history, one.kmeans.history
        eps = float(np.finfo(str(one.kmeans.centers.dtype).rsplit(".", 1)[-1]).eps)
        assert set(got) == set(want)
        for name, h in want.items():
            n = min(len(h), len(got[name]))  # the finish may stop one iteration apart
            if name == "center_shift":
                np.testing.assert_allclose(
                    np.asarray(got[name][:n], dtype=np.float64),
                    np.asarray(h[:n], dtype=np.float64),
                    rtol=1e-3,
                    atol=(64 * eps) ** 2,
                )
            else:
                _hist_close(got[name][:n], h[:n], 1e-3)


def _unit_rows(backend, A) -> None:
    norms = np.linalg.norm(np.asarray(backend.to_numpy(A), dtype=np.float64), axis=-1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


class TestRBFKMeansCosine:
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    @pytest.mark.parametrize("max_iter", [300, 6])
    def test_equals_separate_calls(self, backend, dtype, kind, max_iter):
        """Weights with zeros; with ``max_iter=6`` some problems stop unconverged."""
        _skip_dask(backend)
        dt = _dtype_or_skip(backend, dtype)
        X, C = _directions()
        w = _weights(n=N)
        args = [backend.asarray(a.astype(dtype)) for a in (X, C, w)]
        kw = {"sigma": 0.05, "kind": kind, "max_iter": max_iter, "metric": "cosine"}
        res = arbf.rbf_kmeans(args[0], args[1], sample_weight=args[2], **kw)
        ones = [
            arbf.rbf_kmeans(args[0][b, ...], args[1][b, ...], sample_weight=args[2][b, ...], **kw)
            for b in range(B)
        ]
        _check_rbf(backend, res, ones, dt)
        _unit_rows(backend, res.centers)

    @pytest.mark.parametrize(
        "kw",
        [
            {"sigma": 0.0},
            {"sigma": 0.05, "update": "gradient", "lr": 0.01},
            {"sigma": 0.05, "kind": "hard"},
        ],
        ids=["hard", "gradient", "kind-hard"],
    )
    def test_other_updates(self, backend, kw):
        """The hard loop and the gradient step (a numeric ``lr`` in cosine units)."""
        _skip_dask(backend)
        X, C = _directions(3)
        res = arbf.rbf_kmeans(
            backend.asarray(X), backend.asarray(C), max_iter=40, metric="cosine", **kw
        )
        ones = [
            arbf.rbf_kmeans(
                backend.asarray(X[b]), backend.asarray(C[b]), max_iter=40, metric="cosine", **kw
            )
            for b in range(B)
        ]
        _check_rbf(backend, res, ones, ones[0].centers.dtype)
        _unit_rows(backend, res.centers)

    def test_fixed_point_closed_form(self):
        """Independent reference: at convergence each problem's centers are the
        normalised weighted soft means of its unit rows, with responsibilities the
        softmax of ``(cos - 1) / σ``, and its free energy is
        ``-σ Σ_i w_i log Σ_j exp((cos_ij - 1) / σ)`` (written out with NumPy)."""
        X, C = _directions(4)
        w = _weights(5, n=N)
        sigma = 0.08
        res = arbf.rbf_kmeans(
            X, C, sigma=sigma, sample_weight=w, tol=1e-24, max_iter=5000, metric="cosine"
        )
        assert res.converged.all()
        U = _unit(X)
        for b in range(B):
            M = res.centers[b]
            cos = U[b] @ M.T
            R = np.exp((cos - cos.max(1, keepdims=True)) / sigma)
            R /= R.sum(1, keepdims=True)
            want = _unit((R * w[b][:, None]).T @ U[b])
            np.testing.assert_allclose(M, want, rtol=1e-9, atol=1e-9)
            F = -sigma * (w[b] * np.log(np.exp((cos - 1) / sigma).sum(1))).sum()
            np.testing.assert_allclose(res.history["free_energy"][b][-1], F, rtol=1e-9)
            J = (w[b] * (1 - cos.max(1))).sum()
            np.testing.assert_allclose(res.history["inertia"][b][-1], J, rtol=1e-9)

    def test_scale_invariant(self):
        """Cosine ignores the norms of rows and centers: each problem rescaled by its
        own factor (far beyond float64's squared range) gives the same result."""
        X, C = _directions(6)
        s = np.asarray([1e150, 1.0, 1e-150])[:, None, None]
        a = arbf.rbf_kmeans(X, C, sigma=0.05, metric="cosine")
        b = arbf.rbf_kmeans(X * s, C / s, sigma=0.05, metric="cosine")
        np.testing.assert_allclose(b.centers, a.centers, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(b.n_iter, a.n_iter)
        for name, h in a.history.items():
            for hb, ha in zip(b.history[name], h, strict=True):
                _hist_close(hb, ha, 1e-9)


class TestAnnealCosine:
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_default_schedule_equals_separate_calls(self, backend, dtype, kind):
        """Each problem's own cosine schedule, weights with zeros, coincident centers
        (the perturbations draw directions per problem), the spherical hard finish."""
        _skip_dask(backend)
        dt = _dtype_or_skip(backend, dtype)
        X, C = _directions(7)
        C[:, 1, :] = C[:, 0, :]
        w = _weights(8, n=N)
        kw = {"kind": kind, "n_levels": 8, "max_iter": 60, "metric": "cosine"}
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
        _finish_history(res, ones)
        for A in (res.centers, res.kmeans.centers):
            _unit_rows(backend, A)
        _unit_rows(backend, res.path)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_explicit_schedule_equals_separate_calls(self, backend, kind):
        """An explicit schedule ending at σ = 0 (a hard level), shared by every problem;
        ``random_state`` as a sequence of seeds; the finish, and then none."""
        _skip_dask(backend)
        X, C = _directions(9)
        C[:, 2, :] = C[:, 0, :]
        w = _weights(10, n=N)
        Xb, Cb, wb = (backend.asarray(a) for a in (X, C, w))
        for finish in (True, False):
            kw = {
                "kind": kind,
                "schedule": [0.5, 0.2, 0.05, 0.01, 0.0],
                "max_iter": 50,
                "metric": "cosine",
                "finish": finish,
            }
            res = arbf.anneal(Xb, Cb, sample_weight=wb, random_state=[5, 6, 7], **kw)
            ones = [
                arbf.anneal(
                    Xb[b, ...], Cb[b, ...], sample_weight=wb[b, ...], random_state=5 + b, **kw
                )
                for b in range(B)
            ]
            assert res.one_hot[:, -1].all()
            _check_anneal(backend, res, ones, ones[0].centers.dtype, finish_slack=1)
            if finish:
                _finish_history(res, ones)
            _unit_rows(backend, res.centers)

    def test_schedule_bounds_equal_separate_calls(self):
        """``sigma_max`` / ``sigma_min`` in cosine units, as for one problem."""
        X, C = _directions(11)
        kw = {"sigma_max": 0.4, "sigma_min": 0.02, "n_levels": 5, "metric": "cosine"}
        res = arbf.anneal(X, C, max_iter=5, finish=False, **kw)
        for b in range(B):
            one = arbf.anneal(X[b], C[b], max_iter=5, finish=False, **kw)
            np.testing.assert_allclose(res.sigmas[b], one.sigmas, rtol=1e-12)
        np.testing.assert_allclose(res.sigmas[0], np.geomspace(0.4, 0.02, 5), rtol=1e-12)
        with pytest.raises(ValueError, match="sigma_max"):
            arbf.anneal(X, C, sigma_max=-1.0, metric="cosine")

    def test_default_schedule_reference(self):
        """Independent reference for every problem's default cosine schedule: from
        c λ_max(Cov_w of the unit rows) / 2 down to min(min_i gap_i / 2, 1e-3 σ_c) with
        gap_i the difference of the two largest cosines at the initial centers."""
        X, C = _directions(12)
        w = _weights(13, n=N)
        U = _unit(X)
        for kind, c in (("softmax", 2.0), ("entmax15", 2.0 * np.sqrt(2.0))):
            res = arbf.anneal(
                X, C, kind=kind, sample_weight=w, max_iter=2, finish=False, metric="cosine"
            )
            for b in range(B):
                lam = np.linalg.eigvalsh(np.cov(U[b].T, aweights=w[b], bias=True))[-1]
                s_c = c * lam / 2
                lo = min(_cos_margins(X[b], C[b]).min() / 2, 1e-3 * s_c)
                np.testing.assert_allclose(res.sigmas[b], np.geomspace(s_c, lo, 30), rtol=1e-10)

    def test_one_hot_sigma_exact_and_finish_reference(self):
        """``one_hot`` (entmax-1.5: the cosine gap ≥ 2σ), ``sigma_exact`` (half the
        smallest gap), and the finish: a spherical K-Means fixed point whose inertia is
        ``Σ w (1 - cos)``, all against NumPy."""
        X, C = _directions(14)
        w = _weights(15, n=N)
        res = arbf.anneal(
            X, C, kind="entmax15", n_levels=6, max_iter=80, sample_weight=w, metric="cosine"
        )
        U = _unit(X)
        for b in range(B):
            for li in range(6):
                margin = _cos_margins(X[b], res.path[b, li]).min()
                assert res.one_hot[b, li] == (margin >= 2 * res.sigmas[b, li])
            M = res.centers[b]
            np.testing.assert_allclose(res.sigma_exact[b], _cos_margins(X[b], M).min() / 2)
            cos = U[b] @ M.T
            lab = cos.argmax(1)
            km = res.kmeans[b]
            np.testing.assert_array_equal(km.labels, lab)
            np.testing.assert_allclose(km.inertia, (w[b] * (1 - cos.max(1))).sum(), rtol=1e-10)
            for j in range(K):
                if w[b][lab == j].sum() > 0:
                    want = _unit((w[b][lab == j, None] * U[b][lab == j]).sum(0))
                    np.testing.assert_allclose(M[j], want, rtol=1e-10, atol=1e-12)


class TestInputsAndErrors:
    def test_inputs_unchanged(self):
        X, C = _directions(16)
        w = _weights(17, n=N)
        copies = [a.copy() for a in (X, C, w)]
        for a in (X, C, w):
            a.flags.writeable = False
        arbf.rbf_kmeans(X, C, sigma=0.05, sample_weight=w, metric="cosine")
        arbf.anneal(X, C, sample_weight=w, n_levels=3, max_iter=10, metric="cosine")
        for a, c in zip((X, C, w), copies, strict=True):
            np.testing.assert_array_equal(a, c)

    def test_zero_rows_name_the_problem(self):
        X, C = _directions(18)
        X[2, 5] = 0.0
        for f, kw in ((arbf.rbf_kmeans, {"sigma": 0.05}), (arbf.anneal, {})):
            with pytest.raises(ValueError, match=r"X has 1 row.*row 5 of problem 2"):
                f(X, C, metric="cosine", **kw)
        X[2, 5] = 1.0
        C[1, 0] = 0.0
        for f, kw in ((arbf.rbf_kmeans, {"sigma": 0.05}), (arbf.anneal, {})):
            with pytest.raises(ValueError, match=r"init .*row 0 of problem 1"):
                f(X, C, metric="cosine", **kw)

    def test_dask_refused(self):
        da = pytest.importorskip("dask.array")
        X = da.ones((2, 10, 3), chunks=(1, 5, 3))
        with pytest.raises(TypeError, match="Dask"):
            arbf.rbf_kmeans(X, np.ones((2, 2, 3)), sigma=0.1, metric="cosine")
        with pytest.raises(TypeError, match="Dask"):
            arbf.anneal(X, np.ones((2, 2, 3)), metric="cosine")
