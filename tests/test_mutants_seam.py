"""Tests written to kill the survivors of the mutation run in the seam
(:mod:`arbf._math.seam`; docs/testing.md, "Mutation testing"): the dispatch decisions,
the host round trips, the devices of what the seam builds, the bound-method steppers
and the scipy.sparse route.  Every value is checked against an independent reference
(plain NumPy, SciPy), never against another arbf path; both routes (``fast_paths``
on and off) are held to the same reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

import arbf
from arbf._chunking import _TEMPORARIES, itemsize
from arbf._math import seam

sp = pytest.importorskip("scipy.sparse")


def _npx() -> Any:
    import array_api_compat.numpy as npx

    return npx


def _tol(dtype: Any) -> float:
    return 1e-10 if np.dtype(dtype) == np.float64 else 2e-5


def _close(got: Any, ref: Any, dtype: Any = np.float64) -> None:
    tol = _tol(dtype)
    a, b = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))


def _sqd(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    return ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)


def _blobs(n: int = 120, d: int = 3, k: int = 4, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 4.0, (k, d))
    X = means[rng.integers(k, size=n)] + rng.normal(size=(n, d))
    w = rng.uniform(0.2, 2.0, n)
    C0 = X[rng.choice(n, k, replace=False)].copy()
    return X, w, C0


# ---------------------------------------------------------------------------------------
# Lloyd steppers: the plain pass and the bound methods (elkan, hamerly, yinyang)
# ---------------------------------------------------------------------------------------


def _lloyd_ref(X: np.ndarray, C: np.ndarray, w: np.ndarray) -> tuple[Any, ...]:
    D = _sqd(X, C)
    labels = D.argmin(1)
    k = C.shape[0]
    mass = np.bincount(labels, weights=w, minlength=k)
    sums = np.stack([np.bincount(labels, weights=w * X[:, f], minlength=k)
                     for f in range(X.shape[1])], axis=1)  # fmt: skip
    J = float(np.sum(w * D[np.arange(X.shape[0]), labels]))
    return labels, sums, mass, J


class TestLloydSteppers:
    """``seam.lloyd_stepper``'s ``step``, ``final`` and ``converged`` against NumPy's
    Lloyd iteration, for every algorithm: results in the input's kind, labels int64 from
    ``final`` and ``converged`` whichever method carried the bounds."""

    @pytest.mark.parametrize("algorithm", ["lloyd", "elkan", "hamerly", "yinyang"])
    @pytest.mark.parametrize("weighted", [False, True])
    @pytest.mark.parametrize("shifted", [False, True])
    def test_iterations_to_a_fixed_point(self, dbackend, algorithm, weighted, shifted):
        X, w, C = _blobs()
        shift = np.array([0.5, -1.0, 2.0])
        wr = w if weighted else np.ones(X.shape[0])
        Xb = dbackend.asarray(X + shift if shifted else X)
        wb = dbackend.asarray(w) if weighted else None
        kw = {"shift": dbackend.asarray(shift)} if shifted and seam.lazily_centred(Xb, wb) else {}
        if shifted and not kw:
            Xb = dbackend.asarray(X)  # the centred copy a caller makes off the host route
        st = seam.lloyd_stepper(Xb, wb, n_clusters=4, algorithm=algorithm, xp=dbackend.xp, **kw)
        prev = None
        for _ in range(50):
            Cb = dbackend.asarray(C)
            labels, sums, mass, J, changed = st.step(Cb)
            for a in (labels, sums, mass, J):
                dbackend.check_same_kind(a)
            ref = _lloyd_ref(X, C, wr)
            got_labels = np.array(dbackend.to_numpy(labels), dtype=np.int64)  # a copy
            np.testing.assert_array_equal(got_labels, ref[0])
            _close(dbackend.to_numpy(sums), ref[1])
            _close(dbackend.to_numpy(mass), ref[2])
            _close(float(dbackend.to_numpy(J)), ref[3])
            if changed is not None and prev is not None:
                assert changed == int(np.sum(got_labels != prev))
            if prev is not None and np.array_equal(prev, got_labels):
                break
            prev = got_labels
            C = ref[1] / ref[2][:, None]
        else:
            pytest.fail("no fixed point in 50 iterations")
        Cb = dbackend.asarray(C)
        ref = _lloyd_ref(X, C, wr)
        for out in (st.converged(Cb, labels), st.final(Cb)):
            lab, inert = out
            dbackend.check_same_kind(lab)
            dbackend.check_same_kind(inert)
            lab_h = dbackend.to_numpy(lab)
            assert lab_h.dtype == np.int64
            np.testing.assert_array_equal(lab_h, ref[0])
            _close(float(dbackend.to_numpy(inert)), ref[3])

    @pytest.mark.parametrize("algorithm", ["lloyd", "elkan", "hamerly", "yinyang"])
    def test_kmeans_labels_do_not_depend_on_the_algorithm(self, dbackend, algorithm):
        """A strict convergence (labels unchanged) ends with the same int64 labels and
        inertia as NumPy's Lloyd iteration from the same centers."""
        X, w, C = _blobs(seed=1)
        res = arbf.kmeans(
            dbackend.asarray(X), 4, init=dbackend.asarray(C), n_init=1,
            algorithm=algorithm, tol=0.0, sample_weight=dbackend.asarray(w),
        )  # fmt: skip
        Cr = C
        for _ in range(100):
            lab, sums, mass, _ = _lloyd_ref(X, Cr, w)
            C_new = sums / mass[:, None]
            if np.array_equal(_sqd(X, C_new).argmin(1), lab):
                Cr = C_new
                break
            Cr = C_new
        labels, _, _, J = _lloyd_ref(X, Cr, w)
        assert res.converged
        got = dbackend.to_numpy(res.labels)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, labels)
        assert res.inertia == pytest.approx(J, rel=1e-10)
        _close(dbackend.to_numpy(res.centers), Cr)


