"""Quality of deterministic annealing against k-means++ restarts: final inertia and time.

For every instance (overlapping and unbalanced Gaussian mixtures with k in
{10, 25, 50, 100} in 2 to 64 dimensions, and scikit-learn's bundled digits, wine and
breast-cancer sets) one run compares, side by side:

- ``km++ x1``: :func:`arbf.kmeans` with greedy k-means++, ``n_init=1`` (the mean
  inertia and time of the ten single runs that make up ``km++ x10``);
- ``km++ x10``: :func:`arbf.kmeans`, k-means++, ``n_init=10`` (the reference: inertia
  ratios are relative to its best-of-10 inertia, time ratios to its wall time);
- ``rand x10``: :func:`arbf.kmeans`, ``init="random"``, ``n_init=10``;
- ``skl x10``: :class:`sklearn.cluster.KMeans`, k-means++, ``n_init=10`` (lloyd);
- ``DA soft`` / ``DA ent``: deterministic annealing (:func:`arbf.anneal_init`, default
  options, softmax / entmax-1.5 responsibilities, then its utility-based center swaps)
  followed by :func:`arbf.kmeans` from those centers (``n_init=1``): what
  ``arbf.kmeans(X, k, init="anneal")`` does;
- ``DA soft -sw`` / ``DA ent -sw``: the same without the swaps (``refine=0``): the
  annealing alone, then Lloyd;
- ``km++ +sw``: one k-means++ run followed by the same center swaps (3 failures in a
  row), to show what the swaps alone give.

All runs use float64 NumPy input, ``random_state=0``, default tolerances.  Each cell
shows ``inertia / best-of-10 k-means++ inertia``, ``wall time / km++ x10 wall time``
and, in parentheses, the same ratio of process CPU times.  The summary lines give, for
each annealing variant, the fraction of instances where its inertia is <= the
best-of-10 k-means++ inertia (relative slack 1e-9 for rounding) and its time ratios.
Each cell is timed once, after a warm-up (numba compilation); on a shared machine the
wall-time ratios are noisy, the CPU-time ratios less so.

Usage::

    python benchmarks/bench_anneal_quality.py            # the full table
    python benchmarks/bench_anneal_quality.py --quick    # three small instances

``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``, when set, pin OpenBLAS to a slow kernel;
the benchmark re-executes itself without them unless ``--keep-blas-env`` is given.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_FLAG = "_ARBF_BENCH_REEXEC"
TIE_RTOL = 1e-9


# --------------------------------------------------------------------------------------
# instances
# --------------------------------------------------------------------------------------


def gaussian_mixture(
    n: int, k: int, d: int, *, sep: float, imbalance: float, seed: int
) -> np.ndarray:
    """``k`` Gaussian clusters in ``d`` dimensions that overlap.

    Means are drawn uniformly in a cube and rescaled so that the median distance from a
    mean to its nearest other mean is ``sep`` (in units of the typical within-cluster
    standard deviation 1); cluster standard deviations vary in [0.5, 1.5].  Sizes are
    proportional to ``j ** -imbalance`` for ``j = 1..k`` (0: balanced; 1: the largest
    cluster is ``k`` times the smallest), in shuffled order.
    """
    rng = np.random.default_rng(seed)
    M = rng.uniform(-1, 1, (k, d))
    dist = np.sqrt(((M[:, None, :] - M[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    M *= sep / np.median(dist.min(1))
    p = np.arange(1, k + 1, dtype=float) ** -imbalance
    p = rng.permutation(p / p.sum())
    labels = rng.choice(k, size=n, p=p)
    scale = rng.uniform(0.5, 1.5, k)
    return M[labels] + rng.standard_normal((n, d)) * scale[labels, None]


def _standardise(X: np.ndarray) -> np.ndarray:
    sd = X.std(0)
    return (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)


@dataclass
class Instance:
    name: str
    k: int
    make: Callable[[], np.ndarray]


def _gmm(n: int, k: int, d: int, sep: float, imb: float, seed: int) -> Instance:
    kind = "unbal" if imb > 0 else "bal"
    return Instance(
        f"gmm {kind} sep{sep:g}",
        k,
        lambda: gaussian_mixture(n, k, d, sep=sep, imbalance=imb, seed=seed),
    )


def _sk(name: str, k: int, standardise: bool) -> Instance:
    def make() -> np.ndarray:
        from sklearn import datasets

        loader = {
            "digits": datasets.load_digits,
            "wine": datasets.load_wine,
            "breast_cancer": datasets.load_breast_cancer,
        }[name]
        X = np.asarray(loader().data, dtype=np.float64)
        return _standardise(X) if standardise else X

    return Instance(f"{name}{' (std)' if standardise else ''}", k, make)


def instances(quick: bool) -> list[Instance]:
    if quick:
        return [
            _gmm(600, 10, 2, 2.5, 0.0, 1),
            _gmm(800, 10, 8, 3.0, 1.0, 2),
            _sk("wine", 3, True),
        ]
    return [
        _gmm(2000, 10, 2, 2.5, 0.0, 1),
        _gmm(3000, 10, 16, 3.0, 1.0, 2),
        _gmm(4000, 25, 2, 3.0, 1.0, 3),
        _gmm(4000, 25, 32, 2.5, 0.0, 4),
        _gmm(5000, 50, 4, 3.0, 1.0, 5),
        _gmm(5000, 50, 64, 3.0, 1.0, 6),
        _gmm(6000, 100, 2, 3.0, 0.0, 7),
        _gmm(6000, 100, 8, 3.0, 1.0, 8),
        _sk("digits", 10, False),
        _sk("digits", 50, False),
        _sk("wine", 3, True),
        _sk("wine", 10, True),
        _sk("breast_cancer", 2, True),
        _sk("breast_cancer", 10, True),
    ]


# --------------------------------------------------------------------------------------
# runners
# --------------------------------------------------------------------------------------


def _timed(f: Callable[[], float]) -> tuple[float, float, float]:
    t_cpu, t_wall = time.process_time(), time.perf_counter()
    inertia = f()
    return inertia, time.perf_counter() - t_wall, time.process_time() - t_cpu


def _anneal_init() -> Callable[..., Any]:
    import arbf

    if hasattr(arbf, "anneal_init"):
        return arbf.anneal_init
    from arbf._drivers.deterministic_annealing import anneal_init

    return anneal_init


def runners(k: int, X: np.ndarray, anneal_options: dict[str, Any]) -> dict[str, Callable]:
    import arbf

    def arbf_km(init: str, n_init: int) -> Callable[[], float]:
        return lambda: float(arbf.kmeans(X, k, init=init, n_init=n_init, random_state=0).inertia)

    def sklearn_km() -> float:
        from sklearn.cluster import KMeans

        return float(KMeans(k, n_init=10, random_state=0).fit(X).inertia_)

    def anneal(kind: str, **extra: Any) -> Callable[[], float]:
        def run() -> float:
            opts = {**anneal_options, **extra}
            C = _anneal_init()(X, k, kind=kind, random_state=0, **opts)
            return float(arbf.kmeans(X, k, init=C, n_init=1).inertia)

        return run

    def kmeanspp_swaps() -> float:
        # the same center swaps after one k-means++ run: what the swaps alone give
        from arbf._backend import array_namespace
        from arbf._drivers.deterministic_annealing import _swap_refine

        C = arbf.kmeans(X, k, n_init=1, random_state=0).centers
        rng = np.random.default_rng(0)
        C, _, _ = _swap_refine(
            X, C, None, rng, xp=array_namespace(X), max_fail=3, working_memory=None
        )
        return float(arbf.kmeans(X, k, init=C, n_init=1).inertia)

    return {
        "km++ +sw": kmeanspp_swaps,
        "km++ x10": arbf_km("k-means++", 10),
        "rand x10": arbf_km("random", 10),
        "skl x10": sklearn_km,
        "DA soft": anneal("softmax"),
        "DA ent": anneal("entmax15"),
        "DA soft -sw": anneal("softmax", refine=0),
        "DA ent -sw": anneal("entmax15", refine=0),
    }


COLUMNS = [
    "km++ x1",
    "km++ x10",
    "rand x10",
    "skl x10",
    "km++ +sw",
    "DA soft",
    "DA ent",
    "DA soft -sw",
    "DA ent -sw",
]
ANNEAL = ["DA soft", "DA ent", "DA soft -sw", "DA ent -sw"]
SUMMARISED = [*ANNEAL, "km++ +sw"]


def run_instance(inst: Instance, anneal_options: dict[str, Any]) -> dict[str, Any]:
    import arbf

    X = np.ascontiguousarray(inst.make(), dtype=np.float64)
    res: dict[str, Any] = {"name": inst.name, "n": X.shape[0], "d": X.shape[1], "k": inst.k}
    out: dict[str, tuple[float, float, float]] = {}
    for name, f in runners(inst.k, X, anneal_options).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = _timed(f)
    # the single runs: the ten runs of km++ x10 (same seeds), mean inertia and time
    singles = arbf.kmeans(X, inst.k, n_init=10, random_state=0).n_init_inertia
    out["km++ x1"] = (
        float(np.mean(singles)),
        out["km++ x10"][1] / 10,
        out["km++ x10"][2] / 10,
    )
    res["ref"] = out["km++ x10"][0]
    res["runs"] = out
    return res


# --------------------------------------------------------------------------------------
# table
# --------------------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    head = f"| {'instance':<22} | {'n':>5} | {'d':>2} | {'k':>3} | {'best km++ x10':>13} | "
    head += " | ".join(f"{c:>22}" for c in COLUMNS) + " |"
    parts = head.strip("|").split("|")
    sep = (
        "|"
        + "|".join(
            "-" * len(q) if i < 1 else "-" * (len(q) - 1) + ":" for i, q in enumerate(parts)
        )
        + "|"
    )
    lines = [head, sep]
    for r in results:
        ref, t_ref = r["ref"], r["runs"]["km++ x10"][1]
        cells = []
        for c in COLUMNS:
            inertia, wall, cpu = r["runs"][c]
            mark = "*" if c in SUMMARISED and inertia <= ref * (1 + TIE_RTOL) else " "
            cpu_ref = max(r["runs"]["km++ x10"][2], 1e-9)
            cells.append(f"{inertia / ref:.4f}{mark} {wall / t_ref:5.2f}x ({cpu / cpu_ref:4.1f})")
        lines.append(
            f"| {r['name']:<22} | {r['n']:>5} | {r['d']:>2} | {r['k']:>3} | {ref:>13.6g} | "
            + " | ".join(f"{c:>22}" for c in cells)
            + " |"
        )
    return "\n".join(lines)


def summary(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for c in SUMMARISED:
        wins = sum(r["runs"][c][0] <= r["ref"] * (1 + TIE_RTOL) for r in results)
        better = sum(r["runs"][c][0] < r["ref"] * (1 - TIE_RTOL) for r in results)
        ratios = [r["runs"][c][1] / r["runs"]["km++ x10"][1] for r in results]
        cpu = [r["runs"][c][2] / max(r["runs"]["km++ x10"][2], 1e-9) for r in results]
        cpu_total = sum(r["runs"][c][2] for r in results) / sum(
            r["runs"]["km++ x10"][2] for r in results
        )
        fast = sum(x <= 3 for x in ratios)
        total = sum(r["runs"][c][1] for r in results) / sum(
            r["runs"]["km++ x10"][1] for r in results
        )
        lines.append(
            f"SUMMARY {c}: inertia <= best-of-10 k-means++ on {wins}/{len(results)} "
            f"instances ({wins / len(results):.0%}; strictly lower on {better}); wall time "
            f"vs km++ x10: total {total:.2f}x, median {statistics.median(ratios):.2f}x, "
            f"max {max(ratios):.2f}x, <= 3x on {fast}/{len(results)}; CPU time: total "
            f"{cpu_total:.2f}x, median {statistics.median(cpu):.2f}x, max {max(cpu):.2f}x"
        )
    return lines


def _maybe_reexec(argv: list[str], keep: bool) -> None:
    if keep or os.environ.get(_REEXEC_FLAG) or not any(v in os.environ for v in _BLAS_ENV):
        return
    env = {key: val for key, val in os.environ.items() if key not in _BLAS_ENV}
    env[_REEXEC_FLAG] = "1"
    print("(re-executing without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE)", flush=True)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)


def _warm_up() -> None:
    import arbf

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arbf.kmeans(X, 4, n_init=2, random_state=0)
        arbf.kmeans(X, 4, init="random", n_init=2, random_state=0)
        for kind in ("softmax", "entmax15"):
            _anneal_init()(X, 4, kind=kind, random_state=0)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="three small instances (smoke run)")
    p.add_argument("--only", default=None, help="run only instances whose name contains this")
    p.add_argument("--keep-blas-env", action="store_true")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra keyword for arbf.anneal_init (e.g. cooling=0.9)",
    )
    args = p.parse_args(argv)
    if __name__ == "__main__":
        _maybe_reexec(argv, args.keep_blas_env)
    opts: dict[str, Any] = {}
    for o in args.option:
        key, val = o.split("=", 1)
        opts[key] = int(val) if val.isdigit() else float(val)
    import arbf

    print(
        f"arbf {arbf.__version__}, numpy {np.__version__}, python {platform.python_version()}"
        f", {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        + (f", options {opts}" if opts else "")
    )
    print(
        "cells: inertia / best-of-10 k-means++ inertia (* = annealing <= it), "
        "wall time / km++ x10 wall time"
    )
    _warm_up()
    results = []
    for inst in instances(args.quick):
        if args.only and args.only not in inst.name:
            continue
        results.append(run_instance(inst, opts))
        print(table(results[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(results))
    for line in summary(results):
        print(line)
    return results


if __name__ == "__main__":
    main()
