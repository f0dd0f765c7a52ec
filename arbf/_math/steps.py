"""Center updates: the Lloyd step (and, from the RBF layer, soft and gradient steps).

Lloyd's update (hard responsibilities): ``mu_j <- sum_i w_i r_ij x_i / sum_i w_i r_ij``
with ``r_ij = 1[j = argmin_l D_il]``.  A center that receives no weight keeps its
position here (the K-Means driver relocates it, as scikit-learn does).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._backend import Array
from .._validation import check_x_centers_weights
from .distances import lloyd_sums

__all__ = ["lloyd_step", "lloyd_step_impl", "safe_divide_centers"]


def safe_divide_centers(sums: Array, weights: Array, fallback: Array, *, xp: ModuleType) -> Array:
    """``sums_j / weights_j`` where ``weights_j > 0``, else ``fallback_j`` (no NaN)."""
    pos = weights > 0
    denom = xp.where(pos, weights, xp.ones_like(weights))
    return xp.where(pos[:, None], sums / denom[:, None], fallback)


def lloyd_step_impl(
    X: Array,
    C: Array,
    sample_weight: Array | None,
    *,
    xp: ModuleType,
    working_memory: float | None = None,
) -> Array:
    """Pure-standard Lloyd step over chunks; no host sync."""
    _, sums, weights, _ = lloyd_sums(X, C, sample_weight, xp=xp, working_memory=working_memory)
    return safe_divide_centers(sums, weights, C, xp=xp)


def lloyd_step(
    X: Any,
    centers: Any,
    /,
    *,
    sample_weight: Any = None,
    working_memory: float | None = None,
) -> Array:
    r"""One Lloyd (K-Means) update of ``centers``.

    .. math::

        \mu_j \leftarrow \frac{\sum_i w_i\, r_{ij}\, x_i}{\sum_i w_i\, r_{ij}},
        \qquad r_{ij} = \mathbb 1\big[j = \operatorname{argmin}_l \lVert x_i-\mu_l\rVert^2\big]

    (ties to the lowest index).  It is the hard (σ → 0) limit of the soft Lloyd step and
    of the gradient step with ``lr="lloyd"`` (SPEC §1, Theorem 2).  A center whose cell
    holds no weight is returned unchanged.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    centers : array of shape (n_clusters, n_features)
    sample_weight : array of shape (n_samples,), optional
    working_memory : float, optional
        Memory budget in MiB for one chunk's temporaries.

    Returns
    -------
    new_centers : array of shape (n_clusters, n_features)

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [2.0], [10.0], [12.0]])
    >>> arbf.lloyd_step(X, xp.asarray([[1.0], [9.0]]))
    Array([[ 1.],
           [11.]], dtype=array_api_strict.float64)
    """
    X, C, w, xp = check_x_centers_weights(X, centers, sample_weight)
    return lloyd_step_impl(X, C, w, xp=xp, working_memory=working_memory)
