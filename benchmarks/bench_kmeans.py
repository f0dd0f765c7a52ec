"""One Lloyd iteration at fixed initial centers: arbf on NumPy, PyTorch-CPU and JAX-CPU
against scikit-learn's ``KMeans`` and faiss-cpu, side by side in one run.

Every library does the same work from the same initial centers ``C0``: one assignment
and update (``max_iter=1``, ``tol=0``, ``n_init=1``; ``--iters N`` for N of them), then a
final assignment and the inertia of the returned labels (scikit-learn's and arbf's
``fit``; for faiss, ``Kmeans.train(niter=N)`` followed by ``index.search(X, 1)``).
The libraries are timed in interleaved rounds after a warm-up call each; the table shows
the median.  Peak memory is the growth of the resident set during one full-size call,
measured in a fresh subprocess per library and row after a warm-up call on a small
problem of the same ``d``, ``k`` and dtype (imports and compilation paid): ``VmHWM`` after
the call (reset through ``/proc/self/clear_refs`` before it) minus ``VmRSS`` before it.
It counts every allocator (NumPy, PyTorch, XLA, faiss), but not the input data, which
exist before.

Usage::

    python benchmarks/bench_kmeans.py                  # full shapes, float32 and float64
    python benchmarks/bench_kmeans.py --quick          # tiny shapes: a smoke run
    python benchmarks/bench_kmeans.py --repeats 7 --out docs/bench.md

``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``, when set in the environment, pin OpenBLAS
to a kernel (needed on some processors) that slows current NumPy and SciPy builds; the
benchmark re-executes itself without them (for its own process only) unless
``--keep-blas-env`` is given, and prints the BLAS kernel threadpoolctl reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

FULL_SHAPES = [(200_000, 32, 64), (100_000, 128, 256), (1_000_000, 16, 16)]
QUICK_SHAPES = [(3_000, 8, 5), (2_000, 16, 12)]
RUNNERS = ["arbf-numpy", "arbf-numpy-pure", "arbf-torch", "arbf-jax", "sklearn", "faiss"]
_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_FLAG = "_ARBF_BENCH_REEXEC"


# --------------------------------------------------------------------------------------
# data and runners
# --------------------------------------------------------------------------------------


def make_data(n: int, d: int, k: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Gaussian blobs around ``k`` random means, and ``k`` distinct rows as ``C0``."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(-5, 5, size=(k, d))
    X = means[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    C0 = X[rng.choice(n, size=k, replace=False)]
    return np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(C0, dtype=dtype)


def available(name: str, dtype: str) -> str | None:
    """``None`` if runner ``name`` can run at ``dtype``, else the reason it cannot."""
    mods = {
        "arbf-torch": "torch",
        "arbf-jax": "jax",
        "sklearn": "sklearn",
        "faiss": "faiss",
    }
    mod = mods.get(name)
    if mod is not None:
        import importlib.util

        if importlib.util.find_spec(mod) is None:
            return f"{mod} not installed"
    if name == "faiss" and dtype != "float32":
        return "float32 only"
    return None


def make_runner(name: str, X: np.ndarray, C0: np.ndarray, iters: int = 1) -> Callable[[], Any]:
    """A zero-argument callable doing ``iters`` Lloyd iterations + final E-step + inertia."""
    n, d = X.shape
    k = C0.shape[0]
    kw: dict[str, Any] = {"init": None, "n_init": 1, "max_iter": iters, "tol": 0.0}
    if name in ("arbf-numpy", "arbf-numpy-pure"):
        import arbf

        enabled = name == "arbf-numpy"

        def run() -> Any:
            with arbf.config_context(fast_paths=enabled):
                return arbf.kmeans(X, k, **{**kw, "init": C0})

        return run
    if name == "arbf-torch":
        import torch

        import arbf

        Xt, Ct = torch.from_numpy(X), torch.from_numpy(C0)
        return lambda: arbf.kmeans(Xt, k, **{**kw, "init": Ct})
    if name == "arbf-jax":
        import jax
        import jax.numpy as jnp

        import arbf

        Xj, Cj = jnp.asarray(X), jnp.asarray(C0)
        assert Xj.dtype == X.dtype, "enable jax x64 before building float64 arrays"

        def run_jax() -> Any:
            res = arbf.kmeans(Xj, k, **{**kw, "init": Cj})
            jax.block_until_ready((res.centers, res.labels))
            return res

        return run_jax
    if name == "sklearn":
        from sklearn.cluster import KMeans

        return lambda: KMeans(
            n_clusters=k, init=C0, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd"
        ).fit(X)
    if name == "faiss":
        import faiss

        def run_faiss() -> Any:
            km = faiss.Kmeans(
                d,
                k,
                niter=iters,
                nredo=1,
                seed=0,
                verbose=False,
                min_points_per_centroid=1,
                max_points_per_centroid=n,  # no subsampling: all n points, like the others
            )
            km.train(X, init_centroids=C0)
            return km.index.search(X, 1)

        return run_faiss
    raise ValueError(f"unknown runner {name!r}")


# --------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_delta_mib(run: Callable[[], Any]) -> float | None:
    """Peak resident-set growth (MiB) during ``run()``.

    ``VmHWM`` (reset to the current RSS through ``/proc/self/clear_refs``) after the call
    minus ``VmRSS`` before it; ``None`` where ``/proc`` does not offer this.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the VmHWM high-water mark to the current RSS
    except OSError:
        return None
    before = _status_kib("VmRSS")
    run()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        return None
    return max(peak - before, 0) / 1024


