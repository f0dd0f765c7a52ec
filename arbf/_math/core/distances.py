r"""Squared distances, nearest centers, the Lloyd sums and the margins — the reference.

Conventions (SPEC §1): :math:`D_{ij} = \lVert x_i - \mu_j\rVert^2` computed as
:math:`\lVert x_i\rVert^2 - 2 x_i\cdot\mu_j + \lVert\mu_j\rVert^2` and clamped at 0; the
nearest center is the argmin of :math:`\lVert\mu_j\rVert^2 - 2x_i\cdot\mu_j` (the row
constant does not change it; ties to the lowest index) and the distance to it is then
computed directly, :math:`\lVert x_i - \mu_{l_i}\rVert^2` (no cancellation).  Every
function walks the rows in chunks (:func:`arbf._chunking.chunk_rows`), so no ``n x k``
array exists for the whole data set; sums across chunks are compensated.  No host sync.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..._backend import Array, device_of, has_float64
from ..._chunking import Accumulator, chunk_rows, iter_chunks
from .segments import SegmentSum, resolve

__all__ = [
    "assign",
    "assign_inertia",
    "dist_to_rows",
    "labelled_inertia",
    "labelled_sq_distances",
    "lloyd_sums",
    "mean_rows",
    "min_margin",
    "nearest",
    "nearest_blocked",
    "pairwise_distances",
    "sq_distances",
    "sq_norms",
    "two_nearest",
    "utilities",
]


def sq_norms(X: Array, *, xp: ModuleType) -> Array:
    """Row-wise squared norms ``||x_i||^2``."""
    return xp.sum(X * X, axis=1)


def sq_distances(
    X: Array, C: Array, *, xp: ModuleType, x_sq: Array | None = None, c_sq: Array | None = None
) -> Array:
    """``D_ij = max(||x_i||^2 - 2 x_i . c_j + ||c_j||^2, 0)`` for one chunk (``n x k``)."""
    if x_sq is None:
        x_sq = sq_norms(X, xp=xp)
    if c_sq is None:
        c_sq = sq_norms(C, xp=xp)
    D = (x_sq[:, None] + c_sq[None, :]) - 2.0 * (X @ C.T)
    return xp.clip(D, 0.0, None) if hasattr(xp, "clip") else xp.maximum(D, xp.zeros_like(D))


def nearest(X: Array, C: Array, *, xp: ModuleType, c_sq: Array | None = None) -> Array:
    """Index of the nearest center for each row of one chunk (ties to the lowest index).

    Uses ``||c_j||^2 - 2 x . c_j`` (the row constant ``||x||^2`` does not change argmin).
    """
    if c_sq is None:
        c_sq = sq_norms(C, xp=xp)
    return xp.argmin(c_sq[None, :] - 2.0 * (X @ C.T), axis=1)


def labelled_sq_distances(X: Array, C: Array, labels: Array, *, xp: ModuleType) -> Array:
    """``||x_i - c_{labels_i}||^2`` computed directly (no cancellation) for one chunk."""
    diff = X - xp.take(C, labels, axis=0)
    return xp.sum(diff * diff, axis=1)


def two_nearest(D: Array, *, xp: ModuleType) -> tuple[Array, Array, Array]:
    """``(l, D_(1), D_(2))`` per row of one chunk of squared distances ``D`` (``n x k``):
    the nearest index (ties to the lowest), the smallest and the second smallest entry.

    ``D_(2) - D_(1)`` is the margin :math:`\\Delta_i` (``inf`` when ``k == 1``).
    """
    lab = xp.argmin(D, axis=1)
    d1 = xp.min(D, axis=1)
    ks = xp.arange(D.shape[1], device=device_of(D))
    inf = xp.asarray(float("inf"), dtype=D.dtype, device=device_of(D))
    d2 = xp.min(xp.where(xp.astype(ks, lab.dtype)[None, :] == lab[:, None], inf, D), axis=1)
    return lab, d1, d2


def _w_sum(values: Array, w: Array | None, *, xp: ModuleType) -> Array:
    return xp.sum(values) if w is None else xp.sum(values * w)


def assign(
    X: Array, C: Array, *, xp: ModuleType, working_memory: Any = None
) -> tuple[Array, Array]:
    """Nearest-center labels and their exact squared distances, over chunks.

    Returns ``(labels, min_sq)`` with ``labels_i = argmin_j D_ij`` (ties to the lowest
    index) and ``min_sq_i = ||x_i - c_{labels_i}||^2`` computed directly.
    """
    rows = chunk_rows(X, C.shape[0], xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    labels, dists = [], []
    for a, b in iter_chunks(X.shape[0], rows):
        Xc = X[a:b, ...]
        lab = nearest(Xc, C, xp=xp, c_sq=c_sq)
        labels.append(lab)
        dists.append(labelled_sq_distances(Xc, C, lab, xp=xp))
    if len(labels) == 1:
        return labels[0], dists[0]
    return xp.concat(labels), xp.concat(dists)


def assign_inertia(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any = None
) -> tuple[Array, Array]:
    """Nearest-center labels and the inertia w.r.t. ``C``, in one pass over chunks.

    Returns ``(labels, J)`` with ``labels`` as in :func:`assign` and
    ``J = Σ_i w_i ||x_i - c_{labels_i}||^2`` (a 0-d array; ``w_i = 1`` when ``w`` is
    ``None``), compensated over chunks.
    """
    rows = chunk_rows(X, C.shape[0], xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    labels = []
    acc = Accumulator(xp)
    for a, b in iter_chunks(X.shape[0], rows):
        Xc = X[a:b, ...]
        lab = nearest(Xc, C, xp=xp, c_sq=c_sq)
        labels.append(lab)
        dist = labelled_sq_distances(Xc, C, lab, xp=xp)
        acc.add(_w_sum(dist, None if w is None else w[a:b], xp=xp))
    lab_all = labels[0] if len(labels) == 1 else xp.concat(labels)
    return lab_all, acc.result()


def labelled_inertia(
    X: Array,
    C: Array,
    labels: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: Any = None,
) -> Array:
    """``Σ_i w_i ||x_i - c_{labels_i}||^2`` for given labels (0-d), chunked and summed as
    :func:`assign_inertia` (so the nearest-center labels give its inertia exactly)."""
    rows = chunk_rows(X, C.shape[0], xp=xp, working_memory=working_memory)
    acc = Accumulator(xp)
    for a, b in iter_chunks(X.shape[0], rows):
        dist = labelled_sq_distances(X[a:b, ...], C, labels[a:b], xp=xp)
        acc.add(_w_sum(dist, None if w is None else w[a:b], xp=xp))
    return acc.result()


def lloyd_sums(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    segment_sum: SegmentSum | None = None,
) -> tuple[Array, Array, Array, Array]:
    """One fused E-step and M-step accumulation over chunks.

    Returns ``(labels, sums, weights, J)``: ``labels_i = argmin_j D_ij``,
    ``sums_j = Σ_{i: labels_i = j} w_i x_i``, ``weights_j = Σ_{i: labels_i = j} w_i``
    and ``J = Σ_i w_i ||x_i - c_{labels_i}||^2`` (w.r.t. the *given* centers).  The
    weighted rows and their weights are summed by cluster with ``segment_sum`` (default
    the one-hot product; two calls, so the rows are not copied next to a column of
    weights), and accumulated over chunks with the inertia as one compensated vector
    (about 40 array operations per chunk).
    """
    k, d = C.shape
    seg = resolve(segment_sum, xp)
    rows = chunk_rows(X, k, xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    labels = []
    acc = Accumulator(xp)
    for a, b in iter_chunks(X.shape[0], rows):
        Xc = X[a:b, ...]
        lab = nearest(Xc, C, xp=xp, c_sq=c_sq)
        labels.append(lab)
        dist = labelled_sq_distances(Xc, C, lab, xp=xp)
        if w is None:
            ones = xp.ones((b - a, 1), dtype=X.dtype, device=device_of(X))
            sums = seg(Xc, lab, k)
            masses = seg(ones, lab, k)
            j_c = xp.sum(dist)
        else:
            wc = w[a:b]
            sums = seg(Xc * wc[:, None], lab, k)
            masses = seg(wc[:, None], lab, k)
            j_c = xp.sum(dist * wc)
        acc.add(xp.concat([xp.reshape(sums, (-1,)), masses[:, 0], j_c[None]]))
    lab_all = labels[0] if len(labels) == 1 else xp.concat(labels)
    tot = acc.result()
    return lab_all, xp.reshape(tot[: k * d], (k, d)), tot[k * d : k * (d + 1)], tot[-1]


def min_margin(X: Array, C: Array, *, xp: ModuleType, working_memory: Any = None) -> Array:
    """``min_i (D_i(2) - D_i(1))`` (0-d): the smallest gap between the two nearest centers
    (``inf`` with a single center).  Chunked; no host sync."""
    k = C.shape[0]
    dev = device_of(X)
    if k < 2:
        return xp.asarray(float("inf"), dtype=X.dtype, device=dev)
    rows = chunk_rows(X, k, xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    mins = []
    for a, b in iter_chunks(X.shape[0], rows):
        _, d1, d2 = two_nearest(sq_distances(X[a:b, ...], C, xp=xp, c_sq=c_sq), xp=xp)
        mins.append(xp.min(d2 - d1))
    return mins[0] if len(mins) == 1 else xp.min(xp.stack(mins))


def utilities(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    segment_sum: SegmentSum | None = None,
) -> Array:
    r"""Per center, its utility :math:`U_j = \sum_{l_i = j} w_i (D_{i(2)} - D_{i(1)})` (the
    inertia lost if it were removed) and its error :math:`E_j = \sum_{l_i=j} w_i D_{i(1)}`,
    as a ``k x 2`` array ``[U, E]``.  One chunked pass, no host sync."""
    k = C.shape[0]
    seg = resolve(segment_sum, xp)
    rows = chunk_rows(X, k, xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    acc = Accumulator(xp)
    for a, b in iter_chunks(X.shape[0], rows):
        lab, d1, d2 = two_nearest(sq_distances(X[a:b, ...], C, xp=xp, c_sq=c_sq), xp=xp)
        ue = xp.stack([d2 - d1, d1], axis=1)
        acc.add(seg(ue if w is None else ue * w[a:b, None], lab, k))
    return acc.result()


def pairwise_distances(X: Array, C: Array, *, xp: ModuleType, working_memory: Any = None) -> Array:
    """Euclidean (not squared) distances ``||x_i - c_j||`` (``n x k``), over chunks.

    Distances do not change under a common shift, so the expansion is taken about the
    mean of the centers (where it cancels far less than about the origin), and the
    distance to each row's nearest center is computed directly: a point on a center is
    at exactly 0.
    """
    rows = chunk_rows(X, C.shape[0], xp=xp, working_memory=working_memory)
    m = xp.mean(C, axis=0)
    Cm = C - m
    c_sq = sq_norms(Cm, xp=xp)
    ks = xp.arange(C.shape[0], device=device_of(C))
    parts = []
    for a, b in iter_chunks(X.shape[0], rows):
        Xc = X[a:b, ...]
        D = sq_distances(Xc - m, Cm, xp=xp, c_sq=c_sq)
        lab = xp.argmin(D, axis=1)
        exact = labelled_sq_distances(Xc, C, lab, xp=xp)
        at_lab = xp.astype(ks, lab.dtype)[None, :] == lab[:, None]
        parts.append(xp.sqrt(xp.where(at_lab, exact[:, None], D)))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def dist_to_rows(
    X: Array, rows: Array, x_sq: Array, *, xp: ModuleType, working_memory: Any = None
) -> Array:
    """``n x m`` squared distances to ``m`` (few) rows, over chunks, concatenated."""
    step = chunk_rows(X, rows.shape[0], xp=xp, working_memory=working_memory)
    r_sq = sq_norms(rows, xp=xp)
    parts = [
        sq_distances(X[a:b, ...], rows, xp=xp, x_sq=x_sq[a:b], c_sq=r_sq)
        for a, b in iter_chunks(X.shape[0], step)
    ]
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def nearest_blocked(X: Array, cands: Array, block: int, *, xp: ModuleType) -> Array:
    """Index of the nearest of ``m`` (possibly many) candidates for every row, walking the
    candidates in blocks of ``block`` with a running minimum (ties to the lower index):
    for a lazy backend whose row chunks are its own (Dask), no ``rows x m`` temporary
    beyond ``rows x block``."""
    m = cands.shape[0]
    best_d = best_i = None
    for a in range(0, m, block):
        b = min(a + block, m)
        C = cands[a:b, ...]
        D = sq_norms(C, xp=xp)[None, :] - 2.0 * (X @ C.T)  # ||x||^2 does not change argmin
        d = xp.min(D, axis=1)
        i = xp.argmin(D, axis=1) + a
        if best_d is None:
            best_d, best_i = d, i
        else:
            better = d < best_d  # strict: ties stay with the lower index
            best_d = xp.where(better, d, best_d)
            best_i = xp.where(better, i, best_i)
    return best_i


def mean_rows(X: Array, *, xp: ModuleType) -> Array:
    """Column means of ``X`` in its dtype (float32 summed in float64 where the backend
    has it, without a float64 copy of ``X``)."""
    if X.dtype == xp.float32 and has_float64(xp, device_of(X)):
        return xp.astype(xp.sum(X, axis=0, dtype=xp.float64) / X.shape[0], X.dtype)
    return xp.mean(X, axis=0)
