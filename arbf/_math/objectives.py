"""Objectives: the K-Means distortion J and (later) the smooth RBF objectives.

``J(mu) = sum_i w_i min_j ||x_i - mu_j||^2`` (SPEC §1), a weighted sum, not a mean.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._backend import Array
from .._chunking import Accumulator, chunk_rows, iter_chunks
from .._validation import check_x_centers_weights
from .distances import _itemsize, labelled_sq_distances, nearest, sq_norms

__all__ = ["inertia", "inertia_impl"]


def inertia_impl(
    X: Array,
    C: Array,
    sample_weight: Array | None,
    *,
    xp: ModuleType,
    working_memory: float | None = None,
) -> Array:
    """Pure-standard J over chunks (compensated sum); returns a 0-d array."""
    n, k = X.shape[0], C.shape[0]
    rows = chunk_rows(n, k, _itemsize(X), xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    acc = Accumulator(xp)
    for a, b in iter_chunks(n, rows):
        Xc = X[a:b, ...]
        dist = labelled_sq_distances(Xc, C, nearest(Xc, C, xp=xp, c_sq=c_sq), xp=xp)
        acc.add(xp.sum(dist if sample_weight is None else dist * sample_weight[a:b]))
    return acc.result()


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
    X, C, w, xp = check_x_centers_weights(X, centers, sample_weight)
    return inertia_impl(X, C, w, xp=xp, working_memory=working_memory)
