"""A/B of the first-minimum scans of the hard pass (docs/benchmarks.md): one center per
sweep over the rows (``best[i] = v if v < best[i] else best[i]``, the previous kernels)
against four centers per sweep with each row's running minimum in registers
(:func:`arbf._math.kernels.hard._take_python`, the current ones).

LLVM compiles the one-center form into masked vector loads and stores
(``vmaskmovps`` / ``vpmaskmovq``), which are cheap with AVX-512 mask registers but
microcoded on AMD Zen processors.  The script prints

1. the scan alone, in ns per score (``k x rows`` float32/float64 scores, with exact
   ties and NaN scores; both forms give the same labels and minima, asserted), and
2. one-iteration ``arbf.kmeans`` fits at the K-Means benchmark shapes, the two kernels
   interleaved in one process (median ms, ratio new / old), and the processor.

Run it as the K-Means benchmark runs itself, without the machines' OpenBLAS kernel pins:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_argmin_unroll.py
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numba
import numpy as np

import arbf
from arbf._math.kernels import hard

sys.path.insert(0, str(Path(__file__).parent))
from bench_kmeans import FULL_SHAPES, _cpu_model, make_data


def _old_argmin_python(GT, c_sq, labels, best):  # the previous scan: one center per sweep
    k, m = GT.shape
    c0 = c_sq[0]
    for i in range(m):
        g = GT[0, i]
        best[i] = c0 - (g + g)
        labels[i] = 0
    for j in range(1, k):
        cj = c_sq[j]
        for i in range(m):
            g = GT[j, i]
            v = cj - (g + g)
            b = best[i]
            lt = v < b
            best[i] = v if lt else b
            labels[i] = j if lt else labels[i]


def _old_certify_python(sq, GT, c_sq32, cmax, rel, csq_term, abs_term, labels, best, second, fail):
    k, m = GT.shape
    c0 = c_sq32[0]
    inf = np.float32(np.inf)
    for i in range(m):
        g = GT[0, i]
        best[i] = c0 - (g + g)
        second[i] = inf
        labels[i] = 0
    for j in range(1, k):
        cj = c_sq32[j]
        for i in range(m):
            g = GT[j, i]
            v = cj - (g + g)
            b = best[i]
            s = second[i]
            lt = v < b
            hi = b if lt else v
            second[i] = hi if hi < s else s
            best[i] = v if lt else b
            labels[i] = j if lt else labels[i]
    flagged = 0
    for i in range(m):
        xn = math.sqrt(sq[i]) * 1.0009765625
        bound = rel * xn * cmax + csq_term + abs_term * (1.0 + xn + cmax)
        gap = np.float64(second[i] - best[i])
        ok = xn < 2.0**120 and xn * cmax < 2.0**100 and gap > 2.0 * bound
        fail[i] = 0 if ok else 1
        flagged += 0 if ok else 1
    return flagged


_strict = numba.njit(nogil=True, fastmath=False)
_NAMES = ("chunk", "chunk_shift", "certify")


def _variants() -> dict[str, dict[str, Any]]:
    kernels = hard._get_kernels()
    new = {"argmin": hard._argmin, **{name: kernels[name] for name in _NAMES}}
    old_argmin = _strict(_old_argmin_python)
    old = {
        "argmin": old_argmin,
        "chunk": _strict(hard._chunk_python),  # compiled (lazily) while _argmin is the old one
        "chunk_shift": _strict(hard._chunk_shift_python),
        "certify": _strict(_old_certify_python),
    }
    return {"old": old, "new": new}


@contextmanager
def _use(variant: dict[str, Any]):
    kernels = hard._get_kernels()
    saved = {"argmin": hard._argmin, **{name: kernels[name] for name in _NAMES}}
    hard._argmin = variant["argmin"]  # a compile inside sees this one
    kernels.update({name: variant[name] for name in _NAMES})
    try:
        yield
    finally:
        hard._argmin = saved["argmin"]
        kernels.update({name: saved[name] for name in _NAMES})


def scan_alone(variants: dict[str, dict[str, Any]], repeats: int = 300) -> None:
    print("scan alone (ns per score)")
    for dtype in (np.float32, np.float64):
        for k, m in [(300, 720), (256, 512), (64, 2048), (16, 5461), (5, 4000)]:
            rng = np.random.default_rng(0)
            GT = rng.standard_normal((k, m)).astype(dtype)
            c = rng.standard_normal(k).astype(dtype)
            GT[:, ::7] = GT[0, ::7]  # exact ties in every seventh row
            c[:] = c[0]
            GT[3 % k, 5] = np.nan
            out = {}
            times = {}
            for name, v in variants.items():
                lab, best = np.empty(m, np.intp), np.empty(m, dtype)
                v["argmin"](GT, c, lab, best)
                out[name] = (lab, best)
                t0 = time.perf_counter()
                for _ in range(repeats):
                    v["argmin"](GT, c, lab, best)
                times[name] = (time.perf_counter() - t0) / repeats / (k * m) * 1e9
            (la, ba), (lb, bb) = out["old"], out["new"]
            assert np.array_equal(la, lb) and np.array_equal(ba, bb, equal_nan=True)
            print(
                f"  {np.dtype(dtype).name} k={k} rows={m}: old {times['old']:.3f}, "
                f"new {times['new']:.3f} ({times['new'] / times['old']:.2f}x)"
            )


def fits(variants: dict[str, dict[str, Any]], shapes: list[tuple[int, int, int]],
         repeats: int) -> None:  # fmt: skip
    print("\none-iteration arbf.kmeans (median ms; new / old)")
    for dtype in ("float32", "float64"):
        for n, d, k in shapes:
            X, C0 = make_data(n, d, k, dtype)[:2]
            res = {}
            times: dict[str, list[float]] = {name: [] for name in variants}

            def run(X: np.ndarray = X, k: int = k, C0: np.ndarray = C0) -> Any:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return arbf.kmeans(X, k, init=C0, n_init=1, max_iter=1, tol=0)

            for name, v in variants.items():
                with _use(v):
                    res[name] = run()
            for _ in range(repeats):
                for name, v in variants.items():
                    with _use(v):
                        t0 = time.perf_counter()
                        run()
                        times[name].append(time.perf_counter() - t0)
            same = np.array_equal(res["old"].labels, res["new"].labels) and np.array_equal(
                res["old"].centers, res["new"].centers
            )
            med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
            print(
                f"  ({n}, {d}, {k}) {dtype}: old {med['old']:.1f}, new {med['new']:.1f} "
                f"({med['new'] / med['old']:.2f}x), same result: {same}",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    args = p.parse_args()
    print(f"{_cpu_model()} ({platform.machine()})")
    variants = _variants()
    scan_alone(variants, repeats=20 if args.quick else 300)
    shapes = [(3000, 8, 5), (2000, 16, 140)] if args.quick else FULL_SHAPES
    fits(variants, shapes, args.repeats)


if __name__ == "__main__":
    main()
