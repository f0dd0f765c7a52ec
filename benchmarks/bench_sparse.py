"""K-Means on sparse data (a TF-IDF-like CSR matrix): arbf against scikit-learn.

The data are a synthetic TF-IDF matrix: ``n`` documents over ``d`` terms, about
``density * d`` distinct terms per document drawn from a Zipf-like term popularity,
term counts weighted by ``log(n / df)`` and every row scaled to unit norm (what
``TfidfVectorizer`` produces), as a ``scipy.sparse`` CSR matrix.  Both libraries
cluster the same matrix from the same ``k`` initial centers (distinct rows, dense):

- ``1 iter``: one Lloyd iteration (``max_iter=1``, ``tol=0``) plus the final assignment
  and inertia — the per-iteration work plus each library's fixed cost;
- ``fit``: a full fit (``max_iter=300``, ``tol=1e-4``, scikit-learn's defaults) from the
  same centers; the table also shows both libraries' iteration counts and the relative
  difference of their inertias (they run the same algorithm: equal counts, inertia
  differences at rounding level).

Times are medians of interleaved rounds after one warm-up call each.  Peak memory is the
growth of the resident set during one full-size call, in a fresh subprocess per library
(after a warm-up call on a small matrix of the same ``d`` and ``k``): ``VmHWM`` after
the call minus ``VmRSS`` before it (see ``bench_kmeans.py``); the input matrix exists
before and is not counted.  A dense copy of the default matrix would take
``n * d * 8`` bytes = 16 GB (float64).

Usage::

    python benchmarks/bench_sparse.py                  # n=1e5, d=2e4, 0.1 %, k=50
    python benchmarks/bench_sparse.py --quick          # a small smoke run
    python benchmarks/bench_sparse.py --repeats 5 --out docs/bench_sparse.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_kmeans as _bk  # the shared measurement helpers

FULL = (100_000, 20_000, 0.001, 50)
QUICK = (3_000, 2_000, 0.01, 8)
RUNNERS = ["arbf", "sklearn"]


def make_tfidf(n: int, d: int, density: float, dtype: str, seed: int = 0) -> Any:
    """A TF-IDF-like CSR matrix (unit rows, Zipf-like term popularity)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    per_row = np.maximum(rng.poisson(density * d, size=n), 1)
    popularity = 1.0 / (np.arange(d) + 10.0) ** 1.1
    popularity /= popularity.sum()
    rows = np.repeat(np.arange(n), per_row)
    cols = rng.choice(d, size=rows.size, p=popularity)
    counts = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, d))
    counts.sum_duplicates()  # term frequencies
    df = np.bincount(counts.indices, minlength=d)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    X = counts.multiply(idf[None, :]).tocsr()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sp.diags(1.0 / np.maximum(norms, 1e-300)) @ X
    X = X.tocsr().astype(dtype)
    X.sort_indices()
    return X


def initial_centers(X: Any, k: int, seed: int = 0) -> np.ndarray:
    """``k`` distinct rows of ``X`` as a dense array (the same init for both)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(X.shape[0], size=k, replace=False)
    return np.ascontiguousarray(X[idx].toarray())


def make_runner(name: str, X: Any, C0: np.ndarray, max_iter: int, tol: float) -> Callable:
    """A zero-argument callable: one fit from ``C0``; returns ``(labels, inertia, n_iter)``."""
    k = C0.shape[0]
    if name == "arbf":
        import arbf

        def run() -> tuple[Any, float, int]:
            res = arbf.kmeans(X, k, init=C0, n_init=1, max_iter=max_iter, tol=tol)
            return res.labels, float(res.inertia), int(res.n_iter)

        return run
    if name == "sklearn":
        from sklearn.cluster import KMeans

        def run_sklearn() -> tuple[Any, float, int]:
            km = KMeans(k, init=C0, n_init=1, max_iter=max_iter, tol=tol, algorithm="lloyd")
            km.fit(X)
            return km.labels_, float(km.inertia_), int(km.n_iter_)

        return run_sklearn
    raise ValueError(f"unknown runner {name!r}")


def time_interleaved(
    runners: dict[str, Callable], repeats: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds per call (interleaved rounds after a warm-up) and each runner's
    last result."""
    out = {name: run() for name, run in runners.items()}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            t0 = time.perf_counter()
            out[name] = run()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}, out


