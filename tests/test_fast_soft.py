"""The compiled soft-statistics kernel (:mod:`arbf._math.kernels.soft`) equals the pure
reference (:func:`arbf._math.core.soft.soft_stats`, called directly: it never dispatches).
"""

from __future__ import annotations

import array_api_compat.numpy as xpn
import numpy as np
import pytest

import arbf
from arbf._math.core.soft import SoftStats
from arbf._math.core.soft import soft_stats as soft_stats_ref
from arbf._math.kernels import exp as kexp
from arbf._math.kernels import hard, runtime
from arbf._math.kernels import soft as fast_soft
from arbf._math.kernels.entmax import entmax15_rows

pytestmark = pytest.mark.skipif(not runtime.HAVE_NUMBA, reason="numba not installed")

SIGMAS = [0.0, 1e-8, 1e-3, 0.5, 10.0, 1e3]


def _data(dtype: str, n: int = 700, d: int = 5, k: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * 3 + 5).astype(dtype)
    C = X[rng.choice(n, k, replace=False)].copy()
    w = rng.uniform(0.0, 2.0, n).astype(dtype)
    return X, C, w


def _pure(X, C, w, sigma, kind):
    return soft_stats_ref(X, C, w, sigma=sigma, kind=kind, xp=xpn)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("weighted", [False, True])
def test_fast_equals_pure(dtype, kind, sigma, weighted):
    X, C, w = _data(dtype)
    w = w if weighted else None
    ref = _pure(X, C, w, sigma, kind)
    got = fast_soft.soft_stats(X, C, w, sigma=sigma, kind=kind)
    rtol = 1e-10 if dtype == "float64" else 1e-4
    _assert_stats_close(ref, got, sigma, rtol, dtype)


def _assert_stats_close(ref, got, sigma, rtol, dtype):
    for name, a, b in zip(ref._fields, ref, got, strict=True):
        assert b.dtype == np.dtype(dtype), name
        assert np.all(np.isfinite(b)), name
        if name == "entropy":
            # T enters F = B - σT: its float32 noise (gap errors amplified by 1/σ) is
            # measured by σ|ΔT| against the free energy's scale
            assert float(a) >= 0 and float(b) >= 0
            a, b = sigma * np.float64(a), sigma * np.float64(b)
            scale = max(float(np.abs(ref.free_energy)), 1e-30)
        else:
            scale = max(float(np.max(np.abs(a))), 1e-30)
        assert float(np.max(np.abs(np.asarray(a) - b))) <= rtol * scale, name


@pytest.mark.parametrize("kind", ["softmax", "entmax15"])
def test_tiny_budget_readonly_noncontiguous(kind):
    X, C, w = _data("float64", n=300)
    Xf = np.asfortranarray(X)
    Xf.flags.writeable = False
    C.flags.writeable = False
    w.flags.writeable = False
    ref = _pure(X, C, w, 0.7, kind)
    got = fast_soft.soft_stats(Xf, C, w, sigma=0.7, kind=kind, working_memory=0.01)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_entmax_rows_are_exact_threshold():
    # two centers: p2 = ((sqrt(2 - g^2) - g) / 2)^2 with g = Δ / (2σ) < 1 (SPEC Theorem 4)
    X = np.array([[0.0], [0.3], [0.45]])
    C = np.array([[0.0], [1.0]])
    sigma = 0.6
    got = fast_soft.soft_stats(X, C, None, sigma=sigma, kind="entmax15")
    D = (X - C.T) ** 2
    g = (D.max(1) - D.min(1)) / (2 * sigma)
    p2 = np.where(g < 1, ((np.sqrt(2 - g**2) - g) / 2) ** 2, 0.0)
    mass_far = np.sum(np.where(D[:, 1] > D[:, 0], p2, 1 - p2))
    np.testing.assert_allclose(got[1][1], mass_far, rtol=1e-12)


_EXP_CASES = {
    # dtype: (helper, bits dtype, seed, grid end through the subnormals to 0, log-range
    #         of the random scales, special values, below this the result is exactly 0)
    "float64": (
        "_exp_parts",
        np.int64,
        0,
        1200.0,
        (-14, 3),
        [0.0, -0.0, -5e-324, -1e-300, -708.39, -745.13, -745.14, -1e308, -np.inf],
        -746.0,
    ),
    "float32": (
        "_exp_parts32",
        np.int32,
        1,
        110.0,
        (-7, 2),
        [0.0, -0.0, -1e-45, -87.33, -103.2, -103.3, -1e38, -np.inf],
        -104.0,
    ),
}


