"""A/B of the certified float64 hard pass (docs/benchmarks.md): the same process, 9
interleaved rounds, median ms, with ``arbf._math.kernels.hard.CERTIFIED_FLOAT64`` off and
on, for a one-iteration ``arbf.kmeans`` fit and one hard pass (``lloyd_sums``).

    python benchmarks/ab_certified_float64.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import arbf
from arbf._math.kernels import hard


def main() -> None:
    rng = np.random.default_rng(0)
    print("| n | d | k | one-iteration fit, plain float64 ms | certified ms | ratio "
          "| hard pass plain ms | certified ms | ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for n, d, k in [(100_000, 128, 256), (100_000, 32, 300), (20_000, 64, 1024)]:
        means = rng.uniform(-10, 10, (k, d))
        X = means[rng.integers(0, k, n)] + rng.standard_normal((n, d))
        C0 = X[rng.choice(n, k, replace=False)]
        fit: dict[bool, list[float]] = {False: [], True: []}
        step: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(9):
            for flag in (False, True):
                hard.CERTIFIED_FLOAT64 = flag
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # empty clusters after one step
                    arbf.kmeans(X, k, init=C0, max_iter=1, tol=0)
                fit[flag].append(time.perf_counter() - t)
                t = time.perf_counter()
                hard.lloyd_sums(X, C0, None, working_memory=None)
                step[flag].append(time.perf_counter() - t)
        hard.CERTIFIED_FLOAT64 = True
        f0, f1 = (1e3 * float(np.median(fit[f])) for f in (False, True))
        s0, s1 = (1e3 * float(np.median(step[f])) for f in (False, True))
        print(f"| {n} | {d} | {k} | {f0:.1f} | {f1:.1f} | {f1 / f0:.2f} "
              f"| {s0:.1f} | {s1:.1f} | {s1 / s0:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
