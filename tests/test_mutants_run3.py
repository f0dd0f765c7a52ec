"""Tests written to kill survivors of the complete mutation run of ``_math/seam.py``,
``_drivers/engine.py`` and ``_math/core/monotone.py`` on 9dfd96f (docs/testing.md,
"Mutation testing").  Values are checked against an independent reference: plain NumPy
or a closed form.
"""

from __future__ import annotations

import numpy as np
import pytest

from arbf._math import seam
from arbf._math.kernels import runtime as kernel_runtime


class TestLabelledDistancesWideBlocks:
    """Above ``PAIRWISE_BLOCK`` features the host route evaluates NumPy's expression over
    blocks of ``CACHE_BYTES // (d * itemsize)`` rows: every row must be reached when the
    rows outnumber both the block and the features."""

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("shifted", [False, True])
    def test_every_block_against_numpy(self, dtype, shifted, monkeypatch):
        rng = np.random.default_rng(7)
        n, d, k = 300, 129, 5
        X = rng.standard_normal((n, d)).astype(dtype)
        C = rng.standard_normal((k, d)).astype(dtype)
        labels = rng.integers(0, k, n)
        shift = X.mean(axis=0) if shifted else None
        itemsize = np.dtype(dtype).itemsize
        monkeypatch.setattr(kernel_runtime, "CACHE_BYTES", 10 * d * itemsize)  # 10 rows
        got = np.asarray(seam.labelled_sq_distances(X, C, labels, xp=np, shift=shift))
        Xr = X.astype(np.float64) - (0.0 if shift is None else shift.astype(np.float64))
        want = ((Xr - C.astype(np.float64)[labels]) ** 2).sum(axis=1)
        assert got.shape == (n,)
        assert got.dtype == np.dtype(dtype)
        rtol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(got, want, rtol=rtol)


class TestSparsePrincipalAxisStart:
    """The sparse route switches from the eigendecomposition to power iteration at the
    dense route's ``EIGH_MAX_FEATURES`` and starts from ``v0``: above it the axis keeps
    ``v0``'s side (the component along the top eigenvector never changes sign), and λ is
    the top eigenvalue of the centred Gram matrix."""

    def test_power_iteration_from_v0_above_the_threshold(self, monkeypatch):
        import scipy.sparse as sp

        from arbf._math.core import spectral

        monkeypatch.setattr(spectral, "EIGH_MAX_FEATURES", 4)
        rng = np.random.default_rng(11)
        n, d = 50, 12
        u = rng.normal(size=d)
        u /= np.linalg.norm(u)
        X = rng.normal(size=(n, 1)) * 5.0 * u + 0.1 * rng.normal(size=(n, d))
        X[rng.random((n, d)) < 0.2] = 0.0
        Xc = X - X.mean(0)
        lam_ref = float(np.linalg.eigvalsh(Xc @ Xc.T / n)[-1])
        for sign in (1.0, -1.0):
            v0 = sign * u + 0.05 * rng.normal(size=d)
            lam, v = seam.principal_axis(sp.csr_matrix(X), None, xp=np, v0=v0)
            assert lam == pytest.approx(lam_ref, rel=1e-8)
            assert float(v @ v0) > 0
            assert abs(float(v @ u)) > 0.99


class TestFinishPassesTheAlgorithm:
    """The annealers' hand-over runs the assignment method it is given (RBFKMeans'
    ``algorithm``), not the engine's default, with its iteration budget (300)."""

    @pytest.mark.parametrize("algorithm", ["lloyd", "elkan", "hamerly", "yinyang"])
    def test_the_stepper_sees_the_algorithm(self, algorithm, monkeypatch, capsys):
        from arbf._drivers import engine

        seen: list[tuple[str, int, int]] = []
        real = seam.lloyd_stepper

        def spy(*args, **kwargs):
            seen.append((kwargs["algorithm"], kwargs["max_iter"], kwargs["n_clusters"]))
            return real(*args, **kwargs)

        monkeypatch.setattr(seam, "lloyd_stepper", spy)
        rng = np.random.default_rng(6)
        X = np.concatenate([rng.normal(m, 1.0, (15, 2)) for m in (0.0, 5.0, 10.0)])
        prep = engine.prepare(X, xp=np)
        _, km = engine.finish(
            prep, prep.from_data(X[[0, 1, 2]]), None, xp=np, working_memory=None,
            algorithm=algorithm,
        )  # fmt: skip
        assert seen == [(algorithm, 300, 3)]  # budget and k decide "auto"'s choice too
        assert km.converged is True
        assert capsys.readouterr().out == ""  # the hand-over is silent


