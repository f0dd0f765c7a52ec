"""Mini-batch K-Means: arbf against scikit-learn's ``MiniBatchKMeans``, side by side.

Same data (Gaussian blobs), same ``batch_size``, ``max_iter``, ``max_no_improvement``
and k-means++ initialisation on ``init_size`` samples, ``n_init=1``, several seeds.  For
each library: median fit time, steps taken, and the final inertia on the *full* data
(mean over the seeds, and relative to full-batch Lloyd K-Means, best of 10 k-means++
starts).  Extra rows: arbf's ``MiniBatchRBFKMeans`` (softmax, σ annealed geometrically)
and a streaming run (``partial_fit`` over pieces of ``--piece`` rows, one pass).

Usage::

    python benchmarks/bench_minibatch.py            # n=200k, d=16, k=20
    python benchmarks/bench_minibatch.py --quick
    python benchmarks/bench_minibatch.py --out docs/user_guide/_bench_minibatch.md
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
    from sklearn.cluster import KMeans as SKKMeans
    from sklearn.cluster import MiniBatchKMeans as SKMiniBatch
    from sklearn.datasets import make_blobs

    import arbf
    from arbf._estimators.minibatch import MiniBatchKMeans, MiniBatchRBFKMeans

    X, _ = make_blobs(
        args.n, centers=args.k, n_features=args.d, cluster_std=args.std, random_state=0
    )
    common = {
        "batch_size": args.batch_size,
        "max_iter": args.max_iter,
        "max_no_improvement": 10,
        "n_init": 1,
    }
    # sigma for the annealed RBF: from the mean per-feature variance down to ~0
    var = float(X.var(axis=0).mean())
    makers = {
        "sklearn MiniBatchKMeans": lambda s: SKMiniBatch(args.k, random_state=s, **common),
        "arbf MiniBatchKMeans": lambda s: MiniBatchKMeans(args.k, random_state=s, **common),
        "arbf MiniBatchRBFKMeans (σ annealed)": lambda s: MiniBatchRBFKMeans(
            args.k, sigma=var, sigma_end=1e-3 * var, random_state=s, **common
        ),
    }
    rows: dict[str, dict[str, Any]] = {}
    with warnings.catch_warnings():  # warm-up: thread pools, JIT compilation
        warnings.simplefilter("ignore")
        for make in makers.values():
            make(0).fit(X[: 4 * args.batch_size])
            make(0).partial_fit(X[: args.piece]) if hasattr(make(0), "partial_fit") else None
        SKKMeans(args.k, n_init=1).fit(X[: 4 * args.batch_size])
    for name, make in makers.items():
        times, inert, steps = [], [], []
        for s in range(args.seeds):
            est = make(s)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = time.perf_counter()
                est.fit(X)
                times.append(time.perf_counter() - t)
            inert.append(float(arbf.inertia(X, np.asarray(est.cluster_centers_))))
            steps.append(int(getattr(est, "n_steps_", 0)))
        rows[name] = {
            "time_s": statistics.median(times),
            "inertia": float(np.mean(inert)),
            "steps": float(np.mean(steps)),
        }
        print(name, rows[name])
    # streaming: one pass of partial_fit over pieces
    times, inert = [], []
    for s in range(args.seeds):
        est = MiniBatchKMeans(args.k, random_state=s)
        order = np.random.default_rng(s).permutation(args.n)
        t = time.perf_counter()
        for a in range(0, args.n, args.piece):
            est.partial_fit(X[order[a : a + args.piece]])
        times.append(time.perf_counter() - t)
        inert.append(float(arbf.inertia(X, est.cluster_centers_)))
    rows["arbf MiniBatchKMeans.partial_fit (1 pass)"] = {
        "time_s": statistics.median(times),
        "inertia": float(np.mean(inert)),
        "steps": float(-(-args.n // args.piece)),
    }
    sk_stream_t, sk_stream_i = [], []
    for s in range(args.seeds):
        est = SKMiniBatch(args.k, random_state=s, n_init=1)
        order = np.random.default_rng(s).permutation(args.n)
        t = time.perf_counter()
        for a in range(0, args.n, args.piece):
            est.partial_fit(X[order[a : a + args.piece]])
        sk_stream_t.append(time.perf_counter() - t)
        sk_stream_i.append(float(arbf.inertia(X, est.cluster_centers_)))
    rows["sklearn MiniBatchKMeans.partial_fit (1 pass)"] = {
        "time_s": statistics.median(sk_stream_t),
        "inertia": float(np.mean(sk_stream_i)),
        "steps": float(-(-args.n // args.piece)),
    }
    # reference: full-batch Lloyd
    ref_t, ref_i = [], []
    for s in range(args.seeds):
        t = time.perf_counter()
        km = SKKMeans(args.k, random_state=s, n_init=10).fit(X)
        ref_t.append(time.perf_counter() - t)
        ref_i.append(float(km.inertia_))
    ref = float(np.mean(ref_i))
    rows["sklearn KMeans (full batch, n_init=10, reference)"] = {
        "time_s": statistics.median(ref_t),
        "inertia": ref,
        "steps": float("nan"),
    }
    for r in rows.values():
        r["inertia_vs_full"] = r["inertia"] / ref
    return {"n": args.n, "d": args.d, "k": args.k, "batch_size": args.batch_size,
            "max_iter": args.max_iter, "seeds": args.seeds, "piece": args.piece,
            "rows": rows}  # fmt: skip


def to_markdown(r: dict[str, Any]) -> str:
    base = r["rows"]["sklearn MiniBatchKMeans"]["time_s"]
    lines = [
        f"n = {r['n']:,}, d = {r['d']}, k = {r['k']} Gaussian blobs, batch_size = "
        f"{r['batch_size']}, max_iter = {r['max_iter']}, max_no_improvement = 10, "
        f"k-means++ init, mean over {r['seeds']} seeds; streaming pieces of {r['piece']} rows; "
        f"BLAS/OpenMP threads: {r.get('threads', 'default')}.",
        "",
        "| estimator | time (s) | time / sklearn | steps | inertia | inertia / full K-Means |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, v in r["rows"].items():
        lines.append(
            f"| {name} | {v['time_s']:.3f} | {v['time_s'] / base:.2f} | {v['steps']:.0f} | "
            f"{v['inertia']:.6g} | {v['inertia_vs_full']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--std", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--piece", type=int, default=4096)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="limit BLAS/OpenMP threads")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_* pins")
    p.add_argument("--out", default=None)
    _reexec_without_blas_pins(sys.argv[1:])
    args = p.parse_args()
    if args.quick:
        args.n, args.d, args.k, args.seeds, args.max_iter = 5000, 4, 5, 1, 5
    if args.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.threads):  # BLAS and OpenMP (scikit-learn)
            res = run(args)
    else:
        res = run(args)
    res["threads"] = args.threads or "default"
    md = to_markdown(res)
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
        with open(args.out.rsplit(".", 1)[0] + ".json", "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
