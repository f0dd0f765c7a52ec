r"""Responsibilities :math:`r_{ij}` of the normalised Gaussian RBF network (SPEC §1).

With squared distances :math:`D_{ij} = \lVert x_i - \mu_j\rVert^2` and temperature σ (σ
divides the squared distance; a Gaussian of width :math:`s` is :math:`\sigma = 2s^2`), the
scores are :math:`z_{ij} = -D_{ij}/\sigma` and each row is mapped to the simplex by

- ``"softmax"``: :math:`r_i = \operatorname{softmax}(z_i)`, always max-shifted, i.e.
  computed from the gaps :math:`G_{ij} = D_{ij} - \min_l D_{il} \ge 0` as
  :math:`e^{-G_{ij}/\sigma} / \sum_l e^{-G_{il}/\sigma}` (never :math:`e^{-D/\sigma}` raw);
- ``"entmax15"``: :math:`r_{ij} = [z_{ij}/2 - \tau_i]_+^2` (exact, sparse);
- ``"hard"`` (and σ = 0 for every kind): the one-hot of :math:`\operatorname{argmin}_j
  D_{ij}`, ties to the lowest index.

:func:`responsibilities_impl` maps one chunk of distances, with no host sync;
:func:`responsibilities` is the public, chunked, validated function.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._backend import Array, device_of
from .._chunking import chunk_rows, iter_chunks
from .._validation import check_kind, check_sigma, check_x_centers_weights
from .distances import _itemsize, sq_distances, sq_norms
from .entmax import entmax15_sqrt_impl

__all__ = ["gaps", "onehot", "responsibilities", "responsibilities_impl", "soft_from_gaps"]


def onehot(labels: Array, k: int, *, dtype: Any, xp: ModuleType) -> Array:
    """``(n, k)`` one-hot matrix of integer ``labels`` in ``dtype``."""
    ks = xp.arange(k, dtype=labels.dtype, device=device_of(labels))
    return xp.astype(labels[:, None] == ks[None, :], dtype)


def gaps(D: Array, *, xp: ModuleType) -> Array:
    """``G_ij = D_ij - min_l D_il`` (>= 0, exactly 0 at the row minimum)."""
    G = D - xp.min(D, axis=1, keepdims=True)
    return xp.clip(G, 0.0, None)


def soft_from_gaps(G: Array, *, sigma: float, kind: str, xp: ModuleType) -> tuple[Array, Array]:
    """Soft responsibilities from the gaps of one chunk, for ``sigma > 0``.

    Returns ``(R, aux)``: for ``"softmax"`` ``aux = log sum_l exp(-G_il/σ)`` (>= 0, one
    per row); for ``"entmax15"`` ``aux = sqrt(R)`` (so that ``R**1.5 = aux**3`` with no
    ``sqrt(0)`` in the autodiff graph).
    """
    z = G / (-sigma)
    if kind == "softmax":
        e = xp.exp(z)  # the row minimum contributes exp(0) = 1: no underflow to 0/0
        s = xp.sum(e, axis=1, keepdims=True)
        return e / s, xp.log(s[:, 0])
    if kind == "entmax15":
        u = entmax15_sqrt_impl(z, xp=xp)
        return u * u, u
    raise ValueError(f"no soft responsibilities for kind {kind!r}")


def responsibilities_impl(D: Array, *, sigma: float, kind: str, xp: ModuleType) -> Array:
    """Responsibilities of one chunk of squared distances ``D`` (``n_c x k``).

    ``kind`` is ``"softmax"``, ``"entmax15"`` or ``"hard"``; ``sigma == 0`` means hard
    for every kind.  Pure array operations, no host sync (safe under ``jax.jit``).
    """
    if sigma == 0 or kind == "hard":
        return onehot(xp.argmin(D, axis=1), D.shape[1], dtype=D.dtype, xp=xp)
    R, _ = soft_from_gaps(gaps(D, xp=xp), sigma=sigma, kind=kind, xp=xp)
    return R


def responsibilities(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    working_memory: float | None = None,
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
    centers : array of shape (n_clusters, n_features)
        Centers, same namespace and device as ``X``.
    sigma : float
        Temperature, ``>= 0``.
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    working_memory : float, optional
        Memory budget in MiB for the temporaries of one chunk of rows.

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
    X, C, _, xp = check_x_centers_weights(X, centers)
    n, k = X.shape[0], C.shape[0]
    rows = chunk_rows(n, k, _itemsize(X), xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    out = [
        responsibilities_impl(
            sq_distances(X[a:b, ...], C, xp=xp, c_sq=c_sq), sigma=sigma, kind=kind, xp=xp
        )
        for a, b in iter_chunks(n, rows)
    ]
    return out[0] if len(out) == 1 else xp.concat(out, axis=0)