class TestLloydVerbose:
    """``lloyd`` is silent by default; with ``verbose`` each line prints the iteration's
    inertia as the history holds it (times ``inertia_scale``, 1 by default)."""

    def test_lines(self, capsys):
        from arbf._drivers import engine

        rng = np.random.default_rng(6)
        X = np.concatenate([rng.normal(m, 1.0, (15, 2)) for m in (0.0, 5.0, 10.0)])
        engine.lloyd(X, None, X[[0, 1, 2]], xp=np, max_iter=300, tol=0.0)
        assert capsys.readouterr().out == ""
        for scale in (None, 0.5):
            kw = {} if scale is None else {"inertia_scale": scale}
            km = engine.lloyd(X, None, X[[0, 1, 2]], xp=np, max_iter=300, tol=0.0,
                              verbose=True, **kw)  # fmt: skip
            lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Iter")]
            printed = [float(ln.split("inertia ")[1].rstrip(".")) for ln in lines]
            want = km.history["inertia"] * (1.0 if scale is None else scale)
            np.testing.assert_allclose(printed, want, rtol=1e-12)

    @pytest.mark.parametrize(
        ("namespace", "algorithm"),
        [("numpy", "lloyd"), ("numpy", "elkan"), ("numpy", "hamerly"), ("strict", "lloyd")],
    )
    def test_strict_convergence_is_reported(self, namespace, algorithm, capsys):
        """Labels unchanged from one iteration to the next end the run with scikit-learn's
        "strict convergence" line, whether the labels are compared on the host, counted
        by a bound method, or compared on the device (array-api-strict)."""
        import array_api_strict as xps

        from arbf._drivers import engine

        xp = np if namespace == "numpy" else xps
        rng = np.random.default_rng(6)
        X = np.concatenate([rng.normal(m, 1.0, (15, 2)) for m in (0.0, 5.0, 10.0)])
        km = engine.lloyd(xp.asarray(X), None, xp.asarray(X[[0, 1, 2]]), xp=xp,
                          max_iter=300, tol=1e-300, verbose=True, algorithm=algorithm)  # fmt: skip
        out = capsys.readouterr().out.splitlines()
        assert km.converged is True and km.n_iter >= 2
        assert out[-1] == f"Converged at iteration {km.n_iter - 1}: strict convergence."

    def test_a_shift_equal_to_tol_converges(self):
        """scikit-learn stops when the squared center shift is *at most* ``tol``: with
        ``tol`` set to the first iteration's shift exactly, the run stops there."""
        from arbf._drivers import engine

        rng = np.random.default_rng(6)
        X = np.concatenate([rng.normal(m, 1.0, (15, 2)) for m in (0.0, 5.0, 10.0)])
        full = engine.lloyd(X, None, X[[0, 1, 2]], xp=np, max_iter=300, tol=0.0)
        first = float(full.history["center_shift"][0])
        assert first > 0 and full.n_iter > 2
        km = engine.lloyd(X, None, X[[0, 1, 2]], xp=np, max_iter=300, tol=first)
        assert km.n_iter == 1 and km.converged is True

    def test_default_algorithm_of_the_stepper(self):
        X = np.random.default_rng(1).normal(size=(50, 2))
        st = seam.lloyd_stepper(X, None, n_clusters=3, max_iter=300, xp=np)
        labels, *_ = st.step(X[:3].copy())
        assert np.asarray(labels).shape == (50,)

    def test_not_converged_within_the_budget(self):
        from arbf._drivers import engine

        rng = np.random.default_rng(6)
        X = np.concatenate([rng.normal(m, 1.0, (15, 2)) for m in (0.0, 5.0, 10.0)])
        km = engine.lloyd(X, None, X[[0, 1, 2]], xp=np, max_iter=1, tol=0.0)
        assert km.converged is False and km.n_iter == 1


class TestExtentMeanRows:
    """``seam.extent_mean_rows``: the fused host sweep where the host route takes the
    data, ``(extent, None)`` elsewhere and for empty data (the kernel is never handed an
    empty array), and the extent over the other arrays too."""

    @pytest.mark.parametrize("shape", [(0, 3), (4, 0)])
    def test_empty_data(self, shape):
        assert seam.extent_mean_rows(np.empty(shape), xp=np) == (0.0, None)

    def test_other_routes_return_the_extent_alone(self):
        import array_api_strict as xps
        import scipy.sparse as sp

        X = np.array([[1.0, -4.0], [0.5, 2.0]])
        assert seam.extent_mean_rows(sp.csr_matrix(X), xp=np) == (4.0, None)
        assert seam.extent_mean_rows(xps.asarray(X), xp=xps) == (4.0, None)
        assert seam.extent_mean_rows(None, X, xp=np) == (4.0, None)  # None skipped, as extent

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("shape", [(1, 5), (7, 1), (300, 6)])
    def test_means_are_mean_rows_to_the_bit(self, dtype, shape):
        rng = np.random.default_rng(9)
        X = (rng.standard_normal(shape) * 3.0 + 1.0).astype(dtype)
        ext, mean = seam.extent_mean_rows(X, xp=np)
        assert ext == float(np.abs(X).max())
        assert mean.dtype == X.dtype
        np.testing.assert_array_equal(mean, np.asarray(seam.mean_rows(X, xp=np)))

    def test_values_against_numpy(self):
        rng = np.random.default_rng(3)
        X = rng.standard_normal((50, 4))
        C = np.full((2, 4), -7.5)
        ext, mean = seam.extent_mean_rows(X, xp=np)
        assert ext == np.abs(X).max()
        np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-14)
        ext, mean = seam.extent_mean_rows(X, C, xp=np)
        assert ext == 7.5
        np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-14)


