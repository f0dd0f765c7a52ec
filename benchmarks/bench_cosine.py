"""Spherical K-Means: ``arbf.kmeans(metric="cosine")`` against faiss ``Kmeans(spherical=True)``.

The data are synthetic embeddings: ``n`` float32 rows of dimension ``d`` drawn around
``k`` random directions with heavy noise (so that Lloyd's iterations do not settle
quickly), with random norms (arbf normalises them; faiss gets the rows already
normalised, as faiss expects).  Both libraries start from the same ``k`` initial centers
(distinct normalised rows) and run ``iters`` iterations:

- arbf with its default ``algorithm="auto"`` (exact bounds that skip most distance
  computations once the centers move little) and with ``algorithm="lloyd"`` (every
  distance every iteration, as faiss);

- arbf: ``kmeans(X, k, init=C0, max_iter=iters, tol=0, metric="cosine")`` — it also
  stops early on strict label convergence (the table shows its iteration count), and it
  includes normalising the rows and the final assignment in its time;
- faiss: ``Kmeans(d, k, niter=iters, spherical=True, max_points_per_centroid=n)`` (no
  subsampling) ``.train(U, init_centroids=C0)`` then ``index.search(U, 1)`` for the labels.

The objective of each result, :math:`J = \\sum_i (1 - \\max_j \\cos(x_i, \\mu_j))`, is
computed afresh in float64 from the returned centers; the table shows its relative
difference, the fraction of equal labels and the time ratio.  Times are medians of
interleaved rounds after one warm-up call each (both libraries use every core, or
``--threads`` each).

Usage::

    python benchmarks/bench_cosine.py                  # n=1e5, d=64, k=100, 20 iterations
    python benchmarks/bench_cosine.py --quick          # a small smoke run
    python benchmarks/bench_cosine.py --repeats 5 --out /tmp/bench_cosine.md
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_kmeans as _bk  # the shared measurement helpers

FULL = (100_000, 64, 100)
QUICK = (5_000, 16, 10)


def make_embeddings(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(X, C0)``: float32 rows around ``k`` directions (noise of the same size as the
    directions, random norms in [0.5, 5]) and ``k`` distinct normalised rows."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(k, d))
    M /= np.linalg.norm(M, axis=1, keepdims=True)
    X = M[rng.integers(k, size=n)] + rng.normal(size=(n, d)) / np.sqrt(d) * 1.5
    X *= rng.uniform(0.5, 5.0, size=(n, 1))
    X = X.astype(np.float32)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    C0 = np.ascontiguousarray(U[rng.choice(n, size=k, replace=False)])
    return X, C0


def objective(U64: np.ndarray, C: np.ndarray) -> tuple[float, np.ndarray]:
    """``(Σ_i (1 − max_j cos), labels)`` in float64 (chunked)."""
    V = np.asarray(C, dtype=np.float64)
    V = V / np.linalg.norm(V, axis=1, keepdims=True)
    total, labels = 0.0, np.empty(len(U64), dtype=np.int64)
    for s in range(0, len(U64), 20_000):
        S = U64[s : s + 20_000] @ V.T
        labels[s : s + 20_000] = np.argmax(S, axis=1)
        total += float(np.sum(1.0 - S.max(axis=1)))
    return total, labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="also write the table to this file")
    ap.add_argument(
        "--threads", type=int, default=None,
        help="threads for both (faiss.omp_set_num_threads, arbf n_threads, BLAS); default all",
    )  # fmt: skip
    args = ap.parse_args(argv)

    import faiss

    import arbf

    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        faiss.omp_set_num_threads(args.threads)
        arbf.set_config(n_threads=args.threads)
        threadpool_limits(args.threads)
    n, d, k = QUICK if args.quick else FULL
    X, C0 = make_embeddings(n, d, k)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)  # what faiss is given
    iters = args.iters
    out: dict[str, Any] = {}

    def run_arbf() -> Any:
        out["arbf"] = arbf.kmeans(X, k, init=C0, max_iter=iters, tol=0.0, metric="cosine")
        return out["arbf"]

    def run_arbf_lloyd() -> Any:
        out["arbf-lloyd"] = arbf.kmeans(
            X, k, init=C0, max_iter=iters, tol=0.0, metric="cosine", algorithm="lloyd"
        )
        return out["arbf-lloyd"]

    def run_faiss() -> Any:
        km = faiss.Kmeans(
            d, k, niter=iters, nredo=1, seed=0, verbose=False, spherical=True,
            min_points_per_centroid=1, max_points_per_centroid=n,
        )  # fmt: skip
        km.train(U, init_centroids=C0.copy())
        _, lab = km.index.search(U, 1)
        assert km.centroids is not None
        out["faiss"] = (km.centroids.copy(), lab[:, 0])
        return out["faiss"]

    times = _bk.time_row(
        {"arbf": run_arbf, "arbf-lloyd": run_arbf_lloyd, "faiss": run_faiss}, args.repeats
    )
    U64 = U.astype(np.float64)
    J_f, lab_f = objective(U64, out["faiss"][0])
    header = [
        "n, d, k (float32)",
        "runner",
        "iterations",
        "time (ms)",
        "time / faiss",
        "(J − J faiss) / J faiss",
        "same labels as faiss",
    ]
    rows = []
    for name in ("arbf", "arbf-lloyd", "faiss"):
        if name == "faiss":
            J, lab, it = J_f, lab_f, iters
        else:
            J, lab = objective(U64, np.asarray(out[name].centers))
            it = out[name].n_iter
        label = {
            "arbf": 'arbf `kmeans(metric="cosine")`',
            "arbf-lloyd": 'arbf, `algorithm="lloyd"`',
            "faiss": "faiss `Kmeans(spherical=True)`",
        }[name]
        rows.append(
            [
                f"{n:,}, {d}, {k}",
                label,
                str(it),
                _bk._fmt_ms(times[name]),
                f"{times[name] / times['faiss']:.2f}",
                f"{(J - J_f) / J_f:+.1e}",
                f"{100 * float(np.mean(lab == lab_f)):.2f} %",
            ]
        )
    res = out["arbf"]
    text = "\n".join(
        [
            _bk._markdown(header, rows),
            "",
            f"arbf reported inertia {res.inertia:.6g} (its own float32 pass; J above is "
            "recomputed in float64 for both).  Threads: "
            f"{'all' if args.threads is None else args.threads}.",
            "",
            *[f"- {line}" for line in _bk.environment_notes()],
        ]
    )
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
