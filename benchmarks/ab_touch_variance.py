"""A/B of two memory-bound pieces of a full fit (docs/benchmarks.md), the kernels of
commit ``48065e7`` against the current ones, in one process, interleaved:

- **the bound steps**: a Hamerly or Yinyang step over one thread's chunk, replayed from
  the state a real fit had at a given step (``benchmarks/bench_kmeans.py``'s data).  The
  current kernels first touch the scattered rows that failed a bound test in a short
  loop, so their cache misses overlap, before the distance loop;
- **the tolerance scale** ``mean(var(X, axis=0))``: the old kernel (scikit-learn's value,
  to the bit) added a runtime-length run of columns per row into a slice of its output,
  on two threads splitting the columns; the current one is the float64 variance from
  the threaded sweep that also gives the extent and the means (since 2026-12-03, late).

Prints the median ms of each and whether the two give the same bits.  The old modules are
loaded from git (``git show 48065e7:...``) into temporary files next to the current ones,
removed on exit with their numba cache files.  Run it from a clone with history:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_touch_variance.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import arbf
from arbf._math.kernels import bounds as bounds_new
from arbf._math.kernels import hard as hard_new

OLD = "48065e7"
sys.path.insert(0, str(Path(__file__).parent))
from _old_kernels import old_kernels  # noqa: E402
from bench_kmeans import make_data  # noqa: E402


def _capture(X: np.ndarray, C0: np.ndarray, method: str, step: int) -> list[Any] | None:
    """The arguments of the ``step``-th bound step's first chunk in a default fit."""
    ks = bounds_new._get_kernels()
    orig = ks[method]
    seen: list[Any] = []
    saved: list[Any] = []

    def spy(*a: Any) -> None:
        if len(seen) == step and not saved:
            saved.extend(x.copy() if isinstance(x, np.ndarray) else x for x in a)
        seen.append(None)
        orig(*a)

    ks[method] = spy
    try:
        with arbf.config_context(n_threads=1):
            arbf.kmeans(X, C0.shape[0], init=C0, n_init=1, algorithm=method)
    finally:
        ks[method] = orig
    return saved or None


def _interleave(runs: dict[str, Any], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats + 1):
        for name in list(runs)[:: 1 if r % 2 else -1]:
            t = time.perf_counter()
            runs[name]()
            if r:
                times[name].append(time.perf_counter() - t)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    args = p.parse_args()
    steps = (
        [(20_000, 8, 6, "hamerly", 0), (20_000, 40, 30, "yinyang", 2)]
        if args.quick
        else [
            (1_000_000, 16, 16, "hamerly", 8),
            (200_000, 32, 64, "hamerly", 20),
            (100_000, 128, 256, "yinyang", 6),
            (50_000, 256, 64, "yinyang", 6),
        ]
    )
    shapes = [(20_000, 13), (5_000, 40)] if args.quick else [
        (1_000_000, 16), (200_000, 32), (100_000, 128), (50_000, 256)
    ]  # fmt: skip
    with old_kernels(OLD) as load:
        bounds_old = load("_ab_bounds_old", "arbf/_math/kernels/bounds.py")
        hard_old = load("_ab_hard_old", "arbf/_math/kernels/hard.py")
        old_k, new_k = bounds_old._get_kernels(), bounds_new._get_kernels()
        print("bound step | shape | dtype | old ms | new ms | new / old | same bits")
        for n, d, k, method, step in steps:
            for dt in ("float32", "float64"):
                X, C0 = make_data(n, d, k, dt)
                saved = _capture(X, C0, method, step)
                if saved is None:
                    print(f"{method} | ({n}, {d}, {k}) | {dt} | no step {step} |")
                    continue
                outs: dict[str, list[Any]] = {}

                def run(name: str, kern: Any, saved: list[Any] = saved, outs: dict = outs) -> None:
                    a = [x.copy() if isinstance(x, np.ndarray) else x for x in saved]
                    kern(*a)
                    outs[name] = a

                ms = _interleave(
                    {
                        "old": lambda m=method: run("old", old_k[m]),
                        "new": lambda m=method: run("new", new_k[m]),
                    },
                    args.repeats,
                )
                same = all(
                    np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
                    for a, b, s in zip(outs["old"], outs["new"], saved, strict=True)
                    if isinstance(a, np.ndarray) and s.size > 300  # the state, not scratch
                )
                print(f"{method} | ({n}, {d}, {k}) | {dt} | {ms['old']:.2f} | "
                      f"{ms['new']:.2f} | {ms['new'] / ms['old']:.2f} | {same}")  # fmt: skip
        print()
        # the current tolerance scale is the float64 variance from one threaded sweep
        # (no longer NumPy's float32 bits): "same" is the old kernel equal to NumPy's
        # bits and the current one within 1e-12 of the float64 variance
        print("tolerance scale | shape | dtype | old ms | new ms | new / old | same")
        for n, d in shapes:
            for dt in ("float32", "float64"):
                X = make_data(n, d, 4, dt)[0]
                ms = _interleave(
                    {
                        "old": lambda X=X: hard_old.mean_variance(X),
                        "new": lambda X=X: hard_new.mean_variance(X),
                    },
                    args.repeats,
                )
                ref = float(np.mean(np.var(X, axis=0)))
                ref64 = float(np.mean(np.var(X.astype(np.float64), axis=0)))
                new = hard_new.mean_variance(X)
                same = hard_old.mean_variance(X) == ref and abs(new - ref64) <= 1e-12 * ref64
                print(f"mean_variance | ({n}, {d}) | {dt} | {ms['old']:.2f} | "
                      f"{ms['new']:.2f} | {ms['new'] / ms['old']:.2f} | {same}")  # fmt: skip


if __name__ == "__main__":
    main()