E_RADIUS = "existence (E): the ball's radius underflows"


class TestSoftmaxCertificateThetas:
    """``softmax_certificate`` over a θ grid: a θ at which nothing can be certified is
    skipped, not the end of the search; a refusal reports the last θ tried and NaN
    temperatures."""

    X = np.array([[-14.0], [-6.0], [-4.0], [4.0], [6.0], [14.0]])
    C = np.array([[-10.0], [0.0], [10.0]])

    def test_an_infeasible_theta_first(self):
        from arbf._math.core.monotone import Geometry, softmax_certificate

        geo = Geometry(self.X, self.C, np.ones(6))
        # at θ = 1e-300 the ball's radius sqrt(4 R² + θ Δ_min) - 2 R is 0 at every t
        assert softmax_certificate(geo, thetas=(1e-300,)).reason == E_RADIUS
        want = softmax_certificate(geo, thetas=(0.5,))
        got = softmax_certificate(geo, thetas=(1e-300, 0.5))
        assert want.reason is None and 0 < want.sigma0 < 10.0
        assert got == want

    def test_refusal_fields(self):
        import math

        from arbf._math.core.monotone import Geometry, softmax_certificate

        cert = softmax_certificate(Geometry(self.X, self.C, np.ones(6)), thetas=(1e-300, 2e-300))
        assert math.isnan(cert.sigma0) and math.isnan(cert.sigma0_single)
        assert cert.theta == 2e-300 and cert.n_pieces == 0
        for v in (cert.eps0, cert.eps1, cert.contraction, cert.rate_constant):
            assert isinstance(v, float) and math.isnan(v)
        assert cert.certified == () and cert.dominated_by == ()
        assert cert.reason == E_RADIUS


class TestFixedPointDefect:
    """The three refusals of ``fixed_point_defect``, each with its exact text: no sample
    of positive weight, an empty cell (one sample of positive weight and two centers),
    and the index (in the input's numbering, zero weights counted) of a sample on a
    bisector."""

    X = np.array([[9.0], [-2.0], [0.0], [2.0]])
    C = np.array([[-1.0], [1.0]])

    @pytest.mark.parametrize(
        ("w", "want"),
        [
            ([0.0, 0.0, 0.0, 0.0], "no sample has a positive weight"),
            ([0.0, 1.0, 0.0, 0.0], "cluster 1 has no sample of positive weight (an empty cell)"),
            (
                [0.0, 1.0, 1.0, 1.0],
                "sample 2 is equidistant from its two nearest centers (Delta_min = 0): "
                "the fixed point is degenerate",
            ),
            ([0.0, 1.0, 0.0, 1.0], None),
        ],
    )
    def test_reasons(self, w, want):
        from arbf._math.core.monotone import Geometry, fixed_point_defect

        assert fixed_point_defect(Geometry(self.X, self.C, np.array(w))) == want

    def test_no_sample_of_positive_weight(self):
        import math

        from arbf._math.core.monotone import Geometry

        geo = Geometry(self.X, self.C, np.zeros(4))
        assert geo.n == 0 and geo.R == 0.0 and math.isnan(geo.delta_min)
        assert geo.N.tolist() == [0.0, 0.0]


class TestHostRouteShapes:
    """The host kernels index ``C`` by ``X``'s columns: centers of another width (or not
    2-D) take the reference route, whose array library refuses the shapes."""

    def test_route(self):
        X = np.ones((5, 3))
        assert seam.route(X, np.ones((2, 3)))[0] == seam.HOST
        assert seam.route(X, np.ones((2, 4)))[0] == seam.PURE
        assert seam.route(X, np.ones((2, 2)))[0] == seam.PURE
        assert seam.route(X, np.ones((2, 3, 1)))[0] == seam.PURE
        assert seam.route(X, np.ones((2, 3), dtype=np.float32))[0] == seam.PURE

    def test_a_wider_center_is_refused(self):
        with pytest.raises(ValueError):
            seam.pairwise_distances(np.ones((5, 3)), np.ones((2, 4)), xp=np)


