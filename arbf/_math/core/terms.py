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
    entropy : array (n,)
        :math:`t_i \\ge 0` with :math:`F_i = d_i - \\sigma t_i` (softmax:
        :math:`\\log\\sum_j e^{-G_{ij}/\\sigma}`) or :math:`F_i = L_i - \\sigma t_i`
        (entmax-1.5: the Tsallis entropy); 0 when hard.
    """

    responsibilities: Array
    distortion: Array
    distortion_stopgrad: Array
    free_energy: Array
    inertia: Array
    entropy: Array


def sample_terms(
    X: Array,
    C: Array,
    sigma: Any,
    *,
    kind: str,
    xp: ModuleType,
    stop_gradient: Any = None,
    log_sigma: Any = None,
) -> SampleTerms:
    """Per-sample responsibilities and objective terms of ``X`` (n×d) for centers ``C``.

    ``sigma`` is a Python float or a 0-d array (> 0); ``kind == "hard"`` (or a Python
    ``sigma == 0``) gives one-hot responsibilities with :math:`L_i = F_i = d_i`.
    ``stop_gradient`` is the framework's stop-gradient function (``Tensor.detach``,
    ``jax.lax.stop_gradient``); ``None`` leaves the responsibilities attached.

    σ may lie beyond the dtype's range (a ``log_sigma`` of ±700 in float32): the scores
    use it clamped to the normal range (:func:`.responsibilities.score_sigma`: the exact
    limits, one-hot or uniform rows), and :math:`F_i` uses it as it is -- a σ that
    underflows to 0 gives :math:`F_i = d_i` (the limit), one that overflows gives
    :math:`-\\infty` (the true :math:`-\\sigma t_i` is beyond the range), never NaN: with
    one center :math:`F_i = d_i` at every σ.  A layer that stores :math:`\\log\\sigma`
    passes it as ``log_sigma`` (``sigma`` is then ignored): σ is formed as
    :math:`e^{\\log\\sigma}` with :math:`\\log\\sigma` clamped to the logarithms of the
    dtype's normal range, so neither σ nor the gradient with respect to
    :math:`\\log\\sigma` over- or underflows (below that range σ is
    ``2 * smallest_normal``, so :math:`F_i` is off by at most
    ``2 * smallest_normal * log k``).
    """
    sg = stop_gradient if stop_gradient is not None else (lambda a: a)
    inv = None
    if log_sigma is not None:
        fi = xp.finfo(X.dtype)
        # a factor 2 inside the range: the bounds rounded to the dtype stay inside it
        lo, hi = math.log(2.0 * float(fi.smallest_normal)), math.log(0.5 * float(fi.max))
        ls = xp.clip(log_sigma, lo, hi)
        sigma, inv = xp.exp(ls), xp.exp(-ls)
    k = C.shape[0]
    D = sq_distances(X, C, xp=xp)
    lab = xp.argmin(D, axis=1)
    d = labelled_sq_distances(X, C, lab, xp=xp)
    if kind == "hard" or (isinstance(sigma, int | float) and sigma == 0):
        R = onehot(lab, k, dtype=D.dtype, xp=xp)
        return SampleTerms(R, d, d, d, d, xp.zeros_like(d))
    ks = xp.arange(k, device=device_of(X))
    at_lab = lab[:, None] == xp.astype(ks, lab.dtype)[None, :]
    # D - D[lab] (not D - min D): exactly >= 0, and its gradient cancels that of d at ties
    G = D - xp.sum(xp.where(at_lab, D, xp.zeros_like(D)), axis=1, keepdims=True)
    R, aux = soft_from_gaps(G, sigma=sigma, kind=kind, xp=xp, inv_sigma=inv)
    extra_l = xp.sum(R * G, axis=1)
    L = d + extra_l
    L_sg = d + xp.sum(sg(R) * G, axis=1)
    if kind == "softmax":
        t = aux
        base = d
    else:  # entmax15: p = u², p^{3/2} = u³ with u = aux
        t = (4.0 / 3.0) * xp.sum(R - R * aux, axis=1)
        base = L
    F = base if k == 1 else base - sigma * t  # one center: t = 0 exactly (σ t could be NaN)
    return SampleTerms(R, L, L_sg, F, d, t)


def select_objective(
    terms: SampleTerms,
    objective: str,
    sigma: Any,
    *,
    n_features: int,
    n_clusters: int,
    xp,
    log_sigma: Any = None,
) -> Array:
    r"""The per-sample loss :math:`\ell_i` for ``objective``.

    - ``"free_energy"``: :math:`F_i`;
    - ``"distortion"``: :math:`\sum_j \mathrm{sg}(r_{ij}) D_{ij}` (the value of
      :math:`L_i`; gradients with the responsibilities held fixed);
    - ``"nll"`` (softmax only): the negative log-likelihood of the equal-weight isotropic
      Gaussian mixture with variance :math:`s^2 = \sigma/2`,
      :math:`F_i/\sigma + \tfrac d2 \log(\pi\sigma) + \log k
      = d_i/\sigma - t_i + \tfrac d2 (\log\pi + \log\sigma) + \log k`, computed from
      ``log_sigma`` (default :math:`\log\sigma`) with :math:`d_i/\sigma =
      e^{\log d_i - \log\sigma}` (0 where :math:`d_i = 0`), so a σ beyond the dtype's
      range gives the exact value or an honest ``inf``, never NaN.
    """
    if objective == "free_energy":
        return terms.free_energy
    if objective == "distortion":
        return terms.distortion_stopgrad
    if objective == "nll":
        d = terms.inertia
        if isinstance(sigma, int | float):
            ls: Any = math.log(sigma) if log_sigma is None else log_sigma
        else:
            ls = xp.log(sigma) if log_sigma is None else log_sigma
        # e^{log d - log σ} where d > 0 (both wheres keep the other branch, and its
        # gradient, finite: exp(0) there)
        pos = d > 0.0
        zero = xp.zeros_like(d)
        expo = xp.where(pos, xp.log(xp.where(pos, d, xp.ones_like(d))) - ls, zero)
        d_over_sigma = xp.where(pos, xp.exp(expo), zero)
        log_norm = 0.5 * n_features * (math.log(math.pi) + ls) + math.log(n_clusters)
        return d_over_sigma - terms.entropy + log_norm
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
