"""Tests written to kill survivors of the mutation run in ``core.monotone``: the existence
conditions (E) of Theorem M (``_existence``), the driver of the softmax certificate
(``softmax_certificate``) and the bisection of the entmax-1.5 onset (``entmax_onset``)
(docs/testing.md, "Mutation testing"; docs/theory.md, *Monotone discrepancy near a
K-Means fixed point*).

Each refusal of (E) is reached with a constructed fixed point and checked field by field,
and each condition at its boundary (an input where the two sides are exactly equal).
Sums are checked against plain NumPy loops over the pairs of Lemma P written from the
theory page (:func:`_ref_sums`), never against the library's ``Geometry`` sums.  Host
NumPy only: the module is host mathematics in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from arbf._math.core import monotone as core
from tests import reference as ref

#: The 1-D fixed point of tests/test_monotone.py: cells {0, 1, 2} and {10, …, 13};
#: Δ_min = 78.75 (the sample 10), R = 12.
LINE_X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [13.0]])
LINE_C = np.array([[1.0], [11.5]])

E_RADIUS = "existence (E): the ball's radius underflows"
E_TEMPERATURE = "existence (E): t (1 - theta) Delta_min < 1"
E_MASS = "existence (E): N_j^- is not positive"
E_SELF_MAP = "existence (E): no self-map of the ball"
E_CONTRACTION = "existence (E): no contraction of the ball"


# ---------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------


class _Ref:
    """The quantities of Theorem M by their definitions (docs/theory.md), in loops over
    the pairs ``s = (i, m)`` of each cluster: incoming (``l_i != j``, rate
    ``D_ij - D_il_i``) and outgoing (``l_i = j``, one pair per ``m != j``, rate
    ``D_im - D_ij``), both with ``||v_s|| = rho_ij``."""

    def __init__(self, X: np.ndarray, c: np.ndarray, w: np.ndarray) -> None:
        self.D = D = ref.sqdist(X, c)
        self.w = np.asarray(w, np.float64)
        self.n, self.k = D.shape
        self.lab = D.argmin(1)
        self.rho = np.sqrt(D)
        self.rhobar = self.rho.max(1)
        self.R = float(self.rhobar.max())
        own = D[np.arange(self.n), self.lab]
        self.dm = float(
            min(D[i, m] - own[i] for i in range(self.n) for m in range(self.k) if m != self.lab[i])
        )
        self.N = np.array([self.w[self.lab == j].sum() for j in range(self.k)])
        self.pairs = []
        for j in range(self.k):
            s = [(i, D[i, j] - own[i], self.rho[i, j]) for i in range(self.n) if self.lab[i] != j]
            s += [
                (i, D[i, m] - D[i, j], self.rho[i, j])
                for i in range(self.n) if self.lab[i] == j for m in range(self.k) if m != j
            ]  # fmt: skip
            self.pairs.append(s)

    def eps0(self, theta: float) -> float:
        """``4 R eps0 + eps0² = theta Delta_min``."""
        return math.sqrt(4 * self.R * self.R + theta * self.dm) - 2 * self.R

    def h(self, i: int, eps: float) -> float:
        return 2 * eps * (self.rho[i, self.lab[i]] + self.rhobar[i]) + eps * eps

    def n_lower(self, t: float, eps: float) -> np.ndarray:
        out = self.N.copy()
        for i in range(self.n):
            q = sum(
                math.exp(-t * (self.D[i, m] - self.D[i, self.lab[i]]))
                for m in range(self.k) if m != self.lab[i]
            )  # fmt: skip
            out[self.lab[i]] -= self.w[i] * math.exp(t * self.h(i, eps)) * q
        return out

    def m_bound(self, t: float, eps: float) -> np.ndarray:
        nl = self.n_lower(t, eps)
        return np.array(
            [
                sum(self.w[i] * math.exp(-t * (r - self.h(i, eps))) * v for i, r, v in s) / nl[j]
                for j, s in enumerate(self.pairs)
            ]
        )

    def lipschitz(self, t: float, eps: float) -> np.ndarray:
        nl = self.n_lower(t, eps)
        return np.array(
            [
                4 * t / nl[j] * sum(
                    self.w[i] * math.exp(-t * (r - self.h(i, eps)))
                    * (v + eps) * (self.rhobar[i] + eps)
                    for i, r, v in s
                )
                for j, s in enumerate(self.pairs)
            ]
        )  # fmt: skip

    def eps1(self, t: float, theta: float) -> float:
        """The a-priori radius ``max_j M_j(t, eps0)``, refined three times by
        ``eps1 <- min(eps1, max_j M_j(t, eps1))``."""
        e = float(self.m_bound(t, self.eps0(theta)).max())
        for _ in range(3):
            e = min(e, float(self.m_bound(t, e).max()))
        return e

    def rate_constant(self, t0: float, eps1: float) -> float:
        """``A = max_j (1/N_j^-) sum_s w_s e^{-t0 (delta_s - Delta_min) + t0 h_i} ||v_s||``
        at ``(t0, eps1)`` (Theorem M, item 2)."""
        nl = self.n_lower(t0, eps1)
        return max(
            sum(
                self.w[i] * math.exp(-t0 * (r - self.dm) + t0 * self.h(i, eps1)) * v
                for i, r, v in s
            ) / nl[j]
            for j, s in enumerate(self.pairs)
        )  # fmt: skip


def _geo(X: np.ndarray, c: np.ndarray, w: np.ndarray | None = None) -> core.Geometry:
    return core.Geometry(X, c, np.ones(len(X)) if w is None else w)


def _is_fixed_point(X: np.ndarray, c: np.ndarray, w: np.ndarray) -> bool:
    return bool(np.array_equal(ref.lloyd_step(X, c, w), c))


def _assert_refused(ex, reason: str, eps0: float) -> None:
    assert ex.ok is False and ex.reason == reason
    assert ex.eps0 == pytest.approx(eps0, rel=1e-14)
    assert math.isnan(ex.eps1) and math.isnan(ex.contraction)


def _crossing(f, target: float, lo: float, hi: float) -> list[float]:
    """The floats ``t`` next to where the decreasing ``f`` crosses ``target`` (bisection
    to adjacent floats, then a few neighbours) at which ``f(t) == target`` exactly."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    near = [lo + j * float(np.spacing(lo)) for j in range(-4, 6)]
    return [t for t in near if f(t) == target]


