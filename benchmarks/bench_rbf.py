"""Benchmark of the RBF relaxation, peers side by side in one run (issue 3, point 8).

1. ``arbf.entmax15`` on NumPy and PyTorch-CPU against the ``entmax`` package
   (``entmax.entmax15``, PyTorch) at (rows, k) = (1e6, 16) and (2e5, 256), float32.
   Target: arbf ≤ 1.0× the entmax package.
2. One soft Lloyd iteration (softmax and entmax-1.5 responsibilities, ``soft_stats``)
   against one hard Lloyd iteration (``arbf.kmeans(..., max_iter=1, tol=0)``'s E+M pass,
   ``lloyd_sums``) on NumPy, at the K-Means benchmark shapes, float32 and float64; σ is
   half the mean feature variance, and for "entmax15 1-hot" 1e-12 times that (every row
   one-hot).  Target: soft ≤ 2× hard.

Run: ``python benchmarks/bench_rbf.py [--quick] [--repeats N] [--out FILE.md]``.
Ratios are what to read: the machine is shared and absolute times are noisy.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

_BLAS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _interleaved(runners: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds per call; the runners alternate within each round (after a warm-up
    call each), so every one sees the same machine load."""
    for run in runners.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_entmax(shapes: list[tuple[int, int]], repeats: int) -> list[dict[str, Any]]:
    import torch

    import arbf

    try:
        import entmax as entmax_pkg
    except ImportError:  # pragma: no cover
        entmax_pkg = None
    rows = []
    for n, k in shapes:
        z = np.random.default_rng(0).normal(size=(n, k)).astype(np.float32) * 3
        zt = torch.from_numpy(z.copy())
        row: dict[str, Any] = {"rows": n, "k": k}
        runners: dict[str, Callable[[], Any]] = {
            "arbf numpy": functools.partial(arbf.entmax15, z),
            "arbf torch": functools.partial(arbf.entmax15, zt),
        }
        if entmax_pkg is not None:
            runners["entmax pkg"] = functools.partial(entmax_pkg.entmax15, zt, dim=-1)
        with torch.no_grad():
            row.update(_interleaved(runners, repeats))
        if entmax_pkg is not None:
            ref = entmax_pkg.entmax15(zt, dim=-1).numpy()
            row["max |Δ|"] = float(np.max(np.abs(np.asarray(arbf.entmax15(z)) - ref)))
            row["numpy/pkg"] = row["arbf numpy"] / row["entmax pkg"]
            row["torch/pkg"] = row["arbf torch"] / row["entmax pkg"]
        rows.append(row)
    return rows


def bench_soft_vs_hard(
    shapes: list[tuple[int, int, int]], dtypes: list[str], repeats: int
) -> list[dict[str, Any]]:
    import array_api_compat.numpy as xp

    from arbf._math.seam import lloyd_sums
    from arbf._math.seam import soft_stats as soft_stats_impl

    rows = []
    for n, d, k in shapes:
        for dt in dtypes:
            rng = np.random.default_rng(0)
            X = rng.normal(size=(n, d)).astype(dt)
            C = X[rng.choice(n, k, replace=False)].copy()
            sigma = float(np.mean(np.var(X, axis=0))) * 0.5
            row: dict[str, Any] = {"n": n, "d": d, "k": k, "dtype": dt}
            runners: dict[str, Callable[[], Any]] = {
                "hard": functools.partial(lloyd_sums, X, C, None, xp=xp)
            }
            for kind in ("softmax", "entmax15"):
                runners[kind] = functools.partial(
                    soft_stats_impl, X, C, None, sigma=sigma, kind=kind, xp=xp
                )
            # below the exact temperature every entmax-1.5 row is one-hot (Theorem 4)
            runners["entmax15 1-hot"] = functools.partial(
                soft_stats_impl, X, C, None, sigma=sigma * 1e-12, kind="entmax15", xp=xp
            )
            row.update(_interleaved(runners, repeats))
            for kind in ("softmax", "entmax15", "entmax15 1-hot"):
                row[f"{kind}/hard"] = row[kind] / row["hard"]
            rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if v < 100 else f"{v:.0f}"
    return str(v)


def table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    for r in rows[1:]:
        cols += [c for c in r if c not in cols]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="also write the tables as markdown to this file")
    p.add_argument(
        "--keep-blas-env",
        action="store_true",
        help="keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (by default this process re-runs "
        "itself without them: they pin OpenBLAS to a slow kernel on this hardware)",
    )
    args = p.parse_args(argv)
    blas_env = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    if blas_env and not args.keep_blas_env:
        env = {k: v for k, v in os.environ.items() if k not in blas_env}
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)
    if args.quick:
        ent_shapes = [(20000, 16), (4000, 256)]
        km_shapes = [(20000, 16, 16)]
        dtypes = ["float32"]
    else:
        ent_shapes = [(1_000_000, 16), (200_000, 256)]
        km_shapes = [(200_000, 32, 64), (100_000, 128, 256), (1_000_000, 16, 16)]
        dtypes = ["float32", "float64"]
    head = (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}; median of {args.repeats} "
        f"interleaved rounds; OpenBLAS env: {[v for v in _BLAS if v in os.environ]}"
    )
    print(head)
    t1 = table(bench_entmax(ent_shapes, args.repeats))
    print("\nentmax15 (float32), seconds; ratio = arbf / entmax package\n" + t1)
    t2 = table(bench_soft_vs_hard(km_shapes, dtypes, args.repeats))
    print("\none soft vs one hard Lloyd iteration on NumPy, seconds\n" + t2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"{head}\n\n### entmax15\n\n{t1}\n\n### soft vs hard iteration\n\n{t2}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
