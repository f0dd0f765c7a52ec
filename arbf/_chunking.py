"""Memory budget -> chunk sizes, and compensated accumulation across chunks.

No step in :mod:`arbf` holds an ``n x k`` array for the whole data set: the math layer
walks the rows in chunks whose size follows a memory budget, and sums across chunks are
accumulated with Neumaier (compensated) summation so that float32 totals agree with a
float64 reference to about ``1e-6`` relative.

The budget (``working_memory``, MiB) comes from the call, else from the configuration
(:func:`arbf.get_config`).  ``"auto"`` (the default) depends on the device of the data:

- CPU: :data:`CPU_WORKING_MEMORY_MB` (chunks that stay in the caches; the compiled
  kernels use even smaller, cache-sized chunks within it);
- GPU (CuPy, torch CUDA, JAX on a GPU): :data:`GPU_FRACTION` of the memory free on that
  device, clamped to [:data:`GPU_MIN_MB`, :data:`GPU_MAX_MB`], so that a chunk is large
  enough to keep the device busy (each chunk costs tens of kernel launches) and an
  iteration at (n, d, k) = (8·10⁶, 128, 1024) float32 on a 141 GB device takes 8 chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from ._backend import Array, device_free_memory, is_dask, itemsize
from ._config import check_working_memory, get_config

__all__ = [
    "CPU_WORKING_MEMORY_MB",
    "GPU_FRACTION",
    "GPU_MAX_MB",
    "GPU_MIN_MB",
    "Accumulator",
    "budget_mb",
    "chunk_rows",
    "iter_chunks",
]

#: ``working_memory="auto"`` on the CPU, in MiB.
CPU_WORKING_MEMORY_MB = 64.0
#: ``working_memory="auto"`` on a GPU: this fraction of the free device memory ...
GPU_FRACTION = 1.0 / 8.0
#: ... but at least this many MiB ...
GPU_MIN_MB = 256.0
#: ... and at most this many.
GPU_MAX_MB = 16.0 * 1024.0

# number of (chunk x k) temporaries alive at once in the widest step (distances, logits,
# responsibilities, one-hot): the budget is divided by this.
_TEMPORARIES = 4

MemoryQuery = Callable[[Array], "tuple[int, int] | None"]


def budget_mb(
    working_memory: Any = None, like: Array | None = None, *, query: MemoryQuery | None = None
) -> float:
    """The memory budget in MiB for chunks of ``like``'s rows.

    ``working_memory`` (MiB or ``"auto"``; ``None`` reads the configuration).  ``"auto"``
    asks ``query(like)`` (default :func:`arbf._backend.device_free_memory`) for the free
    and total bytes of ``like``'s device: ``None`` (a CPU) gives
    :data:`CPU_WORKING_MEMORY_MB`, a GPU :data:`GPU_FRACTION` of the free memory clamped
    to [:data:`GPU_MIN_MB`, :data:`GPU_MAX_MB`].
    """
    wm = get_config().working_memory if working_memory is None else working_memory
    wm = check_working_memory(wm)
    if wm != "auto":
        return float(wm)
    mem = None if like is None else (query or device_free_memory)(like)
    if mem is None:
        return CPU_WORKING_MEMORY_MB
    free, _ = mem
    return float(min(max(free * GPU_FRACTION / 2**20, GPU_MIN_MB), GPU_MAX_MB))


def chunk_rows(
    X: Array,
    width: int,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    query: MemoryQuery | None = None,
) -> int:
    """Rows per chunk of ``X`` so that ``_TEMPORARIES`` arrays of ``rows x width`` fit the
    budget (:func:`budget_mb`).

    Dask arrays are processed as one lazy "chunk": Dask's own chunks bound the memory
    there.
    """
    n = int(X.shape[0])
    if is_dask(xp):
        return max(n, 1)
    budget = budget_mb(working_memory, X, query=query)
    rows = int(budget * 2**20) // (_TEMPORARIES * max(width, 1) * itemsize(X))
    return int(min(max(rows, 1), max(n, 1)))


def iter_chunks(n: int, rows: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` row ranges covering ``range(n)``."""
    for start in range(0, n, rows):
        yield start, min(start + rows, n)


class Accumulator:
    """Neumaier-compensated running sum of same-shaped arrays (functional, jit-safe).

    ``add`` never writes in place, so it is safe for immutable backends (JAX) and for
    read-only inputs.  A single chunk costs no compensation at all: the first value is
    kept as it is.
    """

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp
        self.total: Array | None = None
        self.comp: Array | None = None

    def add(self, value: Array) -> None:
        xp = self.xp
        if self.total is None:
            self.total = value
            return
        t = self.total + value
        big = xp.abs(self.total) >= xp.abs(value)
        c = xp.where(big, (self.total - t) + value, (value - t) + self.total)
        self.comp = c if self.comp is None else self.comp + c
        self.total = t

    def result(self) -> Any:
        if self.total is None:
            raise ValueError("nothing accumulated")
        return self.total if self.comp is None else self.total + self.comp
