"""arbf.torch.RBFClustering with heads (centers (H, k, d)) and update="ema"."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import arbf  # noqa: E402
from arbf.torch import RBFClustering  # noqa: E402

H, N, D, K = 3, 40, 4, 5


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(H, N, D, generator=g, dtype=torch.float64) * 2.0
    C = x[:, :K, :].clone() + 0.1
    return x, C


KINDS = ["softmax", "entmax15", "hard"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("objective", ["free_energy", "distortion"])
def test_heads_equal_separate_layers(data, kind, objective):
    """Head h of a layer with heads is the one-head layer on x[h] with centers[h]:
    responsibilities, per-sample loss and the gradients for centers and inputs."""
    x, C = data
    x = x.clone().requires_grad_(True)
    layer = RBFClustering(
        K, D, n_heads=H, sigma=0.7, kind=kind, objective=objective, reduction="sum",
        centers=C, dtype=torch.float64,
    )  # fmt: skip
    r, loss = layer(x)
    loss.backward()
    assert r.shape == (H, N, K)
    total = 0.0
    for h in range(H):
        xh = x.detach()[h].clone().requires_grad_(True)
        one = RBFClustering(
            K, D, sigma=0.7, kind=kind, objective=objective, reduction="sum",
            centers=C[h], dtype=torch.float64,
        )  # fmt: skip
        rh, lh = one(xh)
        lh.backward()
        total += float(lh)
        torch.testing.assert_close(r[h].detach(), rh.detach())
        torch.testing.assert_close(layer.centers.grad[h], one.centers.grad)
        torch.testing.assert_close(x.grad[h], xh.grad)
    assert float(loss) == pytest.approx(total, rel=1e-12)


def test_heads_loss_is_free_energy_and_reductions(data):
    x, C = data
    layer = RBFClustering(
        K, D, n_heads=H, sigma=0.5, centers=C, reduction="none", dtype=torch.float64
    )
    _, per = layer(x)
    assert per.shape == (H, N)
    F = arbf.free_energy(x.numpy(), C.numpy(), sigma=0.5)  # batched: (H,)
    np.testing.assert_allclose(per.sum(dim=1).detach().numpy(), F, rtol=1e-10)
    layer.reduction = "mean"
    w = torch.rand(H, N, dtype=torch.float64)
    _, mean_w = layer(x, w)
    assert float(mean_w) == pytest.approx(float((per * w).sum() / w.sum()), rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("heads", [None, H])
def test_ema_step_closed_form(data, kind, heads):
    x, C = data
    if heads is None:
        x, C = x[0], C[0]
    m = 0.3
    layer = RBFClustering(
        K, D, n_heads=heads, sigma=0.8, kind=kind, update="ema", momentum=m, centers=C,
        dtype=torch.float64,
    )  # fmt: skip
    assert not layer.centers.requires_grad
    w = torch.rand(x.shape[:-1], dtype=torch.float64) + 0.5
    R = arbf.responsibilities(x.numpy(), C.numpy(), sigma=0.8, kind=kind)
    Rw = R * w.numpy()[..., None]
    S0 = Rw.sum(-2)
    S1 = np.swapaxes(Rw, -1, -2) @ x.numpy()
    target = np.where(S0[..., None] > 0, S1 / np.where(S0 > 0, S0, 1)[..., None], C.numpy())
    expected = (1 - m) * C.numpy() + m * target
    r, _ = layer(x, w)
    np.testing.assert_allclose(r.detach().numpy(), R, atol=1e-12)  # output: old centers
    np.testing.assert_allclose(layer.centers.detach().numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["softmax", "entmax15"])
def test_ema_momentum_one_is_soft_lloyd_step(data, kind):
    x, C = data
    layer = RBFClustering(
        K, D, n_heads=H, sigma=1.5, kind=kind, update="ema", momentum=1.0, centers=C,
        dtype=torch.float64,
    )  # fmt: skip
    layer(x)
    step = arbf.soft_lloyd_step(x.numpy(), C.numpy(), sigma=1.5, kind=kind)
    np.testing.assert_allclose(layer.centers.detach().numpy(), step, rtol=1e-12, atol=1e-12)


def test_ema_eval_mode_and_gradients(data):
    x, C = data
    layer = RBFClustering(K, D, n_heads=H, sigma=0.5, update="ema", centers=C, dtype=torch.float64)
    layer.eval()
    layer(x)
    torch.testing.assert_close(layer.centers.detach(), C)
    layer.train()
    xg = x.clone().requires_grad_(True)
    _, loss = layer(xg)
    loss.backward()  # the EMA step after the pass does not break the graph
    assert xg.grad is not None and torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0
    assert layer.centers.grad is None
    assert not torch.equal(layer.centers.detach(), C)
    # the gradient for the input is that of the pass with the centers before the step
    ref = RBFClustering(K, D, n_heads=H, sigma=0.5, centers=C, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    ref(xr).loss.backward()
    torch.testing.assert_close(xg.grad, xr.grad)


def test_ema_empty_center_stays(data):
    x, C = data
    C = C.clone()
    C[1, 2] = 1e3
    layer = RBFClustering(
        K, D, n_heads=H, kind="hard", update="ema", momentum=0.5, centers=C, dtype=torch.float64
    )
    layer(x)
    assert torch.equal(layer.centers[1, 2].detach(), C[1, 2])
    assert torch.isfinite(layer.centers).all()


def test_from_data_heads_and_predict(data):
    x, _ = data
    layer = RBFClustering.from_data(x, K, random_state=0)
    assert layer.n_heads == H and layer.centers.shape == (H, K, D)
    res = arbf.kmeans(x.numpy(), K, random_state=0)
    np.testing.assert_allclose(layer.centers.detach().numpy(), res.centers, rtol=1e-10)
    np.testing.assert_array_equal(layer.predict(x).numpy(), res.labels)


def test_errors(data):
    x, C = data
    with pytest.raises(ValueError, match="update"):
        RBFClustering(K, D, update="adam")
    with pytest.raises(ValueError, match="momentum"):
        RBFClustering(K, D, update="ema", momentum=0.0)
    with pytest.raises(ValueError, match="centers"):
        RBFClustering(K, D, n_heads=H, centers=C[0])
    layer = RBFClustering(K, D, n_heads=H)
    with pytest.raises(ValueError, match="x must have shape"):
        layer(x[0].float())
    with pytest.raises(ValueError, match="sample_weight"):
        layer(x.float(), torch.ones(N))


def test_attention_example_runs():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "attention_heads.py"
    spec = importlib.util.spec_from_file_location("attention_heads", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for metric in ("cosine", "sqeuclidean"):
        errors = mod.main(["--quick", "--metric", metric])
        assert errors[-1].mean() < 0.7 * errors[0].mean()


# --------------------------------------------------------------------------------------
# metric="cosine": per-head spherical centers, online spherical K-Means by EMA
# --------------------------------------------------------------------------------------


def _unit(A: np.ndarray) -> np.ndarray:
    return A / np.linalg.norm(A, axis=-1, keepdims=True)


def _spherical_ema_reference(x, C, w, sigma, kind, m):
    """The online spherical K-Means step written out with NumPy (any leading axes):
    responsibilities of (cos - 1)/σ, S0 = Σ w r, S1 = Σ w r x̂, and
    μ ← normalise((1 - m) μ̂ + m S1/S0) (μ̂ where S0 = 0); returns (R, new centers)."""
    from tests import reference as ref

    U, V = _unit(np.asarray(x, np.float64)), _unit(np.asarray(C, np.float64))
    cos = U @ np.swapaxes(V, -1, -2)
    z = (cos - 1.0) / sigma
    if kind == "hard":
        R = (np.arange(cos.shape[-1]) == np.argmax(cos, axis=-1)[..., None]).astype(float)
    elif kind == "softmax":
        R = np.exp(z - z.max(-1, keepdims=True))
        R /= R.sum(-1, keepdims=True)
    else:
        R = np.stack([ref.entmax15(zz) for zz in z.reshape(-1, *z.shape[-2:])]).reshape(z.shape)
    Rw = R * np.asarray(w, np.float64)[..., None]
    S0 = Rw.sum(-2)
    S1 = np.swapaxes(Rw, -1, -2) @ U
    target = np.where(S0[..., None] > 0, S1 / np.where(S0 > 0, S0, 1.0)[..., None], V)
    return R, _unit((1.0 - m) * V + m * target)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("objective", ["free_energy", "distortion"])
def test_cosine_heads_equal_separate_layers(data, kind, objective):
    """Head h of a cosine layer with heads is the one-head cosine layer on x[h] with
    centers[h]: responsibilities, loss and the gradients for centers and inputs (the
    centers are unconstrained parameters, entering through their directions)."""
    x, C = data
    C = C * torch.linspace(0.5, 3.0, K, dtype=torch.float64)[None, :, None]  # not unit
    x = x.clone().requires_grad_(True)
    layer = RBFClustering(
        K, D, n_heads=H, sigma=0.3, kind=kind, objective=objective, reduction="sum",
        centers=C, dtype=torch.float64, metric="cosine",
    )  # fmt: skip
    r, loss = layer(x)
    loss.backward()
    total = 0.0
    for h in range(H):
        xh = x.detach()[h].clone().requires_grad_(True)
        one = RBFClustering(
            K, D, sigma=0.3, kind=kind, objective=objective, reduction="sum",
            centers=C[h], dtype=torch.float64, metric="cosine",
        )  # fmt: skip
        rh, lh = one(xh)
        lh.backward()
        total += float(lh.detach())
        torch.testing.assert_close(r[h].detach(), rh.detach())
        torch.testing.assert_close(layer.centers.grad[h], one.centers.grad)
        torch.testing.assert_close(x.grad[h], xh.grad)
        np.testing.assert_array_equal(
            layer.predict(x.detach())[h].numpy(), one.predict(xh).numpy()
        )
    assert float(loss.detach()) == pytest.approx(total, rel=1e-12)


def test_cosine_heads_loss_is_the_cosine_free_energy(data):
    x, C = data
    layer = RBFClustering(
        K, D, n_heads=H, sigma=0.2, centers=C, reduction="none", dtype=torch.float64,
        metric="cosine",
    )  # fmt: skip
    _, per = layer(x)
    F = arbf.free_energy(x.numpy(), C.numpy(), sigma=0.2, metric="cosine")  # batched: (H,)
    np.testing.assert_allclose(per.sum(dim=1).detach().numpy(), F, rtol=1e-10)
    cos = _unit(x.numpy()) @ np.swapaxes(_unit(C.numpy()), -1, -2)
    F_ref = -0.2 * np.log(np.exp((cos - 1.0) / 0.2).sum(-1)).sum(-1)  # the vMF soft-min
    np.testing.assert_allclose(F, F_ref, rtol=1e-10)
    np.testing.assert_array_equal(layer.predict(x).numpy(), np.argmax(cos, axis=-1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("heads", [None, H])
def test_cosine_ema_step_against_numpy(data, kind, heads, dtype):
    """Three EMA steps of the cosine layer (weights with zeros) against the NumPy
    re-implementation of online spherical K-Means, μ ← normalise((1-m) μ̂ + m S1/S0)."""
    x, C = data
    C = C * 2.5  # not unit: the first step starts from the directions
    if heads is None:
        x, C = x[0], C[0]
    m = 0.3
    layer = RBFClustering(
        K, D, n_heads=heads, sigma=0.25, kind=kind, update="ema", momentum=m, centers=C,
        dtype=dtype, metric="cosine",
    )  # fmt: skip
    assert not layer.centers.requires_grad
    g = torch.Generator().manual_seed(1)
    w = torch.rand(x.shape[:-1], generator=g, dtype=torch.float64) + 0.5
    w[..., ::7] = 0.0
    expected = C.numpy()
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    for t in range(3):
        xt = x * (1.0 + 0.5 * t)  # the scale of the rows does not matter, their direction does
        R, new = _spherical_ema_reference(xt.numpy(), expected, w.numpy(), 0.25, kind, m)
        r, _ = layer(xt.to(dtype), w.to(dtype))
        np.testing.assert_allclose(r.detach().double().numpy(), R, atol=tol * 10)
        expected = new
        np.testing.assert_allclose(
            layer.centers.detach().double().numpy(), expected, rtol=tol * 10, atol=tol * 10
        )
    np.testing.assert_allclose(
        np.linalg.norm(layer.centers.detach().double().numpy(), axis=-1), 1.0, rtol=tol * 10
    )


def test_cosine_ema_heads_equal_separate_layers(data):
    """An EMA cosine layer with H heads moves each head's centers as H one-head layers."""
    x, C = data
    layer = RBFClustering(
        K, D, n_heads=H, sigma=0.3, kind="entmax15", update="ema", momentum=0.4, centers=C,
        dtype=torch.float64, metric="cosine",
    )  # fmt: skip
    ones = [
        RBFClustering(
            K,
            D,
            sigma=0.3,
            kind="entmax15",
            update="ema",
            momentum=0.4,
            centers=C[h],
            dtype=torch.float64,
            metric="cosine",
        )
        for h in range(H)
    ]
    for t in range(4):
        xt = x + 0.3 * t
        layer(xt)
        for h in range(H):
            ones[h](xt[h])
    for h in range(H):
        torch.testing.assert_close(layer.centers[h].detach(), ones[h].centers.detach())


@pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
def test_cosine_ema_momentum_one_is_spherical_soft_lloyd_step(data, kind):
    x, C = data
    layer = RBFClustering(
        K, D, n_heads=H, sigma=0.4, kind=kind, update="ema", momentum=1.0, centers=C,
        dtype=torch.float64, metric="cosine",
    )  # fmt: skip
    layer(x)
    step = arbf.soft_lloyd_step(x.numpy(), C.numpy(), sigma=0.4, kind=kind, metric="cosine")
    np.testing.assert_allclose(layer.centers.detach().numpy(), step, rtol=1e-12, atol=1e-12)


def test_cosine_ema_empty_center_keeps_its_direction(data):
    x, C = data
    x = x.clone()
    x[1] = x[1].abs()  # head 1: every key in the positive orthant
    C = C.clone()
    C[1] = x[1, :K]
    C[1, 2] = -3.0  # negative cosine with every key: its cell stays empty (hard)
    layer = RBFClustering(
        K, D, n_heads=H, kind="hard", update="ema", momentum=0.5, centers=C,
        dtype=torch.float64, metric="cosine",
    )  # fmt: skip
    layer(x)
    torch.testing.assert_close(
        layer.centers[1, 2].detach(), torch.full((D,), -0.5, dtype=torch.float64)
    )
    assert torch.isfinite(layer.centers).all()


def test_cosine_from_data_heads_and_predict(data):
    x, _ = data
    layer = RBFClustering.from_data(x, K, random_state=0, metric="cosine")
    assert layer.n_heads == H and layer.centers.shape == (H, K, D)
    res = arbf.kmeans(x.numpy(), K, random_state=0, metric="cosine")
    np.testing.assert_allclose(layer.centers.detach().numpy(), res.centers, rtol=1e-10)
    np.testing.assert_array_equal(layer.predict(x).numpy(), res.labels)
