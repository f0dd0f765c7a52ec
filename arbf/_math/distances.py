"""Squared distances, nearest-center assignment and the Lloyd sums, chunked.

Conventions (SPEC §1): ``D_ij = ||x_i - mu_j||^2`` computed as
``||x_i||^2 - 2 x_i . mu_j + ||mu_j||^2`` and clamped at 0.  Every function here walks the
rows in chunks (:mod:`arbf._chunking`), so no ``n x k`` array is ever held for the whole
data set.  These functions contain no host synchronisation.

Two layers: :func:`assign`, :func:`assign_inertia` and :func:`lloyd_sums` take a native
fast path for NumPy inputs (:mod:`arbf._math.fast_numpy`, switched off by
``ARBF_DISABLE_FAST_PATHS=1``) and otherwise run the pure-standard ``*_pure`` functions,
which are the tested reference.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._backend import Array, host_views, like_view, segment_sum
from .._chunking import Accumulator, chunk_rows, iter_chunks
from . import fast_numpy

__all__ = [
    "assign",
    "assign_inertia",
    "assign_inertia_pure",
    "assign_pure",
    "labelled_sq_distances",
    "lloyd_sums",
    "lloyd_sums_pure",
    "nearest",
    "sq_distances",
    "sq_norms",
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


def fast_views(X: Array, C: Array, w: Array | None) -> tuple[Any, Any, Any] | None:
    """Zero-copy NumPy views of ``(X, C, w)`` for the native fast path, or ``None``.

    NumPy arrays qualify as they are, and so do CPU torch tensors that do not require a
    gradient (:func:`arbf._backend.host_view`): the fast path then serves PyTorch on the
    CPU too, and its results come back as tensors sharing the NumPy buffers.
    """
    views = host_views(X, C, w)
    if views is None or not fast_numpy.applies(*views):
        return None
    return views[0], views[1], views[2]


def assign(
    X: Array,
    C: Array,
    *,
    xp: ModuleType,
    working_memory: float | None = None,
) -> tuple[Array, Array]:
    """Nearest-center labels and their exact squared distances, over chunks.

    Returns ``(labels, min_sq)`` with ``labels_i = argmin_j D_ij`` (ties to the lowest
    index) and ``min_sq_i = ||x_i - c_{labels_i}||^2`` computed directly.  NumPy inputs
    take the native fast path; everything else runs :func:`assign_pure`.
    """
    if (v := fast_views(X, C, None)) is not None:
        labels, min_sq = fast_numpy.assign(v[0], v[1], working_memory=working_memory)
        return like_view(labels, X), like_view(min_sq, X)
    return assign_pure(X, C, xp=xp, working_memory=working_memory)


def assign_pure(
    X: Array,
    C: Array,
    *,
    xp: ModuleType,
    working_memory: float | None = None,
) -> tuple[Array, Array]:
    """Pure-standard :func:`assign` (the reference)."""
    n, k = X.shape[0], C.shape[0]
    rows = chunk_rows(n, k, _itemsize(X), xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    labels, dists = [], []
    for a, b in iter_chunks(n, rows):
        Xc = X[a:b, ...]
        lab = nearest(Xc, C, xp=xp, c_sq=c_sq)
        labels.append(lab)
        dists.append(labelled_sq_distances(Xc, C, lab, xp=xp))
    if len(labels) == 1:
        return labels[0], dists[0]
    return xp.concat(labels), xp.concat(dists)


def assign_inertia(
    X: Array,
    C: Array,
    sample_weight: Array | None,
    *,
    xp: ModuleType,
    working_memory: float | None = None,
) -> tuple[Array, Array]:
    """Nearest-center labels and the inertia w.r.t. ``C``, in one pass over chunks.

    Returns ``(labels, inertia)`` with ``labels`` as in :func:`assign` and
    ``inertia = sum_i w_i ||x_i - c_{labels_i}||^2`` (a 0-d array; ``w_i = 1`` when
    ``sample_weight`` is ``None``).  NumPy inputs take the native fast path; everything
    else runs :func:`assign_inertia_pure`.
    """
    if (v := fast_views(X, C, sample_weight)) is not None:
        labels, inertia = fast_numpy.assign_inertia(*v, working_memory=working_memory)
        return like_view(labels, X), like_view(inertia, X)
    return assign_inertia_pure(X, C, sample_weight, xp=xp, working_memory=working_memory)


def assign_inertia_pure(
    X: Array,
    C: Array,
    sample_weight: Array | None,
    *,
    xp: ModuleType,
    working_memory: float | None = None,
) -> tuple[Array, Array]:
    """Pure-standard :func:`assign_inertia` (the reference; compensated over chunks)."""
    n, k = X.shape[0], C.shape[0]
    rows = chunk_rows(n, k, _itemsize(X), xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    labels = []
    acc_in = Accumulator(xp)
    for a, b in iter_chunks(n, rows):
        Xc = X[a:b, ...]
        lab = nearest(Xc, C, xp=xp, c_sq=c_sq)
        labels.append(lab)
        dist = labelled_sq_distances(Xc, C, lab, xp=xp)
        acc_in.add(xp.sum(dist if sample_weight is None else dist * sample_weight[a:b]))
    lab_all = labels[0] if len(labels) == 1 else xp.concat(labels)
    return lab_all, acc_in.result()


def lloyd_sums(
    X: Array,
    C: Array,
    sample_weight: Array | None,
    *,
    xp: ModuleType,
    working_memory: float | None = None,
) -> tuple[Array, Array, Array, Array]:
    """One fused E-step and M-step accumulation over chunks.

    Returns ``(labels, sums, weights, inertia)``: ``labels_i = argmin_j D_ij``,
    ``sums_j = sum_{i: labels_i = j} w_i x_i``, ``weights_j = sum_{i: labels_i = j} w_i``,
    and ``inertia = sum_i w_i ||x_i - c_{labels_i}||^2`` (w.r.t. the *given* centers).
    NumPy inputs take the native fast path (float64 partial sums); everything else runs
    :func:`lloyd_sums_pure`.
    """
    if (v := fast_views(X, C, sample_weight)) is not None:
        out = fast_numpy.lloyd_sums(*v, working_memory=working_memory)
        return tuple(like_view(a, X) for a in out)
    return lloyd_sums_pure(X, C, sample_weight, xp=xp, working_memory=working_memory)


def lloyd_sums_pure(
    X: Array,
    C: Array,
    sample_weight: Array | None,
    *,
    xp: ModuleType,
    working_memory: float | None = None,
) -> tuple[Array, Array, Array, Array]:
    """Pure-standard :func:`lloyd_sums` (the reference).

    Sums over chunks are compensated (:class:`arbf._chunking.Accumulator`).
    """
    n, k = X.shape[0], C.shape[0]
    rows = chunk_rows(n, k, _itemsize(X), xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    labels = []
    acc_sum, acc_w, acc_in = Accumulator(xp), Accumulator(xp), Accumulator(xp)
    for a, b in iter_chunks(n, rows):
        Xc = X[a:b, ...]
        lab = nearest(Xc, C, xp=xp, c_sq=c_sq)
        labels.append(lab)
        dist = labelled_sq_distances(Xc, C, lab, xp=xp)
        if sample_weight is None:
            wX = Xc
            wc = xp.ones((b - a,), dtype=X.dtype, device=_dev(X))
            acc_in.add(xp.sum(dist))
        else:
            wc = sample_weight[a:b]
            wX = Xc * wc[:, None]
            acc_in.add(xp.sum(dist * wc))
        acc_sum.add(segment_sum(wX, lab, k, xp=xp))
        acc_w.add(segment_sum(wc, lab, k, xp=xp))
    lab_all = labels[0] if len(labels) == 1 else xp.concat(labels)
    return lab_all, acc_sum.result(), acc_w.result(), acc_in.result()


def _itemsize(X: Array) -> int:
    try:
        return int(X.dtype.itemsize)
    except AttributeError:
        return 8 if "64" in str(X.dtype) else 4


def _dev(X: Array):
    from .._backend import device_of

    return device_of(X)
