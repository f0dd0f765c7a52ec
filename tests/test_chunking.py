"""The memory policy (:mod:`arbf._chunking`): budgets per device, chunk sizes, and the
number of array operations a chunk costs on the pure path (what a GPU pays in kernel
launches)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import arbf
from arbf._chunking import (
    CPU_WORKING_MEMORY_MB,
    GPU_FRACTION,
    GPU_MAX_MB,
    GPU_MIN_MB,
    Accumulator,
    budget_mb,
    chunk_rows,
)

GB = 10**9


def _free(free: float, total: float = 141 * GB):
    return lambda x: (int(free), int(total))


class TestBudget:
    def test_cpu_auto(self):
        X = np.zeros((10, 2))
        assert budget_mb(None, X) == CPU_WORKING_MEMORY_MB
        assert budget_mb("auto", X) == CPU_WORKING_MEMORY_MB
        assert budget_mb(None, None) == CPU_WORKING_MEMORY_MB

    def test_gpu_auto_is_a_share_of_the_free_memory(self):
        X = np.zeros((10, 2))
        assert budget_mb(None, X, query=_free(8 * GB)) == pytest.approx(
            8 * GB * GPU_FRACTION / 2**20
        )
        assert budget_mb(None, X, query=_free(141 * GB)) == GPU_MAX_MB  # capped
        assert budget_mb(None, X, query=_free(0.5 * GB)) == GPU_MIN_MB  # floored

    def test_explicit_and_configured_budgets_win(self):
        X = np.zeros((10, 2))
        assert budget_mb(3, X, query=_free(100 * GB)) == 3.0
        with arbf.config_context(working_memory=5):
            assert budget_mb(None, X, query=_free(100 * GB)) == 5.0
            assert budget_mb("auto", X, query=_free(141 * GB)) == GPU_MAX_MB

    def test_large_gpu_iteration_takes_few_chunks(self):
        """(n, d, k) = (8·10⁶, 128, 1024) float32 on a 141 GB device (the data loaded):
        at most 16 chunks, i.e. a few thousand kernel launches per iteration, not 10⁵."""
        torch = pytest.importorskip("torch")
        X = torch.empty((8_000_000, 128), dtype=torch.float32, device="meta")
        import array_api_compat.torch as xpt

        rows = chunk_rows(X, 1024, xp=xpt, query=_free(141 * GB - 4.1 * GB))
        assert math.ceil(8_000_000 / rows) <= 16
        # and the 64 MiB CPU default would have meant thousands of chunks
        assert math.ceil(8_000_000 / chunk_rows(X, 1024, xp=xpt)) > 1000

    def test_device_query_of_a_cpu_array_is_none(self):
        from arbf._backend import device_free_memory

        assert device_free_memory(np.zeros(3)) is None
        torch = pytest.importorskip("torch")
        assert device_free_memory(torch.zeros(3)) is None

    def test_dask_is_one_lazy_chunk(self):
        da = pytest.importorskip("dask.array")
        import array_api_compat.dask.array as xpd

        assert (
            chunk_rows(da.zeros((1000, 3), chunks=100), 50, xp=xpd, working_memory=0.001) == 1000
        )


class TestAccumulator:
    def test_compensated_float32_sum(self):
        import array_api_compat.numpy as xpn

        acc = Accumulator(xpn)
        parts = [np.float32(1.0)] + [np.float32(1e-8)] * 1000
        for p in parts:
            acc.add(np.asarray(p))
        assert abs(float(acc.result()) - (1.0 + 1e-5)) < 1e-7  # a plain float32 sum gives 1.0

    def test_one_value_is_returned_as_it_is(self):
        import array_api_compat.numpy as xpn

        acc = Accumulator(xpn)
        v = np.arange(3.0)
        acc.add(v)
        assert acc.result() is v

    def test_empty(self):
        import array_api_compat.numpy as xpn

        with pytest.raises(ValueError, match="nothing accumulated"):
            Accumulator(xpn).result()


class TestLaunchCount:
    """Array calls of one iteration on the pure path (CPU torch, fast paths off), counted
    with a ``TorchDispatchMode``: at most 60 per chunk plus a constant, for the Lloyd
    iteration and the softmax iteration (each call is a kernel launch on a GPU)."""

    @staticmethod
    def _count(kind: str, n_chunks: int) -> int:
        torch = pytest.importorskip("torch")
        import array_api_compat.torch as xpt
        from torch.utils._python_dispatch import TorchDispatchMode

        from arbf._math import seam

        class Counter(TorchDispatchMode):
            n = 0

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                Counter.n += 1
                return func(*args, **(kwargs or {}))

        n, d, k = 4096, 8, 16
        gen = torch.Generator().manual_seed(0)
        X = torch.randn(n, d, dtype=torch.float64, generator=gen)
        C = X[:k].clone()
        rows = n // n_chunks
        wm = rows * 4 * k * 8 / 2**20  # exactly `rows` rows per chunk (4 temporaries of k)
        with arbf.config_context(fast_paths=False, working_memory=wm):
            from arbf._chunking import chunk_rows

            assert chunk_rows(X, k, xp=xpt) == rows
            Counter.n = 0
            with Counter():
                if kind == "lloyd":
                    _, sums, weights, _ = seam.lloyd_sums(X, C, None, xp=xpt)
                    seam.safe_divide_centers(sums, weights, C, xp=xpt)
                else:
                    st = seam.soft_stats(X, C, None, sigma=1.0, kind="softmax", xp=xpt)
                    seam.step(C, st.mass, st.sums, "lloyd", xp=xpt)
        return Counter.n

    @pytest.mark.parametrize("kind", ["lloyd", "softmax"])
    def test_at_most_60_calls_per_chunk(self, kind):
        two, four = self._count(kind, 2), self._count(kind, 4)
        per_chunk = (four - two) / 2
        assert per_chunk <= 60, per_chunk
        assert two <= 2 * 60 + 20, two
