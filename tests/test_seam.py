"""The seam (:mod:`arbf._math.seam`): one capability check chooses the implementation of
every operation, and every route equals the pure reference of :mod:`arbf._math.core`.

With ``fast_paths=False`` the seam *is* the reference (bit for bit), given the backend's
own scatter-add for the segment sums (which is part of the backend, not a fast path, and is
checked against the one-hot product in ``tests/test_backend.py``); with fast paths on, each
route agrees with it to the dtype's tolerance, on every backend of the matrix.
"""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from arbf._math import seam
from arbf._math.core import distances as core_d
from arbf._math.core import entmax as core_e
from arbf._math.core import soft as core_s
from arbf._math.kernels import runtime
from arbf._math.kernels.segments import native_segment_sum
from tests import reference as ref
from tests.backends import Backend

EXPECTED_ROUTE = {
    "numpy": "host",
    "numpy_readonly": "host",
    "torch": "host",
    "dask": "dask",
}


def _data(backend: Backend, dtype: str = "float64", n: int = 90, d: int = 3, k: int = 5):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, d)) * 2.0
    C = X[rng.choice(n, k, replace=False)] + 0.1
    w = rng.uniform(0.0, 2.0, n)
    return (backend.asarray(a.astype(dtype)) for a in (X, C, w))


def _close(backend: Backend, got, ref, dtype: str) -> None:
    tol = 1e-10 if dtype == "float64" else 2e-5
    a, b = backend.to_numpy(got), backend.to_numpy(ref)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))


class TestRoute:
    def test_route_per_backend(self, backend):
        X, C, w = _data(backend)
        expected = EXPECTED_ROUTE.get(backend.name, "pure") if runtime.HAVE_NUMBA else "pure"
        if backend.name == "dask" and X.numblocks[1] != 1:
            expected = "pure"  # the Dask kernels need one column chunk
            assert seam.route(X.rechunk({1: -1}), C, w)[0] == "dask"
        with arbf.config_context(fast_paths=True):
            assert seam.route(X, C, w)[0] == expected
        with arbf.config_context(fast_paths=False):
            assert seam.route(X, C, w)[0] == "pure"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
