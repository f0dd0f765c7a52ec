"""The table of the reproduction, the checks of SPEC §1 on it, and the data files.

One row per data set (see :func:`summarize`); written as CSV, JSON and Markdown.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .protocols import KINDS, DatasetRun

__all__ = [
    "COLUMNS",
    "check_rows",
    "exact_sigma",
    "markdown_table",
    "monotone_fraction",
    "monotone_split",
    "regime_table",
    "summarize",
    "write_csv",
    "write_json",
]


def _nonincreasing(d: np.ndarray, atol: float) -> np.ndarray:
    """Per step (σ falling): ``d`` did not increase (beyond rounding)."""
    return np.diff(d) <= atol + 1e-9 * np.abs(d[:-1])


def monotone_fraction(d: np.ndarray, atol: float) -> float:
    """Fraction of consecutive σ steps (σ falling) where ``d`` does not increase."""
    if d.size < 2:
        return 1.0
    return float(np.mean(_nonincreasing(d, atol)))


def monotone_split(
    sigmas: np.ndarray, d: np.ndarray, regime: float, atol: float
) -> tuple[float, int, float, int]:
    """``(inside, n_inside, outside, n_outside)``: the fraction of monotone steps (σ
    falling, ``d`` not increasing) among the steps that start at ``σ <= regime`` (both
    ends in the proved regime) and among those that start above it (NaN when none)."""
    if d.size < 2:
        return math.nan, 0, math.nan, 0
    ok = _nonincreasing(d, atol)
    inside = sigmas[:-1] <= regime * (1 + 1e-12)  # False for every step when regime is NaN
    n_in, n_out = int(inside.sum()), int((~inside).sum())
    return (
        float(ok[inside].mean()) if n_in else math.nan,
        n_in,
        float(ok[~inside].mean()) if n_out else math.nan,
        n_out,
    )


def exact_sigma(sigmas: np.ndarray, d: np.ndarray, atol: float) -> float:
    """The largest σ from which on (all smaller σ included) ``d <= atol``; NaN if none."""
    exact = d <= atol
    if not exact[-1]:
        return math.nan
    i = sigmas.size - 1
    while i > 0 and exact[i - 1]:
        i -= 1
    return float(sigmas[i])


#: Columns of the table, in order.
COLUMNS = (
    "dataset",
    "n",
    "d",
    "k",
    "sigma_c",
    "sigma_final",
    "d_final_softmax",
    "d_final_entmax15",
    "d_pred_softmax",
    "d_pred_entmax15",
    "d_final_init_softmax",
    "d_final_init_entmax15",
    "sigma_exact_observed",
    "sigma_exact_softmax",
    "sigma_pred",
    "sigma_traj",
    "max_d_entmax15_below_pred",
    "monotone_softmax",
    "monotone_entmax15",
    "iterations_softmax",
    "iterations_entmax15",
    "kmeans_iterations",
    "kmeans_inertia",
    "anneal_inertia_softmax",
    "anneal_inertia_entmax15",
    "monotone_anneal_softmax",
    "monotone_anneal_entmax15",
    "sigma0_softmax",
    "sigma_e_entmax15",
    "d_sigma0_softmax",
    "d_sigma_e_entmax15",
    "monotone_branch_softmax",
    "monotone_branch_entmax15",
    "monotone_inside_softmax",
    "monotone_inside_entmax15",
    "monotone_outside_softmax",
    "monotone_outside_entmax15",
    "steps_outside_softmax",
    "steps_outside_entmax15",
    "wall_time_s",
    "backend",
)


def _final_index(run: DatasetRun, sigmas: np.ndarray) -> int:
    """Index of the common grid's last level (σ_final) in a σ-wise schedule."""
    return int(np.argmin(np.abs(sigmas - run.grid[-1])))


