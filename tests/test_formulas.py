"""Every place a formula is evaluated, checked for its *value* against the independent
reference (:mod:`tests.reference`), not only where it converges: the drivers' steps (the
fixed-point step and a fixed learning rate), the mini-batch step, the annealers' hard
finish and one-hot flags, the torch layer and the JAX functions."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import arbf
from arbf._drivers.minibatch import minibatch_step
from tests import reference as ref
from tests.backends import assert_close, skip_unless_selected

KINDS = ["softmax", "entmax15"]


def _data(seed: int = 0, n: int = 60, d: int = 3, k: int = 4, sep: float = 4.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * sep
    X = means[rng.integers(k, size=n)] + rng.normal(size=(n, d))
    C = X[rng.choice(n, k, replace=False)] + 0.3
    w = rng.uniform(0.0, 2.0, n)
    w[:3] = 0.0
    return X, C, w


def _tol(backend) -> dict:
    return {"rtol": 1e-10, "atol": 1e-10}


class TestDriverSteps:
    @pytest.mark.parametrize("kind", [*KINDS, "hard"])
    def test_rbf_kmeans_one_fixed_point_step(self, backend, kind):
        X, C, w = _data(1)
        res = arbf.rbf_kmeans(
            backend.asarray(X), backend.asarray(C), sigma=1.5, kind=kind,
            sample_weight=backend.asarray(w), max_iter=1, tol=0.0,
        )  # fmt: skip
        expected, _ = ref.soft_centroids(X, C, 1.5, kind, w)
        assert_close(res.centers, expected, backend=backend, **_tol(backend))
        assert res.n_iter == 1 and not res.converged
        h = res.history
        assert h["free_energy"][0] == pytest.approx(ref.free_energy(X, C, 1.5, kind, w), rel=1e-10)
        assert h["inertia"][0] == pytest.approx(ref.inertia(X, C, w), rel=1e-10)
        assert h["center_shift"][0] == pytest.approx(np.sum((expected - C) ** 2), rel=1e-8)

    @pytest.mark.parametrize("kind", KINDS)
    def test_rbf_kmeans_gradient_steps_with_a_fixed_lr(self, backend, kind):
        X, C, w = _data(2)
        lr = 0.01
        res = arbf.rbf_kmeans(
            backend.asarray(X), backend.asarray(C), sigma=2.0, kind=kind,
            sample_weight=backend.asarray(w), update="gradient", lr=lr, max_iter=2, tol=0.0,
        )  # fmt: skip
        C1 = C - lr * ref.gradient(X, C, 2.0, kind, w)
        C2 = C1 - lr * ref.gradient(X, C1, 2.0, kind, w)
        assert_close(res.centers, C2, backend=backend, **_tol(backend))

    @pytest.mark.parametrize("kind", [*KINDS, "hard"])
    @pytest.mark.parametrize("lr", ["lloyd", 0.004])
    def test_minibatch_step(self, backend, kind, lr):
        X, C, w = _data(3)
        counts = np.array([0.0, 2.5, 10.0, 1.0])
        xp = backend.xp
        sigma = 0.0 if kind == "hard" else 1.2
        got, new_counts, st = minibatch_step(
            backend.asarray(X), backend.asarray(C), backend.asarray(counts),
            backend.asarray(w), sigma=sigma, kind=kind, lr=lr, xp=xp,
        )  # fmt: skip
        expected, expected_counts = ref.minibatch_step(X, C, counts, sigma, kind, w, lr)
        assert_close(got, expected, backend=backend, **_tol(backend))
        assert_close(new_counts, expected_counts, backend=backend, **_tol(backend))
        assert float(backend.to_numpy(st.free_energy)) == pytest.approx(
            ref.free_energy(X, C, sigma, kind, w), rel=1e-10
        )

    @pytest.mark.parametrize("kind", [*KINDS, "hard"])
    def test_small_masses_and_a_center_without_mass(self, backend, kind):
        """Masses below 1 are masses (light weights), and a center that never had any
        mass stays where it is (no 0/0)."""
        X, C, _ = _data(12, n=30, k=3)
        C = np.vstack([C, [[1e3, 1e3, 1e3]]])  # far away: no mass at any σ used here
        w = np.full(len(X), 0.02)
        sigma = 0.0 if kind == "hard" else 0.8
        xp = backend.xp
        got = arbf.soft_lloyd_step(
            backend.asarray(X), backend.asarray(C), sigma=sigma, kind=kind,
            sample_weight=backend.asarray(w),
        )  # fmt: skip
        expected, N = ref.soft_centroids(X, C, sigma, kind, w)
        assert 0 < N[:3].max() < 1 and N[3] == 0
        assert_close(got, expected, backend=backend, **_tol(backend))
        counts = np.zeros(4)
        got_mb, got_counts, _ = minibatch_step(
            backend.asarray(X), backend.asarray(C), backend.asarray(counts),
            backend.asarray(w), sigma=sigma, kind=kind, xp=xp,
        )  # fmt: skip
        expected_mb, expected_counts = ref.minibatch_step(X, C, counts, sigma, kind, w)
        assert_close(got_mb, expected_mb, backend=backend, **_tol(backend))
        assert_close(got_counts, expected_counts, backend=backend, **_tol(backend))
        np.testing.assert_array_equal(backend.to_numpy(got_mb)[3], C[3])

    @pytest.mark.parametrize("kind", KINDS)
    def test_minibatch_estimator_partial_fit_step(self, kind):
        X, C, w = _data(4)
        est = arbf.MiniBatchRBFKMeans(4, sigma=0.8, kind=kind, init=C)
        est.partial_fit(X, sample_weight=w)
        expected, counts = ref.minibatch_step(X, C, np.zeros(4), 0.8, kind, w)
        np.testing.assert_allclose(est.cluster_centers_, expected, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(est.counts_, counts, rtol=1e-10)
        est.partial_fit(X[:20], sample_weight=w[:20])  # a second step uses the running masses
        expected2, _ = ref.minibatch_step(X[:20], expected, counts, 0.8, kind, w[:20])
        np.testing.assert_allclose(est.cluster_centers_, expected2, rtol=1e-10, atol=1e-10)


class TestAnnealFinish:
    @pytest.mark.parametrize("kind", KINDS)
    def test_last_level_far_from_a_fixed_point(self, backend, kind):
        """The schedule stops at a high temperature, so the hard finish has real work:
        several Lloyd iterations, ending at Lloyd's fixed point from the last level."""
        X, C, _ = _data(1, n=120, k=4, sep=1.0)
        res = arbf.anneal(
            backend.asarray(X), backend.asarray(C), kind=kind, schedule=[2.0], perturbation=0.0
        )
        assert res.kmeans is not None and res.kmeans.n_iter >= 4
        start = res.path[-1]
        assert not np.allclose(ref.lloyd_step(X, start), start)  # far from a fixed point
        C_ref = start
        for _ in range(300):  # Lloyd to its fixed point, by the reference
            nxt = ref.lloyd_step(X, C_ref)
            if np.array_equal(
                np.argmin(ref.sqdist(X, nxt), 1), np.argmin(ref.sqdist(X, C_ref), 1)
            ):
                C_ref = nxt
                break
            C_ref = nxt
        assert_close(res.centers, C_ref, backend=backend, rtol=1e-10, atol=1e-10)
        assert res.kmeans.inertia == pytest.approx(ref.inertia(X, C_ref), rel=1e-10)

    def test_one_hot_flags_read_from_the_responsibilities(self):
        X, C, _ = _data(6, n=90, k=3)
        res = arbf.anneal(X, C, kind="entmax15", schedule=np.geomspace(8.0, 1e-3, 12))
        for s, c, flag in zip(res.sigmas, res.path, res.one_hot, strict=True):
            R = ref.responsibilities(X, c, s, "entmax15")
            assert flag == bool(np.all(R.max(1) == 1.0)), s
        assert res.one_hot[0] is np.False_ or not res.one_hot[0]
        assert res.one_hot[-1]
        margins = np.sort(ref.sqdist(X, np.asarray(res.centers)), axis=1)
        assert res.sigma_exact == pytest.approx((margins[:, 1] - margins[:, 0]).min() / 2)

    @pytest.mark.parametrize(("ratio", "one_hot"), [(0.98, False), (1.02, True)])
    def test_one_hot_flag_next_to_the_threshold(self, ratio, one_hot):
        """From a K-Means fixed point c* with smallest margin m, one level at σ = m/(2·ratio):
        the flag says one-hot exactly when 2σ <= m (within 2 % of the threshold)."""
        X, C, _ = _data(11, n=80, k=3)
        c_star = np.asarray(arbf.kmeans(X, 3, init=C, tol=0.0).centers)
        Ds = np.sort(ref.sqdist(X, c_star), axis=1)
        m = float((Ds[:, 1] - Ds[:, 0]).min())
        sigma = m / (2.0 * ratio)
        res = arbf.anneal(X, c_star, kind="entmax15", schedule=[sigma], perturbation=0.0)
        R = ref.responsibilities(X, res.path[0], sigma, "entmax15")
        assert bool(np.all(R.max(1) == 1.0)) is one_hot
        assert bool(res.one_hot[0]) is one_hot

    def test_deterministic_annealing_finish(self):
        X, _, _ = _data(7, n=150, k=5)
        res = arbf.deterministic_annealing(X, 5, random_state=0, refine=0)
        C = np.asarray(res.centers)
        np.testing.assert_allclose(ref.lloyd_step(X, C), C, rtol=1e-12, atol=1e-12)
        assert res.kmeans is not None
        assert res.kmeans.inertia == pytest.approx(ref.inertia(X, C), rel=1e-12)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