class TestEveryRouteIsTheReference:
    def test_lloyd_sums(self, backend, dtype):
        X, C, w = _data(backend, dtype)
        xp = backend.xp
        seg = native_segment_sum(xp)
        ref = core_d.lloyd_sums(X, C, w, xp=xp, segment_sum=seg)
        with arbf.config_context(fast_paths=False):
            pure = seam.lloyd_sums(X, C, w, xp=xp)
        for a, b in zip(pure, ref, strict=True):
            np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
        got = seam.lloyd_sums(X, C, w, xp=xp)
        np.testing.assert_array_equal(backend.to_numpy(got[0]), backend.to_numpy(ref[0]))
        for a, b in zip(got[1:], ref[1:], strict=True):
            _close(backend, a, b, dtype)

    def test_assignments_and_inertia(self, backend, dtype):
        X, C, w = _data(backend, dtype)
        xp = backend.xp
        lab, min_sq = seam.assign(X, C, xp=xp)
        ref_lab, ref_sq = core_d.assign(X, C, xp=xp)
        np.testing.assert_array_equal(backend.to_numpy(lab), backend.to_numpy(ref_lab))
        _close(backend, min_sq, ref_sq, dtype)
        lab2, J = seam.assign_inertia(X, C, w, xp=xp)
        np.testing.assert_array_equal(backend.to_numpy(lab2), backend.to_numpy(ref_lab))
        _close(backend, J, core_d.assign_inertia(X, C, w, xp=xp)[1], dtype)
        _close(backend, seam.inertia(X, C, w, xp=xp), J, dtype)
        JL = seam.labelled_inertia(X, C, lab2, w, xp=xp)
        _close(backend, JL, J, dtype)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    def test_soft_stats(self, backend, dtype, kind):
        X, C, w = _data(backend, dtype)
        xp = backend.xp
        seg = native_segment_sum(xp)
        ref = core_s.soft_stats(X, C, w, sigma=0.8, kind=kind, xp=xp, segment_sum=seg)
        with arbf.config_context(fast_paths=False):
            pure = seam.soft_stats(X, C, w, sigma=0.8, kind=kind, xp=xp)
        for a, b in zip(pure, ref, strict=True):
            np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
        for a, b in zip(seam.soft_stats(X, C, w, sigma=0.8, kind=kind, xp=xp), ref, strict=True):
            _close(backend, a, b, dtype)

    def test_mean_rows_and_entmax(self, backend, dtype):
        X, _, _ = _data(backend, dtype)
        xp = backend.xp
        _close(backend, seam.mean_rows(X, xp=xp), core_d.mean_rows(X, xp=xp), dtype)
        got = seam.entmax15(X, xp=xp)
        _close(backend, got, core_e.entmax15(X, xp=xp), dtype)

    def test_extent_mean_rows_is_the_extent_and_the_means(self, backend, dtype):
        # one sweep on the host route, the two functions elsewhere: the extent is
        # seam.extent's value (max |a| over X and the others), the means mean_rows'
        X, C, _ = _data(backend, dtype)
        xp = backend.xp
        ext, mean = seam.extent_mean_rows(X, C, xp=xp)
        Xh = backend.to_numpy(X).astype(np.float64)
        Ch = backend.to_numpy(C).astype(np.float64)
        assert ext == max(np.abs(Xh).max(), np.abs(Ch).max()) == seam.extent(X, C, xp=xp)
        if mean is not None:
            assert seam.route(X)[0] == seam.HOST
            np.testing.assert_array_equal(
                backend.to_numpy(mean), backend.to_numpy(seam.mean_rows(X, xp=xp))
            )
            _close(backend, mean, Xh.mean(axis=0), dtype)

    def test_nearest_labels_and_utilities(self, backend, dtype):
        X, C, w = _data(backend, dtype)
        xp = backend.xp
        np.testing.assert_array_equal(
            backend.to_numpy(seam.nearest_labels(X, C, xp=xp)),
            backend.to_numpy(core_d.assign(X, C, xp=xp)[0]),
        )
        _close(backend, seam.utilities(X, C, w, xp=xp), core_d.utilities(X, C, w, xp=xp), dtype)


