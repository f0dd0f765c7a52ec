"""Tests written to kill survivors of the mutation run in ``core.distances``, ``core.terms``,
``core.responsibilities``, ``core.monotone``, ``core.matching`` and ``core.soft``
(docs/testing.md, "Mutation testing").  Every value is checked against an independent
reference (plain NumPy, a closed form, :mod:`tests.reference`), never another arbf path.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import arbf
from tests import reference as ref
from tests.backends import assert_close

# ---------------------------------------------------------------------------------------
# core.distances
# ---------------------------------------------------------------------------------------


class TestPairwiseDistancesFarFromTheOrigin:
    """``pairwise_distances`` expands about the *column* means of the centers: with
    columns offset by very different amounts (one at ``1e8``, one at 0 in float64) a
    common scalar shift would leave half the offset in each column and the expansion
    ``||x||² - 2 x·c + ||c||²`` would cancel to about ``eps · 1e16``."""

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_against_direct_differences(self, dbackend, dtype):
        from arbf._math.core.distances import pairwise_distances

        off = 1e8 if dtype == "float64" else 1e4
        rng = np.random.default_rng(5)
        C = np.array([[0.0, 0.0], [3.0, 1.0], [-1.0, 4.0]]) + np.array([off, 0.0])
        X = rng.normal(size=(40, 2)) * 2.0 + np.array([off, 0.0])
        X, C = X.astype(dtype), C.astype(dtype)
        Xd, Cd = X.astype(np.float64), C.astype(np.float64)
        want = np.sqrt(((Xd[:, None, :] - Cd[None]) ** 2).sum(-1))
        got = pairwise_distances(dbackend.asarray(X), dbackend.asarray(C), xp=dbackend.xp)
        tol = 1e-3 if dtype == "float32" else 1e-9
        assert_close(got, want, backend=dbackend, rtol=tol, atol=tol,
                     dtype=dbackend.dtype(dtype))  # fmt: skip


class TestMeanRows:
    """``mean_rows``: column means in X's dtype, float32 summed in float64 (so the mean
    is the float64 mean rounded once): a column whose float32 running sum loses the
    small entries next to ``2**24`` still gets the exact mean 0.75."""

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_exact_mean(self, dbackend, dtype):
        from arbf._math.core.distances import mean_rows

        col = np.array([2.0**24, 1, 1, 1, 1, 1, 1, -(2.0**24)])
        X = np.stack([col, np.arange(8.0)], axis=1).astype(dtype)
        got = mean_rows(dbackend.asarray(X), xp=dbackend.xp)
        want = X.astype(np.float64).mean(axis=0).astype(dtype)
        assert np.array_equal(want, [0.75, 3.5])
        assert_close(got, want, backend=dbackend, rtol=0, atol=0, dtype=dbackend.dtype(dtype))


class TestTinySigma:
    """A σ below the dtype's smallest normal number acts as that number
    (``score_sigma``): in float32, σ = 1e-300 still gives the one-hot rows of σ → 0
    (every nonzero gap is far beyond ``2**20`` σ), not the uniform rows that gaps
    rounded to 0 would give."""

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_float32_rows_are_one_hot(self, dbackend, kind):
        from arbf._math.core.responsibilities import responsibilities

        X = np.array([[0.0, 0.0], [1.0, 0.5], [3.0, -1.0], [4.0, 2.0]], dtype=np.float32)
        C = np.array([[0.0, 0.0], [3.5, 0.5]], dtype=np.float32)
        onehot = (np.arange(2)[None, :] == _sqd(X, C).argmin(1)[:, None]).astype(np.float32)
        got = responsibilities(
            dbackend.asarray(X), dbackend.asarray(C), sigma=1e-300, kind=kind, xp=dbackend.xp
        )
        assert_close(
            got, onehot, backend=dbackend, rtol=0, atol=0, dtype=dbackend.dtype("float32")
        )


def _sqd(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    Xd, Cd = X.astype(np.float64), C.astype(np.float64)
    return ((Xd[:, None, :] - Cd[None]) ** 2).sum(-1)


def test_free_energy_at_closed_form():
    """``free_energy_at``: ``F = s² B - σ T`` in float64 from B and T measured on data
    divided by ``s``, in each of its branches (T = 0, B = 0, s = 1, the general one),
    and ``-inf`` (not NaN) when ``s² B - σ T`` is beyond float64's range."""
    from arbf._math.core.soft import free_energy_at

    for b, t, sigma, s in [
        (2.0, 0.0, 1.5, 3.0),
        (0.0, 0.5, 1.5, 3.0),
        (2.0, 0.5, 1.5, 1.0),
        (2.0, 0.5, 1.5, 3.0),
        (2.0, 0.5, 40.0, 3.0),
        (1e-3, 2.0, 1e-6, 0.25),
    ]:
        assert free_energy_at(b, t, sigma=sigma, scale=s) == pytest.approx(
            s * s * b - sigma * t, rel=1e-15, abs=1e-300
        )
    assert free_energy_at(1.0, 1.0, sigma=1e300, scale=1e-10) == -math.inf


