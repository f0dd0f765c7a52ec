r"""The objectives, public: J, L_σ and F_σ, and the analytic gradient of F_σ (SPEC §1).

With :math:`D_{ij} = \lVert x_i - \mu_j\rVert^2`, responsibilities :math:`r_{ij}`
(:func:`arbf.responsibilities`) and weights :math:`w_i`:

- :math:`J = \sum_i w_i \min_j D_{ij}` (K-Means distortion),
- :math:`L_\sigma = \sum_i w_i \sum_j r_{ij} D_{ij}` (smooth distortion),
- :math:`F_\sigma = \sum_i w_i \big(\sum_j r_{ij} D_{ij} - \sigma H(r_i)\big)` (free energy:
  Shannon entropy for softmax, where it equals
  :math:`-\sigma \sum_i w_i \log \sum_j e^{-D_{ij}/\sigma}`; Tsallis-1.5 entropy
  :math:`H(p) = \tfrac43 \sum_j (p_j - p_j^{3/2})` for entmax-1.5; :math:`F = J` when hard).

Everything is computed relative to the nearest center: with the exact nearest distance
:math:`d_i` and the gaps :math:`G_{ij} = D_{ij} - \min_l D_{il} \ge 0`,
:math:`L_i = d_i + \sum_j r_{ij} G_{ij}` and, for softmax,
:math:`F_i = d_i - \sigma \log \sum_j e^{-G_{ij}/\sigma}`.  So :math:`L \ge J \ge F` hold
term by term in floating point, and nothing over- or underflows for any σ > 0.  The pass
is :func:`arbf._math.core.soft.soft_stats` (or its compiled twin, chosen by
:mod:`arbf._math.seam`); these functions validate and call the seam.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import (
    Array,
    device_of,
    from_host,
    is_traced,
    materialize,
    quiet_overflow,
    to_host,
)
from .._scaling import (
    check_finite_result,
    check_representable,
    rescale,
    scale_for,
    sigma_in,
    unscale,
)
from .._validation import check_kind, check_sigma, check_x_centers_weights
from . import batched, seam
from .metric import check_metric, prepare

__all__ = ["center_gradient", "free_energy", "inertia", "soft_distortion"]


def inertia(
    X: Any,
    centers: Any,
    /,
    *,
    sample_weight: Any = None,
    working_memory: float | None = None,
    metric: str = "sqeuclidean",
) -> Array:
    r"""K-Means distortion (inertia) of ``centers`` on ``X``.

    .. math::

        J(\mu) = \sum_{i=1}^n w_i \min_{j} \lVert x_i - \mu_j \rVert^2

    The nearest center is found with the expansion
    :math:`\lVert x\rVert^2 - 2x\cdot\mu + \lVert\mu\rVert^2`; the distance to it is then
    computed directly (no cancellation), and chunk totals are summed with compensation.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Data, in any Array API namespace.  Integer input is promoted to the default float.
        Or ``(B, n_samples, n_features)``: B independent problems at once (centers
        ``(B, n_clusters, n_features)``, weights ``(B, n_samples)`` or ``(n_samples,)``;
        objectives come back as ``(B,)``); not for Dask.
    centers : array of shape (n_clusters, n_features)
        Centers, same namespace and device as ``X``.
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights :math:`w_i` (default 1).
    working_memory : float, optional
        Memory budget in MiB for the temporaries of one chunk.
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": :math:`J = \sum_i w_i \min_j (1 - \cos(x_i, \mu_j))`, half the
        squared Euclidean distortion of the normalised rows and centers (rows of norm 0
        raise ``ValueError``).

    Returns
    -------
    J : 0-d array
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    >>> C = xp.asarray([[0.5, 0.0], [10.0, 0.0]])
    >>> float(arbf.inertia(X, C))
    0.5
    """
    metric = check_metric(metric)
    if batched.is_batched(X):  # (B, n, d): B problems at once
        return batched.inertia(
            X, centers, sample_weight, working_memory=working_memory, metric=metric
        )
    X, C, w, xp, s, _, half = _rescaled(X, centers, sample_weight, metric)
    J = seam.inertia(X, C, w, xp=xp, working_memory=working_memory)
    J = _in_units(J, s, xp=xp, what="the inertia")
    return J * half if half != 1.0 else J


def _rescaled(
    X: Any, centers: Any, sample_weight: Any, metric: str, sigma: float = 0.0
) -> tuple[Array, Array, Array | None, Any, float, float, float]:
    """Validated ``(X / s, C / s, w, xp, s, sigma, half)``: for the cosine metric the rows
    on the sphere, σ doubled and ``half = 0.5`` (the factor from the Euclidean objectives
    of the unit rows to the cosine ones, :func:`arbf._math.metric.prepare`), else
    ``half = 1``; ``s`` the power of two of the extent of the data and centers
    (:func:`arbf._scaling.scale_for`; 1 for ordinary data and unit rows)."""
    X, C, w, xp = check_x_centers_weights(X, centers, sample_weight)
    X, C, sigma, half = prepare(X, C, metric, xp=xp, sigma=sigma)
    s = scale_for(seam.extent(X, C, xp=xp), X.dtype, xp=xp)
    return rescale(X, s), rescale(C, s), w, xp, s, sigma, half


def _in_units(value: Array, s: float, *, xp: Any, what: str) -> Array:
    """A 0-d squared-distance quantity measured on data divided by ``s``, times ``s**2``
    in the data's dtype; a :class:`ValueError` when that is beyond the dtype's range
    (checked on the host, except for traced arrays)."""
    with quiet_overflow(xp):
        out = unscale(unscale(value, s), s)
    if is_traced(out):
        return out
    (out,) = materialize(out, xp=xp)
    check_representable(float(to_host(value)) * s * s, out.dtype, xp=xp, what=what)
    return out


def _stats(
    X: Any,
    centers: Any,
    sigma: Any,
    kind: Any,
    sample_weight: Any,
    working_memory: float | None,
    metric: Any,
) -> tuple[Array, seam.SoftStats, Any, float, float, float, float]:
    """``(C / s, statistics, xp, s, σ' / s², σ', half)`` of the rescaled data at the
    rescaled σ: σ' is σ, doubled for the cosine metric (whose rows and centers are put on
    the sphere first), and ``half`` the factor from the Euclidean objectives to the
    metric's (:func:`_rescaled`)."""
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    X, C, w, xp, s, sigma, half = _rescaled(X, centers, sample_weight, check_metric(metric), sigma)
    sp = sigma_in(sigma, s)
    st = seam.soft_stats(X, C, w, sigma=sp, kind=kind, xp=xp, working_memory=working_memory)
    return C, st, xp, s, sp, sigma, half


