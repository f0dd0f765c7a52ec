r"""One pass of the RBF relaxation: soft sums, masses, :math:`L_\sigma`, :math:`F_\sigma`, J.

With :math:`D_{ij} = \lVert x_i - \mu_j\rVert^2`, responsibilities :math:`r_{ij}`
(:mod:`.responsibilities`) and weights :math:`w_i`:

- :math:`J = \sum_i w_i \min_j D_{ij}` (K-Means distortion),
- :math:`L_\sigma = \sum_i w_i \sum_j r_{ij} D_{ij}` (smooth distortion),
- :math:`F_\sigma = \sum_i w_i \big(\sum_j r_{ij} D_{ij} - \sigma H(r_i)\big)` (free energy:
  Shannon entropy for softmax, where it equals
  :math:`-\sigma \sum_i w_i \log \sum_j e^{-D_{ij}/\sigma}`; Tsallis-1.5 entropy
  :math:`H(p) = \tfrac43 \sum_j (p_j - p_j^{3/2})` for entmax-1.5; :math:`F = J` when hard).

Everything is computed relative to the nearest center: with the exact nearest distance
:math:`d_i` and the gaps :math:`G_{ij} = D_{ij} - D_{i,l_i} \ge 0`,
:math:`L_i = d_i + \sum_j r_{ij} G_{ij}` and, for softmax,
:math:`F_i = d_i - \sigma \log \sum_j e^{-G_{ij}/\sigma}`.  So :math:`L \ge J \ge F` hold
term by term in floating point, and nothing over- or underflows for any σ > 0.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

from ..._backend import Array, device_of, has_take_along_axis, quiet_overflow
from ..._chunking import Accumulator, chunk_rows, iter_chunks
from .distances import labelled_sq_distances, nearest, sq_distances, sq_norms
from .responsibilities import score_sigma, soft_from_gaps
from .segments import SegmentSum, resolve

__all__ = ["SoftStats", "free_energy_at", "free_energy_base", "soft_stats"]


class SoftStats(NamedTuple):
    """The sufficient statistics of one pass over the data (all in the input namespace).

    Attributes
    ----------
    sums : array (k, d)
        :math:`\\sum_i w_i r_{ij} x_i`.
    mass : array (k,)
        :math:`N_j = \\sum_i w_i r_{ij}`.
    soft_distortion : 0-d array
        :math:`L_\\sigma`.
    free_energy : 0-d array
        :math:`F_\\sigma` (at the σ of the pass, clamped to the dtype's range as the
        scores are: :func:`.responsibilities.score_sigma`).
    inertia : 0-d array
        :math:`J`.
    entropy : 0-d array
        :math:`T \\ge 0` such that :math:`F_\\sigma = B - \\sigma T` at any σ the
        rows were computed for, with :math:`B` = :func:`free_energy_base` (J for softmax,
        :math:`L_\\sigma` for entmax-1.5): softmax
        :math:`T = \\sum_i w_i \\log\\sum_j e^{-G_{ij}/\\sigma}`, entmax-1.5 the Tsallis
        entropy :math:`T = \\sum_i w_i \\tfrac43\\sum_j (r_{ij} - r_{ij}^{3/2})`, 0 when
        hard.  Callers that know σ beyond the dtype's range (or work on rescaled data)
        assemble :math:`F_\\sigma` from it (:func:`free_energy_at`).
    """

    sums: Array
    mass: Array
    soft_distortion: Array
    free_energy: Array
    inertia: Array
    entropy: Array


def free_energy_base(st: SoftStats, kind: str) -> Array:
    """:math:`B` with :math:`F_\\sigma = B - \\sigma T`: :math:`L_\\sigma` for entmax-1.5,
    J otherwise."""
    return st.soft_distortion if kind == "entmax15" else st.inertia


def free_energy_at(base: float, entropy: float, *, sigma: float, scale: float = 1.0) -> float:
    """:math:`F_\\sigma = s^2 B - \\sigma T` on the host in float64, from host values of
    :math:`B` and :math:`T` measured on data divided by ``scale`` :math:`= s` (σ in the
    data's own units).  ``±inf`` only when the value is beyond float64's range (formed as
    :math:`s^2 (B - (\\sigma/s^2) T)`, so its sign is right even then)."""
    b, t = float(base), float(entropy)
    if t == 0.0:
        return b * scale * scale
    if b == 0.0 or scale == 1.0:
        return b * scale * scale - float(sigma) * t
    return (b - float(sigma) / scale / scale * t) * scale * scale


def soft_stats(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    xp: ModuleType,
    working_memory: Any = None,
    segment_sum: SegmentSum | None = None,
) -> SoftStats:
    """One chunked pass: soft sums, masses, :math:`L_\\sigma`, :math:`F_\\sigma` and J.

    ``w`` may be ``None`` (unit weights).  ``sigma == 0`` or ``kind == "hard"`` gives the
    Lloyd statistics (labels from :func:`.distances.nearest`, as the Lloyd step) with
    ``L = F = J``; their sums by cluster use ``segment_sum`` (default the one-hot
    product).  Per chunk the weighted responsibilities are multiplied with the rows *and*
    a column of ones in one product (sums and masses together), and the sums, masses
    and ``(L, J, T)`` are accumulated as one vector (compensated): under 60 array
    operations per chunk for softmax, so a GPU runs few, large kernels.  No host sync, so the
    function is safe inside ``jax.jit``, lazy on Dask, and differentiable.
    """
    k, d = C.shape
    seg = resolve(segment_sum, xp)
    rows = chunk_rows(X, k, xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    hard = sigma == 0 or kind == "hard"
    s_eff = sigma if hard else score_sigma(sigma, X.dtype, xp=xp)
    dev = device_of(X)
    # one compensated accumulator for [sums | masses] (k x (d+1), flattened) and (L, F, J):
    # a chunk costs one accumulation, not two (fewer kernel launches on a GPU)
    acc = Accumulator(xp)
    gather = has_take_along_axis(xp)
    ks = None if gather else xp.arange(k, device=dev)
    for a, b in iter_chunks(X.shape[0], rows):
        Xc = X[a:b, ...]
        wc = None if w is None else w[a:b]
        ones = xp.ones((b - a, 1), dtype=X.dtype, device=dev) if wc is None else wc[:, None]
        if hard:
            lab = nearest(Xc, C, xp=xp, c_sq=c_sq)  # the labels of the Lloyd step
            dist = labelled_sq_distances(Xc, C, lab, xp=xp)
            j_c = xp.sum(dist) if wc is None else xp.sum(wc * dist)
            xw = Xc if wc is None else Xc * ones
            sm_c = seg(xp.concat([xw, ones], axis=1), lab, k)
            acc.add(xp.concat([xp.reshape(sm_c, (-1,)), xp.stack([j_c, j_c, xp.zeros_like(j_c)])]))
            continue
        D = sq_distances(Xc, C, xp=xp, c_sq=c_sq)
        lab = xp.argmin(D, axis=1)
        # G = D - D[lab] is >= 0 exactly (D[lab] is the row minimum) and, unlike
        # D - min(D), its autodiff gradient cancels that of the exact distance d at ties
        if gather:
            G = D - xp.take_along_axis(D, lab[:, None], axis=1)
        else:
            at_lab = lab[:, None] == xp.astype(ks, lab.dtype)[None, :]
            G = D - xp.sum(xp.where(at_lab, D, xp.zeros_like(D)), axis=1, keepdims=True)
        dist = labelled_sq_distances(Xc, C, lab, xp=xp)
        R, aux = soft_from_gaps(G, sigma=sigma, kind=kind, xp=xp)
        extra_l = xp.sum(R * G, axis=1)  # L_i - d_i >= 0
        if kind == "softmax":
            t_row = aux  # F_i - d_i = -σ log Σ exp(-G/σ) <= 0
        else:  # entmax15: F_i = L_i - σ (4/3) Σ (p - p^{3/2}),  p = u², p^{3/2} = u³
            t_row = (4.0 / 3.0) * xp.sum(R - R * aux, axis=1)
        Rw = R if wc is None else R * ones
        sm_c = Rw.T @ xp.concat([Xc, ones if wc is None else xp.ones_like(ones)], axis=1)
        per_row = xp.stack([dist + extra_l, dist, t_row], axis=1)
        ljt_c = xp.sum(per_row if wc is None else per_row * ones, axis=0)
        acc.add(xp.concat([xp.reshape(sm_c, (-1,)), ljt_c]))
    tot = acc.result()
    sm = xp.reshape(tot[: k * (d + 1)], (k, d + 1))
    L, J, T = tot[-3], tot[-2], tot[-1]
    if hard:
        F = L
    else:
        # F = B - σT (B = J for softmax, L for entmax-1.5): F <= J exactly for softmax;
        # beyond the dtype's range it is -inf, without NumPy's overflow warning (the
        # callers that need it exactly assemble it with free_energy_at)
        with quiet_overflow(xp):
            F = (J if kind == "softmax" else L) - s_eff * T
    return SoftStats(sm[:, :d], sm[:, d], L, F, J, T)