# ---------------------------------------------------------------------------------------
# core.terms
# ---------------------------------------------------------------------------------------


class TestSampleTermsLogSigmaFloor:
    """``log_sigma`` below the dtype's range is clamped to ``log(2 smallest_normal)``:
    with two equal centers and a sample on them (``d = 0``, every gap 0, ``t = log 2``)
    the free energy is exactly ``-σ_lo log 2`` with ``σ_lo = 2 smallest_normal``, a
    normal number of that size."""

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_free_energy_at_the_floor(self, dbackend, dtype):
        from arbf._math.core.terms import sample_terms

        X = np.array([[1.0, 2.0], [1.0, 2.0]], dtype=dtype)
        C = np.array([[1.0, 2.0], [1.0, 2.0]], dtype=dtype)
        fi = np.finfo(dtype)
        ls = dbackend.asarray(np.asarray(-1000.0, dtype=dtype))
        got = sample_terms(
            dbackend.asarray(X), dbackend.asarray(C), None, kind="softmax", xp=dbackend.xp,
            log_sigma=ls,
        )  # fmt: skip
        sigma_lo = 2.0 * float(fi.smallest_normal)
        assert_close(got.responsibilities, np.full((2, 2), 0.5), backend=dbackend, rtol=0)
        assert_close(got.entropy, np.full(2, math.log(2.0)), backend=dbackend,
                     rtol=tol_of(dtype))  # fmt: skip
        F = dbackend.to_numpy(got.free_energy).astype(np.float64)
        np.testing.assert_allclose(F, -sigma_lo * math.log(2.0), rtol=1e-4)


def tol_of(dtype: str) -> float:
    return 1e-6 if dtype == "float32" else 1e-14


# ---------------------------------------------------------------------------------------
# core.monotone (Theorem E: the entmax-1.5 onset)
# ---------------------------------------------------------------------------------------

#: The 1-D fixed point of tests/test_monotone.py: cells {0, 1, 2} and {10, …, 13}; the
#: smallest margin, 78.75, is the sample 10's (nearest 11.5, runner-up 1).
LINE_X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [13.0]])
LINE_C = np.array([[1.0], [11.5]])

TIED = (
    "the smallest margin is not attained by a single sample and runner-up: "
    "only d = 0 at sigma <= Delta_min/2 is certified"
)


