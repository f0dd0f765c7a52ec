r"""The monotone regime of the centroid discrepancy near a K-Means fixed point, on the host.

Certificates of Theorems M (softmax) and E (entmax-1.5) of the theory page
(``docs/theory.md``, section *Monotone discrepancy near a K-Means fixed point*).  Like
:mod:`.matching`, this is host mathematics: it runs in NumPy ``float64`` on host copies of
the data (a finite number of closed-form sums over the samples, a bisection and a scalar
fixed point), never on a device, and it is not chunked (it holds ``n x k`` arrays).

Notation (the theory page's).  ``c`` is a non-degenerate K-Means fixed point of
``(X, w)``; only samples with ``w_i > 0`` enter.  ``l_i`` is the nearest center, ``C_j``
the cells, ``N_j = sum_{C_j} w_i``, ``y_ij = x_i - c_j``, ``rho_ij = ||y_ij||``,
``rhobar_i = max_j rho_ij``, ``R = max_i rhobar_i``; the gaps are
``delta_im = D_im - D_il_i`` (``m != l_i``), the margins ``Delta_i = min_m delta_im``,
``Delta_min = min_i Delta_i > 0``; ``t = 1/sigma`` and
``q_i(t) = sum_{m != l_i} exp(-t delta_im)``.  Cluster ``j`` owns the *pairs*
``s = (i, m)``, ``m != l_i``, with ``m = j`` (incoming, vector ``v_s = y_ij``) or
``l_i = j`` (outgoing, ``v_s = -y_ij``), of rate ``delta_s = delta_im`` and weight
``w_s = w_i``; Lemma P: ``N_j(mu) (T_sigma(mu)_j - c_j) = sum_{s in S_j} w_i r_im(mu) v_s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "THETAS",
    "T_MAX",
    "EntmaxOnset",
    "Geometry",
    "SoftmaxCertificate",
    "entmax_onset",
    "fixed_point_defect",
    "safe_norm",
    "softmax_bound",
    "softmax_certificate",
]

#: The single-temperature certificate is searched for ``t0 <= T_MAX / Delta_min``: beyond
#: it every discrepancy is below ``exp(-T_MAX)`` relative and nothing is left to certify.
T_MAX = 2.0e4
#: The values of θ tried (the ball's radius uses ``θ Δ_min`` of the margin); the one with
#: the largest σ₀ is kept.
THETAS = (0.75, 0.5, 0.25, 0.1, 0.03)
#: Ratio of consecutive temperatures of the piecewise (interval) extension.
RATIO = 1.02
#: At most this many intervals in the piecewise extension.
MAX_PIECES = 2000


def safe_norm(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Euclidean norm along ``axis`` without underflow of the squares.

    ``np.linalg.norm`` returns 0 for vectors below ~1e-154; discrepancies on the softmax
    branch reach 1e-200, so the entries are scaled by their largest modulus first.
    """
    a = np.asarray(a, dtype=np.float64)
    m = np.abs(a).max(axis=axis, keepdims=True)
    safe = np.where(m > 0, m, 1.0)
    return np.asarray((np.sqrt(((a / safe) ** 2).sum(axis=axis, keepdims=True)) * m).squeeze(axis))


@dataclass(frozen=True)
class _Pairs:
    """The pairs ``S_j`` of one cluster: sample index, rate, vector and its norm, weight,
    and whether the pair is outgoing (``l_i = j``)."""

    idx: np.ndarray
    rate: np.ndarray
    vec: np.ndarray
    norm: np.ndarray
    w: np.ndarray
    out: np.ndarray


