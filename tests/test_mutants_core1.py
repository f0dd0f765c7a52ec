"""Tests written to kill the survivors of the mutation run in the math core's sparse
maps, batched passes, sphere, schedules, spectral, segment and update modules
(docs/testing.md, "Mutation testing"): every value is checked against an independent
reference (a NumPy re-implementation of the documented formula, a closed form, SciPy),
never against another arbf path.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import logsumexp

import arbf
from tests.backends import Backend, assert_close


def _host(backend: Backend, a) -> np.ndarray:
    return np.asarray(backend.to_numpy(a), dtype=np.float64)


# ---------------------------------------------------------------------------------------
# α-entmax by bisection with few halvings: the documented algorithm, step by step
# ---------------------------------------------------------------------------------------


def _exact_entmax(z: np.ndarray, alpha: float) -> np.ndarray:
    """α-entmax of one row, τ by SciPy's brentq on ``Σ [(α-1) z - τ]_+^{1/(α-1)} = 1``."""
    y = (alpha - 1.0) * np.asarray(z, np.float64)
    y = y - y.max()
    inv = 1.0 / (alpha - 1.0)

    def f(tau: float) -> float:
        return float(np.sum(np.clip(y - tau, 0.0, None) ** inv) - 1.0)

    tau = brentq(f, -1.0, 0.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    p = np.clip(y - tau, 0.0, None) ** inv
    return p / p.sum()


def _bisect_reference(z: np.ndarray, alpha: float, n_iter: int) -> np.ndarray:
    """The docstring of :func:`arbf.entmax_bisect`, one row: on ``y = (α-1) z - max``, τ
    is bracketed in ``[-1, -k^{1-α}]`` (``f(lo) >= 0`` at the lower end) and the bracket
    halved ``n_iter`` times; then τ is recomputed on the support found (the scores above
    the final bracket's midpoint) -- the closed form for α ∈ {1.5, 2}, else one Newton
    step from that midpoint -- and the result renormalised."""
    y = (alpha - 1.0) * np.asarray(z, np.float64)
    y = y - y.max()
    k = y.size
    inv = 1.0 / (alpha - 1.0)
    lo, width = -1.0, 1.0 - float(k) ** (1.0 - alpha)
    for _ in range(n_iter):
        width /= 2.0
        mid = lo + width
        if np.sum(np.clip(y - mid, 0.0, None) ** inv) >= 1.0:
            lo = mid
    start = lo + width / 2.0
    if alpha in (1.5, 2.0):
        s = y[y > start]
        if alpha == 2.0:
            tau = (s.sum() - 1.0) / s.size
        else:
            m = s.mean()
            tau = m - math.sqrt((1.0 - np.sum((s - m) ** 2)) / s.size)
    else:
        u = np.clip(y - start, 0.0, None)
        pos = u > 0
        fprime = inv * np.sum(u[pos] ** (inv - 1.0))
        tau = start + (np.sum(u**inv) - 1.0) / fprime
    p = np.clip(y - tau, 0.0, None) ** inv
    return p / p.sum()


def _rows(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.2, size=(24, 5))
    z[0] = [2.0, -3.0, -3.5, -4.0, -5.0]  # one entry in the support
    return z


class TestEntmaxBisectFewHalvings:
    """``n_iter`` is public (1 to 10,000): with a few halvings the result is the
    documented algorithm's, not the exact map; it still sums to 1."""

    @pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 2.5, 3.0])
    @pytest.mark.parametrize("n_iter", [1, 2, 3, 5, 8, 13])
    def test_matches_the_documented_bisection(self, dbackend, alpha, n_iter):
        z = _rows()
        p = arbf.entmax_bisect(dbackend.asarray(z), alpha=alpha, n_iter=n_iter)
        ref = np.stack([_bisect_reference(row, alpha, n_iter) for row in z])
        assert_close(p, ref, backend=dbackend, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(_host(dbackend, p).sum(axis=-1), 1.0, rtol=1e-13)

    @pytest.mark.parametrize("alpha", [1.25, 2.5, 3.0])
    def test_newton_step_along_the_last_axis_of_3d_scores(self, dbackend, alpha):
        """The Newton step's derivative is summed along the probability axis (a 3-D
        batch: summing along another axis moves τ), against the reference row by row."""
        z = _rows(4)[:24].reshape(2, 3, 4, 5)[0]
        for axis in (-1, 1):
            p = arbf.entmax_bisect(dbackend.asarray(z), alpha=alpha, n_iter=6, axis=axis)
            zl = np.moveaxis(z, axis, -1)
            m = zl.shape[-1]
            ref = np.stack([_bisect_reference(r, alpha, 6) for r in zl.reshape(-1, m)])
            ref = np.moveaxis(ref.reshape(zl.shape), -1, axis)
            assert_close(p, ref, backend=dbackend, rtol=1e-9, atol=1e-12)

    @pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 2.5, 3.0])
    def test_exact_when_no_score_is_within_the_final_bracket(self, dbackend, alpha):
        """After n halvings τ lies in a bracket of width ``(1 - k^{1-α}) 2^{-n}`` and the
        support is read at its midpoint: where every score is farther than half that
        from τ the support is exact, so α ∈ {1.5, 2} are exact and a general α is one
        Newton step (error quadratic in 2^{-n}) from exact."""
        z = _rows(9)
        k = z.shape[1]
        exact = np.stack([_exact_entmax(row, alpha) for row in z])
        for n_iter in (2, 4, 6, 9, 12):
            half = (1.0 - k ** (1.0 - alpha)) * 2.0 ** -(n_iter + 1)
            p = _host(dbackend, arbf.entmax_bisect(dbackend.asarray(z), alpha=alpha,
                                                   n_iter=n_iter))  # fmt: skip
            for i, row in enumerate(z):
                y = (alpha - 1.0) * (row - row.max())
                pe = exact[i] ** (alpha - 1.0)
                tau = y[np.argmax(pe)] - pe.max()  # p = (y - τ)^{1/(α-1)} at the top
                if np.min(np.abs(y - tau)) <= 1.5 * half:
                    continue
                if alpha not in (1.5, 2.0) and np.min(np.abs(y - tau)) < 0.1:
                    continue  # Newton's quadratic constant grows as (y_j - τ) -> 0
                tol = 1e-12 if alpha in (1.5, 2.0) else 50.0 * half * half + 1e-12
                np.testing.assert_allclose(p[i], exact[i], rtol=0, atol=tol,
                                           err_msg=f"row {i} n_iter={n_iter}")  # fmt: skip

    def test_ties_with_the_midpoint(self, dbackend):
        """Sparsemax of 4 scores, one halving (bracket [-1, -0.25], midpoint -0.625):
        a midpoint equal to τ (``f = 1`` exactly) becomes the lower end, so a score just
        below τ stays out of the support; a score equal to the support threshold is out
        of it (p = [y - τ]_+ is 0 there).  Both results are exact."""
        # row 0: τ = -0.625, the first midpoint; row 1: τ = -0.75, threshold -0.8125
        z = np.array([[0.0, -0.25, -0.75, -2.0], [0.0, -0.5, -0.8125, -2.0]])
        p = arbf.entmax_bisect(dbackend.asarray(z), alpha=2.0, n_iter=1)
        assert_close(p, [[0.625, 0.375, 0.0, 0.0], [0.75, 0.25, 0.0, 0.0]], backend=dbackend,
                     rtol=0, atol=1e-15)  # fmt: skip
        for row in z:
            np.testing.assert_allclose(_exact_entmax(row, 2.0), _bisect_reference(row, 2.0, 1),
                                       atol=1e-15)  # fmt: skip


