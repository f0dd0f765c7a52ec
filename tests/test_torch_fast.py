"""CPU torch tensors that need no gradient take the compiled kernels (the seam's "host"
route), through zero-copy views; tensors that require a gradient (and non-CPU tensors)
keep the pure path."""

from __future__ import annotations

import array_api_compat.torch as xpt
import numpy as np
import pytest

import arbf
from arbf._math import seam
from arbf._math.kernels import hard, runtime
from arbf._math.kernels import soft as fast_soft

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not runtime.HAVE_NUMBA, reason="numba not installed")


def _data(dtype: str = "float64", n: int = 3000, d: int = 5, k: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * 2 + 1).astype(dtype)
    C = X[rng.choice(n, k, replace=False)].copy()
    w = rng.uniform(0.1, 2.0, n).astype(dtype)
    return X, C, w


class _Count:
    def __init__(self, monkeypatch, module, name):
        self.n = 0
        orig = getattr(module, name)

        def wrapped(*a, **kw):
            self.n += 1
            return orig(*a, **kw)

        monkeypatch.setattr(module, name, wrapped)


def _pure(fn):
    with arbf.config_context(fast_paths=False):
        return fn()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_sums_and_assignment(dtype, weighted, monkeypatch):
    X, C, w = _data(dtype)
    w = w if weighted else None
    Xt, Ct = torch.from_numpy(X), torch.from_numpy(C)
    wt = None if w is None else torch.from_numpy(w)
    calls = _Count(monkeypatch, hard, "lloyd_sums")
    assert seam.route(Xt, Ct, wt)[0] == "host"
    got = seam.lloyd_sums(Xt, Ct, wt, xp=xpt)
    assert calls.n == 1
    ref_np = seam.lloyd_sums(X, C, w, xp=np)  # the same kernel on NumPy
    ref_pure = _pure(lambda: seam.lloyd_sums(Xt, Ct, wt, xp=xpt))
    tol = 1e-10 if dtype == "float64" else 1e-4
    for g, a, b in zip(got, ref_np, ref_pure, strict=True):
        assert isinstance(g, torch.Tensor) and g.device.type == "cpu"
        assert g.dtype == b.dtype
        np.testing.assert_array_equal(g.numpy(), a)
        np.testing.assert_allclose(g.numpy(), b.numpy(), rtol=tol, atol=tol)
    labels, inertia = seam.assign_inertia(Xt, Ct, wt, xp=xpt)
    assert labels.dtype == torch.int64 and inertia.ndim == 0
    np.testing.assert_array_equal(labels.numpy(), got[0].numpy())
    labels, min_sq = seam.assign(Xt, Ct, xp=xpt)
    assert min_sq.dtype == Xt.dtype and labels.shape == (X.shape[0],)


@pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
def test_soft_stats(kind, monkeypatch):
    X, C, w = _data("float64")
    Xt, Ct, wt = (torch.from_numpy(a) for a in (X, C, w))
    calls = _Count(monkeypatch, fast_soft, "soft_stats")
    got = seam.soft_stats(Xt, Ct, wt, sigma=0.7, kind=kind, xp=xpt)
    assert calls.n == 1
    ref = seam.soft_stats(X, C, w, sigma=0.7, kind=kind, xp=np)
    pure = _pure(lambda: seam.soft_stats(Xt, Ct, wt, sigma=0.7, kind=kind, xp=xpt))
    for g, a, b in zip(got, ref, pure, strict=True):
        assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
        np.testing.assert_array_equal(g.numpy(), a)
        np.testing.assert_allclose(g.numpy(), b.numpy(), rtol=1e-10, atol=1e-10)


def test_requires_grad_keeps_the_differentiable_path(monkeypatch):
    X, C, _ = _data("float64", n=300)
    Xt = torch.from_numpy(X)
    Ct = torch.from_numpy(C).requires_grad_(True)
    calls = _Count(monkeypatch, fast_soft, "soft_stats")
    F = arbf.free_energy(Xt, Ct, sigma=0.7, kind="softmax")
    assert calls.n == 0 and F.requires_grad
    (g,) = torch.autograd.grad(F, Ct)
    ref = arbf.center_gradient(Xt, Ct.detach(), sigma=0.7, kind="softmax")
    np.testing.assert_allclose(g.numpy(), ref.numpy(), rtol=1e-8, atol=1e-10)


def test_mixed_kinds_and_non_views_are_not_served():
    X, C, _ = _data("float64", n=200)
    # a NumPy array with a tensor: no common kind, the pure path
    assert seam.route(torch.from_numpy(X), C) == ("pure", None)
    # integer tensors have no float view
    assert seam.route(torch.from_numpy(X).to(torch.int64), torch.from_numpy(C))[0] == "pure"
    # a tensor that needs a gradient keeps autograd
    assert seam.route(torch.from_numpy(X).requires_grad_(True))[0] == "pure"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kmeans_and_rbf_on_torch_equal_numpy(dtype):
    X, C, _ = _data(dtype, n=4000, k=6, seed=2)
    Xt, Ct = torch.from_numpy(X.copy()), torch.from_numpy(C.copy())
    a = arbf.kmeans(X, 6, init=C, tol=0.0)
    b = arbf.kmeans(Xt, 6, init=Ct, tol=0.0)
    assert isinstance(b.centers, torch.Tensor) and b.centers.dtype == Xt.dtype
    np.testing.assert_array_equal(b.labels.numpy(), a.labels)
    np.testing.assert_array_equal(b.centers.numpy(), a.centers)
    assert b.n_iter == a.n_iter
    # the final inertia after strict convergence is a plain reduction in each namespace
    rtol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(float(b.inertia), float(a.inertia), rtol=rtol)
    np.testing.assert_array_equal(Xt.numpy(), X)  # inputs untouched
    for kind in ("softmax", "entmax15"):
        r1 = arbf.rbf_kmeans(X, C, sigma=0.5, kind=kind)
        r2 = arbf.rbf_kmeans(Xt, Ct, sigma=0.5, kind=kind)
        np.testing.assert_array_equal(r2.centers.numpy(), r1.centers)