def _lloyd(X: np.ndarray, C: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    for _ in range(200):
        new = ref.lloyd_step(X, C, w)
        if np.array_equal(new, C):
            break
        C = new
    return C


class TestEntmaxOnset:
    """``entmax_onset``: which sample and centers it names, and when the smallest margin
    counts as tied (Theorem E needs one sample and one runner-up)."""

    def test_names_the_sample_and_its_two_centers(self):
        from arbf._math.core.monotone import Geometry, entmax_onset

        # a zero-weight row first: ``sample`` indexes the input's rows, not the kept ones
        X = np.vstack([[[5.0]], LINE_X])
        w = np.array([0.0] + [1.0] * 7)
        on = entmax_onset(Geometry(X, LINE_C, w))
        assert on.reason is None
        assert (on.sample, on.nearest, on.runner_up) == (4, 1, 0)
        assert (on.delta0, on.weight, on.n_nearest, on.n_runner_up) == (78.75, 1.0, 4.0, 3.0)
        assert (on.rho_nearest, on.rho_runner_up) == (1.5, 9.0)

    def test_two_samples_two_centers_is_tied(self):
        """Each sample its own cell: both have the same margin, so the onset is tied."""
        X = np.array([[0.0, 0.0], [1.0, 2.0]])
        reg = arbf.monotone_regime(X, X, kind="entmax15")
        assert reg.delta_min == 5.0 and reg.reason == TIED
        assert reg.sigma0 == reg.exact_sigma == 2.5
        assert math.isnan(reg.onset_coefficient) and math.isnan(reg.bound(2.6))

    def test_tied_runner_up_with_three_centers(self):
        """The sample of the smallest margin, (4, 0), is equidistant from the two other
        centers (10, ±5): its runner-up is tied."""
        X = np.array([[4.0, 0.0], [-4.0, 0.0], [9.5, 5.0], [10.5, 5.0], [9.5, -5.0], [10.5, -5.0]])
        C = np.array([[0.0, 0.0], [10.0, 5.0], [10.0, -5.0]])
        assert np.array_equal(_lloyd(X, C), C)
        reg = arbf.monotone_regime(X, C, kind="entmax15")
        assert reg.delta_min == 45.0 and reg.reason == TIED
        assert reg.sigma0 == reg.exact_sigma == 22.5
        # the same sample nearer one of the two: a single runner-up, σ_e above Δ_min/2
        X2 = X.copy()
        X2[0] = [4.0, 0.5]
        C2 = _lloyd(X2, C)
        reg2 = arbf.monotone_regime(X2, C2, kind="entmax15")
        assert reg2.reason is None and reg2.sigma0 > reg2.exact_sigma

    def test_weighted_sigma_e_ends_where_the_loop_gain_reaches_one(self):
        """Condition (ii) of Theorem E with weights: at σ_e the loop gain
        ``|φ'(g)| (2 w ρ_m²/N_m + 2 w ρ_l² N_l²/(N_l - w p)³)/Δ_min`` of the boundary
        sample (weight ``w = 2.5``) is 1, with ``p`` and ``g`` from the fixed point of the
        reference soft Lloyd map at σ_e and the weighted cell masses."""
        A = np.random.default_rng(0).normal(size=(6, 2)) * 0.3
        X = np.vstack([A, A + np.array([10.0, 0.0]), A + np.array([5.0, 6.0]), [[4.5, 1.5]]])
        w = np.concatenate([np.random.default_rng(1).uniform(0.5, 2.0, 18), [2.5]])
        c = _lloyd(X, np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 6.0]]), w)
        reg = arbf.monotone_regime(X, c, kind="entmax15", sample_weight=w)
        se, dm = reg.sigma0, reg.delta_min
        assert reg.reason is None and se > reg.exact_sigma
        mu = c.copy()
        for _ in range(200_000):
            new, _ = ref.soft_centroids(X, mu, se, "entmax15", w)
            if np.array_equal(new, mu):
                break
            mu = new
        D0, D = ref.sqdist(X[-1:], c)[0], ref.sqdist(X[-1:], mu)[0]
        nearest, runner = np.argsort(D0)[:2]
        p = float(ref.responsibilities(X[-1:], mu, se, "entmax15")[0, runner])
        lab = ref.sqdist(X, c).argmin(1)
        n_l, n_m = float(w[lab == nearest].sum()), float(w[lab == runner].sum())
        g = (D[runner] - D[nearest]) / (2 * se)
        s = math.sqrt(2 - g * g)
        dphi = ((s - g) / 2) * (1 + g / s)
        wi = w[-1]
        slope = 2 * wi * D0[runner] / n_m + 2 * wi * D0[nearest] * n_l**2 / (n_l - wi * p) ** 3
        assert dphi * slope / dm == pytest.approx(1.0, abs=1e-6)
        assert reg.bound(se) == pytest.approx(float(np.max(np.linalg.norm(mu - c, axis=1))),
                                              rel=1e-9)  # fmt: skip

    def test_sigma_e_ends_where_another_row_could_leave_one_hot(self):
        """Condition (i) of Theorem E for the other rows binds on the line: at σ_e the
        margin of the sample 2 (89.25), less ``h_2(d(σ_e))``, is ``2 σ_e``, with ``d`` the
        discrepancy of the reference branch at σ_e."""
        reg = arbf.monotone_regime(LINE_X, LINE_C, kind="entmax15")
        se = reg.sigma0
        mu = LINE_C.copy()
        for _ in range(200_000):
            new, _ = ref.soft_centroids(LINE_X, mu, se, "entmax15")
            if np.array_equal(new, mu):
                break
            mu = new
        d = float(np.max(np.linalg.norm(mu - LINE_C, axis=1)))
        assert reg.bound(se) == pytest.approx(d, rel=1e-9)
        D = ref.sqdist(LINE_X, LINE_C)[2]
        rho = np.sqrt(D)
        h = 2 * d * (rho.min() + rho.max()) + d * d
        assert D.max() - D.min() == 89.25
        assert 89.25 - h == pytest.approx(2 * se, rel=1e-9)