def _exact_hits(geo, value, target, thetas, keep=None, want: int = 2):
    """``(theta, t, eps0)`` at which ``value(t, eps0) == target(eps0)`` exactly, searched
    next to the crossing in ``t`` for each theta in turn until ``want`` are found (which
    floats hit exactly depends on the platform's ``exp``, so several theta are tried)."""
    out = []
    for theta in thetas:
        theta = float(theta)
        eps0 = math.sqrt(4 * geo.R * geo.R + theta * geo.delta_min) - 2 * geo.R
        t_min = 1.0 / ((1 - theta) * geo.delta_min)
        ts = _crossing(lambda t, e=eps0: value(t, e), target(eps0), t_min, 10 * t_min)
        out += [(theta, t, eps0) for t in ts if keep is None or keep(t, eps0)]
        if len(out) >= want:
            break
    return out


# ---------------------------------------------------------------------------------------
# _existence: the conditions (E) of Theorem M
# ---------------------------------------------------------------------------------------


class TestExistenceRefusals:
    """Each refusal of (E), reached in its own order (radius, temperature, cell mass,
    self-map, contraction), with the returned fields: ``ok`` is ``False``, ``eps0`` the
    ball's radius of the closed form and ``eps1``, ``contraction`` are ``nan``."""

    def test_radius_underflows(self):
        """Two close cells and one far away: ``theta Delta_min = theta / 4`` is below the
        rounding of ``4 R²`` (``R ≈ 2^30``), so ``sqrt(4R² + theta Delta) - 2R`` is exactly
        0: the ball has no radius, at any t and theta."""
        X = np.array([[-0.375], [0.375], [0.625], [1.375], [2.0**30 - 1], [2.0**30 + 1]])
        c = np.array([[0.0], [1.0], [2.0**30]])
        assert _is_fixed_point(X, c, np.ones(6))
        r = _Ref(X, c, np.ones(6))
        assert r.dm == 0.25
        for theta in core.THETAS:
            assert r.eps0(theta) == 0.0
            ex = core._existence(_geo(X, c), 100.0 / r.dm, theta)
            _assert_refused(ex, E_RADIUS, 0.0)

    def test_temperature_below_one_over_one_minus_theta_delta(self):
        """At ``t Delta_min = 1.5`` and ``theta = 0.5``: ``t (1 - theta) Delta_min = 0.75``
        is below 1 (while ``t Delta/(1 - theta)`` and ``t (1 + theta) Delta`` are not)."""
        r = _Ref(LINE_X, LINE_C, np.ones(7))
        ex = core._existence(_geo(LINE_X, LINE_C), 1.5 / r.dm, 0.5)
        _assert_refused(ex, E_TEMPERATURE, r.eps0(0.5))

    def test_temperature_condition_holds_with_equality(self):
        """``t (1 - theta) Delta_min >= 1`` admits equality: at theta = 0.75 and the t
        (next to ``4/Delta_min``) where the product is exactly 1, (E) holds on the line
        (the ball's self-map and contraction, against the reference sums)."""
        r = _Ref(LINE_X, LINE_C, np.ones(7))
        theta, dm = 0.75, r.dm
        t0 = 1.0 / ((1 - theta) * dm)
        ts = [t0 + j * float(np.spacing(t0)) for j in range(-3, 4)]
        ts = [t for t in ts if t * dm * (1 - theta) == 1.0]
        assert ts
        for t in ts:
            ex = core._existence(_geo(LINE_X, LINE_C), t, theta)
            eps0 = r.eps0(theta)
            assert float(r.m_bound(t, eps0).max()) < eps0
            lip = float(r.lipschitz(t, eps0).max())
            assert lip < 1
            assert ex.ok is True and ex.reason is None
            assert ex.contraction == pytest.approx(lip, rel=1e-12)
            assert ex.eps1 == pytest.approx(r.eps1(t, theta), rel=1e-12)

    def test_cell_mass_not_positive(self):
        """A centre cell of one sample with five neighbouring centres at the same gap 1:
        at ``t (1 - theta) Delta_min`` just above 1 its ``q_i e^{t h_i}`` exceeds 1, so
        ``N_j^- = 1 - e^{t h} q < 0`` and (E) refuses before the self-map."""
        ang = 2 * np.pi * np.arange(5) / 5
        C = np.vstack([[0.0, 0.0], np.c_[np.cos(ang), np.sin(ang)]])
        r = _Ref(C, C, np.ones(6))
        theta = 0.03
        t = 1.2 / ((1 - theta) * r.dm)
        eps0 = r.eps0(theta)
        assert r.n_lower(t, eps0)[0] < 0 < r.n_lower(t, eps0)[1:].min()
        _assert_refused(core._existence(_geo(C, C), t, theta), E_MASS, eps0)

    def test_cell_mass_exactly_zero_is_refused(self):
        """``N_j^- > 0`` is strict: at a t where the centre cell's ``N_j^-`` of the star
        is exactly 0 (found next to the root of ``t -> N^-_0(t, eps0)``), (E) refuses."""
        ang = 2 * np.pi * np.arange(5) / 5
        C = np.vstack([[0.0, 0.0], np.c_[np.cos(ang), np.sin(ang)]])
        geo = _geo(C, C)
        hits = _exact_hits(
            geo, lambda t, e: -float(geo.n_lower(t, e).min()), lambda e: 0.0,
            np.linspace(0.03, 0.25, 221),
        )  # fmt: skip
        assert hits, "no t with N^- exactly 0"
        for theta, t, eps0 in hits:
            assert geo.n_lower(t, eps0).min() == 0.0
            _assert_refused(core._existence(geo, t, theta), E_MASS, eps0)

    def test_cells_lighter_than_one(self):
        """(E) is invariant under scaling every weight (``N^-``, ``M`` and ``L`` are
        ratios of weighted sums): with weights 0.1 (cell masses 0.3 and 0.4, below 1) it
        holds where it holds with unit weights, with the same radii."""
        r = _Ref(LINE_X, LINE_C, np.ones(7))
        theta = 0.5
        t = 3.0 / ((1 - theta) * r.dm)
        w = np.full(7, 0.1)
        assert np.all(core.Geometry(LINE_X, LINE_C, w).N < 1)
        ex = core._existence(core.Geometry(LINE_X, LINE_C, w), t, theta)
        assert ex.ok is True and ex.reason is None
        assert ex.eps0 == pytest.approx(r.eps0(theta), rel=1e-14)
        assert ex.eps1 == pytest.approx(r.eps1(t, theta), rel=1e-12)
        assert ex.contraction == pytest.approx(
            float(r.lipschitz(t, r.eps0(theta)).max()), rel=1e-12
        )

    def test_no_self_map(self):
        """Line, theta = 0.5, ``t (1 - theta) Delta_min = 1``: ``max_j M_j(t, eps0) = 1.78``
        exceeds ``eps0 = 0.807``."""
        r = _Ref(LINE_X, LINE_C, np.ones(7))
        theta = 0.5
        t = 1.0 / ((1 - theta) * r.dm) * (1 + 1e-12)
        eps0 = r.eps0(theta)
        assert np.all(r.n_lower(t, eps0) > 0)
        assert float(r.m_bound(t, eps0).max()) > 2 * eps0
        _assert_refused(core._existence(_geo(LINE_X, LINE_C), t, theta), E_SELF_MAP, eps0)

    def test_self_map_holds_with_equality(self):
        """``max_j M_j <= eps0`` admits equality: at a t where ``max_j M_j(t, eps0)`` is
        exactly ``eps0`` (next to the crossing, over a few theta), (E) goes on to the
        contraction (which decides: on the line it mostly fails there)."""
        geo = _geo(LINE_X, LINE_C)
        hits = _exact_hits(
            geo, lambda t, e: float(geo.m_bound(t, e)[0].max()), lambda e: e,
            np.linspace(0.40, 0.75, 351),
        )  # fmt: skip
        assert hits, "no t with max_j M_j exactly eps0"
        r = _Ref(LINE_X, LINE_C, np.ones(7))
        for theta, t, eps0 in hits:
            assert float(geo.m_bound(t, eps0)[0].max()) == eps0
            ex = core._existence(geo, t, theta)
            lip = float(r.lipschitz(t, eps0).max())
            assert abs(lip - 1) > 1e-6
            if lip > 1:
                _assert_refused(ex, E_CONTRACTION, eps0)
            else:
                assert ex.ok is True and ex.reason is None and ex.eps1 <= eps0

    def test_no_contraction(self):
        """Line, theta = 0.5, ``t (1 - theta) Delta_min = 1.5``: the ball is mapped into
        itself (``max M_j = 0.61 <= eps0 = 0.81``) but ``max_j L_j = 1.10`` is not below 1
        (nor below 2)."""
        r = _Ref(LINE_X, LINE_C, np.ones(7))
        theta = 0.5
        t = 1.5 / ((1 - theta) * r.dm)
        eps0 = r.eps0(theta)
        assert float(r.m_bound(t, eps0).max()) < eps0
        assert 1.05 < float(r.lipschitz(t, eps0).max()) < 1.15
        ex = core._existence(_geo(LINE_X, LINE_C), t, theta)
        _assert_refused(ex, E_CONTRACTION, eps0)

    def test_contraction_exactly_one_is_refused(self):
        """``L < 1`` is strict: at a t where ``max_j L_j(t, eps0)`` is exactly 1 (and the
        self-map holds), (E) refuses."""
        geo = _geo(LINE_X, LINE_C)
        hits = _exact_hits(
            geo, lambda t, e: float(geo.lipschitz(t, e).max()), lambda e: 1.0,
            np.linspace(0.45, 0.75, 301),
            keep=lambda t, e: float(geo.m_bound(t, e)[0].max()) <= e,
        )  # fmt: skip
        assert hits, "no t with max_j L_j exactly 1"
        for theta, t, eps0 in hits:
            assert float(geo.lipschitz(t, eps0).max()) == 1.0
            _assert_refused(core._existence(geo, t, theta), E_CONTRACTION, eps0)


