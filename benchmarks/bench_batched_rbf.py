"""Batched RBF training against a loop of one-problem calls, side by side.

B problems of ``n x d`` float data (Gaussian blobs, a different layout per problem),
``k`` centers each, started from the first ``k`` rows:

- ``arbf.rbf_kmeans`` at a fixed σ (``tol=0``, ``--iters`` fixed-point iterations) and
  ``arbf.anneal`` (``--levels`` levels of the default schedule, ``--iters`` iterations
  at most per level, the hard finish), each as one batched call on ``X (B, n, d)``
  and ``arbf.deterministic_annealing`` (default options, ``k`` clusters),
- and as a Python loop of B one-problem calls on ``X[b]`` (the compiled one-problem
  kernels on NumPy and CPU torch).

Each row: median time over ``--repeats`` (batched and loop interleaved in every repeat),
the loop/batched ratio (> 1: the batched call is faster), and the largest difference
between the two results' centers (they agree to rounding).

Usage::

    python benchmarks/bench_batched_rbf.py            # (B, n, d, k) = (64, 4000, 16, 32)
    python benchmarks/bench_batched_rbf.py --quick    # a smoke test
    python benchmarks/bench_batched_rbf.py --backend torch   # CPU torch (or CUDA if any)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import arbf


def make_data(B: int, n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=5.0, size=(B, k, d))
    lab = rng.integers(0, k, size=(B, n))
    X = means[np.arange(B)[:, None], lab] + rng.normal(size=(B, n, d))
    return X, X[:, :k, :].copy()


def _time(f: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=64)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--levels", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.B, a.n, a.d, a.k, a.iters, a.levels, a.repeats = 8, 500, 4, 4, 5, 3, 2
    X: Any
    C: Any
    X, C = make_data(a.B, a.n, a.d, a.k)
    X, C = X.astype(a.dtype), C.astype(a.dtype)
    host = lambda v: np.asarray(v)  # noqa: E731
    if a.backend == "torch":
        import torch

        dev = "cuda" if torch.cuda.is_available() else "cpu"
        X, C = torch.asarray(X, device=dev), torch.asarray(C, device=dev)
        host = lambda v: v.cpu().numpy()  # noqa: E731
    rbf = {"sigma": 1.0, "tol": 0.0, "max_iter": a.iters}
    ann = {"n_levels": a.levels, "max_iter": a.iters}

    def gens() -> list[np.random.Generator]:  # fresh per call: the streams of random_state=0
        return np.random.default_rng(0).spawn(a.B)

    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "rbf_kmeans": (
            lambda: arbf.rbf_kmeans(X, C, **rbf).centers,
            lambda: [arbf.rbf_kmeans(X[b], C[b], **rbf).centers for b in range(a.B)],
        ),
        "anneal": (
            lambda: arbf.anneal(X, C, **ann).centers,
            lambda: [
                arbf.anneal(X[b], C[b], random_state=g, **ann).centers
                for b, g in enumerate(gens())
            ],
        ),
        "det. annealing": (
            lambda: arbf.deterministic_annealing(X, a.k, random_state=0).centers,
            lambda: [
                arbf.deterministic_annealing(X[b], a.k, random_state=g).centers
                for b, g in enumerate(gens())
            ],
        ),
    }
    print(
        f"B={a.B} n={a.n} d={a.d} k={a.k} {a.dtype} {a.backend}: {a.iters} iterations "
        f"(anneal: {a.levels} levels), median of {a.repeats}"
    )
    head = ("function", "batched s", "loop s", "loop/batched", "max |Δ|")
    print("{:<15} {:>10} {:>10} {:>13} {:>10}".format(*head))
    for name, (batched, loop) in cases.items():
        batched(), loop()  # warm-up: compiled kernels, caches
        tb, tl = [], []
        for _ in range(a.repeats):
            t, got = _time(batched)
            tb.append(t)
            t, want = _time(loop)
            tl.append(t)
        diff = float(np.max(np.abs(host(got) - np.stack([host(w) for w in want]))))
        mb, ml = statistics.median(tb), statistics.median(tl)
        print(f"{name:<15} {mb:>10.3f} {ml:>10.3f} {ml / mb:>13.2f} {diff:>10.2e}")


if __name__ == "__main__":
    main()
