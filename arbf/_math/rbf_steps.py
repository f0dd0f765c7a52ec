r"""Soft Lloyd and gradient steps of the RBF relaxation (SPEC §1, Lemma 1, Theorem 2).

The soft Lloyd (fixed-point) step moves each center to its soft centroid
:math:`m_j = \sum_i w_i r_{ij} x_i / N_j`, :math:`N_j = \sum_i w_i r_{ij}`.  The gradient
step on the free energy is :math:`\mu_j - \eta_j \nabla_{\mu_j} F_\sigma` with
:math:`\nabla_{\mu_j} F_\sigma = 2 (N_j \mu_j - \sum_i w_i r_{ij} x_i)`; the per-center
step :math:`\eta_j = 1/(2N_j)` (``lr="lloyd"``) lands exactly on :math:`m_j` (Theorem 2),
and with hard responsibilities (σ = 0) that is Lloyd's update.
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any

from .._backend import Array
from .._validation import check_kind, check_sigma, check_x_centers_weights
from .rbf_objectives import center_gradient_impl, soft_stats_impl
from .steps import safe_divide_centers

__all__ = ["gradient_step", "gradient_step_impl", "soft_lloyd_step", "soft_lloyd_step_impl"]


def soft_lloyd_step_impl(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    xp: ModuleType,
    working_memory: float | None = None,
) -> Array:
    """Soft centroids ``sums_j / N_j`` (a center with ``N_j = 0`` stays); no host sync."""
    st = soft_stats_impl(X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory)
    return safe_divide_centers(st.sums, st.mass, C, xp=xp)


def gradient_step_impl(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    lr: float | str,
    xp: ModuleType,
    working_memory: float | None = None,
) -> Array:
    """One gradient step on :math:`F_\\sigma`; no host sync.

    ``lr="lloyd"``: :math:`\\eta_j = 1/(2N_j)`, for which
    :math:`\\mu_j - \\eta_j \\cdot 2(N_j\\mu_j - s_j) = s_j / N_j` is evaluated in that
    simplified form, so it equals the soft Lloyd step exactly (a center with
    :math:`N_j = 0` has zero gradient and stays).  A float ``lr``:
    :math:`\\mu - \\mathrm{lr}\\,\\nabla F_\\sigma`.
    """
    if isinstance(lr, str):
        return soft_lloyd_step_impl(
            X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
        )
    st = soft_stats_impl(X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory)
    return C - lr * center_gradient_impl(C, st)


def _check_lr(lr: Any) -> float | str:
    if isinstance(lr, str):
        if lr != "lloyd":
            raise ValueError(f'lr must be "lloyd" or a positive float, got {lr!r}')
        return lr
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f'lr must be "lloyd" or a positive float, got {lr!r}')
    lr = float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr}")
    return lr


def soft_lloyd_step(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
) -> Array:
    r"""One soft Lloyd (fixed-point) update: each center moves to its soft centroid.

    .. math::

        \mu_j \leftarrow m_j = \frac{\sum_i w_i r_{ij} x_i}{N_j}, \qquad
        N_j = \sum_i w_i r_{ij},

    with :math:`r_{ij}` the responsibilities at temperature σ (σ divides the squared
    distance; a Gaussian of width :math:`s` is :math:`\sigma = 2s^2`).  :math:`m_j` is
    the zero of :math:`\nabla_{\mu_j} F_\sigma` with the responsibilities held fixed
    (Lemma 1).  σ = 0 (or ``kind="hard"``) is exactly :func:`arbf.lloyd_step`.  A center
    with :math:`N_j = 0` keeps its position.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Data, any Array API namespace.
    centers : array of shape (n_clusters, n_features)
        Centers, same namespace and device as ``X``.
    sigma : float
        Temperature ``>= 0``.
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights :math:`w_i` (default 1).
    working_memory : float, optional
        Memory budget in MiB for the temporaries of one chunk of rows.

    Returns
    -------
    new_centers : array of shape (n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> arbf.soft_lloyd_step(X, C, sigma=1.0, kind="entmax15")  # the middle point is split
    Array([[0.33333333],
           [2.33333333]], dtype=array_api_strict.float64)
    """
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    X, C, w, xp = check_x_centers_weights(X, centers, sample_weight)
    return soft_lloyd_step_impl(
        X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
    )


def gradient_step(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    lr: Any = "lloyd",
    sample_weight: Any = None,
    working_memory: float | None = None,
) -> Array:
    r"""One gradient step on the free energy :math:`F_\sigma`.

    .. math::

        \mu_j \leftarrow \mu_j - \eta_j \nabla_{\mu_j} F_\sigma, \qquad
        \nabla_{\mu_j} F_\sigma = 2 \sum_i w_i r_{ij} (\mu_j - x_i).

    ``lr="lloyd"`` takes the per-center step :math:`\eta_j = 1/(2N_j)`,
    :math:`N_j = \sum_i w_i r_{ij}`, which lands exactly on the soft centroid (Theorem 2:
    the gradient step *is* the soft Lloyd step, and at σ = 0 Lloyd's step); a float
    ``lr`` is a fixed step :math:`\eta_j = \mathrm{lr}`.  σ divides the squared distance
    (a Gaussian of width :math:`s` is :math:`\sigma = 2s^2`).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Data, any Array API namespace.
    centers : array of shape (n_clusters, n_features)
        Centers, same namespace and device as ``X``.
    sigma : float
        Temperature ``>= 0``.
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    lr : "lloyd" or float, default "lloyd"
        The step size.
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights :math:`w_i` (default 1).
    working_memory : float, optional
        Memory budget in MiB for the temporaries of one chunk of rows.

    Returns
    -------
    new_centers : array of shape (n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> arbf.gradient_step(X, C, sigma=0.0)  # Lloyd's step
    Array([[0.5],
           [3. ]], dtype=array_api_strict.float64)
    >>> arbf.gradient_step(X, C, sigma=0.0, lr=0.25)
    Array([[0.5],
           [2.5]], dtype=array_api_strict.float64)
    """
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    lr = _check_lr(lr)
    X, C, w, xp = check_x_centers_weights(X, centers, sample_weight)
    return gradient_step_impl(
        X, C, w, sigma=sigma, kind=kind, lr=lr, xp=xp, working_memory=working_memory
    )
