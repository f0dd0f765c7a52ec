"""A/B of pinning the host kernels' threads to CPUs (docs/benchmarks.md): the same
process, interleaved rounds, median ms of a one-iteration ``arbf.kmeans`` fit with
``arbf._math.kernels.runtime.PIN_THREADS`` off and on, at the K-Means benchmark shapes
and data, each call after a pause of ``--idle`` seconds (0: back to back).  Run it as
the K-Means benchmark runs itself, without the machines' OpenBLAS kernel pins:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_pin_threads.py --idle 0.2
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_pin_threads.py --idle 0
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import arbf
from arbf._math.kernels import runtime

sys.path.insert(0, str(Path(__file__).parent))
from bench_kmeans import FULL_SHAPES, make_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--idle", type=float, default=0.2, help="seconds of pause before a call")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    warnings.simplefilter("ignore")  # empty clusters after one step
    print(f"idle {args.idle} s, {args.repeats} interleaved rounds, median ms")
    print("| n | d | k | dtype | unpinned ms | pinned ms | pinned / unpinned |")
    print("|---|---|---|---|---|---|---|")
    for n, d, k in FULL_SHAPES:
        for dtype in ("float32", "float64"):
            X, C0 = make_data(n, d, k, dtype)
            ts: dict[bool, list[float]] = {False: [], True: []}
            arbf.kmeans(X, k, init=C0, max_iter=1, tol=0)  # warm-up
            for _ in range(args.repeats):
                for pin in (False, True):
                    runtime.PIN_THREADS = pin
                    time.sleep(args.idle)
                    t = time.perf_counter()
                    arbf.kmeans(X, k, init=C0, max_iter=1, tol=0)
                    ts[pin].append((time.perf_counter() - t) * 1e3)
            off, on = float(np.median(ts[False])), float(np.median(ts[True]))
            print(f"| {n} | {d} | {k} | {dtype} | {off:.1f} | {on:.1f} | {on / off:.2f} |",
                  flush=True)  # fmt: skip
    runtime.PIN_THREADS = True


if __name__ == "__main__":
    main()