class TestManyChunks:
    """The chunked reductions over several chunks (a small ``working_memory``), against
    the brute-force reference: a chunk dropped, repeated or misplaced changes the value."""

    WM = 0.002  # MiB: a few rows per chunk

    def _data(self, backend, n=90, d=3, k=5):
        rng = np.random.default_rng(7)
        X = rng.normal(size=(n, d)) * 3.0
        C = X[rng.choice(n, k, replace=False)] + 0.2
        w = rng.uniform(0.0, 2.0, n)
        return X, C, w

    def test_several_chunks_are_used(self, backend):
        from arbf._chunking import chunk_rows

        X, C, _ = self._data(backend)
        if backend.name == "dask":
            pytest.skip("Dask: one lazy chunk (its own blocks bound the memory)")
        assert (
            chunk_rows(backend.asarray(X), C.shape[0], xp=backend.xp, working_memory=self.WM) < 30
        )

    def test_margin_utilities_distances_assignments(self, backend):
        X, C, w = self._data(backend)
        xp = backend.xp
        Xb, Cb, wb = backend.asarray(X), backend.asarray(C), backend.asarray(w)
        D = ref.sqdist(X, C)
        Ds = np.sort(D, axis=1)
        lab = np.argmin(D, axis=1)
        margin = seam.min_margin(Xb, Cb, xp=xp, working_memory=self.WM)
        assert float(backend.to_numpy(margin)) == pytest.approx(
            (Ds[:, 1] - Ds[:, 0]).min(), rel=1e-12
        )
        U = backend.to_numpy(seam.utilities(Xb, Cb, wb, xp=xp, working_memory=self.WM))
        U_ref = np.stack(
            [
                np.bincount(lab, weights=w * (Ds[:, 1] - Ds[:, 0]), minlength=5),
                np.bincount(lab, weights=w * Ds[:, 0], minlength=5),
            ],
            axis=1,
        )
        np.testing.assert_allclose(U, U_ref, rtol=1e-12, atol=1e-12)
        U1 = backend.to_numpy(seam.utilities(Xb, Cb, None, xp=xp, working_memory=self.WM))
        np.testing.assert_allclose(U1[:, 1], np.bincount(lab, weights=Ds[:, 0], minlength=5))
        P = backend.to_numpy(seam.pairwise_distances(Xb, Cb, xp=xp, working_memory=self.WM))
        np.testing.assert_allclose(P, np.sqrt(D), rtol=1e-10, atol=1e-10)
        got_lab, got_sq = seam.assign(Xb, Cb, xp=xp, working_memory=self.WM)
        np.testing.assert_array_equal(backend.to_numpy(got_lab), lab)
        np.testing.assert_allclose(backend.to_numpy(got_sq), Ds[:, 0], rtol=1e-12)
        R = backend.to_numpy(
            seam.responsibilities(Xb, Cb, sigma=2.0, kind="softmax", xp=xp, working_memory=self.WM)
        )
        np.testing.assert_allclose(R, ref.responsibilities(X, C, 2.0, "softmax"), atol=1e-12)

    def test_single_center_margin_is_infinite(self, backend):
        X, C, _ = self._data(backend)
        m = seam.min_margin(backend.asarray(X), backend.asarray(C[:1]), xp=backend.xp)
        assert float(backend.to_numpy(m)) == float("inf")
        m2 = seam.min_margin(backend.asarray(X), backend.asarray(C[:2]), xp=backend.xp)
        Ds = np.sort(ref.sqdist(X, C[:2]), axis=1)
        assert float(backend.to_numpy(m2)) == pytest.approx((Ds[:, 1] - Ds[:, 0]).min())

    def test_onehot_and_two_nearest(self, backend):
        xp = backend.xp
        lab = backend.asarray(np.array([2, 0, 1, 2]))
        H = backend.to_numpy(seam.onehot(lab, 4, dtype=xp.float64, xp=xp))
        np.testing.assert_array_equal(H, np.eye(4)[[2, 0, 1, 2]])
        D = np.array([[3.0, 1.0, 2.0], [0.5, 0.5, 4.0]])
        l, d1, d2 = seam.two_nearest(backend.asarray(D), xp=xp)
        np.testing.assert_array_equal(backend.to_numpy(l), [1, 0])  # ties to the lowest
        np.testing.assert_array_equal(backend.to_numpy(d1), [1.0, 0.5])
        np.testing.assert_array_equal(backend.to_numpy(d2), [2.0, 0.5])


