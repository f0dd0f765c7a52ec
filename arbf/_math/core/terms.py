r"""Per-sample RBF clustering objectives for network layers (any Array API namespace).

The pass of :mod:`.soft` returns totals over the data set
with σ a Python float.  A network layer needs the per-sample terms (for means, weights and
minibatches) with σ possibly a 0-d array (a buffer driven by a schedule, or a learnable
parameter), and must stay traceable by ``torch.compile`` and ``jax.jit``.  This module
computes them with the same building blocks and the same numerically safe form:
with the exact nearest distance :math:`d_i = \min_j D_{ij}` and the gaps
:math:`G_{ij} = D_{ij} - D_{i,l_i} \ge 0` (:math:`l_i` the nearest center),

.. math::

    L_i = d_i + \sum_j r_{ij} G_{ij}, \qquad
    F_i = d_i - \sigma \log \sum_j e^{-G_{ij}/\sigma} \ \text{(softmax)}, \qquad
    F_i = L_i - \sigma\,\tfrac43 \sum_j (r_{ij} - r_{ij}^{3/2}) \ \text{(entmax-1.5)},

so :math:`\sum_i w_i L_i = L_\sigma` and :math:`\sum_i w_i F_i = F_\sigma` of
:func:`arbf.soft_distortion` and :func:`arbf.free_energy`.  No host sync, no
data-dependent shapes, no in-place writes.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

from ..._backend import Array, device_of
from .distances import labelled_sq_distances, sq_distances
from .responsibilities import onehot, soft_from_gaps

__all__ = ["OBJECTIVES", "SampleTerms", "reduce_terms", "sample_terms", "select_objective"]

OBJECTIVES = ("free_energy", "distortion", "nll")


class SampleTerms(NamedTuple):
    """Per-sample terms of one batch (all in the input namespace).

    Attributes
    ----------
    responsibilities : array (n, k)
        :math:`r_{ij}`.
    distortion : array (n,)
        :math:`L_i = \\sum_j r_{ij} D_{ij}`.
    distortion_stopgrad : array (n,)
        :math:`\\sum_j \\mathrm{sg}(r_{ij}) D_{ij}`: the value of :math:`L_i` with the
        responsibilities held fixed under autodiff.
    free_energy : array (n,)
        :math:`F_i`.
    inertia : array (n,)
        :math:`d_i = \\min_j D_{ij}`.
    """

    responsibilities: Array
    distortion: Array
    distortion_stopgrad: Array
    free_energy: Array
    inertia: Array


def sample_terms(
    X: Array, C: Array, sigma: Any, *, kind: str, xp: ModuleType, stop_gradient: Any = None
) -> SampleTerms:
    """Per-sample responsibilities and objective terms of ``X`` (n×d) for centers ``C``.

    ``sigma`` is a Python float or a 0-d array (> 0); ``kind == "hard"`` (or a Python
    ``sigma == 0``) gives one-hot responsibilities with :math:`L_i = F_i = d_i`.
    ``stop_gradient`` is the framework's stop-gradient function (``Tensor.detach``,
    ``jax.lax.stop_gradient``); ``None`` leaves the responsibilities attached.
    """
    sg = stop_gradient if stop_gradient is not None else (lambda a: a)
    k = C.shape[0]
    D = sq_distances(X, C, xp=xp)
    lab = xp.argmin(D, axis=1)
    d = labelled_sq_distances(X, C, lab, xp=xp)
    if kind == "hard" or (isinstance(sigma, int | float) and sigma == 0):
        R = onehot(lab, k, dtype=D.dtype, xp=xp)
        return SampleTerms(R, d, d, d, d)
    ks = xp.arange(k, device=device_of(X))
    at_lab = lab[:, None] == xp.astype(ks, lab.dtype)[None, :]
    # D - D[lab] (not D - min D): exactly >= 0, and its gradient cancels that of d at ties
    G = D - xp.sum(xp.where(at_lab, D, xp.zeros_like(D)), axis=1, keepdims=True)
    R, aux = soft_from_gaps(G, sigma=sigma, kind=kind, xp=xp)
    extra_l = xp.sum(R * G, axis=1)
    L = d + extra_l
    L_sg = d + xp.sum(sg(R) * G, axis=1)
    if kind == "softmax":
        F = d - sigma * aux
    else:  # entmax15: p = u², p^{3/2} = u³ with u = aux
        F = L - (sigma * 4.0 / 3.0) * xp.sum(R - R * aux, axis=1)
    return SampleTerms(R, L, L_sg, F, d)


def select_objective(
    terms: SampleTerms, objective: str, sigma: Any, *, n_features: int, n_clusters: int, xp
) -> Array:
    r"""The per-sample loss :math:`\ell_i` for ``objective``.

    - ``"free_energy"``: :math:`F_i`;
    - ``"distortion"``: :math:`\sum_j \mathrm{sg}(r_{ij}) D_{ij}` (the value of
      :math:`L_i`; gradients with the responsibilities held fixed);
    - ``"nll"`` (softmax only): the negative log-likelihood of the equal-weight isotropic
      Gaussian mixture with variance :math:`s^2 = \sigma/2`,
      :math:`F_i/\sigma + \tfrac d2 \log(\pi\sigma) + \log k`.
    """
    if objective == "free_energy":
        return terms.free_energy
    if objective == "distortion":
        return terms.distortion_stopgrad
    if objective == "nll":
        if isinstance(sigma, int | float):
            log_pi_sigma: Any = math.log(math.pi * sigma)
        else:
            log_pi_sigma = xp.log(sigma * math.pi)
        log_norm = 0.5 * n_features * log_pi_sigma + math.log(n_clusters)
        return terms.free_energy / sigma + log_norm
    raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")


def reduce_terms(loss: Array, sample_weight: Array | None, reduction: str, *, xp) -> Array:
    r"""``"sum"``: :math:`\sum_i w_i \ell_i`; ``"mean"``: :math:`\sum_i w_i \ell_i / \sum_i
    w_i`; ``"none"``: the per-sample :math:`w_i \ell_i`."""
    if sample_weight is not None:
        loss = loss * sample_weight
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / (loss.shape[0] if sample_weight is None else xp.sum(sample_weight))
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}")
