r"""The smooth objectives L_σ and F_σ and the analytic gradient of F_σ (SPEC §1).

With :math:`D_{ij} = \lVert x_i - \mu_j\rVert^2`, responsibilities :math:`r_{ij}`
(:mod:`arbf._math.responsibilities`) and weights :math:`w_i`:

- :math:`J = \sum_i w_i \min_j D_{ij}` (K-Means distortion),
- :math:`L_\sigma = \sum_i w_i \sum_j r_{ij} D_{ij}` (smooth distortion),
- :math:`F_\sigma = \sum_i w_i \big(\sum_j r_{ij} D_{ij} - \sigma H(r_i)\big)` (free energy:
  Shannon entropy for softmax, where it equals
  :math:`-\sigma \sum_i w_i \log \sum_j e^{-D_{ij}/\sigma}`; Tsallis-1.5 entropy
  :math:`H(p) = \tfrac43 \sum_j (p_j - p_j^{3/2})` for entmax-1.5; :math:`F = J` when hard).

Everything is computed relative to the nearest center: with the exact nearest distance
:math:`d_i` and the gaps :math:`G_{ij} = D_{ij} - \min_l D_{il} \ge 0`,
:math:`L_i = d_i + \sum_j r_{ij} G_{ij}` and, for softmax,
:math:`F_i = d_i - \sigma \log \sum_j e^{-G_{ij}/\sigma}`.  So :math:`L \ge J \ge F` hold
term by term in floating point, and nothing over- or underflows for any σ > 0.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

from .._backend import Array, device_of, like_view, segment_sum
from .._chunking import Accumulator, chunk_rows, iter_chunks
from .._validation import check_kind, check_sigma, check_x_centers_weights
from . import fast_soft_numpy
from .distances import (
    _itemsize,
    fast_views,
    labelled_sq_distances,
    nearest,
    sq_distances,
    sq_norms,
)
from .responsibilities import soft_from_gaps

__all__ = [
    "SoftStats",
    "center_gradient",
    "center_gradient_impl",
    "free_energy",
    "soft_distortion",
    "soft_stats_impl",
]


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
        :math:`F_\\sigma`.
    inertia : 0-d array
        :math:`J`.
    """

    sums: Array
    mass: Array
    soft_distortion: Array
    free_energy: Array
    inertia: Array