class TestTorchLayerValues:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("reduction", ["sum", "mean"])
    def test_free_energy_responsibilities_and_gradient(self, kind, reduction):
        import torch

        from arbf.torch import RBFClustering

        X, C, w = _data(8)
        layer = RBFClustering(4, 3, sigma=0.9, kind=kind, reduction=reduction,
                              centers=torch.tensor(C), dtype=torch.float64)  # fmt: skip
        R, loss = layer(torch.tensor(X), torch.tensor(w))
        loss.backward()
        total = ref.free_energy(X, C, 0.9, kind, w)
        expected = total if reduction == "sum" else total / w.sum()
        assert loss.item() == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(
            R.detach().numpy(), ref.responsibilities(X, C, 0.9, kind), atol=1e-12
        )
        g = ref.gradient(X, C, 0.9, kind, w) / (1.0 if reduction == "sum" else w.sum())
        np.testing.assert_allclose(layer.centers.grad.numpy(), g, rtol=1e-10, atol=1e-12)

    def test_distortion_and_nll_values(self):
        import torch

        from arbf.torch import RBFClustering

        X, C, _ = _data(9)
        for objective, expected in (
            ("distortion", ref.soft_distortion(X, C, 0.9, "softmax")),
            ("nll", ref.free_energy(X, C, 0.9, "softmax") / 0.9
             + len(X) * (1.5 * np.log(np.pi * 0.9) + np.log(4))),
        ):  # fmt: skip
            layer = RBFClustering(4, 3, sigma=0.9, objective=objective, reduction="sum",
                                  centers=torch.tensor(C), dtype=torch.float64)  # fmt: skip
            assert layer(torch.tensor(X)).loss.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
class TestJaxValues:
    @pytest.mark.parametrize("kind", KINDS)
    def test_loss_apply_and_gradient(self, kind):
        skip_unless_selected("jax")
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp

        from arbf import jax as ajax

        X, C, w = _data(10)
        params = ajax.init_params(centers=jnp.asarray(C), sigma=0.9)
        loss = ajax.loss(params, jnp.asarray(X), kind=kind, reduction="sum",
                         sample_weight=jnp.asarray(w))  # fmt: skip
        assert float(loss) == pytest.approx(ref.free_energy(X, C, 0.9, kind, w), rel=1e-12)
        R = np.asarray(ajax.apply(params, jnp.asarray(X), kind=kind))
        np.testing.assert_allclose(R, ref.responsibilities(X, C, 0.9, kind), atol=1e-12)
        g = jax.grad(ajax.loss)(params, jnp.asarray(X), kind=kind, reduction="sum",
                                sample_weight=jnp.asarray(w))  # fmt: skip
        np.testing.assert_allclose(
            np.asarray(g["centers"]), ref.gradient(X, C, 0.9, kind, w), rtol=1e-10, atol=1e-12
        )
