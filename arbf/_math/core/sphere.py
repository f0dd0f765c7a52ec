r"""Rows on the unit sphere: the two operations of the cosine metric — the reference.

For unit vectors :math:`\hat x, \hat\mu`,
:math:`\lVert\hat x - \hat\mu\rVert^2 = 2\,(1 - \hat x\cdot\hat\mu) = 2\,(1 - \cos(x, \mu))`,
so the spherical problems (``metric="cosine"``) run the Euclidean machinery on the
normalised rows and put the centers back on the sphere after every update
(:func:`project_rows`).  Pure array operations, no host sync.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from ..._backend import Array
from . import batched as _batched
from .terms import SampleTerms, sample_terms

__all__ = ["batched_cosine_sample_terms", "cosine_sample_terms", "project_rows", "unit_rows"]


def unit_rows(X: Array, *, xp: ModuleType) -> tuple[Array, Array]:
    r"""``(U, zero)``: the rows of ``X`` divided by their Euclidean norm, and the boolean
    mask of the rows of norm 0 (whose row in ``U`` is 0).  Rows run along the last axis:
    ``X`` of shape ``(n, d)`` gives a mask ``(n,)``, a batch ``(B, n, d)`` one ``(B, n)``.

    Each row is first divided by its largest absolute entry, so the squared norm neither
    overflows nor underflows (float32 rows of 1e-30 or 1e30 are normalised exactly as
    rows of 1).
    """
    s = xp.max(xp.abs(X), axis=-1, keepdims=True)
    zero = s == 0
    s = xp.where(zero, xp.ones_like(s), s)
    Y = X / s
    nrm = xp.sqrt(xp.sum(Y * Y, axis=-1, keepdims=True))  # in [1, sqrt(d)]; 0 on zero rows
    return Y / xp.where(zero, xp.ones_like(nrm), nrm), zero[..., 0]


def project_rows(C_new: Array, C_old: Array, *, xp: ModuleType) -> Array:
    r"""``C_new`` with every row put on the unit sphere, :math:`\mu_j/\lVert\mu_j\rVert`;
    a row of norm 0 (a cluster whose weighted mean of unit vectors is exactly 0) takes
    the row of ``C_old`` instead (it keeps its position, as an empty cluster's center
    does in a plain update).  Leading axes are free (``(k, d)`` or a batch ``(B, k, d)``)."""
    U, zero = unit_rows(C_new, xp=xp)
    return xp.where(zero[..., None], C_old, U)


def cosine_sample_terms(
    X: Array,
    C: Array,
    sigma: Any,
    *,
    kind: str,
    xp: ModuleType,
    stop_gradient: Any = None,
    log_sigma: Any = None,
) -> SampleTerms:
    r""":func:`arbf._math.core.terms.sample_terms` for the cosine metric.

    The rows of ``X`` and ``C`` are normalised (differentiably: a network layer keeps
    unconstrained center parameters and uses their directions; a row of norm 0 becomes 0
    here, unchecked) and the Euclidean terms of the unit rows at ``2 sigma`` are halved,
    so :math:`d_i = \min_j (1 - \cos(x_i, \mu_j))` and :math:`L_i`, :math:`F_i` are in the
    cosine convention; the responsibilities are those of the logits
    :math:`(\cos - 1)/\sigma`.  ``log_sigma`` (optional, :math:`\log\sigma`) as in
    :func:`~arbf._math.core.terms.sample_terms`, for σ beyond the dtype's range.
    """
    U, _ = unit_rows(X, xp=xp)
    V, _ = unit_rows(C, xp=xp)
    log2s = None if log_sigma is None else log_sigma + math.log(2.0)
    t = sample_terms(
        U, V, 2 * sigma, kind=kind, xp=xp, stop_gradient=stop_gradient, log_sigma=log2s
    )
    return _halved(t)


def batched_cosine_sample_terms(
    X: Array, C: Array, sigma: Any, *, kind: str, xp: ModuleType, stop_gradient: Any = None
) -> SampleTerms:
    r""":func:`cosine_sample_terms` of B problems at once: ``X`` ``(B, n, d)``, ``C``
    ``(B, k, d)``, every row normalised (differentiably, unchecked) and the batched
    Euclidean terms of the unit rows at ``2 sigma``
    (:func:`arbf._math.core.batched.sample_terms`) halved: responsibilities
    ``(B, n, k)``, the per-sample terms ``(B, n)``, in the cosine convention."""
    U, _ = unit_rows(X, xp=xp)
    V, _ = unit_rows(C, xp=xp)
    return _halved(
        _batched.sample_terms(U, V, 2 * sigma, kind=kind, xp=xp, stop_gradient=stop_gradient)
    )


def _halved(t: SampleTerms) -> SampleTerms:
    """The Euclidean terms of unit rows at 2σ in the cosine convention."""
    # F_i = (d_i^U - 2σ t_i)/2 = d_i - σ t_i in the cosine convention: t_i is unchanged
    return SampleTerms(
        t.responsibilities, t.distortion / 2, t.distortion_stopgrad / 2, t.free_energy / 2,
        t.inertia / 2, t.entropy,
    )  # fmt: skip
