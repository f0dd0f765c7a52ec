"""Tests for the deep-digits experiment (arbf._deep.digits) and the per-sample objectives."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import arbf
from arbf._backend import array_namespace
from arbf._math.core.terms import reduce_terms, sample_terms, select_objective

xpn = array_namespace(np.empty(0))


class TestSampleTerms:
    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    def test_totals_match_core_on_numpy(self, kind):
        rng = np.random.default_rng(0)
        X, C = rng.normal(size=(40, 3)), rng.normal(size=(5, 3))
        t = sample_terms(X, C, 0.4, kind=kind, xp=xpn)
        np.testing.assert_allclose(t.free_energy.sum(), arbf.free_energy(X, C, sigma=0.4,
                                   kind=kind), rtol=1e-12)  # fmt: skip
        np.testing.assert_allclose(t.distortion.sum(), arbf.soft_distortion(X, C, sigma=0.4,
                                   kind=kind), rtol=1e-12)  # fmt: skip
        np.testing.assert_allclose(t.inertia.sum(), arbf.inertia(X, C), rtol=1e-12)
        assert np.all(t.distortion >= t.inertia) and np.all(t.inertia >= t.free_energy)

    def test_sigma_zero_is_hard(self):
        rng = np.random.default_rng(1)
        X, C = rng.normal(size=(10, 2)), rng.normal(size=(3, 2))
        t = sample_terms(X, C, 0.0, kind="softmax", xp=xpn)
        np.testing.assert_array_equal(t.responsibilities, arbf.responsibilities(X, C, sigma=0))

    def test_bad_objective_and_reduction(self):
        rng = np.random.default_rng(2)
        t = sample_terms(rng.normal(size=(4, 2)), rng.normal(size=(2, 2)), 1.0,
                         kind="softmax", xp=xpn)  # fmt: skip
        with pytest.raises(ValueError):
            select_objective(t, "elbo", 1.0, n_features=2, n_clusters=2, xp=xpn)
        with pytest.raises(ValueError):
            reduce_terms(t.free_energy, None, "max", xp=xpn)


digits = pytest.importorskip("arbf._deep.digits")


class TestClusterAccuracy:
    def test_permuted_labels_score_one(self):
        y = np.array([0, 0, 1, 1, 2, 2])
        assert digits.cluster_accuracy(y, np.array([2, 2, 0, 0, 1, 1])) == 1.0

    def test_partial(self):
        y = np.array([0, 0, 0, 1, 1, 1])
        assert digits.cluster_accuracy(y, np.array([0, 0, 1, 1, 1, 1])) == pytest.approx(5 / 6)

    def test_more_clusters_than_classes(self):
        y = np.array([0, 0, 1, 1])
        assert digits.cluster_accuracy(y, np.array([0, 1, 2, 2])) == pytest.approx(3 / 4)


def test_summarise_and_table():
    per_seed = {
        0: {"a": {"acc": 0.5, "nmi": 0.4, "ari": 0.3}, "seconds": {"wall": 1.0}},
        1: {"a": {"acc": 0.7, "nmi": 0.6, "ari": 0.5}, "seconds": {"wall": 1.0}},
    }
    s = digits.summarise(per_seed)
    assert s["a"]["acc"][0] == pytest.approx(0.6)
    assert s["a"]["acc"][1] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert "| a | 0.600 ± 0.141 |" in digits.format_table(s)


def test_smoke_run_of_the_pipeline(tmp_path, capsys):
    """The whole pipeline on a 300-sample subset, 2 seeds, a few epochs (seconds)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    digits.add_parser(sub)
    out = tmp_path / "res.json"
    args = parser.parse_args(["deep-digits", "--quick", "--threads", "1", "--json", str(out)])
    assert digits.run(args) == 0
    text = capsys.readouterr().out
    for method in digits.METHODS:
        assert f"| {method} |" in text
    res = json.loads(out.read_text())
    assert set(res["summary"]) == set(digits.METHODS)
    for m in digits.METHODS:
        for metric in ("acc", "nmi", "ari"):
            mean, std = res["summary"][m][metric]
            assert -1.0 <= mean <= 1.0 and std >= 0.0


def test_core_import_pulls_in_no_framework():
    """``import arbf`` never imports torch, JAX or scikit-learn (checked in a fresh process)."""
    import subprocess
    import sys

    code = (
        "import sys, arbf, arbf._deep.digits, arbf._math.core.terms; "
        "print(sorted(m for m in ('torch', 'jax', 'sklearn', 'optax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