class TestSafeNorm:
    """``safe_norm``: the Euclidean norm in float64 whatever the input's dtype, along one
    axis (a single row keeps its axis), and without underflow at 1e-200."""

    def test_float32_input_is_computed_in_float64(self):
        a = np.random.default_rng(2).standard_normal((4, 7)).astype(np.float32) * 3
        from arbf._math.core.monotone import safe_norm

        got = safe_norm(a)
        assert got.dtype == np.float64 and got.shape == (4,)
        want = np.sqrt((a.astype(np.float64) ** 2).sum(axis=1))
        np.testing.assert_allclose(got, want, rtol=4e-16)

    @pytest.mark.parametrize(
        ("shape", "axis", "out"),
        [((1, 3), -1, (1,)), ((3, 1), 0, (1,)), ((1, 1), -1, (1,)), ((3,), -1, ())],
    )
    def test_shapes(self, shape, axis, out):
        from arbf._math.core.monotone import safe_norm

        a = np.full(shape, 1e-200)
        got = safe_norm(a, axis=axis)
        assert got.shape == out
        n = a.shape[axis]
        np.testing.assert_allclose(got, np.full(out, 1e-200 * np.sqrt(n)), rtol=1e-15)


class TestGeometryPairs:
    """The pairs ``S_j`` of Lemma P, rebuilt by loops from their definition: every
    sample ``i`` outside cell ``j`` once (rate ``δ_ij = D_ij - D_il_i``, vector
    ``x_i - c_j``, incoming), every sample of cell ``j`` once per other center ``m``
    (rate ``δ_im``, vector ``-(x_i - c_j)``, outgoing); zero-weight samples dropped."""

    def test_against_loops(self):
        from arbf._math.core.monotone import Geometry

        rng = np.random.default_rng(8)
        X = rng.normal(size=(13, 2)) * 3.0
        C = rng.normal(size=(3, 2)) * 3.0
        w = rng.uniform(0.5, 2.0, 13)
        w[[2, 7]] = 0.0
        geo = Geometry(X, C, w)
        keep = np.flatnonzero(w > 0)
        Xk, wk = X[keep], w[keep]
        D = ((Xk[:, None, :] - C[None]) ** 2).sum(-1)
        lab = D.argmin(1)
        for j in range(3):
            want = []
            for i in range(len(Xk)):
                if lab[i] != j:
                    want.append((i, D[i, j] - D[i, lab[i]], *(Xk[i] - C[j]), wk[i], False))
                else:
                    for m in range(3):
                        if m != j:
                            want.append((i, D[i, m] - D[i, j], *(C[j] - Xk[i]), wk[i], True))
            P = geo.pairs[j]
            assert P.out.dtype == np.bool_
            got = [
                (int(P.idx[s]), P.rate[s], *P.vec[s], P.w[s], bool(P.out[s]))
                for s in range(len(P.idx))
            ]
            assert len(got) == len(want)
            for g, h in zip(sorted(got), sorted(want), strict=True):
                assert g[0] == h[0] and g[-1] == h[-1]
                np.testing.assert_allclose(g[1:-1], h[1:-1], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(P.norm, np.linalg.norm(P.vec, axis=1), rtol=1e-15)


class TestLazilyCentred:
    """The host kernels centre ``X`` chunk by chunk where they can take ``X`` and the
    weights: float weights of ``X``'s length; not integer weights or another length."""

    def test_weights_decide(self):
        X = np.ones((6, 2))
        assert seam.lazily_centred(X) is True
        assert seam.lazily_centred(X, np.ones(6)) is True
        assert seam.lazily_centred(X, np.ones(6, dtype=np.float32)) is True
        assert seam.lazily_centred(X, np.ones(6, dtype=np.int64)) is False
        assert seam.lazily_centred(X, np.ones(5)) is False
        assert seam.lazily_centred(X.astype(np.int64)) is False


class TestBestOfTies:
    """``best_of`` keeps the first run when a later one reaches exactly the same inertia
    with another partition (scikit-learn's strict ``<``): the four corners of a square,
    split top/bottom by the first init and left/right by the second, both with inertia
    4 exactly."""

    def test_the_first_of_equal_inertias(self):
        from arbf._drivers.engine import best_of, prepare

        X = np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
        inits = [np.array([[0.0, -1.0], [0.0, 1.0]]), np.array([[-1.0, 0.0], [1.0, 0.0]])]
        prep = prepare(X, xp=np)
        it = iter(inits)
        res = best_of(
            prep.X, None, lambda: prep.from_data(next(it)), 2, xp=np, max_iter=300, tol=0.0
        )
        assert res.n_init_inertia == [4.0, 4.0]
        np.testing.assert_array_equal(np.asarray(res.labels), [0, 0, 1, 1])
        np.testing.assert_array_equal(np.asarray(prep.to_data(res.centers)), inits[0])


class TestPrepareExtent:
    """``prepare`` rescales by the extent of the data *and* of ``others`` (centers or an
    initialisation in the same units), on the lazy (host, fused sweep) and the eager path:
    small data with centers at 2**300, and data at 2**300 alone, both give the power of
    two ``scale_for`` of the largest modulus; the lazy path's offset is the data's mean."""

    @pytest.mark.parametrize("lazy", [False, True])
    def test_scale(self, lazy):
        from arbf._drivers.engine import prepare
        from arbf._scaling import scale_for

        want = scale_for(2.0**300, np.dtype(np.float64), xp=np)
        assert want != 1.0
        X = np.arange(10.0).reshape(5, 2)
        p = prepare(X, xp=np, others=(np.full((2, 2), -(2.0**300)),), lazy=lazy)
        assert p.scale == want
        p = prepare(X * 2.0**300, xp=np, lazy=lazy)  # extent 9 * 2**300
        want = scale_for(9.0 * 2.0**300, np.dtype(np.float64), xp=np)
        assert p.scale == want
        np.testing.assert_allclose(np.asarray(p.mean), X.mean(axis=0) * 2.0**300 / want)
        p = prepare(X, xp=np, lazy=lazy)
        assert p.scale == 1.0
        if lazy:
            assert p.X is X
            np.testing.assert_array_equal(np.asarray(p.offset), X.mean(axis=0))

    def test_sparse_data_beyond_the_range_stay_sparse_and_uncentred(self):
        """Sparse data are rescaled but never centred (a centred copy would be dense):
        mean 0, the stored entries divided by the power of two."""
        import scipy.sparse as sp

        from arbf._drivers.engine import prepare
        from arbf._scaling import scale_for

        X = np.arange(10.0).reshape(5, 2)
        p = prepare(sp.csr_matrix(X * 2.0**300), xp=np)
        want = scale_for(9.0 * 2.0**300, np.dtype(np.float64), xp=np)
        assert sp.issparse(p.X) and p.scale == want and p.offset is None
        np.testing.assert_array_equal(np.asarray(p.mean), [0.0, 0.0])
        np.testing.assert_allclose(p.X.toarray(), X * 2.0**300 / want, rtol=1e-15)


class TestSeamRefusesAnInvalidBudget:
    """On the reference route (array-api-strict) the seam hands ``working_memory`` to the
    core, which refuses an invalid budget; a valid one gives the closed form."""

    MSG = r"^working_memory must be a positive number of MiB or 'auto', got "

    def _args(self):
        import array_api_strict as xps

        X = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [7.0, 0.0]])
        C = np.array([[0.0, 0.0], [6.0, 0.0]])
        return xps, xps.asarray(X), xps.asarray(C), xps.asarray(np.array([0, 0, 1, 1]))

    def test_labelled_inertia(self):
        xps, X, C, labels = self._args()
        got = seam.labelled_inertia(X, C, labels, None, xp=xps, working_memory=1e-6)
        assert float(got) == 3.0  # 0 + 1 + 1 + 1
        for bad in (0, -1.0, "lots"):
            with pytest.raises(ValueError, match=self.MSG):
                seam.labelled_inertia(X, C, labels, None, xp=xps, working_memory=bad)

    def test_min_margin(self):
        xps, X, C, _ = self._args()
        # margins D2 - D1: 36, 24, 24, 48 (squared distances)
        assert float(seam.min_margin(X, C, xp=xps, working_memory=1e-6)) == 24.0
        for bad in (0, -1.0, "lots"):
            with pytest.raises(ValueError, match=self.MSG):
                seam.min_margin(X, C, xp=xps, working_memory=bad)


