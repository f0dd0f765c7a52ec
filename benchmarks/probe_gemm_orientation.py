"""What bounds the float32 hard pass (docs/benchmarks.md): OpenBLAS's product of a chunk
of rows streamed from ``X`` with the centers, one thread, in the orientation the kernels
use (``C X_cᵀ``: centers by rows, so the argmin vectorises along the rows) and in the
other (``X_c Cᵀ``); then product + argmin per pass three ways: the kernels' layout, the
other product transposed into it, and a row-major argmin (a vectorised minimum, then the
first index that attains it).  Random data at the K-Means benchmark shapes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/probe_gemm_orientation.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from arbf._math.kernels import hard

sys.path.insert(0, str(Path(__file__).parent))
from bench_kmeans import FULL_SHAPES


def argmin_columns(GT, c_sq, labels, best):
    """The kernels' argmin (``arbf._math.kernels.hard._argmin``, compiled)."""
    hard._get_kernels()
    hard._argmin(GT, c_sq, labels, best)


@numba.njit(nogil=True, fastmath={"reassoc", "nsz", "contract"})
def argmin_rows(G, c_sq, labels, best):
    m, k = G.shape
    for i in range(m):
        b = np.float32(np.inf)
        for j in range(k):
            g = G[i, j]
            b = min(b, c_sq[j] - (g + g))
        best[i] = b
    for i in range(m):
        for j in range(k):
            g = G[i, j]
            if c_sq[j] - (g + g) == best[i]:
                labels[i] = j
                break


def median_ms(f: Callable[[], None], repeats: int = 7) -> float:
    f()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def measure(X: np.ndarray, C: np.ndarray) -> tuple[int, list[float], float]:
    """``(rows, [ms of the five ways], flops per pass)`` for one shape."""
    n, d = X.shape
    k = C.shape[0]
    c_sq = np.sum(C * C, axis=1)
    rows = max((1 << 20) // ((k + 2 * d) * 4), 256)
    starts = range(0, n - rows + 1, rows)
    GT = np.empty((k, rows), np.float32)
    G = np.empty((rows, k), np.float32)
    lab = np.empty(rows, np.intp)
    best = np.empty(rows, np.float32)

    def col_product() -> None:
        for s in starts:
            np.dot(C, X[s : s + rows].T, out=GT)

    def row_product() -> None:
        for s in starts:
            np.dot(X[s : s + rows], C.T, out=G)

    def col_pass() -> None:
        for s in starts:
            np.dot(C, X[s : s + rows].T, out=GT)
            argmin_columns(GT, c_sq, lab, best)

    def transposed_pass() -> None:
        for s in starts:
            np.dot(X[s : s + rows], C.T, out=G)
            np.copyto(GT, G.T)
            argmin_columns(GT, c_sq, lab, best)

    def row_pass() -> None:
        for s in starts:
            np.dot(X[s : s + rows], C.T, out=G)
            argmin_rows(G, c_sq, lab, best)

    flops = 2.0 * len(starts) * rows * k * d
    with threadpool_limits(1):
        t = [median_ms(f) for f in (col_product, row_product, col_pass, transposed_pass,
                                    row_pass)]  # fmt: skip
    return rows, t, flops


def main() -> None:
    rng = np.random.default_rng(0)
    print("one thread, float32, chunks as the kernels cut them (1 MiB of temporaries)")
    print(
        "| n | d | k | rows | C Xᵀ GFLOPS | X Cᵀ GFLOPS | C Xᵀ + argmin ms "
        "| X Cᵀ + transpose + argmin ms | X Cᵀ + row-major argmin ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n, d, k in FULL_SHAPES:
        X = rng.standard_normal((n, d)).astype(np.float32)
        C = rng.standard_normal((k, d)).astype(np.float32)
        rows, t, flops = measure(X, C)
        print(
            f"| {n} | {d} | {k} | {rows} | {flops / t[0] / 1e6:.0f} | {flops / t[1] / 1e6:.0f} "
            f"| {t[2]:.1f} | {t[3]:.1f} | {t[4]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
