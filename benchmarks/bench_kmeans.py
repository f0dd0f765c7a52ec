"""K-Means fits from fixed initial centers: arbf on NumPy, PyTorch-CPU and JAX-CPU against
scikit-learn's ``KMeans``, scikit-learn-intelex's patched ``KMeans`` (oneDAL) and faiss-cpu,
side by side in one run.

Every library does the same work from the same initial centers ``C0`` (``n_init=1``), in
two tables:

1. **One iteration** (``max_iter=1``, ``tol=0``; ``--iters N`` for N of them): one
   assignment and update, then a final assignment and the inertia of the returned labels
   (scikit-learn's, scikit-learn-intelex's and arbf's ``fit``; for faiss,
   ``Kmeans.train(niter=N)`` followed by ``index.search(X, 1)``).
2. **Full fit** (the default ``max_iter=300``, ``tol=1e-4``): each library's own
   stopping rule (faiss has none: it runs as many iterations as scikit-learn's fit took).
   The table also says whether the results agree: arbf's ``n_iter`` against
   scikit-learn's, the share of equal labels and the relative inertia difference.

The libraries are timed in interleaved rounds after a warm-up call each (the order
rotates from round to round, so each library follows every other one in turn); the tables show
the median and the ratios arbf / scikit-learn, arbf / scikit-learn-intelex and
arbf / faiss.  ``--idle SECONDS`` sleeps before every timed call, for every library alike:
the time of a call after a pause (the CPUs idle, every library's worker threads asleep),
which is what a user calling once sees; back-to-back calls keep the threads awake.
Peak memory is the growth of the resident set during one full-size call,
measured in a fresh subprocess per library and row after a warm-up call on a small
problem of the same ``d``, ``k`` and dtype (imports and compilation paid): ``VmHWM`` after
the call (reset through ``/proc/self/clear_refs`` before it) minus ``VmRSS`` before it.
It counts every allocator (NumPy, PyTorch, XLA, oneDAL, faiss), but not the input data,
which exist before.

Usage::

    python benchmarks/bench_kmeans.py                  # full shapes, float32 and float64
    python benchmarks/bench_kmeans.py --quick          # tiny shapes: a smoke run
    python benchmarks/bench_kmeans.py --repeats 7 --out docs/bench.md
    python benchmarks/bench_kmeans.py --no-fit         # the one-iteration table only
    python benchmarks/bench_kmeans.py --idle 0.2       # every call after a 0.2 s pause
    python benchmarks/bench_kmeans.py --idle 0.2 --no-pin   # ... with arbf's threads unpinned

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

#: The three original shapes, then one of high dimension and one with many clusters.
FULL_SHAPES = [
    (200_000, 32, 64),
    (100_000, 128, 256),
    (1_000_000, 16, 16),
    (50_000, 256, 64),
    (100_000, 32, 300),
]
QUICK_SHAPES = [(3_000, 8, 5), (2_000, 16, 12)]
RUNNERS = [
    "arbf-numpy",
    "arbf-numpy-pure",
    "arbf-torch",
    "arbf-jax",
    "sklearn",
    "sklearnex",
    "faiss",
]
#: Runners of the full-fit table by default (the pure Array API paths are 2-8x slower
#: per iteration: a full fit of theirs would dominate the run time).
FIT_RUNNERS = ["arbf-numpy", "arbf-torch", "sklearn", "sklearnex", "faiss"]
PEERS = ["sklearn", "sklearnex", "faiss"]
_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_FLAG = "_ARBF_BENCH_REEXEC"


# --------------------------------------------------------------------------------------
# data and runners
# --------------------------------------------------------------------------------------


def make_data(n: int, d: int, k: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
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
        "sklearnex": "sklearnex",
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


def make_runner(
    name: str, X: np.ndarray, C0: np.ndarray, iters: int = 1, tol: float = 0.0
) -> Callable[[], Any]:
    """A zero-argument callable: a fit of at most ``iters`` Lloyd iterations (stopping
    at ``tol`` as each library does), final E-step and inertia.  faiss has no tolerance
    and runs ``iters`` iterations."""
    n, d = X.shape
    k = C0.shape[0]
    kw: dict[str, Any] = {"n_init": 1, "max_iter": iters, "tol": tol}
    if name in ("arbf-numpy", "arbf-numpy-pure"):
        import arbf

        enabled = name == "arbf-numpy"

        def run() -> Any:
            with arbf.config_context(fast_paths=enabled):
                return arbf.kmeans(X, k, init=C0, **kw)

        return run
    if name == "arbf-torch":
        import torch

        import arbf

        Xt, Ct = torch.from_numpy(X), torch.from_numpy(C0)
        return lambda: arbf.kmeans(Xt, k, init=Ct, **kw)
    if name == "arbf-jax":
        import jax
        import jax.numpy as jnp

        import arbf

        Xj, Cj = jnp.asarray(X), jnp.asarray(C0)
        assert Xj.dtype == X.dtype, "enable jax x64 before building float64 arrays"

        def run_jax() -> Any:
            res = arbf.kmeans(Xj, k, init=Cj, **kw)
            jax.block_until_ready((res.centers, res.labels))
            return res

        return run_jax
    if name in ("sklearn", "sklearnex"):
        if name == "sklearn":
            from sklearn.cluster import KMeans
        else:
            from sklearnex.cluster import KMeans

        return lambda: KMeans(n_clusters=k, init=C0, algorithm="lloyd", **kw).fit(X)
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


def result_of(name: str, out: Any) -> tuple[np.ndarray, float, int] | None:
    """``(labels, inertia, n_iter)`` of a runner's return value (``None`` for faiss)."""
    if name.startswith("arbf"):
        return np.asarray(out.labels), float(out.inertia), int(out.n_iter)
    if name in ("sklearn", "sklearnex"):
        return np.asarray(out.labels_), float(out.inertia_), int(out.n_iter_)
    return None


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
    make_runner(args.memory_worker, Xs, Cs, args.iters, args.tol)()
    run = make_runner(args.memory_worker, X, C0, args.iters, args.tol)
    print(json.dumps({"peak_mib": peak_rss_delta_mib(run)}))


