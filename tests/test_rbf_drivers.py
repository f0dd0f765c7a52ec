"""Drivers of the RBF relaxation: rbf_kmeans (A2/A3) and anneal (A4)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import arbf
from arbf._drivers.rbf import critical_sigma, default_schedule, min_margin
from tests import reference as ref
from tests.backends import assert_close


def _mixture(seed: int = 0, n_per: int = 40, sep: float = 10.0, d: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0] * d, [sep] + [0.0] * (d - 1), [0.0, sep] + [0.0] * (d - 2)])
    return np.concatenate([m + rng.normal(size=(n_per, d)) for m in means])


INIT = np.array([[1.0, 1.0], [8.0, 1.0], [1.0, 8.0]])


class TestRBFKMeans:
    def test_hard_equals_lloyd(self, backend):
        X = _mixture()
        km = arbf.kmeans(X, 3, init=INIT, tol=0.0)
        res = arbf.rbf_kmeans(backend.asarray(X), backend.asarray(INIT), sigma=0.0, tol=0.0)
        assert_close(
            res.centers, km.centers, backend=backend, rtol=1e-10, dtype=backend.xp.float64
        )
        assert res.converged

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_fixed_point(self, backend, kind):
        X = _mixture(1)
        res = arbf.rbf_kmeans(
            backend.asarray(X),
            backend.asarray(INIT),
            sigma=4.0,
            kind=kind,
            tol=1e-14,
            max_iter=500,
        )
        step = arbf.soft_lloyd_step(backend.asarray(X), res.centers, sigma=4.0, kind=kind)
        assert_close(step, backend.to_numpy(res.centers), backend=backend, rtol=1e-7, atol=1e-7)
        assert res.converged
        assert set(res.history) == {"free_energy", "soft_distortion", "inertia", "center_shift"}

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_gradient_lloyd_lr_lands_on_the_soft_centroids(self, kind):
        """update="gradient" with lr="lloyd" (η_j = 1/(2N_j)) against the reference soft
        centroids, step by step (not against the fixed-point option, which is the same
        code)."""
        X = _mixture(2)
        b = arbf.rbf_kmeans(
            X, INIT, sigma=2.0, kind=kind, max_iter=3, tol=0.0, update="gradient", lr="lloyd"
        )
        C = INIT
        for _ in range(3):
            C, _ = ref.soft_centroids(X, C, 2.0, kind)
        np.testing.assert_allclose(b.centers, C, rtol=1e-10, atol=1e-10)

    def test_gradient_small_lr_reaches_same_fixed_point(self):
        X = _mixture(3)
        a = arbf.rbf_kmeans(X, INIT, sigma=2.0, tol=1e-14, max_iter=500)
        b = arbf.rbf_kmeans(
            X,
            INIT,
            sigma=2.0,
            update="gradient",
            lr=1.0 / (2 * X.shape[0]),
            tol=1e-16,
            max_iter=3000,
        )
        np.testing.assert_allclose(b.centers, a.centers, rtol=1e-6, atol=1e-6)

    def test_free_energy_nonincreasing_along_fixed_point_iterations(self):
        X = _mixture(4)
        res = arbf.rbf_kmeans(X, INIT, sigma=3.0, tol=0.0, max_iter=30)
        F = res.history["free_energy"]
        assert np.all(np.diff(F) <= 1e-9 * np.abs(F[:-1]))

    def test_entmax_below_exact_sigma_is_lloyd_trajectory(self):
        X = _mixture(5, sep=20.0)
        km = arbf.kmeans(X, 3, init=INIT * 2.5, tol=0.0)
        # the smallest margin along Lloyd's trajectory bounds the exact regime
        sig = 0.5 * min(min_margin(X, c, xp=np) for c in (INIT * 2.5, km.centers))
        res = arbf.rbf_kmeans(X, INIT * 2.5, sigma=0.99 * sig, kind="entmax15", tol=0.0)
        np.testing.assert_array_equal(res.centers, km.centers)

    def test_bad_options(self):
        X = _mixture()
        with pytest.raises(ValueError, match="sigma"):
            arbf.rbf_kmeans(X, INIT, sigma=-1.0)
        with pytest.raises(ValueError, match="kind"):
            arbf.rbf_kmeans(X, INIT, sigma=1.0, kind="gauss")
        with pytest.raises(ValueError, match="update"):
            arbf.rbf_kmeans(X, INIT, sigma=1.0, update="newton")
        with pytest.raises(ValueError, match="lr"):
            arbf.rbf_kmeans(X, INIT, sigma=1.0, update="gradient", lr=-0.1)
        with pytest.raises(ValueError, match="max_iter"):
            arbf.rbf_kmeans(X, INIT, sigma=1.0, max_iter=0)
        with pytest.raises(ValueError, match="NaN"):
            arbf.rbf_kmeans(X, INIT * np.nan, sigma=1.0)

    @pytest.mark.filterwarnings("ignore:overflow encountered")
    def test_divergent_gradient_raises(self):
        X = _mixture()
        with pytest.raises(FloatingPointError, match="learning rate"):
            arbf.rbf_kmeans(X, INIT[:1], sigma=1.0, update="gradient", lr=1e6, max_iter=100)


class TestAnneal:
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_path_and_result(self, backend, kind):
        X = _mixture(6)
        res = arbf.anneal(
            backend.asarray(X),
            backend.asarray(INIT),
            kind=kind,
            schedule=[8.0, 4.0, 2.0, 1.0, 0.5, 0.25],
        )
        backend.check_same_kind(res.centers, dtype=backend.xp.float64)
        assert res.path.shape == (6, 3, 2)
        assert np.all(np.diff(res.sigmas) < 0)
        km = arbf.kmeans(X, 3, init=res.path[-1], n_init=1, tol=0.0)
        assert_close(res.centers, km.centers, backend=backend, rtol=1e-10)
        # the end is a K-Means fixed point: one more Lloyd step does not move it
        again = arbf.lloyd_step(backend.asarray(X), res.centers)
        assert_close(again, backend.to_numpy(res.centers), backend=backend, rtol=1e-12)

    def test_entmax_one_hot_iff_below_margin(self):
        X = _mixture(7, sep=20.0)
        res = arbf.anneal(X, INIT * 2, kind="entmax15", n_levels=12)
        for s, c, flag in zip(res.sigmas, res.path, res.one_hot, strict=True):
            # read from the responsibilities themselves, not from the library's margin
            R = ref.responsibilities(X, c, s, "entmax15")
            assert flag == bool(np.all(R.max(1) == 1.0))
            assert min_margin(X, c, xp=np) == pytest.approx(
                float(np.diff(np.sort(ref.sqdist(X, c), 1)[:, :2], axis=1).min()), rel=1e-12
            )
        assert res.one_hot[-1]
        assert res.sigma_exact > 0

    def test_discrepancy_nonincreasing_on_separated_mixture(self):
        X = _mixture(8, sep=30.0)
        res = arbf.anneal(X, INIT * 3, kind="softmax", schedule=np.geomspace(20.0, 0.05, 15))
        d = [float(np.max(arbf.centroid_discrepancy(c, res.centers))) for c in res.path]
        assert all(b <= a + 1e-12 for a, b in itertools.pairwise(d))
        assert d[-1] < 1e-8

    def test_objectives_sandwich(self):
        X = _mixture(9)
        res = arbf.anneal(X, INIT, kind="softmax", schedule=[5.0, 1.0, 0.2])
        F, L, J = (res.objectives[k] for k in ("free_energy", "soft_distortion", "inertia"))
        assert np.all(F <= J + 1e-9) and np.all(J <= L + 1e-9)

    def test_default_schedule_from_data(self):
        X = _mixture(10)
        s = default_schedule(X, INIT)
        assert s[0] == pytest.approx(critical_sigma(X, None, xp=np))
        cov = np.cov(X.T, bias=True)
        assert s[0] == pytest.approx(2 * np.linalg.eigvalsh(cov)[-1])
        assert s[-1] <= min(1e-3 * s[0], min_margin(X, INIT, xp=np) / 2) * (1 + 1e-12)
        assert np.all(np.diff(s) < 0) and s.size == 30
        # entmax-1.5 merged centers split at 2√2 λ_max, not 2 λ_max
        s_ent = default_schedule(X, INIT, kind="entmax15")
        assert s_ent[0] == pytest.approx(2 * np.sqrt(2) * np.linalg.eigvalsh(cov)[-1])

    def test_bad_schedule(self):
        X = _mixture()
        with pytest.raises(ValueError, match="non-increasing"):
            arbf.anneal(X, INIT, schedule=[1.0, 2.0])
        with pytest.raises(ValueError, match="schedule entries"):
            arbf.anneal(X, INIT, schedule=[1.0, -2.0])
        with pytest.raises(TypeError, match="schedule entries"):
            arbf.anneal(X, INIT, schedule=["1.0", 0.5])
        with pytest.raises(ValueError, match="1-D"):
            arbf.anneal(X, INIT, schedule=np.array([[1.0, 0.5]]))
        with pytest.raises(ValueError, match="at least one"):
            arbf.anneal(X, INIT, schedule=[])
        with pytest.raises(ValueError, match="kind"):
            arbf.anneal(X, INIT, kind="hard")

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_merged_centers_split_again(self, kind):
        X = _mixture(11, sep=12.0)
        merged = np.repeat(X.mean(axis=0, keepdims=True), 3, axis=0)
        sched = np.geomspace(200.0, 0.5, 25)
        res = arbf.anneal(X, merged, kind=kind, schedule=sched, finish=False)
        last = res.path[-1]
        assert min(np.linalg.norm(last[i] - last[j]) for i in range(3) for j in range(i)) > 5
        again = arbf.anneal(X, merged, kind=kind, schedule=sched, finish=False)
        np.testing.assert_array_equal(again.path, res.path)  # deterministic by default
        # without symmetry breaking, identical centers are a fixed point of every update
        stuck = arbf.anneal(X, merged, kind=kind, schedule=sched, finish=False, perturbation=0)
        np.testing.assert_allclose(stuck.path[-1], merged, atol=1e-9)

    def test_bad_perturbation(self):
        with pytest.raises(ValueError, match="perturbation"):
            arbf.anneal(_mixture(), INIT, perturbation=-1.0)

    def test_verbose_prints_levels(self, capsys):
        X = _mixture()
        arbf.anneal(X, INIT, schedule=[2.0, 1.0], verbose=True, finish=False)
        out = capsys.readouterr().out.splitlines()
        assert [line.split(":")[0] for line in out] == ["level 1/2", "level 2/2"]
