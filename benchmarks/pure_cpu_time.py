"""The pure Array API route (``fast_paths=False``) of two checkouts by process CPU time
(``--what soft``: one hard and one soft pass of ``bench_rbf.py`` instead).

On a shared machine the wall-clock time of this route swings by up to 1.6x between runs;
the CPU time of a single-threaded run barely moves with other processes' load.  Each
checkout runs one Lloyd iteration of ``arbf.kmeans`` (same data, same init) ``--runs``
times in its own process, BLAS limited to one thread; the trees alternate for
``--rounds`` rounds; the minimum CPU time of every (shape, dtype, tree) is printed:
user time (the computation) and user + system time.

The system time is mostly page faults on the chunks' temporaries, and how many there are
depends on the process' heap layout: glibc's ``free`` returns the top of the heap to the
kernel when more than a threshold is free there ("trimming"), and the next chunk then
faults those pages in again.  Whether a chunk's temporaries end up at the top depends on
everything allocated before (it changes with ``PYTHONHASHSEED`` in either tree: 7,800 to
26,000 faults per iteration at (10^6, 16, 16) float64), not on the computation.  Round
``r`` therefore runs both trees with ``PYTHONHASHSEED=r``, and ``--malloc fixed`` (the
default) runs both with trimming off and glibc's largest mmap threshold
(``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``): then both trees take the same
~600 faults per iteration and the system time measures the work.  ``--malloc default``
keeps glibc's heuristics.  Each cell prints the minimum and the median over rounds.

Usage::

    git worktree add /tmp/before <commit>
    python benchmarks/pure_cpu_time.py /tmp/before . --rounds 8
    python benchmarks/pure_cpu_time.py /tmp/before . --rounds 8 --malloc default

(docs/architecture.md, "Re-measured on main").  ``--what soft`` times, per process, the
passes of ``bench_rbf.py`` (the NumPy kernels: ``lloyd_sums``, and ``soft_stats`` with
softmax, entmax-1.5 and one-hot entmax-1.5 responsibilities) and prints one table per
pass.  A checkout from before
``arbf.config_context`` existed is switched with ``arbf._math.fast_numpy.ENABLED``.
"""

from __future__ import annotations

import argparse
import os
import statistics
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

SOFT_PROBE = r"""
import sys, resource, numpy as np, array_api_compat.numpy as xp
try:
    from arbf._math.seam import lloyd_sums, soft_stats
except ImportError:  # before the refactor
    from arbf._math.distances import lloyd_sums
    from arbf._math.rbf_objectives import soft_stats_impl as soft_stats
n, d, k = map(int, sys.argv[1].split(",")); dt = sys.argv[2]; runs = int(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.normal(size=(n, d)).astype(dt); C = X[rng.choice(n, k, replace=False)].copy()
s = float(np.mean(np.var(X, axis=0))) * 0.5
passes = {
    "hard": lambda: lloyd_sums(X, C, None, xp=xp),
    "softmax": lambda: soft_stats(X, C, None, sigma=s, kind="softmax", xp=xp),
    "entmax15": lambda: soft_stats(X, C, None, sigma=s, kind="entmax15", xp=xp),
    "entmax15 1-hot": lambda: soft_stats(X, C, None, sigma=s * 1e-12, kind="entmax15", xp=xp),
}
usage = lambda: resource.getrusage(resource.RUSAGE_SELF)
out = []
for f in passes.values():
    f()
    us, ts = [], []
    for _ in range(runs):
        r0 = usage(); f(); r1 = usage()
        us.append((r1.ru_utime - r0.ru_utime) * 1e3)
        ts.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1e3)
    out += [min(us), min(ts)]
print(*out)
"""
SOFT_PASSES = ("hard", "softmax", "entmax15", "entmax15 1-hot")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--malloc", choices=("fixed", "default"), default="fixed")
    ap.add_argument("--what", choices=("pure", "soft"), default="pure")
    a = ap.parse_args()
    env1 = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1"}  # fmt: skip
    if a.malloc == "fixed":  # no trimming; glibc's largest dynamic mmap threshold (32 MiB)
        env1 |= {"MALLOC_TRIM_THRESHOLD_": str(2**40), "MALLOC_MMAP_THRESHOLD_": str(2**25)}
    probe, names = (PROBE, ("",)) if a.what == "pure" else (SOFT_PROBE, SOFT_PASSES)
    seen: dict[tuple[str, str, str, str], list[tuple[float, float]]] = {}
    for r in range(a.rounds):
        for shape in SHAPES:
            for dt in ("float32", "float64"):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for name in order:
                    tree = os.path.abspath(getattr(a, name))
                    env = {**os.environ, **env1, "PYTHONPATH": tree, "PYTHONHASHSEED": str(r)}
                    out = subprocess.run(
                        [sys.executable, "-c", probe, shape, dt, str(a.runs)],
                        cwd=tree, env=env, capture_output=True, text=True, check=True,
                    ).stdout  # fmt: skip
                    vals = [float(v) for v in out.split()[-2 * len(names) :]]
                    for i, pass_ in enumerate(names):
                        key = (pass_, shape, dt, name)
                        seen.setdefault(key, []).append((vals[2 * i], vals[2 * i + 1]))
    print(
        f"malloc={a.malloc}, {a.rounds} rounds x {a.runs} runs; min over rounds "
        "(median over rounds)"
    )
    for pass_ in names:
        if pass_:
            print(f"\n{pass_}:")
        print("| n,d,k | dtype | user ms before | after | after / before "
              "| user+sys ms before | after | after / before |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for shape in SHAPES:
            for dt in ("float32", "float64"):
                cells = []
                for col in (0, 1):
                    b = [v[col] for v in seen[(pass_, shape, dt, "before")]]
                    f = [v[col] for v in seen[(pass_, shape, dt, "after")]]
                    lo = (min(b), min(f))
                    mid = (statistics.median(b), statistics.median(f))
                    cells.append(f"{lo[0]:.0f} ({mid[0]:.0f}) | {lo[1]:.0f} ({mid[1]:.0f}) "
                                 f"| {lo[1] / lo[0]:.2f} ({mid[1] / mid[0]:.2f})")  # fmt: skip
                print(f"| {shape} | {dt} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
