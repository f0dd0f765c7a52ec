"""The compiled hard kernels (:mod:`arbf._math.kernels.hard`, through the seam) against
the pure reference.

The functions of :mod:`arbf._math.core.distances` are the reference (called directly:
they never dispatch): labels must agree exactly (ties to the lowest index), sums and
inertia to the dtype's tolerance.  Each case runs with one and with two worker threads
(``config_context(n_threads=...)``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import array_api_compat.numpy as xpn
import numpy as np
import pytest

import arbf
from arbf._math import seam
from arbf._math.core import distances as ref_distances
from arbf._math.kernels import runtime

THREADS = [1, 2]


@pytest.fixture(params=THREADS, ids=lambda t: f"{t}thr")
def fast(request: pytest.FixtureRequest):
    if not runtime.HAVE_NUMBA:
        pytest.skip("numba not installed")
    with arbf.config_context(fast_paths=True, n_threads=request.param) as cfg:
        yield cfg


def _rtol(dtype: np.dtype) -> float:
    return 1e-12 if dtype == np.float64 else 2e-6


def _data(n: int, d: int, k: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.uniform(-4, 4, size=(k, d))
    X = means[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    C = X[rng.choice(n, size=k, replace=False)]
    return X.astype(dtype), C.astype(dtype)


def _readonly(*arrays: np.ndarray) -> list[np.ndarray]:
    out = []
    for a in arrays:
        b = np.array(a, copy=True)
        b.flags.writeable = False
        out.append(b)
    return out


def _check_lloyd(X, C, w, *, working_memory=None):
    assert seam.route(X, C, w)[0] == "host"
    got = seam.lloyd_sums(X, C, w, xp=xpn, working_memory=working_memory)
    ref = ref_distances.lloyd_sums(X, C, w, xp=xpn, working_memory=working_memory)
    rtol = _rtol(X.dtype)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[0].dtype == ref[0].dtype
    scale = np.abs(ref[1]).max()
    np.testing.assert_allclose(got[1], ref[1], rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(got[2], ref[2], rtol=rtol)
    np.testing.assert_allclose(got[3], ref[3], rtol=rtol)
    for g, r in zip(got[1:], ref[1:], strict=True):
        assert g.dtype == X.dtype and g.shape == r.shape
    return got


class TestLloydSums:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_matches_pure(self, fast, dtype: str, weighted: bool) -> None:
        X, C = _data(3000, 7, 9, dtype)
        w = None
        if weighted:
            w = np.random.default_rng(1).uniform(0.1, 3.0, size=X.shape[0]).astype(dtype)
        _check_lloyd(X, C, w)

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_many_chunks(self, fast, dtype: str) -> None:
        X, C = _data(5000, 5, 6, dtype)
        w = np.random.default_rng(2).uniform(0, 2, size=X.shape[0]).astype(dtype)
        _check_lloyd(X, C, w, working_memory=0.005)  # a few dozen rows per chunk

    def test_readonly_inputs_not_written(self, fast) -> None:
        X, C = _data(2000, 4, 5, "float64")
        w = np.random.default_rng(3).uniform(0.5, 1.5, size=X.shape[0])
        Xr, Cr, wr = _readonly(X, C, w)
        _check_lloyd(Xr, Cr, wr, working_memory=0.01)
        np.testing.assert_array_equal(Xr, X)
        np.testing.assert_array_equal(Cr, C)
        np.testing.assert_array_equal(wr, w)

    def test_readonly_memmap_input(self, fast, tmp_path) -> None:
        X, C = _data(1200, 4, 5, "float32")
        path = tmp_path / "X.npy"
        np.save(path, X)
        Xm = np.load(path, mmap_mode="r")
        assert isinstance(Xm, np.memmap) and not Xm.flags.writeable
        _check_lloyd(Xm, C, None, working_memory=0.01)
        np.testing.assert_array_equal(Xm, X)

    def test_non_contiguous_inputs(self, fast) -> None:
        X, C = _data(1500, 10, 4, "float64")
        _check_lloyd(X[:, ::2], np.asfortranarray(C[:, ::2]), None, working_memory=0.01)
        _check_lloyd(np.asfortranarray(X), C, None)

    def test_ties_go_to_the_lowest_index(self, fast) -> None:
        # integer data: every distance is exact, so ties are exact ties
        X = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 1.0], [3.0, 3.0]] * 40)
        C = np.array([[2.0, 0.0], [0.0, 0.0], [2.0, 0.0], [1.0, 2.0], [1.0, 0.0]])
        labels = _check_lloyd(X, C, None, working_memory=0.001)[0]
        # [1,0] is at distance 0 from C[4] only; [1,1] ties C[3] and C[4] -> 3;
        # [2,0] ties the duplicates C[0] and C[2] -> 0; [3,3] is nearest to C[3]
        np.testing.assert_array_equal(labels[:5], [1, 4, 0, 3, 3])
        assert not np.any(labels == 2)

    def test_empty_cluster_and_single_center(self, fast) -> None:
        X, C = _data(500, 3, 3, "float64")
        C = np.concatenate([C, np.full((1, 3), 1e6)])
        _, sums, weights, _ = _check_lloyd(X, C, None)
        assert weights[-1] == 0 and np.all(sums[-1] == 0)
        _check_lloyd(X, C[:1], None)
        _check_lloyd(X[:1], C[:1], None)

    def test_float32_agrees_with_float64_reference(self, fast) -> None:
        # offset data make float32 accumulation hard; the fast path sums in float64
        X64, C64 = _data(200_000, 4, 3, "float64", seed=5)
        X64 += 100.0
        C64 += 100.0
        w64 = np.random.default_rng(6).uniform(0.5, 2.0, size=X64.shape[0])
        X, C, w = X64.astype(np.float32), C64.astype(np.float32), w64.astype(np.float32)
        labels, sums, weights, inertia = seam.lloyd_sums(X, C, w, xp=xpn, working_memory=0.05)
        # float64 reference with the same labels, from the float32 data
        Xd, Cd, wd = X.astype(np.float64), C.astype(np.float64), w.astype(np.float64)
        ref_sums = np.zeros((3, 4))
        np.add.at(ref_sums, labels, Xd * wd[:, None])
        ref_w = np.bincount(labels, weights=wd, minlength=3)
        ref_in = np.sum(wd * np.sum((Xd - Cd[labels]) ** 2, axis=1))
        np.testing.assert_allclose(sums, ref_sums, rtol=1e-5)
        np.testing.assert_allclose(weights, ref_w, rtol=1e-5)
        np.testing.assert_allclose(float(inertia), ref_in, rtol=1e-5)


class TestAssign:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_assign_matches_pure(self, fast, dtype: str) -> None:
        X, C = _data(4000, 6, 11, dtype)
        Xr, Cr = _readonly(X, C)
        labels, min_sq = seam.assign(Xr, Cr, xp=xpn, working_memory=0.02)
        ref_l, ref_d = ref_distances.assign(Xr, Cr, xp=xpn, working_memory=0.02)
        np.testing.assert_array_equal(labels, ref_l)
        assert min_sq.dtype == ref_d.dtype
        np.testing.assert_allclose(min_sq, ref_d, rtol=10 * _rtol(X.dtype), atol=1e-6)

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_assign_inertia_matches_pure(self, fast, dtype: str, weighted: bool) -> None:
        X, C = _data(4000, 6, 11, dtype)
        w = np.random.default_rng(4).uniform(0, 2, X.shape[0]).astype(dtype) if weighted else None
        labels, inertia = seam.assign_inertia(X, C, w, xp=xpn, working_memory=0.02)
        ref_l, ref_i = ref_distances.assign_inertia(X, C, w, xp=xpn, working_memory=0.02)
        np.testing.assert_array_equal(labels, ref_l)
        assert inertia.shape == () and inertia.dtype == X.dtype
        np.testing.assert_allclose(inertia, ref_i, rtol=_rtol(X.dtype))


class TestKMeansEndToEnd:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_fast_and_pure_fits_agree(self, fast, dtype: str) -> None:
        X, C = _data(3000, 5, 7, dtype, seed=7)
        w = np.random.default_rng(8).uniform(0.5, 2, X.shape[0]).astype(dtype)
        got = arbf.kmeans(X, 7, init=C, sample_weight=w, max_iter=20, working_memory=0.05)
        with arbf.config_context(fast_paths=False):
            ref = arbf.kmeans(X, 7, init=C, sample_weight=w, max_iter=20, working_memory=0.05)
        np.testing.assert_array_equal(got.labels, ref.labels)
        assert got.n_iter == ref.n_iter
        rtol = 1e-10 if dtype == "float64" else 1e-5
        np.testing.assert_allclose(got.centers, ref.centers, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(got.inertia, ref.inertia, rtol=rtol)


class TestLabelledInertia:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_equals_assign_inertia_bit_for_bit(self, fast, dtype: str, weighted: bool) -> None:
        """The engine's inertia after strict convergence (labelled) and the score's
        (assign) are one number: same chunks, same float64 accumulation."""
        X, C = _data(5000, 6, 9, dtype, seed=11)
        w = np.random.default_rng(5).uniform(0, 2, X.shape[0]).astype(dtype) if weighted else None
        labels, inertia = seam.assign_inertia(X, C, w, xp=xpn, working_memory=0.05)
        got = seam.labelled_inertia(X, C, labels, w, xp=xpn, working_memory=0.05)
        assert got.dtype == X.dtype and float(got) == float(inertia)
        ref = ref_distances.labelled_inertia(X, C, labels, w, xp=xpn, working_memory=0.05)
        np.testing.assert_allclose(got, ref, rtol=_rtol(X.dtype))

    def test_other_labels(self, fast) -> None:
        X, C = _data(800, 3, 4, "float64", seed=12)
        labels = np.random.default_rng(0).integers(0, 4, size=800)
        got = seam.labelled_inertia(X, C, labels, None, xp=xpn)
        np.testing.assert_allclose(got, np.sum((X - C[labels]) ** 2), rtol=1e-12)


class TestSwitchesAndBudget:
    def test_config_turns_the_fast_path_off(self) -> None:
        X, C = _data(100, 2, 3, "float64")
        with arbf.config_context(fast_paths=False):
            assert seam.route(X, C)[0] == "pure"
            got = seam.lloyd_sums(X, C, None, xp=xpn)
        ref = ref_distances.lloyd_sums(X, C, None, xp=xpn)
        for g, r in zip(got, ref, strict=True):  # the reference, exactly
            np.testing.assert_array_equal(g, r)

    def test_environment_variable_turns_the_fast_path_off(self) -> None:
        code = "import arbf; print(arbf.get_config().fast_paths)"
        env = {**os.environ, "ARBF_DISABLE_FAST_PATHS": "1"}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"

    def test_route_only_for_numpy_float_arrays(self) -> None:
        X, C = _data(10, 2, 2, "float64")
        with arbf.config_context(fast_paths=True):
            assert seam.route(X, C)[0] == ("host" if runtime.HAVE_NUMBA else "pure")
            assert seam.route(X.astype(np.float32), C)[0] == "pure"
            assert seam.route(X.astype(np.int64), C.astype(np.int64))[0] == "pure"
            assert seam.route(X, C, np.ones(3))[0] == "pure"
            assert seam.route(np.asmatrix(X), C)[0] == "pure"

    @pytest.mark.parametrize("working_memory", [None, 0.001, 0.5, 64.0])
    @pytest.mark.parametrize("threads", [1, 2, 4])
    def test_chunk_temporaries_fit_the_budget(
        self, working_memory: float | None, threads: int
    ) -> None:
        for n, d, k in [(1_000_000, 16, 16), (100_000, 128, 256), (50, 3, 2)]:
            with arbf.config_context(n_threads=threads):
                rows, used = runtime.chunk_plan(n, k, d, 8, working_memory)
            assert 1 <= rows <= n and 1 <= used <= threads
            budget = (64.0 if working_memory is None else working_memory) * 2**20
            if rows > 1:
                assert used * rows * (k + 2 * d) * 8 <= budget

    def test_bad_working_memory(self) -> None:
        with pytest.raises(ValueError, match="working_memory"):
            runtime.chunk_plan(10, 2, 2, 8, 0.0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_worker_threads():
    """The pool is created in the parent; a forked child (multiprocessing's fork start
    method) must not wait forever on the parent's threads, which it does not have."""
    code = """
import os, sys, numpy as np, arbf
X = np.random.default_rng(0).normal(size=(100_000, 8)); C = X[:8].copy()
with arbf.config_context(n_threads=2):
    parent = arbf.kmeans(X, 8, init=C, max_iter=2)
pid = os.fork()
if pid == 0:
    with arbf.config_context(n_threads=2):
        child = arbf.kmeans(X, 8, init=C, max_iter=2)
    os._exit(0 if np.array_equal(child.labels, parent.labels) else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True)
    assert out.returncode == 0, out.stderr.decode()


# --------------------------------------------------------------------------------------
# the first-minimum scans (four centers per sweep, then one at a time) against a
# sequential reference, with exact ties, NaN scores and every remainder of k mod 4
# --------------------------------------------------------------------------------------


def _scan_reference(GT: np.ndarray, c_sq: np.ndarray):
    """Row by row, center by center: the first minimum of ``c_sq[j] - (g + g)`` under
    ``v < best`` (NaN never wins; a NaN first score keeps center 0), the runner-up as
    the certified pass keeps it (``min(s, max(v, b))``, strict comparisons) and as the
    bound methods keep it (``b`` when ``v`` wins, else ``min(s, v)``)."""
    k, m = GT.shape
    dt = GT.dtype.type
    lab = np.zeros(m, dtype=np.intp)
    best = np.empty(m, dtype=GT.dtype)
    sec_cert = np.full(m, np.inf, dtype=GT.dtype)
    sec_bnd = np.full(m, np.inf, dtype=GT.dtype)
    for i in range(m):
        b = dt(c_sq[0] - (GT[0, i] + GT[0, i]))
        for j in range(1, k):
            v = dt(c_sq[j] - (GT[j, i] + GT[j, i]))
            lt = v < b
            hi = b if lt else v
            sec_cert[i] = hi if hi < sec_cert[i] else sec_cert[i]
            sec_bnd[i] = b if lt else min(sec_bnd[i], v)
            if lt:
                b, lab[i] = v, j
        best[i] = b
    return lab, best, sec_cert, sec_bnd


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_unrolled_first_minimum_scans_equal_a_sequential_scan(k: int, dtype) -> None:
    if not runtime.HAVE_NUMBA:
        pytest.skip("numba not installed")
    from arbf._math.kernels import bounds, hard

    rng = np.random.default_rng(k)
    m = 203
    GT = rng.standard_normal((k, m)).astype(dtype)
    c_sq = rng.standard_normal(k).astype(dtype)
    GT[:, 1::5] = rng.integers(0, 3, size=(k, 1)).astype(dtype)  # exact ties
    c_sq_t = c_sq.copy()
    GT[min(1, k - 1), 2::11] = np.nan  # a NaN score never wins (or stays first)
    GT[:, 3::17] = GT[0, 3::17]
    c_sq_t[:] = c_sq_t[0]
    for cs in (c_sq, c_sq_t):
        lab_r, best_r, cert_r, bnd_r = _scan_reference(GT, cs)
        hard._get_kernels()
        lab, best = np.empty(m, np.intp), np.empty(m, dtype)
        hard._argmin(GT, cs, lab, best)
        np.testing.assert_array_equal(lab, lab_r)
        np.testing.assert_array_equal(best, best_r)
        lab2, best2, sec2 = np.empty(m, np.intp), np.empty(m, dtype), np.empty(m, dtype)
        bounds._get_kernels()["argmin2"](GT, cs, best2, sec2, lab2)
        np.testing.assert_array_equal(lab2, lab_r)
        np.testing.assert_array_equal(best2, best_r)
        np.testing.assert_array_equal(sec2, bnd_r)
        if dtype == np.float32:  # the certified float64 pass scans float32 scores
            sq = np.ones(m)
            lab3, best3, sec3 = np.empty(m, np.intp), np.empty(m, dtype), np.empty(m, dtype)
            fail = np.empty(m, np.uint8)
            hard._get_kernels()["certify"](
                sq, GT, cs, 1.0, 1e-7, 0.0, 0.0, lab3, best3, sec3, fail
            )  # fmt: skip
            np.testing.assert_array_equal(lab3, lab_r)
            np.testing.assert_array_equal(best3, best_r)
            np.testing.assert_array_equal(sec3, cert_r)


@pytest.mark.parametrize("k", [2, 5, 9, 23, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_group_minima_of_yinyang_equal_a_direct_minimum(k: int, dtype) -> None:
    """``gm[q, i]`` = the smallest score ``c_j - 2 g_ji`` (float64 of the dtype's score)
    over the centers ``j`` of group ``q`` but the label of row ``i`` (inf if none)."""
    if not runtime.HAVE_NUMBA:
        pytest.skip("numba not installed")
    from arbf._math.kernels import bounds

    rng = np.random.default_rng(k)
    m = 157
    GT = rng.standard_normal((k, m)).astype(dtype)
    c_sq = rng.standard_normal(k).astype(dtype)
    GT[:, ::9] = 0.5  # exact ties
    t = max(1, k // 4)
    grp = rng.integers(0, t, size=k)
    grp[:t] = np.arange(t)  # every group has a member
    order = np.argsort(grp, kind="stable")
    gstart = np.searchsorted(grp[order], np.arange(t + 1)).astype(np.intp)
    lab = rng.integers(0, k, size=m).astype(np.intp)
    gm = np.empty((t, m))
    bounds._get_kernels()["group_mins"](GT, c_sq, gstart, order.astype(np.intp), lab, gm)
    scores = (c_sq[:, None] - (GT + GT)).astype(np.float64)
    scores[lab, np.arange(m)] = np.inf
    want = np.stack([scores[grp == q].min(axis=0) for q in range(t)])
    np.testing.assert_array_equal(gm, want)


@pytest.mark.parametrize("d", [1, 2, 7, 8, 16, 19, 33])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 3001, 40_000])
def test_mean_variance_is_the_float64_variance(fast, n: int, d: int, dtype) -> None:
    """The tolerance scale is ``mean_f Var(X[:, f])`` in float64, from one threaded sweep
    of cache-sized blocks (several blocks at n = 40000): within 1e-12 of NumPy's float64
    two-pass value, with an offset that makes float32 sums useless (NumPy's float32
    ``var`` is off there by far more), whatever the number of threads; the fused sweep
    gives the same value and the same extent and means bits as the sweep without it."""
    from arbf._math.kernels import hard

    rng = np.random.default_rng(d + n)
    X = (rng.standard_normal((n, d)) * rng.uniform(0.1, 10.0, d) + 1e3).astype(dtype)
    want = float(np.mean(np.var(X.astype(np.float64), axis=0)))
    got = hard.mean_variance(X)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)
    ext, mean, mv = hard.extent_mean_variance(X)
    assert mv == got
    ext1, mean1 = hard.extent_mean_rows(X)
    assert ext == ext1
    np.testing.assert_array_equal(mean, mean1)
    with arbf.config_context(n_threads=1):
        assert hard.mean_variance(X) == got
    if n > 1:  # a constant column: variance 0, not a rounding residue
        Xc = X.copy()
        Xc[:, 0] = X[0, 0]
        assert hard.mean_variance(Xc) == pytest.approx(
            float(np.mean(np.var(Xc.astype(np.float64), axis=0))), rel=1e-12
        )
