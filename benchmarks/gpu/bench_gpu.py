"""GPU benchmark: arbf on CuPy and on torch-CUDA, a plain PyTorch Lloyd loop, and the GEMM
roofline, at n up to 8M, d = 128, k = 1024, float32.

For every n the same data and initial centers are used by every contender:

- ``gemm``: ``X @ C.T`` alone (torch), the lower bound of one assignment pass
  (``2 n d k`` flops), reported in TFLOP/s;
- ``torch loop``: a hand-written Lloyd iteration in PyTorch (chunked ``addmm`` distances,
  ``argmin``, ``index_add_``, ``bincount``), the practical ceiling;
- ``arbf torch-cuda`` / ``arbf cupy``: ``arbf.lloyd_step`` (one Lloyd step, no host sync)
  and ``arbf.kmeans`` (``max_iter`` iterations, ``tol=0``, one host sync per iteration),
  with ``working_memory`` large enough for GPU-sized chunks (``--working-memory`` MiB).

Each time is the median over ``--repeats`` after a warm-up, with a device synchronisation
before the clock stops.  Results go to ``<out>.md`` and ``<out>.json``.

Usage (on a machine with a CUDA GPU; see ``benchmarks/gpu/run_gpu.sh``)::

    python benchmarks/gpu/bench_gpu.py --out $OUT/gpu_bench
    python benchmarks/gpu/bench_gpu.py --quick --out /tmp/gpu_smoke   # small n
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import traceback
from collections.abc import Callable
from typing import Any


def _median_time(fn: Callable[[], Any], sync: Callable[[], None], repeats: int) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def torch_lloyd_step(X: Any, C: Any, chunk: int) -> Any:
    """One plain-PyTorch Lloyd iteration (the reference loop)."""
    import torch

    k, d = C.shape
    c_sq = (C * C).sum(1)
    sums = torch.zeros((k, d), device=X.device, dtype=torch.float32)
    counts = torch.zeros((k,), device=X.device, dtype=torch.float32)
    for a in range(0, X.shape[0], chunk):
        Xc = X[a : a + chunk]
        D = torch.addmm(c_sq[None, :], Xc, C.T, beta=1.0, alpha=-2.0)
        lab = D.argmin(1)
        sums.index_add_(0, lab, Xc)
        counts += torch.bincount(lab, minlength=k).to(torch.float32)
    return torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], C)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import arbf

    dev = torch.device(args.device)
    on_gpu = dev.type == "cuda"
    if on_gpu:
        props = torch.cuda.get_device_properties(dev)
        name, mem = props.name, round(props.total_memory / 2**30, 1)
    else:  # a CPU smoke run of the script itself
        name, mem = f"CPU ({platform.processor() or platform.machine()})", 0.0
    out: dict[str, Any] = {
        "device": name,
        "memory_GiB": mem,
        "torch": torch.__version__,
        "arbf": getattr(arbf, "__version__", "?"),
        "python": platform.python_version(),
        "d": args.d,
        "k": args.k,
        "max_iter": args.max_iter,
        "working_memory_MiB": args.working_memory,
        "rows": [],
    }
    try:
        if not on_gpu:
            raise RuntimeError("CPU run")
        import cupy

        out["cupy"] = cupy.__version__
    except Exception as exc:  # pragma: no cover - depends on the machine
        cupy = None
        out["cupy"] = f"unavailable: {exc!r}"

    def tsync() -> None:
        if on_gpu:
            torch.cuda.synchronize()

    def csync() -> None:
        if cupy is not None:
            cupy.cuda.Device().synchronize()

    wm = args.working_memory
    gen = torch.Generator(device=dev).manual_seed(0)
    for n in args.n:
        row: dict[str, Any] = {"n": n}
        try:
            X = torch.randn((n, args.d), device=dev, dtype=torch.float32, generator=gen)
            C0 = X[: args.k].clone()
            flops = 2.0 * n * args.d * args.k
            t = _median_time(lambda X=X, C0=C0: X @ C0.T, tsync, args.repeats)  # type: ignore[misc]
            row["gemm_s"], row["gemm_TFLOPs"] = t, flops / t / 1e12
            t = _median_time(
                lambda X=X, C0=C0: torch_lloyd_step(X, C0, args.chunk),  # type: ignore[misc]
                tsync,
                args.repeats,
            )
            row["torch_loop_step_s"] = t
            t = _median_time(
                lambda X=X, C0=C0: arbf.lloyd_step(X, C0, working_memory=wm),  # type: ignore[misc]
                tsync,
                args.repeats,
            )
            row["arbf_torch_step_s"] = t

            def fit_torch(X=X, C0=C0):
                return arbf.kmeans(X, args.k, init=C0, max_iter=args.max_iter, tol=0,
                                   working_memory=wm)  # fmt: skip

            row["arbf_torch_fit_s"] = _median_time(fit_torch, tsync, max(1, args.repeats // 2))
            if cupy is not None:
                Xc = cupy.from_dlpack(X)
                Cc = cupy.from_dlpack(C0)
                t = _median_time(
                    lambda Xc=Xc, Cc=Cc: arbf.lloyd_step(Xc, Cc, working_memory=wm),  # type: ignore[misc]
                    csync,
                    args.repeats,
                )
                row["arbf_cupy_step_s"] = t

                def fit_cupy(Xc=Xc, Cc=Cc):
                    return arbf.kmeans(Xc, args.k, init=Cc, max_iter=args.max_iter, tol=0,
                                       working_memory=wm)  # fmt: skip

                row["arbf_cupy_fit_s"] = _median_time(fit_cupy, csync, max(1, args.repeats // 2))
                del Xc, Cc
            # the arbf step agrees with the plain loop
            ref = torch_lloyd_step(X, C0, args.chunk)
            got = arbf.lloyd_step(X, C0, working_memory=wm)
            row["max_abs_diff_vs_torch_loop"] = float((ref - got).abs().max())
            del X, C0
        except Exception:  # pragma: no cover - record and go on to the next size
            row["error"] = traceback.format_exc(limit=3)
        torch.cuda.empty_cache()
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
    return out


def to_markdown(r: dict[str, Any]) -> str:
    lines = [
        f"{r['device']} ({r['memory_GiB']} GiB), torch {r['torch']}, cupy {r['cupy']}; "
        f"d = {r['d']}, k = {r['k']}, float32, working_memory = {r['working_memory_MiB']} MiB; "
        f"fit = {r['max_iter']} Lloyd iterations (tol = 0).",
        "",
        "| n | GEMM (ms) | GEMM TFLOP/s | torch loop step (ms) | arbf torch step (ms) | "
        "arbf cupy step (ms) | arbf torch fit / it (ms) | arbf cupy fit / it (ms) | "
        "step / GEMM (torch) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ms(v: Any, div: float = 1.0) -> str:
        return "–" if v is None else f"{1e3 * v / div:.2f}"

    for row in r["rows"]:
        if "error" in row:
            lines.append(f"| {row['n']:,} | error: {row['error'].splitlines()[-1]} |")
            continue
        it = r["max_iter"]
        lines.append(
            f"| {row['n']:,} | {ms(row.get('gemm_s'))} | {row.get('gemm_TFLOPs', 0):.1f} | "
            f"{ms(row.get('torch_loop_step_s'))} | {ms(row.get('arbf_torch_step_s'))} | "
            f"{ms(row.get('arbf_cupy_step_s'))} | {ms(row.get('arbf_torch_fit_s'), it)} | "
            f"{ms(row.get('arbf_cupy_fit_s'), it)} | "
            f"{row['arbf_torch_step_s'] / row['gemm_s']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--n", type=int, nargs="+", default=[1_000_000, 2_000_000, 4_000_000, 8_000_000]
    )
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--k", type=int, default=1024)
    p.add_argument("--max-iter", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--chunk", type=int, default=262_144, help="rows per chunk of the torch loop")
    p.add_argument("--working-memory", type=float, default=4096.0, help="arbf MiB per chunk")
    p.add_argument("--device", default="cuda", help="torch device (cpu: smoke test)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="gpu_bench")
    args = p.parse_args()
    if args.quick:
        args.n, args.repeats, args.max_iter = [100_000, 200_000], 2, 2
    res = run(args)
    md = to_markdown(res)
    print(md)
    with open(args.out + ".md", "w") as f:
        f.write(md)
    with open(args.out + ".json", "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
