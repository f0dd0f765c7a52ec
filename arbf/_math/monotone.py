r"""The regime in which the centroid discrepancy is provably monotone in σ (Theorems M, E).

Along the branch :math:`\mu(\sigma)` of RBF fixed points that continues a non-degenerate
K-Means fixed point :math:`c^*`, the centroid discrepancy
:math:`d(\sigma) = \max_j \lVert \mu_j(\sigma) - c^*_j \rVert` is non-increasing as σ
falls below an explicit temperature: σ₀ for softmax (Theorem M), σ_e for entmax-1.5
(Theorem E).  Beyond it monotonicity is not a theorem (it fails on many data sets); see
the theory page, section *Monotone discrepancy near a K-Means fixed point*.  The
certificate is host mathematics in ``float64`` (:mod:`arbf._math.core.monotone`, through
the seam).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import to_host
from .._validation import check_kind, check_sigma, check_x_centers_weights
from . import seam
from .batched import check_batched_triple, is_batched

__all__ = ["MonotoneRegime", "monotone_regime"]

#: The centers must equal their cells' weighted means to ``_RESIDUAL_ULPS`` roundings of
#: the input's dtype, relative to ``max |x|``.
_RESIDUAL_ULPS = 1e3


@dataclass(frozen=True)
class MonotoneRegime:
    r"""The certified monotone regime of :func:`monotone_regime`.

    Attributes
    ----------
    kind : {"softmax", "entmax15"}
    sigma0 : float
        Softmax: σ₀ of Theorem M; entmax-1.5: σ_e of Theorem E.  On :math:`(0, \sigma_0]`
        the discrepancy of the branch is non-increasing as σ falls.  ``nan`` when nothing
        can be certified (then ``reason`` says why); ``inf`` with one center (``d ≡ 0``).
    exact_sigma : float
        :math:`\Delta_{\min}/2`: at or below it the entmax-1.5 branch *is* :math:`c^*`
        (``d = 0`` exactly, Theorem 4); softmax never reaches it exactly.
    delta_min : float
        The smallest margin :math:`\Delta_{\min} = \min_i (D_{i(2)} - D_{i(1)})` at
        :math:`c^*` over the samples of positive weight.
    rate_constant : float
        Softmax: ``A`` in :math:`d(\sigma) \le A\, e^{-\Delta_{\min}/\sigma}` on
        :math:`(0, \sigma_0]`; ``nan`` for entmax-1.5.
    onset_coefficient : float
        Entmax-1.5: ``C`` in :math:`d(\sigma) = C u^2 (1 + O(u))`,
        :math:`u = 1 - \Delta_{\min}/2\sigma`, just above :math:`\Delta_{\min}/2`; ``nan``
        for softmax or when the smallest margin is tied.
    reason : str or None
        ``None`` when the theorem's conditions were certified; else which one fails.
    theta : float
        The θ of the certificate (softmax; ``nan`` for entmax-1.5).
    centroid_residual : float
        :math:`\max_j \lVert c_j - \bar c_j \rVert`, the distance of the given centers to
        their cells' weighted means :math:`\bar c` (where the certificate is computed).
    """

    kind: str
    sigma0: float
    exact_sigma: float
    delta_min: float
    rate_constant: float
    onset_coefficient: float
    reason: str | None
    theta: float
    centroid_residual: float
    _geometry: Any = field(default=None, repr=False, compare=False)
    _onset: Any = field(default=None, repr=False, compare=False)

    def bound(self, sigma: Any) -> float:
        r"""The certified value of :math:`d(\sigma)` on the branch.

        Softmax: an upper bound, :math:`\max_j M_j(1/\sigma, \varepsilon_1) =
        \max_j \frac{1}{N_j^-}\sum_{s \in S_j} w_s e^{-(\delta_s - h_i(\varepsilon_1))/\sigma}
        \lVert v_s\rVert \le A\,e^{-\Delta_{\min}/\sigma}`, valid wherever the existence
        conditions (E) hold — in particular on :math:`(0, \sigma_0]` — and ``nan``
        elsewhere.  Entmax-1.5: the exact discrepancy on :math:`(0, \sigma_e]` (``0`` at
        :math:`\sigma \le \Delta_{\min}/2`, then the closed form of Theorem E), ``nan``
        above :math:`\sigma_e`.  With one center, ``0``.

        Parameters
        ----------
        sigma : float
            A temperature ``>= 0``.
        """
        s = check_sigma(sigma)
        if self._geometry is None:  # one center: d = 0 at every σ
            return 0.0
        if s == 0:
            return 0.0
        if self.kind == "softmax":
            return seam.monotone_softmax_bound(self._geometry, s, self.theta)
        if s <= self.exact_sigma:
            return 0.0
        if s > self.sigma0:
            return math.nan
        return float(self._onset.discrepancy(s))


def _cell_means(X: np.ndarray, labels: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Weighted cell means in float64 (empty cells: ``nan``)."""
    N = np.bincount(labels, weights=w, minlength=k)
    S = np.zeros((k, X.shape[1]))
    np.add.at(S, labels, w[:, None] * X)
    with np.errstate(invalid="ignore", divide="ignore"):
        return S / N[:, None]


