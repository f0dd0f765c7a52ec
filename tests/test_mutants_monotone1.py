"""Theorem M's conditions at one temperature (``core.monotone._check``) against a reference.

``_check(geo, t, theta, t_hi)`` decides (E), (M) and (D) of the theory page (section
*Monotone discrepancy near a K-Means fixed point*) at ``t`` (``t_hi=None``: valid on
``[t, inf)`` by Abel's bound) or on ``[t, t_hi]`` (endpoint bounds), and says which
condition fails.  :func:`reference_check` below evaluates the same conditions pair by pair
in plain Python from the formulas of ``docs/theory.md`` (its own sums, loops and order of
operations; nothing of arbf but the data layout is shared), and the tests compare the
outcome (``ok``, ``reason``, ``certified``, ``dominated_by`` and the (E) radii):

* on both sides of the temperatures where the outcome changes (to ``1e-9`` relative), on
  random weighted Lloyd fixed points: the library must switch where the reference does,
  which pins every error term of (M) and each form of (D);
* on a 1-D line of three cells with integer data at ``t (1 - theta) Delta_min = 1000``:
  every exponential of a positive rate underflows to 0, ``eps1 = h = omega = 0``, and the
  conditions reduce to exact integer sums, so a drift or a domination difference can be
  made exactly 0 (the inequalities are strict);
* with two rates ``Delta`` and ``Delta + 2^-7`` at ``t = 2^7 log 2`` (``e^{-t 2^-7} = 1/2``
  exactly): a tie of two directions of (M), a zero of the grouped form of (D);
* a cluster without any direction (both resultants 0) and the bisection of the
  single-temperature search.

Written to kill survivors of the mutation run in ``core.monotone`` (docs/testing.md,
"Mutation testing"); docs/mutation/triage_monotone1.tsv lists them.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np
import pytest

from arbf._math.core import monotone as core
from tests import reference as ref

# ---------------------------------------------------------------------------------------
# the reference
# ---------------------------------------------------------------------------------------


def _exp(x: float) -> float:
    return math.exp(x) if x < 709.0 else math.inf


def _abel(terms: list[tuple[float, float]], t: float) -> float:
    """Abel's bound (Step 6): ``min_q`` of the prefix sums of ``c e^{-r t}`` over the
    terms ``(r, c)`` ordered by rate, equal rates in the order given."""
    acc, best = 0.0, math.inf
    for r, c in sorted(terms, key=lambda rc: rc[0]):  # sorted() is stable
        acc += c * math.exp(-t * r)
        best = min(best, acc)
    return best


def _ends(terms: list[tuple[float, float]], a: float, b: float) -> float:
    """The endpoint bound on ``[a, b]``: positive terms at ``b``, negative ones at ``a``."""
    return sum(c * math.exp(-(b if c > 0 else a) * r) for r, c in terms)


class Pair(NamedTuple):
    """A pair ``s = (i, m)`` of a cluster: sample ``i``, rate ``delta_im``, vector ``v``
    (``y_ij`` incoming, ``-y_ij`` outgoing), its norm, ``w_i``, outgoing or not."""

    i: int
    rate: float
    v: np.ndarray
    norm: float
    w: float
    out: bool


class RefCheck:
    """The reference's outcome; ``margin[j] = Psi_j - ErrK_j - e^{t D_j}(E_j^+ + F_j)``
    ``candidates[j]`` the drift bound ``Psi_j(e)`` of each direction tried, and
    ``forms[(l, j)]`` the three (D) values (``-inf`` for the interval one at a single
    temperature)."""

    def __init__(self, reason: str | None, eps0: float) -> None:
        self.ok = False
        self.reason = reason
        self.eps0 = eps0
        self.eps1 = self.contraction = math.nan
        self.margin: list[float] = []
        self.candidates: list[list[float]] = []
        self.certified: list[bool] | None = None
        self.dominated_by: list[int] | None = None
        self.forms: dict[tuple[int, int], list[float]] = {}


def reference_check(X, C, w, t: float, theta: float, t_hi: float | None = None) -> RefCheck:
    """(E), (M) and (D) at ``t`` (or on ``[t, t_hi]``) from their definitions.

    The pairs of cluster ``j`` are listed incoming first (samples in order), then outgoing
    (samples in order, each other center in order); Abel's prefix sums take equal rates in
    that order, the (D) sums ``j``'s pairs before ``l``'s.  The directions ``e`` tried for
    (M) are the leading resultant, the resultant at ``t`` and, on an interval where the
    leading resultant is not 0, the resultant at ``t_hi``; the one of largest ``Psi`` is
    kept (the first on a tie).  ``eps1`` is ``max_j M_j(t, eps0)`` refined three times.
    """
    X, C, w = (np.asarray(a, dtype=np.float64) for a in (X, C, w))
    X, w = X[w > 0], w[w > 0]
    n, k = len(X), len(C)
    D = [[float(((X[i] - C[j]) ** 2).sum()) for j in range(k)] for i in range(n)]
    lab = [min(range(k), key=lambda j: (D[i][j], j)) for i in range(n)]
    rho = [[math.sqrt(d) for d in row] for row in D]
    rhobar = [max(r) for r in rho]
    R = max(rhobar)
    N = [sum(w[i] for i in range(n) if lab[i] == j) for j in range(k)]
    gap = [[D[i][m] - D[i][lab[i]] for m in range(k)] for i in range(n)]
    others = [[m for m in range(k) if m != lab[i]] for i in range(n)]
    dmin = min(gap[i][m] for i in range(n) for m in others[i])

    def pair(i: int, m: int, v: np.ndarray, out: bool) -> Pair:
        return Pair(i, gap[i][m], v, float(np.linalg.norm(v)), float(w[i]), out)

    pairs = [
        [pair(i, j, X[i] - C[j], False) for i in range(n) if lab[i] != j]
        + [pair(i, m, C[j] - X[i], True) for i in range(n) if lab[i] == j for m in others[i]]
        for j in range(k)
    ]

    def q(i: int) -> float:
        return sum(math.exp(-t * gap[i][m]) for m in others[i])

    def h_of(eps: float) -> list[float]:
        return [2 * eps * (rho[i][lab[i]] + rhobar[i]) + eps * eps for i in range(n)]

    def n_minus(eps: float) -> list[float]:
        h = h_of(eps)
        leak = [sum(math.exp(-t * (gap[i][m] - h[i])) for m in others[i]) for i in range(n)]
        return [N[j] - sum(w[i] * leak[i] for i in range(n) if lab[i] == j) for j in range(k)]

    def n_plus(eps: float) -> list[float]:
        h = h_of(eps)
        return [
            N[j] + sum(w[i] * math.exp(-t * (gap[i][j] - h[i])) for i in range(n) if lab[i] != j)
            for j in range(k)
        ]

    def m_of(eps: float) -> list[float]:
        h, nm = h_of(eps), n_minus(eps)
        return [
            sum(s.w * math.exp(-t * (s.rate - h[s.i])) * s.norm for s in pairs[j]) / nm[j]
            for j in range(k)
        ]

    def l_scaled(eps: float, shift: list[float]) -> list[float]:
        """``e^{t shift_j} L_j(t, eps)``."""
        h, nm = h_of(eps), n_minus(eps)
        return [
            4 * t / nm[j] * sum(
                s.w * math.exp(-t * (s.rate - shift[j] - h[s.i])) * (s.norm + eps)
                * (rhobar[s.i] + eps)
                for s in pairs[j]
            )
            for j in range(k)
        ]  # fmt: skip

    # (E)
    eps0 = math.sqrt(4 * R * R + theta * dmin) - 2 * R
    if not eps0 > 0:
        return RefCheck("existence (E): the ball's radius underflows", eps0)
    if t * (1 - theta) * dmin < 1:
        return RefCheck("existence (E): t (1 - theta) Delta_min < 1", eps0)
    if min(n_minus(eps0)) <= 0:
        return RefCheck("existence (E): N_j^- is not positive", eps0)
    m0 = max(m_of(eps0))
    if m0 > eps0:
        return RefCheck("existence (E): no self-map of the ball", eps0)
    lip0 = max(l_scaled(eps0, [0.0] * k))
    if not lip0 < 1:
        return RefCheck("existence (E): no contraction of the ball", eps0)
    eps1 = m0
    for _ in range(3):
        eps1 = min(eps1, max(m_of(eps1)))
    out = RefCheck(None, eps0)
    out.eps1, out.contraction = eps1, lip0

    # (M) at (t, eps1)
    h, nm, npl, mj = h_of(eps1), n_minus(eps1), n_plus(eps1), m_of(eps1)
    big_l = max(l_scaled(eps1, [0.0] * k))
    om = [(math.expm1(t * h[i]) if t * h[i] < 709 else math.inf) + q(i) for i in range(n)]
    nu = [
        _exp(t * h[i]) * sum((gap[i][m] + h[i]) * math.exp(-t * gap[i][m]) for m in others[i])
        for i in range(n)
    ]

    def low(terms: list[tuple[float, float]]) -> float:
        return _abel(terms, t) if t_hi is None else _ends(terms, t, t_hi)

    def resultant(S: list[Pair], base: float, at: float) -> np.ndarray:
        """``sum_s w_s e^{-at (delta_s - base)} v_s``."""
        return sum((s.w * math.exp(-at * (s.rate - base)) * s.v for s in S), np.zeros(X.shape[1]))

    lead = [min(s.rate for s in S) for S in pairs]
    psi, errk, coefs, scaled_e, ue = [], [], [], [], []
    for j, S in enumerate(pairs):
        dj = lead[j]
        a = sum((s.w * s.v for s in S if s.rate == dj), np.zeros(X.shape[1]))
        cands = [a, resultant(S, dj, t)]
        if t_hi is not None and np.linalg.norm(a) > 0:
            cands.append(resultant(S, dj, t_hi))
        best = None
        out.candidates.append([])
        for u in cands:
            size = float(np.linalg.norm(u))
            if size > 0:
                p = [float(s.v @ (u / size)) for s in S]
                terms = [
                    (s.rate - dj, s.w * (dj * ps - (s.rate - dj) * s.norm))
                    for s, ps in zip(S, p, strict=True)
                ]
                out.candidates[j].append(low(terms))
                if best is None or low(terms) > best[0]:
                    best = (low(terms), p, terms)
        e_plus = u_plus = 0.0  # both times e^{t D_j}
        for s in S:
            beta = (1 + om[s.i]) * s.w * math.exp(-t * (s.rate - dj))
            grow = (s.rate + h[s.i]) * beta
            if s.out:
                e_plus += grow * (mj[j] + _exp(t * h[s.i]) * q(s.i) * (s.norm + mj[j]))
            else:
                e_plus += grow * mj[j] + beta * nu[s.i] * (s.norm + mj[j])
            u_plus += grow * s.norm
        scaled_e.append(e_plus)
        ue.append(math.exp(-t * dj) * (u_plus + e_plus))
        if best is None:  # no direction: nothing to certify
            psi.append(-math.inf)
            errk.append(math.inf)
            coefs.append([])
            continue
        psi.append(best[0])
        coefs.append(best[2])
        errk.append(
            sum(
                s.w * math.exp(-t * (s.rate - dj))
                * (dj * om[s.i] * abs(ps) + om[s.i] * (s.rate - dj) * s.norm
                   + (1 + om[s.i]) * h[s.i] * s.norm)
                for s, ps in zip(S, best[1], strict=True)
            )
        )  # fmt: skip
    feedback = max(ue[j] / nm[j] for j in range(k)) / (1 - big_l)
    lj = l_scaled(eps1, lead)
    out.margin = [psi[j] - errk[j] - scaled_e[j] - nm[j] * lj[j] * feedback for j in range(k)]
    cert = [bool(m > 0) for m in out.margin]
    out.certified = cert
    if not any(cert):
        out.reason = "drift (M): no cluster is certified"
        return out

    # (D): the rates are delta_s - D_j for the pairs of l, those of Phi_j for j
    out.dominated_by = dom_by = [-1] * k
    for l_, Sl in enumerate(pairs):
        if cert[l_]:
            continue
        for j in range(k):
            if not cert[j] or lead[l_] < lead[j]:
                continue
            fac = lead[j] * npl[j] / nm[l_]
            dj = lead[j]
            first = [(s.rate - dj, -fac * s.w * _exp(t * h[s.i]) * s.norm) for s in Sl]
            a_l = float(np.linalg.norm(sum(s.w * s.v for s in Sl if s.rate == lead[l_])))
            grouped = [(lead[l_] - dj, -fac * a_l)]
            grouped += [(s.rate - dj, -fac * s.w * s.norm) for s in Sl if s.rate != lead[l_]]
            grouped += [(s.rate - dj, -fac * om[s.i] * s.w * s.norm) for s in Sl]
            forms = [low(coefs[j] + first), low(coefs[j] + grouped), -math.inf]
            if t_hi is not None:  # the resultant form on [t, t_hi]
                up = float(np.linalg.norm(resultant(Sl, dj, t))) + sum(
                    s.w * s.norm * (math.exp(-t * (s.rate - dj)) - math.exp(-t_hi * (s.rate - dj)))
                    + om[s.i] * s.w * s.norm * math.exp(-t * (s.rate - dj))
                    for s in Sl
                )
                forms[2] = low(coefs[j]) - fac * up
            forms = [f - errk[j] for f in forms]
            out.forms[(l_, j)] = forms
            if max(forms) > 0:
                dom_by[l_] = j
                break
        if dom_by[l_] < 0:
            out.reason = f"domination (D): cluster {l_} is neither certified nor dominated"
            return out
    out.ok = True
    return out


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _lloyd(X: np.ndarray, C: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Lloyd's exact fixed point from C (reference steps until the centers repeat)."""
    for _ in range(300):
        new = ref.lloyd_step(X, C, w)
        if np.array_equal(new, C):
            return C
        C = new
    raise AssertionError("Lloyd did not reach a fixed point")


