"""arbf K-Means on a Dask ``distributed.LocalCluster``: 1 vs 2 workers, and dask-ml.

The same fit on the same data from the same initial centers, side by side in one run:
``arbf.kmeans`` (fixed ``max_iter`` Lloyd iterations, ``tol=0``) and
``dask_ml.cluster.KMeans`` (same ``init`` array, ``max_iter``, ``tol=0``), each on a
LocalCluster with 1 and with 2 worker processes (one thread each).  The data are
generated on the workers (``dask.array.random``) and persisted before timing, so no copy
of the data passes through the client.  A second table times the scalable
initialisations (arbf's ``init="k-means||"`` and dask-ml's ``k_init(init="k-means||")``).

Times are the median of ``--repeats`` runs after one warm-up; ratios are relative to
arbf with 1 worker.

Usage::

    python benchmarks/bench_dask.py                 # n=400k, d=16, k=16, 10 iterations
    python benchmarks/bench_dask.py --quick         # a smoke run
    python benchmarks/bench_dask.py --out docs/user_guide/_bench_dask.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from typing import Any

import numpy as np


def _timed(fn: Any, repeats: int) -> tuple[float, Any]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _reexec_without_blas_pins(argv: list[str]) -> None:
    """Re-execute without ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` (as bench_kmeans does):
    pinning OpenBLAS to an old kernel makes the chunk matmuls ~10x slower, for every
    library alike; worker processes inherit the cleaned environment."""
    if "--keep-blas-env" in argv or not any(v in os.environ for v in _BLAS_ENV):
        return
    env = {key: val for key, val in os.environ.items() if key not in _BLAS_ENV}
    print("(re-executing without the OPENBLAS_* pins for this benchmark)", flush=True)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import dask
    import dask.array as da
    import distributed

    import arbf

    try:
        from dask_ml.cluster import KMeans as DaskMLKMeans
        from dask_ml.cluster.k_means import k_init
    except Exception as exc:  # pragma: no cover - optional
        DaskMLKMeans = None
        k_init = None
        print(f"dask-ml not available ({exc!r}): its rows are skipped")

    n, d, k, it = args.n, args.d, args.k, args.max_iter
    rows = max(n // args.chunks, 1)
    results: dict[str, Any] = {"n": n, "d": d, "k": k, "max_iter": it, "chunks": args.chunks}
    lloyd: dict[str, dict[int, float]] = {}
    inits: dict[str, dict[int, float]] = {}
    inertia: dict[str, float] = {}
    for workers in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = distributed.Client(cluster)
        try:
            with dask.config.set({"array.chunk-size": "256MiB"}):
                X = da.random.default_rng(0).uniform(size=(n, d), chunks=(rows, d))
                X = X.persist()
                distributed.wait(X)
            C0 = np.asarray(X[:k].compute())

            def fit_arbf(X=X, C0=C0):
                return arbf.kmeans(X, k, init=C0, max_iter=it, tol=0)

            t, res = _timed(fit_arbf, args.repeats)
            lloyd.setdefault("arbf", {})[workers] = t
            inertia["arbf"] = res.inertia
            results.setdefault("arbf_centers", np.asarray(res.centers.compute()).tolist())
            print(f"[{workers} worker(s)] arbf.kmeans: {t:.3f} s ({res.n_iter} it)")

            if DaskMLKMeans is not None:

                def fit_daskml(X=X, C0=C0):
                    return DaskMLKMeans(n_clusters=k, init=C0, max_iter=it, tol=0).fit(X)

                t, res = _timed(fit_daskml, args.repeats)
                lloyd.setdefault("dask-ml", {})[workers] = t
                # dask-ml's own ``inertia_`` is not the inertia of its final centers (it
                # disagrees with scikit-learn's); recompute it the same way for both
                Cm = da.from_array(np.asarray(res.cluster_centers_))
                inertia["dask-ml"] = float(arbf.inertia(X, Cm))
                inertia["dask-ml (its inertia_)"] = float(res.inertia_)
                print(f"[{workers} worker(s)] dask_ml KMeans: {t:.3f} s ({res.n_iter_} it)")

            def init_arbf(X=X):
                from arbf._drivers.init import kmeans_parallel

                return kmeans_parallel(X, k, random_state=0)

            t, _ = _timed(init_arbf, args.repeats)
            inits.setdefault("arbf k-means||", {})[workers] = t
            if k_init is not None:

                def init_daskml(X=X):
                    return k_init(
                        X, k, init="k-means||", random_state=np.random.RandomState(0),
                        max_iter=5, oversampling_factor=2,
                    )  # fmt: skip

                try:
                    t, _ = _timed(init_daskml, args.repeats)
                    inits.setdefault("dask-ml k-means||", {})[workers] = t
                except Exception as exc:  # pragma: no cover - API drift
                    print(f"dask-ml k_init failed: {exc!r}")
        finally:
            client.close()
            cluster.close()
    results["lloyd"] = lloyd
    results["init"] = inits
    results["inertia"] = inertia
    return results


def to_markdown(r: dict[str, Any]) -> str:
    base = r["lloyd"]["arbf"][1]
    lines = [
        f"n = {r['n']:,}, d = {r['d']}, k = {r['k']}, {r['max_iter']} Lloyd iterations "
        f"(tol = 0), {r['chunks']} row chunks, float64; LocalCluster, 1 thread per worker.",
        "",
        "| fit | 1 worker (s) | 2 workers (s) | speed-up 1→2 | vs arbf, 1 worker | inertia |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, t in r["lloyd"].items():
        t1, t2 = t.get(1, float("nan")), t.get(2, float("nan"))
        lines.append(
            f"| {name} | {t1:.3f} | {t2:.3f} | {t1 / t2:.2f}× | "
            f"{t1 / base:.2f} / {t2 / base:.2f} | {r['inertia'].get(name, float('nan')):.6g} |"
        )
    lines += ["", "| initialisation | 1 worker (s) | 2 workers (s) |", "|---|---:|---:|"]
    for name, t in r["init"].items():
        lines.append(f"| {name} | {t.get(1, float('nan')):.3f} | {t.get(2, float('nan')):.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=400_000)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--max-iter", type=int, default=10)
    p.add_argument("--chunks", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_* pins")
    p.add_argument("--out", default=None, help="write the markdown table here (and .json)")
    _reexec_without_blas_pins(sys.argv[1:])
    args = p.parse_args()
    if args.quick:
        args.n, args.d, args.k, args.max_iter, args.repeats = 20_000, 4, 4, 3, 1
    res = run(args)
    md = to_markdown(res)
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
        with open(args.out.rsplit(".", 1)[0] + ".json", "w") as f:
            json.dump(res, f, indent=1, default=str)


if __name__ == "__main__":
    main()