def measure_memory(
    name: str, shape: tuple[int, int, int], dtype: str, iters: int = 1, tol: float = 0.0
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
        "--tol",
        str(tol),
    ]
    env = {**os.environ, _REEXEC_FLAG: "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        print(f"  memory worker for {name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    value = json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"]
    return None if value is None else float(value)


def time_row(
    runners: dict[str, Callable[[], Any]], repeats: int, idle: float = 0.0
) -> dict[str, float]:
    """Median seconds per call, the runners interleaved in each round after a warm-up;
    with ``idle`` > 0 the process sleeps that many seconds before every timed call (a
    call after a pause, as a user's first call: CPUs idle, worker threads asleep).

    Round ``r`` starts at the ``r``-th runner (the order rotates), so each runner
    follows every other one in turn: a library's worker threads keep spinning for a
    while after its call (OpenMP, OpenBLAS, TBB) and slow whichever call comes next on
    this two-core machine; in a fixed order the same runner would always pay for the
    same neighbour."""
    for run in runners.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            run = runners[name]
            if idle > 0:
                time.sleep(idle)
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

    for dist in (
        "scikit-learn",
        "scikit-learn-intelex",
        "torch",
        "jax",
        "faiss-cpu",
        "numba",
        "threadpoolctl",
    ):
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
    p.add_argument("--out", help="also write the tables as markdown to this file")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--runners", default=",".join(RUNNERS), help="comma-separated subset")
    p.add_argument(
        "--fit-runners",
        default=",".join(FIT_RUNNERS),
        help="runners of the full-fit table (comma-separated; those also in --runners)",
    )
    p.add_argument("--shapes", help="override: 'n,d,k;n,d,k'")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-fit", action="store_true", help="skip the full-fit table")
    p.add_argument(
        "--iters",
        type=int,
        default=1,
        help="Lloyd iterations per fit of the first table (default 1: the per-iteration "
        "work plus each library's fixed cost; 10 shows the cost of longer fits)",
    )
    p.add_argument(
        "--idle",
        type=float,
        default=0.0,
        help="seconds to sleep before every timed call (a call after a pause)",
    )
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="arbf's threads not pinned to CPUs (runtime.PIN_THREADS off: the A/B)",
    )
    p.add_argument("--max-iter", type=int, default=300, help="full fit: max_iter")
    p.add_argument("--tol", type=float, default=1e-4, help="full fit: tol")
    p.add_argument("--keep-blas-env", action="store_true", help="do not unset OPENBLAS_*")
    p.add_argument("--memory-worker", help=argparse.SUPPRESS)
    p.add_argument("--shape", type=int, nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _ratio(t: dict[str, float], a: str, b: str) -> str:
    return f"{t[a] / t[b]:.2f}" if a in t and b in t else "—"


def _agreement(results: dict[str, Any], ref: str = "sklearn") -> list[str]:
    """arbf-numpy against ``ref``: ``n_iter`` (arbf/ref), equal labels, relative ΔJ."""
    a = results.get("arbf-numpy")
    b = results.get(ref)
    if a is None or b is None:
        return ["—", "—", "—"]
    (la, ja, ia), (lb, jb, ib) = a, b
    same = float(np.mean(la == lb)) if la.shape == lb.shape else float("nan")
    return [f"{ia}/{ib}", f"{same:.5f}", f"{abs(ja - jb) / max(abs(jb), 1e-300):.1e}"]


def run_table(
    shapes: list[tuple[int, ...]],
    dtypes: list[str],
    names: list[str],
    *,
    iters: int,
    tol: float,
    repeats: int,
    memory: bool,
    full: bool,
    idle: float = 0.0,
) -> tuple[list[str], list[list[str]]]:
    """One table: a row per shape and dtype, the runners interleaved."""
    peers = [p for p in PEERS if p in names]
    header = (
        ["n", "d", "k", "dtype"]
        + [f"{nm} ms" for nm in names]
        + [f"arbf-numpy / {p}" for p in peers]
        + (["n_iter arbf/sklearn", "same labels", "ΔJ/J"] if full else [])
        + ([f"{nm} peak MiB" for nm in names] if memory else [])
    )
    rows: list[list[str]] = []
    print(" | ".join(header), flush=True)
    for n, d, k in shapes:
        for dtype in dtypes:
            X, C0 = make_data(n, d, k, dtype)
            runners: dict[str, Callable[[], Any]] = {}
            for nm in names:
                if available(nm, dtype) is None:
                    runners[nm] = make_runner(nm, X, C0, iters, tol)
            results: dict[str, Any] = {}
            if full and "faiss" in runners and "sklearn" in runners:
                # faiss has no tolerance: as many iterations as scikit-learn's fit took
                sk = result_of("sklearn", runners["sklearn"]())
                assert sk is not None
                runners["faiss"] = make_runner("faiss", X, C0, sk[2], tol)
            for nm, run in runners.items():
                res = result_of(nm, run())
                if res is not None:
                    results[nm] = res
            t = time_row(runners, repeats, idle)
            row = [str(n), str(d), str(k), dtype]
            row += [_fmt_ms(t.get(nm)) for nm in names]
            row += [_ratio(t, "arbf-numpy", p) for p in peers]
            if full:
                row += _agreement(results)
            if memory:
                del runners
                # faiss's full fit runs scikit-learn's n_iter, unknown to a fresh process
                row += [
                    _fmt_mib(measure_memory(nm, (n, d, k), dtype, iters, tol))
                    if available(nm, dtype) is None and not (full and nm == "faiss")
                    else "—"
                    for nm in names
                ]
            rows.append(row)
            print(" | ".join(row), flush=True)
    return header, rows


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(table)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.no_pin:
        from arbf._math.kernels import runtime

        runtime.PIN_THREADS = False
    warnings.simplefilter("ignore")  # ConvergenceWarning etc.: the timing is what matters
    if args.memory_worker:
        memory_worker(args)
        return 0
    _maybe_reexec(argv, args.keep_blas_env)
    shapes: list[tuple[int, ...]]
    if args.shapes:
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
    else:
        shapes = list(QUICK_SHAPES if args.quick else FULL_SHAPES)
    dtypes = [s.strip() for s in args.dtypes.split(",") if s.strip()]
    names = [s.strip() for s in args.runners.split(",") if s.strip()]
    fit_names = [s.strip() for s in args.fit_runners.split(",") if s.strip() in names]
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

    memory = not args.no_memory
    print(f"## One fit of {args.iters} Lloyd iteration(s) (max_iter={args.iters}, tol=0)")
    header1, rows1 = run_table(
        shapes, dtypes, names, iters=args.iters, tol=0.0, repeats=args.repeats,
        memory=memory, full=False, idle=args.idle,
    )  # fmt: skip
    md = [_markdown(header1, rows1)]
    print("\n" + md[0])
    if not args.no_fit and fit_names:
        print(f"\n## Full fit (max_iter={args.max_iter}, tol={args.tol})")
        header2, rows2 = run_table(
            shapes, dtypes, fit_names, iters=args.max_iter, tol=args.tol,
            repeats=args.repeats, memory=memory, full=True, idle=args.idle,
        )  # fmt: skip
        md.append(_markdown(header2, rows2))
        print("\n" + md[1])
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"Command: `{command}`\n\n")
            f.write("\n".join(f"- {line}" for line in notes) + "\n\n")
            f.write(
                f"Median of {args.repeats} interleaved rounds (the order rotating) after one "
                "warm-up; times in "
                "ms. Peak MiB: resident set growth during one full-size call, in a fresh "
                "subprocess after a small warm-up call.\n\n"
            )
            f.write(
                f"### One fit of {args.iters} Lloyd iteration(s) + final assignment + "
                f"inertia\n\n{md[0]}\n"
            )
            if len(md) > 1:
                f.write(
                    f"\n### Full fit (max_iter={args.max_iter}, tol={args.tol}; faiss: "
                    f"scikit-learn's number of iterations)\n\n{md[1]}\n"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