# ---------------------------------------------------------------------------------------
# Cosine sample terms: the Euclidean terms of the unit rows at 2σ, halved
# ---------------------------------------------------------------------------------------


def _cosine_terms_reference(X, C, sigma: float, kind: str) -> dict[str, np.ndarray]:
    """Per-sample terms in the cosine convention, from the docstring of
    ``cosine_sample_terms``: ``D = 1 - cos``, ``d = min_j D``, ``G = D - d``,
    responsibilities of the logits ``(cos - 1)/σ``, ``L = Σ r D``, softmax
    ``t = log Σ e^{-G/σ}``, ``F = d - σ t``; entmax-1.5 ``t = 4/3 Σ (r - r^{3/2})``,
    ``F = L - σ t``."""
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    V = C / np.linalg.norm(C, axis=1, keepdims=True)
    D = 1.0 - U @ V.T
    d = D.min(1)
    G = D - d[:, None]
    if kind == "softmax":
        t = logsumexp(-G / sigma, axis=1)
        R = np.exp(-G / sigma - t[:, None])
        L = np.sum(R * D, axis=1)
        F = d - sigma * t
    else:
        R = np.stack([_exact_entmax(-g / sigma, 1.5) for g in G])
        L = np.sum(R * D, axis=1)
        t = (4.0 / 3.0) * np.sum(R - R**1.5, axis=1)
        F = L - sigma * t
    return {"responsibilities": R, "distortion": L, "distortion_stopgrad": L,
            "free_energy": F, "inertia": d, "entropy": t}  # fmt: skip