class Geometry:
    """Every quantity at the K-Means fixed point that the certificates use.

    Built from host ``float64`` copies; samples of zero weight are dropped (they do not
    enter the soft Lloyd map).  ``keep`` maps the remaining rows to the input's rows.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    centers : ndarray of shape (k, d)
        The fixed point ``c`` (the weighted means of their cells).
    w : ndarray of shape (n,)
        Non-negative weights.
    """

    def __init__(self, X: np.ndarray, centers: np.ndarray, w: np.ndarray) -> None:
        X = np.asarray(X, dtype=np.float64)
        c = np.asarray(centers, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        self.keep = np.flatnonzero(w > 0)
        X, w = X[self.keep], w[self.keep]
        n, k = X.shape[0], c.shape[0]
        self.X, self.c, self.w, self.n, self.k = X, c, w, n, k
        Y = X[:, None, :] - c[None, :, :]
        D = (Y * Y).sum(axis=-1)
        lab = D.argmin(axis=1)
        rows = np.arange(n)
        self.Y, self.D, self.lab = Y, D, lab
        self.N = np.bincount(lab, weights=w, minlength=k)
        self.rho = np.sqrt(D)
        self.rhobar = self.rho.max(axis=1)
        self.rho_own = self.rho[rows, lab]
        self.R = float(self.rhobar.max()) if n else 0.0
        gaps = D - D[rows, lab][:, None]
        gaps[rows, lab] = np.inf
        self.gaps = gaps
        self.margins = gaps.min(axis=1) if k > 1 else np.full(n, np.inf)
        self.delta_min = float(self.margins.min()) if n else math.nan
        self.pairs = [self._pairs_of(j) for j in range(k)]

    def _pairs_of(self, j: int) -> _Pairs:
        k, lab = self.k, self.lab
        inc = np.flatnonzero(lab != j)
        own = np.flatnonzero(lab == j)
        others = np.array([m for m in range(k) if m != j], dtype=np.intp)
        own_rep = np.repeat(own, k - 1)
        idx = np.concatenate([inc, own_rep])
        rate = np.concatenate([self.gaps[inc, j], self.gaps[own_rep, np.tile(others, own.size)]])
        vec = np.concatenate([self.Y[inc, j], -self.Y[own_rep, j]])
        out = np.concatenate([np.zeros(inc.size, bool), np.ones(own_rep.size, bool)])
        return _Pairs(idx, rate, vec, np.linalg.norm(vec, axis=1), self.w[idx], out)

    # ---- point-level functions of t --------------------------------------------------
    def q(self, t: float) -> np.ndarray:
        """``q_i(t) = sum_{m != l_i} exp(-t delta_im)`` (the own column's gap is ``inf``)."""
        return np.asarray(np.exp(-t * self.gaps).sum(axis=1))

    def h(self, eps: float) -> np.ndarray:
        """``h_i(eps) = 2 eps (rho_{i l_i} + rhobar_i) + eps^2``: how far a gap moves when
        every center moves by at most ``eps``."""
        return np.asarray(2.0 * eps * (self.rho_own + self.rhobar) + eps * eps)

    def n_lower(self, t: float, eps: float) -> np.ndarray:
        """``N_j^-(t, eps) = N_j - sum_{C_j} w_i e^{t h_i} q_i(t)`` (one exponential per
        term: no overflow)."""
        h = self.h(eps)
        leak = self.w * np.exp(-t * (self.gaps - h[:, None])).sum(axis=1)
        return np.asarray(self.N - np.bincount(self.lab, weights=leak, minlength=self.k))

    def n_upper(self, t: float, eps: float) -> np.ndarray:
        """``N_j^+(t, eps) = N_j + sum_{i not in C_j} w_i e^{-t (delta_ij - h_i)}``."""
        h = self.h(eps)
        return np.asarray(
            self.N + (self.w[:, None] * np.exp(-t * self.gaps + (h * t)[:, None])).sum(axis=0)
        )

    def m_bound(self, t: float, eps: float) -> tuple[np.ndarray, np.ndarray]:
        """``(M_j(t, eps), N_j^-)``: ``||T_sigma(mu)_j - c_j|| <= M_j`` on the eps-ball,
        ``M_j = (1/N_j^-) sum_{s in S_j} w_s e^{-t (delta_s - h_i)} ||v_s||``."""
        h = self.h(eps)
        nl = self.n_lower(t, eps)
        s = np.array([(P.w * np.exp(-t * (P.rate - h[P.idx])) * P.norm).sum() for P in self.pairs])
        return s / nl, nl

    def lipschitz(self, t: float, eps: float) -> np.ndarray:
        """``L_j(t, eps) = (4t/N_j^-) sum_s w_s e^{-t(delta_s - h_i)} (||v_s|| + eps)
        (rhobar_i + eps)``: the Lipschitz bound of the map on the eps-ball."""
        h = self.h(eps)
        nl = self.n_lower(t, eps)
        s = np.array(
            [
                (
                    P.w
                    * np.exp(-t * (P.rate - h[P.idx]))
                    * (P.norm + eps)
                    * (self.rhobar[P.idx] + eps)
                ).sum()
                for P in self.pairs
            ]
        )
        return np.asarray(4.0 * t * s / nl)


def fixed_point_defect(geo: Geometry) -> str | None:
    """Why ``geo.c`` is not a non-degenerate K-Means fixed point (``None`` when it is).

    The three conditions: a sample of positive weight exists; no cell is empty; every
    positive-weight sample is strictly closer to its own center (``Delta_min > 0``).  That
    the centers are their cells' means is checked by the caller (it needs the input's
    rounding).
    """
    if geo.n == 0:
        return "no sample has a positive weight"
    empty = np.flatnonzero(geo.N <= 0)
    if empty.size:
        return f"cluster {int(empty[0])} has no sample of positive weight (an empty cell)"
    if not geo.delta_min > 0:
        i = int(geo.keep[int(np.argmin(geo.margins))])
        return (
            f"sample {i} is equidistant from its two nearest centers (Delta_min = 0): "
            "the fixed point is degenerate"
        )
    return None


# --------------------------------------------------------------------------------------
# softmax: Theorem M
# --------------------------------------------------------------------------------------


def _abel_min(rates: np.ndarray, coefs: np.ndarray, t: float) -> float:
    """``min_q G_q``, ``G_q`` the rate-ordered prefix sums of ``coef e^{-rate t}``.

    Abel's lemma (Step 6): when the smallest rate is 0, ``sum coef e^{-rate t'}`` is at
    least this for every ``t' >= t``.
    """
    o = np.argsort(rates, kind="stable")
    return float(np.cumsum(coefs[o] * np.exp(-t * rates[o])).min())


def _interval_low(rates: np.ndarray, coefs: np.ndarray, t_lo: float, t_hi: float) -> float:
    """Lower bound of ``sum coef e^{-rate t}`` over ``t`` in ``[t_lo, t_hi]`` (each term is
    monotone in t: positive terms at ``t_hi``, negative ones at ``t_lo``)."""
    return float(
        np.where(coefs > 0, coefs * np.exp(-t_hi * rates), coefs * np.exp(-t_lo * rates)).sum()
    )


def _directions(P: _Pairs, t: float) -> tuple[float, np.ndarray, list[np.ndarray]]:
    """``(Delta_j, eps_s, [e])``: the leading rate, the excess rates, and the candidate
    unit vectors ``e``: the leading resultant ``a_j`` and the resultant at ``t``."""
    lead_rate = float(P.rate.min())
    eps = P.rate - lead_rate
    lead = eps == 0.0
    dirs = []
    for v in (
        (P.w[lead, None] * P.vec[lead]).sum(axis=0),
        ((P.w * np.exp(-t * eps))[:, None] * P.vec).sum(axis=0),
    ):
        nv = float(np.linalg.norm(v))
        if nv > 0:
            dirs.append(v / nv)
    return lead_rate, eps, dirs


@dataclass(frozen=True)
class _Existence:
    ok: bool
    eps0: float
    eps1: float
    contraction: float
    reason: str | None


def _existence(geo: Geometry, t: float, theta: float) -> _Existence:
    """(E) at ``t``: self-map and contraction of the ``eps0``-ball, and the a-priori radius
    ``eps1 = max_j M_j`` of the fixed point (refined by ``eps1 <- max_j M_j(t, eps1)``)."""
    R, dm = geo.R, geo.delta_min
    eps0 = math.sqrt(4 * R * R + theta * dm) - 2 * R  # 4 R eps0 + eps0^2 = theta Delta_min
    nan = math.nan
    if not eps0 > 0:
        return _Existence(False, eps0, nan, nan, "existence (E): the ball's radius underflows")
    if t * dm * (1 - theta) < 1.0:
        return _Existence(False, eps0, nan, nan, "existence (E): t (1 - theta) Delta_min < 1")
    if np.any(geo.n_lower(t, eps0) <= 0):
        return _Existence(False, eps0, nan, nan, "existence (E): N_j^- is not positive")
    m0 = float(geo.m_bound(t, eps0)[0].max())
    if m0 > eps0:
        return _Existence(False, eps0, nan, nan, "existence (E): no self-map of the ball")
    lip = float(geo.lipschitz(t, eps0).max())
    if not lip < 1.0:
        return _Existence(False, eps0, nan, nan, "existence (E): no contraction of the ball")
    eps1 = m0
    for _ in range(3):
        eps1 = min(eps1, float(geo.m_bound(t, eps1)[0].max()))
    return _Existence(True, eps0, eps1, lip, None)


@dataclass(frozen=True)
class _Check:
    ok: bool
    existence: _Existence
    certified: np.ndarray | None = None
    dominated_by: np.ndarray | None = None
    reason: str | None = None


def _check(geo: Geometry, t: float, theta: float, t_hi: float | None = None) -> _Check:
    """(E), (M) and (D) for every ``t'`` in ``[t, t_hi]`` (``t_hi=None``: ``[t, inf)``).

    Every error term is taken at the left end ``t`` (each is nonincreasing in t, Step 7);
    the drift function and the domination differences are bounded below on the interval
    by Abel's prefix sums (``t_hi=None``) or by the endpoint bound.
    """

    def low(rates: np.ndarray, coefs: np.ndarray) -> float:
        if t_hi is None:
            return _abel_min(rates, coefs, t)
        return _interval_low(rates, coefs, t, t_hi)

    ex = _existence(geo, t, theta)
    if not ex.ok:
        return _Check(False, ex, reason=ex.reason)
    k, eps1 = geo.k, ex.eps1
    h = geo.h(eps1)
    q = geo.q(t)
    mj, nl = geo.m_bound(t, eps1)
    nu = geo.n_upper(t, eps1)
    lip = float(geo.lipschitz(t, eps1).max())
    if not lip < 1:
        return _Check(False, ex, reason="existence (E): no contraction at the a-priori radius")
    omega = np.expm1(h * t) + q  # |beta_s - beta0_s| <= omega_s beta0_s
    finite = np.isfinite(geo.gaps)
    g0 = np.where(finite, geo.gaps, 0.0)
    nu_plus = np.exp(h * t) * np.where(finite, (g0 + h[:, None]) * np.exp(-t * g0), 0.0).sum(1)
    ue = np.empty(k)  # U_l^+ + E_l^+
    err_k = np.empty(k)
    err_e = np.empty(k)
    psi = np.full(k, -np.inf)
    lead_rate = np.empty(k)
    coef_store: list[np.ndarray | None] = [None] * k
    for j, P in enumerate(geo.pairs):
        om, hs = omega[P.idx], h[P.idx]
        dj, eps, dirs = _directions(P, t)
        if t_hi is not None:
            dirs = dirs + _directions(P, t_hi)[2][1:]
        lead_rate[j] = dj
        b0 = P.w * np.exp(-t * eps)  # beta0_s e^{t Delta_j}
        best: tuple[float, np.ndarray | None, np.ndarray | None] = (-np.inf, None, None)
        for e in dirs:  # Phi_j(t') >= Psi_j (Abel), for either direction
            p = P.vec @ e
            cs = dj * p - eps * P.norm
            value = low(eps, P.w * cs)
            if value > best[0]:
                best = (value, p, cs)
        big = (1 + om) * b0 * (P.rate + hs)
        outgoing = np.where(P.out, q[P.idx] * np.exp(hs * t) * (P.norm + mj[j]), 0.0)
        ej = (big * (mj[j] + outgoing)).sum()
        ej += ((1 + om) * b0 * np.where(P.out, 0.0, nu_plus[P.idx] * (P.norm + mj[j]))).sum()
        err_e[j] = ej
        ue[j] = math.exp(-t * dj) * ((big * P.norm).sum() + ej)
        if best[1] is not None and best[2] is not None:
            psi[j] = best[0]
            err_k[j] = (
                b0 * (dj * om * np.abs(best[1]) + om * eps * P.norm + (1 + om) * hs * P.norm)
            ).sum()
            coef_store[j] = P.w * best[2]
        else:
            err_k[j] = np.inf
    feedback = float((ue / nl).max()) / (1.0 - lip)  # max_l (U_l^+ + E_l^+)/N_l^- / (1-L)
    lj_scaled = np.array(
        [
            4 * t * (
                P.w * np.exp(-t * (P.rate - lead_rate[j]) + t * h[P.idx])
                * (P.norm + eps1) * (geo.rhobar[P.idx] + eps1)
            ).sum() / nl[j]
            for j, P in enumerate(geo.pairs)
        ]
    )  # fmt: skip
    err_fb = nl * lj_scaled * feedback  # e^{t Delta_j} F_j
    certified = psi - err_k - err_e - err_fb > 0  # (M): ||delta_j|| strictly increasing
    if not certified.any():
        return _Check(False, ex, reason="drift (M): no cluster is certified")
    dominated_by = np.full(k, -1)
    for l_ in range(k):
        if certified[l_]:
            continue
        Pl = geo.pairs[l_]
        for j in (int(i) for i in np.flatnonzero(certified)):
            if lead_rate[l_] < lead_rate[j]:
                continue
            Pj = geo.pairs[j]
            cj = coef_store[j]
            assert cj is not None
            factor = lead_rate[j] * nu[j] / nl[l_]
            # (D), first form: Phi_j - factor * sum_{S_l} w e^{t h} ||v|| e^{-t'(delta - D_j)}
            rates = np.concatenate([Pj.rate - lead_rate[j], Pl.rate - lead_rate[j]])
            coefs = np.concatenate([cj, -factor * Pl.w * np.exp(t * h[Pl.idx]) * Pl.norm])
            dom = low(rates, coefs) - err_k[j]
            if not dom > 0:
                # leading-group resultant form: e^{t' D_j} ||V_l|| <= ||a_l|| e^{-t'(D_l - D_j)}
                #   + sum_{eps_s > 0} w ||v|| e^{-t'(delta_s - D_j)} + sum omega w ||v|| e^{...}
                lead_l = Pl.rate == lead_rate[l_]
                a_l = float(safe_norm((Pl.w[lead_l, None] * Pl.vec[lead_l]).sum(axis=0)))
                rl = Pl.rate - lead_rate[j]
                r3 = np.concatenate([[lead_rate[l_] - lead_rate[j]], rl[~lead_l], rl])
                c3 = np.concatenate(
                    [[a_l], (Pl.w * Pl.norm)[~lead_l], omega[Pl.idx] * Pl.w * Pl.norm]
                )
                dom = (
                    low(np.concatenate([Pj.rate - lead_rate[j], r3]),
                        np.concatenate([cj, -factor * c3]))
                    - err_k[j]
                )  # fmt: skip
            if not dom > 0 and t_hi is not None:
                # resultant form on [t, t_hi]: ||V_l|| <= ||V0_l|| + sum omega beta0 ||v||
                el = Pl.rate - lead_rate[j]
                ea, eb = np.exp(-t * el), np.exp(-t_hi * el)
                resultant = float(safe_norm(((Pl.w * ea)[:, None] * Pl.vec).sum(axis=0)))
                up = (
                    resultant
                    + (Pl.w * Pl.norm * (ea - eb)).sum()
                    + (omega[Pl.idx] * Pl.w * ea * Pl.norm).sum()
                )
                dom = low(Pj.rate - lead_rate[j], cj) - err_k[j] - factor * up
            if dom > 0:
                dominated_by[l_] = j
                break
        if dominated_by[l_] < 0:
            return _Check(
                False, ex, certified, dominated_by,
                reason=f"domination (D): cluster {l_} is neither certified nor dominated",
            )  # fmt: skip
    return _Check(True, ex, certified, dominated_by)


def _smallest_feasible(
    feasible: Callable[[float], bool], t_lo: float, t_hi: float, iters: int = 60
) -> float:
    """Smallest feasible ``t`` in ``[t_lo, t_hi]`` (bisection in ``log t``; feasibility is
    monotone in t), ``inf`` if none."""
    if feasible(t_lo):
        return t_lo
    if not feasible(t_hi):
        return math.inf
    lo, hi = math.log(t_lo), math.log(t_hi)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if feasible(math.exp(mid)):
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


@dataclass(frozen=True)
class SoftmaxCertificate:
    """The outcome of :func:`softmax_certificate`.

    ``sigma0`` is ``nan`` when nothing can be certified (``reason`` says which condition
    fails at the smallest temperature tried).  ``rate_constant`` is ``A`` in
    ``d(sigma) <= A exp(-Delta_min/sigma)`` on ``(0, sigma0]``; ``certified[j]`` says
    whether cluster j's displacement is certified increasing by (M) at ``sigma0``,
    ``dominated_by[j]`` which certified cluster dominates it (``-1`` if certified).
    """

    sigma0: float
    sigma0_single: float
    theta: float
    n_pieces: int
    eps0: float
    eps1: float
    contraction: float
    rate_constant: float
    certified: tuple[bool, ...]
    dominated_by: tuple[int, ...]
    reason: str | None


def softmax_certificate(
    geo: Geometry,
    *,
    thetas: Sequence[float] = THETAS,
    ratio: float = RATIO,
    max_pieces: int = MAX_PIECES,
) -> SoftmaxCertificate:
    r"""σ₀ of Theorem M: the largest temperature at which (E), (M) and (D) are certified.

    First the smallest ``t0 <= T_MAX / Delta_min`` at which the conditions hold in the
    single-temperature form (valid on all of ``[t0, inf)``: the error terms are
    nonincreasing in t and Abel's bound is uniform), by bisection; then the piecewise
    extension by intervals ``[t/ratio, t]`` on which the same conditions hold with
    endpoint bounds.  Over ``thetas`` the largest ``sigma0 = 1/t0`` is kept.  ``geo`` must
    be a non-degenerate fixed point with ``k >= 2`` (:func:`fixed_point_defect`).
    """
    dm = geo.delta_min
    best_t = math.inf
    best: tuple[float, _Check, float, int] | None = None
    for theta in thetas:
        t_lo = 1.0 / ((1 - theta) * dm)

        def feasible(t: float, theta: float = theta) -> bool:
            return _check(geo, t, theta).ok

        t_single = _smallest_feasible(feasible, t_lo, T_MAX / dm)
        if not math.isfinite(t_single):
            continue
        t, pieces = t_single, 0
        while t / ratio >= t_lo and pieces < max_pieces:
            if not _check(geo, t / ratio, theta, t_hi=t).ok:
                break
            t /= ratio
            pieces += 1
        if t < best_t:
            det = _check(geo, t, theta, t_hi=t * ratio if pieces else None)
            best_t, best = t, (theta, det, t_single, pieces)
    if best is None:
        why = _check(geo, T_MAX / dm, thetas[-1]).reason or "infeasible"
        nan = math.nan
        return SoftmaxCertificate(nan, nan, thetas[-1], 0, nan, nan, nan, nan, (), (), why)
    theta, det, t_single, pieces = best
    t0 = best_t
    eps1 = det.existence.eps1
    h = geo.h(eps1)
    nl = geo.n_lower(t0, eps1)
    # A: d(sigma) <= A exp(-Delta_min/sigma) for sigma <= sigma0 (Step 1)
    a = max(
        float((P.w * np.exp(-t0 * (P.rate - dm) + t0 * h[P.idx]) * P.norm).sum() / nl[j])
        for j, P in enumerate(geo.pairs)
    )
    assert det.certified is not None and det.dominated_by is not None
    return SoftmaxCertificate(
        sigma0=1.0 / t0,
        sigma0_single=1.0 / t_single,
        theta=float(theta),
        n_pieces=pieces,
        eps0=det.existence.eps0,
        eps1=eps1,
        contraction=det.existence.contraction,
        rate_constant=a,
        certified=tuple(bool(b) for b in det.certified),
        dominated_by=tuple(int(i) for i in det.dominated_by),
        reason=None,
    )


def softmax_bound(geo: Geometry, sigma: float, theta: float) -> float:
    r"""Upper bound on the softmax branch's ``d(sigma) = max_j ||mu_j(sigma) - c_j||``.

    ``max_j M_j(1/sigma, eps1)`` with ``eps1`` the a-priori radius of (E) at σ:
    ``(1/N_j^-) sum_s w_s exp(-(delta_s - h_i(eps1))/sigma) ||v_s||``.  Valid wherever (E)
    holds (in particular on ``(0, sigma0]``); ``nan`` where it fails.
    """
    ex = _existence(geo, 1.0 / sigma, theta)
    if not ex.ok:
        return math.nan
    return float(geo.m_bound(1.0 / sigma, ex.eps1)[0].max())


# --------------------------------------------------------------------------------------
# entmax-1.5: Theorem E
# --------------------------------------------------------------------------------------


def _dphi(g: float) -> float:
    """``phi'(g)`` of the two-center runner-up weight ``phi(g) = ((sqrt(2-g^2) - g)/2)^2``."""
    g = min(max(g, 0.0), 1.0)
    s = math.sqrt(2 - g * g)
    return -((s - g) / 2) * (1 + g / s)


@dataclass(frozen=True)
class EntmaxOnset:
    r"""The entmax-1.5 branch just above ``Delta_min/2`` in closed form (Theorem E).

    The smallest margin is attained by the sample ``sample`` (index into the input's rows)
    of weight ``weight``, nearest center ``nearest`` (cell weight ``n_nearest``, distance
    ``rho_nearest``) and runner-up ``runner_up`` (``n_runner_up``, ``rho_runner_up``);
    ``delta0`` is its margin (``Delta_min``).  On ``(Delta_min/2, sigma_e]`` the runner-up
    weight ``p(sigma)`` of that row solves ``p = phi(Delta(p)/2 sigma)`` and the
    discrepancy is ``max(w p rho_m/(N_m + w p), w p rho_l/(N_l - w p))``.  When the
    smallest margin is not attained once, only ``d = 0`` below ``Delta_min/2`` is known:
    ``sigma_e = Delta_min/2`` and ``reason`` says so.
    """

    sigma_e: float
    delta0: float
    sample: int
    nearest: int
    runner_up: int
    weight: float
    n_nearest: float
    n_runner_up: float
    rho_nearest: float
    rho_runner_up: float
    reason: str | None

    @property
    def coefficient(self) -> float:
        """``C`` in ``d(sigma) = C u^2 (1 + O(u))``, ``u = 1 - Delta_min/(2 sigma)``."""
        if self.reason is not None:
            return math.nan
        w = self.weight
        return max(
            w * self.rho_runner_up / self.n_runner_up, w * self.rho_nearest / self.n_nearest
        )

    def _excess(self, p: float) -> float:
        """``Delta_min - Delta(p) >= 0``, the shrinking of the margin, without cancellation."""
        w, rl, rm = self.weight, self.rho_nearest, self.rho_runner_up
        a = w * p / (self.n_runner_up + w * p)  # 1 - N_m/(N_m + w p)
        b = w * p / (self.n_nearest - w * p)  # N_l/(N_l - w p) - 1
        return rm * rm * a * (2 - a) + rl * rl * b * (2 + b)

    def _phi_of(self, p: float, sigma: float) -> float:
        """``phi(Delta(p)/2 sigma)`` with ``1 - g = (2 sigma - Delta_min + excess)/2 sigma``."""
        omg = (2 * sigma - self.delta0 + self._excess(p)) / (2 * sigma)
        if omg <= 0:
            return 0.0
        g = 1.0 - omg
        if g <= 0:
            return math.nan
        return (omg * (1 + g) / (math.sqrt(2 - g * g) + g)) ** 2

    def p(self, sigma: float) -> float:
        """The runner-up weight on the branch: the smallest root of ``p = phi(Delta(p)/2σ)``,
        the limit of the increasing iteration from ``p = 0`` (``0`` at ``σ <= Δ_min/2``;
        ``nan`` if the iteration leaves the admissible range)."""
        if self.reason is not None or sigma <= self.delta0 / 2:
            return 0.0
        p = 0.0
        for _ in range(200_000):
            nxt = self._phi_of(p, sigma)
            if not nxt == nxt or self.weight * nxt >= self.n_nearest:
                return math.nan
            if nxt - p <= 1e-16 * nxt:
                return nxt
            p = nxt
        return math.nan

    def discrepancy_of_p(self, p: float) -> float:
        """``max(w p rho_m/(N_m + w p), w p rho_l/(N_l - w p))``, increasing in p."""
        w = self.weight
        return max(
            w * p * self.rho_runner_up / (self.n_runner_up + w * p),
            w * p * self.rho_nearest / (self.n_nearest - w * p),
        )

    def discrepancy(self, sigma: float) -> float:
        """``d(sigma)`` on the branch, exact on ``(0, sigma_e]`` (``0`` at ``σ <= Δ_min/2``)."""
        if sigma <= self.delta0 / 2:
            return 0.0
        return self.discrepancy_of_p(self.p(sigma))

    def gain_bound(self, p: float, sigma: float) -> float:
        """The loop gain bound ``|phi'(g)| sup_{[0,p]} |Delta'| / Delta_min`` of condition
        (ii) at ``(p, sigma)``, ``g = Delta(p)/2 sigma``."""
        w, rl, rm = self.weight, self.rho_nearest, self.rho_runner_up
        slope = 2 * w * rm * rm / self.n_runner_up
        slope += 2 * w * rl * rl * self.n_nearest**2 / (self.n_nearest - w * p) ** 3
        g = (self.delta0 - self._excess(p)) / (2 * sigma)
        return abs(_dphi(g)) * slope / self.delta0


def entmax_onset(geo: Geometry) -> EntmaxOnset:
    r"""Theorem E: ``sigma_e`` and the closed-form branch on ``(Delta_min/2, sigma_e]``.

    ``sigma_e`` is the largest σ (bisection; the conditions only get harder as σ grows)
    with, at ``p_e = p(sigma)`` and ``eps_e = d(sigma)``: (i) every other row stays one-hot
    (``Delta_i - h_i(eps_e) >= 2 sigma``) and the third gap of ``i*`` minus
    ``h_{i*}(eps_e)`` is ``>= 2 sigma``; (ii) the loop gain is below 1.
    """
    dm = geo.delta_min
    order = np.argsort(geo.margins, kind="stable")
    i0 = int(order[0])
    srt = np.sort(geo.gaps[i0])
    nearest, runner_up = int(geo.lab[i0]), int(np.argmin(geo.gaps[i0]))
    tied = (geo.n > 1 and geo.margins[order[1]] == dm) or (geo.k > 2 and srt[1] == srt[0])
    onset = EntmaxOnset(
        sigma_e=dm / 2,
        delta0=float(geo.gaps[i0, runner_up]),
        sample=int(geo.keep[i0]),
        nearest=nearest,
        runner_up=runner_up,
        weight=float(geo.w[i0]),
        n_nearest=float(geo.N[nearest]),
        n_runner_up=float(geo.N[runner_up]),
        rho_nearest=float(geo.rho[i0, nearest]),
        rho_runner_up=float(geo.rho[i0, runner_up]),
        reason=(
            "the smallest margin is not attained by a single sample and runner-up: "
            "only d = 0 at sigma <= Delta_min/2 is certified"
            if tied
            else None
        ),
    )
    if tied:
        return onset
    third = float(srt[1]) if geo.k > 2 else math.inf
    others = np.delete(np.arange(geo.n), i0)
    second = float(geo.margins[others].min()) if others.size else math.inf

    def ok(sigma: float) -> bool:
        p = onset.p(sigma)
        if not (math.isfinite(p) and 0 <= p < onset.n_nearest / onset.weight):
            return False
        h = geo.h(onset.discrepancy_of_p(p))
        if others.size and np.any(geo.margins[others] - h[others] < 2 * sigma):
            return False
        if third - h[i0] < 2 * sigma:
            return False
        if not onset.delta0 - onset._excess(p) > 0:
            return False
        return onset.gain_bound(p, sigma) < 1.0

    lo, hi = dm / 2, min(second, third) / 2
    if hi > lo:
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if ok(mid):
                lo = mid
            else:
                hi = mid
    return EntmaxOnset(
        sigma_e=lo,
        delta0=onset.delta0,
        sample=onset.sample,
        nearest=onset.nearest,
        runner_up=onset.runner_up,
        weight=onset.weight,
        n_nearest=onset.n_nearest,
        n_runner_up=onset.n_runner_up,
        rho_nearest=onset.rho_nearest,
        rho_runner_up=onset.rho_runner_up,
        reason=None,
    )