def _batched_stats(
    X: Any,
    centers: Any,
    sigma: Any,
    kind: Any,
    sample_weight: Any,
    working_memory: float | None,
    metric: Any,
) -> tuple[Array, seam.SoftStats, float]:
    """``(C, statistics, half)`` of ``B`` problems at once (``X`` of shape ``(B, n, d)``;
    :mod:`arbf._math.batched`); the objectives of the statistics times ``half`` are the
    metric's (``0.5`` for "cosine", whose rows and centers are put on the sphere and σ
    doubled first)."""
    return batched.soft_stats(
        X, centers, sample_weight, sigma=check_sigma(sigma), kind=check_kind(kind),
        working_memory=working_memory, metric=check_metric(metric),
    )  # fmt: skip


def _free_energy(
    st: seam.SoftStats, kind: str, sigma: float, s: float, sp: float, xp: Any
) -> Array:
    r""":math:`F_\sigma = s^2 (B - \sigma' T)` in the data's dtype, from the statistics of
    data divided by ``s`` at :math:`\sigma' = \sigma/s^2` (``sp``).  Checked on the host
    against the float64 value :math:`s^2 B - \sigma T`: beyond the dtype's range a
    :class:`ValueError`; representable but overflowing the rescaled units (a σ huge
    against tiny data) the float64 value is returned (not differentiable then)."""
    kind = "hard" if sigma == 0 else kind
    base, T = seam.free_energy_base(st, kind), st.entropy
    hi = float(xp.finfo(base.dtype).max)
    F = None
    if sp <= hi:
        with quiet_overflow(xp):
            F = unscale(unscale(base - sp * T, s), s)
    if is_traced(base):
        if F is None:
            raise ValueError(
                f"sigma={sigma:g} is beyond the range of the data's dtype: with traced data "
                "(under jit) the free energy cannot be computed; pass float64 data"
            )
        return F
    b, t = (float(v) for v in to_host(xp.stack([base, T])))
    value = seam.free_energy_at(b, t, sigma=sigma, scale=s)
    check_representable(value, base.dtype, xp=xp, what=f"the free energy at sigma={sigma:g}")
    if F is not None:
        (F,) = materialize(F, xp=xp)
        if bool(np.isfinite(to_host(F))):
            return F
    return from_host(np.asarray(value), xp=xp, device=device_of(base), dtype=base.dtype)


