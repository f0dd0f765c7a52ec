"""Product-quantization training: arbf against faiss and a loop of scikit-learn, side by side.

The same float32 data (a mixture of correlated Gaussians, ``n x d``), ``M`` sub-spaces
of ``d/M`` coordinates, ``k`` codewords each, 25 Lloyd iterations, one start:

- ``arbf.pq_train``: the M K-Means problems on the batched path (k-means++ with the
  relative tolerance 1e-4, and "random" init with ``tol=0``, faiss' recipe);
- ``faiss.ProductQuantizer.train``: faiss' default (random init, 25 iterations, each
  sub-space trained on a sample of ``256 k`` points) and on all the points;
- a loop of ``sklearn.cluster.KMeans`` (k-means++, ``n_init=1``, ``max_iter=25``), one
  sub-space after another.

Each row: median training time over ``--repeats`` (the libraries interleaved in every
repeat), its ratio to arbf's k-means++ row, and the quantization MSE
:math:`\\frac1n\\sum_i \\lVert x_i - \\operatorname{decode}(\\operatorname{encode}(x_i))\\rVert^2`
on the training data (and its ratio to arbf's).

Usage::

    python benchmarks/bench_pq.py                 # (n, d, M, k) = (200000, 128, 16, 256)
    python benchmarks/bench_pq.py --quick         # a smoke test
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _reexec_without_blas_pins(argv: list[str]) -> None:
    """Re-execute without ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` (as bench_kmeans does):
    pinning OpenBLAS to an old kernel slows every library's products alike."""
    if "--keep-blas-env" in argv or not any(v in os.environ for v in _BLAS_ENV):
        return
    env = {key: val for key, val in os.environ.items() if key not in _BLAS_ENV}
    print("(re-executing without the OPENBLAS_* pins for this benchmark)", flush=True)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Float32 ``n x d``: 64 Gaussian clusters in a 32-dimensional latent space, mapped
    linearly to ``d`` dimensions, plus isotropic noise (correlated coordinates)."""
    rng = np.random.default_rng(seed)
    latent = min(32, d)
    means = rng.normal(scale=3.0, size=(64, latent))
    Z = means[rng.integers(0, 64, size=n)] + rng.normal(size=(n, latent))
    A = rng.normal(size=(latent, d)) / np.sqrt(latent)
    return (Z @ A + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def _mse(X: np.ndarray, Xr: np.ndarray) -> float:
    diff = X.astype(np.float64) - np.asarray(Xr, dtype=np.float64)
    return float((diff * diff).sum(axis=1).mean())


def candidates(args: argparse.Namespace) -> dict[str, Callable[[np.ndarray], Any]]:
    import arbf

    M, k, it = args.M, args.k, args.max_iter

    def arbf_pp(X: np.ndarray) -> Any:
        pq = arbf.pq_train(X, M, k, max_iter=it, random_state=0)
        return lambda Y: pq.decode(pq.encode(Y))

    def arbf_random(X: np.ndarray) -> Any:
        pq = arbf.pq_train(X, M, k, init="random", max_iter=it, tol=0.0, random_state=0)
        return lambda Y: pq.decode(pq.encode(Y))

    out: dict[str, Callable[[np.ndarray], Any]] = {
        "arbf.pq_train (k-means++)": arbf_pp,
        "arbf.pq_train (random, tol=0)": arbf_random,
    }
    try:
        import faiss

        def faiss_pq(all_points: bool) -> Callable[[np.ndarray], Any]:
            def fit(X: np.ndarray) -> Any:
                pq = faiss.ProductQuantizer(X.shape[1], M, int(np.log2(k)))
                pq.cp.niter = it
                pq.cp.seed = 0
                pq.verbose = False
                if all_points:
                    pq.cp.max_points_per_centroid = -(-X.shape[0] // k)
                pq.train(X)
                return lambda Y: pq.decode(pq.compute_codes(Y))  # type: ignore[call-arg, arg-type]

            return fit

        out["faiss ProductQuantizer (default: 256k-point sample)"] = faiss_pq(False)
        out["faiss ProductQuantizer (all points)"] = faiss_pq(True)
    except ImportError:  # pragma: no cover
        print("(faiss not installed: its rows are skipped)")

    def sklearn_loop(X: np.ndarray) -> Any:
        from sklearn.cluster import KMeans

        s = X.shape[1] // M
        models = [
            KMeans(k, n_init=1, max_iter=it, random_state=m).fit(X[:, m * s : (m + 1) * s])
            for m in range(M)
        ]

        def rec(Y: np.ndarray) -> np.ndarray:
            return np.concatenate(
                [
                    mo.cluster_centers_[mo.predict(Y[:, m * s : (m + 1) * s])]
                    for m, mo in enumerate(models)
                ],
                axis=1,
            )

        return rec

    out["scikit-learn KMeans loop (k-means++)"] = sklearn_loop
    return out


def run(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    X = make_data(args.n, args.d)
    cands = candidates(args)
    times: dict[str, list[float]] = {name: [] for name in cands}
    mse: dict[str, float] = {}
    for fit in cands.values():  # warm-up (compilation, thread pools) on a small slice
        fit(X[: max(20 * args.k, 1000)])
    for _ in range(args.repeats):
        for name, fit in cands.items():  # interleaved: every repeat runs every library
            t0 = time.perf_counter()
            rec = fit(X)
            times[name].append(time.perf_counter() - t0)
            mse[name] = _mse(X, rec(X))
            if args.progress:
                print(f"  {name}: {times[name][-1]:.2f} s, MSE {mse[name]:.4g}", flush=True)
    return [(name, statistics.median(times[name]), mse[name]) for name in cands]


def table(rows: list[tuple[str, float, float]], args: argparse.Namespace) -> str:
    t0, m0 = rows[0][1], rows[0][2]
    lines = [
        f"(n, d, M, k) = ({args.n}, {args.d}, {args.M}, {args.k}) float32, "
        f"{args.max_iter} iterations, median of {args.repeats}",
        "",
        "| training | time (s) | time / arbf | MSE | MSE / arbf |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t, m in rows:
        lines.append(f"| {name} | {t:.2f} | {t / t0:.2f} | {m:.4g} | {m / m0:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--M", type=int, default=16)
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--max-iter", type=int, default=25)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="(n, d, M, k) = (4000, 32, 4, 16)")
    p.add_argument("--keep-blas-env", action="store_true")
    p.add_argument("--progress", action="store_true", help="print each fit as it ends")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.d, args.M, args.k = 4000, 32, 4, 16
    print(table(run(args), args), flush=True)


if __name__ == "__main__":
    _reexec_without_blas_pins(sys.argv[1:])
    main()