def memory_worker(args: argparse.Namespace) -> None:
    n, d, density, k = args.shape
    X = make_tfidf(int(n), int(d), density, args.dtype)
    C0 = initial_centers(X, int(k))
    Xs = make_tfidf(max(4 * int(k), 256), int(d), density, args.dtype, seed=1)
    make_runner(args.memory_worker, Xs, initial_centers(Xs, int(k)), 1, 0.0)()
    run = make_runner(args.memory_worker, X, C0, args.max_iter, args.tol)
    print(json.dumps({"peak_mib": _bk.peak_rss_delta_mib(run)}))


def measure_memory(name: str, shape: tuple, dtype: str, max_iter: int, tol: float) -> Any:
    cmd = [
        sys.executable, os.path.abspath(__file__), "--memory-worker", name, "--shape",
        *map(str, shape), "--dtype", dtype, "--max-iter", str(max_iter), "--tol", str(tol),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        print(f"  memory worker for {name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    value = json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"]
    return None if value is None else float(value)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a small matrix (a smoke run)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--out", help="also write the table as markdown to this file")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--memory-worker", help=argparse.SUPPRESS)
    p.add_argument("--shape", type=float, nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    p.add_argument("--max-iter", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--tol", type=float, default=0.0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    if args.memory_worker:
        memory_worker(args)
        return 0
    n, d, density, k = QUICK if args.quick else FULL
    notes = _bk.environment_notes()
    command = "python benchmarks/bench_sparse.py " + " ".join(argv)
    for line in notes:
        print(line)
    print(f"command: {command}\n", flush=True)
    header = [
        "dtype", "run", "arbf ms", "sklearn ms", "arbf / sklearn", "n_iter arbf / sklearn",
        "inertia rel. diff", "arbf peak MiB", "sklearn peak MiB",
    ]  # fmt: skip
    rows: list[list[str]] = []
    for dtype in [s.strip() for s in args.dtypes.split(",") if s.strip()]:
        X = make_tfidf(n, d, density, dtype)
        C0 = initial_centers(X, k)
        print(f"{dtype}: n={n} d={d} nnz={X.nnz} ({X.nnz / (n * d):.4%}) k={k}", flush=True)
        for label, max_iter, tol in (("1 iter", 1, 0.0), ("fit", 300, 1e-4)):
            runners = {nm: make_runner(nm, X, C0, max_iter, tol) for nm in RUNNERS}
            t, out = time_interleaved(runners, args.repeats)
            ia, isk = out["arbf"][1], out["sklearn"][1]
            row = [
                dtype, label, f"{t['arbf'] * 1e3:.0f}", f"{t['sklearn'] * 1e3:.0f}",
                f"{t['arbf'] / t['sklearn']:.2f}", f"{out['arbf'][2]} / {out['sklearn'][2]}",
                f"{abs(ia - isk) / isk:.1e}",
            ]  # fmt: skip
            if args.no_memory:
                row += ["—", "—"]
            else:
                del runners, out
                shape = (n, d, density, k)
                row += [
                    _bk._fmt_mib(measure_memory(nm, shape, dtype, max_iter, tol)) for nm in RUNNERS
                ]
            rows.append(row)
            print(" | ".join(row), flush=True)
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    md = "\n".join(table)
    print("\n" + md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"Command: `{command}`\n\n")
            f.write("\n".join(f"- {line}" for line in notes) + "\n\n")
            f.write(
                f"n={n}, d={d}, density {density:g}, k={k}; median of {args.repeats} "
                "interleaved rounds after one warm-up.\n\n"
            )
            f.write(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
