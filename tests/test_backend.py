"""The backend layer (:mod:`arbf._backend`) and the seam's segment sums: the native
scatter-adds (:mod:`arbf._math.kernels.segments`, chosen by :func:`arbf._math.seam.segment_sum`)
against the pure one-hot product on every backend, and the host/namespace helpers."""

from __future__ import annotations

import numpy as np
import pytest

from arbf import _backend
from arbf._math.core.segments import onehot_segment_sum as segment_sum_onehot
from arbf._math.seam import segment_sum
from tests.backends import Backend, assert_close


def _reference(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, *values.shape[1:]), dtype=np.float64)
    np.add.at(out, labels, values.astype(np.float64))
    return out


def _case(n: int, d: int, k: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, d)).astype(dtype)
    labels = rng.integers(0, k, size=n)
    labels[labels == k - 1] = 0  # the last segment stays empty
    return values, labels


def _labels(backend: Backend, labels: np.ndarray):
    return backend.asarray(labels.astype(np.int64))


class TestSegmentSum:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("d", [1, 3, 8])
    def test_native_matches_onehot_and_reference(
        self, backend: Backend, dtype: str, d: int
    ) -> None:
        values, labels = _case(97, d, 6, dtype)
        v, lab = backend.asarray(values), _labels(backend, labels)
        xp = backend.xp
        native = segment_sum(v, lab, 6, xp=xp)
        pure = segment_sum_onehot(v, lab, 6, xp=xp)
        ref = _reference(values, labels, 6)
        rtol = 1e-12 if dtype == "float64" else 1e-5
        assert_close(
            native, ref, backend=backend, rtol=rtol, atol=rtol, dtype=backend.dtype(dtype)
        )
        assert_close(
            pure,
            backend.to_numpy(native),
            backend=backend,
            rtol=rtol,
            atol=rtol,
            dtype=backend.dtype(dtype),
        )
        np.testing.assert_array_equal(backend.to_numpy(native)[5], 0.0)

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_one_dimensional_values(self, backend: Backend, dtype: str) -> None:
        values, labels = _case(50, 1, 4, dtype, seed=1)
        v = backend.asarray(values[:, 0])
        got = segment_sum(v, _labels(backend, labels), 4, xp=backend.xp)
        assert_close(
            got,
            _reference(values[:, 0], labels, 4),
            backend=backend,
            rtol=1e-5,
            atol=1e-5,
            dtype=backend.dtype(dtype),
        )

    def test_single_segment_and_single_row(self, backend: Backend) -> None:
        values, labels = _case(20, 3, 1, "float64", seed=2)
        labels[:] = 0
        xp = backend.xp
        got = segment_sum(backend.asarray(values), _labels(backend, labels), 1, xp=xp)
        assert_close(got, values.sum(axis=0, keepdims=True), backend=backend, rtol=1e-12)
        got1 = segment_sum(backend.asarray(values[:1]), _labels(backend, labels[:1]), 3, xp=xp)
        exp1 = np.zeros((3, 3))
        exp1[0] = values[0]
        assert_close(got1, exp1, backend=backend, rtol=1e-12)

    def test_inputs_are_not_written(self, backend: Backend) -> None:
        values, labels = _case(40, 5, 4, "float64", seed=3)
        v, lab = backend.asarray(values), _labels(backend, labels)
        segment_sum(v, lab, 4, xp=backend.xp)
        np.testing.assert_array_equal(backend.to_numpy(v), values)
        np.testing.assert_array_equal(backend.to_numpy(lab), labels)

    def test_numpy_paths_agree(self) -> None:
        """Both native NumPy paths (bincount for narrow, sort + reduceat for wide)."""
        import array_api_compat.numpy as xpn

        for d in (2, 4, 5, 40):
            values, labels = _case(300, d, 7, "float64", seed=d)
            got = segment_sum(values, labels, 7, xp=xpn)
            np.testing.assert_allclose(got, _reference(values, labels, 7), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(
                segment_sum_onehot(values, labels, 7, xp=xpn), got, rtol=1e-12, atol=1e-12
            )


class TestHostHelpers:
    def test_to_host_and_from_host_round_trip(self, backend: Backend) -> None:
        a = np.arange(6.0).reshape(2, 3)
        x = backend.asarray(a)
        np.testing.assert_array_equal(_backend.to_host(x), a)
        y = _backend.from_host(a, xp=backend.xp, device=_backend.device_of(x))
        backend.check_same_kind(y)
        np.testing.assert_array_equal(backend.to_numpy(y), a)

    def test_working_dtype(self, backend: Backend) -> None:
        xp = backend.xp
        assert _backend.working_dtype(xp, xp.float32) == xp.float32
        assert _backend.working_dtype(xp, xp.float64) == xp.float64
        assert _backend.working_dtype(xp, xp.int64) in (xp.float32, xp.float64)
        if hasattr(xp, "complex64"):
            with pytest.raises(TypeError, match="complex"):
                _backend.working_dtype(xp, xp.complex64)

    def test_mixed_namespaces_are_named(self) -> None:
        torch = pytest.importorskip("torch")
        with pytest.raises(TypeError, match="different array libraries"):
            _backend.array_namespace(np.zeros(2), torch.zeros(2))


def test_numpy_segment_sum_float64_is_one_bincount_to_the_bit():
    """NumPy's native segment sum of float64 values is one float64 bincount over the
    flattened (label, column) index, bit for bit (the sums of the tree before the seam)."""
    rng = np.random.default_rng(5)
    n, d, k = 3000, 7, 11
    values = rng.normal(size=(n, d)) * 10.0 ** rng.integers(-3, 4, size=(n, 1))
    labels = rng.integers(0, k, size=n)
    labels[:50] = 3  # a heavy bin
    got = segment_sum(values, labels, k, xp=np)
    flat = (labels[:, None] * d + np.arange(d)).ravel()
    ref = np.bincount(flat, weights=values.ravel(), minlength=k * d)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref.reshape(k, d))


def test_numpy_segment_sum_float32_is_the_rounded_exact_sum():
    """For float32 values the sums run in float64 over several row blocks (n = 40000 rows
    of d = 7 is five blocks): every bin equals the exact sum (``math.fsum``) rounded to
    float32 within one float32 ulp, and the result is float32.  Dropping a block, or
    summing a block in float32, fails this."""
    import math

    rng = np.random.default_rng(5)
    n, d, k = 40000, 7, 11
    scale = 10.0 ** rng.integers(-3, 4, size=(n, 1))
    values = (rng.normal(size=(n, d)) * scale).astype(np.float32)
    labels = rng.integers(0, k, size=n)
    labels[-50:] = 3  # a heavy bin in the last block
    got = segment_sum(values, labels, k, xp=np)
    v64 = values.astype(np.float64)
    exact = [[math.fsum(v64[labels == j, c]) for c in range(d)] for j in range(k)]
    assert got.dtype == np.float32
    np.testing.assert_array_max_ulp(got, np.array(exact).astype(np.float32), maxulp=1)
