"""A/B of a candidate that was measured and not adopted (docs/benchmarks.md): the extent
and the column means of ``X`` in one compiled loop (column sums, maxima and minima
together) against the library's sweep (``arbf._math.kernels.hard._sweep``: per chunk
NumPy's ``max`` and ``min`` and the compiled column sums).  The same process, interleaved
rounds, median ms: the sweep alone, and a one-iteration ``arbf.kmeans`` fit with the
library's sweep replaced by the candidate.  Both give the same extent and the same mean
bits (checked before timing).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_fused_sweep.py
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np

import arbf
from arbf._math.kernels import hard
from arbf._math.kernels.runtime import n_threads, run_chunks

sys.path.insert(0, str(Path(__file__).parent))
from bench_kmeans import FULL_SHAPES, make_data

LIBRARY_SWEEP = hard._sweep


@numba.njit(nogil=True, cache=False, fastmath=False)
def _sums_range(X, a, b, out, hi, lo):
    d = X.shape[1]
    for c in range(d):
        out[c] = 0.0
        hi[c] = X[a, c]
        lo[c] = X[a, c]
    for i in range(a, b):
        for c in range(d):
            v = X[i, c]
            out[c] += np.float64(v)
            h = hi[c]
            lw = lo[c]
            hi[c] = v if v > h else h
            lo[c] = v if v < lw else lw


def fused_sweep(
    X: np.ndarray, extent: bool, variance: bool = False
) -> tuple[float, np.ndarray, float]:
    """The candidate: :func:`hard._sweep`'s values, one loop per chunk (with
    ``variance``, the library's sweep: the candidate predates the variance's moments)."""
    if variance:
        return LIBRARY_SWEEP(X, extent, True)
    n, d = X.shape
    rows = max(1, min(n, hard.CACHE_BYTES // (8 * d)))
    n_chunks = -(-n // rows)
    part = np.empty((n_chunks, d))
    hi = np.empty((n_chunks, d), X.dtype)
    lo = np.empty_like(hi)

    def work(a: int, st: None) -> None:
        c = a // rows
        _sums_range(X, a, min(a + rows, n), part[c], hi[c], lo[c])

    run_chunks(n, rows, min(n_threads(), n_chunks), work, lambda: None)
    total = np.zeros(d)
    for c in range(n_chunks):
        total += part[c]
    if np.all(np.isfinite(total)):  # every entry finite: the compared extremes are exact
        ext = float(max(hi.max(), -lo.min()))
    else:
        ext = float(np.max(np.stack([X.max(), -X.min()])))
    return (ext if extent else 0.0), (total / n).astype(X.dtype), 0.0


def _median_ms(ts: list[float]) -> float:
    return float(np.median(ts)) * 1e3


def main() -> None:
    warnings.simplefilter("ignore")  # empty clusters after one step
    library = LIBRARY_SWEEP
    print("9 interleaved rounds, median ms")
    print("| n | d | k | dtype | sweep ms | fused ms | ratio | fit ms | fit, fused ms | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, d, k in FULL_SHAPES:
        for dtype in ("float32", "float64"):
            X, C0 = make_data(n, d, k, dtype)
            e1, m1, _ = library(X, True)
            e2, m2, _ = fused_sweep(X, True)
            assert e1 == e2 and np.array_equal(m1, m2)
            sweep: dict[str, list[float]] = {"lib": [], "fused": []}
            fit: dict[str, list[float]] = {"lib": [], "fused": []}
            try:
                for _ in range(9):
                    for name, f in (("lib", library), ("fused", fused_sweep)):
                        t = time.perf_counter()
                        f(X, True)
                        sweep[name].append(time.perf_counter() - t)
                        hard._sweep = f
                        t = time.perf_counter()
                        arbf.kmeans(X, k, init=C0, max_iter=1, tol=0)
                        fit[name].append(time.perf_counter() - t)
            finally:
                hard._sweep = library
            s0, s1 = _median_ms(sweep["lib"]), _median_ms(sweep["fused"])
            f0, f1 = _median_ms(fit["lib"]), _median_ms(fit["fused"])
            print(f"| {n} | {d} | {k} | {dtype} | {s0:.2f} | {s1:.2f} | {s1 / s0:.2f} "
                  f"| {f0:.1f} | {f1:.1f} | {f1 / f0:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
