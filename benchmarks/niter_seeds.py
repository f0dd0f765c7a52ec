"""The number of iterations per data draw (docs/benchmarks.md, "n_iter"): full default
fits (``max_iter=300``, ``tol=1e-4``) from the same init of arbf's bound methods, arbf's
Lloyd in the data's dtype and in float64, and scikit-learn's Lloyd, on the benchmark's
data (``bench_kmeans.make_data``) at several seeds.  It shows whether a difference in
``n_iter`` at one seed is the method or the draw.

    python benchmarks/niter_seeds.py                    # (2e5, 32, 64) float32, seeds 0-4
    python benchmarks/niter_seeds.py --shape 100000,32,300 --seeds 5
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from bench_kmeans import make_data
from sklearn.cluster import KMeans

import arbf


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="200000,32,64", help="n,d,k")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    n, d, k = (int(v) for v in args.shape.split(","))
    warnings.simplefilter("ignore")
    cols = ["hamerly", "yinyang", f"lloyd {args.dtype}", "lloyd float64", "scikit-learn"]
    print(f"({n}, {d}, {k}) {args.dtype}: n_iter per seed")
    print("seed | " + " | ".join(cols))
    for seed in range(args.seeds):
        X, C0 = make_data(n, d, k, args.dtype, seed=seed)
        X64, C64 = X.astype(np.float64), C0.astype(np.float64)
        its = [
            arbf.kmeans(X, k, init=C0, n_init=1, algorithm="hamerly").n_iter,
            arbf.kmeans(X, k, init=C0, n_init=1, algorithm="yinyang").n_iter,
            arbf.kmeans(X, k, init=C0, n_init=1, algorithm="lloyd").n_iter,
            arbf.kmeans(X64, k, init=C64, n_init=1, algorithm="lloyd").n_iter,
            KMeans(k, init=C0, n_init=1, algorithm="lloyd").fit(X).n_iter_,
        ]
        print(f"{seed} | " + " | ".join(str(int(v)) for v in its), flush=True)


if __name__ == "__main__":
    main()