_PARAMS = """
    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Data, any Array API namespace.
        Or ``(B, n_samples, n_features)``: B independent problems at once (centers
        ``(B, n_clusters, n_features)``, weights ``(B, n_samples)`` or ``(n_samples,)``;
        objectives come back as ``(B,)``); not for Dask.
    centers : array of shape (n_clusters, n_features)
        Centers, same namespace and device as ``X``.
    sigma : float
        Temperature ``>= 0``; σ divides the squared distance (a Gaussian of width
        :math:`s` is :math:`\\sigma = 2s^2`); ``0`` means hard responsibilities.
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights :math:`w_i` (default 1); the objectives are weighted sums,
        not means.
    working_memory : float, optional
        Memory budget in MiB for the temporaries of one chunk of rows.
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": rows of ``X`` and ``centers`` normalised (a row of norm 0 raises
        ``ValueError``) and :math:`D_{ij}` replaced by the cosine distance
        :math:`1 - \\cos(x_i, \\mu_j) = \\tfrac12\\lVert\\hat x_i - \\hat\\mu_j\\rVert^2`
        everywhere (logits :math:`(\\cos - 1)/\\sigma`: a von Mises-Fisher mixture of
        concentration :math:`1/\\sigma`); the bounds above hold as written.
"""


def soft_distortion(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
    metric: str = "sqeuclidean",
) -> Array:
    r"""Smooth weighted distortion :math:`L_\sigma(\mu) = \sum_i w_i \sum_j r_{ij} D_{ij}`.

    :math:`r_{ij}` are the responsibilities (:func:`arbf.responsibilities`).  At fixed
    μ, :math:`L_\sigma` is nondecreasing in σ and tends to the inertia J as σ → 0:
    softmax :math:`0 \le L_\sigma - J \le (k-1)\sigma\sum_i w_i/e`, entmax-1.5
    :math:`0 \le L_\sigma - J \le 2\sigma\sum_i w_i`.
    {params}
    Returns
    -------
    L : 0-d array
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> round(float(arbf.soft_distortion(X, C, sigma=1.0)), 6)
    2.074628
    >>> float(arbf.soft_distortion(X, C, sigma=1.0, kind="entmax15"))  # rows one-hot or tied
    2.0
    """
    if batched.is_batched(X):  # (B, n, d): B problems at once
        _, stb, hb = _batched_stats(X, centers, sigma, kind, sample_weight, working_memory, metric)
        return stb.soft_distortion * hb if hb != 1.0 else stb.soft_distortion
    _, st, xp, s, _, _, half = _stats(
        X, centers, sigma, kind, sample_weight, working_memory, metric
    )
    L = _in_units(st.soft_distortion, s, xp=xp, what="the soft distortion")
    return L * half if half != 1.0 else L