class TestSchedulesAndPartitions:
    def test_geometric(self):
        s = seam.geometric(8.0, 0.125, 7)
        np.testing.assert_allclose(s, 8.0 * 0.5 ** np.arange(7), rtol=1e-15)
        assert s[0] == 8.0 and s[-1] == 0.125  # both ends exact
        np.testing.assert_array_equal(seam.geometric(3.0, 1.0, 1), [3.0])
        np.testing.assert_allclose(seam.geometric(1.0, 4.0, 3), [1.0, 2.0, 4.0])
        for bad in [(0.0, 1.0, 3), (1.0, -1.0, 3), (float("inf"), 1.0, 3), (1.0, float("nan"), 3)]:
            with pytest.raises(ValueError, match="positive and finite"):
                seam.geometric(*bad)
        with pytest.raises(ValueError, match="at least one"):
            seam.geometric(1.0, 0.5, 0)

    def test_same_clustering(self):
        from arbf._drivers.engine import same_clustering

        a = np.array([0, 0, 1, 1, 2])
        assert same_clustering(a, np.array([2, 2, 0, 0, 1]))  # renamed
        assert not same_clustering(a, np.array([0, 0, 1, 2, 2]))  # different partition
        assert not same_clustering(a, np.array([0, 0, 0, 1, 1]))  # a merge
        assert not same_clustering(np.array([0, 1, 1]), np.array([0, 0, 1]))
        assert same_clustering(np.array([3, 3]), np.array([0, 0]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("n", "d"), [(1, 1), (7, 3), (70_000, 5), (9_000, 40)])
def test_host_extent_mean_rows_over_threads(dtype, n, d):
    # many chunks over the worker threads: the extent is exact, the means float64 sums
    # of each column (within a few float64 rounding steps of the exact mean, then
    # rounded to the dtype) and the same bits for one and two threads
    from arbf._math.kernels import hard

    rng = np.random.default_rng(n + d)
    X = (rng.normal(size=(n, d)) * 3 - 2).astype(dtype)
    X[n // 2, d // 2] = 1e3 if n > 1 else X[0, 0]
    with arbf.config_context(n_threads=2):
        ext2, mean2 = hard.extent_mean_rows(X)
    with arbf.config_context(n_threads=1):
        ext1, mean1 = hard.extent_mean_rows(X)
        only = hard.mean_rows(X)
    exact = np.mean(X.astype(np.longdouble), axis=0)
    assert ext2 == ext1 == float(np.abs(X).max())
    np.testing.assert_array_equal(mean2, mean1)
    np.testing.assert_array_equal(only, mean1)
    assert mean1.dtype == X.dtype
    err = np.abs(mean1.astype(np.longdouble) - exact)
    # the rounding to the dtype, plus n float64 rounding steps of the running sum
    bound = np.spacing(np.abs(mean1)).astype(np.longdouble) + n * 2.0**-52 * np.abs(X).max()
    assert np.all(err <= bound)


@pytest.mark.parametrize("where", [(31_337, 1), (0, 0), (49_999, 2)])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_host_extent_mean_rows_propagates_non_finite(bad, where):
    # also where the bad entry is the first row the kernel's maxima and minima start
    # from, and the last
    from arbf._math.kernels import hard

    X = np.ones((50_000, 3))
    X[where] = bad
    ext, _ = hard.extent_mean_rows(X)
    assert np.isnan(ext) if np.isnan(bad) else ext == np.inf


def test_host_extent_mean_rows_opposite_infinities():
    # +inf and -inf in one column sum to NaN, yet the extent is inf (NumPy's max and
    # min); a NaN anywhere makes it NaN
    from arbf._math.kernels import hard

    X = np.zeros((20_000, 2), dtype=np.float32)
    X[5, 0], X[17_000, 0] = np.inf, -np.inf
    ext, mean = hard.extent_mean_rows(X)
    assert ext == np.inf and np.isnan(mean[0]) and mean[1] == 0
    X[9, 1] = np.nan
    assert np.isnan(hard.extent_mean_rows(X)[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_host_extent_mean_rows_extent_from_either_sign(dtype):
    # the extent is the largest |x| whether it is a column's maximum or minimum, in any
    # chunk and column (a flipped comparison, or one chunk's values lost, fails)
    from arbf._math.kernels import hard

    rng = np.random.default_rng(12)
    X = rng.uniform(-1, 1, size=(40_000, 7)).astype(dtype)
    for i, c, v in [(0, 0, -9.0), (39_999, 6, 8.5), (20_001, 3, -8.75)]:
        Y = X.copy()
        Y[i, c] = v
        assert hard.extent_mean_rows(Y)[0] == 9.0 if v == -9.0 else abs(v)
    assert hard.extent_mean_rows(X)[0] == float(np.abs(X).max())


def test_host_extent_mean_rows_finite_data_whose_sum_overflows():
    # finite float64 data whose column sums overflow: the extent is still the finite
    # largest |x| (the fallback to NumPy's reductions), the mean inf as float64 says
    from arbf._math.kernels import hard

    X = np.full((4, 2), 1e308)
    X[1, 1] = -1.5e308
    with np.errstate(over="ignore"):
        ext, mean = hard.extent_mean_rows(X)
    assert ext == 1.5e308
    assert mean[0] == np.inf
