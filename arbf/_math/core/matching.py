"""Optimal one-to-one matching (the linear assignment problem), on the host.

The Hungarian method with row/column potentials (the shortest-augmenting-path form of
Jonker & Volgenant), used to match centers to a reference for the centroid discrepancy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._backend import to_host

__all__ = ["linear_assignment"]


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
    >>> from arbf._math.core.matching import linear_assignment
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
