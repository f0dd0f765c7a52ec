"""Smoke test of ``benchmarks/bench_kmeans.py`` (tiny shapes; no timing is asserted)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kmeans.py"


def _load_module():
    spec = importlib.util.spec_from_file_location("bench_kmeans", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_run_writes_a_table(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    out = tmp_path / "bench.md"
    cmd = [
        sys.executable,
        str(BENCH),
        "--quick",
        "--repeats",
        "1",
        "--runners",
        "arbf-numpy,arbf-numpy-pure,sklearn,sklearnex",
        "--no-memory",
        "--keep-blas-env",  # tests never change OPENBLAS_* (not even in the child)
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "arbf-numpy / sklearn |" in text
    if importlib.util.find_spec("sklearnex") is not None:
        assert "arbf-numpy / sklearnex" in text
    assert "### One fit of 1 Lloyd iteration" in text and "### Full fit" in text
    rows = [line for line in text.splitlines() if line.startswith("| 3000 |")]
    assert len(rows) == 4  # float32 and float64, in both tables
    full = text.split("### Full fit")[1]
    for row in [r for r in full.splitlines() if r.startswith("| 3000 |")]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        n_iter = cells[-3].split("/")
        assert n_iter[0] == n_iter[1]  # the same fit: same n_iter, labels, inertia
        assert float(cells[-2]) == 1.0
        assert float(cells[-1]) < 1e-5
    assert "BLAS" in proc.stdout


def test_runners_agree_on_a_tiny_problem() -> None:
    bench = _load_module()
    X, C0 = bench.make_data(500, 3, 4, "float64")
    a = bench.make_runner("arbf-numpy", X, C0)()
    b = bench.make_runner("arbf-numpy-pure", X, C0)()
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.centers, b.centers, rtol=1e-12)
    if importlib.util.find_spec("sklearn") is not None:
        km = bench.make_runner("sklearn", X, C0)()
        np.testing.assert_array_equal(a.labels, km.labels_)
        np.testing.assert_allclose(a.inertia, km.inertia_, rtol=1e-10)
        # the full fit from the same init: the same result
        full = bench.make_runner("arbf-numpy", X, C0, 300, 1e-4)()
        ref = bench.make_runner("sklearn", X, C0, 300, 1e-4)()
        got, want = bench.result_of("arbf-numpy", full), bench.result_of("sklearn", ref)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-10)
        assert got[2] == want[2]
    if importlib.util.find_spec("sklearnex") is not None:
        kx = bench.make_runner("sklearnex", X, C0)()
        np.testing.assert_allclose(a.inertia, kx.inertia_, rtol=1e-6)
    assert bench.available("faiss", "float64") is not None


def test_peak_memory_probe_sees_an_allocation() -> None:
    bench = _load_module()
    peak = bench.peak_rss_delta_mib(lambda: np.ones(8 * 2**20 // 8 * 4).sum())  # 32 MiB
    if peak is None:
        pytest.skip("no /proc/self/clear_refs on this system")
    assert peak >= 16


def test_time_row_idles_before_every_timed_call_outside_the_timing(monkeypatch) -> None:
    # a fake clock: a call takes 1 ms, a pause the seconds asked for -- so the assertions
    # do not depend on the machine's load
    bench = _load_module()
    clock = [0.0]
    events: list[str] = []

    def sleep(seconds: float) -> None:
        events.append("pause")
        clock[0] += seconds

    def run() -> None:
        events.append("call")
        clock[0] += 0.001

    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(bench.time, "sleep", sleep)
    t = bench.time_row({"a": run, "b": run}, 3, idle=0.03)
    # a warm-up call each, then a pause before every one of the 3 x 2 timed calls
    assert events == ["call", "call"] + ["pause", "call"] * 6
    assert t == pytest.approx({"a": 0.001, "b": 0.001})  # the pauses are not timed
    events.clear()
    bench.time_row({"a": run}, 3)
    assert events == ["call"] * 4  # no pause without idle


def test_no_pin_switches_arbfs_pinning_off(monkeypatch) -> None:
    # the flag takes effect before the benchmark re-executes itself (and is passed on)
    from arbf._math.kernels import runtime

    bench = _load_module()
    monkeypatch.setattr(runtime, "PIN_THREADS", True)
    seen: list[list[str]] = []

    def stop(argv: list[str], keep: bool) -> None:
        seen.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(bench, "_maybe_reexec", stop)
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--no-pin"])
    assert runtime.PIN_THREADS is False and seen == [["--quick", "--no-pin"]]
    monkeypatch.setattr(runtime, "PIN_THREADS", True)
    with pytest.raises(SystemExit):
        bench.main(["--quick"])
    assert runtime.PIN_THREADS is True
