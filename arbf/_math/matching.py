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

from .._backend import (
    Array,
    array_namespace,
    check_same_device,
    device_of,
    from_host,
    quiet_overflow,
    to_host,
)
from .._scaling import check_finite_result, rescale, scale_for, unscale
from .._validation import check_data
from . import seam
from .batched import check_batched_data, is_batched

__all__ = ["centroid_discrepancy"]


def centroid_discrepancy(centers: Any, reference: Any, /) -> Array:
    r"""Per-center distance to the optimally matched reference center.

    .. math::

        d_j = \lVert \mu_j - c^*_{\pi(j)} \rVert, \qquad
        \pi = \operatorname*{argmin}_{\pi \text{ one-to-one}}
        \sum_j \lVert \mu_j - c^*_{\pi(j)} \rVert^2,

    the matching solved exactly (the Hungarian method,
    :func:`arbf._math.core.matching.linear_assignment`) on the :math:`k \times k`
    squared-distance matrix.  Used to measure how far the RBF centers
    at temperature σ are from the K-Means fixed point :math:`c^*` (report ``max`` and
    ``mean`` over j).  The matching is a host computation (one sync); the distances are
    then computed directly (no cancellation) in the input's namespace.

    Parameters
    ----------
    centers : array of shape (k, n_features) or (B, k, n_features)
        The centers :math:`\mu`, any Array API namespace.  With a leading batch axis,
        ``B`` problems: the ``k x k_ref`` distance matrices are one batched product, the
        ``B`` matchings ``B`` small host solves.
    reference : array of shape (k_ref, n_features) or (B, k_ref, n_features), k_ref >= k
        The reference centers :math:`c^*`, same namespace and device.

    Returns
    -------
    d : array of shape (k,) or (B, k)
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
    if is_batched(centers):
        return _batched(centers, reference)
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
    # both divided by the power of two of their extent: no squared distance overflows
    s = scale_for(seam.extent(M, R, xp=xp), M.dtype, xp=xp)
    Ms, Rs = rescale(M, s), rescale(R, s)
    D = seam.sq_distances(Ms, Rs, xp=xp)
    _, cols = seam.linear_assignment(to_host(D))
    idx = from_host(cols.astype(np.int64), xp=xp, device=device_of(M))
    diff = Ms - xp.take(Rs, idx, axis=0)
    with quiet_overflow(xp):
        d = unscale(xp.sqrt(xp.sum(diff * diff, axis=1)), s)
    return check_finite_result(d, xp=xp, what="the centroid discrepancy")


def _batched(centers: Any, reference: Any) -> Array:
    """:func:`centroid_discrepancy` of ``B`` problems: ``(B, k)``."""
    M, xp = check_batched_data(centers, name="centers")
    if not is_batched(reference):
        raise ValueError(
            "reference must have shape (B, k_ref, n_features) like centers "
            f"{tuple(M.shape)}; got shape {tuple(getattr(reference, 'shape', ()))}"
        )
    R, _ = check_batched_data(reference, name="reference")
    array_namespace(M, R)
    check_same_device(M, R)
    B, k, d = M.shape
    if R.shape[0] != B or R.shape[2] != d:
        raise ValueError(
            f"centers {tuple(M.shape)} and reference {tuple(R.shape)} must have the same "
            "number of problems B and of features"
        )
    if k > R.shape[1]:
        raise ValueError(f"cannot match {k} centers one-to-one to {R.shape[1]} reference centers")
    R = xp.astype(R, M.dtype)
    s = scale_for(seam.extent(M, R, xp=xp), M.dtype, xp=xp)
    Ms, Rs = rescale(M, s), rescale(R, s)
    D = to_host(seam.batched_sq_distances(Ms, Rs, xp=xp))
    cols = np.stack([seam.linear_assignment(D[b])[1] for b in range(B)]).astype(np.int64)
    flat = (np.arange(B)[:, None] * R.shape[1] + cols).reshape(-1)
    idx = from_host(flat, xp=xp, device=device_of(M))
    matched = xp.reshape(xp.take(xp.reshape(Rs, (-1, d)), idx, axis=0), (B, k, d))
    diff = Ms - matched
    with quiet_overflow(xp):
        out = unscale(xp.sqrt(xp.sum(diff * diff, axis=-1)), s)
    return check_finite_result(out, xp=xp, what="the centroid discrepancy")
