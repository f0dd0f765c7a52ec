r"""Optimal one-to-one matching of centers and the centroid discrepancy (SPEC §1).

The centroid discrepancy compares centers :math:`\mu` (e.g. of the RBF network at some
σ) with a reference :math:`c^*` (the K-Means fixed point from the same initialisation):
:math:`d_j = \lVert \mu_j - c^*_{\pi(j)} \rVert` with :math:`\pi` the one-to-one matching
that minimises :math:`\sum_j \lVert \mu_j - c^*_{\pi(j)} \rVert^2` (the linear assignment
problem, solved on the host by the Hungarian method with potentials, :math:`O(k^3)`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import Array, array_namespace, check_same_device, device_of, from_host, to_host
from .._validation import check_data
from .distances import sq_distances, sq_norms

__all__ = ["centroid_discrepancy", "linear_assignment"]


def linear_assignment(cost: Any, /) -> tuple[np.ndarray, np.ndarray]:
    r"""Solve the linear assignment problem (minimum-cost one-to-one matching).

    For an ``n x m`` cost matrix, find rows ``r`` and columns ``c`` (``min(n, m)`` pairs,
    each row and column used at most once) minimising :math:`\sum_t \mathrm{cost}[r_t,
    c_t]`.  Same convention as :func:`scipy.optimize.linear_sum_assignment`: ``rows`` is
    sorted increasingly.  Hungarian method with row/column potentials (the
    shortest-augmenting-path form of Jonker & Volgenant), :math:`O(n^2 m)`; runs on the
    host in NumPy.

    Parameters
    ----------
    cost : array_like of shape (n, m)
        Finite real costs (a host array; device arrays are copied to the host).

    Returns
    -------
    rows, cols : ndarray of int
        The optimal pairs ``(rows[t], cols[t])``.

    Examples
    --------
    >>> import numpy as np
    >>> from arbf._math.matching import linear_assignment
    >>> rows, cols = linear_assignment(np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0],
    ...                                          [3.0, 2.0, 2.0]]))
    >>> rows.tolist(), cols.tolist()
    ([0, 1, 2], [1, 0, 2])
    """
    C = np.array(to_host(cost), dtype=np.float64)
    if C.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {C.shape}")
    if not np.all(np.isfinite(C)):
        raise ValueError("cost contains NaN or infinity")
    transposed = C.shape[0] > C.shape[1]
    if transposed:
        C = C.T
    n, m = C.shape
    if n == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty.copy()
    # potentials u (rows), v (columns); p[j] = row (1-based) matched to column j, 0 = none;
    # column 0 is a virtual start column.
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.intp)
    way = np.zeros(m + 1, dtype=np.intp)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = C[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            masked = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(masked)) + 1
            delta = masked[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    cols = np.nonzero(p[1:])[0]
    rows = p[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows, kind="stable")
    return rows[order].astype(np.intp), cols[order].astype(np.intp)


def centroid_discrepancy(centers: Any, reference: Any, /) -> Array:
    r"""Per-center distance to the optimally matched reference center.

    .. math::

        d_j = \lVert \mu_j - c^*_{\pi(j)} \rVert, \qquad
        \pi = \operatorname*{argmin}_{\pi \text{ one-to-one}}
        \sum_j \lVert \mu_j - c^*_{\pi(j)} \rVert^2,

    the matching solved exactly (Hungarian method, :func:`linear_assignment`) on the
    :math:`k \times k` squared-distance matrix.  Used to measure how far the RBF centers
    at temperature σ are from the K-Means fixed point :math:`c^*` (report ``max`` and
    ``mean`` over j).  The matching is a host computation (one sync); the distances are
    then computed directly (no cancellation) in the input's namespace.

    Parameters
    ----------
    centers : array of shape (k, n_features)
        The centers :math:`\mu`, any Array API namespace.
    reference : array of shape (k_ref, n_features), k_ref >= k
        The reference centers :math:`c^*`, same namespace and device.

    Returns
    -------
    d : array of shape (k,)
        Non-negative, in the namespace, device and floating dtype of ``centers``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> mu = xp.asarray([[10.0, 0.0], [0.0, 1.0]])
    >>> ref = xp.asarray([[0.0, 0.0], [10.0, 0.0]])
    >>> arbf.centroid_discrepancy(mu, ref)
    Array([0., 1.], dtype=array_api_strict.float64)
    """
    M, xp = check_data(centers, name="centers")
    R, _ = check_data(reference, name="reference")
    array_namespace(M, R)
    check_same_device(M, R)
    if M.shape[1] != R.shape[1]:
        raise ValueError(
            f"centers and reference have different numbers of features: "
            f"{M.shape[1]} and {R.shape[1]}"
        )
    if M.shape[0] > R.shape[0]:
        raise ValueError(
            f"cannot match {M.shape[0]} centers one-to-one to {R.shape[0]} reference centers"
        )
    R = xp.astype(R, M.dtype)
    D = sq_distances(M, R, xp=xp, x_sq=sq_norms(M, xp=xp), c_sq=sq_norms(R, xp=xp))
    _, cols = linear_assignment(to_host(D))
    idx = from_host(cols.astype(np.int64), xp=xp, device=device_of(M))
    diff = M - xp.take(R, idx, axis=0)
    return xp.sqrt(xp.sum(diff * diff, axis=1))