def summarize(run: DatasetRun) -> dict[str, Any]:
    """One table row: the numbers SPEC §3 asks for, from both protocols."""
    ref = run.reference
    row: dict[str, Any] = {
        "dataset": run.name,
        "n": run.n,
        "d": run.dim,
        "k": run.k,
        "sigma_c": run.sigma_c,
    }
    row["sigma_final"] = float(run.grid[-1])
    for kind in KINDS:
        sw = run.sigma_wise[kind]
        dmax = sw.d.max(axis=1)
        row[f"d_final_{kind}"] = float(dmax[_final_index(run, sw.sigmas)])
        at_pred = int(np.argmin(np.abs(sw.sigmas - ref.sigma_pred)))
        row[f"d_pred_{kind}"] = float(dmax[at_pred])
        iw = run.init_wise[kind]
        row[f"d_final_init_{kind}"] = (
            float(np.mean([s.d.max(axis=1)[-1] for s in iw])) if iw else math.nan
        )
        row[f"monotone_{kind}"] = monotone_fraction(dmax, run.exact_atol)
        row[f"iterations_{kind}"] = int(sw.n_iter.sum())
    ent = run.sigma_wise["entmax15"]
    ent_max = ent.d.max(axis=1)
    row["sigma_exact_observed"] = exact_sigma(ent.sigmas, ent_max, run.exact_atol)
    soft = run.sigma_wise["softmax"]
    row["sigma_exact_softmax"] = exact_sigma(soft.sigmas, soft.d.max(axis=1), run.exact_atol)
    row["sigma_pred"] = ref.sigma_pred
    row["sigma_traj"] = ref.sigma_traj
    below = ent.sigmas <= ref.sigma_pred * (1 + 1e-12)
    row["max_d_entmax15_below_pred"] = float(ent_max[below].max()) if below.any() else math.nan
    row["kmeans_iterations"] = ref.n_iter
    row["kmeans_inertia"] = ref.inertia
    for kind in KINDS:
        an = run.annealing.get(kind)
        row[f"anneal_inertia_{kind}"] = an.inertia if an is not None else math.nan
        row[f"monotone_anneal_{kind}"] = (
            monotone_fraction(an.d, run.exact_atol) if an is not None else math.nan
        )
    names = {"softmax": "sigma0_softmax", "entmax15": "sigma_e_entmax15"}
    tops = {"softmax": "d_sigma0_softmax", "entmax15": "d_sigma_e_entmax15"}
    for kind in KINDS:
        br = run.branches.get(kind)
        regime = br.regime_sigma if br is not None else math.nan
        row[names[kind]] = regime
        row[tops[kind]] = float(br.d[0]) if br is not None and br.d.size else math.nan
        row[f"monotone_branch_{kind}"] = (
            monotone_fraction(br.d, run.exact_atol) if br is not None and br.d.size else math.nan
        )
        sw = run.sigma_wise[kind]
        inside, _, outside, n_out = monotone_split(
            sw.sigmas, sw.d.max(axis=1), regime, run.exact_atol
        )
        row[f"monotone_inside_{kind}"] = inside
        row[f"monotone_outside_{kind}"] = outside
        row[f"steps_outside_{kind}"] = n_out
    row["wall_time_s"] = run.wall_time
    row["backend"] = run.backend
    return row


def _exact_from(sigmas: np.ndarray, d: np.ndarray, atol: float) -> float:
    """:func:`exact_sigma`, with 0 instead of NaN when never exact."""
    v = exact_sigma(sigmas, d, atol)
    return 0.0 if math.isnan(v) else v


def check_rows(runs: list[DatasetRun]) -> dict[str, dict[str, bool]]:
    """The claims of SPEC §1 (Theorems 3 and 4) on the σ-wise protocol, per data set.

    "Exact" means ``max_j d_j <= exact_atol`` (rounding: 1000 eps max|X|).

    - ``entmax_exact_below_traj``: entmax is exact at every σ ≤ ``sigma_traj`` (then
      every entmax step along the way is Lloyd's step);
    - ``entmax_never_exact_above_pred``: entmax is exact at no σ > ``sigma_pred`` (there
      the K-Means fixed point is not a fixed point of the entmax network);
    - ``entmax_exact_at_pred``: entmax is exact at every σ ≤ ``sigma_pred`` (true when
      the entmax run from the initialisation ends in the K-Means solution's basin);
    - ``entmax_else_elsewhere``: at every σ ≤ ``sigma_pred`` where entmax is not exact,
      its run ended at another fixed point, one where some row is not one-hot
      (``σ > min Δ/2`` there) — consistent with Theorem 4;
    - ``anneal_entmax_exact_below_pred``: along the annealing path (A4) of entmax,
      every level at σ ≤ min Δ/2 of its final K-Means point is exactly that point;
    - ``softmax_decays``: softmax is not exact at ``sigma_pred`` (Theorem 3: it tends to
      0, never exactly), it ends below ``1e-6 max|X|``, and where it does become 0 in
      floating point (once ``exp(-Δ/σ)`` falls under rounding) that is at a lower σ than
      entmax;
    - ``branch_monotone_in_regime`` (Theorems M and E): σ₀ and σ_e are certified, the
      branch continued from c* converged at every level and its discrepancy is monotone
      on every step at or below them, and stays within the certified bound (softmax) or
      equals the closed form (entmax-1.5) to rounding;
    - ``regime_not_vacuous``: at σ₀ the softmax branch is far from c* (``d(σ₀)`` above
      ``1000 exact_atol``), so the regime is one where something moves.
    """
    out: dict[str, dict[str, bool]] = {}
    tiny = 1e-12
    for run in runs:
        ref = run.reference
        ent = run.sigma_wise["entmax15"]
        s = ent.sigmas
        e = ent.d.max(axis=1)
        soft = run.sigma_wise["softmax"].d.max(axis=1)
        at_pred = int(np.argmin(np.abs(s - ref.sigma_pred)))
        below_pred = s <= ref.sigma_pred * (1 + tiny)
        out[run.name] = {
            "entmax_exact_below_traj": bool(
                np.all(e[s <= ref.sigma_traj * (1 + tiny)] <= run.exact_atol)
            ),
            "entmax_never_exact_above_pred": bool(
                np.all(e[s > ref.sigma_pred * (1 + tiny)] > run.exact_atol)
            ),
            "entmax_exact_at_pred": bool(np.all(e[below_pred] <= run.exact_atol)),
            "entmax_else_elsewhere": bool(
                np.all((e <= run.exact_atol) | (s > ent.half_margin) | ~below_pred)
            ),
            "anneal_entmax_exact_below_pred": bool(
                "entmax15" not in run.annealing
                or np.all(
                    run.annealing["entmax15"].d[
                        run.annealing["entmax15"].sigmas
                        <= run.annealing["entmax15"].sigma_exact * (1 + tiny)
                    ]
                    <= run.exact_atol
                )
            ),
            "softmax_decays": bool(
                soft[at_pred] > run.exact_atol
                and soft[-1] <= 1e-6 * max(run.scale, 1.0)
                and soft[-1] < soft[0]
                and _exact_from(s, soft, run.exact_atol) < _exact_from(s, e, run.exact_atol)
            ),
            "branch_monotone_in_regime": _branch_ok(run),
            "regime_not_vacuous": bool(
                "softmax" in run.branches
                and run.branches["softmax"].d.size > 0
                and run.branches["softmax"].d[0] > 1e3 * run.exact_atol
            ),
        }
    return out


