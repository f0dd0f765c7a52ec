r"""Batched problems: B independent clusterings in one pass (the reference).

Every array carries a leading batch axis: data ``X`` of shape ``(B, n, d)``, centers
``C`` of shape ``(B, k, d)``, weights ``w`` of shape ``(B, n)`` (or ``None``).  Problem
``b`` sees only ``X[b]``, ``C[b]`` and ``w[b]``; the products are batched matrix
products (``xp.matmul`` on ``(B, n, d) @ (B, d, k)``), so there is no Python loop over
``B``.  The formulas are those of :mod:`.distances`, :mod:`.responsibilities` and
:mod:`.soft` with the reductions taken along the last axes:

- :math:`D_{bij} = \max(\lVert x_{bi}\rVert^2 - 2 x_{bi}\cdot\mu_{bj}
  + \lVert\mu_{bj}\rVert^2, 0)`, the nearest center
  :math:`l_{bi} = \operatorname{argmin}_j (\lVert\mu_{bj}\rVert^2 - 2 x_{bi}\cdot\mu_{bj})`
  (ties to the lowest index) and its distance computed directly;
- the sums by cluster :math:`s_{bj} = \sum_{i: l_{bi}=j} w_{bi} x_{bi}` either with the
  backend's native scatter-add over the flattened index :math:`b k + l_{bi}` or with the
  batched one-hot product :math:`R_b^\top X_b`;
- the soft statistics :math:`s_{bj} = \sum_i w_{bi} r_{bij} x_{bi}`,
  :math:`N_{bj} = \sum_i w_{bi} r_{bij}` and :math:`L_\sigma, F_\sigma, J` per problem.

Rows are walked in chunks whose ``B x rows x k`` temporaries fit the memory budget, and
sums across chunks are compensated.  No host sync, no in-place writes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..._backend import Array, device_of, has_take_along_axis, itemsize
from ..._chunking import Accumulator, budget_mb, iter_chunks
from .entmax import entmax15_sqrt
from .segments import SegmentSum
from .soft import SoftStats
from .terms import SampleTerms

__all__ = [
    "assign_inertia",
    "batch_rows",
    "center_gradient",
    "ema_update",
    "gather_centers",
    "lloyd_sums",
    "nearest",
    "responsibilities",
    "safe_divide_centers",
    "sample_terms",
    "segment_sum",
    "soft_from_gaps",
    "soft_stats",
    "sq_distances",
    "sq_norms",
    "step",
]

_TEMPORARIES = 4


def batch_rows(X: Array, k: int, *, working_memory: Any = None) -> int:
    """Rows per chunk so that a few ``B x rows x k`` temporaries fit the budget."""
    B, n = int(X.shape[0]), int(X.shape[1])
    budget = budget_mb(working_memory, X) * 2**20
    rows = int(budget) // (_TEMPORARIES * max(B * k, 1) * itemsize(X))
    return int(min(max(rows, 1), max(n, 1)))


def sq_norms(X: Array, *, xp: ModuleType) -> Array:
    """``||x_bi||^2`` along the last axis: ``(B, n)``."""
    return xp.sum(X * X, axis=-1)


def _cross(X: Array, C: Array, *, xp: ModuleType) -> Array:
    """``X_b C_b^T`` for every problem: ``(B, n, k)`` (one batched product)."""
    return xp.matmul(X, xp.matrix_transpose(C))


def sq_distances(
    X: Array, C: Array, *, xp: ModuleType, x_sq: Array | None = None, c_sq: Array | None = None
) -> Array:
    """``D_bij = max(||x_bi||^2 - 2 x_bi . c_bj + ||c_bj||^2, 0)``: ``(B, n, k)``."""
    if x_sq is None:
        x_sq = sq_norms(X, xp=xp)
    if c_sq is None:
        c_sq = sq_norms(C, xp=xp)
    D = (x_sq[:, :, None] + c_sq[:, None, :]) - 2.0 * _cross(X, C, xp=xp)
    return xp.clip(D, 0.0, None)


def nearest(X: Array, C: Array, *, xp: ModuleType, c_sq: Array | None = None) -> Array:
    """Nearest-center labels ``(B, n)`` from ``||c||^2 - 2 x . c`` (ties to the lowest)."""
    if c_sq is None:
        c_sq = sq_norms(C, xp=xp)
    return xp.argmin(c_sq[:, None, :] - 2.0 * _cross(X, C, xp=xp), axis=-1)


def _flat_labels(labels: Array, k: int, *, xp: ModuleType) -> Array:
    """``b k + labels_bi`` flattened to ``(B n,)``: one index space for all problems."""
    B = labels.shape[0]
    off = xp.arange(B, dtype=labels.dtype, device=device_of(labels)) * k
    return xp.reshape(labels + off[:, None], (-1,))


def gather_centers(C: Array, labels: Array, *, xp: ModuleType) -> Array:
    """``C[b, labels_bi]``: ``(B, n, d)``."""
    B, k, d = C.shape
    rows = xp.take(xp.reshape(C, (B * k, d)), _flat_labels(labels, k, xp=xp), axis=0)
    return xp.reshape(rows, (B, labels.shape[1], d))


def labelled_sq_distances(X: Array, C: Array, labels: Array, *, xp: ModuleType) -> Array:
    """``||x_bi - c_{b, labels_bi}||^2`` computed directly: ``(B, n)``."""
    diff = X - gather_centers(C, labels, xp=xp)
    return xp.sum(diff * diff, axis=-1)


def onehot(labels: Array, k: int, *, dtype: Any, xp: ModuleType) -> Array:
    """``(B, n, k)`` one-hot of integer ``labels`` ``(B, n)``."""
    ks = xp.arange(k, dtype=labels.dtype, device=device_of(labels))
    return xp.astype(labels[:, :, None] == ks[None, None, :], dtype)


def segment_sum(
    values: Array, labels: Array, k: int, *, xp: ModuleType, native: SegmentSum | None = None
) -> Array:
    """``out_bj = Σ_{i: labels_bi = j} values_bi``: ``(B, n, m) -> (B, k, m)``.

    ``native`` (a 2-D segment sum, :mod:`arbf._math.kernels.segments`) runs once over the
    flattened index ``b k + labels_bi``; without it the batched one-hot product
    ``onehot(labels)^T @ values``.
    """
    B, n, m = values.shape
    if native is not None:
        out = native(xp.reshape(values, (B * n, m)), _flat_labels(labels, k, xp=xp), B * k)
        return xp.reshape(out, (B, k, m))
    R = onehot(labels, k, dtype=values.dtype, xp=xp)
    return xp.matmul(xp.matrix_transpose(R), values)


def _chunk(A: Array | None, a: int, b: int) -> Array | None:
    return None if A is None else A[:, a:b, ...]


def lloyd_sums(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    segment_sum_native: SegmentSum | None = None,
) -> tuple[Array, Array, Array, Array]:
    """One fused assignment and accumulation for every problem.

    Returns ``(labels, sums, weights, J)`` of shapes ``(B, n)``, ``(B, k, d)``, ``(B, k)``
    and ``(B,)``: :func:`arbf._math.core.distances.lloyd_sums` of each problem (the rows
    and the weights summed by cluster with two segment sums, as there).
    """
    B, k, d = C.shape
    rows = batch_rows(X, k, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    dev = device_of(X)
    labels = []
    acc = Accumulator(xp)
    for a, b in iter_chunks(X.shape[1], rows):
        Xc = X[:, a:b, ...]
        wc = _chunk(w, a, b)
        lab = nearest(Xc, C, xp=xp, c_sq=c_sq)
        labels.append(lab)
        dist = labelled_sq_distances(Xc, C, lab, xp=xp)
        if wc is None:
            ones = xp.ones((B, b - a, 1), dtype=X.dtype, device=dev)
            sums = segment_sum(Xc, lab, k, xp=xp, native=segment_sum_native)
            masses = segment_sum(ones, lab, k, xp=xp, native=segment_sum_native)
            j_c = xp.sum(dist, axis=-1)
        else:
            sums = segment_sum(Xc * wc[:, :, None], lab, k, xp=xp, native=segment_sum_native)
            masses = segment_sum(wc[:, :, None], lab, k, xp=xp, native=segment_sum_native)
            j_c = xp.sum(dist * wc, axis=-1)
        acc.add(xp.concat([xp.reshape(sums, (B, k * d)), masses[:, :, 0], j_c[:, None]], axis=-1))
    lab_all = labels[0] if len(labels) == 1 else xp.concat(labels, axis=-1)
    tot = acc.result()
    return lab_all, xp.reshape(tot[:, : k * d], (B, k, d)), tot[:, k * d : k * (d + 1)], tot[:, -1]


def assign_inertia(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any = None
) -> tuple[Array, Array]:
    """Nearest-center labels ``(B, n)`` and the inertia ``(B,)`` of every problem."""
    k = C.shape[1]
    rows = batch_rows(X, k, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    labels = []
    acc = Accumulator(xp)
    for a, b in iter_chunks(X.shape[1], rows):
        Xc = X[:, a:b, ...]
        lab = nearest(Xc, C, xp=xp, c_sq=c_sq)
        labels.append(lab)
        dist = labelled_sq_distances(Xc, C, lab, xp=xp)
        wc = _chunk(w, a, b)
        acc.add(xp.sum(dist if wc is None else dist * wc, axis=-1))
    lab_all = labels[0] if len(labels) == 1 else xp.concat(labels, axis=-1)
    return lab_all, acc.result()


def _gaps(D: Array, lab: Array, *, xp: ModuleType) -> Array:
    """``G_bij = D_bij - D_{b,i,lab_bi}`` (exactly >= 0; its gradient cancels at ties)."""
    if has_take_along_axis(xp):
        return D - xp.take_along_axis(D, lab[:, :, None], axis=-1)
    ks = xp.arange(D.shape[-1], device=device_of(D))
    at_lab = lab[:, :, None] == xp.astype(ks, lab.dtype)[None, None, :]
    return D - xp.sum(xp.where(at_lab, D, xp.zeros_like(D)), axis=-1, keepdims=True)


def soft_from_gaps(G: Array, *, sigma: Any, kind: str, xp: ModuleType) -> tuple[Array, Array]:
    """Responsibilities from gaps along the last axis (any leading shape), ``sigma > 0``.

    ``(R, aux)`` as :func:`arbf._math.core.responsibilities.soft_from_gaps`: for softmax
    ``aux = log Σ_l exp(-G_l/σ)`` (one per row), for entmax-1.5 ``aux = sqrt(R)``.
    """
    z = G / (-sigma)
    if kind == "softmax":
        e = xp.exp(z)
        s = xp.sum(e, axis=-1, keepdims=True)
        return e / s, xp.log(s[..., 0])
    if kind == "entmax15":
        u = entmax15_sqrt(z, xp=xp)
        return u * u, u
    raise ValueError(f"no soft responsibilities for kind {kind!r}")


def responsibilities(
    X: Array, C: Array, *, sigma: float, kind: str, xp: ModuleType, working_memory: Any = None
) -> Array:
    """Responsibilities ``(B, n, k)`` of every problem, over chunks of rows."""
    k = C.shape[1]
    rows = batch_rows(X, k, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    out = []
    for a, b in iter_chunks(X.shape[1], rows):
        Xc = X[:, a:b, ...]
        if sigma == 0 or kind == "hard":
            out.append(onehot(nearest(Xc, C, xp=xp, c_sq=c_sq), k, dtype=X.dtype, xp=xp))
            continue
        D = sq_distances(Xc, C, xp=xp, c_sq=c_sq)
        R, _ = soft_from_gaps(
            _gaps(D, xp.argmin(D, axis=-1), xp=xp), sigma=sigma, kind=kind, xp=xp
        )
        out.append(R)
    return out[0] if len(out) == 1 else xp.concat(out, axis=1)


def soft_stats(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    xp: ModuleType,
    working_memory: Any = None,
    segment_sum_native: SegmentSum | None = None,
    sigmas: Array | None = None,
) -> SoftStats:
    """The soft statistics of every problem: sums ``(B, k, d)``, masses ``(B, k)`` and
    :math:`L_\\sigma`, :math:`F_\\sigma`, J ``(B,)`` (:func:`arbf._math.core.soft.soft_stats`
    per problem; ``sigma == 0`` or ``kind == "hard"`` gives the Lloyd statistics).

    ``sigmas``: per-problem temperatures ``(B,)`` (positive, ``X``'s namespace, device and
    dtype): problem ``b`` runs at ``sigmas[b]``, and ``sigma`` then only tells soft
    (``!= 0``) from hard."""
    B, k, d = C.shape
    if sigma == 0 or kind == "hard":
        _, sums, mass, J = lloyd_sums(
            X, C, w, xp=xp, working_memory=working_memory, segment_sum_native=segment_sum_native
        )
        return SoftStats(sums, mass, J, J, J, xp.zeros_like(J))
    rows = batch_rows(X, k, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    dev = device_of(X)
    acc = Accumulator(xp)
    for a, b in iter_chunks(X.shape[1], rows):
        Xc = X[:, a:b, ...]
        wc = _chunk(w, a, b)
        D = sq_distances(Xc, C, xp=xp, c_sq=c_sq)
        lab = xp.argmin(D, axis=-1)
        G = _gaps(D, lab, xp=xp)
        dist = labelled_sq_distances(Xc, C, lab, xp=xp)
        R, aux = soft_from_gaps(
            G, sigma=sigma if sigmas is None else sigmas[:, None, None], kind=kind, xp=xp
        )
        extra_l = xp.sum(R * G, axis=-1)
        if kind == "softmax":
            t_row = aux  # the entropy term: F_i = d_i - σ t_i
        else:  # entmax-1.5: F_i = L_i - σ t_i, t_i the Tsallis entropy
            t_row = (4.0 / 3.0) * xp.sum(R - R * aux, axis=-1)
        s_row = sigma if sigmas is None else sigmas[:, None]
        extra_f = (0.0 if kind == "softmax" else extra_l) - s_row * t_row
        Rw = R if wc is None else R * wc[:, :, None]
        ones = xp.ones((B, b - a, 1), dtype=X.dtype, device=dev)
        sm_c = xp.matmul(xp.matrix_transpose(Rw), xp.concat([Xc, ones], axis=-1))
        per_row = xp.stack([dist + extra_l, dist + extra_f, dist, t_row], axis=-1)
        if wc is not None:
            per_row = per_row * wc[:, :, None]
        lfj_c = xp.sum(per_row, axis=1)
        acc.add(xp.concat([xp.reshape(sm_c, (B, k * (d + 1))), lfj_c], axis=-1))
    tot = acc.result()
    sm = xp.reshape(tot[:, : k * (d + 1)], (B, k, d + 1))
    return SoftStats(sm[:, :, :d], sm[:, :, d], tot[:, -4], tot[:, -3], tot[:, -2], tot[:, -1])


def sample_terms(
    X: Array, C: Array, sigma: Any, *, kind: str, xp: ModuleType, stop_gradient: Any = None
) -> SampleTerms:
    """Per-sample terms of every problem (:func:`arbf._math.core.terms.sample_terms` with a
    leading batch axis): responsibilities ``(B, n, k)``, :math:`L_i`, its stop-gradient
    value, :math:`F_i` and :math:`d_i`, each ``(B, n)``.  No chunking (one network batch)."""
    sg = stop_gradient if stop_gradient is not None else (lambda a: a)
    k = C.shape[1]
    D = sq_distances(X, C, xp=xp)
    lab = xp.argmin(D, axis=-1)
    d = labelled_sq_distances(X, C, lab, xp=xp)
    if kind == "hard" or (isinstance(sigma, int | float) and sigma == 0):
        R = onehot(lab, k, dtype=D.dtype, xp=xp)
        return SampleTerms(R, d, d, d, d, xp.zeros_like(d))
    G = _gaps(D, lab, xp=xp)
    R, aux = soft_from_gaps(G, sigma=sigma, kind=kind, xp=xp)
    L = d + xp.sum(R * G, axis=-1)
    L_sg = d + xp.sum(sg(R) * G, axis=-1)
    if kind == "softmax":
        t = aux
        F = d - sigma * t
    else:
        t = (4.0 / 3.0) * xp.sum(R - R * aux, axis=-1)
        F = L - sigma * t
    return SampleTerms(R, L, L_sg, F, d, t)


def safe_divide_centers(sums: Array, weights: Array, fallback: Array, *, xp: ModuleType) -> Array:
    """``sums_bj / weights_bj`` where ``weights_bj > 0``, else ``fallback_bj`` (no NaN)."""
    pos = weights > 0
    denom = xp.where(pos, weights, xp.ones_like(weights))
    return xp.where(pos[..., None], sums / denom[..., None], fallback)


def center_gradient(C: Array, mass: Array, sums: Array) -> Array:
    """:math:`\\nabla_{\\mu_{bj}} F_\\sigma = 2 (N_{bj} \\mu_{bj} - s_{bj})`."""
    return 2.0 * (mass[..., None] * C - sums)


def step(C: Array, mass: Array, sums: Array, lr: float | str, *, xp: ModuleType) -> Array:
    """The soft Lloyd step (``lr="lloyd"``) or a gradient step of size ``lr``, per problem."""
    if isinstance(lr, str):
        return safe_divide_centers(sums, mass, C, xp=xp)
    return C - lr * center_gradient(C, mass, sums)


def ema_update(C: Array, mass: Array, sums: Array, momentum: Any, *, xp: ModuleType) -> Array:
    """:math:`\\mu \\leftarrow (1-m)\\mu + m\\, s/N` where :math:`N > 0`, else unchanged.

    Leading axes are free (one problem ``(k, d)`` or a batch ``(B, k, d)``)."""
    target = safe_divide_centers(sums, mass, C, xp=xp)
    return (1.0 - momentum) * C + momentum * target