def _mixture(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random (weighted) mixture of 2-4 blobs in 1-2 dimensions at its Lloyd fixed point."""
    rng = np.random.default_rng(seed)
    k, d = int(rng.integers(2, 5)), int(rng.integers(1, 3))
    means = rng.uniform(-6, 6, (k, d))
    per = int(rng.integers(2, 6))
    X = np.vstack([m + rng.normal(size=(per, d)) * rng.uniform(0.3, 1.5) for m in means])
    w = rng.uniform(0.5, 2.0, len(X)) if rng.random() < 0.6 else np.ones(len(X))
    return X, _lloyd(X, means, w), w


def _outcome(res: Any) -> tuple[Any, ...]:
    cert = None if res.certified is None else [bool(b) for b in res.certified]
    dom = None if res.dominated_by is None else [int(i) for i in res.dominated_by]
    return res.ok, res.reason, cert, dom


def _assert_same(got: Any, want: RefCheck) -> None:
    """The library's ``_Check`` against the reference: outcome, (E)'s fields, types."""
    assert got.ok is want.ok and got.reason == want.reason
    ex = got.existence
    assert ex.eps0 == pytest.approx(want.eps0, rel=1e-14)
    if want.reason is not None and want.reason.startswith("existence"):
        assert ex.ok is False and ex.reason == want.reason
        assert math.isnan(ex.eps1) and math.isnan(ex.contraction)
    else:
        assert ex.ok is True and ex.reason is None
        assert ex.eps1 == pytest.approx(want.eps1, rel=1e-12, abs=0.0)
        assert ex.contraction == pytest.approx(want.contraction, rel=1e-12, abs=0.0)
    if want.reason is not None and not want.reason.startswith("domination"):
        assert got.certified is None and got.dominated_by is None
        return
    assert got.certified.dtype == np.bool_ and got.certified.shape == (len(want.certified),)
    assert got.certified.tolist() == want.certified
    assert got.dominated_by.tolist() == want.dominated_by


def _run(X, C, w, t, theta, t_hi=None) -> tuple[Any, RefCheck]:
    return core._check(core.Geometry(X, C, w), t, theta, t_hi=t_hi), reference_check(
        X, C, w, t, theta, t_hi
    )


# ---------------------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------------------

#: ``(seed, theta, t_hi / t or None, t*)``: on ``_mixture(seed)`` the reference's outcome
#: changes at ``t*`` (bisection to an ulp); what crosses 0 there.
BOUNDARIES = [
    # (E)'s self-map: "no self-map of the ball" below, "(M): no cluster is certified" above
    (1, 0.25, None, 2.5485646225189686),
    # cluster 0's (M) margin: "(D): cluster 0 ..." below, "(D): cluster 1 ..." above
    (1, 0.25, None, 3.0604048022851944),
    # the first form of (D) of cluster 3 by cluster 1 (the grouped form is negative)
    (5, 0.75, None, 1.612086450109702),
    # on [t, 1.5 t], the resultant form of (D) of cluster 1 by cluster 0 (others negative)
    (22, 0.75, 1.5, 3.4745800717052444),
    # on [t, 1.02 t], cluster 2's (M) margin (cluster 1 fails (D) on both sides)
    (4, 0.25, 1.02, 0.6179813181122127),
    # on [t, 1.5 t], the first form of (D) of cluster 1 by cluster 0 (others negative)
    (114, 0.75, 1.5, 0.1474569466686401),
]


class TestConditionsAtTheirBoundaries:
    """Every condition of (E), (M), (D) is a strict inequality between closed-form sums;
    where one of them changes sign the outcome changes.  At ``t* (1 -+ 1e-9)`` around
    each such temperature of the reference (random weighted Lloyd fixed points, single
    temperature and intervals ``[t, r t]``), the library must give the reference's
    outcome: the refusal reason, the (E) radii ``eps0``, ``eps1`` and the contraction,
    which clusters (M) certifies and which certified cluster dominates each other one.
    A relative change of ``1e-9`` in t moves the sums far more than their rounding
    (~1e-15), and far less than any wrong term (a sign, a missing factor) moves them."""

    @pytest.mark.parametrize(("seed", "theta", "ratio", "t_star"), BOUNDARIES)
    def test_library_switches_where_the_reference_does(self, seed, theta, ratio, t_star):
        X, C, w = _mixture(seed)
        seen = []
        for t in (t_star * (1 - 1e-9), t_star * (1 + 1e-9)):
            got, want = _run(X, C, w, t, theta, None if ratio is None else ratio * t)
            _assert_same(got, want)
            seen.append(_outcome(got))
        assert seen[0] != seen[1]


def _line(a: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three cells on a line at their exact weighted Lloyd fixed point -10, 0, 10: cell 0
    {-14, -10 (weight a), -6}, cell 1 {-1 (weight 4), 0 (weight 3), 4}, cell 2 {6,
    10 (weight a), 14}; the weights not given are 1."""
    X = np.array([-14.0, -10.0, -6.0, -1.0, 0.0, 4.0, 6.0, 10.0, 14.0])[:, None]
    w = np.array([1.0, a, 1.0, 4.0, 3.0, 1.0, 1.0, a, 1.0])
    C = np.array([[-10.0], [0.0], [10.0]])
    assert np.array_equal(ref.lloyd_step(X[w > 0], C, w[w > 0]), C)
    return X, C, w


class TestExactSumsOnALine:
    """On :func:`_line` at ``t = 100``, ``theta = 1/2``: ``Delta_min = 20`` and
    ``t (1 - theta) Delta_min = 1000``, so every ``e^{-t r}`` of a positive rate (>= 10
    even after the shift ``h(eps0) <= theta Delta_min``) underflows to 0 in float64:
    ``M_j = eps1 = h = q = omega = 0`` and all error terms vanish.  Only the pairs of rate
    20 remain: cluster 0's outgoing -6 (v = -4); cluster 1's incoming -6 (v = -6) and 6
    (v = 6) and outgoing 4 (v = -4), leading resultant ``a_1 = -4``; cluster 2's incoming
    4 (v = -6) and outgoing 6 (v = 4).  With ``e = a_j/|a_j|`` Abel's prefix sums
    ``20 w p`` are 80 for cluster 0, (120, 0, 80) for cluster 1 and (120, 40) for
    cluster 2: cluster 1's drift bound is exactly 0, and (M) (strict) fails for it.

    Cluster 1 then needs (D) from cluster 0, with ``factor = 20 N_0 / N_1 = 5 (2 + a)/2``:
    the first form's prefix sums are ``80, 80 - 6 factor, 80 - 12 factor,
    80 - 16 factor``; the grouped form's ``80, 80 - |a_1| factor``."""

    T, THETA = 100.0, 0.5

    def test_drift_bound_exactly_zero_and_first_form_exactly_zero(self):
        """``a = 0`` (factor 5): the first form ends exactly at 0, which is not > 0; the
        grouped form gives ``80 - 20 = 60 > 0``: cluster 1 is dominated by cluster 0."""
        got, want = _run(*_line(0.0), self.T, self.THETA)
        assert want.margin == [80.0, 0.0, 40.0]
        assert want.forms == {(1, 0): [0.0, 60.0, -math.inf]}
        assert (want.eps1, want.contraction) == (0.0, 0.0)
        _assert_same(got, want)
        assert _outcome(got) == (True, None, [True, False, True], [-1, 0, -1])

    def test_grouped_form_uses_the_norm_of_the_resultant(self):
        """``a = 2`` (factor 10): first form ``80, 20, -40, ...`` fails; the grouped form
        is ``80 - 10 |a_1| = 40 > 0`` with ``|a_1| = |-6 + 6 - 4| = 4`` (with the pairs'
        own norms, ``sqrt(36 + 36 + 16)``, it would be negative)."""
        got, want = _run(*_line(2.0), self.T, self.THETA)
        assert want.forms == {(1, 0): [-80.0, 40.0, -math.inf]}
        _assert_same(got, want)
        assert _outcome(got) == (True, None, [True, False, True], [-1, 0, -1])

    def test_grouped_form_exactly_zero(self):
        """``a = 6`` (factor 20): the grouped form is ``80 - 20 * 4 = 0``, not > 0, and
        cluster 2 does not dominate either: the check fails on (D) for cluster 1."""
        got, want = _run(*_line(6.0), self.T, self.THETA)
        assert want.forms[(1, 0)] == [-240.0, 0.0, -math.inf]
        assert want.forms[(1, 2)][1] < 0
        _assert_same(got, want)
        assert _outcome(got) == (
            False, "domination (D): cluster 1 is neither certified nor dominated",
            [True, False, True], [-1, -1, -1],
        )  # fmt: skip


#: ``t = 2^7 log 2`` and the rate step ``2^-7``: ``e^{-t 2^-7} = 1/2``, ``e^{-2t 2^-7} = 1/4``.
T2, STEP = 128.0 * math.log(2.0), 2.0**-7


class TestTwoRatesExactly:
    """Geometries whose pairs have rates ``Delta`` and ``Delta + 2^-7`` (data and weights
    dyadic), every other rate at least 8.4 above, at ``t = 2^7 log 2``: ``e^{-t 2^-7}`` is
    exactly 1/2 (1/4 at ``2 t``), every other exponential of a positive rate underflows to
    0, ``eps1 = h = q = omega = 0``: the sums of (M) and (D) are exact in float64, and a
    tie or a zero can be built in."""

    @pytest.fixture(autouse=True)
    def _exact_exponentials(self):
        x = np.full(17, -T2 * STEP)
        if not (np.all(np.exp(x) == 0.5) and np.all(np.exp(2 * x) == 0.25)
                and math.exp(x[0]) == 0.5 and math.exp(2 * x[0]) == 0.25):  # fmt: skip
            pytest.skip("exp(-log 2) is not exactly 1/2 on this platform")

    def test_interval_form_when_the_grouped_form_is_exactly_zero(self):
        """Three cells at -8, 0, 8 on a line; rate 32 for the samples -6 and 6, 32 + 2^-7
        for 6 + 2^-11.  On ``[t, 2t]`` cluster 1 (no sample near a boundary; leading pairs
        incoming -6 and 6, ``a_1 = -6``, one incoming pair 6 + 2^-11 of the next rate) is not
        certified; cluster 0 (one leading pair, ``Psi_0 = 64 w``) is.  With ``w = 3 + 2^-13``
        and ``factor = 16``, the grouped form of (D) is ``64 w - 16 (6 + (6 + 2^-11))`` =
        exactly 0 (not > 0); the resultant form, ``64 w - 16 (|-6 + 6 + 2^-11| + (6 +
        2^-11)/2)`` = 144 - 2^-8, is positive: cluster 1 is dominated by cluster 0."""
        eta = 2.0**-11
        w = 3 + eta / 4
        X = np.array([-10, -8, -6, 0, 6, 6 + eta, 8, 10 - eta, 10])[:, None]
        wts = np.array([w, 1.0, w, 4 * w + 2, w - 1, 2.0, 1.0, 2.0, w - 1])
        C = np.array([[-8.0], [0.0], [8.0]])
        assert np.array_equal(ref.lloyd_step(X, C, wts), C)
        got, want = _run(X, C, wts, T2, 0.25, 2 * T2)
        assert want.forms == {(1, 0): [-384.0234375, 0.0, 144.0 - 2.0**-8]}
        _assert_same(got, want)
        assert _outcome(got) == (True, None, [True, False, True], [-1, 0, -1])

    def test_tied_directions_keep_the_leading_resultant(self):
        """Cluster 0 at the origin with leading pairs (rate 12) incoming from (4, 0) and
        (4, 4.5) (cell 1 at (6, 0); weights ``y/4``, ``y/2``) and one incoming pair of rate
        12 + 2^-7 from (0, -y), ``y = 4.75 + 2^-11`` (cell 2 at (0, -8), weight 9): the
        leading resultant is ``(3y, 2.25y)``, direction (0.8, 0.6), the resultant at t
        ``(3y, -2.25y)``, direction (0.8, -0.6).  Both give the same first prefix sum
        ``12 (y/4) (4 * 0.8)`` = 9.6 y, the minimum of Abel's sums for either (9.6, 45,
        12.6 - 4.5 2^-7 times y along the first; 9.6, 12.6, 45 - 4.5 2^-7 along the
        second): a tie, and the first, the leading resultant, is kept.  Cluster 3 (cells 3
        and 4 at (-100, 0) and (-116, 0), leading pairs of rate 12 + 2^-7 with a pull
        first) is not certified; with cluster 0's coefficients along (0.8, 0.6) neither
        form of (D) from cluster 0 is positive (along (0.8, -0.6) the first would be), and
        cluster 1 dominates it."""
        y = 4.75 + STEP / 16
        xl, xy = -107.625 + STEP / 32, -108.375 - STEP / 32
        pts = [
            ((0.0, 0.0), 4.0),  # cell 0's own sample, at its center
            ((4.0, 0.0), y / 4),
            ((4.0, 4.5), y / 2),
            ((8.0, -3.0), 0.75 * y),  # cell 1's mean is (6, 0)
            ((0.0, -y), 9.0),
            ((0.0, -16.0 + y), 9.0),  # cell 2's mean is (0, -8)
            ((xl, 0.0), 1.0),
            ((-200.0 - xl, 0.0), 1.0),
            ((xy, 0.0), 0.125),
            ((-232.0 - xy, 0.0), 0.125),
        ]
        X, w = np.array([p for p, _ in pts]), np.array([v for _, v in pts])
        C = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, -8.0], [-100.0, 0.0], [-116.0, 0.0]])
        assert np.array_equal(ref.lloyd_step(X, C, w), C)
        got, want = _run(X, C, w, T2, 0.1)
        tie = want.candidates[0]
        assert len(tie) == 2 and tie[0] == tie[1] == want.margin[0]
        assert tie[0] == pytest.approx(9.6 * y, rel=1e-15)
        assert max(want.forms[(3, 0)]) < 0 < want.forms[(3, 1)][1]
        _assert_same(got, want)
        assert _outcome(got) == (True, None, [True, True, True, False, True], [-1, -1, -1, 1, -1])


