"""Tests for arbf.jax: init_params, apply, loss, predict under jax.jit and jax.grad."""

from __future__ import annotations

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import arbf  # noqa: E402
from arbf import jax as ajax  # noqa: E402

KINDS = ("softmax", "entmax15")
jit_loss = jax.jit(ajax.loss, static_argnames=("kind", "objective", "reduction"))


def _data(n=60, d=3, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, d))), jnp.asarray(rng.normal(size=(k, d)))


class TestAgreesWithCore:
    @pytest.mark.parametrize("kind", [*KINDS, "hard"])
    @pytest.mark.parametrize("sigma", [0.05, 0.7, 20.0])
    def test_free_energy_value_and_center_gradient(self, kind, sigma):
        X, C = _data()
        p = ajax.init_params(centers=C, sigma=sigma)
        value, grad = jax.value_and_grad(jit_loss)(p, X, kind=kind, reduction="sum")
        ref = arbf.free_energy(np.asarray(X), np.asarray(C), sigma=sigma, kind=kind)
        np.testing.assert_allclose(float(value), float(ref), rtol=1e-12)
        G = arbf.center_gradient(np.asarray(X), np.asarray(C), sigma=sigma, kind=kind)
        np.testing.assert_allclose(np.asarray(grad["centers"]), G, rtol=1e-10, atol=1e-10)
        R = ajax.apply(p, X, kind=kind)
        ref_R = arbf.responsibilities(np.asarray(X), np.asarray(C), sigma=sigma, kind=kind)
        np.testing.assert_allclose(np.asarray(R), ref_R, rtol=1e-10, atol=1e-12)

    @pytest.mark.parametrize("kind", KINDS)
    def test_distortion_value_and_stopgrad_gradient(self, kind):
        X, C = _data(seed=1)
        p = ajax.init_params(centers=C, sigma=0.5)
        value, grad = jax.value_and_grad(jit_loss)(
            p, X, kind=kind, objective="distortion", reduction="sum"
        )
        ref = arbf.soft_distortion(np.asarray(X), np.asarray(C), sigma=0.5, kind=kind)
        np.testing.assert_allclose(float(value), float(ref), rtol=1e-12)
        G = arbf.center_gradient(np.asarray(X), np.asarray(C), sigma=0.5, kind=kind)
        np.testing.assert_allclose(np.asarray(grad["centers"]), G, rtol=1e-10, atol=1e-10)

    @pytest.mark.parametrize("kind", KINDS)
    def test_input_gradient_matches_envelope_formula(self, kind):
        X, C = _data(seed=2)
        p = ajax.init_params(centers=C, sigma=0.3)
        gX = jax.grad(lambda x: ajax.loss(p, x, kind=kind, reduction="sum"))(X)
        R = ajax.apply(p, X, kind=kind)
        np.testing.assert_allclose(np.asarray(gX), np.asarray(2 * (X - R @ C)), atol=1e-9)

    def test_weighted_and_reductions(self):
        X, C = _data(seed=3)
        w = jnp.asarray(np.random.default_rng(0).random(X.shape[0]))
        p = ajax.init_params(centers=C, sigma=0.4)
        ref = float(arbf.free_energy(np.asarray(X), np.asarray(C), sigma=0.4,
                                     sample_weight=np.asarray(w)))  # fmt: skip
        s = ajax.loss(p, X, reduction="sum", sample_weight=w)
        m = ajax.loss(p, X, reduction="mean", sample_weight=w)
        np.testing.assert_allclose(float(s), ref, rtol=1e-12)
        np.testing.assert_allclose(float(m), ref / float(w.sum()), rtol=1e-12)
        assert ajax.loss(p, X, reduction="none").shape == (X.shape[0],)

    def test_nll(self):
        X, C = _data(seed=4)
        sigma = 0.8
        p = ajax.init_params(centers=C, sigma=sigma)
        var = sigma / 2
        D = ((X[:, None, :] - C[None]) ** 2).sum(-1)
        logp = -D / (2 * var) - 0.5 * 3 * math.log(2 * math.pi * var)
        ref = -(jax.scipy.special.logsumexp(logp, axis=1) - math.log(4))
        got = ajax.loss(p, X, objective="nll", reduction="none")
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-10)