class TestBoundMethodsRunOnTheHost:
    """An explicit bound method runs as one (a host stepper carrying its bounds) on the
    NumPy fast path, with or without sample weights; elsewhere it is Lloyd's pass."""

    @pytest.mark.parametrize("algorithm", ["elkan", "hamerly", "yinyang"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_stepper(self, algorithm, weighted):
        import array_api_strict as xps

        rng = np.random.default_rng(2)
        X = rng.normal(size=(60, 3))
        w = rng.uniform(0.5, 2.0, 60) if weighted else None
        if seam.route(X, None, w)[0] != seam.HOST:
            pytest.skip("no host kernels here (fast paths off or numba missing)")
        st = seam.lloyd_stepper(X, w, n_clusters=4, algorithm=algorithm, xp=np)
        assert type(st).__name__ == "_HostStepper"
        Xs = xps.asarray(X)
        ws = None if w is None else xps.asarray(w)
        st = seam.lloyd_stepper(Xs, ws, n_clusters=4, algorithm=algorithm, xp=xps)
        assert type(st).__name__ == "_LloydStepper"

    def test_auto_reads_the_budget(self):
        """``"auto"`` is Lloyd's pass for a budget of at most two iterations (no bound pays
        for itself) and Hamerly's method at (n, d, k) = (2000, 8, 16) otherwise."""
        X = np.random.default_rng(3).normal(size=(2000, 8))
        if seam.route(X)[0] != seam.HOST:
            pytest.skip("no host kernels here (fast paths off or numba missing)")
        for max_iter, kind in ((1, "_LloydStepper"), (2, "_LloydStepper"), (3, "_HostStepper")):
            st = seam.lloyd_stepper(X, None, n_clusters=16, max_iter=max_iter, xp=np)
            assert type(st).__name__ == kind


class TestAutoCostModel:
    """The boundaries of ``"auto"``'s measured rule (docs: "Choosing an algorithm"): Lloyd
    below two centers or 20,000 point-center pairs, and at d <= 4 with k <= 32; Hamerly
    at the boundaries' other side (d < 128); Yinyang from d = 128 up to k = 256."""

    @pytest.mark.parametrize(
        ("n", "d", "k", "want"),
        [
            (10_000, 8, 2, "hamerly"),  # k = 2 and n k = 20,000 exactly
            (9_999, 8, 2, "lloyd"),
            (10_000, 8, 1, "lloyd"),
            (1_000, 5, 32, "hamerly"),
            (1_000, 4, 32, "lloyd"),
            (1_000, 4, 33, "hamerly"),
            (1_000, 128, 256, "yinyang"),
            (1_000, 127, 256, "hamerly"),
            (1_000, 33, 257, "lloyd"),
            (1_000, 32, 257, "hamerly"),
        ],
    )
    def test_boundaries(self, n, d, k, want):
        got = seam.resolve_algorithm("auto", n, d, k, np.float64, host=True, max_iter=300)
        assert got == want
        assert seam.resolve_algorithm("auto", n, d, k, np.float64, host=False) == "lloyd"
        assert seam.resolve_algorithm("lloyd", n, d, k, np.float64, host=True) == "lloyd"


class TestToleranceOfOne:
    """``tol`` is relative to the mean feature variance for every value, 1 included:
    with ``tol=1`` the fit stops as soon as the centers move by less than the data's mean
    variance, after the same number of iterations as scikit-learn's (a zero tolerance,
    which ``tol == 0`` alone gets, runs on until the labels stop changing)."""

    def test_tol_one_matches_sklearn(self):
        from sklearn.cluster import KMeans as SkKMeans

        import arbf

        rng = np.random.default_rng(7)
        X = np.concatenate([rng.normal(m, 1.0, size=(150, 2)) for m in (0.0, 3.0, 6.0)])
        C0 = X[[0, 1, 2]].copy()  # three points of the first blob: a long way to go
        sk = SkKMeans(3, init=C0, n_init=1, tol=1.0, max_iter=300, algorithm="lloyd").fit(X)
        res = arbf.kmeans(X, 3, init=C0, tol=1.0, max_iter=300)
        strict = arbf.kmeans(X, 3, init=C0, tol=0.0, max_iter=300)
        assert int(strict.n_iter) > sk.n_iter_  # the case has content
        assert int(res.n_iter) == sk.n_iter_
        assert engine_tolerance(X, 1.0) == pytest.approx(np.mean(np.var(X, axis=0)), rel=1e-12)


def engine_tolerance(X, tol):
    from arbf._drivers import engine

    return engine.tolerance(X, tol, xp=np)


class TestScaleDataSkipsTheFinitenessPass:
    """A finite extent proves every entry finite: ``scale_data`` runs the separate
    finiteness check (a pass over ``X``) only when the extent is not finite."""

    def test_finite_extent_skips_check_finite(self, monkeypatch):
        from arbf._drivers import engine

        calls = []
        monkeypatch.setattr(engine, "check_finite", lambda *a: calls.append(a))
        X = np.arange(12.0).reshape(6, 2)
        assert engine.scale_data(X, xp=np, finite_check="X") == 1.0
        assert calls == []
        X[2, 1] = np.inf
        engine.scale_data(X, xp=np, finite_check="X")
        assert len(calls) == 1 and calls[0][1] == "X"
        calls.clear()
        engine.scale_data(X, xp=np)  # no name: the caller has checked already
        assert calls == []


def _budget_calls():
    """``(name, call(X, C, xp, wm))`` for every seam function that takes a budget."""

    def lab(X, k):
        return k["xp"].asarray(np.array([0, 0, 1, 1, 0, 1, 1, 0]))

    def sq(X, xp):
        return xp.sum(X * X, axis=1) if not hasattr(X, "multiply") else np.asarray(
            X.multiply(X).sum(axis=1)).ravel()  # fmt: skip

    B = dict(sigma=1.0, kind="softmax")
    S = dict(sigmas=None, counts=np.array([2, 1]))  # sigmas filled in per namespace
    st = seam.lloyd_stepper
    return [
        ("assign", lambda X, C, k: seam.assign(X, C, **k)),
        ("assign_inertia", lambda X, C, k: seam.assign_inertia(X, C, None, **k)),
        ("inertia", lambda X, C, k: seam.inertia(X, C, None, **k)),
        ("labelled_inertia", lambda X, C, k: seam.labelled_inertia(X, C, lab(X, k), None, **k)),
        ("lloyd_sums", lambda X, C, k: seam.lloyd_sums(X, C, None, **k)),
        ("soft_stats", lambda X, C, k: seam.soft_stats(X, C, None, **k, **B)),
        ("utilities", lambda X, C, k: seam.utilities(X, C, None, **k)),
        ("nearest_labels", lambda X, C, k: seam.nearest_labels(X, C, **k)),
        ("dist_to_rows", lambda X, C, k: seam.dist_to_rows(X, C, sq(X, k["xp"]), **k)),
        ("pairwise_distances", lambda X, C, k: seam.pairwise_distances(X, C, **k)),
        ("min_margin", lambda X, C, k: seam.min_margin(X, C, **k)),
        ("responsibilities", lambda X, C, k: seam.responsibilities(X, C, **k, **B)),
        ("labelled_distances", lambda X, C, k: seam.labelled_distances(X, C, lab(X, k), **k)),
        ("lloyd_stepper", lambda X, C, k: st(X, None, n_clusters=2, max_iter=9, **k).step(C)),
        ("lloyd_stepper.final", lambda X, C, k: st(
            X, None, n_clusters=2, max_iter=9, **k).final(C)),
        ("principal_axes_pass", lambda X, C, k: seam.principal_axes_pass(X, C, C, None, **k, **B)),
        ("batched_lloyd_sums", lambda X, C, k: seam.batched_lloyd_sums(*_b(X, C, k), None, **k)),
        ("batched_assign_inertia", lambda X, C, k: seam.batched_assign_inertia(
            *_b(X, C, k), None, **k)),
        ("batched_soft_stats", lambda X, C, k: seam.batched_soft_stats(
            *_b(X, C, k), None, **k, **B)),
        ("batched_soft_stats.hard", lambda X, C, k: seam.batched_soft_stats(
            *_b(X, C, k), None, **k, sigma=0.0, kind="hard")),
        ("batched_soft_stats.counts", lambda X, C, k: seam.batched_soft_stats(
            *_b(X, C, k), None, **k, **B, **{**S, "sigmas": _s(k)})),
        ("batched_principal_axes_pass", lambda X, C, k: seam.batched_principal_axes_pass(
            *_b(X, C, k), _b(X, C, k)[1], None, **k, kind="softmax", **{**S, "sigmas": _s(k)})),
        ("hamerly_stepper", lambda X, C, k: _bound_stepper(X, C, k, "hamerly")),
        ("yinyang_stepper", lambda X, C, k: _bound_stepper(X, C, k, "yinyang")),
        ("batched_responsibilities", lambda X, C, k: seam.batched_responsibilities(
            *_b(X, C, k), **k, **B)),
        ("batched_utilities", lambda X, C, k: seam.batched_utilities(*_b(X, C, k), None, **k)),
    ]  # fmt: skip


def _s(k):
    return k["xp"].asarray(np.array([1.0, 2.0]))


def _bound_stepper(X, C, k, method):
    """A bound method's stepper: its first step, a second, the final pass and the
    converged labels' inertia (each pass of the bound state sized by the budget)."""
    st = seam.lloyd_stepper(X, None, n_clusters=2, algorithm=method, max_iter=10, **k)
    labels = st.step(C)[0]
    st.step(C)
    st.final(C)
    return st.converged(C, labels)


def _b(X, C, k):
    """Two problems: ``X`` and ``C`` stacked (dense only)."""
    if hasattr(X, "tocsr"):
        raise TypeError("batched problems are dense")
    xp = k["xp"]
    return xp.stack([X, X + 1.0]), xp.stack([C, C + 1.0])


class TestEverySeamFunctionRefusesAnInvalidBudget:
    """The budget reaches the kernels on every route: each seam function that takes
    ``working_memory`` runs with a tiny valid one (chunks of one row) and refuses an
    invalid one with the configuration's message -- on the host kernels (NumPy), the
    sparse kernels (SciPy CSR, where the function takes sparse data) and the reference
    code (array-api-strict).  A seam that dropped the budget on its way to a kernel
    would run with the configured default instead."""

    MSG = r"^working_memory must be a positive number of MiB or 'auto', got "

    @pytest.mark.parametrize("kind", ["host", "sparse", "pure"])
    @pytest.mark.parametrize("name", [n for n, _ in _budget_calls()])
    def test_refused(self, name, kind):
        call = dict(_budget_calls())[name]
        X = np.array([[0.0, 0, 1], [1, 0, 0], [5, 0, 2], [7, 1, 0], [0, 2, 0], [6, 0, 0],
                      [8, 0, 1], [1, 1, 1]])  # fmt: skip
        C = np.array([[0.0, 0, 0], [6.0, 0, 1]])
        if kind == "host":
            xp = np
            if seam.route(X, C)[0] != seam.HOST:
                pytest.skip("no host kernels here (fast paths off or numba missing)")
        elif kind == "sparse":
            import scipy.sparse as sp

            xp, X = np, sp.csr_matrix(X)
        else:
            import array_api_strict as xp

            X, C = xp.asarray(X), xp.asarray(C)
        try:
            call(X, C, dict(xp=xp, working_memory=1e-6))
        except (TypeError, ValueError, NotImplementedError) as exc:
            if kind == "sparse":
                pytest.skip(f"{name} takes no sparse data: {exc}")
            raise
        for bad in (0, -1.0, "lots"):
            with pytest.raises(ValueError, match=self.MSG):
                call(X, C, dict(xp=xp, working_memory=bad))


class TestRouteAndExtentEdges:
    """The capability check sends Dask arrays to the Dask kernels; the extent skips arrays
    without entries (a zero-width array has no max) and is ``nan`` for traced arrays
    (no values under ``jax.jit``)."""

    def test_dask_takes_the_dask_route(self):
        da = pytest.importorskip("dask.array")
        X = da.from_array(np.ones((100, 3)), chunks=50)
        if seam.route(np.ones((100, 3)))[0] != seam.HOST:
            pytest.skip("no host kernels here (fast paths off or numba missing)")
        assert seam.route(X)[0] == seam.DASK
        assert seam.route(X, np.ones((2, 3)))[0] == seam.DASK

    def test_extent_skips_zero_width(self):
        assert seam.extent(np.ones((3, 0)), xp=np) == 0.0
        assert seam.extent(np.ones((3, 0)), -4.0 * np.ones((2, 2)), xp=np) == 4.0
        assert seam.extent(np.ones((0, 3)), None, 2.5 * np.ones(1), xp=np) == 2.5

    def test_extent_of_a_traced_array_is_nan(self):
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp

        got = []

        @jax.jit
        def f(X):
            got.append(seam.extent(X, xp=jnp))
            return X

        f(jnp.ones((3, 2)))
        assert len(got) == 1 and np.isnan(got[0])


class TestDriversHandTheBudgetOn:
    """The drivers whose only pass is one seam call hand ``working_memory`` to it: an
    invalid budget is refused there (the mini-batch step, its final labels, the
    fixed-point iteration), and a tiny valid one gives the same result as the default."""

    MSG = r"^working_memory must be a positive number of MiB or 'auto', got "

    @pytest.fixture
    def data(self):
        X = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [7.0, 0.0], [0.0, 1.0], [6.0, 1.0]])
        return X, np.array([[0.0, 0.0], [6.0, 0.0]])

    def _step(self, X, C, wm):
        from arbf._drivers import minibatch

        return minibatch.minibatch_step(X, C, np.zeros(2), None, sigma=0.0, kind="hard", xp=np,
                                        working_memory=wm)  # fmt: skip

    def _final(self, X, C, wm):
        from arbf._drivers import minibatch

        return minibatch.final_labels(X, C, None, xp=np, working_memory=wm)

    def _fixed(self, X, C, wm):
        from arbf._drivers import fixed_point

        return fixed_point.fixed_point(X, C, None, xp=np, sigma=0.5, kind="softmax", max_iter=3,
                                       tol=0.0, lr="lloyd", working_memory=wm)  # fmt: skip

    @pytest.mark.parametrize("which", ["_step", "_final", "_fixed"])
    def test_refused_and_tiny(self, data, which):
        X, C = data
        call = getattr(self, which)
        call(X, C, 1e-6)
        for bad in (0, -1.0, "lots"):
            with pytest.raises(ValueError, match=self.MSG):
                call(X, C, bad)


class TestBatchedMinMarginRefusesAnInvalidBudget:
    """``core.batched_anneal.min_margin`` (annealing's per-problem margin, called by the
    batched driver, not through the seam) hands the budget to its chunking: the margins
    with a tiny budget (one row per chunk) are the closed form, an invalid one is refused."""

    def test_refused(self):
        import array_api_strict as xps

        from arbf._math.core import batched_anneal

        X = xps.asarray(np.array([[[0.0], [1.0], [5.0], [7.0]], [[0.0], [2.0], [4.0], [9.0]]]))
        C = xps.asarray(np.array([[[0.0], [6.0]], [[1.0], [8.0]]]))
        got = batched_anneal.min_margin(X, C, xp=xps, working_memory=1e-6)
        # squared-distance margins: problem 0 36, 24, 24, 48; problem 1 63, 35, 7, 63
        assert np.asarray(got).tolist() == [24.0, 7.0]
        for bad in (0, -1.0, "lots"):
            with pytest.raises(ValueError, match=TestEverySeamFunctionRefusesAnInvalidBudget.MSG):
                batched_anneal.min_margin(X, C, xp=xps, working_memory=bad)
