"""One-iteration K-Means fits right after a multi-threaded NumPy matrix product
(docs/benchmarks.md): arbf, scikit-learn-intelex and scikit-learn, back to back and
each call preceded by a 2000 x 2000 ``A @ A``, in the same process, interleaved rounds,
median ms; plus arbf with a candidate chunk schedule (``--blocks B``: ``B`` blocks of
chunks per thread, claimed in turn by whichever thread is free, each block with its own
partial sums, reduced in block order -- deterministic, but not adopted: see the docs).

After a multi-threaded call OpenBLAS's idle worker threads keep spinning for a while
(``OPENBLAS_THREAD_TIMEOUT``, default ``2^28`` cycles), so a threaded call that follows
shares a CPU with them.  Run it as the K-Means benchmark runs itself, then with
OpenBLAS's spin shortened, to compare:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_blas_spin.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_THREAD_TIMEOUT=4 \\
        python benchmarks/ab_blas_spin.py
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import arbf
from arbf._math.kernels import hard, runtime

sys.path.insert(0, str(Path(__file__).parent))
from bench_kmeans import FULL_SHAPES, make_data

_static = runtime.run_chunks


def blocks_schedule(per_thread: int) -> Callable[..., list[Any]]:
    """``run_chunks`` with ``per_thread * threads`` blocks claimed dynamically."""

    def run(n: int, rows: int, threads: int, work: Any, make_state: Any) -> list[Any]:
        if threads <= 1:
            return _static(n, rows, threads, work, make_state)
        starts = list(range(0, n, rows))
        nb = min(len(starts), threads * per_thread)
        bounds = [len(starts) * b // nb for b in range(nb + 1)]
        states: list[Any] = [None] * nb
        claim = itertools.count()
        cpus = runtime._pin_plan(threads)

        def loop(t: int) -> None:
            with runtime._pinned(cpus, t):
                while (b := next(claim)) < nb:
                    st = states[b] = make_state()
                    for s in starts[bounds[b] : bounds[b + 1]]:
                        work(s, st)

        with runtime.single_threaded_blas():
            futures = [runtime._get_pool().submit(loop, t) for t in range(1, threads)]
            try:
                loop(0)
                for f in futures:
                    f.result()
            finally:
                for f in futures:
                    f.exception()
                if cpus is not None:
                    runtime._pin_lock.release()
        return states

    return run


def runners(X: np.ndarray, C0: np.ndarray, dynamic: Any) -> list[Callable[[], Any]]:
    """One-iteration fits from ``C0``: arbf (as it is; with the candidate schedule),
    scikit-learn-intelex, scikit-learn."""
    from sklearn.cluster import KMeans
    from sklearnex.cluster import KMeans as KMeansX

    k = C0.shape[0]
    kw: dict[str, Any] = {"init": C0, "n_init": 1, "max_iter": 1, "tol": 0}

    def fit_arbf(schedule: Callable[..., list[Any]]) -> Callable[[], Any]:
        def run() -> Any:
            hard.run_chunks = schedule
            try:
                return arbf.kmeans(X, k, **kw)
            finally:
                hard.run_chunks = _static

        return run

    return [
        fit_arbf(_static),
        fit_arbf(dynamic),
        lambda: KMeansX(k, **kw).fit(X),
        lambda: KMeans(k, **kw).fit(X),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--dtypes", default="float32")
    p.add_argument("--blocks", type=int, default=4, help="blocks per thread (candidate)")
    args = p.parse_args()
    warnings.simplefilter("ignore")  # empty clusters after one step
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "unset")
    print(f"OPENBLAS_THREAD_TIMEOUT={timeout}; {args.repeats} interleaved rounds, median ms")
    names = ["arbf", f"arbf {args.blocks} blocks/thread", "sklearnex", "sklearn"]
    print("| n | d | k | dtype | before each call | " + " | ".join(names) + " |")
    print("|---|---|---|---|---|" + "---|" * len(names))
    A = np.random.default_rng(1).standard_normal((2000, 2000)).astype(np.float32)
    dynamic = blocks_schedule(args.blocks)
    for n, d, k in FULL_SHAPES:
        for dtype in args.dtypes.split(","):
            X, C0 = make_data(n, d, k, dtype)
            runs = runners(X, C0, dynamic)
            for run in runs:
                run()  # warm-up
            for before in ("nothing", "A @ A"):
                ts: list[list[float]] = [[] for _ in runs]
                for _ in range(args.repeats):
                    for i, run in enumerate(runs):
                        if before != "nothing":
                            A @ A
                        t = time.perf_counter()
                        run()
                        ts[i].append((time.perf_counter() - t) * 1e3)
                cells = " | ".join(f"{float(np.median(t)):.1f}" for t in ts)
                print(f"| {n} | {d} | {k} | {dtype} | {before} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