class TestExistenceHolds:
    """Where (E) holds: ``eps0`` of the closed form, ``eps1`` the refined a-priori radius
    and ``contraction`` the Lipschitz bound ``max_j L_j(t, eps0)``, against the
    reference sums."""

    @pytest.mark.parametrize(("theta", "f"), [(0.5, 3.0), (0.75, 1.0), (0.1, 10.0)])
    def test_fields(self, theta, f):
        r = _Ref(LINE_X, LINE_C, np.ones(7))
        t = f / ((1 - theta) * r.dm) * (1 + 1e-12)
        ex = core._existence(_geo(LINE_X, LINE_C), t, theta)
        eps0 = r.eps0(theta)
        assert ex.ok is True and ex.reason is None
        assert ex.eps0 == pytest.approx(eps0, rel=1e-14) and eps0 > 0
        assert ex.eps1 == pytest.approx(r.eps1(t, theta), rel=1e-12)
        assert ex.contraction == pytest.approx(float(r.lipschitz(t, eps0).max()), rel=1e-12)
        assert 0 < ex.contraction < 1 and 0 < ex.eps1 <= eps0


# ---------------------------------------------------------------------------------------
# softmax_certificate: the search for t0 and the returned fields
# ---------------------------------------------------------------------------------------

#: Two heavy cells (weight 10⁶ at each centre) and a light boundary pair at ±0.49: (E),
#: (M) and (D) already hold at the smallest admissible ``t = 1/((1 - theta) Delta_min)``.
HEAVY_X = np.array([[0.0], [1.0], [-0.49], [0.49]])
HEAVY_C = np.array([[0.0], [1.0]])
HEAVY_W = np.array([1e6, 1e6, 1.0, 1.0])