def soft_stats_impl(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    xp: ModuleType,
    working_memory: float | None = None,
) -> SoftStats:
    """One chunked pass: soft sums, masses, :math:`L_\\sigma`, :math:`F_\\sigma` and J.

    ``w`` may be ``None`` (unit weights).  ``sigma == 0`` or ``kind == "hard"`` gives the
    Lloyd statistics (labels from :func:`arbf._math.distances.nearest`, as in
    :func:`arbf.lloyd_step`) with ``L = F = J``.  Chunk totals are compensated sums; no
    host sync, so the function is safe inside ``jax.jit`` and lazy on Dask.

    NumPy float inputs, and CPU torch tensors that do not require a gradient (through
    zero-copy views), take the native fast path of :mod:`arbf._math.fast_soft_numpy`
    (same arithmetic; this function is its tested reference).
    """
    v = fast_views(X, C, w)  # NumPy, or CPU torch tensors needing no gradient
    if v is not None and fast_soft_numpy.applies(*v, "hard" if sigma == 0 else kind):
        out = fast_soft_numpy.soft_stats(*v, sigma=sigma, kind=kind, working_memory=working_memory)
        return SoftStats(*(like_view(a, X) for a in out))
    n, k = X.shape[0], C.shape[0]
    rows = chunk_rows(n, k, _itemsize(X), xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    hard = sigma == 0 or kind == "hard"
    acc_s, acc_m, acc_l, acc_f, acc_j = (Accumulator(xp) for _ in range(5))
    ks = xp.arange(k, device=device_of(X))
    for a, b in iter_chunks(n, rows):
        Xc = X[a:b, ...]
        wc = None if w is None else w[a:b]
        if hard:
            lab = nearest(Xc, C, xp=xp, c_sq=c_sq)  # the labels of arbf.lloyd_step
            d = labelled_sq_distances(Xc, C, lab, xp=xp)
            j_c = xp.sum(d) if wc is None else xp.sum(wc * d)
            if wc is None:
                acc_s.add(segment_sum(Xc, lab, k, xp=xp))
                acc_m.add(segment_sum(xp.ones_like(d), lab, k, xp=xp))
            else:
                acc_s.add(segment_sum(Xc * wc[:, None], lab, k, xp=xp))
                acc_m.add(segment_sum(wc, lab, k, xp=xp))
            for acc in (acc_j, acc_l, acc_f):
                acc.add(j_c)
            continue
        D = sq_distances(Xc, C, xp=xp, c_sq=c_sq)
        lab = xp.argmin(D, axis=1)
        # G = D - D[lab] is >= 0 exactly (D[lab] is the row minimum) and, unlike
        # D - min(D), its autodiff gradient cancels that of the exact distance d at ties
        at_lab = lab[:, None] == xp.astype(ks, lab.dtype)[None, :]
        G = D - xp.sum(xp.where(at_lab, D, xp.zeros_like(D)), axis=1, keepdims=True)
        d = labelled_sq_distances(Xc, C, lab, xp=xp)
        j_c = xp.sum(d) if wc is None else xp.sum(wc * d)
        acc_j.add(j_c)
        R, aux = soft_from_gaps(G, sigma=sigma, kind=kind, xp=xp)
        extra_l = xp.sum(R * G, axis=1)  # L_i - d_i >= 0
        if kind == "softmax":
            extra_f = -sigma * aux  # F_i - d_i = -σ log Σ exp(-G/σ) <= 0
        else:  # entmax15: Σ p G - σ (4/3) Σ (p - p^{3/2}),  p = u², p^{3/2} = u³
            extra_f = extra_l - (sigma * 4.0 / 3.0) * xp.sum(R - R * aux, axis=1)
        if wc is None:
            acc_s.add(R.T @ Xc)
            acc_m.add(xp.sum(R, axis=0))
            acc_l.add(j_c + xp.sum(extra_l))
            acc_f.add(j_c + xp.sum(extra_f))
        else:
            Rw = R * wc[:, None]
            acc_s.add(Rw.T @ Xc)
            acc_m.add(xp.sum(Rw, axis=0))
            acc_l.add(j_c + xp.sum(wc * extra_l))
            acc_f.add(j_c + xp.sum(wc * extra_f))
    return SoftStats(
        acc_s.result(), acc_m.result(), acc_l.result(), acc_f.result(), acc_j.result()
    )


def center_gradient_impl(C: Array, stats: SoftStats) -> Array:
    """:math:`\\nabla_{\\mu_j} F_\\sigma = 2 (N_j \\mu_j - \\sum_i w_i r_{ij} x_i)`."""
    return 2.0 * (stats.mass[:, None] * C - stats.sums)


def _stats(
    X: Any,
    centers: Any,
    sigma: Any,
    kind: Any,
    sample_weight: Any,
    working_memory: float | None,
) -> tuple[Array, SoftStats]:
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    X, C, w, xp = check_x_centers_weights(X, centers, sample_weight)
    return C, soft_stats_impl(
        X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
    )


_PARAMS = """
    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Data, any Array API namespace.
    centers : array of shape (n_clusters, n_features)
        Centers, same namespace and device as ``X``.
    sigma : float
        Temperature ``>= 0``; σ divides the squared distance (a Gaussian of width
        :math:`s` is :math:`\\sigma = 2s^2`); ``0`` means hard responsibilities.
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights :math:`w_i` (default 1); the objectives are weighted sums,
        not means.
    working_memory : float, optional
        Memory budget in MiB for the temporaries of one chunk of rows.
"""


def soft_distortion(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
) -> Array:
    r"""Smooth weighted distortion :math:`L_\sigma(\mu) = \sum_i w_i \sum_j r_{ij} D_{ij}`.

    :math:`r_{ij}` are the responsibilities (:func:`arbf.responsibilities`).  At fixed
    μ, :math:`L_\sigma` is nondecreasing in σ and tends to the inertia J as σ → 0:
    softmax :math:`0 \le L_\sigma - J \le (k-1)\sigma\sum_i w_i/e`, entmax-1.5
    :math:`0 \le L_\sigma - J \le 2\sigma\sum_i w_i`.
    {params}
    Returns
    -------
    L : 0-d array
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> round(float(arbf.soft_distortion(X, C, sigma=1.0)), 6)
    2.074628
    >>> float(arbf.soft_distortion(X, C, sigma=1.0, kind="entmax15"))  # rows one-hot or tied
    2.0
    """
    _, st = _stats(X, centers, sigma, kind, sample_weight, working_memory)
    return st.soft_distortion


def free_energy(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
) -> Array:
    r"""Free energy :math:`F_\sigma = \sum_i w_i (\sum_j r_{ij} D_{ij} - \sigma H(r_i))`.

    For softmax (Shannon entropy) this is the soft-min
    :math:`F_\sigma = -\sigma \sum_i w_i \log \sum_j e^{-D_{ij}/\sigma}`, computed stably
    as :math:`\min_j D_{ij} - \sigma \log \sum_j e^{-(D_{ij} - \min_l D_{il})/\sigma}`;
    for entmax-1.5 :math:`H(p) = \tfrac43 \sum_j (p_j - p_j^{3/2})` (Tsallis), whose
    minimiser over the simplex is exactly :math:`r_i = \operatorname{entmax}_{1.5}
    (-D_i/\sigma)`; hard (σ = 0): :math:`F = J`.  Its gradient is
    :func:`center_gradient`, :math:`\nabla_{\mu_j} F_\sigma = 2\sum_i w_i r_{ij}
    (\mu_j - x_i)` (Lemma 1).  Bounds: softmax :math:`0 \le J - F_\sigma \le
    \sigma\log k\sum_i w_i`, entmax-1.5 :math:`0 \le J - F_\sigma \le
    \tfrac43(1 - 1/\sqrt k)\sigma\sum_i w_i`; :math:`F_\sigma` is nonincreasing in σ.

    Pure array operations: differentiable with respect to ``X`` and ``centers`` under
    torch autograd and ``jax.grad``.
    {params}
    Returns
    -------
    F : 0-d array
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> round(float(arbf.free_energy(X, C, sigma=1.0)), 6)  # -Σ log Σ exp(-D)
    1.288367
    >>> round(float(arbf.free_energy(X, C, sigma=1.0, kind="entmax15")), 6)
    1.609476
    """
    _, st = _stats(X, centers, sigma, kind, sample_weight, working_memory)
    return st.free_energy


def center_gradient(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
) -> Array:
    r"""Analytic gradient of the free energy, :math:`\nabla_{\mu_j} F_\sigma`.

    .. math::

        \nabla_{\mu_j} F_\sigma = 2 \sum_i w_i r_{ij} (\mu_j - x_i)
        = 2\,(N_j \mu_j - \textstyle\sum_i w_i r_{ij} x_i),
        \qquad N_j = \sum_i w_i r_{ij},

    the same form for softmax and entmax-1.5 (Lemma 1: the responsibilities minimise
    :math:`F` over the simplex, so their own variation does not contribute).  It vanishes
    at the soft centroid :math:`m_j = \sum_i w_i r_{ij} x_i / N_j`.  With σ = 0 it is the
    gradient of the inertia J inside each Voronoi cell.
    {params}
    Returns
    -------
    grad : array of shape (n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> arbf.center_gradient(X, C, sigma=0.0)
    Array([[-2.],
           [-2.]], dtype=array_api_strict.float64)
    """
    C, st = _stats(X, centers, sigma, kind, sample_weight, working_memory)
    return center_gradient_impl(C, st)


for _f in (soft_distortion, free_energy, center_gradient):
    _f.__doc__ = (_f.__doc__ or "").replace("    {params}\n", _PARAMS)