def memory_worker(args: argparse.Namespace) -> None:
    """Subprocess mode: warm up on a small problem, measure one full call, print JSON.

    The warm-up (same ``d``, ``k`` and dtype, few rows) pays imports and compilation, so
    the number is what the full-size call itself adds to the resident set.
    """
    if args.memory_worker == "arbf-jax":
        _configure_jax()
    n, d, k = args.shape
    X, C0 = make_data(n, d, k, args.dtype)
    Xs, Cs = make_data(max(4 * k, 256), d, k, args.dtype, seed=1)
    make_runner(args.memory_worker, Xs, Cs, args.iters)()
    run = make_runner(args.memory_worker, X, C0, args.iters)
    print(json.dumps({"peak_mib": peak_rss_delta_mib(run)}))


def measure_memory(
    name: str, shape: tuple[int, int, int], dtype: str, iters: int = 1
) -> float | None:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--memory-worker",
        name,
        "--shape",
        *map(str, shape),
        "--dtype",
        dtype,
        "--iters",
        str(iters),
    ]
    env = {**os.environ, _REEXEC_FLAG: "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        print(f"  memory worker for {name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    value = json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"]
    return None if value is None else float(value)


def time_row(runners: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds per call, the runners interleaved in each round after a warm-up."""
    for run in runners.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


# --------------------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------------------


def _configure_jax() -> None:
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
    except Exception:  # jax missing: its runner reports so
        pass


def _maybe_reexec(argv: list[str], keep: bool) -> None:
    if keep or os.environ.get(_REEXEC_FLAG):
        return
    if not any(v in os.environ for v in _BLAS_ENV):
        return
    env = {key: val for key, val in os.environ.items() if key not in _BLAS_ENV}
    env[_REEXEC_FLAG] = "1"
    unset = ", ".join(v for v in _BLAS_ENV if v in os.environ)
    print(f"(re-executing without {unset} for this benchmark process)", flush=True)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)


def environment_notes() -> list[str]:
    notes = [
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs ({_cpu_model()})",
    ]
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("scikit-learn", "torch", "jax", "faiss-cpu", "numba", "threadpoolctl"):
        try:
            notes.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            notes.append(f"{dist} not installed")
    blas_env = {v: os.environ.get(v) for v in _BLAS_ENV}
    notes.append(f"BLAS environment: {blas_env}")
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                lib = os.path.basename(info.get("filepath", ""))
                notes.append(
                    f"BLAS {info.get('internal_api')} {info.get('version')} "
                    f"kernel={info.get('architecture')} threads={info.get('num_threads')} ({lib})"
                )
    except ImportError:
        notes.append("threadpoolctl not installed: BLAS kernel unknown")
    return notes


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _fmt_ms(t: float | None) -> str:
    return "—" if t is None else f"{t * 1e3:.1f}"


def _fmt_mib(m: float | None) -> str:
    return "—" if m is None else f"{m:.0f}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny shapes (a smoke run)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per row (median)")
    p.add_argument("--out", help="also write the table as markdown to this file")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--runners", default=",".join(RUNNERS), help="comma-separated subset")
    p.add_argument("--shapes", help="override: 'n,d,k;n,d,k'")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument(
        "--iters",
        type=int,
        default=1,
        help="Lloyd iterations per fit (default 1: the per-iteration work plus each "
        "library's fixed cost; 10 shows the cost of longer fits)",
    )
    p.add_argument("--keep-blas-env", action="store_true", help="do not unset OPENBLAS_*")
    p.add_argument("--memory-worker", help=argparse.SUPPRESS)
    p.add_argument("--shape", type=int, nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    warnings.simplefilter("ignore")  # ConvergenceWarning etc.: the timing is what matters
    if args.memory_worker:
        memory_worker(args)
        return 0
    _maybe_reexec(argv, args.keep_blas_env)
    if args.shapes:
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
    else:
        shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    dtypes = [s.strip() for s in args.dtypes.split(",") if s.strip()]
    names = [s.strip() for s in args.runners.split(",") if s.strip()]
    unknown = sorted(set(names) - set(RUNNERS))
    if unknown:
        raise SystemExit(f"unknown runners {unknown}; choose from {RUNNERS}")
    if "arbf-jax" in names:
        _configure_jax()

    for nm in names:  # load every library first, so that the BLAS report lists them all
        if available(nm, "float32") is None:
            make_runner(nm, *make_data(8, 2, 2, "float32"))
    notes = environment_notes()
    for line in notes:
        print(line)
    command = "python benchmarks/bench_kmeans.py " + " ".join(argv)
    print(f"command: {command}\n", flush=True)

    header = (
        ["n", "d", "k", "dtype"]
        + [f"{nm} ms" for nm in names]
        + ["arbf-numpy / sklearn"]
        + ([] if args.no_memory else [f"{nm} peak MiB" for nm in names])
    )
    rows: list[list[str]] = []
    print(" | ".join(header), flush=True)
    for n, d, k in shapes:
        for dtype in dtypes:
            X, C0 = make_data(n, d, k, dtype)
            runners: dict[str, Callable[[], Any]] = {}
            for nm in names:
                if available(nm, dtype) is None:
                    runners[nm] = make_runner(nm, X, C0, args.iters)
            t = time_row(runners, args.repeats)
            ratio = (
                f"{t['arbf-numpy'] / t['sklearn']:.2f}"
                if "arbf-numpy" in t and "sklearn" in t
                else "—"
            )
            row = [str(n), str(d), str(k), dtype]
            row += [_fmt_ms(t.get(nm)) for nm in names]
            row.append(ratio)
            if not args.no_memory:
                del runners
                row += [
                    _fmt_mib(measure_memory(nm, (n, d, k), dtype, args.iters))
                    if available(nm, dtype) is None
                    else "—"
                    for nm in names
                ]
            rows.append(row)
            print(" | ".join(row), flush=True)

    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    md = "\n".join(table)
    print("\n" + md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"Command: `{command}`\n\n")
            f.write("\n".join(f"- {line}" for line in notes) + "\n\n")
            f.write(
                f"Median of {args.repeats} interleaved rounds after one warm-up; times in ms "
                f"for {args.iters} Lloyd iteration(s) + final assignment + inertia. Peak MiB: "
                "resident set growth during one full-size call, in a fresh subprocess "
                "after a small warm-up call.\n\n"
            )
            f.write(md + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