class TestClusterWithoutDirection:
    """The symmetric line ``-14, -6, -4 | 4, 6, 14`` with centers -10, 0, 10 and unit
    weights: the middle cluster's leading pairs (incoming -6 and 6, outgoing -4 and 4,
    all of rate 20) cancel, and by symmetry so does its resultant at every t: there is no
    direction ``e`` for (M).  It is then not certified (its drift bound is ``-inf``) and is
    dominated by cluster 0, with no floating-point warning (no ``0/0`` direction, no
    ``inf - inf``)."""

    X = np.array([[-14.0], [-6.0], [-4.0], [4.0], [6.0], [14.0]])
    C = np.array([[-10.0], [0.0], [10.0]])

    @pytest.mark.parametrize(("t", "ratio"), [(0.5, None), (0.7, 1.02), (100.0, None)])
    def test_not_certified_and_no_warning(self, t, ratio):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got, want = _run(
                self.X, self.C, np.ones(6), t, 0.5, None if ratio is None else ratio * t
            )
        assert want.margin[1] == -math.inf
        _assert_same(got, want)
        assert _outcome(got) == (True, None, [True, False, True], [-1, 0, -1])


class TestSmallestFeasible:
    """``_smallest_feasible``: ``t_lo`` if feasible, ``inf`` if ``t_hi`` is not, else the
    upper end of a bisection in ``log t`` of 60 halvings by default (one feasibility
    check each), against the same bisection written out here."""

    def test_endpoints_and_sixty_halvings(self):
        c = 1.5
        calls: list[float] = []

        def feasible(t: float) -> bool:
            calls.append(t)
            return t >= c

        assert core._smallest_feasible(feasible, 2.0, 3.0) == 2.0 and calls == [2.0]
        assert core._smallest_feasible(feasible, 0.5, 1.0) == math.inf
        calls.clear()
        # a range of 2 * 690 in log t: 60 halvings leave ~1e-15, a few ulps of log 1.5
        got = core._smallest_feasible(feasible, 1e-300, 1e300)
        lo, hi = math.log(1e-300), math.log(1e300)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if math.exp(mid) >= c else (mid, hi)
        assert got == math.exp(hi) and got >= c
        assert len(calls) == 62