@pytest.mark.parametrize("dtype", list(_EXP_CASES))
def test_vectorised_exp_is_within_one_ulp_of_numpy(dtype):
    numba = pytest.importorskip("numba")
    name, bits_dtype, seed, end, (lo, hi), special, zero_below = _EXP_CASES[dtype]
    kexp.compiled()
    parts = getattr(kexp, name)

    @numba.njit
    def run(v, out, bits_buf):
        bits = bits_buf.view(bits_dtype)
        for i in range(v.shape[0]):
            p, b = parts(v[i])
            out[i] = p
            bits[i] = b
        for i in range(v.shape[0]):
            out[i] *= bits_buf[i]

    rng = np.random.default_rng(seed)
    v = np.concatenate(
        [
            -np.linspace(0.0, end, 400_001),
            -np.abs(rng.normal(size=200_000)) * np.logspace(lo, hi, 200_000),
            special,
        ]
    ).astype(dtype)
    got = np.empty_like(v)
    run(v, got, np.empty_like(v))
    ref = np.exp(v.astype(np.float64))  # the exact value (float64), then its rounding
    ref_r = ref.astype(dtype)
    normal = ref_r >= np.finfo(dtype).tiny
    err = np.abs(got.astype(np.float64) - ref)
    assert float((err[normal] / np.spacing(ref_r[normal])).max()) <= 1.0
    # gradual underflow: subnormal results within one subnormal step, then exactly 0
    assert float(err[~normal].max()) <= float(np.finfo(dtype).smallest_subnormal)
    assert np.all(got[v < zero_below] == 0.0) and np.all(np.isfinite(got))


def test_softmax_far_center_mass_to_a_few_ulps():
    # logits near -600: the in-kernel exp must keep its Cody-Waite reduction (no
    # reassociation), or the far center's mass is off by ~100 ulps
    x = np.arange(64) / 64.0  # scores, gaps and logits below are all exact
    X = x[:, None]
    C = np.array([[0.0], [30.0]])
    sigma = 2.0
    _, mass, *_ = fast_soft.soft_stats(X, C, None, sigma=sigma, kind="softmax")
    g = 900.0 - 60.0 * x  # gap to the far center (the near one is nearest)
    ref = np.sum(np.exp(-g / sigma) / (1.0 + np.exp(-g / sigma)))
    assert ref < 1e-180
    np.testing.assert_allclose(mass[1], ref, rtol=4e-15)


@pytest.mark.parametrize(
    ("dtype", "kept", "flushed"),
    [
        ("float32", (-80.0, -86.5), (-88.0, -103.0)),
        ("float64", (-700.0, -707.5), (-709.0, -744.0)),
    ],
)
def test_softmax_flushes_terms_below_the_normal_range(dtype, kept, flushed):
    # the kernel drops e^a below the dtype's smallest normal (subnormal arithmetic is ~100x
    # slower on x86); what it keeps equals the reference, what it drops is below `tiny`
    tiny = float(np.finfo(dtype).tiny)
    sigma = 1.0
    for lo, hi, dropped in ((*kept, False), (*flushed, True)):
        a = np.linspace(lo, hi, 256)  # logits of the far center
        # nearest center at 0, far center at c: gap to it = c^2 - 2 c x = -a (σ = 1)
        c = 64.0
        x = (c * c + a) / (2 * c)
        X = x[:, None].astype(dtype)
        C = np.array([[0.0], [c]], dtype=dtype)
        ref = _pure(X, C, None, sigma, "softmax")
        got = SoftStats(*fast_soft.soft_stats(X, C, None, sigma=sigma, kind="softmax"))
        if dropped:
            assert got.mass[1] == 0 and got.sums[1, 0] == 0
            assert 0 < float(ref.mass[1]) <= 256 * tiny  # what the reference keeps
        else:
            assert float(got.mass[1]) > 0
            np.testing.assert_allclose(got.mass[1], ref.mass[1], rtol=1e-4)
        np.testing.assert_allclose(got.mass[0], ref.mass[0], rtol=1e-6)
        np.testing.assert_allclose(got.sums[0], ref.sums[0], rtol=1e-6)
        for name in ("soft_distortion", "free_energy", "inertia"):
            np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("k", "d"), [(4, 3), (40, 96)])
@pytest.mark.parametrize("sigma", [1e-3, 0.3, 3.0, 300.0])
def test_entmax_sparse_and_dense_sums(dtype, k, d, sigma):
    # small k, d: the dense product; large d with a small support: the sparse update
    X, C, w = _data(dtype, n=900, d=d, k=k, seed=k)
    ref = _pure(X, C, w, sigma, "entmax15")
    got = fast_soft.soft_stats(X, C, w, sigma=sigma, kind="entmax15")
    rtol = 1e-10 if dtype == "float64" else 1e-4
    _assert_stats_close(ref, got, sigma, rtol, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("sigma", "route"),
    [(2.0, "sparse"), (16.0, "sparse"), (128.0, "dense")],  # support/row 1.05, 1.4, 5.6
)
def test_entmax_sum_route_by_cost_and_both_routes_match_the_reference(dtype, sigma, route):
    # one chunk through the kernel itself: a support of <= 1.1 centers per row, or a
    # small one where the row updates cost less than the product (the fitted cost
    # model), is added by the kernel (returns False); a large one is left to the
    # caller's dense product.  Either way the statistics are the reference's.
    X, C, w = _data(dtype, n=600, d=96, k=40, seed=40)
    m, d = X.shape
    k = C.shape[0]
    st = fast_soft._State(m, k, d, X.dtype, 0, False)
    np.dot(C, X.T, out=st.GT)
    scale = -0.5 / sigma
    dense = fast_soft._get_kernels()["chunk"](
        X, st.GT, st.XS, C, np.sum(C * C, axis=1), w, scale, np.float32(scale), False,
        sigma, st.best, st.lab, st.scr, st.scr32, st.s_buf[:0], st.mass, st.sums, st.acc,
    )  # fmt: skip
    assert dense == (route == "dense")
    if dense:
        fast_soft.dense_sums(st.GT, X, st.XS, False, st.prod, st.sums, st.mass)
    ref = _pure(X, C, w, sigma, "entmax15")
    rtol = 1e-10 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(st.mass, np.asarray(ref.mass, dtype=np.float64), rtol=rtol)
    scale_x = float(np.max(np.abs(np.asarray(ref.sums))))
    np.testing.assert_allclose(
        st.sums, np.asarray(ref.sums, dtype=np.float64), rtol=rtol, atol=rtol * scale_x
    )
    np.testing.assert_allclose(st.acc[2], float(ref.inertia), rtol=rtol)