class TestTraining:
    @pytest.mark.parametrize("kind", KINDS)
    def test_gradients_reach_encoder_and_centers(self, kind):
        key = jax.random.PRNGKey(0)
        W = jax.random.normal(key, (5, 2))
        x = jax.random.normal(jax.random.PRNGKey(1), (40, 5))
        p = ajax.init_params(jnp.tanh(x @ W), 3, random_state=0, sigma=0.5)

        def total(W, p):
            return ajax.loss(p, jnp.tanh(x @ W), kind=kind)

        gW, gp = jax.jit(jax.grad(total, argnums=(0, 1)))(W, p)
        assert float(jnp.abs(gW).sum()) > 0
        assert float(jnp.abs(gp["centers"]).sum()) > 0

    @pytest.mark.parametrize("kind", KINDS)
    def test_loss_decreases_with_annealing_under_jit(self, kind):
        rng = np.random.default_rng(0)
        X = jnp.asarray(np.concatenate(
            [rng.normal(size=(30, 2)) * 0.3 + m for m in ([0, 0], [3, 0], [0, 3])]
        ))  # fmt: skip
        p = ajax.init_params(centers=jnp.asarray(rng.normal(size=(3, 2))), sigma=1.0)
        sigmas = ajax.geometric_schedule(1.0, 0.05, 100)

        @jax.jit
        def step(p, t):
            value, g = jax.value_and_grad(ajax.loss)(p, X, kind=kind, sigma=sigmas[t])
            return jax.tree_util.tree_map(lambda a, b: a - 0.05 * b, p, g), value

        first = None
        for t in range(100):
            p, value = step(p, t)
            first = value if first is None else first
        final = ajax.loss(p, X, kind=kind, sigma=0.05)
        assert float(final) < 0.5 * float(first)
        assert step._cache_size() <= 2  # σ is traced: no compilation per σ value

    def test_log_sigma_gets_zero_gradient_when_sigma_given(self):
        X, C = _data(seed=5)
        p = ajax.init_params(centers=C, sigma=0.4)
        g = jax.grad(ajax.loss)(p, X, sigma=0.2)
        assert float(g["log_sigma"]) == 0.0
        g = jax.grad(ajax.loss)(p, X, objective="nll")
        assert float(g["log_sigma"]) != 0.0

    def test_entmax_exact_zeros(self):
        X, C = _data(seed=7)
        p = ajax.init_params(centers=C, sigma=0.3)
        R = ajax.apply(p, X, kind="entmax15")
        assert bool((R == 0).any())
        np.testing.assert_allclose(np.asarray(R.sum(1)), 1.0, rtol=1e-12)
        assert bool((ajax.apply(p, X) > 0).all())


class TestInitAndPredict:
    def test_init_from_kmeans_and_predict(self):
        X, _ = _data(n=80, seed=8)
        p = ajax.init_params(X, 4, random_state=0, sigma=0.5)
        ref = arbf.kmeans(np.asarray(X), 4, random_state=0)
        np.testing.assert_allclose(np.asarray(p["centers"]), ref.centers, rtol=1e-10)
        np.testing.assert_allclose(float(jnp.exp(p["log_sigma"])), 0.5)
        np.testing.assert_array_equal(np.asarray(ajax.predict(p, X)), ref.labels)

    @pytest.mark.parametrize(
        "kwargs", [{"sigma": 0.0}, {"sigma": -1.0}, {}, {"centers": jnp.zeros(3)}]
    )
    def test_bad_init(self, kwargs):
        with pytest.raises(ValueError):
            ajax.init_params(**kwargs)

    @pytest.mark.parametrize(
        "kwargs",
        [{"kind": "sparsemax"}, {"objective": "elbo"}, {"reduction": "max"},
         {"kind": "entmax15", "objective": "nll"}],
    )  # fmt: skip
    def test_bad_loss_arguments(self, kwargs):
        X, C = _data()
        with pytest.raises(ValueError):
            ajax.loss(ajax.init_params(centers=C), X, **kwargs)


