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

from .._backend import Array
from .._validation import check_kind, check_sigma, check_x_centers_weights
from . import batched, seam

__all__ = ["center_gradient", "free_energy", "inertia", "soft_distortion"]


def inertia(
    X: Any,
    centers: Any,
    /,
    *,
    sample_weight: Any = None,
    working_memory: float | None = None,
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
    if batched.is_batched(X):  # (B, n, d): B problems at once
        return batched.inertia(X, centers, sample_weight, working_memory=working_memory)
    X, C, w, xp = check_x_centers_weights(X, centers, sample_weight)
    return seam.inertia(X, C, w, xp=xp, working_memory=working_memory)


def _stats(
    X: Any,
    centers: Any,
    sigma: Any,
    kind: Any,
    sample_weight: Any,
    working_memory: float | None,
) -> tuple[Array, seam.SoftStats]:
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    if batched.is_batched(X):  # (B, n, d): B problems at once
        return batched.soft_stats(
            X, centers, sample_weight, sigma=sigma, kind=kind, working_memory=working_memory
        )
    X, C, w, xp = check_x_centers_weights(X, centers, sample_weight)
    return C, seam.soft_stats(
        X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
    )


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
    _, st = _stats(X, centers, sigma, kind, sample_weight, working_memory)
    return st.soft_distortion


def free_energy(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
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
    _, st = _stats(X, centers, sigma, kind, sample_weight, working_memory)
    return st.free_energy


def center_gradient(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
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
    C, st = _stats(X, centers, sigma, kind, sample_weight, working_memory)
    if C.ndim == 3:
        return batched.center_gradient(C, st)
    return seam.center_gradient(C, st.mass, st.sums)


for _f in (soft_distortion, free_energy, center_gradient):
    _f.__doc__ = (_f.__doc__ or "").replace("    {params}\n", _PARAMS)
