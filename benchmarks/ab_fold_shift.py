"""A/B of folding the centring shift into the product (docs/benchmarks.md): the same
process, interleaved rounds, median ms of a one-iteration ``arbf.kmeans`` fit with
``arbf._math.kernels.hard.FOLD_SHIFT`` off (each chunk copied shifted, then multiplied)
and on (the unshifted rows multiplied in place, the shift in the scores' offsets), with
scikit-learn-intelex beside, at the K-Means benchmark shapes and data.  Run it as the
K-Means benchmark runs itself, without the machines' OpenBLAS kernel pins:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_fold_shift.py
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import arbf
from arbf._math.kernels import hard

sys.path.insert(0, str(Path(__file__).parent))
from bench_kmeans import FULL_SHAPES, make_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--dtypes", default="float32,float64")
    args = p.parse_args()
    warnings.simplefilter("ignore")  # empty clusters after one step
    from sklearnex.cluster import KMeans as KMeansX

    print(f"{args.repeats} interleaved rounds, median ms")
    print(
        "| n | d | k | dtype | copy ms | fold ms | sklearnex ms | fold / copy "
        "| copy / sklearnex | fold / sklearnex |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, d, k in FULL_SHAPES:
        for dtype in args.dtypes.split(","):
            X, C0 = make_data(n, d, k, dtype)
            kw = {"init": C0, "n_init": 1, "max_iter": 1, "tol": 0}
            ts: dict[str, list[float]] = {"copy": [], "fold": [], "sklearnex": []}
            for r in range(args.repeats + 1):  # the first round warms up
                for name, t in ts.items():
                    hard.FOLD_SHIFT = name == "fold"
                    start = time.perf_counter()
                    if name == "sklearnex":
                        KMeansX(k, **kw).fit(X)
                    else:
                        arbf.kmeans(X, k, **kw)
                    if r:
                        t.append((time.perf_counter() - start) * 1e3)
            hard.FOLD_SHIFT = True
            m = {name: float(np.median(t)) for name, t in ts.items()}
            print(
                f"| {n} | {d} | {k} | {dtype} | {m['copy']:.1f} | {m['fold']:.1f} "
                f"| {m['sklearnex']:.1f} | {m['fold'] / m['copy']:.2f} "
                f"| {m['copy'] / m['sklearnex']:.2f} | {m['fold'] / m['sklearnex']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
