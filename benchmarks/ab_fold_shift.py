"""A/B of folding the centring shift into the product (docs/benchmarks.md): the same
process, interleaved rounds, median ms of a one-iteration ``arbf.kmeans`` fit with
``arbf._math.kernels.hard.FOLD_SHIFT`` off (each chunk copied shifted, then multiplied)
and on (the unshifted rows multiplied in place, the shift in the scores' offsets), with
scikit-learn-intelex beside, at the K-Means benchmark shapes and data.  Run it as the
K-Means benchmark runs itself, without the machines' OpenBLAS kernel pins:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_fold_shift.py
    python benchmarks/ab_fold_shift.py --ties     # labels near ties, copy vs fold

``--ties`` counts, over float32 problems built to have near ties (two centers splitting
each of four blobs), the labels of one pass that differ from a float64 argmin of the
same float32 rows and centers, with the copy and with the fold.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import arbf
from arbf._math.kernels import hard

sys.path.insert(0, str(Path(__file__).parent))
from bench_kmeans import FULL_SHAPES, make_data


def ties(problems: int = 30, n: int = 50_000, d: int = 8) -> None:
    """Labels off a float64 argmin, copy against fold, on float32 data with near ties."""
    wrong = {False: 0, True: 0}
    near = 0
    for seed in range(problems):
        rng = np.random.default_rng(seed)
        means = rng.normal(size=(4, d)) * 15
        X = means[rng.integers(4, size=n)] + rng.standard_normal((n, d)) + 0.5
        X = X.astype(np.float32)
        s = X.mean(axis=0)
        delta = rng.normal(size=(4, d)) * 0.5
        C = (np.concatenate([means + delta, means - delta]) - s).astype(np.float32)
        assert hard._folds(s, np.sum(C * C, axis=1))
        xc = (X - s).astype(np.float64)
        D = ((xc[:, None, :] - C.astype(np.float64)[None]) ** 2).sum(-1)
        exact = D.argmin(axis=1)
        Ds = np.sort(D, axis=1)
        near += int(((Ds[:, 1] - Ds[:, 0]) < 1e-5 * Ds[:, 0]).sum())
        for fold in (False, True):
            hard.FOLD_SHIFT = fold
            lab = hard._pass(
                X, C, None, working_memory=None, do_sums=False, want_min_sq=False, shift=s
            )[0]
            wrong[fold] += int((lab != exact).sum())
    hard.FOLD_SHIFT = True
    print(
        f"{problems * n} float32 rows, {near} with a relative gap below 1e-5; labels off "
        f"a float64 argmin: copy {wrong[False]}, fold {wrong[True]}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--ties", action="store_true", help="near-tie labels, copy vs fold")
    args = p.parse_args()
    if args.ties:
        ties()
        return
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
            kw: dict[str, Any] = {"init": C0, "n_init": 1, "max_iter": 1, "tol": 0}
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