class TestSoftmaxCertificateSearch:
    """The search of ``softmax_certificate``: the single-temperature ``t0`` in
    ``[1/((1 - theta) Delta_min), T_MAX/Delta_min]``, the extension by intervals of ratio
    ``ratio`` (at most ``max_pieces``, never below the first bound), the choice over
    ``thetas``, and every field of the result."""

    def test_feasible_at_the_smallest_temperature(self):
        """When the conditions hold at ``t_lo = 1/((1 - theta) Delta_min)``, ``t0`` is
        ``t_lo`` itself (not a bisection's approximation of it), there is no piece below
        it, and over the thetas the smallest theta (the largest ``(1 - theta) Delta``) is
        kept.  The radii are those of (E) at ``t0`` and ``A`` that of Theorem M."""
        assert _is_fixed_point(HEAVY_X, HEAVY_C, HEAVY_W)
        r = _Ref(HEAVY_X, HEAVY_C, HEAVY_W)
        geo = core.Geometry(HEAVY_X, HEAVY_C, HEAVY_W)
        for thetas in [(0.5,), (0.25,), (0.75, 0.1, 0.5)]:
            cert = core.softmax_certificate(geo, thetas=thetas)
            theta = min(thetas)
            t_lo = 1.0 / ((1 - theta) * geo.delta_min)
            assert t_lo * geo.delta_min * (1 - theta) >= 1.0  # (E)'s first test, rounded
            assert cert.reason is None and cert.theta == theta
            assert cert.sigma0 == cert.sigma0_single == 1.0 / t_lo
            assert cert.n_pieces == 0
            assert cert.eps0 == pytest.approx(r.eps0(theta), rel=1e-14)
            assert cert.eps1 == pytest.approx(r.eps1(t_lo, theta), rel=1e-12)
            lip = float(r.lipschitz(t_lo, r.eps0(theta)).max())
            assert cert.contraction == pytest.approx(lip, rel=1e-12)
            assert cert.rate_constant == pytest.approx(r.rate_constant(t_lo, cert.eps1), rel=1e-12)
            assert cert.certified == (True, True) and cert.dominated_by == (-1, -1)

    def test_extension_stops_at_the_first_bound(self):
        """The extension never goes below ``t_lo``, even with a ratio so close to 1 that
        ``t_lo/ratio`` is the float just below ``t_lo`` and ``(1 - theta) Delta t`` rounds
        to 1 there (so (E) alone would not stop it): σ₀ stays ``1/t_lo``."""
        geo = core.Geometry(HEAVY_X, HEAVY_C, HEAVY_W)
        theta, dm = 0.25, geo.delta_min
        t_lo = 1.0 / ((1 - theta) * dm)
        below = float(np.nextafter(t_lo, 0.0))
        ratio = t_lo / below
        assert ratio > 1 and t_lo / ratio == below and below * dm * (1 - theta) >= 1.0
        assert core._check(geo, below, theta, t_hi=t_lo).ok  # the interval itself holds
        cert = core.softmax_certificate(geo, thetas=(theta,), ratio=ratio)
        assert cert.sigma0 == cert.sigma0_single == 1.0 / t_lo and cert.n_pieces == 0

    def test_pieces_of_the_extension(self):
        """On the line (theta = 0.1) the single-temperature σ₀ is extended by three
        intervals of ratio 1.02: ``sigma0 = sigma0_single 1.02³``; ``max_pieces`` caps
        the count (1 piece: ``sigma0 = sigma0_single 1.02``; 0: no extension)."""
        geo = _geo(LINE_X, LINE_C)
        full = core.softmax_certificate(geo, thetas=(0.1,))
        assert full.reason is None and full.n_pieces == 3
        assert full.sigma0 == pytest.approx(full.sigma0_single * 1.02**3, rel=1e-14)
        for cap in (0, 1, 2):
            c = core.softmax_certificate(geo, thetas=(0.1,), max_pieces=cap)
            assert c.n_pieces == cap and c.sigma0_single == full.sigma0_single
            assert c.sigma0 == pytest.approx(c.sigma0_single * 1.02**cap, rel=1e-14)
        # the default thetas: the largest σ₀ is theta = 0.1's
        best = core.softmax_certificate(geo)
        assert (best.theta, best.n_pieces, best.sigma0) == (0.1, 3, full.sigma0)

    def test_fields_against_the_definitions(self):
        """The line's certificate: ``eps0`` of theta, ``eps1`` and ``contraction`` of (E)
        at ``t0 = 1/sigma0`` and ``A`` of Theorem M, item 2, by the reference sums."""
        r = _Ref(LINE_X, LINE_C, np.ones(7))
        cert = core.softmax_certificate(_geo(LINE_X, LINE_C))
        t0 = 1.0 / cert.sigma0
        assert cert.eps0 == pytest.approx(r.eps0(cert.theta), rel=1e-14)
        assert cert.eps1 == pytest.approx(r.eps1(t0, cert.theta), rel=1e-9)
        lip = float(r.lipschitz(t0, r.eps0(cert.theta)).max())
        assert cert.contraction == pytest.approx(lip, rel=1e-9)
        assert cert.rate_constant == pytest.approx(r.rate_constant(t0, cert.eps1), rel=1e-9)
        assert cert.certified == (True, False) and cert.dominated_by == (-1, 0)

    def test_a_tie_between_thetas_keeps_the_first(self):
        """Two thetas one float apart (0.1 and the next float) give bit-identical
        computations (``1 - theta`` and ``4 R² + theta Delta`` round alike): the same t0,
        and the first theta listed is reported."""
        geo = _geo(LINE_X, LINE_C)
        nxt = float(np.nextafter(0.1, 1.0))
        assert 1 - nxt == 1 - 0.1
        assert 4 * geo.R**2 + nxt * geo.delta_min == 4 * geo.R**2 + 0.1 * geo.delta_min
        a = core.softmax_certificate(geo, thetas=(0.1, nxt))
        b = core.softmax_certificate(geo, thetas=(nxt, 0.1))
        assert a.sigma0 == b.sigma0
        assert a.theta == 0.1 and b.theta == nxt

    def test_clusters_of_the_single_temperature_form(self):
        """With no piece (theta = 0.03 on the line) ``certified``/``dominated_by`` are
        those of the single-temperature check at t0 (Abel's bound on ``[t0, ∞)``):
        cluster 1 is dominated by cluster 0.  The interval check on ``[t0, 1.02 t0]``
        would certify both, so it must not be the one reported."""
        geo = _geo(LINE_X, LINE_C)
        for kw in ({}, {"max_pieces": 0}):
            cert = core.softmax_certificate(geo, thetas=(0.03,), **kw)
            assert cert.n_pieces == 0
            t0 = 1.0 / cert.sigma0
            single = core._check(geo, t0, 0.03)
            assert tuple(single.certified) == cert.certified == (True, False)
            assert tuple(single.dominated_by) == cert.dominated_by == (-1, 0)
            assert tuple(core._check(geo, t0, 0.03, t_hi=1.02 * t0).certified) == (True, True)

    def test_clusters_of_the_last_interval(self):
        """With pieces, ``certified``/``dominated_by`` are those of the interval check on
        the last piece ``[t0, 1.02 t0]`` (a weighted 3-cluster mixture, 20 pieces): the
        middle cluster is dominated, not certified (a check on the reversed interval
        ``[t0/1.02, t0]``, optimistic, would certify it)."""
        X, C, w = _mixture(42)
        geo = core.Geometry(X, C, w)
        cert = core.softmax_certificate(geo, thetas=(0.1,))
        assert cert.reason is None and cert.n_pieces == 20
        t0 = 1.0 / cert.sigma0
        last = core._check(geo, t0, 0.1, t_hi=1.02 * t0)
        assert tuple(last.certified) == cert.certified == (True, False, True)
        assert tuple(last.dominated_by) == cert.dominated_by == (-1, 0, -1)
        assert tuple(core._check(geo, t0, 0.1, t_hi=t0 / 1.02).certified) == (True,) * 3