class TestCosineSampleTerms:
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    @pytest.mark.parametrize("given", ["sigma", "log_sigma"])
    def test_every_field(self, dbackend, kind, given):
        """Every field against the cosine-convention reference; with ``log_sigma`` the
        ``sigma`` argument is ignored (a wrong value is passed to show it)."""
        from arbf._math.core.sphere import cosine_sample_terms

        rng = np.random.default_rng(12)
        X = rng.normal(size=(9, 3)) * np.array([3.0, 0.5, 1.0])
        C = rng.normal(size=(4, 3)) * 2.0
        sigma = 0.3
        xp = dbackend.xp
        if given == "sigma":
            args = {"sigma": sigma}
        else:
            args = {"sigma": 123.0, "log_sigma": dbackend.asarray(math.log(sigma))}
        got = cosine_sample_terms(dbackend.asarray(X), dbackend.asarray(C), kind=kind, xp=xp,
                                  **args)  # fmt: skip
        ref = _cosine_terms_reference(X, C, sigma, kind)
        for name in got._fields:
            value = getattr(got, name)
            dbackend.check_same_kind(value, dtype=xp.float64)
            np.testing.assert_allclose(_host(dbackend, value), ref[name], rtol=1e-9,
                                       atol=1e-12, err_msg=name)  # fmt: skip


# ---------------------------------------------------------------------------------------
# Exact entmax-1.5 (sort-based core) on batches of rows of very different scales
# ---------------------------------------------------------------------------------------


class TestEntmax15SortCore:
    @pytest.mark.parametrize("axis", [-1, 1, 0])
    def test_rows_of_different_scales(self, dbackend, axis):
        """Every slice along ``axis`` is shifted by its own maximum: slices whose scores
        sit far below another slice's (by 10 and by 1000) get the same distribution as
        if alone; ties, one-entry supports and uniform slices included."""
        rng = np.random.default_rng(17)
        z = rng.normal(scale=1.5, size=(3, 4, 5))
        z[0, 0] = [1.0, 1.0, 0.2, -3.0, 1.0]
        z[1, 2] = 0.25
        z[2, 1] = [6.0, -1.0, -2.0, 0.0, -5.0]
        z[:, 3] -= 10.0
        z[2] -= 1000.0
        p = arbf.entmax15(dbackend.asarray(z), axis=axis)
        zl = np.moveaxis(z, axis, -1)
        m = zl.shape[-1]
        ref = np.stack([_exact_entmax(r, 1.5) for r in zl.reshape(-1, m)])
        ref = np.moveaxis(ref.reshape(zl.shape), -1, axis)
        assert_close(p, ref, backend=dbackend, rtol=1e-9, atol=1e-13)

    def test_core_sqrt_map(self, dbackend):
        """``entmax15_sqrt`` of the core is ``sqrt`` of entmax-1.5, in the input's dtype
        and on its device, for 2-D and 3-D scores."""
        from arbf._math.core.entmax import entmax15_sqrt

        xp = dbackend.xp
        if dbackend.lazy:
            pytest.skip("the core's bisection route on Dask is tested through the public API")
        rng = np.random.default_rng(23)
        for shape in [(6, 7), (2, 3, 4)]:
            z = rng.normal(scale=2.0, size=shape)
            z.reshape(-1, shape[-1])[0] = 0.5  # a uniform row
            u = entmax15_sqrt(dbackend.asarray(z), xp=xp)
            dbackend.check_same_kind(u, dtype=xp.float64)
            ref = np.stack([_exact_entmax(r, 1.5) for r in z.reshape(-1, shape[-1])])
            assert_close(u, np.sqrt(ref).reshape(shape), backend=dbackend, rtol=1e-9,
                         atol=1e-12)  # fmt: skip
            u32 = entmax15_sqrt(dbackend.asarray(z.astype(np.float32)), xp=xp)
            dbackend.check_same_kind(u32, dtype=xp.float32)
            np.testing.assert_allclose(_host(dbackend, u32), np.sqrt(ref).reshape(shape),
                                       atol=2e-6)  # fmt: skip


# ---------------------------------------------------------------------------------------
# Segment sums and center updates
# ---------------------------------------------------------------------------------------