def _branch_ok(run: DatasetRun) -> bool:
    """Theorems M and E on the branch of ``run`` (see :func:`check_rows`)."""
    if set(run.branches) != set(KINDS):
        return False
    for kind, br in run.branches.items():
        if not (math.isfinite(br.regime_sigma) and br.d.size and br.converged.all()):
            return False
        if monotone_fraction(br.d, run.exact_atol) != 1.0:
            return False
        b = br.bound
        if kind == "softmax":
            within = br.d <= b * (1 + 1e-9) + run.exact_atol
        else:  # entmax-1.5: the closed form (rounding of the margins near the fold)
            within = np.abs(br.d - b) <= 1e-6 * b + run.exact_atol
        if not (np.all(np.isfinite(b)) and np.all(within)):
            return False
    return True


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        if v == 0.0:
            return "0"
        return f"{v:.3g}"
    return str(v)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The table as GitHub Markdown (the columns a reader needs; all are in the CSV)."""
    head = [
        "dataset", "n", "d", "k",
        "d final softmax / entmax", "d at min Δ/2 softmax / entmax",
        "σ exact entmax (observed)", "min Δ/2 (predicted)", "σ traj",
        "σ exact softmax (observed)",
        "iterations softmax / entmax", "time (s)", "backend",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["dataset"], r["n"], r["d"], r["k"],
            f"{_fmt(r['d_final_softmax'])} / {_fmt(r['d_final_entmax15'])}",
            f"{_fmt(r['d_pred_softmax'])} / {_fmt(r['d_pred_entmax15'])}",
            _fmt(r["sigma_exact_observed"]), _fmt(r["sigma_pred"]), _fmt(r["sigma_traj"]),
            _fmt(r["sigma_exact_softmax"]),
            f"{r['iterations_softmax']} / {r['iterations_entmax15']}",
            f"{r['wall_time_s']:.1f}", r["backend"],
        ]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _pct(v: float) -> str:
    return "—" if math.isnan(v) else f"{100 * v:.0f} %"


def regime_table(rows: list[dict[str, Any]], scales: dict[str, float]) -> str:
    """The monotone regime per data set (Markdown): the certified temperatures, d(σ₀),
    and the monotone-step fractions inside (proved) and outside (observed)."""
    head = [
        "dataset", "σ₀ softmax", "d(σ₀)", "d(σ₀) / scale", "σ_e entmax", "min Δ/2",
        "branch, σ ≤ σ₀ / σ_e: monotone softmax / entmax (theorem)",
        "same start, σ ≤ σ₀ / σ_e (observed)",
        "same start, σ > σ₀ / σ_e (observed)",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        d0 = r["d_sigma0_softmax"]
        cells = [
            r["dataset"], _fmt(r["sigma0_softmax"]), _fmt(d0),
            _fmt(d0 / scales[r["dataset"]]) if scales.get(r["dataset"]) else "—",
            _fmt(r["sigma_e_entmax15"]), _fmt(r["sigma_pred"]),
            f"{_pct(r['monotone_branch_softmax'])} / {_pct(r['monotone_branch_entmax15'])}",
            f"{_pct(r['monotone_inside_softmax'])} / {_pct(r['monotone_inside_entmax15'])}",
            f"{_pct(r['monotone_outside_softmax'])} / {_pct(r['monotone_outside_entmax15'])}"
            f" of {r['steps_outside_softmax']} / {r['steps_outside_entmax15']} steps",
        ]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(
    path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | None = None
) -> None:
    """Rows of dicts as CSV (floats with full precision, NaN as empty)."""
    cols = list(columns if columns is not None else rows[0].keys()) if rows else []
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow(
                [
                    ""
                    if isinstance(r[c], float) and math.isnan(r[c])
                    else (repr(r[c]) if isinstance(r[c], float) else r[c])
                    for c in cols
                ]
            )


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as JSON (NumPy arrays as lists, NaN and infinities as ``null``)."""
    path.write_text(json.dumps(_jsonable(obj), indent=1) + "\n", encoding="utf-8")
