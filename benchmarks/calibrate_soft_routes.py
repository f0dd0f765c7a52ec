"""Calibrate the entmax-1.5 soft-sum route of the NumPy fast path (``arbf._math.kernels.soft``).

With a small support the kernel adds each nonzero ``p_ij x_i`` itself (row by row); with a
larger one it leaves ``(w p)^T X_c`` to one BLAS product.  The kernel picks the cheaper
by a cost model in nanoseconds:

    sparse ≈ a·m + b·(rows with > 1 center)·k + c·(support)·d
    dense  ≈ e·k·m·d + f·m·(k + d)

This script times both routes on one chunk (the chunk plan's rows) for d in 8..256 and
k in 8..1024, both dtypes, with a support of about 1.25 centers per row, fits the
coefficients by non-negative least squares on relative error, and reports how often the
fitted rule picks the faster route.  Usage: ``python benchmarks/calibrate_soft_routes.py``.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import nnls

from arbf._math.kernels import runtime
from arbf._math.kernels import soft as fast_soft


def measure(dtype: str) -> list[tuple[float, ...]]:
    fast_soft._get_kernels()
    sparse_sums = fast_soft._sparse_sums
    rows_out: list[tuple[float, ...]] = []
    for d in (8, 16, 32, 64, 128, 256):
        for k in (8, 16, 64, 256, 1024):
            m, _ = runtime.chunk_plan(200_000, k, d, np.dtype(dtype).itemsize, None)
            rng = np.random.default_rng(0)
            X = rng.normal(size=(m, d)).astype(dtype)
            lab = rng.integers(0, k, m).astype(np.intp)
            P = np.zeros((k, m), dtype)
            P[lab, np.arange(m)] = 1.0
            n_sup = np.ones(m)
            for i in np.nonzero(rng.random(m) < 0.2)[0]:  # a fifth of the rows: 2-3 centers
                P[rng.choice(k, min(k, 2), replace=False), i] = 0.3
                n_sup[i] = np.count_nonzero(P[:, i])
            sums, mass, prod = np.zeros((k, d)), np.zeros(k), np.empty((k, d), dtype)
            sparse_sums(P, X, lab, n_sup, m, sums, mass)
            np.dot(P, X, out=prod)
            reps = max(3, int(2e6 / (k * m)))
            t0 = time.perf_counter()
            for _ in range(reps):
                sparse_sums(P, X, lab, n_sup, m, sums, mass)
            t1 = time.perf_counter()
            for _ in range(reps):
                np.dot(P, X, out=prod)
            t2 = time.perf_counter()
            multi = float(np.count_nonzero(n_sup > 1))
            ts, tg = (t1 - t0) / reps * 1e9, (t2 - t1) / reps * 1e9
            rows_out.append((d, k, m, float(n_sup.sum()), multi, ts, tg))
    return rows_out


def main() -> int:
    for dtype in ("float32", "float64"):
        r = np.array(measure(dtype))
        d, k, m, supp, multi, ts, tg = r.T
        a_s = np.stack([m, multi * k, supp * d], 1)
        a_g = np.stack([k * m * d, m * (k + d)], 1)
        cs, _ = nnls(a_s / ts[:, None], np.ones(len(ts)))
        cg, _ = nnls(a_g / tg[:, None], np.ones(len(tg)))
        pick_sparse = a_s @ cs < a_g @ cg
        chosen = np.where(pick_sparse, ts, tg)
        best = np.minimum(ts, tg)
        print(f"{dtype}: sparse ns = {cs[0]:.2g} m + {cs[1]:.2g} multi k + {cs[2]:.2g} supp d")
        print(f"{' ' * len(dtype)}  dense ns  = {cg[0]:.2g} k m d + {cg[1]:.2g} m (k + d)")
        print(
            f"{' ' * len(dtype)}  fitted rule: mean time / best {np.mean(chosen / best):.3f}, "
            f"> 1.05x best in {int(np.sum(chosen > 1.05 * best))} of {len(ts)} shapes"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