class TestSegmentsAndUpdates:
    def test_onehot_segment_sum_and_resolve(self, dbackend):
        """``out_j = Σ_{labels_i = j} values_i`` (an empty segment is 0), against
        ``np.add.at``; ``resolve(None)`` is that sum, ``resolve(f)`` is ``f``."""
        from arbf._math.core.segments import onehot_segment_sum, resolve

        xp = dbackend.xp
        rng = np.random.default_rng(6)
        values = rng.normal(size=(11, 3))
        labels = np.array([0, 2, 2, 4, 0, 1, 4, 4, 2, 0, 1])
        ref = np.zeros((6, 3))
        np.add.at(ref, labels, values)
        vb, lb = dbackend.asarray(values), dbackend.asarray(labels)
        got = onehot_segment_sum(vb, lb, 6, xp=xp)
        dbackend.check_same_kind(got, dtype=xp.float64)
        assert_close(got, ref, backend=dbackend, rtol=1e-12, atol=1e-15)
        pure = resolve(None, xp)
        assert_close(pure(vb, lb, 6), ref, backend=dbackend, rtol=1e-12, atol=1e-15)

        def mine(v, lab, k):
            return "mine"

        assert resolve(mine, xp) is mine

    def test_safe_divide_and_steps(self, dbackend):
        r"""``safe_divide_centers``: ``s_j / N_j`` where ``N_j > 0`` (also below 1), the
        fallback where ``N_j = 0``; ``step``: the soft Lloyd step (``"lloyd"``, an empty
        center stays) and :math:`\mu - \mathrm{lr}\, 2 (N\mu - s)`; ``running_mean_step``:
        :math:`(M\mu + s)/(M + N)` and the gradient step."""
        from arbf._math.core import updates

        xp = dbackend.xp
        C = np.array([[1.0, -1.0], [2.0, 0.5], [-3.0, 4.0], [0.0, 0.0]])
        sums = np.array([[0.2, 0.4], [6.0, 3.0], [0.0, 0.0], [1.5, -3.0]])
        mass = np.array([0.25, 3.0, 0.0, 1.5])
        counts = np.array([0.5, 0.0, 0.0, 2.0])
        Cb, sb, mb, cb = (dbackend.asarray(a) for a in (C, sums, mass, counts))
        lloyd = np.array([[0.8, 1.6], [2.0, 1.0], [-3.0, 4.0], [1.0, -2.0]])
        got = updates.safe_divide_centers(sb, mb, Cb, xp=xp)
        assert_close(got, lloyd, backend=dbackend, rtol=1e-15)
        assert_close(updates.step(Cb, mb, sb, "lloyd", xp=xp), lloyd, backend=dbackend,
                     rtol=1e-15)  # fmt: skip
        grad = 2.0 * (mass[:, None] * C - sums)
        assert_close(updates.step(Cb, mb, sb, 0.1, xp=xp), C - 0.1 * grad, backend=dbackend,
                     rtol=1e-14)  # fmt: skip
        new, tot = updates.running_mean_step(Cb, cb, mb, sb, "lloyd", xp=xp)
        M = counts + mass
        ref = np.where(
            M[:, None] > 0, (counts[:, None] * C + sums) / np.where(M > 0, M, 1)[:, None], C
        )
        assert_close(new, ref, backend=dbackend, rtol=1e-14)
        assert_close(tot, M, backend=dbackend, rtol=0)
        new, tot = updates.running_mean_step(Cb, cb, mb, sb, 0.05, xp=xp)
        assert_close(new, C - 0.05 * grad, backend=dbackend, rtol=1e-14)
        assert_close(tot, M, backend=dbackend, rtol=0)


class TestPrincipalAxisPowerIteration:
    @pytest.mark.parametrize("weighted", [False, True])
    def test_against_the_svd_of_the_centred_data(self, dbackend, weighted):
        """Above EIGH_MAX_FEATURES features: ``(λ_max, v)`` of the weighted covariance
        by power iteration from a given ``v0`` (here integer: it is read as float and
        not modified), against the top singular pair of ``sqrt(w) (X - m)``:
        ``λ = s² / Σw`` (the iteration stops on a 1e-10 relative change of the Rayleigh
        quotient); a data set of one repeated point has λ = 0."""
        from arbf._math.core.spectral import EIGH_MAX_FEATURES, principal_axis

        rng = np.random.default_rng(31)
        d = EIGH_MAX_FEATURES + 6
        X = rng.normal(size=(24, d)) * 0.05 + 3.0
        X[:, 0] += rng.normal(size=24) * 1.5
        X[:, 1] += rng.normal(size=24) * 0.5
        w = rng.uniform(0.2, 2.0, 24) if weighted else np.ones(24)
        m = w @ X / w.sum()
        _, s, vt = np.linalg.svd(np.sqrt(w)[:, None] * (X - m), full_matrices=False)
        wb = dbackend.asarray(w) if weighted else None
        v0 = np.ones(d, dtype=np.int64)
        lam, v = principal_axis(dbackend.asarray(X), wb, xp=dbackend.xp, v0=v0)
        assert isinstance(lam, float)
        assert lam == pytest.approx(s[0] ** 2 / w.sum(), rel=1e-8)
        assert abs(float(v @ vt[0])) == pytest.approx(1.0, abs=1e-6)
        assert float(np.linalg.norm(v)) == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_array_equal(v0, np.ones(d, dtype=np.int64))
        lam0, v_0 = principal_axis(dbackend.asarray(np.full((5, d), 2.0)), None,
                                   xp=dbackend.xp, v0=v0)  # fmt: skip
        assert lam0 == 0.0
        assert v_0.shape == (d,)
