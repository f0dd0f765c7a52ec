"""Tests for arbf.torch: the RBFClustering layer, SigmaSchedule, geometric_schedule."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import arbf  # noqa: E402
from arbf.torch import (  # noqa: E402
    RBFClustering,
    RBFOutput,
    SigmaSchedule,
    geometric_schedule,
)

KINDS = ("softmax", "entmax15")
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


def _data(n=60, d=3, k=4, seed=0, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    C = torch.randn(k, d, generator=g, dtype=dtype)
    return X.to(device), C.to(device)


class TestAgreesWithCore:
    @pytest.mark.parametrize("kind", [*KINDS, "hard"])
    @pytest.mark.parametrize("sigma", [0.05, 0.7, 20.0])
    def test_free_energy_value_and_center_gradient(self, kind, sigma):
        X, C = _data()
        layer = RBFClustering(4, 3, sigma=sigma, kind=kind, reduction="sum", centers=C,
                              dtype=torch.float64)  # fmt: skip
        R, loss = layer(X)
        loss.backward()
        np.testing.assert_allclose(
            loss.item(), float(arbf.free_energy(X, C, sigma=sigma, kind=kind)), rtol=1e-12
        )
        G = arbf.center_gradient(X, C, sigma=sigma, kind=kind)
        torch.testing.assert_close(layer.centers.grad, G, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(R, arbf.responsibilities(X, C, sigma=sigma, kind=kind))

    @pytest.mark.parametrize("kind", KINDS)
    def test_distortion_value_and_stopgrad_gradient(self, kind):
        X, C = _data(seed=1)
        layer = RBFClustering(4, 3, sigma=0.5, kind=kind, objective="distortion",
                              reduction="sum", centers=C, dtype=torch.float64)  # fmt: skip
        _, loss = layer(X)
        loss.backward()
        np.testing.assert_allclose(
            loss.item(), float(arbf.soft_distortion(X, C, sigma=0.5, kind=kind)), rtol=1e-12
        )
        # with the responsibilities held fixed the gradient is that of F (envelope theorem)
        G = arbf.center_gradient(X, C, sigma=0.5, kind=kind)
        torch.testing.assert_close(layer.centers.grad, G, rtol=1e-10, atol=1e-10)

    @pytest.mark.parametrize("kind", KINDS)
    def test_input_gradient_matches_envelope_formula(self, kind):
        # dF/dx_i = 2 Σ_j r_ij (x_i - μ_j)
        X, C = _data(seed=2)
        X.requires_grad_(True)
        layer = RBFClustering(4, 3, sigma=0.3, kind=kind, reduction="sum", centers=C,
                              dtype=torch.float64)  # fmt: skip
        R, loss = layer(X)
        loss.backward()
        expected = 2.0 * (X.detach() - R.detach() @ C)
        torch.testing.assert_close(X.grad, expected, rtol=1e-9, atol=1e-9)

    def test_weighted_sum_and_mean(self):
        X, C = _data(seed=3)
        w = torch.rand(X.shape[0], dtype=torch.float64)
        s = RBFClustering(4, 3, sigma=0.4, reduction="sum", centers=C, dtype=torch.float64)
        m = RBFClustering(4, 3, sigma=0.4, reduction="mean", centers=C, dtype=torch.float64)
        ref = float(arbf.free_energy(X, C, sigma=0.4, sample_weight=w))
        np.testing.assert_allclose(s(X, w).loss.item(), ref, rtol=1e-12)
        np.testing.assert_allclose(m(X, w).loss.item(), ref / float(w.sum()), rtol=1e-12)
        n = RBFClustering(4, 3, sigma=0.4, reduction="none", centers=C, dtype=torch.float64)
        assert n(X).loss.shape == (X.shape[0],)

    def test_nll_is_gaussian_mixture_likelihood(self):
        X, C = _data(seed=4)
        sigma = 0.8
        layer = RBFClustering(4, 3, sigma=sigma, objective="nll", reduction="none",
                              centers=C, dtype=torch.float64)  # fmt: skip
        var = sigma / 2
        comp = torch.distributions.MultivariateNormal(
            C, covariance_matrix=var * torch.eye(3, dtype=torch.float64).expand(4, 3, 3)
        )
        ll = torch.logsumexp(comp.log_prob(X[:, None, :]), dim=1) - math.log(4)
        torch.testing.assert_close(layer(X).loss, -ll, rtol=1e-10, atol=1e-10)


class TestGradientsAndTraining:
    @pytest.mark.parametrize("kind", KINDS)
    def test_gradients_reach_encoder_and_centers(self, kind):
        torch.manual_seed(0)
        enc = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        x = torch.randn(40, 5)
        layer = RBFClustering.from_data(enc(x).detach(), 3, sigma=0.5, kind=kind,
                                        random_state=0)  # fmt: skip
        _, loss = layer(enc(x))
        loss.backward()
        assert layer.centers.grad is not None and layer.centers.grad.abs().sum() > 0
        for p in enc.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0

    @pytest.mark.parametrize("kind", KINDS)
    def test_loss_decreases_on_small_problem(self, kind):
        torch.manual_seed(0)
        X = torch.cat(
            [torch.randn(30, 2) * 0.3 + torch.tensor(m) for m in ([0.0, 0], [3, 0], [0, 3])]
        )
        layer = RBFClustering(3, 2, sigma=0.5, kind=kind, centers=torch.randn(3, 2))
        opt = torch.optim.Adam(layer.parameters(), lr=0.05)
        losses = []
        for _ in range(100):
            _, loss = layer(X)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0]

    def test_lloyd_step_size_gives_soft_centroids(self):
        # a gradient step with η_j = 1/(2 N_j) lands on the soft centroids (Theorem 2)
        X, C = _data(seed=5)
        layer = RBFClustering(4, 3, sigma=0.6, reduction="sum", centers=C, dtype=torch.float64)
        R, loss = layer(X)
        loss.backward()
        N = R.detach().sum(0)
        stepped = C - layer.centers.grad / (2 * N[:, None])
        torch.testing.assert_close(stepped, arbf.soft_lloyd_step(X, C, sigma=0.6))

    def test_learnable_sigma_moves_with_nll(self):
        X, C = _data(seed=6)
        layer = RBFClustering(4, 3, sigma=5.0, objective="nll", learn_sigma=True, centers=C,
                              dtype=torch.float64)  # fmt: skip
        assert isinstance(layer.log_sigma, torch.nn.Parameter)
        opt = torch.optim.SGD([layer.log_sigma], lr=0.1)
        for _ in range(50):
            _, loss = layer(X)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert layer.sigma.detach().item() < 5.0

    def test_entmax_gives_exact_zeros_and_one_hot_at_small_sigma(self):
        X, C = _data(seed=7)
        R, _ = RBFClustering(4, 3, sigma=0.3, kind="entmax15", centers=C,
                             dtype=torch.float64)(X)  # fmt: skip
        assert (R == 0).any()
        torch.testing.assert_close(R.sum(1), torch.ones(X.shape[0], dtype=torch.float64))
        D = torch.cdist(X, C) ** 2
        gap = D.sort(1).values[:, 1] - D.min(1).values
        R_small, _ = RBFClustering(4, 3, sigma=float(gap.min()) / 2, kind="entmax15",
                                   centers=C, dtype=torch.float64)(X)  # fmt: skip
        assert ((R_small == 0) | (R_small == 1)).all()
        R_soft, _ = RBFClustering(4, 3, sigma=0.3, centers=C, dtype=torch.float64)(X)
        assert (R_soft > 0).all()


class TestStateAndSchedule:
    @pytest.mark.parametrize("learn_sigma", [False, True])
    def test_state_dict_round_trip(self, learn_sigma):
        objective = "nll" if learn_sigma else "free_energy"
        a = RBFClustering(3, 2, sigma=0.25, learn_sigma=learn_sigma, objective=objective)
        buf = io.BytesIO()
        torch.save(a.state_dict(), buf)
        buf.seek(0)
        b = RBFClustering(3, 2, sigma=1.0, learn_sigma=learn_sigma, objective=objective)
        b.load_state_dict(torch.load(buf))
        torch.testing.assert_close(b.centers, a.centers)
        np.testing.assert_allclose(b.sigma.detach().item(), 0.25, rtol=1e-6)
        assert set(a.state_dict()) == {"centers", "log_sigma"}

    def test_sigma_schedule(self):
        layer = RBFClustering(2, 2, sigma=3.0)
        sigmas = geometric_schedule(1.0, 1e-3, 4)
        np.testing.assert_allclose(sigmas, [1.0, 0.1, 0.01, 1e-3])
        sched = SigmaSchedule(layer, sigmas)
        np.testing.assert_allclose(layer.sigma.detach().item(), 1.0, rtol=1e-6)
        for expected in (0.1, 0.01, 1e-3, 1e-3):
            sched.step()
            np.testing.assert_allclose(layer.sigma.detach().item(), expected, rtol=1e-5)
        state = sched.state_dict()
        other = SigmaSchedule(RBFClustering(2, 2), sigmas)
        other.load_state_dict(state)
        assert other.t == 3

    def test_from_data_uses_kmeans(self):
        X, _ = _data(n=80, seed=8)
        layer = RBFClustering.from_data(X, 4, random_state=0)
        ref = arbf.kmeans(X, 4, random_state=0)
        torch.testing.assert_close(layer.centers.detach(), ref.centers)
        assert layer.centers.dtype == X.dtype
        torch.testing.assert_close(layer.predict(X), ref.labels)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"sigma": 0.0},
            {"sigma": float("nan")},
            {"kind": "sparsemax"},
            {"objective": "elbo"},
            {"reduction": "max"},
            {"kind": "entmax15", "objective": "nll"},
            {"centers": torch.zeros(2, 2)},
        ],
    )
    def test_bad_arguments(self, kwargs):
        with pytest.raises(ValueError):
            RBFClustering(3, 2, **kwargs)

    def test_bad_input_shape(self):
        with pytest.raises(ValueError, match="shape"):
            RBFClustering(3, 2)(torch.zeros(4, 5))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_device(device, kind):
    X, C = _data(dtype=torch.float32, device=device)
    layer = RBFClustering(4, 3, sigma=0.5, kind=kind, centers=C).to(device)
    R, loss = layer(X)
    loss.backward()
    assert R.device.type == device and loss.device.type == device
    assert layer.centers.grad.device.type == device
    ref = arbf.free_energy(X.cpu(), C.cpu(), sigma=0.5, kind=kind) / X.shape[0]
    np.testing.assert_allclose(loss.item(), float(ref), rtol=1e-5)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
@pytest.mark.parametrize("kind", ["entmax15"])
def test_torch_compile(kind):
    """torch.compile (inductor, CPU): same values and gradients; σ changes don't recompile.

    Marked slow: compiling forward and backward takes about a minute on a small CPU with a
    cold inductor cache (about 10 s with a warm one).
    """
    X, C = _data(dtype=torch.float32)
    eager = RBFClustering(4, 3, sigma=0.5, kind=kind, centers=C)
    compiled_layer = RBFClustering(4, 3, sigma=0.5, kind=kind, centers=C)
    compiled = torch.compile(compiled_layer)
    for sigma in (0.5, 0.1):
        eager.set_sigma(sigma)
        compiled_layer.set_sigma(sigma)
        R1, l1 = eager(X)
        R2, l2 = compiled(X)
        l1.backward()
        l2.backward()
        torch.testing.assert_close(R2, R1, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(l2, l1, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(compiled_layer.centers.grad, eager.centers.grad,
                                   rtol=1e-4, atol=1e-5)  # fmt: skip


def test_output_is_named_tuple():
    out = RBFClustering(2, 2)(torch.zeros(3, 2))
    assert isinstance(out, RBFOutput)
    assert out.responsibilities.shape == (3, 2) and out.loss.ndim == 0


class TestValidation:
    """Every bad input is a TypeError or ValueError naming the argument (issue 15)."""

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"n_clusters": 2.5}, TypeError, "n_clusters"),
            ({"n_features": 0}, ValueError, "n_features"),
            ({"sigma": "0.5"}, TypeError, "sigma"),
            ({"sigma": True}, TypeError, "sigma"),
            ({"sigma": 0.0}, ValueError, "sigma"),
            ({"learn_sigma": 1}, TypeError, "learn_sigma"),
            ({"check_inputs": "yes"}, TypeError, "check_inputs"),
            ({"centers": torch.full((3, 2), float("nan"))}, ValueError, "centers contains NaN"),
            ({"centers": torch.zeros((3, 2), dtype=torch.complex64)}, TypeError, "real"),
            ({"centers": np.zeros((3, 2), dtype=complex)}, TypeError, "real"),
            ({"centers": torch.zeros((2, 2))}, ValueError, r"centers must have shape \(3, 2\)"),
            ({"centers": "abc"}, TypeError, "centers"),
            ({"sigma": 1e300}, ValueError, "free energy .* beyond the range of torch.float32"),
            ({"sigma": 1e-300, "objective": "nll"}, ValueError, "negative log-likelihood"),
        ],
    )
    def test_constructor(self, kwargs, error, match):
        args = {"n_clusters": 3, "n_features": 2, **kwargs}
        with pytest.raises(error, match=match):
            RBFClustering(args.pop("n_clusters"), args.pop("n_features"), **args)

    @pytest.mark.parametrize(
        ("x", "w", "error", "match"),
        [
            (np.zeros((5, 2)), None, TypeError, "x must be a torch.Tensor, got numpy.ndarray"),
            (torch.zeros((5, 3)), None, ValueError, r"x must have shape \(n, 2\)"),
            (torch.zeros(5), None, ValueError, r"x must have shape \(n, 2\)"),
            (torch.zeros((0, 2)), None, ValueError, "empty batch"),
            (torch.tensor([[0.0, float("nan")]]), None, ValueError, "x contains NaN"),
            (torch.zeros((5, 2), dtype=torch.complex64), None, TypeError, "real data"),
            (torch.zeros((5, 2)).to_sparse(), None, TypeError, "dense tensor"),
            (torch.zeros((5, 2), device="meta"), None, ValueError, "meta"),
            (torch.zeros((5, 2)), torch.ones(5, 1), ValueError, "sample_weight must be 1-D"),
            (torch.zeros((5, 2)), torch.ones(4), ValueError, "sample_weight must be 1-D"),
            (torch.zeros((5, 2)), -torch.ones(5), ValueError, "negative"),
            (torch.zeros((5, 2)), torch.zeros(5), ValueError, "sums to zero"),
            (torch.zeros((5, 2)), torch.full((5,), float("inf")), ValueError, "sample_weight"),
            (torch.zeros((5, 2)), np.ones(5), TypeError, "sample_weight must be a torch.Tensor"),
        ],
    )
    def test_forward(self, x, w, error, match):
        layer = RBFClustering(3, 2, centers=torch.zeros(3, 2))
        with pytest.raises(error, match=match):
            layer(x, sample_weight=w)
        if w is None:
            with pytest.raises(error, match=match):
                layer.predict(x)

    def test_values_unchecked_on_request(self):
        layer = RBFClustering(3, 2, centers=torch.zeros(3, 2), check_inputs=False)
        out = layer(torch.tensor([[0.0, float("nan")]]))  # no host sync: NaN propagates
        assert torch.isnan(out.loss)
        with pytest.raises(ValueError, match="empty batch"):  # shapes are always checked
            layer(torch.zeros((0, 2)))

    def test_set_sigma_and_schedule(self):
        layer = RBFClustering(3, 2)
        for bad, error in (("0.5", TypeError), (True, TypeError), (-1.0, ValueError)):
            with pytest.raises(error, match="sigma"):
                layer.set_sigma(bad)
            with pytest.raises(error, match="sigmas entries"):
                SigmaSchedule(layer, [1.0, bad])
        with pytest.raises(TypeError, match="sigmas must be a sequence"):
            SigmaSchedule(layer, "0.5")


class TestSigmaRange:
    """σ from 1e-300 to 1e300: the exact limits, no NaN (issue 15)."""

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize("kind", KINDS)
    def test_tiny_sigma_is_lloyd(self, dtype, kind):
        X, C = _data(dtype=dtype, seed=5)
        layer = RBFClustering(4, 3, sigma=1e-300, kind=kind, reduction="sum", centers=C,
                              learn_sigma=True, dtype=dtype)  # fmt: skip
        R, loss = layer(X)
        loss.backward()
        hard = torch.nn.functional.one_hot(torch.cdist(X, C).argmin(1), 4).to(dtype)
        torch.testing.assert_close(R, hard)
        d = ((X[:, None, :] - C[None]) ** 2).sum(-1).min(1).values
        torch.testing.assert_close(loss, d.sum())  # F -> J
        # the gradient step of size 1/(2 N_j) is Lloyd's step
        N = hard.sum(0)
        lloyd = (hard.T @ X) / N[:, None]
        torch.testing.assert_close(C - layer.centers.grad / (2 * N[:, None]), lloyd)
        assert torch.isfinite(layer.log_sigma.grad)

    @pytest.mark.parametrize("kind", KINDS)
    def test_huge_sigma_is_the_mean(self, kind):
        X, C = _data(dtype=torch.float32, seed=6)
        layer = RBFClustering(4, 3, sigma=1e300, kind=kind, objective="distortion",
                              reduction="sum", centers=C, learn_sigma=True)  # fmt: skip
        R, loss = layer(X)
        loss.backward()
        torch.testing.assert_close(R, torch.full_like(R, 0.25))
        step = C - layer.centers.grad / (2 * R.sum(0)[:, None])
        torch.testing.assert_close(step, X.mean(0).expand(4, 3))
        assert torch.isfinite(loss)
        assert layer.log_sigma.grad is None  # L with the responsibilities held fixed
        # the NLL at a huge σ is finite (computed from log σ)
        nll = RBFClustering(4, 3, sigma=1e300, objective="nll", centers=C)
        assert torch.isfinite(nll(X).loss)

    def test_one_center_any_sigma(self):
        X, C = _data(dtype=torch.float32, k=1)
        for sigma in (1e-300, 1.0, 1e30):
            layer = RBFClustering(1, 3, sigma=sigma, reduction="sum", centers=C)
            torch.testing.assert_close(layer(X).loss, ((X - C) ** 2).sum())
