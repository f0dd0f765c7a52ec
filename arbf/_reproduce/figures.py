"""Figures of the reproduction (matplotlib, imported lazily: an optional extra).

- ``sigma_wise.png`` — Figure 1 left: :math:`\\max_j d_j(\\sigma)` from one initialisation,
  softmax and entmax-1.5 side by side, with the predicted ``min Δ/2``;
- ``init_wise.png`` — Figure 1 right: the same averaged over ``M`` initialisations;
- ``paths.png`` — Figure 2: each center's position as σ falls on the 2-D sets, from the
  initialisation (circle) to the K-Means solution (star).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .protocols import KINDS, DatasetRun

__all__ = ["require_matplotlib", "write_figures"]

_COLORS = {"softmax": "tab:blue", "entmax15": "tab:orange"}
_LABELS = {"softmax": "softmax", "entmax15": "entmax-1.5"}
_DPI = 90


def require_matplotlib() -> Any:
    """Import matplotlib with the non-interactive Agg backend (ImportError if missing)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _grid(plt: Any, n: int, *, width: float = 3.4, height: float = 2.8) -> tuple[Any, list[Any]]:
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def _floor_axis(ax: Any, lo: float, hi: float) -> None:
    """Log σ (falling to the right); symlog d so that an exact 0 sits on the axis."""
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=lo, linscale=0.4)
    e_lo = math.floor(math.log10(lo))
    e_hi = max(e_lo + 1, math.ceil(math.log10(max(hi, lo * 10))))
    step = max(1, math.ceil((e_hi - e_lo) / 5))
    ax.set_yticks([0.0] + [10.0**e for e in range(e_hi, e_lo - 1, -step)])
    ax.set_ylim(0.0, 10.0**e_hi)
    ax.invert_xaxis()
    ax.grid(True, which="major", alpha=0.3)


def _sigma_wise(plt: Any, runs: list[DatasetRun], path: Path) -> None:
    fig, axes = _grid(plt, len(runs))
    for ax, run in zip(axes, runs, strict=True):
        lo = run.exact_atol
        for kind in KINDS:
            sw = run.sigma_wise[kind]
            ax.plot(
                sw.sigmas,
                sw.d.max(axis=1),
                ".-",
                color=_COLORS[kind],
                lw=1.2,
                ms=3,
                label=_LABELS[kind],
            )
        ax.axvline(
            run.reference.sigma_pred, color="k", ls="--", lw=0.8, label="min Δ/2 (predicted)"
        )
        ax.axvline(
            run.reference.sigma_traj, color="grey", ls=":", lw=0.8, label="min Δ/2 along Lloyd"
        )
        top = max(float(run.sigma_wise[k].d.max()) for k in KINDS)
        _floor_axis(ax, lo, top)
        ax.set_title(f"{run.title} (n={run.n}, d={run.dim}, k={run.k})", fontsize=9)
        ax.set_xlabel("σ")
        ax.set_ylabel("max$_j$ d$_j$(σ)")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle("σ-wise protocol: one initialisation, discrepancy to K-Means (0 = exact)")
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)


def _init_wise(plt: Any, runs: list[DatasetRun], path: Path) -> None:
    fig, axes = _grid(plt, len(runs))
    for ax, run in zip(axes, runs, strict=True):
        for kind in KINDS:
            sweeps = run.init_wise[kind]
            if not sweeps:
                continue
            D = np.stack([s.d.max(axis=1) for s in sweeps])  # (M, L)
            sig = sweeps[0].sigmas
            ax.fill_between(
                sig, D.min(axis=0), D.max(axis=0), color=_COLORS[kind], alpha=0.15, lw=0
            )
            ax.plot(
                sig,
                D.mean(axis=0),
                ".-",
                color=_COLORS[kind],
                lw=1.2,
                ms=3,
                label=f"{_LABELS[kind]} (mean, min–max)",
            )
        top = max((float(s.d.max()) for k in KINDS for s in run.init_wise[k]), default=1.0)
        _floor_axis(ax, run.exact_atol, top)
        m = len(run.init_refs)
        ax.set_title(f"{run.title} (M={m} initialisations)", fontsize=9)
        ax.set_xlabel("σ")
        ax.set_ylabel("max$_j$ d$_j$(σ), averaged")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle("Initialisation-wise protocol: discrepancy averaged over initialisations")
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)


def _paths(plt: Any, runs: list[DatasetRun], path: Path) -> bool:
    runs2 = [r for r in runs if r.dim == 2]
    if not runs2:
        return False
    panels = [("sigma_wise", kind) for kind in KINDS]
    if all(r.annealing for r in runs2):
        panels += [("annealing", kind) for kind in KINDS]
    fig, axes = plt.subplots(
        len(panels), len(runs2), figsize=(3.0 * len(runs2), 3.0 * len(panels)), squeeze=False
    )
    for col, run in enumerate(runs2):
        ref = run.reference
        for row, (protocol, kind) in enumerate(panels):
            ax = axes[row, col]
            ax.scatter(run.X[:, 0], run.X[:, 1], s=3, c="0.8", lw=0)
            if protocol == "sigma_wise":
                P, star = run.sigma_wise[kind].centers, ref.centers_host
            else:
                P, star = run.annealing[kind].path, run.annealing[kind].final
            for j in range(run.k):
                xy = np.concatenate([ref.init[j : j + 1], P[:, j, :]])
                ax.plot(xy[:, 0], xy[:, 1], "-", color=_COLORS[kind], lw=1.0, alpha=0.9)
                ax.plot(xy[1:, 0], xy[1:, 1], ".", color=_COLORS[kind], ms=2.5)
            ax.plot(ref.init[:, 0], ref.init[:, 1], "o", mfc="none", mec="k", ms=6,
                    label="initialisation")  # fmt: skip
            ax.plot(star[:, 0], star[:, 1], "*", color="crimson", ms=13, mec="k", mew=0.5,
                    label="K-Means")  # fmt: skip
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(run.title, fontsize=9)
            if col == 0:
                what = "σ-wise" if protocol == "sigma_wise" else "annealing"
                ax.set_ylabel(f"{_LABELS[kind]}\n{what}", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(
        "Center paths as σ falls, from the initialisation (○) to the K-Means solution (★): "
        "σ-wise (each σ from the initialisation) and annealing (warm started)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return True


def write_figures(runs: list[DatasetRun], out: Path) -> list[str]:
    """Write the PNG figures into ``out``; return their file names."""
    plt = require_matplotlib()
    names = ["sigma_wise.png", "init_wise.png"]
    _sigma_wise(plt, runs, out / names[0])
    if any(run.init_wise[KINDS[0]] for run in runs):
        _init_wise(plt, runs, out / names[1])
    else:
        names.pop()
    if _paths(plt, runs, out / "paths.png"):
        names.append("paths.png")
    return names
