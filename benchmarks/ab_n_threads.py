"""One-iteration ``arbf.kmeans`` fits alternating ``config_context(n_threads=1)`` and the
default (two threads here), interleaved, median ms (docs/benchmarks.md, CHANGELOG): the
one-thread fit's time, and the default fit's time right after it.  On a commit before
``n_threads`` limited BLAS (62aa57c) the one-thread fits left OpenBLAS's workers
spinning and the default fits after them took about twice as long.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_n_threads.py
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import arbf

sys.path.insert(0, str(Path(__file__).parent))
from bench_kmeans import make_data


def main(repeats: int = 9) -> None:
    warnings.simplefilter("ignore")  # empty clusters after one step
    print(f"{repeats} interleaved rounds, median ms")
    print("| n | d | k | dtype | n_threads=1 | default, right after |")
    print("|---|---|---|---|---|---|")
    for n, d, k in [(50_000, 256, 64), (200_000, 32, 64)]:
        X, C0 = make_data(n, d, k, "float32")
        ts: dict[object, list[float]] = {1: [], None: []}
        for r in range(repeats + 1):  # the first round warms up
            for threads, t in ts.items():
                with arbf.config_context(n_threads=threads):
                    start = time.perf_counter()
                    arbf.kmeans(X, k, init=C0, max_iter=1, tol=0)
                    if r:
                        t.append((time.perf_counter() - start) * 1e3)
        one, default = (statistics.median(ts[key]) for key in (1, None))
        print(f"| {n} | {d} | {k} | float32 | {one:.1f} | {default:.1f} |", flush=True)


if __name__ == "__main__":
    main()
