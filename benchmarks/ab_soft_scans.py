"""A/B of the soft pass's scans (docs/benchmarks.md): the soft-statistics kernels of
commit ``cecb052`` (one center per sweep in the nearest-center scan and in entmax-1.5's
first sweep; a float64 ``exp`` whose ``math.floor`` converted to int64) against the
current ones (four centers per sweep, registers; ``np.floor`` and an int32 conversion),
in one process, interleaved, on the data of ``benchmarks/bench_rbf.py``.  Prints the
median ms of each and whether the two give the same bits.

The old modules are loaded from git (``git show cecb052:...``) into temporary files next
to the current ones (so their relative imports resolve), removed on exit with their
numba cache files.  Run it from a clone with history:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_soft_scans.py

``--old COMMIT`` compares with another commit's soft kernels instead (``--old 4ea5e29``:
the one chunk kernel for every kind, before the split per kind).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _old_kernels import old_kernels

from arbf._math.kernels import soft as soft_new

OLD = "cecb052"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    p.add_argument("--old", default=OLD, help=f"the commit to compare with (default {OLD})")
    args = p.parse_args()
    shapes = (
        [(3000, 8, 5), (2000, 16, 12)]
        if args.quick
        else [(200_000, 32, 64), (100_000, 128, 256), (1_000_000, 16, 16)]
    )
    with old_kernels(args.old) as load:
        exp_old = load("_ab_exp_old", "arbf/_math/kernels/exp.py")
        soft_old = load("_ab_soft_old", "arbf/_math/kernels/soft.py")
        soft_old._exp = exp_old  # type: ignore[attr-defined]
        print("shape | kind | old ms | new ms | new / old | same bits")
        for n, d, k in shapes:
            for dt in ("float32", "float64"):
                rng = np.random.default_rng(0)
                X = rng.normal(size=(n, d)).astype(dt)
                C = X[rng.choice(n, k, replace=False)].copy()
                sigma = float(np.mean(np.var(X, axis=0))) * 0.5
                for kind, sg in (
                    ("softmax", sigma),
                    ("entmax15", sigma),
                    ("entmax15 1-hot", sigma * 1e-12),
                ):
                    kd = kind.split()[0]
                    runs = {
                        name: (
                            lambda m=mod, X=X, C=C, s=sg, kd=kd: m.soft_stats(
                                X, C, None, sigma=s, kind=kd
                            )
                        )
                        for name, mod in (("old", soft_old), ("new", soft_new))
                    }
                    res = {name: run() for name, run in runs.items()}
                    same = all(
                        np.array_equal(a, b) for a, b in zip(res["old"], res["new"], strict=True)
                    )
                    ts: dict[str, list[float]] = {"old": [], "new": []}
                    for r in range(args.repeats):
                        for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                            t0 = time.perf_counter()
                            runs[name]()
                            ts[name].append(time.perf_counter() - t0)
                    mo = statistics.median(ts["old"]) * 1e3
                    mn = statistics.median(ts["new"]) * 1e3
                    print(
                        f"({n}, {d}, {k}) {dt} | {kind} | {mo:.1f} | {mn:.1f} | "
                        f"{mn / mo:.2f} | {same}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