# ---------------------------------------------------------------------------------------
# largest: ties to the lowest index on every route
# ---------------------------------------------------------------------------------------


class TestLargest:
    @pytest.mark.parametrize("fast", [True, False])
    def test_ties_go_to_the_lowest_index(self, dbackend, fast):
        rng = np.random.default_rng(3)
        v = rng.permutation(np.repeat([0.5, 2.0, 1.0, -3.0], 40))
        with arbf.config_context(fast_paths=fast):
            for m in (1, 7, 45, 160):
                got = seam.largest(dbackend.asarray(v), m, xp=dbackend.xp)
                assert isinstance(got, np.ndarray) and got.dtype == np.int64
                np.testing.assert_array_equal(got, np.argsort(-v, kind="stable")[:m])


# ---------------------------------------------------------------------------------------
# labelled distances: shift, chunks, wide rows, both routes
# ---------------------------------------------------------------------------------------


def _wm_rows(X: Any, rows: int) -> float:
    """A ``working_memory`` (MiB) giving ``rows`` rows per chunk of width 1."""
    return rows * _TEMPORARIES * itemsize(X) / 2**20


class TestLabelledDistances:
    @pytest.mark.parametrize("fast", [True, False])
    @pytest.mark.parametrize("d", [3, 300])
    @pytest.mark.parametrize("chunks", [1, 2, 3])
    @pytest.mark.parametrize("shifted", [False, True])
    def test_against_numpy(self, dbackend, fast, d, chunks, shifted):
        rng = np.random.default_rng(d + chunks)
        n, k = 30, 4
        X = rng.normal(size=(n, d))
        C = rng.normal(size=(k, d))
        labels = rng.integers(k, size=n)
        shift = rng.normal(size=d) if shifted else np.zeros(d)
        ref = (((X - shift) - C[labels]) ** 2).sum(1)
        Xb, Cb, lb = dbackend.asarray(X), dbackend.asarray(C), dbackend.asarray(labels)
        kw = {"shift": dbackend.asarray(shift)} if shifted else {}
        with arbf.config_context(fast_paths=fast):
            got = seam.labelled_distances(
                Xb, Cb, lb, xp=dbackend.xp, working_memory=_wm_rows(Xb, n // chunks), **kw
            )
            got2 = seam.labelled_sq_distances(Xb, Cb, lb, xp=dbackend.xp, **kw)
        for g in (got, got2):
            dbackend.check_same_kind(g)
            _close(dbackend.to_numpy(g), ref)


# ---------------------------------------------------------------------------------------
# take_rows / dense_rows: host indices moved to X's device, empty selections
# ---------------------------------------------------------------------------------------


class TestRows:
    @pytest.mark.parametrize("idx", [[], [4, 0, 4], np.array([2, 1], dtype=np.int32)])
    def test_rows(self, dbackend, idx):
        X = np.arange(24.0).reshape(8, 3)
        Xb = dbackend.asarray(X)
        ref = X[np.asarray(idx, dtype=np.int64)]
        for fn in (seam.take_rows, seam.dense_rows):
            got = fn(Xb, idx, xp=dbackend.xp)
            dbackend.check_same_kind(got, dtype=Xb.dtype)
            assert got.shape == ref.shape
            np.testing.assert_array_equal(dbackend.to_numpy(got), ref)


# ---------------------------------------------------------------------------------------
# principal_axis: power iteration from v0 (above EIGH_MAX_FEATURES)
# ---------------------------------------------------------------------------------------


class TestPrincipalAxisStart:
    def test_power_iteration_keeps_the_orientation_of_v0(self, dbackend):
        """Power iteration from ``v0`` converges to the top eigenvector on ``v0``'s side
        (``Cov`` is positive semi-definite: the component along it never changes sign);
        λ against the top eigenvalue of the n x n Gram matrix."""
        from arbf._math.core.spectral import EIGH_MAX_FEATURES

        rng = np.random.default_rng(5)
        n, d = 40, EIGH_MAX_FEATURES + 60
        u = rng.normal(size=d)
        u /= np.linalg.norm(u)
        X = rng.normal(size=(n, 1)) * 5.0 * u + 0.1 * rng.normal(size=(n, d))
        Xc = X - X.mean(0)
        lam_ref = float(np.linalg.eigvalsh(Xc @ Xc.T / n)[-1])
        for sign in (1.0, -1.0):
            v0 = sign * u + 0.05 * rng.normal(size=d)
            lam, v = seam.principal_axis(dbackend.asarray(X), None, xp=dbackend.xp, v0=v0)
            assert lam == pytest.approx(lam_ref, rel=1e-8)
            assert float(v @ v0) > 0
            assert abs(float(v @ u)) > 0.99


# ---------------------------------------------------------------------------------------
# scipy.sparse: the sparse route of every dispatching operation, and the refusals
# ---------------------------------------------------------------------------------------


def _sparse_data(seed: int = 0) -> tuple[Any, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.random((60, 12)) < 0.3) * rng.uniform(0.5, 2.0, (60, 12))
    C = X[:4] + 0.1
    return sp.csr_matrix(X), C, rng.uniform(0.5, 2.0, 60)


class TestSparseRoute:
    def test_refused_operations_name_themselves(self):
        Xs, C, w = _sparse_data()
        npx = _npx()
        utilities = r"^the center utilities of deterministic annealing do\(es\) not support"
        with pytest.raises(TypeError, match=utilities):
            seam.utilities(Xs, C, w, xp=npx)
        anneal = r"^deterministic annealing \(init='anneal'\) do\(es\) not support scipy"
        with pytest.raises(TypeError, match=anneal):
            seam.principal_axes_pass(Xs, C, C.copy(), w, sigma=1.0, kind="softmax", xp=npx)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_responsibilities(self, kind):
        Xs, C, _ = _sparse_data()
        X = Xs.toarray()
        sigma = 0.7
        D = _sqd(X, C)
        got = seam.responsibilities(Xs, C, sigma=sigma, kind=kind, xp=_npx(), working_memory=0.001)
        if kind == "softmax":
            ref = softmax(-D / sigma, axis=1)
        else:  # entmax-1.5 of -D / sigma by bisection on tau (NumPy)
            z = -D / sigma / 2.0
            lo, hi = z.max(1) - 1.0, z.max(1)
            for _ in range(200):
                tau = (lo + hi) / 2
                s = (np.maximum(z - tau[:, None], 0.0) ** 2).sum(1)
                lo, hi = np.where(s >= 1, tau, lo), np.where(s >= 1, hi, tau)
            ref = np.maximum(z - ((lo + hi) / 2)[:, None], 0.0) ** 2
        _close(np.asarray(got), ref)

    def test_distances_and_axis(self):
        Xs, C, w = _sparse_data(1)
        X = Xs.toarray()
        npx = _npx()
        x_sq = (X**2).sum(1)
        _close(seam.dist_to_rows(Xs, C, x_sq, xp=npx, working_memory=0.001), _sqd(X, C))
        labels = _sqd(X, C).argmin(1)
        got = seam.labelled_distances(Xs, C, labels, xp=npx, working_memory=0.001)
        _close(np.asarray(got), _sqd(X, C).min(1))
        lam, v = seam.principal_axis(Xs, w, xp=npx)
        mu = (w[:, None] * X).sum(0) / w.sum()
        cov = ((w[:, None] * (X - mu)).T @ (X - mu)) / w.sum()
        vals, vecs = np.linalg.eigh(cov)
        assert lam == pytest.approx(vals[-1], rel=1e-10)
        assert abs(float(np.asarray(v) @ vecs[:, -1])) == pytest.approx(1.0, abs=1e-8)


# ---------------------------------------------------------------------------------------
# batched passes: the host layout, the route guards, masks on the data's device
# ---------------------------------------------------------------------------------------


def _soft_ref(X: np.ndarray, C: np.ndarray, w: np.ndarray | None, sigma: float) -> dict:
    """Softmax statistics of one problem (NumPy): sums, mass, J, F."""
    wr = np.ones(X.shape[0]) if w is None else w
    D = _sqd(X, C)
    R = softmax(-D / sigma, axis=1)
    return {
        "sums": (wr[:, None] * R).T @ X,
        "mass": (wr[:, None] * R).sum(0),
        "inertia": float(np.sum(wr * D.min(1))),
        "free_energy": float(np.sum(wr * -sigma * logsumexp(-D / sigma, axis=1))),
    }


def _check_soft(got: Any, refs: list[dict], to_numpy: Any, dtype: Any = np.float64) -> None:
    for b, ref in enumerate(refs):
        _close(np.asarray(to_numpy(got.sums))[b], ref["sums"], dtype)
        _close(np.asarray(to_numpy(got.mass))[b], ref["mass"], dtype)
        _close(np.asarray(to_numpy(got.inertia))[b], ref["inertia"], dtype)
        _close(np.asarray(to_numpy(got.free_energy))[b], ref["free_energy"], dtype)


class TestBatchedSeam:
    @pytest.mark.parametrize("B", [1, 3])
    @pytest.mark.parametrize("fast", [True, False])
    def test_prepare_lays_out_contiguously_on_the_host_route(self, B, fast):
        rng = np.random.default_rng(0)
        A = rng.normal(size=(B, 10, 8))
        X = A[:, :, :4]  # rows strided: not C-contiguous
        assert not X.flags.c_contiguous
        with arbf.config_context(fast_paths=fast):
            got = seam.batched_prepare(X, xp=_npx())
        np.testing.assert_array_equal(got, X)
        if fast:
            assert got.flags.c_contiguous
        else:
            assert got is X

    @pytest.mark.parametrize("fast", [True, False])
    def test_masked_soft_stats_on_the_data_device(self, dbackend, fast):
        """``counts``: problem ``b`` uses its first ``counts[b]`` centers at its own σ
        (the mask is built on ``C``'s device)."""
        rng = np.random.default_rng(2)
        B, n, d, k = 3, 25, 2, 4
        X = rng.normal(size=(B, n, d)) * 2.0
        C = X[:, :k].copy() + 0.1
        w = rng.uniform(0.5, 2.0, (B, n))
        sigmas = np.array([0.5, 1.5, 3.0])
        counts = np.array([4, 2, 3])
        with arbf.config_context(fast_paths=fast):
            got = seam.batched_soft_stats(
                dbackend.asarray(X), dbackend.asarray(C), dbackend.asarray(w), sigma=1.0,
                kind="softmax", xp=dbackend.xp, sigmas=dbackend.asarray(sigmas), counts=counts,
            )  # fmt: skip
        dbackend.check_same_kind(got.sums)
        for b in range(B):
            ref = _soft_ref(X[b], C[b, : counts[b]], w[b], float(sigmas[b]))
            sums = np.zeros((k, d))
            sums[: counts[b]] = ref["sums"]
            mass = np.zeros(k)
            mass[: counts[b]] = ref["mass"]
            ref.update(sums=sums, mass=mass)
            _check_soft(
                type(got)(*[np.asarray(dbackend.to_numpy(f))[b : b + 1] for f in got]),
                [ref], np.asarray,
            )  # fmt: skip

    @pytest.mark.parametrize("fast", [True, False])
    def test_soft_stats_with_more_problems_than_rows(self, dbackend, fast):
        """One σ for every problem (no ``sigmas``), B > n."""
        rng = np.random.default_rng(4)
        B, n, d, k = 5, 3, 2, 2
        X = rng.normal(size=(B, n, d))
        C = rng.normal(size=(B, k, d))
        with arbf.config_context(fast_paths=fast):
            got = seam.batched_soft_stats(dbackend.asarray(X), dbackend.asarray(C), None,
                                          sigma=0.8, kind="softmax", xp=dbackend.xp)  # fmt: skip
        dbackend.check_same_kind(got.sums)
        _check_soft(got, [_soft_ref(X[b], C[b], None, 0.8) for b in range(B)], dbackend.to_numpy)

    @pytest.mark.parametrize("fast", [True, False])
    @pytest.mark.parametrize("weighted", [False, True])
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    def test_lloyd_sums_and_assign_inertia(self, dbackend, fast, weighted, dtype):
        """Both routes (the compiled (problem, chunk) tiles and the reference) against
        NumPy's Lloyd pass problem by problem."""
        rng = np.random.default_rng(7)
        B, n, d, k = 3, 30, 2, 3
        X = (rng.normal(size=(B, n, d)) * 3.0).astype(dtype)
        C = X[:, :k].copy() + np.asarray(0.1, dtype=dtype)
        w = rng.uniform(0.5, 2.0, (B, n)).astype(dtype)
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wb = dbackend.asarray(w) if weighted else None
        with arbf.config_context(fast_paths=fast):
            labels, sums, mass, J = seam.batched_lloyd_sums(Xb, Cb, wb, xp=dbackend.xp)
            labels2, J2 = seam.batched_assign_inertia(Xb, Cb, wb, xp=dbackend.xp)
        for a in (labels, sums, mass, J, labels2, J2):
            dbackend.check_same_kind(a)
        for b in range(B):
            wr = w[b].astype(np.float64) if weighted else np.ones(n)
            ref = _lloyd_ref(X[b].astype(np.float64), C[b].astype(np.float64), wr)
            for lab in (labels, labels2):
                np.testing.assert_array_equal(dbackend.to_numpy(lab)[b], ref[0])
            _close(dbackend.to_numpy(sums)[b], ref[1], dtype)
            _close(dbackend.to_numpy(mass)[b], ref[2], dtype)
            _close(dbackend.to_numpy(J)[b], ref[3], dtype)
            _close(dbackend.to_numpy(J2)[b], ref[3], dtype)

    def test_inputs_the_kernels_cannot_take_fall_back_to_the_reference(self):
        """Centers of another dtype than the data, and integer data: the reference
        (NumPy's promotion), not the compiled kernels."""
        rng = np.random.default_rng(6)
        B, n, d, k = 2, 20, 3, 3
        X = rng.normal(size=(B, n, d))
        C = X[:, :k].copy() + 0.05
        npx = _npx()
        X32 = X.astype(np.float32)
        labels, sums, mass, J = seam.batched_lloyd_sums(X32, C, None, xp=npx)
        for b in range(B):
            ref = _lloyd_ref(X32[b].astype(np.float64), C[b], np.ones(n))
            np.testing.assert_array_equal(np.asarray(labels)[b], ref[0])
            _close(np.asarray(sums)[b], ref[1], np.float32)
            _close(np.asarray(mass)[b], ref[2], np.float32)
            _close(np.asarray(J)[b], ref[3], np.float32)
        Xi, Ci = np.rint(X * 3).astype(np.int64), np.rint(C * 3).astype(np.int64)
        got = seam.batched_soft_stats(Xi, Ci, None, sigma=2.0, kind="softmax", xp=npx)
        Xf, Cf = Xi.astype(np.float64), Ci.astype(np.float64)
        _check_soft(got, [_soft_ref(Xf[b], Cf[b], None, 2.0) for b in range(B)], np.asarray)


# ---------------------------------------------------------------------------------------
# small host-side decisions: the "auto" algorithm rule, the extent of sparse data
# ---------------------------------------------------------------------------------------


class TestHostDecisions:
    @pytest.mark.parametrize(("max_iter", "want"), [(1, "lloyd"), (2, "lloyd"), (3, "hamerly")])
    def test_auto_is_lloyd_for_at_most_two_iterations(self, max_iter, want):
        """The documented rule: bounds cannot pay for their first pass in <= 2 iterations."""
        got = seam.resolve_algorithm("auto", 10_000, 8, 16, np.float64, max_iter=max_iter)
        assert got == want

    def test_extent_skips_sparse_matrices_without_stored_entries(self):
        npx = _npx()
        empty = sp.csr_matrix((4, 3))
        assert seam.extent(empty, xp=npx) == 0.0
        assert seam.extent(empty, np.array([[1.0, -2.5]]), xp=npx) == 2.5
