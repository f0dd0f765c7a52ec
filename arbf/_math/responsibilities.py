r"""Responsibilities :math:`r_{ij}` of the normalised Gaussian RBF network (SPEC §1), public.

The math (softmax from the gaps, exact entmax-1.5, the hard one-hot) is
:mod:`arbf._math.core.responsibilities`; this function validates and calls the seam.
"""

from __future__ import annotations

from typing import Any

from .._backend import Array
from .._scaling import rescale, scale_for, sigma_in
from .._validation import check_kind, check_sigma, check_x_centers_weights
from . import batched, seam
from .metric import check_metric, prepare

__all__ = ["responsibilities"]


def responsibilities(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    working_memory: float | None = None,
    metric: str = "sqeuclidean",
) -> Array:
    r"""Row-wise responsibilities of ``centers`` for ``X`` at temperature ``sigma``.

    .. math::

        r_{ij} = \operatorname{map}\big(-D_{i\cdot}/\sigma\big)_j, \qquad
        D_{ij} = \lVert x_i - \mu_j\rVert^2,

    with ``map`` the softmax (:math:`r_{ij} \propto e^{-D_{ij}/\sigma}`, computed
    max-shifted), entmax-1.5 (:math:`r_{ij} = [-D_{ij}/(2\sigma) - \tau_i]_+^2`, sparse;
    a row is exactly one-hot iff the gap between its two smallest distances is at least
    2σ), or the hard one-hot of :math:`\operatorname{argmin}_j D_{ij}` (ties to the
    lowest index).  σ divides the squared distance: a Gaussian of width :math:`s` is
    :math:`\sigma = 2s^2`.  ``sigma = 0`` means hard for every kind.  For every σ and map
    :math:`\operatorname{argmax}_j r_{ij} = \operatorname{argmin}_j D_{ij}` (Voronoi
    preservation).

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
        Temperature, ``>= 0``.
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    working_memory : float, optional
        Memory budget in MiB for the temporaries of one chunk of rows.
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": the rows of ``X`` and ``centers`` are normalised (a row of norm 0
        raises ``ValueError``) and :math:`D_{ij}` is the cosine distance
        :math:`1 - \cos(x_i, \mu_j)`, so :math:`r_i = \operatorname{map}((\cos(x_i,
        \mu_\cdot) - 1)/\sigma)`; the row constant :math:`-1/\sigma` changes neither
        map, so softmax gives the posterior of a von Mises-Fisher mixture with equal
        weights and concentration :math:`\kappa = 1/\sigma`.  Since
        :math:`\lVert\hat x - \hat\mu\rVert^2 = 2(1 - \cos)`, this equals the Euclidean
        responsibilities of the normalised rows at temperature :math:`2\sigma`.
        Entmax-1.5 rows are one-hot iff the two largest cosines differ by at least 2σ.

    Returns
    -------
    R : array of shape (n_samples, n_clusters)
        Rows non-negative and summing to 1; the namespace, device and floating dtype of
        ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> arbf.responsibilities(X, C, sigma=1.0, kind="entmax15")
    Array([[1. , 0. ],
           [0.5, 0.5],
           [0. , 1. ]], dtype=array_api_strict.float64)
    >>> arbf.responsibilities(X, C, sigma=0.0)
    Array([[1., 0.],
           [1., 0.],
           [0., 1.]], dtype=array_api_strict.float64)
    """
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    metric = check_metric(metric)
    if batched.is_batched(X):  # (B, n, d): B problems at once
        return batched.responsibilities(
            X, centers, sigma=sigma, kind=kind, working_memory=working_memory, metric=metric
        )
    X, C, _, xp = check_x_centers_weights(X, centers)
    X, C, sigma, _ = prepare(X, C, metric, xp=xp, sigma=sigma)  # cosine: unit rows, 2σ
    # data and centers divided by the power of two of their extent, σ by its square:
    # the same responsibilities, with no squared distance beyond the dtype's range
    s = scale_for(seam.extent(X, C, xp=xp), X.dtype, xp=xp)
    return seam.responsibilities(
        rescale(X, s), rescale(C, s), sigma=sigma_in(sigma, s), kind=kind, xp=xp,
        working_memory=working_memory,
    )  # fmt: skip