@pytest.mark.parametrize("kind", ["softmax", "entmax15"])
def test_many_chunks_over_threads(kind):
    # many chunks per thread: the softmax log-sums are taken in several batches
    X, C, w = _data("float64", n=25_000, d=200, k=4, seed=3)
    ref = _pure(X, C, w, 40.0, kind)
    with arbf.config_context(n_threads=2):
        got = fast_soft.soft_stats(X, C, w, sigma=40.0, kind=kind)
        again = fast_soft.soft_stats(X, C, w, sigma=40.0, kind=kind)
    for a, b, c in zip(ref, got, again, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12 * float(np.max(np.abs(a))))
        np.testing.assert_array_equal(b, c)  # thread timing does not change the result


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("budget", [None, 0.05])
def test_entmax_one_hot_is_the_hard_pass_bit_for_bit(dtype, weighted, budget):
    # every gap >= 2σ: entmax-1.5 is one-hot (SPEC Theorem 4), and the pass is the hard one
    X, C, w = _data(dtype, n=6000, d=7, k=5, seed=4)
    w = w if weighted else None
    with arbf.config_context(n_threads=2):
        sums, mass, L, F, J, T = fast_soft.soft_stats(
            X, C, w, sigma=1e-9, kind="entmax15", working_memory=budget
        )
        _, h_sums, h_mass, h_inertia = hard.lloyd_sums(X, C, w, working_memory=budget)
    np.testing.assert_array_equal(sums, h_sums)
    np.testing.assert_array_equal(mass, h_mass)
    assert J == L == F == h_inertia
    assert T == 0.0


class TestEntmax15Rows:
    """The compiled entmax-1.5 row kernel equals the sort-based reference."""

    @staticmethod
    def _reference(z):
        from arbf._math.core.entmax import entmax15

        return entmax15(np.asarray(z, dtype=np.float64), xp=xpn)

    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @pytest.mark.parametrize("k", [1, 2, 7, 64])
    @pytest.mark.parametrize("scale", [1e-6, 1.0, 1e3, 1e8])
    def test_equals_sort_based(self, dtype, k, scale):
        z = (np.random.default_rng(k).normal(size=(300, k)) * scale).astype(dtype)
        got = entmax15_rows(z)
        assert got.dtype == np.dtype(dtype)
        tol = 1e-12 if dtype == "float64" else 1e-6
        np.testing.assert_allclose(got, self._reference(z), rtol=0, atol=tol)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=tol * k)

    def test_ties_and_minus_inf(self):
        z = np.array(
            [[3.0, 3.0, 3.0, 3.0], [0.0, -np.inf, -np.inf, 1.0], [-np.inf, 2.0, -np.inf, -np.inf]]
        )
        got = entmax15_rows(z)
        np.testing.assert_allclose(got[0], 0.25)
        assert got[1, 1] == got[1, 2] == 0 and got[2].tolist() == [0.0, 1.0, 0.0, 0.0]
        np.testing.assert_allclose(got, self._reference(z), atol=1e-12)

    def test_public_dispatch_numpy_and_torch(self):
        import arbf

        z = np.random.default_rng(0).normal(size=(5, 6, 7))
        z.flags.writeable = False
        ref = np.moveaxis(
            self._reference(np.moveaxis(z, 1, -1).reshape(-1, 6)).reshape(5, 7, 6), -1, 1
        )
        np.testing.assert_allclose(arbf.entmax15(z, axis=1), ref, atol=1e-12)
        torch = pytest.importorskip("torch")
        zt = torch.asarray(z.copy())
        out = arbf.entmax15(zt, axis=1)  # no grad: the compiled kernel through a view
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
        zg = zt.clone().requires_grad_(True)
        outg = arbf.entmax15(zg, axis=1)  # autograd: the differentiable array path
        assert outg.requires_grad
        np.testing.assert_allclose(outg.detach().numpy(), ref, atol=1e-12)