def free_energy(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
    metric: str = "sqeuclidean",
) -> Array:
    r"""Free energy :math:`F_\sigma = \sum_i w_i (\sum_j r_{ij} D_{ij} - \sigma H(r_i))`.

    For softmax (Shannon entropy) this is the soft-min
    :math:`F_\sigma = -\sigma \sum_i w_i \log \sum_j e^{-D_{ij}/\sigma}`, computed stably
    as :math:`\min_j D_{ij} - \sigma \log \sum_j e^{-(D_{ij} - \min_l D_{il})/\sigma}`;
    for entmax-1.5 :math:`H(p) = \tfrac43 \sum_j (p_j - p_j^{3/2})` (Tsallis), whose
    minimiser over the simplex is exactly :math:`r_i = \operatorname{entmax}_{1.5}
    (-D_i/\sigma)`; hard (σ = 0): :math:`F = J`.  Its gradient is
    :func:`center_gradient`, :math:`\nabla_{\mu_j} F_\sigma = 2\sum_i w_i r_{ij}
    (\mu_j - x_i)` (Lemma 1).  Bounds: softmax :math:`0 \le J - F_\sigma \le
    \sigma\log k\sum_i w_i`, entmax-1.5 :math:`0 \le J - F_\sigma \le
    \tfrac43(1 - 1/\sqrt k)\sigma\sum_i w_i`; :math:`F_\sigma` is nonincreasing in σ.

    Pure array operations: differentiable with respect to ``X`` and ``centers`` under
    torch autograd and ``jax.grad``.
    {params}
    Returns
    -------
    F : 0-d array
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> round(float(arbf.free_energy(X, C, sigma=1.0)), 6)  # -Σ log Σ exp(-D)
    1.288367
    >>> round(float(arbf.free_energy(X, C, sigma=1.0, kind="entmax15")), 6)
    1.609476
    """
    if batched.is_batched(X):  # (B, n, d): B problems at once
        _, stb, hb = _batched_stats(X, centers, sigma, kind, sample_weight, working_memory, metric)
        return stb.free_energy * hb if hb != 1.0 else stb.free_energy
    kind = check_kind(kind)
    _, st, xp, s, sp, sig, half = _stats(
        X, centers, sigma, kind, sample_weight, working_memory, metric
    )
    F = _free_energy(st, kind, sig, s, sp, xp)
    return F * half if half != 1.0 else F


def center_gradient(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
    metric: str = "sqeuclidean",
) -> Array:
    r"""Analytic gradient of the free energy, :math:`\nabla_{\mu_j} F_\sigma`.

    .. math::

        \nabla_{\mu_j} F_\sigma = 2 \sum_i w_i r_{ij} (\mu_j - x_i)
        = 2\,(N_j \mu_j - \textstyle\sum_i w_i r_{ij} x_i),
        \qquad N_j = \sum_i w_i r_{ij},

    the same form for softmax and entmax-1.5 (Lemma 1: the responsibilities minimise
    :math:`F` over the simplex, so their own variation does not contribute).  It vanishes
    at the soft centroid :math:`m_j = \sum_i w_i r_{ij} x_i / N_j`.  With σ = 0 it is the
    gradient of the inertia J inside each Voronoi cell.

    With ``metric="cosine"`` it is taken at the normalised centers :math:`\hat\mu_j` with
    :math:`D^{\cos}_{ij}` extended off the sphere as
    :math:`\tfrac12\lVert\hat x_i - \mu_j\rVert^2`:
    :math:`\nabla_{\mu_j} F^{\cos}_\sigma = \sum_i w_i r_{ij}(\hat\mu_j - \hat x_i)`
    (half the Euclidean form); its component tangent to the sphere is the Riemannian
    gradient, zero exactly when :math:`\hat\mu_j` is the normalised soft centroid.
    {params}
    Returns
    -------
    grad : array of shape (n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> arbf.center_gradient(X, C, sigma=0.0)
    Array([[-2.],
           [-2.]], dtype=array_api_strict.float64)
    """
    if batched.is_batched(X):  # (B, n, d): B problems at once
        Cb, stb, hb = _batched_stats(
            X, centers, sigma, kind, sample_weight, working_memory, metric
        )
        return batched.center_gradient(Cb, stb, hb)
    C, st, xp, s, _, _, half = _stats(
        X, centers, sigma, kind, sample_weight, working_memory, metric
    )
    with quiet_overflow(xp):
        grad = unscale(seam.center_gradient(C, st.mass, st.sums), s)
    grad = check_finite_result(grad, xp=xp, what="the gradient")
    return grad * half if half != 1.0 else grad


for _f in (soft_distortion, free_energy, center_gradient):
    _f.__doc__ = (_f.__doc__ or "").replace("    {params}\n", _PARAMS)
