r"""The ``metric`` option: squared Euclidean (the default) or cosine (spherical K-Means).

With ``metric="cosine"`` the rows of ``X`` and the centers are put on the unit sphere
(:math:`\hat x = x/\lVert x\rVert`) and the dissimilarity is the cosine distance

.. math::

    D^{\cos}_{ij} = 1 - \cos(x_i, \mu_j) = 1 - \hat x_i\cdot\hat\mu_j
                  = \tfrac12 \lVert \hat x_i - \hat\mu_j\rVert^2 ,

which takes the place of :math:`D_{ij} = \lVert x_i - \mu_j\rVert^2` in every formula
(the distortion :math:`J`, :math:`L_\sigma`, :math:`F_\sigma`, the logits
:math:`-D_{ij}/\sigma`).  Because :math:`D^{\cos} = \tfrac12 D` on the sphere, the cosine
problem at temperature σ *is* the Euclidean problem on the normalised rows at temperature
:math:`2\sigma` with every objective halved (the logits are equal), followed by the
projection of the centers onto the sphere after each update (Dhillon & Modha 2001).  That
is how it is computed: :func:`to_sphere` once at the front door, the Euclidean engine and
kernels unchanged, and :func:`project` after each update.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, is_traced, to_host
from .._validation import Options, check_param
from . import seam

__all__ = ["COSINE", "METRICS", "check_metric", "no_cosine_batch", "project", "to_sphere"]

COSINE = "cosine"
#: The values of ``metric``.
METRICS = ("sqeuclidean", COSINE)


def check_metric(metric: Any) -> str:
    """``metric`` must be ``"sqeuclidean"`` or ``"cosine"``."""
    return str(check_param("metric", metric, Options(*METRICS)))


def no_cosine_batch(metric: str) -> None:
    """For an entry point that runs a leading batch axis ``(B, n, d)`` on the Euclidean
    path only: with ``metric="cosine"`` a :class:`ValueError` that says what to do
    instead.  (The batched math functions, :func:`arbf.kmeans`, :func:`arbf.rbf_kmeans`
    and :func:`arbf.anneal` take the cosine metric and no longer call it.)"""
    if metric == COSINE:
        raise ValueError(
            "metric='cosine' with a leading batch axis (B, n, d) is not supported: "
            "normalise the rows of X (and the centers) to unit norm and use the default "
            "metric ('sqeuclidean' on unit rows is 2 * (1 - cos), the same assignments), "
            "or call once per problem"
        )


def to_sphere(X: Any, *, xp: ModuleType, name: str = "X") -> Any:
    """The rows of validated ``X`` divided by their norms (a new array; a sparse matrix
    stays sparse; a batch ``(B, n, d)`` row by row in every problem).  A row of norm 0
    has no direction: ``ValueError`` naming ``name`` and the first such row (and its
    problem, for a batch; not checked while traced by JAX, where such a row becomes 0
    and has cosine 0 with every center)."""
    U, zero = seam.unit_rows(X, xp=xp)
    if not is_traced(zero):
        zh = np.asarray(to_host(zero))
        if zh.any():
            bad = np.argwhere(zh)
            where = f"row {int(bad[0, -1])}" + (
                f" of problem {int(bad[0, 0])}" if zh.ndim == 2 else ""
            )
            raise ValueError(
                f"{name} has {len(bad)} row(s) of zero norm (first: {where}); "
                "metric='cosine' needs a direction for every row: drop them or use "
                "metric='sqeuclidean'"
            )
    return U


def project(C_new: Array, C_old: Array, *, xp: ModuleType) -> Array:
    r"""The centers back on the sphere after an update, :math:`\mu_j/\lVert\mu_j\rVert`; a
    center whose (weighted, soft) mean is exactly 0 keeps ``C_old``'s row.  ``(k, d)`` or a
    batch ``(B, k, d)``."""
    return seam.project_rows(C_new, C_old, xp=xp)


def prepare(
    X: Any, C: Any, metric: str, *, xp: ModuleType, sigma: float = 0.0, name: str = "centers"
) -> tuple[Any, Any, float, float]:
    r"""``(X, C, sigma, scale)`` for the Euclidean machinery: unchanged with ``1.0`` for
    ``"sqeuclidean"``; for ``"cosine"`` the rows of both on the sphere, the temperature
    :math:`2\sigma` (equal logits: :math:`-\lVert\hat x-\hat\mu\rVert^2/(2\sigma) =
    -D^{\cos}/\sigma`) and the factor ``0.5`` that turns the Euclidean objectives (and
    gradient) into the cosine ones.  Batched ``(B, n, d)`` / ``(B, k, d)`` alike."""
    if metric != COSINE:
        return X, C, sigma, 1.0
    return to_sphere(X, xp=xp), to_sphere(C, xp=xp, name=name), 2.0 * sigma, 0.5
