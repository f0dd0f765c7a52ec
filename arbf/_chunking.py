"""Memory budget -> chunk sizes, and compensated accumulation across chunks.

No step in :mod:`arbf` holds an ``n x k`` array for the whole data set: the math layer
walks the rows in chunks whose size follows a memory budget, and sums across chunks are
accumulated with Neumaier (compensated) summation so that float32 totals agree with a
float64 reference to about ``1e-6`` relative.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

from ._backend import Array, is_dask

#: Default memory budget for the temporaries of one chunk, in MiB.
DEFAULT_WORKING_MEMORY_MB = 64.0

# number of (chunk x k) temporaries alive at once in the widest step (distances, logits,
# responsibilities, one-hot): the budget is divided by this.
_TEMPORARIES = 4


def chunk_rows(
    n: int,
    k: int,
    itemsize: int,
    *,
    xp: ModuleType,
    working_memory: float | None = None,
) -> int:
    """Rows per chunk so that ``_TEMPORARIES`` arrays of ``rows x k`` fit the budget.

    ``working_memory`` is in MiB (default :data:`DEFAULT_WORKING_MEMORY_MB`).  Dask arrays
    are processed as one lazy "chunk": Dask's own chunks bound the memory there.
    """
    if is_dask(xp):
        return max(n, 1)
    budget = DEFAULT_WORKING_MEMORY_MB if working_memory is None else float(working_memory)
    if not budget > 0:
        raise ValueError(
            f"working_memory must be a positive number of MiB, got {working_memory!r}"
        )
    rows = int(budget * 2**20) // (_TEMPORARIES * max(k, 1) * itemsize)
    return int(min(max(rows, 1), max(n, 1)))


def iter_chunks(n: int, rows: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` row ranges covering ``range(n)``."""
    for start in range(0, n, rows):
        yield start, min(start + rows, n)


class Accumulator:
    """Neumaier-compensated running sum of same-shaped arrays (functional, jit-safe).

    ``add`` never writes in place, so it is safe for immutable backends (JAX) and for
    read-only inputs.
    """

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp
        self.total: Array | None = None
        self.comp: Array | None = None

    def add(self, value: Array) -> None:
        xp = self.xp
        if self.total is None:
            self.total = value
            self.comp = xp.zeros_like(value)
            return
        t = self.total + value
        big = xp.abs(self.total) >= xp.abs(value)
        self.comp = self.comp + xp.where(big, (self.total - t) + value, (value - t) + self.total)
        self.total = t

    def result(self) -> Any:
        if self.total is None:
            raise ValueError("nothing accumulated")
        return self.total + self.comp