def test_optax_adam_example():
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(1)
    X = jnp.asarray(rng.normal(size=(90, 2)) + np.repeat([[0, 0], [4, 0], [0, 4]], 30, 0))
    p = ajax.init_params(X, 3, random_state=0, sigma=1.0)
    opt = optax.adam(0.05)
    state = opt.init(p)
    sigmas = ajax.geometric_schedule(1.0, 0.01, 50)

    @jax.jit
    def update(p, state, t):
        g = jax.grad(ajax.loss)(p, X, kind="entmax15", sigma=sigmas[t])
        upd, state = opt.update(g, state, p)
        return optax.apply_updates(p, upd), state

    for t in range(50):
        p, state = update(p, state, t)
    labels = np.asarray(ajax.predict(p, X))
    assert len(np.unique(labels)) == 3


class TestValidation:
    """Shapes and dtypes checked always (also under jit); values outside a trace."""

    def _p(self):
        return ajax.init_params(centers=jnp.zeros((3, 2)))

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"centers": np.full((3, 2), np.nan)}, ValueError, "centers contains NaN"),
            ({"centers": np.zeros((3, 2), dtype=complex)}, TypeError, "real data"),
            ({"centers": np.zeros(3)}, ValueError, r"\(k, d\) or \(B, k, d\)"),
            ({"centers": np.zeros((3, 2)), "sigma": "1"}, TypeError, "sigma"),
            ({"centers": np.zeros((3, 2)), "sigma": True}, TypeError, "sigma"),
            ({"centers": np.zeros((3, 2)), "sigma": -1.0}, ValueError, "sigma"),
            ({"X": np.zeros((5, 2)), "n_clusters": 2.5}, TypeError, "n_clusters"),
            ({}, ValueError, "give either centers or X"),
        ],
    )
    def test_init_params(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            ajax.init_params(**kwargs)

    @pytest.mark.parametrize(
        ("X", "kw", "error", "match"),
        [
            (np.zeros((5, 3)), {}, ValueError, r"X must have shape \(n, 2\)"),
            (np.zeros((0, 2)), {}, ValueError, "empty batch"),
            (np.array([[0.0, np.nan]]), {}, ValueError, "X contains NaN"),
            (np.zeros((5, 2), dtype=complex), {}, TypeError, "real data"),
            (np.zeros((5, 2)), {"sample_weight": np.ones((5, 1))}, ValueError, "1-D"),
            (np.zeros((5, 2)), {"sample_weight": -np.ones(5)}, ValueError, "negative"),
            (np.zeros((5, 2)), {"sample_weight": np.zeros(5)}, ValueError, "sums to zero"),
            (np.zeros((5, 2)), {"sigma": "1"}, TypeError, "sigma"),
            (np.zeros((5, 2)), {"sigma": np.ones(2)}, ValueError, "sigma"),
            (np.zeros((5, 2)), {"reduction": "avg"}, ValueError, "reduction"),
            (
                np.zeros((5, 2)),
                {"objective": "nll", "sigma": 1e-320},
                ValueError,
                "log-likelihood",
            ),
        ],
    )
    def test_loss(self, X, kw, error, match):
        with pytest.raises(error, match=match):
            ajax.loss(self._p(), X, **kw)

    def test_other_libraries_and_bad_params(self):
        torch = pytest.importorskip("torch")
        with pytest.raises(TypeError, match=r"JAX or NumPy array, got torch\.Tensor"):
            ajax.loss(self._p(), torch.zeros((5, 2)))
        with pytest.raises(TypeError, match="params must be a dict"):
            ajax.loss({"centers": jnp.zeros((3, 2))}, np.zeros((5, 2)))
        with pytest.raises(TypeError, match="start"):
            ajax.geometric_schedule("1", 0.1, 3)
        with pytest.raises(TypeError, match="n_steps"):
            ajax.geometric_schedule(1.0, 0.1, 2.5)

    def test_under_jit_shapes_checked_values_not(self):
        p = self._p()
        with pytest.raises(ValueError, match=r"X must have shape \(n, 2\)"):
            jit_loss(p, jnp.zeros((5, 3)))
        # a traced NaN cannot be read: it propagates, as in any JAX function
        assert np.isnan(float(jit_loss(p, jnp.asarray([[0.0, np.nan]]))))


class TestSigmaRange:
    @pytest.mark.parametrize("kind", KINDS)
    def test_tiny_and_huge(self, kind):
        X, C = _data(seed=7)
        hard = np.asarray(arbf.responsibilities(np.asarray(X), np.asarray(C), sigma=0.0))
        p = ajax.init_params(centers=C, sigma=1e-300)
        np.testing.assert_array_equal(np.asarray(ajax.apply(p, X, kind=kind)), hard)
        g = jax.grad(ajax.loss)(p, X, kind=kind, reduction="sum")
        N = hard.sum(0)
        lloyd = (hard.T @ np.asarray(X)) / N[:, None]
        step = np.asarray(C) - np.asarray(g["centers"]) / (2 * N[:, None])
        np.testing.assert_allclose(step, lloyd, rtol=1e-12)
        assert np.isfinite(float(g["log_sigma"]))
        p = ajax.init_params(centers=C, sigma=1e300)
        np.testing.assert_allclose(np.asarray(ajax.apply(p, X, kind=kind)), 0.25)
        g = jax.grad(ajax.loss)(p, X, kind=kind, objective="distortion", reduction="sum")
        step = np.asarray(C) - np.asarray(g["centers"]) / (2 * 15.0)
        np.testing.assert_allclose(
            step, np.broadcast_to(np.asarray(X).mean(0), C.shape), rtol=1e-12
        )
        assert np.isfinite(float(ajax.loss(p, X, objective="nll")))

    def test_float32_free_energy_beyond_range_is_refused(self):
        X, C = _data(seed=8)
        p = ajax.init_params(centers=C.astype(jnp.float32), sigma=1e300)
        with pytest.raises(ValueError, match=r"free energy .* beyond the range of float32"):
            ajax.loss(p, X.astype(jnp.float32))
        assert np.isfinite(float(ajax.loss(p, X.astype(jnp.float32), objective="distortion")))


class TestBatched:
    """Centers (B, k, d): every function maps the B problems (jax.vmap) and equals B
    separate calls, against the core's batched functions as the independent reference."""

    B = 3

    def _batch(self, seed=1, n=50, d=3, k=4):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(self.B, n, d)) + 4.0 * rng.normal(size=(self.B, 1, d))
        C = X[:, :k, :] + 0.2
        w = rng.uniform(0.0, 2.0, size=(self.B, n))
        w[:, :5] = 0.0
        return X, C, w

    @pytest.mark.parametrize("kind", [*KINDS, "hard"])
    @pytest.mark.parametrize("objective", ["free_energy", "distortion"])
    def test_equals_separate_calls_and_the_core(self, kind, objective):
        X, C, w = self._batch()
        log_sigma = jnp.log(jnp.asarray([0.3, 1.0, 4.0]))  # one temperature per problem
        p = {"centers": jnp.asarray(C), "log_sigma": log_sigma}

        def total(q):
            kw = {"kind": kind, "objective": objective, "reduction": "sum"}
            return jit_loss(q, X, sample_weight=w, **kw).sum()

        L, G = jax.value_and_grad(total)(p)
        per = jax.jit(ajax.loss, static_argnames=("kind", "objective", "reduction"))
        Ls = per(p, X, kind=kind, objective=objective, reduction="sum", sample_weight=w)
        assert Ls.shape == (self.B,)
        R = ajax.apply(p, X, kind=kind)
        lab = ajax.predict(p, X)
        assert R.shape == (self.B, X.shape[1], C.shape[1]) and lab.shape == X.shape[:2]
        for b in range(self.B):
            s = math.exp(float(log_sigma[b]))
            pb = {"centers": jnp.asarray(C[b]), "log_sigma": log_sigma[b]}
            one = ajax.loss(pb, X[b], kind=kind, objective=objective, reduction="sum",
                            sample_weight=w[b])  # fmt: skip
            np.testing.assert_allclose(float(Ls[b]), float(one), rtol=1e-12)
            if objective == "free_energy":
                ref = arbf.free_energy(X[b], C[b], sigma=s, kind=kind, sample_weight=w[b])
                np.testing.assert_allclose(float(Ls[b]), float(ref), rtol=1e-10)
            ref_G = arbf.center_gradient(X[b], C[b], sigma=s, kind=kind, sample_weight=w[b])
            np.testing.assert_allclose(np.asarray(G["centers"][b]), ref_G, rtol=1e-9, atol=1e-9)
            ref_R = arbf.responsibilities(X[b], C[b], sigma=s, kind=kind)
            np.testing.assert_allclose(np.asarray(R[b]), ref_R, rtol=1e-10, atol=1e-12)
            np.testing.assert_array_equal(np.asarray(lab[b]), ref_R.argmax(axis=1))
        np.testing.assert_allclose(float(L), float(Ls.sum()), rtol=1e-12)

    def test_shared_sigma_reductions_and_init(self):
        X, _, w = self._batch(seed=2)
        p = ajax.init_params(X, 4, sigma=0.5, random_state=[1, 2, 3])
        ref = arbf.kmeans(X, 4, random_state=[1, 2, 3]).centers
        np.testing.assert_allclose(np.asarray(p["centers"]), ref, rtol=1e-12)
        assert p["log_sigma"].shape == ()
        none = ajax.loss(p, X, reduction="none", sample_weight=w)
        mean = ajax.loss(p, X, reduction="mean", sample_weight=w)
        assert none.shape == X.shape[:2]
        np.testing.assert_allclose(np.asarray(mean), np.asarray(none.sum(1) / w.sum(1)),
                                   rtol=1e-12)  # fmt: skip
        # sigma= overrides every problem's temperature
        got = ajax.apply(p, X, sigma=0.25, kind="entmax15")
        for b in range(self.B):
            ref_R = arbf.responsibilities(X[b], np.asarray(p["centers"][b]), sigma=0.25,
                                          kind="entmax15")  # fmt: skip
            np.testing.assert_allclose(np.asarray(got[b]), ref_R, rtol=1e-10, atol=1e-12)

    def test_errors(self):
        X, C, w = self._batch()
        p = ajax.init_params(centers=C)
        with pytest.raises(ValueError, match=r"X must have shape \(B, n, d\)"):
            ajax.loss(p, X[0])
        with pytest.raises(ValueError, match=r"X must have shape \(B, n, d\)"):
            ajax.apply(p, X[:2])
        with pytest.raises(ValueError, match=r"sample_weight must have shape \(B, n\)"):
            ajax.loss(p, X, sample_weight=w[0])
        w0 = w.copy()
        w0[1] = 0.0
        with pytest.raises(ValueError, match="problem 1 sums to zero"):
            ajax.loss(p, X, sample_weight=w0)
        with pytest.raises(ValueError, match="negative"):
            ajax.loss(p, X, sample_weight=-w)
        with pytest.raises(ValueError, match="NaN"):
            Y = X.copy()
            Y[2, 1, 0] = np.nan
            ajax.apply(p, Y)
        bad = {"centers": p["centers"], "log_sigma": jnp.zeros(2)}
        with pytest.raises(ValueError, match="log_sigma"):
            ajax.apply(bad, X)
        tiny = {"centers": p["centers"], "log_sigma": jnp.asarray([0.0, -800.0, 0.0])}
        with pytest.raises(ValueError, match="negative log-likelihood"):
            ajax.loss(tiny, X, objective="nll")
