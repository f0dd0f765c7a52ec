"""``python -m arbf reproduce``: the --quick path end to end, what it must show, errors.

What the output must show (issue 4, point 5), from SPEC §1 Theorem 4 — an entmax-1.5 row
is one-hot iff its margin Δ_i ≥ 2σ, so entmax is exactly hard at σ *at or below*
min Δ/2, never above — and Theorem 3 — softmax only tends to K-Means:

- entmax discrepancy exactly 0 (to rounding) at every σ ≤ σ_traj (min Δ/2 along Lloyd's
  trajectory from the initialisation: there every entmax step is Lloyd's step);
- never 0 above the predicted min Δ/2 at the K-Means solution;
- at σ ≤ min Δ/2, 0 unless the entmax run from the initialisation ended at another,
  non-one-hot fixed point (it is reported; it happens on few data sets);
- softmax discrepancy decays towards 0 but is not 0 where entmax already is;
- the monotone regime (Theorems M and E, :func:`arbf.monotone_regime`): σ₀ and σ_e are
  certified on every data set, the branch continued from c* is monotone at and below
  them (100 % of its steps) and within the certified bound, d(σ₀) is far above rounding;
  the fractions outside the regime are reported and labelled as observations;
- the same table from ``--backend torch`` and ``--backend numpy``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arbf.__main__ import main
from arbf._reproduce.runner import ProgressBar
from arbf.datasets import DATASETS

QUICK = ["reproduce", "--quick", "--quiet", "--seed", "0"]


@pytest.fixture(scope="module")
def quick_numpy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("quick_numpy")
    assert main([*QUICK, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def quick_torch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("quick_torch")
    assert main([*QUICK, "--out", str(out), "--backend", "torch", "--no-figures"]) == 0
    return out


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def _table(out: Path) -> list[dict[str, str]]:
    with (out / "table.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _curves(res: dict, name: str, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ds = next(d for d in res["datasets"] if d["dataset"] == name)
    sw = ds["sigma_wise"][kind]
    return (
        np.asarray(sw["sigmas"], dtype=float),
        np.asarray(sw["d"], dtype=float).max(axis=1),
        np.asarray(sw["half_margin"], dtype=float),
    )


def _dataset(res: dict, name: str) -> dict:
    return next(d for d in res["datasets"] if d["dataset"] == name)


class TestOutput:
    def test_files(self, quick_numpy):
        for f in ("report.md", "table.csv", "sigma_wise.csv", "init_wise.csv", "paths.csv",
                  "results.json", "sigma_wise.png", "init_wise.png", "paths.png"):  # fmt: skip
            assert (quick_numpy / f).is_file(), f
        for f in ("sigma_wise.png", "init_wise.png", "paths.png"):
            assert (quick_numpy / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_report_embeds_table_figures_and_command(self, quick_numpy):
        report = (quick_numpy / "report.md").read_text(encoding="utf-8")
        assert "python -m arbf reproduce --quick" in report
        for f in ("sigma_wise.png", "init_wise.png", "paths.png"):
            assert f"]({f})" in report
        for name in DATASETS:
            assert f"| {name} |" in report
        assert "min Δ/2 (predicted)" in report and "σ exact entmax (observed)" in report

    def test_table_rows(self, quick_numpy):
        rows = _table(quick_numpy)
        assert [r["dataset"] for r in rows] == list(DATASETS)
        for r in rows:
            spec = DATASETS[r["dataset"]]
            assert int(r["k"]) == spec.n_clusters
            assert int(r["d"]) == (10 if r["dataset"] == "highdim" else 2)
            assert r["backend"] == "numpy"
            assert float(r["wall_time_s"]) > 0
            assert 0.0 <= float(r["monotone_softmax"]) <= 1.0
            for kind in ("softmax", "entmax15"):
                assert float(r[f"monotone_branch_{kind}"]) == 1.0
                for where in ("inside", "outside"):
                    v = r[f"monotone_{where}_{kind}"]
                    assert v == "" or 0.0 <= float(v) <= 1.0

    def test_reference_is_the_kmeans_fixed_point(self, quick_numpy):
        for d in _results(quick_numpy)["datasets"]:
            assert d["reference"]["kmeans_agreement"] <= d["exact_atol"], d["dataset"]


def _fast_paths_on() -> bool:
    import arbf
    from arbf._math.kernels import runtime

    return arbf.get_config().fast_paths and runtime.HAVE_NUMBA


class TestWhatItShows:
    """Issue 4, point 5, checked on the --quick output of every data set."""

    @pytest.mark.parametrize("name", list(DATASETS))
    def test_entmax_exact_at_or_below_its_temperature(self, quick_numpy, name):
        res = _results(quick_numpy)
        ds = _dataset(res, name)
        atol, ref = ds["exact_atol"], ds["reference"]
        s, e, half_margin = _curves(res, name, "entmax15")
        pred, traj = ref["sigma_pred"], ref["sigma_traj"]
        assert traj <= pred
        # Theorem 4 along Lloyd's trajectory: exactly Lloyd, hence exactly K-Means
        assert np.any(s <= traj * (1 + 1e-12))
        assert np.all(e[s <= traj * (1 + 1e-12)] <= atol)
        if _fast_paths_on():  # the NumPy fast paths reproduce Lloyd bit for bit there
            assert np.all(e[s <= traj * (1 + 1e-12)] == 0.0)
        # ... and c* is no entmax fixed point above min Δ/2: never exact there
        assert np.all(e[s > pred * (1 + 1e-12)] > atol)
        # at or below min Δ/2: exact, unless the run ended at another non-one-hot point
        below = s <= pred * (1 + 1e-12)
        assert np.all((e[below] <= atol) | (s[below] > half_margin[below]))
        row = next(r for r in res["table"] if r["dataset"] == name)
        assert traj * (1 - 1e-12) <= row["sigma_exact_observed"] <= pred * (1 + 1e-12)
        assert res["checks"][name]["entmax_exact_below_traj"]

    def test_entmax_exact_at_predicted_sigma_on_most_data_sets(self, quick_numpy):
        checks = _results(quick_numpy)["checks"]
        exact = [n for n, c in checks.items() if c["entmax_exact_at_pred"]]
        assert len(exact) >= len(checks) - 2, checks

    @pytest.mark.parametrize("name", list(DATASETS))
    def test_softmax_decays_towards_zero(self, quick_numpy, name):
        res = _results(quick_numpy)
        ds = _dataset(res, name)
        atol, ref = ds["exact_atol"], ds["reference"]
        s, soft, _ = _curves(res, name, "softmax")
        at_pred = int(np.argmin(np.abs(s - ref["sigma_pred"])))
        assert soft[at_pred] > atol  # not exact where entmax already can be
        assert soft[-1] <= 1e-6 * max(ds["scale"], 1.0)
        assert soft[-1] < 1e-3 * soft[0]
        row = next(r for r in res["table"] if r["dataset"] == name)
        se, ee = row["sigma_exact_softmax"], row["sigma_exact_observed"]
        assert se is None or se < ee  # rounding makes softmax 0 only further down
        assert res["checks"][name]["softmax_decays"]


class TestMonotoneRegime:
    """Theorems M and E on the branch of every data set; the rest is an observation."""

    @pytest.mark.parametrize("name", list(DATASETS))
    def test_branch_is_monotone_inside_the_regime(self, quick_numpy, name):
        res = _results(quick_numpy)
        ds = _dataset(res, name)
        atol, scale, pred = ds["exact_atol"], ds["scale"], ds["reference"]["sigma_pred"]
        row = next(r for r in res["table"] if r["dataset"] == name)
        s0, se = row["sigma0_softmax"], row["sigma_e_entmax15"]
        assert s0 is not None and 0 < s0 < pred  # certified, below min Δ/2
        assert se is not None and se >= pred * (1 - 1e-12)
        for kind, top in (("softmax", s0), ("entmax15", se)):
            br = ds["branch"][kind]
            s, d, b = (np.asarray(br[key], dtype=float) for key in ("sigmas", "d", "bound"))
            assert br["reason"] is None and s[0] == top and np.all(np.diff(s) < 0)
            assert all(br["converged"])
            assert np.all(np.diff(d) <= atol + 1e-9 * np.abs(d[:-1]))  # σ falls, d does not grow
            assert row[f"monotone_branch_{kind}"] == 1.0
            if kind == "softmax":
                assert np.all(d <= b * (1 + 1e-9) + atol)
                assert d[0] > 1e3 * atol and d[0] >= 1e-7 * scale  # not vacuous
                assert row["d_sigma0_softmax"] == d[0]
            else:
                assert np.all(d[s <= pred * (1 + 1e-12)] <= atol)
                assert np.all(np.abs(d - b) <= 1e-6 * b + atol)
        assert res["checks"][name]["branch_monotone_in_regime"]
        assert res["checks"][name]["regime_not_vacuous"]

    def test_outside_the_regime_is_an_observation(self, quick_numpy):
        report = (quick_numpy / "report.md").read_text(encoding="utf-8")
        assert "## Monotone regime (Theorems M and E)" in report
        assert "same start, σ > σ₀ / σ_e (observed)" in report
        assert "**Observed, not claimed**" in report
        res = _results(quick_numpy)
        # the same-start runs are not monotone everywhere outside the regime (two moons)
        outside = [r["monotone_outside_softmax"] for r in res["table"]]
        assert all(v is None or 0.0 <= v <= 1.0 for v in outside)
        assert min(v for v in outside if v is not None) < 1.0


@pytest.mark.parametrize("name", list(DATASETS))
def test_annealing_path_recorded(quick_numpy, name):
    ds = _dataset(_results(quick_numpy), name)
    for kind in ("softmax", "entmax15"):
        a = ds["annealing"][kind]
        L = len(a["sigmas"])
        assert np.asarray(a["path"]).shape == (L, ds["k"], ds["d"])
        assert np.all(np.diff(a["sigmas"]) < 0)
    # entmax's last level is already exactly the K-Means point the path ends in
    assert ds["annealing"]["entmax15"]["d_to_final"][-1] <= ds["exact_atol"]


def test_torch_gives_the_same_table(quick_numpy, quick_torch):
    a, b = _table(quick_numpy), _table(quick_torch)
    assert [r["dataset"] for r in a] == [r["dataset"] for r in b]
    scale = {d["dataset"]: d["scale"] for d in _results(quick_numpy)["datasets"]}
    for ra, rb in zip(a, b, strict=True):
        assert rb["backend"].startswith("torch")
        for col in ra:
            if col in ("wall_time_s", "backend", "dataset"):
                continue
            va, vb = ra[col], rb[col]
            if va == "" or vb == "":
                assert va == vb, (ra["dataset"], col, va, vb)
                continue
            fa, fb = float(va), float(vb)
            atol = 1e-10 * max(scale[ra["dataset"]], 1.0)
            assert math.isclose(fa, fb, rel_tol=1e-6, abs_tol=atol), (ra["dataset"], col, va, vb)


def test_datasets_subset_and_seed(tmp_path):
    out = tmp_path / "sub"
    code = main(["reproduce", "--quick", "--quiet", "--no-figures", "--datasets", "moons",
                 "--seed", "3", "--out", str(out)])  # fmt: skip
    assert code == 0
    res = _results(out)
    assert [r["dataset"] for r in res["table"]] == ["moons"] and res["seed"] == 3
    assert not (out / "sigma_wise.png").exists()


class TestErrors:
    def _one_line(self, err: str) -> str:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, err
        assert "Traceback" not in err
        return lines[0]

    def test_unknown_option(self, capsys):
        assert main(["reproduce", "--frobnicate"]) == 2
        line = self._one_line(capsys.readouterr().err)
        assert "--frobnicate" in line

    def test_unknown_dataset_and_backend(self, capsys):
        assert main(["reproduce", "--datasets", "spirals"]) == 2
        assert "spirals" in self._one_line(capsys.readouterr().err)
        assert main(["reproduce", "--backend", "mxnet"]) == 2
        assert "mxnet" in self._one_line(capsys.readouterr().err)

    def test_unwritable_output_folder(self, tmp_path, capsys):
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        assert main(["reproduce", "--quick", "--no-figures", "--out", str(blocker / "out")]) == 1
        line = self._one_line(capsys.readouterr().err)
        assert "cannot write to output folder" in line

    def test_missing_backend(self, tmp_path, capsys, monkeypatch):
        monkeypatch.setitem(sys.modules, "torch", None)  # "not installed"
        out = tmp_path / "out"
        assert main(["reproduce", "--backend", "torch", "--out", str(out), "--no-figures"]) == 1
        line = self._one_line(capsys.readouterr().err)
        assert "torch" in line and "pip install" in line
        assert not out.exists()  # failed before doing anything

    def test_missing_matplotlib(self, tmp_path, capsys, monkeypatch):
        monkeypatch.setitem(sys.modules, "matplotlib", None)
        monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
        assert main(["reproduce", "--quick", "--out", str(tmp_path / "o")]) == 1
        line = self._one_line(capsys.readouterr().err)
        assert "matplotlib" in line and "--no-figures" in line

    def test_no_command_prints_help(self, capsys):
        assert main([]) == 2
        assert "reproduce" in capsys.readouterr().err

    def test_module_entry_point(self):
        proc = subprocess.run(
            [sys.executable, "-m", "arbf", "reproduce", "--nope"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr and "--nope" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_progress_bar_without_terminal():
    buf = io.StringIO()
    bar = ProgressBar(20, stream=buf)
    bar.set_label("moons")
    for _ in range(20):
        bar.step()
    bar.close()
    lines = buf.getvalue().splitlines()
    assert lines[-1].startswith("[" + "#" * 30 + "] 100%")
    assert 2 <= len(lines) <= 13  # every 10 %, not every step
    quiet = io.StringIO()
    ProgressBar(5, stream=quiet, enabled=False).step()
    assert quiet.getvalue() == ""
