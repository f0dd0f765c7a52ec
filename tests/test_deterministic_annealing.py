"""Tests for deterministic annealing with splitting (arbf._drivers.deterministic_annealing)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import arbf
from arbf._drivers.deterministic_annealing import (
    anneal_init,
    critical_factor,
    deterministic_annealing,
)
from tests.backends import assert_close

# cheaper settings for the backend matrix (lazy and eager-dispatch backends are slow)
FAST = {"refine": 0, "hard_tol": 0.1}


def _mixture(seed: int = 0, n_per: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    return np.concatenate([rng.normal(m, 1.0, (n_per, 2)) for m in means])


def _two_clusters(seed: int = 0) -> np.ndarray:
    """Two clusters at (±3, 0) with isotropic noise 0.5: the split axis is x."""
    rng = np.random.default_rng(seed)
    X = np.concatenate(
        [rng.normal([-3.0, 0.0], 0.5, (100, 2)), rng.normal([3.0, 0.0], 0.5, (100, 2))]
    )
    return X


def _lambda_max(X: np.ndarray) -> float:
    Xc = X - X.mean(0)
    return float(np.linalg.eigvalsh(Xc.T @ Xc / X.shape[0])[-1])


def _pairs_of_clusters(seed: int = 0) -> np.ndarray:
    """12 far-apart groups, each of two close clusters (k = 24).

    k-means++ with one initialisation often leaves a group with one center and another
    with three: Lloyd cannot move a center across the empty space between groups.
    """
    rng = np.random.default_rng(seed)
    groups = [[x, y] for x in (0.0, 20.0, 40.0, 60.0) for y in (0.0, 20.0, 40.0)]
    offsets = ([-2.0, 0.0], [2.0, 0.0])
    return np.concatenate(
        [rng.normal(np.add(g, o), 1.0, (25, 2)) for g in groups for o in offsets]
    )


class TestCriticalFactor:
    def test_values(self):
        assert critical_factor("softmax") == 2.0
        assert critical_factor("entmax15") == pytest.approx(2.0 * math.sqrt(2.0))

    def test_bad_kind(self):
        with pytest.raises(ValueError, match="kind"):
            critical_factor("hard")


class TestFixedPoint:
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_result_is_kmeans_fixed_point(self, backend, kind):
        X = backend.asarray(_mixture())
        res = deterministic_annealing(X, 3, kind=kind, random_state=0, **FAST)
        backend.check_same_kind(res.centers, dtype=backend.xp.float64)
        again = arbf.lloyd_step(X, res.centers)
        assert_close(again, backend.to_numpy(res.centers), backend=backend, rtol=1e-10, atol=1e-10)
        assert_close(arbf.inertia(X, res.centers), res.kmeans.inertia, backend=backend, rtol=1e-10)
        # the three generating clusters are found
        got = np.sort(backend.to_numpy(res.centers)[:, 0] + backend.to_numpy(res.centers)[:, 1])
        np.testing.assert_allclose(got, [0.0, 6.0, 6.0], atol=0.6)

    def test_anneal_init_then_kmeans(self, backend):
        X = backend.asarray(_mixture())
        C = anneal_init(X, 3, random_state=0)
        backend.check_same_kind(C, dtype=backend.xp.float64)
        res = arbf.kmeans(X, 3, init=C)
        assert res.n_iter <= 2  # the swaps already end at a Lloyd fixed point

    def test_float32_stays_float32(self, backend):
        X = backend.asarray(_mixture(), dtype="float32")
        res = deterministic_annealing(X, 3, random_state=0, **FAST)
        backend.check_same_kind(res.centers, dtype=backend.xp.float32)

    def test_subsampled_annealing_still_ends_at_fixed_point(self, backend):
        X = backend.asarray(_mixture(3))
        res = deterministic_annealing(X, 3, random_state=0, max_samples=40, **FAST)
        assert_close(
            arbf.lloyd_step(X, res.centers),
            backend.to_numpy(res.centers),
            backend=backend,
            rtol=1e-10,
            atol=1e-10,
        )

    def test_sample_weight_equals_repetition(self):
        X = _mixture(1, 20)
        w = np.ones(X.shape[0])
        w[::3] = 2.0
        Xr = np.concatenate([X, X[::3]])
        a = deterministic_annealing(X, 3, sample_weight=w, random_state=0, refine=0)
        b = deterministic_annealing(Xr, 3, random_state=0, refine=0)
        assert a.kmeans.inertia == pytest.approx(b.kmeans.inertia, rel=1e-9)

    def test_one_cluster_is_weighted_mean(self, backend):
        X = _mixture()
        w = np.linspace(0.5, 2.0, X.shape[0])
        res = deterministic_annealing(
            backend.asarray(X), 1, sample_weight=backend.asarray(w), random_state=0, **FAST
        )
        np.testing.assert_allclose(
            backend.to_numpy(res.centers)[0], (w[:, None] * X).sum(0) / w.sum(), rtol=1e-10
        )

    def test_fewer_distinct_points_than_clusters(self):
        X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 5, axis=0)
        with pytest.warns(arbf.ConvergenceWarning):
            res = deterministic_annealing(X, 3, random_state=0)
        assert res.centers.shape == (3, 2)
        assert res.kmeans.inertia == 0.0


class TestCriticalTemperature:
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_first_split_at_predicted_temperature(self, backend, kind):
        X = _two_clusters()
        predicted = critical_factor(kind) * _lambda_max(X)  # 2 λ (softmax), 2√2 λ (entmax)
        res = deterministic_annealing(
            backend.asarray(X), 2, kind=kind, cooling=0.95, random_state=0, **FAST
        )
        assert res.sigma_critical == pytest.approx(predicted, rel=1e-4)  # 3 power iterations
        sigma, _, crit = res.splits[0]
        assert crit == pytest.approx(predicted, rel=1e-4)
        assert 0.9 * predicted <= sigma < predicted
        # the split is along x (the top axis), and it happened: two separate centers
        C = backend.to_numpy(res.centers)
        np.testing.assert_allclose(np.sort(C[:, 0]), [-3.0, 3.0], atol=0.2)
        # no level above the critical temperature: the first level is just below it
        assert res.n_centers[0] == 2
        assert res.sigmas[0] == pytest.approx(0.95 * res.sigma_critical)
        assert np.all(np.diff(res.sigmas) < 0)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_prediction_matches_the_dynamics(self, kind):
        # the merged pair is stable just above the predicted σ_c and splits just below
        X = _two_clusters()
        sigma_c = critical_factor(kind) * _lambda_max(X)
        pair = X.mean(0) + np.array([[0.05, 0.0], [-0.05, 0.0]])
        above = arbf.rbf_kmeans(X, pair, sigma=1.15 * sigma_c, kind=kind, max_iter=3000, tol=1e-15)
        below = arbf.rbf_kmeans(X, pair, sigma=0.85 * sigma_c, kind=kind, max_iter=3000, tol=1e-15)
        assert np.ptp(above.centers[:, 0]) < 1e-6
        assert np.ptp(below.centers[:, 0]) > 1.0


class TestQuality:
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_beats_kmeanspp_local_minima(self, kind):
        X = _pairs_of_clusters()
        single = np.array(
            [arbf.kmeans(X, 24, n_init=1, random_state=s).inertia for s in range(20)]
        )
        res = deterministic_annealing(X, 24, kind=kind, random_state=0, refine=0)
        best = single.min()
        # k-means++ with n_init=1 falls into a worse local minimum often ...
        assert np.mean(single > best * (1 + 1e-9)) >= 0.5
        # ... the annealing alone (no swaps) beats every one of those and ties the best
        # (up to a boundary sample or two)
        assert res.kmeans.inertia < np.sort(single)[-1] * 0.95
        assert np.all(res.kmeans.inertia <= single[single > best * 1.01])
        assert res.kmeans.inertia <= best * (1 + 1e-4)

    def test_swaps_never_increase_inertia(self):
        X = _pairs_of_clusters(1)
        a = deterministic_annealing(X, 24, random_state=0, refine=0)
        b = deterministic_annealing(X, 24, random_state=0, refine=3)
        assert b.kmeans.inertia <= a.kmeans.inertia * (1 + 1e-12)


class TestDeterminism:
    def test_same_random_state_same_result(self, backend):
        X = backend.asarray(_mixture(2))
        a = deterministic_annealing(X, 4, random_state=7)  # with the swaps
        b = deterministic_annealing(X, 4, random_state=7)
        np.testing.assert_array_equal(backend.to_numpy(a.centers), backend.to_numpy(b.centers))
        np.testing.assert_array_equal(a.sigmas, b.sigmas)

    def test_same_across_backends(self, backend):
        X = _mixture(2)
        ref = deterministic_annealing(X, 4, random_state=7, **FAST)
        got = deterministic_annealing(backend.asarray(X), 4, random_state=7, **FAST)
        np.testing.assert_allclose(
            backend.to_numpy(got.centers), backend.to_numpy(ref.centers), rtol=1e-8, atol=1e-8
        )


class TestBadInput:
    """A wrong type is a TypeError, a wrong value a ValueError; both name the parameter."""

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"kind": "hard"}, ValueError, "kind"),
            ({"kind": "sparsemax"}, ValueError, "kind"),
            ({"cooling": 1.0}, ValueError, "cooling"),
            ({"cooling": 0.0}, ValueError, "cooling"),
            ({"cooling": float("nan")}, ValueError, "cooling"),
            ({"tol": -1.0}, ValueError, "tol"),
            ({"hard_tol": 0}, ValueError, "hard_tol"),
            ({"split_distance": -0.5}, ValueError, "split_distance"),
            ({"merge_tol": True}, TypeError, "merge_tol"),
            ({"max_iter": 0}, ValueError, "max_iter"),
            ({"max_iter": 2.5}, TypeError, "max_iter"),
            ({"n_power": 0}, ValueError, "n_power"),
            ({"max_rounds": 0}, ValueError, "max_rounds"),
            ({"refine": -1}, ValueError, "refine"),
            ({"refine": True}, TypeError, "refine"),
            ({"max_samples": "all"}, ValueError, "max_samples"),
            ({"max_samples": 0}, ValueError, "max_samples"),
            ({"random_state": "seed"}, TypeError, "random_state"),
            ({"verbose": "yes"}, TypeError, "verbose"),
            ({"finish": 1}, TypeError, "finish"),
        ],
    )
    def test_options(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            deterministic_annealing(_mixture(), 3, **kwargs)

    def test_n_clusters(self, backend):
        X = backend.asarray(_mixture())
        with pytest.raises(ValueError, match="n_clusters"):
            deterministic_annealing(X, 0)
        with pytest.raises(ValueError, match="n_samples"):
            deterministic_annealing(X, X.shape[0] + 1)
        with pytest.raises(TypeError, match="n_clusters"):
            deterministic_annealing(X, 2.0)

    def test_data(self, backend):
        X = _mixture()
        X[3, 1] = np.nan
        with pytest.raises(ValueError):
            deterministic_annealing(backend.asarray(X), 3)
        with pytest.raises(ValueError, match="2-D"):
            deterministic_annealing(backend.asarray(X[:, 0]), 3)

    def test_sample_weight(self, backend):
        X = backend.asarray(_mixture())
        w = np.ones(X.shape[0])
        w[0] = -1.0
        with pytest.raises(ValueError, match="negative"):
            deterministic_annealing(X, 3, sample_weight=backend.asarray(w))
        with pytest.raises(ValueError, match="sample_weight"):
            deterministic_annealing(X, 3, sample_weight=backend.asarray(np.ones(5)))

    def test_anneal_init_rejects_finish(self):
        with pytest.raises(TypeError, match="finish"):
            anneal_init(_mixture(), 3, finish=True)


class TestBenchmark:
    def test_quick_run_prints_table_and_summary(self):
        pytest.importorskip("sklearn")
        import subprocess
        import sys
        from pathlib import Path

        bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_anneal_quality.py"
        proc = subprocess.run(
            [sys.executable, str(bench), "--quick", "--keep-blas-env"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        assert "| instance" in out and "km++ x10" in out and "DA ent" in out
        summaries = [line for line in out.splitlines() if line.startswith("SUMMARY")]
        assert len(summaries) == 5
        assert all("instances" in line and "wall time" in line for line in summaries)


class TestKMeansInitAnneal:
    def test_kmeans_init_anneal(self, backend):
        X = backend.asarray(_mixture(4))
        res = arbf.kmeans(X, 3, init="anneal", random_state=0)
        backend.check_same_kind(res.centers, dtype=backend.xp.float64)
        assert len(res.n_init_inertia) == 1  # n_init="auto" means one run
        ref = deterministic_annealing(X, 3, random_state=0)
        assert res.inertia == pytest.approx(ref.kmeans.inertia, rel=1e-9)

    def test_kmeans_init_anneal_n_init(self):
        X = _mixture(4)
        res = arbf.kmeans(X, 3, init="anneal", n_init=2, random_state=0)
        assert len(res.n_init_inertia) == 2

    def test_estimator_init_anneal(self, backend):
        X = backend.asarray(_mixture(4))
        km = arbf.KMeans(n_clusters=3, init="anneal", random_state=0).fit(X)
        backend.check_same_kind(km.cluster_centers_, dtype=backend.xp.float64)
        assert km.inertia_ == pytest.approx(
            arbf.kmeans(X, 3, init="anneal", random_state=0).inertia, rel=1e-12
        )

    def test_beats_kmeanspp_through_kmeans(self):
        X = _pairs_of_clusters()
        single = [arbf.kmeans(X, 24, n_init=1, random_state=s).inertia for s in range(10)]
        assert arbf.kmeans(X, 24, init="anneal", random_state=0).inertia <= min(single) * (
            1 + 1e-4
        )