def monotone_regime(
    X: Any, centers: Any, /, *, kind: str = "softmax", sample_weight: Any = None
) -> Any:
    r"""The temperature below which the centroid discrepancy is provably monotone.

    Let :math:`c^*` (``centers``) be a **non-degenerate K-Means fixed point** of
    :math:`(X, w)`: no empty cell, every sample of positive weight strictly closer to its
    own center (:math:`\Delta_{\min} > 0`), each center its cell's weighted mean.  Let
    :math:`\mu(\sigma)` be the branch of fixed points of the soft Lloyd map that continues
    :math:`c^*` as σ grows from 0, and
    :math:`d(\sigma) = \max_j \lVert\mu_j(\sigma) - c^*_j\rVert`.

    **Theorem M (softmax).** If the conditions (E) (self-map and contraction of a ball
    around :math:`c^*`), (M) (a drift function dominates every second-order term) and (D)
    (clusters not covered by (M) stay smaller than one that is) hold at
    :math:`\sigma_0` — finite closed-form sums over the samples — then for every
    :math:`\sigma \le \sigma_0` the branch exists, is the unique fixed point in that ball,
    is :math:`C^\infty`, obeys

    .. math::

        d(\sigma) \le \max_j M_j(1/\sigma, \varepsilon_1) \le A\, e^{-\Delta_{\min}/\sigma},

    and :math:`d` is strictly increasing in σ on :math:`(0, \sigma_0]`.  The conditions
    hold for all small σ when the smallest margin is attained by one sample.

    **Theorem E (entmax-1.5).** :math:`d(\sigma) = 0` exactly for
    :math:`\sigma \le \Delta_{\min}/2`; if the smallest margin is attained by a single
    sample :math:`i^*` (nearest center :math:`l`, runner-up :math:`m`), then on
    :math:`(\Delta_{\min}/2, \sigma_e]` the branch moves only :math:`c_l, c_m`,
    :math:`d(\sigma) = \max\big(\tfrac{wp\rho_m}{N_m + wp}, \tfrac{wp\rho_l}{N_l - wp}\big)`
    with :math:`p` the smallest root of :math:`p = \varphi(\Delta(p)/2\sigma)`,
    :math:`\varphi(g) = \big((\sqrt{2-g^2} - g)/2\big)^2`, and
    :math:`d = C u^2(1 + O(u))`, :math:`u = 1 - \Delta_{\min}/2\sigma`: :math:`d` is
    nondecreasing on :math:`(0, \sigma_e]`.

    σ₀ is the largest temperature at which the certificate holds (bisection, then an
    extension by intervals of ratio 1.02); it is a sufficient condition, typically a few
    times below where monotonicity is observed to end.  The certificate is computed on
    the host in ``float64`` at the cells' exact weighted means.

    Parameters
    ----------
    X : array of shape (n_samples, n_features) or (B, n_samples, n_features)
        Any Array API namespace (copied to the host).  With a leading batch axis, one
        certificate per problem (each a host computation in float64, so a loop over the
        ``B`` problems on the host).
    centers : array of shape (n_clusters, n_features) or (B, n_clusters, n_features)
        The K-Means fixed point :math:`c^*` (e.g. :func:`arbf.kmeans` with ``tol=0``).
    kind : {"softmax", "entmax15"}
    sample_weight : array of shape (n_samples,) or (B, n_samples), optional
        Samples of weight 0 do not enter the soft Lloyd map and are ignored.

    Returns
    -------
    MonotoneRegime, or a tuple of B of them for batched input
        ``sigma0``, ``exact_sigma`` (:math:`\Delta_{\min}/2`), ``delta_min``, the
        constants, ``reason`` and :meth:`MonotoneRegime.bound`.

    Raises
    ------
    ValueError
        If ``centers`` is not a non-degenerate K-Means fixed point of ``(X,
        sample_weight)`` (an empty cell, a sample equidistant from two centers, or a
        center farther than rounding from its cell's weighted mean); the message names
        the condition.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [13.0]])
    >>> c = xp.asarray([[1.0], [11.5]])
    >>> soft = arbf.monotone_regime(X, c)
    >>> soft.delta_min, soft.exact_sigma, soft.reason
    (78.75, 39.375, None)
    >>> round(soft.sigma0, 2), round(soft.bound(soft.sigma0), 3)  # d(σ₀) <= 0.124
    (20.47, 0.124)
    >>> ent = arbf.monotone_regime(X, c, kind="entmax15")
    >>> round(ent.sigma0, 2), ent.bound(39.0), round(ent.bound(40.0), 6)
    (44.24, 0.0, 0.000737)
    """
    if is_batched(X):
        Xb, Cb, wb, _ = check_batched_triple(X, centers, sample_weight)
        kind = check_kind(kind, ("softmax", "entmax15"))
        return tuple(
            monotone_regime(
                Xb[b, ...], Cb[b, ...], kind=kind, sample_weight=None if wb is None else wb[b, ...]
            )
            for b in range(Xb.shape[0])
        )
    Xa, Ca, wa, _ = check_x_centers_weights(X, centers, sample_weight, centers_name="centers")
    kind = check_kind(kind, ("softmax", "entmax15"))
    eps = float(np.finfo(to_host(Xa[:1, :1]).dtype).eps)
    Xh = np.asarray(to_host(Xa), dtype=np.float64)
    Ch = np.asarray(to_host(Ca), dtype=np.float64)
    n, k = Xh.shape[0], Ch.shape[0]
    wh = np.ones(n) if wa is None else np.asarray(to_host(wa), dtype=np.float64)

    def fail(why: str) -> ValueError:
        return ValueError(
            f"centers are not a non-degenerate K-Means fixed point of (X, sample_weight): "
            f"{why}; run arbf.kmeans(X, k, init=centers, tol=0) to reach one"
        )

    geo = seam.MonotoneGeometry(Xh, Ch, wh)
    why = seam.monotone_fixed_point_defect(geo)
    if why is not None:
        raise fail(why)
    means = _cell_means(geo.X, geo.lab, geo.w, k)
    residual = float(seam.monotone_safe_norm(Ch - means, axis=1).max())
    scale = float(np.abs(geo.X).max())
    if residual > _RESIDUAL_ULPS * eps * max(scale, np.finfo(np.float64).tiny):
        j = int(np.argmax(seam.monotone_safe_norm(Ch - means, axis=1)))
        raise fail(
            f"center {j} is {residual:.3g} away from its cell's weighted mean "
            f"(rounding allows {_RESIDUAL_ULPS * eps * scale:.3g})"
        )
    nan = math.nan
    if k == 1:
        return MonotoneRegime(kind, math.inf, math.inf, math.inf, 0.0, nan, None, nan, residual)
    exact = seam.MonotoneGeometry(Xh, means, wh)
    if not np.array_equal(exact.lab, geo.lab) or not exact.delta_min > 0:
        raise fail("its cells' weighted means have another partition")
    dm = exact.delta_min
    if kind == "softmax":
        cert = seam.monotone_softmax_certificate(exact)
        return MonotoneRegime(
            kind, cert.sigma0, dm / 2, dm, cert.rate_constant, nan, cert.reason, cert.theta,
            residual, _geometry=exact,
        )  # fmt: skip
    onset = seam.monotone_entmax_onset(exact)
    return MonotoneRegime(
        kind, onset.sigma_e, dm / 2, dm, nan, onset.coefficient, onset.reason, nan, residual,
        _geometry=exact, _onset=onset,
    )  # fmt: skip