def _mixture(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A weighted mixture of k in [3, 5] blobs (6 samples each) at its exact weighted
    Lloyd fixed point."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 6))
    M = rng.uniform(-8, 8, (k, 2))
    X = np.vstack([m + rng.normal(size=(6, 2)) for m in M])
    w = rng.uniform(0.5, 2.0, len(X))
    C = M
    for _ in range(200):
        new = ref.lloyd_step(X, C, w)
        if np.array_equal(new, C):
            break
        C = new
    assert _is_fixed_point(X, C, w)
    return X, C, w


# ---------------------------------------------------------------------------------------
# entmax_onset: the bisection for sigma_e
# ---------------------------------------------------------------------------------------


def _phi(g: float) -> float:
    s = math.sqrt(2 - g * g)
    return ((s - g) / 2) ** 2


def _ref_onset_conditions(X, c, w):
    """Theorem E's conditions (i) and (ii) at σ by their definitions (docs/theory.md), for
    the sample ``i*`` of the smallest margin: ``p`` by the iteration
    ``p <- phi(Delta(p)/2σ)`` from 0, ``d = max(w p rho_m/(N_m + w p),
    w p rho_l/(N_l - w p))``, ``h_i(d)``; (i) ``Delta_i - h_i >= 2σ`` for every other row and
    the third gap of ``i*`` less ``h_{i*}`` ``>= 2σ``; (ii) ``Delta(p) > 0`` and
    ``|phi'(g)| sup|Delta'|/Delta_min < 1``, ``g = Delta(p)/2σ``.  Returns ``ok(σ)``,
    ``Delta_min``, the second smallest margin and the third gap of ``i*``."""
    D = ref.sqdist(X, c)
    n, k = D.shape
    S = np.sort(D, axis=1)
    margins = S[:, 1] - S[:, 0]
    i = int(np.argmin(margins))
    lab = D.argmin(1)
    l_, m_ = int(lab[i]), int(np.argsort(D[i])[1])
    dm = float(margins[i])
    second = float(np.delete(margins, i).min())
    third = float(S[i, 2] - S[i, 0]) if k > 2 else math.inf
    wi = float(w[i])
    n_l, n_m = float(w[lab == l_].sum()), float(w[lab == m_].sum())
    r_l2, r_m2 = float(D[i, l_]), float(D[i, m_])
    rho = np.sqrt(D)
    hsum = rho[np.arange(n), lab] + rho.max(1)

    def delta(p):
        # Delta_min - rho_m² (1 - (N_m/(N_m + wp))²) - rho_l² ((N_l/(N_l - wp))² - 1),
        # each bracket written without cancellation
        x = wi * p
        return (
            dm
            - r_m2 * x * (2 * n_m + x) / (n_m + x) ** 2
            - r_l2 * x * (2 * n_l - x) / (n_l - x) ** 2
        )

    def ok(sigma):
        p = 0.0
        for _ in range(100_000):
            nxt = _phi(min(max(delta(p) / (2 * sigma), 0.0), 1.0))
            if abs(nxt - p) <= 1e-16 * nxt:
                break
            p = nxt
        p = nxt
        d = max(
            wi * p * math.sqrt(r_m2) / (n_m + wi * p), wi * p * math.sqrt(r_l2) / (n_l - wi * p)
        )
        h = 2 * d * hsum + d * d
        if np.any(np.delete(margins - h, i) < 2 * sigma) or third - h[i] < 2 * sigma:
            return False
        g = delta(p) / (2 * sigma)
        if not g > 0:
            return False
        s = math.sqrt(2 - g * g)
        dphi = ((s - g) / 2) * (1 + g / s)
        slope = 2 * wi * r_m2 / n_m + 2 * wi * r_l2 * n_l**2 / (n_l - wi * p) ** 3
        return dphi * slope / dm < 1

    return ok, dm, second, third


def _bisect(ok, lo: float, hi: float, steps: int = 60) -> float:
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


#: A tiny weight: the boundary samples move the centres by ~2^-70, far below the
#: rounding of every margin, so ``h`` vanishes against them.
TINY = 2.0**-70


class TestEntmaxOnsetBisection:
    """σ_e is the end of a 60-step bisection of ``[Delta_min/2, min(Delta_2, delta_3)/2]``
    (``Delta_2`` the second smallest margin, ``delta_3`` the third gap of ``i*``) on the
    conditions of Theorem E, each with its own boundary."""

    def test_other_row_condition_holds_with_equality(self):
        """Condition (i) for another row is ``Delta_i - h_i >= 2σ``, equality allowed.  The
        boundary samples ±0.375 weigh ``2^-70``: every ``h`` is below the rounding of the
        margins, all conditions hold on the whole bracket ``[1/8, 1/4]`` (dyadic ends), and
        the bisection reaches its top ``Delta_2/2 = 1/4``, where ``Delta_2 - h = 2σ``
        exactly."""
        X = np.array([[0.0], [0.375], [-0.375], [1.0], [0.75], [1.25]])
        c = np.array([[0.0], [1.0]])
        w = np.array([1.0, TINY, TINY, 1.0, 1.0, 1.0])
        assert _is_fixed_point(X, c, w)
        ok, dm, second, third = _ref_onset_conditions(X, c, w)
        assert (dm, second, third) == (0.25, 0.5, math.inf)
        assert all(ok(s) for s in np.linspace(0.125, 0.25, 9)[1:])
        on = core.entmax_onset(core.Geometry(X, c, w))
        assert on.reason is None
        assert on.sigma_e == _bisect(ok, dm / 2, second / 2) == second / 2

    def test_third_gap_condition_holds_with_equality(self):
        """Condition (i) for ``i*``'s third centre is ``delta_3 - h_{i*} >= 2σ``, equality
        allowed: ``i* = (-1/8, 0)`` between the centres (∓1, 0), its third centre
        (0, 3/2) at the gap ``delta_3 = 3/2 < Delta_2 = 13/4``; with the tiny weight the
        bisection reaches ``delta_3/2 = 3/4``."""
        X = np.array([[-1.0, 0.0], [-0.125, 0.0], [-1.875, 0.0], [1.0, 0.0], [0.0, 1.5]])
        c = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
        w = np.array([1.0, TINY, TINY, 1.0, 1.0])
        assert _is_fixed_point(X, c, w)
        ok, dm, second, third = _ref_onset_conditions(X, c, w)
        assert (dm, second, third) == (0.5, 3.25, 1.5)
        on = core.entmax_onset(core.Geometry(X, c, w))
        assert on.reason is None and (on.nearest, on.runner_up) == (0, 1)
        assert on.sigma_e == _bisect(ok, dm / 2, third / 2) == third / 2

    def test_sixty_halvings_of_the_bracket(self):
        """A wide bracket: ``Delta_min = 2^-21`` and ``Delta_2 = 1`` (heavy cells of weight
        2^19 at the centres 0 and 1, unit boundary samples at ±(1/2 - 2^-22)).  The loop
        gain ends the branch at ``σ_e ≈ 1.08 Delta_min/2``; after 60 halvings of
        ``[Delta_min/2, Delta_2/2]`` the bracket is ``2^-61`` wide, about ``2^13`` floats
        at σ_e, so σ_e is exactly the 60th lower end (a 61st step would move it)."""
        x = 0.5 - 2.0**-22
        X = np.array([[0.0], [x], [-x], [1.0]])
        c = np.array([[0.0], [1.0]])
        w = np.array([2.0**19, 1.0, 1.0, 2.0**19])
        assert _is_fixed_point(X, c, w)
        ok, dm, second, third = _ref_onset_conditions(X, c, w)
        assert (dm, second, third) == (2.0**-21, 1.0, math.inf)
        want = _bisect(ok, dm / 2, second / 2)
        assert 1.05 < want / (dm / 2) < 1.1
        assert _bisect(ok, dm / 2, second / 2, 61) != want  # not yet closed
        on = core.entmax_onset(core.Geometry(X, c, w))
        assert on.reason is None and on.sigma_e == want

    def test_loop_gain_strictly_below_one(self):
        """Condition (ii) is strict: on this line (unit weights, boundary samples ±3/8 and
        1 ± 1/8) the loop gain binds, and one midpoint of the bisection has a gain bound
        of exactly 1: σ_e lies below it, where the gain is < 1 (and ≈ 1).  The gain is
        checked against its definition (the reference conditions) on either side."""
        X = np.array([[0.0], [0.375], [-0.375], [1.0], [0.875], [1.125]])
        c = np.array([[0.0], [1.0]])
        assert _is_fixed_point(X, c, np.ones(6))
        ok, dm, second, _ = _ref_onset_conditions(X, c, np.ones(6))
        on = core.entmax_onset(_geo(X, c))
        se = on.sigma_e
        assert on.reason is None and dm / 2 < se < second / 2
        assert ok(se * (1 - 1e-9)) and not ok(se * (1 + 1e-9))
        p = on.p(se)
        assert on.gain_bound(p, se) < 1.0
        assert on.gain_bound(p, se) == pytest.approx(1.0, abs=1e-12)
        # the bisection's path, decided by the gain bound alone, ends at σ_e and passes a
        # midpoint where the bound is exactly 1
        lo, hi, at_one = dm / 2, second / 2, []
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            gain = on.gain_bound(on.p(mid), mid)
            at_one += [mid] if gain == 1.0 else []
            lo, hi = (mid, hi) if gain < 1.0 else (lo, mid)
        assert lo == se and at_one and max(at_one) > se
