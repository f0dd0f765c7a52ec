"""The seam (:mod:`arbf._math.seam`): one capability check chooses the implementation of
every operation, and every route equals the pure reference of :mod:`arbf._math.core`.

With ``fast_paths=False`` the seam *is* the reference (bit for bit); with fast paths on,
each route agrees with it to the dtype's tolerance, on every backend of the matrix.
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
        ref = core_d.lloyd_sums(X, C, w, xp=xp)
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
        ref = core_s.soft_stats(X, C, w, sigma=0.8, kind=kind, xp=xp)
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

    def test_nearest_labels_and_utilities(self, backend, dtype):
        X, C, w = _data(backend, dtype)
        xp = backend.xp
        np.testing.assert_array_equal(
            backend.to_numpy(seam.nearest_labels(X, C, xp=xp)),
            backend.to_numpy(core_d.assign(X, C, xp=xp)[0]),
        )
        _close(backend, seam.utilities(X, C, w, xp=xp), core_d.utilities(X, C, w, xp=xp), dtype)
