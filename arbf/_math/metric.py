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

__all__ = ["COSINE", "METRICS", "check_metric", "project", "to_sphere"]

COSINE = "cosine"
#: The values of ``metric``.
METRICS = ("sqeuclidean", COSINE)


def check_metric(metric: Any) -> str:
    """``metric`` must be ``"sqeuclidean"`` or ``"cosine"``."""
    return str(check_param("metric", metric, Options(*METRICS)))


def to_sphere(X: Any, *, xp: ModuleType, name: str = "X") -> Any:
    """The rows of validated ``X`` divided by their norms (a new array; a sparse matrix
    stays sparse).  A row of norm 0 has no direction: ``ValueError`` naming ``name`` and
    the first such row (not checked while traced by JAX, where such a row becomes 0 and
    has cosine 0 with every center)."""
    U, zero = seam.unit_rows(X, xp=xp)
    if not is_traced(zero):
        zh = np.asarray(to_host(zero))
        if zh.any():
            bad = np.flatnonzero(zh)
            raise ValueError(
                f"{name} has {bad.size} row(s) of zero norm (first: row {int(bad[0])}); "
                "metric='cosine' needs a direction for every row: drop them or use "
                "metric='sqeuclidean'"
            )
    return U


def project(C_new: Array, C_old: Array, *, xp: ModuleType) -> Array:
    r"""The centers back on the sphere after an update, :math:`\mu_j/\lVert\mu_j\rVert`; a
    center whose (weighted, soft) mean is exactly 0 keeps ``C_old``'s row."""
    return seam.project_rows(C_new, C_old, xp=xp)