def _weighted_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three weighted blobs at their exact weighted Lloyd fixed point."""
    rng = np.random.default_rng(7)
    M = np.array([[0.0, 0.0], [6.0, 0.0], [2.0, 5.0]])
    X = np.vstack([m + rng.normal(size=(10, 2)) for m in M])
    w = rng.uniform(0.5, 2.0, size=len(X))
    return X, _lloyd(X, M, w), w


class TestMonotoneRegimeInvariance:
    """The soft Lloyd map, hence its branch, does not change when every weight is
    multiplied by one constant, and scales with the data: ``X → sX`` maps σ to ``s² σ``
    and distances to ``s`` times them.  With powers of two the arithmetic scales exactly,
    so every number of the certificate must follow."""

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    @pytest.mark.parametrize("factor", [2.0**-10, 2.0**10])
    def test_weights_times_a_constant(self, kind, factor):
        X, c, w = _weighted_case()
        a = arbf.monotone_regime(X, c, kind=kind, sample_weight=w)
        b = arbf.monotone_regime(X, c, kind=kind, sample_weight=w * factor)
        assert a.reason is None and b.reason is None
        for f in ("sigma0", "delta_min", "rate_constant", "onset_coefficient", "theta"):
            x, y = getattr(a, f), getattr(b, f)
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-12), f
        lo = a.exact_sigma if kind == "entmax15" else 0.0
        for t in (0.3, 0.7, 1.0):
            s = lo + t * (a.sigma0 - lo)
            assert b.bound(s) == pytest.approx(a.bound(s), rel=1e-12)
            assert a.bound(s) > 0

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    @pytest.mark.parametrize("scale", [2.0**-7, 2.0**5])
    def test_data_times_a_constant(self, kind, scale):
        X, c, w = _weighted_case()
        a = arbf.monotone_regime(X, c, kind=kind, sample_weight=w)
        b = arbf.monotone_regime(X * scale, c * scale, kind=kind, sample_weight=w)
        s2 = scale * scale
        assert b.reason is None
        assert b.sigma0 == pytest.approx(a.sigma0 * s2, rel=1e-12)
        assert b.delta_min == pytest.approx(a.delta_min * s2, rel=1e-12)
        assert b.exact_sigma == pytest.approx(a.exact_sigma * s2, rel=1e-12)
        if kind == "softmax":
            assert b.rate_constant == pytest.approx(a.rate_constant * scale, rel=1e-12)
        else:
            assert b.onset_coefficient == pytest.approx(a.onset_coefficient * scale, rel=1e-12)
        lo = a.exact_sigma if kind == "entmax15" else 0.0
        for t in (0.3, 0.7, 1.0):
            s = lo + t * (a.sigma0 - lo)
            assert b.bound(s * s2) == pytest.approx(a.bound(s) * scale, rel=1e-9)


class TestSoftmaxCertificateParts:
    """Pieces of Theorem M's certificate against their definitions."""

    def test_geometry_is_built_in_float64(self):
        """``Geometry`` works on float64 copies: float32 inputs give the squared distances
        and margins of their exact float64 values (not float32 arithmetic)."""
        from arbf._math.core.monotone import Geometry

        rng = np.random.default_rng(4)
        X = np.vstack([rng.normal(size=(5, 2)) * 0.1, rng.normal(size=(5, 2)) * 0.1 + 1.0])
        X32 = X.astype(np.float32)
        C = np.stack([X32[:5].astype(np.float64).mean(0), X32[5:].astype(np.float64).mean(0)])
        C32 = C.astype(np.float32)
        geo = Geometry(X32, C32, np.ones(10, dtype=np.float32))
        D = ref.sqdist(X32.astype(np.float64), C32.astype(np.float64))
        assert geo.X.dtype == geo.c.dtype == geo.D.dtype == np.float64
        np.testing.assert_array_equal(geo.D, D)
        S = np.sort(D, axis=1)
        assert geo.delta_min == float((S[:, 1] - S[:, 0]).min())

    def test_safe_norm_rows_of_very_different_sizes(self):
        """``safe_norm`` scales each row by its own largest entry: a row of size 1e-200
        next to a row of size 1 keeps its exact norm (squares below 1e-308 would underflow
        if scaled by the other row's maximum)."""
        from arbf._math.core.monotone import safe_norm

        a = np.array([[3e-200, 4e-200], [3.0, 4.0], [0.0, 0.0]])
        np.testing.assert_allclose(safe_norm(a, axis=1), [5e-200, 5.0, 0.0], rtol=1e-15)
        np.testing.assert_allclose(safe_norm(a.T, axis=0), [5e-200, 5.0, 0.0], rtol=1e-15)

    def test_interval_low_is_the_endpoint_bound(self):
        """``_interval_low``: positive terms at ``t_hi``, negative ones at ``t_lo`` — a
        lower bound of ``Σ c e^{-r t}`` on ``[t_lo, t_hi]`` (checked on a fine grid)."""
        from arbf._math.core.monotone import _interval_low

        rates = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
        coefs = np.array([1.0, -0.4, 2.0, -1.5, 0.7])
        t_lo, t_hi = 0.5, 2.0
        want = sum(
            c * math.exp(-r * (t_hi if c > 0 else t_lo)) for r, c in zip(rates, coefs, strict=True)
        )
        assert _interval_low(rates, coefs, t_lo, t_hi) == pytest.approx(want, rel=1e-14)
        grid = np.linspace(t_lo, t_hi, 301)
        f = (coefs[None, :] * np.exp(-grid[:, None] * rates[None, :])).sum(1)
        assert _interval_low(rates, coefs, t_lo, t_hi) <= f.min()
        pos = np.abs(coefs)  # all positive: the bound is the value at t_hi
        assert _interval_low(rates, pos, t_lo, t_hi) == pytest.approx(
            float((pos * np.exp(-t_hi * rates)).sum()), rel=1e-14
        )

    def test_cancelling_leading_resultants_are_not_certified(self):
        """Three cells on a line, symmetric, weighted so that every cluster's leading
        resultant ``a_j = Σ_{ε_s = 0} w_s v_s`` is exactly 0 (the pull of the neighbours'
        boundary samples cancels the push of its own): Theorem M certifies nothing
        (``sigma0 = nan``) and says that the drift condition (M) fails."""
        X = np.array([[-14.0], [-6.0], [-4.0], [4.0], [6.0], [14.0]])
        w = np.array([1.5, 1.5, 1.0, 1.0, 1.5, 1.5])
        C = np.array([[-10.0], [0.0], [10.0]])
        assert np.array_equal(_lloyd(X, C, w), C)
        D = ref.sqdist(X, C)
        lab = D.argmin(1)
        gaps = D - D[np.arange(6), lab][:, None]
        gaps[np.arange(6), lab] = np.inf
        dm = gaps.min()
        for j in range(3):  # the leading resultant of every cluster is 0
            a = sum(w[i] * (X[i, 0] - C[j, 0]) for i in range(6) if gaps[i, j] == dm)
            a -= sum(
                w[i] * (X[i, 0] - C[j, 0]) for i in range(6) if lab[i] == j and gaps[i].min() == dm
            )
            assert a == 0.0
        reg = arbf.monotone_regime(X, C, sample_weight=w)
        assert math.isnan(reg.sigma0) and math.isnan(reg.rate_constant)
        assert reg.reason == "drift (M): no cluster is certified"
        assert reg.delta_min == dm == 20.0
        # the reason is the one of the last θ at t = T_MAX/Δ_min: with θ so close to 1
        # that t (1 - θ) Δ_min < 1 there, existence (E) fails first
        from arbf._math.core.monotone import T_MAX, Geometry, softmax_certificate

        assert (1 - 0.99999) * T_MAX < 1
        cert = softmax_certificate(Geometry(X, C, w), thetas=(0.99999,))
        assert math.isnan(cert.sigma0)
        assert cert.reason == "existence (E): t (1 - theta) Delta_min < 1"

    @pytest.mark.parametrize("seed", [2, 9])
    def test_covariant_under_data_scaling(self, seed):
        """Random weighted mixtures where (D) decides (a cluster dominated by another, or
        domination by the leading-group form): σ₀ of ``32 X`` is ``32² σ₀`` of ``X``, with
        the same certified and dominated clusters (the arithmetic scales exactly)."""
        from arbf._math.core.monotone import Geometry, softmax_certificate

        rng = np.random.default_rng(seed)
        k = int(rng.integers(3, 6))
        M = rng.uniform(-8, 8, (k, 2))
        X = np.vstack([m + rng.normal(size=(8, 2)) for m in M])
        w = rng.uniform(0.5, 2.0, len(X))
        C = _lloyd(X, M, w)
        assert np.array_equal(ref.lloyd_step(X, C, w), C)
        a = softmax_certificate(Geometry(X, C, w))
        b = softmax_certificate(Geometry(32.0 * X, 32.0 * C, w))
        assert a.reason is None and b.reason is None
        assert b.sigma0 == pytest.approx(1024.0 * a.sigma0, rel=1e-12)
        assert b.rate_constant == pytest.approx(32.0 * a.rate_constant, rel=1e-12)
        assert (a.certified, a.dominated_by) == (b.certified, b.dominated_by)
        # σ₀ extends the single-temperature σ₀ by ``n_pieces`` intervals of ratio 1.02
        for c in (a, b):
            assert c.sigma0_single <= c.sigma0
            assert c.sigma0 == pytest.approx(c.sigma0_single * 1.02**c.n_pieces, rel=1e-12)

    def test_a_cancelling_cluster_dominated_by_its_neighbour(self):
        """The symmetric line of three cells with unit weights: the middle cluster's
        leading resultant cancels (its pushes at ±4 and the pulls at ±6 balance), the
        outer ones do not.  The outer clusters are certified by (M), the middle one is
        dominated (its pairs grouped into the zero resultant); on the reference branch
        ``d`` lies below ``bound`` and falls with σ below σ₀."""
        from arbf._math.core.monotone import Geometry, softmax_certificate

        X = np.array([[-14.0], [-6.0], [-4.0], [4.0], [6.0], [14.0]])
        C = np.array([[-10.0], [0.0], [10.0]])
        cert = softmax_certificate(Geometry(X, C, np.ones(6)))
        assert cert.reason is None and 0 < cert.sigma0 < 10.0
        assert cert.certified == (True, False, True) and cert.dominated_by == (-1, 0, -1)
        reg = arbf.monotone_regime(X, C)
        assert reg.sigma0 == cert.sigma0
        ds = []
        for f in (1.0, 0.7):
            s = f * reg.sigma0
            mu = C.copy()
            for _ in range(5000):
                new, _ = ref.soft_centroids(X, mu, s, "softmax")
                if np.array_equal(new, mu):
                    break
                mu = new
            d = float(np.max(np.abs(mu - C)))
            assert 0 < d <= reg.bound(s) * (1 + 1e-9)
            ds.append(d)
        assert ds[1] < ds[0]
