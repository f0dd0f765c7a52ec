"""The pure Array API route (``fast_paths=False``) of two checkouts by process CPU time.

On a shared machine the wall-clock time of this route swings by up to 1.6x between runs;
the CPU time of a single-threaded run barely moves with other processes' load.  Each
checkout runs one Lloyd iteration of ``arbf.kmeans`` (same data, same init) ``--runs``
times in its own process, BLAS limited to one thread; the trees alternate for
``--rounds`` rounds; the minimum CPU time of every (shape, dtype, tree) is printed:
user time (the computation) and user + system time.

The system time is mostly page faults on the chunks' temporaries, and how many there are
depends on the process' heap layout (glibc returns freed blocks to the kernel or keeps
them by heuristics): it changes with ``PYTHONHASHSEED`` in either tree (from 40 to 260 ms
per iteration at (10^6, 16, 16) float64).  Round ``r`` therefore runs both trees with
``PYTHONHASHSEED=r``, so that they see the same layouts.

Usage::

    git worktree add /tmp/before <commit>
    python benchmarks/pure_cpu_time.py /tmp/before . --rounds 3

(docs/architecture.md, "Re-measured on main").  A checkout from before
``arbf.config_context`` existed is switched with ``arbf._math.fast_numpy.ENABLED``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

SHAPES = ["200000,32,64", "100000,128,256", "1000000,16,16"]

PROBE = r"""
import sys, time, numpy as np, arbf
n, d, k = map(int, sys.argv[1].split(",")); dt = sys.argv[2]; runs = int(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.normal(size=(n, d)).astype(dt); C0 = X[rng.choice(n, k, replace=False)].copy()
def one():
    if hasattr(arbf, "config_context"):
        with arbf.config_context(fast_paths=False):
            arbf.kmeans(X, k, init=C0, n_init=1, max_iter=1, tol=0.0)
    else:
        from arbf._math import fast_numpy
        old, fast_numpy.ENABLED = fast_numpy.ENABLED, False
        try:
            arbf.kmeans(X, k, init=C0, n_init=1, max_iter=1, tol=0.0)
        finally:
            fast_numpy.ENABLED = old
one()  # warm-up (imports, first-call costs)
import resource
us, ts = [], []
usage = lambda: resource.getrusage(resource.RUSAGE_SELF)
for _ in range(runs):
    r0 = usage(); one(); r1 = usage()
    us.append((r1.ru_utime - r0.ru_utime) * 1e3)
    ts.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1e3)
print(min(us), min(ts))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=6)
    a = ap.parse_args()
    env1 = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1"}  # fmt: skip
    best: dict[tuple[str, str, str], tuple[float, float]] = {}
    for r in range(a.rounds):
        for shape in SHAPES:
            for dt in ("float32", "float64"):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for name in order:
                    tree = os.path.abspath(getattr(a, name))
                    env = {**os.environ, **env1, "PYTHONPATH": tree, "PYTHONHASHSEED": str(r)}
                    out = subprocess.run(
                        [sys.executable, "-c", PROBE, shape, dt, str(a.runs)],
                        cwd=tree, env=env, capture_output=True, text=True, check=True,
                    ).stdout  # fmt: skip
                    key = (shape, dt, name)
                    u, t = (float(v) for v in out.split()[-2:])
                    old = best.get(key, (float("inf"), float("inf")))
                    best[key] = (min(old[0], u), min(old[1], t))
    print("| n,d,k | dtype | user ms before | after | after / before "
          "| user+sys ms before | after | after / before |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        for dt in ("float32", "float64"):
            (bu, bt), (fu, ft) = best[(shape, dt, "before")], best[(shape, dt, "after")]
            print(f"| {shape} | {dt} | {bu:.0f} | {fu:.0f} | {fu / bu:.2f} "
                  f"| {bt:.0f} | {ft:.0f} | {ft / bt:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
