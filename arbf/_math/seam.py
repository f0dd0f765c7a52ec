"""The seam: the one module that decides which implementation of each operation runs.

Drivers, estimators and integrations call only this module for computation.  For every
operation it makes one decision through one capability check, :func:`route`:

- ``"host"`` — the arrays are NumPy arrays, or CPU torch tensors that need no gradient
  (zero-copy views), of float32/float64, the configuration allows fast paths
  (:func:`arbf.get_config`) and numba is there: the compiled kernels of
  :mod:`arbf._math.kernels` run, and results come back in the input's kind;
- ``"dask"`` — a Dask array of NumPy blocks (one column chunk): the same kernels run
  once per row block (:mod:`arbf._math.kernels.dask`);
- ``"sparse"`` — ``X`` is a :mod:`scipy.sparse` CSR matrix (validated, canonical) with
  NumPy centers: the compiled kernels of :mod:`arbf._math.kernels.sparse` (sparse x
  dense products, float64 accumulation; ``X`` is never densified).  A sparse matrix is
  not an Array API array, so there is no pure reference and this route does not depend
  on ``fast_paths``; the tests compare it with the reference on ``X.toarray()``;
- ``"pure"`` — everything else (CuPy, CUDA torch, JAX, array-api-strict, torch tensors
  that need a gradient, traced arrays, or ``fast_paths=False``): the Array API
  reference of :mod:`arbf._math.core`, given the backend's native segment sum
  (:mod:`arbf._math.kernels.segments`) when fast paths are allowed.

``config_context(fast_paths=False)`` (or ``ARBF_DISABLE_FAST_PATHS=1``) therefore runs
the reference exactly.  Operations with a single implementation are re-exported here so
that callers need no other module of :mod:`arbf._math`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .._backend import (
    Array,
    device_of,
    from_host,
    has_float64,
    host_view,
    host_views,
    is_dask,
    is_sparse,
    is_traced,
    itemsize,
    like_view,
    materialize,
    to_host,
)
from .._chunking import budget_mb, chunk_rows, iter_chunks
from .._config import get_config
from .core import batched as _batched
from .core import batched_anneal as _batched_anneal
from .core import distances as _d
from .core import entmax as _entmax
from .core import responsibilities as _resp
from .core import soft as _soft
from .core import spectral as _spectral
from .core import sphere as _sphere
from .core.distances import sq_distances, two_nearest
from .core.entmax import entmax15_sqrt, entmax_bisect, sparsemax
from .core.matching import linear_assignment
from .core.monotone import Geometry as MonotoneGeometry
from .core.monotone import entmax_onset as monotone_entmax_onset
from .core.monotone import fixed_point_defect as monotone_fixed_point_defect
from .core.monotone import safe_norm as monotone_safe_norm
from .core.monotone import softmax_bound as monotone_softmax_bound
from .core.monotone import softmax_certificate as monotone_softmax_certificate
from .core.responsibilities import (
    from_distances,
    onehot,
    score_sigma,
    soft_from_gaps,
)
from .core.schedules import geometric
from .core.segments import onehot_segment_sum
from .core.soft import SoftStats, free_energy_at, free_energy_base
from .core.spectral import covariance
from .core.sphere import batched_cosine_sample_terms, cosine_sample_terms, project_rows
from .core.terms import OBJECTIVES, SampleTerms, reduce_terms, sample_terms, select_objective
from .core.updates import center_gradient, running_mean_step, safe_divide_centers, step
from .kernels import batched as _kbatched
from .kernels import batched_soft as _kbatched_soft
from .kernels import bounds as _bounds
from .kernels import dask as _kdask
from .kernels import entmax as _kentmax
from .kernels import hard as _hard
from .kernels import runtime as _runtime
from .kernels import soft as _ksoft
from .kernels import sparse as _ksparse
from .kernels.segments import native_segment_sum

__all__ = [
    "ALGORITHMS",
    "OBJECTIVES",
    "MonotoneGeometry",
    "SampleTerms",
    "SoftStats",
    "assign",
    "assign_inertia",
    "batched_assign_inertia",
    "batched_center_gradient",
    "batched_cosine_sample_terms",
    "batched_covariance",
    "batched_gather_centers",
    "batched_labelled_sq_distances",
    "batched_lloyd_sums",
    "batched_mean_rows",
    "batched_min_margin",
    "batched_prepare",
    "batched_responsibilities",
    "batched_safe_divide_centers",
    "batched_sample_terms",
    "batched_soft_from_gaps",
    "batched_soft_stats",
    "batched_sq_distances",
    "batched_step",
    "center_gradient",
    "centre",
    "cosine_sample_terms",
    "covariance",
    "dense_rows",
    "dist_to_rows",
    "ema_update",
    "entmax15",
    "entmax15_sqrt",
    "entmax_bisect",
    "extent",
    "extent_mean_rows",
    "extent_mean_variance",
    "free_energy_at",
    "free_energy_base",
    "from_distances",
    "geometric",
    "inertia",
    "labelled_distances",
    "labelled_inertia",
    "labelled_sq_distances",
    "largest",
    "lazily_centred",
    "linear_assignment",
    "lloyd_stepper",
    "lloyd_sums",
    "mean_rows",
    "mean_variance",
    "min_margin",
    "monotone_entmax_onset",
    "monotone_fixed_point_defect",
    "monotone_safe_norm",
    "monotone_softmax_bound",
    "monotone_softmax_certificate",
    "nearest_labels",
    "onehot",
    "pairwise_distances",
    "principal_axes_pass",
    "principal_axis",
    "project_rows",
    "reduce_terms",
    "resolve_algorithm",
    "responsibilities",
    "route",
    "running_mean_step",
    "safe_divide_centers",
    "sample_terms",
    "score_sigma",
    "segment_sum",
    "select_objective",
    "soft_from_gaps",
    "soft_stats",
    "sparsemax",
    "sq_distances",
    "sq_norms",
    "step",
    "take_rows",
    "two_nearest",
    "unit_rows",
    "utilities",
]

HOST, DASK, SPARSE, PURE = "host", "dask", "sparse", "pure"

#: The values of ``algorithm`` (K-Means' exact assignment strategies).
ALGORITHMS = ("lloyd", "elkan", "hamerly", "yinyang", "auto")
_FLOATS = (np.float32, np.float64)


def _dask_blocks_ok(X: Any, C: Any, w: Any) -> bool:
    import dask.array as da

    if not isinstance(X, da.Array) or X.ndim != 2 or X.numblocks[1] != 1:
        return False
    if not isinstance(getattr(X, "_meta", None), np.ndarray) or X.dtype not in _FLOATS:
        return False
    if C is not None and (C.dtype != X.dtype or C.ndim != 2):
        return False
    return w is None or (
        isinstance(w, da.Array)
        and w.ndim == 1
        and isinstance(getattr(w, "_meta", None), np.ndarray)
    )


def _host_ok(views: tuple[Any, ...]) -> bool:
    X, C, w = views
    if X.ndim != 2 or X.dtype not in _FLOATS or isinstance(X, np.matrix):
        return False
    if C is not None and (C.dtype != X.dtype or C.ndim != 2 or C.shape[1] != X.shape[1]):
        return False
    return w is None or (w.shape == (X.shape[0],) and w.dtype.kind == "f")


def route(X: Array, C: Array | None = None, w: Array | None = None) -> tuple[str, Any]:
    """The one capability check: ``(route, views)`` for data ``X``, centers ``C`` and
    weights ``w`` (either may be ``None``).

    ``route`` is ``"host"`` (``views`` are zero-copy NumPy views of ``(X, C, w)``),
    ``"sparse"`` (``views`` are ``X`` itself and NumPy views of ``C`` and ``w``),
    ``"dask"`` or ``"pure"`` (``views`` is ``None``); see the module docstring.
    """
    if is_sparse(X):
        return SPARSE, (
            X,
            None if C is None else host_view(C),
            None if w is None else host_view(w),
        )
    if not (get_config().fast_paths and _runtime.HAVE_NUMBA):
        return PURE, None
    if type(X).__module__.startswith("dask"):
        return (DASK, None) if _dask_blocks_ok(X, C, w) else (PURE, None)
    views = host_views(X, C, w)
    if views is None or not _host_ok(views):
        return PURE, None
    return HOST, views


def _native_segment_sum(xp: ModuleType) -> Any:
    # the backend's own scatter-add (NumPy bincount, torch index_add, JAX segment_sum,
    # CuPy scatter_add) is part of the backend, not an arbf kernel: it serves the pure
    # route whatever ``fast_paths`` says (as before the seam existed); namespaces without
    # one (array-api-strict) get the one-hot product of the core
    return native_segment_sum(xp)


def _back(out: tuple[np.ndarray, ...], like: Array) -> Any:
    return tuple(like_view(a, like) for a in out)


# --------------------------------------------------------------------------------------
# the operations with more than one implementation
# --------------------------------------------------------------------------------------


def segment_sum(values: Array, labels: Array, k: int, *, xp: ModuleType) -> Array:
    """``out_j = Σ_{i: labels_i = j} values_i`` (``values`` n or n×d -> k or k×d): the
    backend's native scatter-add, else the one-hot product."""
    if values.ndim == 1:
        return segment_sum(values[:, None], labels, k, xp=xp)[:, 0]
    native = _native_segment_sum(xp)
    if native is not None:
        return native(values, labels, k)
    return onehot_segment_sum(values, labels, k, xp=xp)


def assign(
    X: Array, C: Array, *, xp: ModuleType, working_memory: Any = None
) -> tuple[Array, Array]:
    """``(labels, min_sq)``: :func:`arbf._math.core.distances.assign`."""
    r, v = route(X, C)
    if r == SPARSE:
        return _ksparse.assign(v[0], v[1], working_memory=working_memory)
    if r == HOST:
        return _back(_hard.assign(v[0], v[1], working_memory=working_memory), X)
    return _d.assign(X, C, xp=xp, working_memory=working_memory)


def assign_inertia(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    shift: Array | None = None,
) -> tuple[Array, Array]:
    """``(labels, J)``: :func:`arbf._math.core.distances.assign_inertia` (of
    ``X - shift``)."""
    r, v = route(X, C, w)
    if r == SPARSE:
        return _ksparse.assign_inertia(*v, working_memory=working_memory)
    if r == HOST:
        sh = _host_shift(shift)
        return _back(_hard.assign_inertia(*v, working_memory=working_memory, shift=sh), X)
    if shift is not None:
        X = X - shift
    return _d.assign_inertia(X, C, w, xp=xp, working_memory=working_memory)


def inertia(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any = None
) -> Array:
    """``J = Σ_i w_i min_j ||x_i - c_j||^2`` (0-d): the inertia of :func:`assign_inertia`."""
    return assign_inertia(X, C, w, xp=xp, working_memory=working_memory)[1]


def labelled_inertia(
    X: Array,
    C: Array,
    labels: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    shift: Array | None = None,
) -> Array:
    """``Σ_i w_i ||x_i - c_{labels_i}||^2`` (0-d), equal to :func:`assign_inertia`'s
    inertia for the nearest-center labels: :func:`arbf._math.core.distances.labelled_inertia`
    (of ``X - shift``)."""
    r, v = route(X, C, w)
    if r == SPARSE:
        return _ksparse.labelled_inertia(
            v[0], v[1], to_host(labels), v[2], working_memory=working_memory
        )
    if r == HOST:
        hl = host_view(labels, floats_only=False)
        if hl is not None:
            out = _hard.labelled_inertia(
                v[0], v[1], hl, v[2], working_memory=working_memory, shift=_host_shift(shift)
            )
            return like_view(out, X)
    if shift is not None:
        X = X - shift
    return _d.labelled_inertia(X, C, labels, w, xp=xp, working_memory=working_memory)


def labelled_sq_distances(
    X: Array, C: Array, labels: Array, *, xp: ModuleType, shift: Array | None = None
) -> Array:
    """``||x_i - c_{labels_i}||^2`` per row (of ``X - shift``):
    :func:`arbf._math.core.distances.labelled_sq_distances` (the host kernel rounds as
    NumPy's sum does)."""
    r, v = route(X, C)
    if r == HOST:
        hl = host_view(labels, floats_only=False)
        sh = _host_shift(shift)
        if hl is not None and X.shape[1] <= _hard.PAIRWISE_BLOCK:
            return like_view(_hard.labelled_sq_distances(v[0], v[1], hl, shift=sh), X)
        if hl is not None:  # NumPy's own expression over cache-sized blocks of rows
            rows = max(1, _runtime.CACHE_BYTES // (X.shape[1] * v[0].dtype.itemsize))
            out = []
            for a in range(0, X.shape[0], rows):
                block = v[0][a : a + rows] if sh is None else v[0][a : a + rows] - sh
                out.append(_d.labelled_sq_distances(block, v[1], hl[a : a + rows], xp=np))
            return like_view(np.concatenate(out), X)
    if shift is not None:
        X = X - shift
    return _d.labelled_sq_distances(X, C, labels, xp=xp)


def largest(values: Array, m: int, *, xp: ModuleType) -> np.ndarray:
    """Host indices of the ``m`` largest ``values`` (1-D), largest first, ties to the
    lowest index (a stable descending sort's first ``m``; ``O(n)`` on the host route)."""
    hv = host_view(values)
    if hv is not None and route(values[:, None])[0] == HOST:
        return _hard.largest(hv, m)
    order = xp.argsort(values, descending=True, stable=True)[:m]
    return to_host(order).astype(np.int64)


def _host_shift(shift: Array | None) -> np.ndarray | None:
    return None if shift is None else host_view(shift)


def lazily_centred(X: Array, w: Array | None = None) -> bool:
    """Whether the host kernels can take ``X`` with a ``shift`` and centre it chunk by
    chunk (the same bits as ``X - shift``) instead of a centred copy of ``X``."""
    return route(X, None, w)[0] == HOST


def lloyd_sums(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    shift: Array | None = None,
) -> tuple[Array, Array, Array, Array]:
    """``(labels, sums, weights, J)``: :func:`arbf._math.core.distances.lloyd_sums` of
    ``X - shift`` (``shift`` only where :func:`lazily_centred`)."""
    r, v = route(X, C, w)
    if r == SPARSE:
        return _ksparse.lloyd_sums(*v, working_memory=working_memory)
    if r == HOST:
        sh = _host_shift(shift)
        return _back(_hard.lloyd_sums(*v, working_memory=working_memory, shift=sh), X)
    if shift is not None:
        X = X - shift
    if r == DASK:
        return _kdask.lloyd_sums(X, C, w)
    return _d.lloyd_sums(
        X, C, w, xp=xp, working_memory=working_memory, segment_sum=_native_segment_sum(xp)
    )


def soft_stats(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    xp: ModuleType,
    working_memory: Any = None,
) -> SoftStats:
    """The statistics of one pass: :func:`arbf._math.core.soft.soft_stats`."""
    r, v = route(X, C, w)
    if r == SPARSE:
        out = _ksparse.soft_stats(*v, sigma=sigma, kind=kind, working_memory=working_memory)
        return SoftStats(*out)
    if r == HOST:
        out = _ksoft.soft_stats(*v, sigma=sigma, kind=kind, working_memory=working_memory)
        return SoftStats(*_back(out, X))
    return _soft.soft_stats(
        X,
        C,
        w,
        sigma=sigma,
        kind=kind,
        xp=xp,
        working_memory=working_memory,
        segment_sum=_native_segment_sum(xp),
    )


def extent(*arrays: Array | None, xp: ModuleType) -> float:
    """``max |a|`` over the entries of ``arrays`` (``None`` skipped), a host float: the
    size :func:`arbf._scaling.scale_for` rescales by.  ``max`` and ``min`` of each array
    (no temporary), one host sync; ``nan`` when an array is traced (no values under
    ``jax.jit``: then nothing is rescaled).  (A compiled single-pass kernel measured no
    faster than NumPy's two vectorised reductions.)
    """
    arrs = [a for a in arrays if a is not None and all(int(s) > 0 for s in a.shape)]
    # a sparse matrix: its stored entries (the implicit zeros do not widen the extent)
    arrs = [np.asarray(a.data) if is_sparse(a) else a for a in arrs]
    arrs = [a for a in arrs if int(a.shape[0]) > 0]
    if any(is_traced(a) for a in arrs):
        return float("nan")
    if not arrs:
        return 0.0
    parts = [xp.astype(p, xp.float64 if has_float64(xp, device_of(p)) else p.dtype) for a in arrs
             for p in (xp.max(a), -xp.min(a))]  # fmt: skip
    (stacked,) = materialize(xp.stack(parts), xp=xp)
    return float(np.max(to_host(stacked).astype(np.float64)))


def extent_mean_rows(*arrays: Array | None, xp: ModuleType) -> tuple[float, Array | None]:
    """``(extent(*arrays), mean_rows(arrays[0]))`` with the first array's two sweeps
    fused into one threaded sweep where it takes the host route
    (:func:`arbf._math.kernels.hard.extent_mean_rows`; the same values); elsewhere the
    extent alone and ``None`` for the means (the caller computes them if it needs them).
    """
    ext, mean, _ = extent_mean_variance(*arrays, xp=xp, variance=False)
    return ext, mean


def extent_mean_variance(
    *arrays: Array | None, xp: ModuleType, variance: bool = True
) -> tuple[float, Array | None, float | None]:
    """:func:`extent_mean_rows` and, with ``variance``, the first array's
    :func:`mean_variance` from the same sweep where it takes the host route
    (:func:`arbf._math.kernels.hard.extent_mean_variance`); elsewhere
    ``(extent, None, None)``, and ``None`` for the variance without ``variance``."""
    X, *others = arrays
    r, v = route(X) if X is not None else (PURE, None)
    if r != HOST or v is None or 0 in v[0].shape:
        return extent(*arrays, xp=xp), None, None
    if variance:
        ext, mean, mv = _hard.extent_mean_variance(v[0])
    else:
        (ext, mean), mv = _hard.extent_mean_rows(v[0]), None
    if any(a is not None for a in others):
        ext = float(np.max(np.array([ext, extent(*others, xp=xp)])))  # NaN propagates
    return ext, like_view(mean, X), mv


def mean_rows(X: Array, *, xp: ModuleType) -> Array:
    """Column means of ``X`` in its dtype: :func:`arbf._math.core.distances.mean_rows`."""
    r, v = route(X)
    if r == SPARSE:
        return _ksparse.mean_rows(X)
    if r == HOST:
        return like_view(_hard.mean_rows(v[0]), X)
    return _d.mean_rows(X, xp=xp)


def entmax15(z: Array, *, xp: ModuleType) -> Array:
    """Exact entmax-1.5 along the last axis: :func:`arbf._math.core.entmax.entmax15`."""
    zh = host_view(z)
    if zh is not None and zh.size and zh.dtype in _FLOATS:
        z2 = zh.reshape(-1, zh.shape[-1])
        if route(z2)[0] == HOST:
            return like_view(_kentmax.entmax15_rows(z2).reshape(zh.shape), z)
    return _entmax.entmax15(z, xp=xp)


def utilities(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any = None
) -> Array:
    """``[U, E]`` per center (``k x 2``): :func:`arbf._math.core.distances.utilities`."""
    _no_sparse(X, "the center utilities of deterministic annealing")
    return _d.utilities(
        X, C, w, xp=xp, working_memory=working_memory, segment_sum=_native_segment_sum(xp)
    )


def nearest_labels(X: Array, cands: Array, *, xp: ModuleType, working_memory: Any = None) -> Array:
    """Index of the nearest of ``m`` (possibly many) candidate rows for every row.

    Eager backends: :func:`assign`.  Dask (one lazy chunk whose row blocks are Dask's
    own): one kernel task per row block, or the pure candidates-in-blocks walk
    (:func:`arbf._math.core.distances.nearest_blocked`) with blocks sized to the budget.
    """
    if not is_dask(xp):
        return assign(X, cands, xp=xp, working_memory=working_memory)[0]
    if route(X, cands)[0] == DASK:
        return _kdask.nearest_labels(X, cands)
    rows = max(max(X.chunks[0]), 1)
    block = int(budget_mb(working_memory) * 2**20) // (4 * rows * itemsize(X))
    return _d.nearest_blocked(X, cands, max(1, min(cands.shape[0], block)), xp=xp)


# --------------------------------------------------------------------------------------
# operations on the data matrix itself: dense (the reference) or scipy.sparse
# --------------------------------------------------------------------------------------


def _no_sparse(X: Any, what: str) -> None:
    if is_sparse(X):
        raise TypeError(
            f"{what} do(es) not support scipy.sparse input; pass a dense array "
            "(X.toarray()) or choose another option"
        )


def sq_norms(X: Array, *, xp: ModuleType) -> Array:
    """Row-wise squared norms ``||x_i||^2``: :func:`arbf._math.core.distances.sq_norms`."""
    if is_sparse(X):
        return _ksparse.sq_norms(X)
    return _d.sq_norms(X, xp=xp)


def unit_rows(X: Array, *, xp: ModuleType) -> tuple[Array, Array]:
    """``(U, zero)``: the rows of ``X`` on the unit sphere and the mask of zero rows
    (:func:`arbf._math.core.sphere.unit_rows`; a sparse ``X`` stays sparse)."""
    if is_sparse(X):
        return _ksparse.unit_rows(X)
    return _sphere.unit_rows(X, xp=xp)


def dist_to_rows(
    X: Array, rows: Array, x_sq: Array, *, xp: ModuleType, working_memory: Any = None
) -> Array:
    """``n x m`` squared distances to ``m`` (few, dense) rows:
    :func:`arbf._math.core.distances.dist_to_rows`."""
    if is_sparse(X):
        return _ksparse.dist_to_rows(X, rows, x_sq, working_memory=working_memory)
    return _d.dist_to_rows(X, rows, x_sq, xp=xp, working_memory=working_memory)


def pairwise_distances(X: Array, C: Array, *, xp: ModuleType, working_memory: Any = None) -> Array:
    """Euclidean distances ``||x_i - c_j||`` (``n x k``):
    :func:`arbf._math.core.distances.pairwise_distances`."""
    r, v = route(X, C)
    if r == SPARSE:
        return _ksparse.pairwise_distances(X, v[1], working_memory=working_memory)
    if r == HOST:
        return like_view(_hard.pairwise_distances(v[0], v[1], working_memory=working_memory), X)
    return _d.pairwise_distances(X, C, xp=xp, working_memory=working_memory)


def min_margin(X: Array, C: Array, *, xp: ModuleType, working_memory: Any = None) -> Array:
    """``min_i (D_i(2) - D_i(1))`` (0-d): :func:`arbf._math.core.distances.min_margin`."""
    if is_sparse(X):
        return _ksparse.min_margin(X, C, working_memory=working_memory)
    return _d.min_margin(X, C, xp=xp, working_memory=working_memory)


def responsibilities(
    X: Array, C: Array, *, sigma: float, kind: str, xp: ModuleType, working_memory: Any = None
) -> Array:
    """``n x k`` responsibilities: :func:`arbf._math.core.responsibilities.responsibilities`."""
    if is_sparse(X):
        return _ksparse.responsibilities(
            X, C, sigma=sigma, kind=kind, working_memory=working_memory
        )
    return _resp.responsibilities(
        X, C, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
    )


def principal_axis(
    X: Array, w: Array | None, *, xp: ModuleType, v0: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """``(λ_max, v)`` of the weighted covariance: :func:`arbf._math.core.spectral.
    principal_axis` (sparse: without centring ``X``)."""
    if is_sparse(X):
        return _ksparse.principal_axis(X, w, v0=v0, eigh_max_features=_spectral.EIGH_MAX_FEATURES)
    return _spectral.principal_axis(X, w, xp=xp, v0=v0)


def principal_axes_pass(
    X: Array,
    C: Array,
    V: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    xp: ModuleType,
    working_memory: Any = None,
) -> tuple[Array, Array]:
    """One power-iteration product per soft cluster:
    :func:`arbf._math.core.spectral.principal_axes_pass` (dense only)."""
    _no_sparse(X, "deterministic annealing (init='anneal')")
    return _spectral.principal_axes_pass(
        X, C, V, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
    )


def centre(X: Array, *, xp: ModuleType) -> tuple[Array, Array]:
    """``(mean, X - mean)``: the column means and the centred data (scikit-learn centres
    dense data before K-Means, for precision).  A sparse matrix is not centred (that
    would densify it; scikit-learn does not either): ``(0, X)``."""
    if is_sparse(X):
        return np.zeros(X.shape[1], dtype=X.dtype), X
    (mean,) = materialize(mean_rows(X, xp=xp), xp=xp)  # Dask: computed once and kept
    return mean, X - mean


def mean_variance(X: Array, *, xp: ModuleType) -> float:
    """``mean_f Var(X[:, f])`` as a host float (a host sync): scikit-learn's tolerance
    scale.  Host kernel (float64, one threaded sweep, no temporary the size of ``X``),
    sparse kernel (``mean_variance_axis``, float64), else
    ``xp.mean(xp.var(X, axis=0))``."""
    if is_sparse(X):
        return _ksparse.mean_variance(X)
    r, v = route(X)
    if r == HOST:
        return _hard.mean_variance(v[0])
    return float(to_host(xp.mean(xp.var(X, axis=0))))


def dense_rows(X: Array, idx: Any, *, xp: ModuleType) -> Array:
    """The rows ``idx`` (host integers; few: centers, candidates) as a dense array in
    ``X``'s namespace, device and dtype."""
    if is_sparse(X):
        return _ksparse.dense_rows(X, idx)
    return xp.take(
        X, from_host(np.asarray(idx, dtype=np.int64), xp=xp, device=device_of(X)), axis=0
    )


def take_rows(X: Array, idx: Any, *, xp: ModuleType) -> Array:
    """The rows ``idx`` (host integers) in ``X``'s own kind (a sparse matrix stays
    sparse: mini-batches, subsamples)."""
    if is_sparse(X):
        return _ksparse.take_rows(X, idx)
    return xp.take(
        X, from_host(np.asarray(idx, dtype=np.int64), xp=xp, device=device_of(X)), axis=0
    )


def labelled_distances(
    X: Array,
    C: Array,
    labels: Array,
    *,
    xp: ModuleType,
    working_memory: Any = None,
    shift: Array | None = None,
) -> Array:
    """``||x_i - c_{labels_i}||^2`` for every row of ``X`` (of ``X - shift``), computed
    directly: the host kernel (:func:`labelled_sq_distances`), the sparse one, else the
    reference over chunks (no temporary the size of ``X``)."""
    if is_sparse(X):
        return _ksparse.labelled_distances(X, C, to_host(labels), working_memory=working_memory)
    if route(X, C)[0] == HOST:
        budget_mb(working_memory)  # refused like every route's (the kernel needs no budget)
        return labelled_sq_distances(X, C, labels, xp=xp, shift=shift)
    rows = chunk_rows(X, 1, xp=xp, working_memory=working_memory)
    parts = []
    for a, b in iter_chunks(X.shape[0], rows):
        Xc = X[a:b, ...] if shift is None else X[a:b, ...] - shift
        parts.append(_d.labelled_sq_distances(Xc, C, labels[a:b], xp=xp))
    return parts[0] if len(parts) == 1 else xp.concat(parts)


# --------------------------------------------------------------------------------------
# Lloyd's step: the plain pass, or a bound method carrying its state between steps
# --------------------------------------------------------------------------------------


def resolve_algorithm(
    algorithm: str,
    n: int,
    d: int,
    k: int,
    dtype: Any,
    *,
    host: bool = True,
    max_iter: int = 300,
) -> str:
    """The assignment strategy that runs for ``algorithm`` on ``n`` samples of ``d``
    features and ``k`` centers: ``"lloyd"`` off the host route (the bound methods are
    host kernels), the named method on it, and for ``"auto"`` the rule measured on a
    2-core x86 machine (docs: "Choosing an algorithm"; the same for float32 and
    float64):

    - Lloyd when bounds cannot pay for their first pass: at most two iterations (the
      final assignment after one large move rarely skips a point), ``k < 2``, a tiny
      problem (``n k < 20000``), very cheap distances (``d <= 4`` and ``k <= 32``), or
      many large clusters (``k > 256`` and ``d > 32``: such fits take few iterations);
    - Yinyang for ``d >= 128``, where one distance costs a lot and its group bounds
      skip most of them;
    - Hamerly otherwise (one lower bound per point: the cheapest bookkeeping).
    """
    if not host or algorithm == "lloyd":
        return "lloyd"
    if algorithm != "auto":
        return algorithm
    if max_iter <= 2 or k < 2 or n * k < 20_000:
        return "lloyd"
    if (d <= 4 and k <= 32) or (k > 256 and d > 32):
        return "lloyd"
    return "yinyang" if d >= 128 else "hamerly"


class _LloydStepper:
    """Lloyd's plain pass behind the stepper interface of :func:`lloyd_stepper`."""

    def __init__(
        self,
        X: Array,
        w: Array | None,
        *,
        xp: ModuleType,
        working_memory: Any,
        shift: Array | None,
    ):
        self.X, self.w, self.xp, self.working_memory = X, w, xp, working_memory
        self.kw = {"xp": xp, "working_memory": working_memory, "shift": shift}

    def step(self, C: Array) -> tuple[Array, Array, Array, Array, int | None]:
        return (*lloyd_sums(self.X, C, self.w, **self.kw), None)

    def final(self, C: Array) -> tuple[Array, Array]:
        return assign_inertia(self.X, C, self.w, **self.kw)

    def converged(self, C: Array, labels: Array) -> tuple[Array, Array]:
        return labels, labelled_inertia(self.X, C, labels, self.w, **self.kw)


class _HostStepper:
    """A bound method (:class:`arbf._math.kernels.bounds.BoundedLloyd`) on host views;
    results in the input's kind."""

    def __init__(
        self,
        X: Array,
        views: tuple[Any, ...],
        method: str,
        working_memory: Any,
        shift: Array | None,
        warm: bool = False,
    ):
        self.X = X
        self.impl = _bounds.BoundedLloyd(
            views[0], views[2], method=method, working_memory=working_memory,
            shift=_host_shift(shift), warm=warm,
        )  # fmt: skip

    def _host(self, C: Array) -> np.ndarray:
        hc = host_view(C)  # C comes from the engine in X's kind: a host view exists
        assert hc is not None
        return hc

    def step(self, C: Array) -> tuple[Array, Array, Array, Array, int | None]:
        labels, sums, weights, inertia, changed = self.impl.step(self._host(C))
        return (*_back((labels, sums, weights, inertia), self.X), changed)

    def final(self, C: Array) -> tuple[Array, Array]:
        return _back(self.impl.final(self._host(C)), self.X)

    def converged(self, C: Array, labels: Array) -> tuple[Array, Array]:
        hl = np.asarray(host_view(labels, floats_only=False), dtype=np.intp)
        J = _hard.labelled_inertia(
            self.impl.X, self._host(C), hl, self.impl.w,
            working_memory=self.impl.working_memory, shift=self.impl.shift,
        )  # fmt: skip
        return _back((hl, J), self.X)


def lloyd_stepper(
    X: Array,
    w: Array | None,
    *,
    n_clusters: int,
    algorithm: str = "auto",
    max_iter: int = 300,
    xp: ModuleType,
    working_memory: Any = None,
    shift: Array | None = None,
    warm: bool = False,
) -> Any:
    """Lloyd's assignment step for the iterations of one run on ``X``.

    The returned object's ``step(C)`` gives ``(labels, sums, weights, J, changed)``
    (:func:`lloyd_sums`, and the number of labels changed since the previous step, or
    ``None`` when not counted), ``final(C)`` gives ``(labels, J)`` (:func:`assign_inertia`)
    and ``converged(C, labels)`` the same for the labels of the last step when they did
    not change (:func:`labelled_inertia`; equal bits).  On the host route a bound method
    (:mod:`arbf._math.kernels.bounds`, chosen by :func:`resolve_algorithm`) carries its
    bounds from step to step and skips the distances that cannot change a label, with
    the same results; elsewhere every ``algorithm`` is Lloyd's pass.  The labels a bound
    method returns are its state: valid until its next call.  With ``shift`` (only where
    :func:`lazily_centred`) the data are ``X - shift``, centred chunk by chunk.
    ``warm``: the run starts near a fixed point (a bound method keeps bounds from its
    first step; the results do not depend on it).
    """
    r, v = route(X, None, w)
    n, d = X.shape
    method = resolve_algorithm(
        algorithm, n, d, n_clusters, X.dtype, host=r == HOST, max_iter=max_iter
    )
    if method != "lloyd":
        return _HostStepper(X, v, method, working_memory, shift, warm)
    return _LloydStepper(X, w, xp=xp, working_memory=working_memory, shift=shift)


# --------------------------------------------------------------------------------------
# batched problems (a leading axis B): one implementation, the Array API reference with
# the backend's native scatter-add when fast paths are allowed (no host kernels: the
# batched products are the backend's own; no Dask)
# --------------------------------------------------------------------------------------

batched_sq_distances = _batched.sq_distances
batched_labelled_sq_distances = _batched.labelled_sq_distances
batched_sample_terms = _batched.sample_terms
batched_soft_from_gaps = _batched.soft_from_gaps
batched_safe_divide_centers = _batched.safe_divide_centers
batched_center_gradient = _batched.center_gradient
batched_step = _batched.step
batched_gather_centers = _batched.gather_centers
ema_update = _batched.ema_update


def _batched_host(X: Array, C: Array, w: Array | None) -> Any:
    """Host views of ``(X, C, w)`` when the batched host kernel can take them, else None:
    the ``"host"`` route's conditions with a leading batch axis."""
    if not (get_config().fast_paths and _runtime.HAVE_NUMBA):
        return None
    views = host_views(X, C, w)
    if views is None:
        return None
    Xh, Ch, wh = views
    if Xh is None or Ch is None:
        return None
    if Xh.ndim != 3 or Xh.dtype not in _FLOATS or Ch.dtype != Xh.dtype or Ch.ndim != 3:
        return None
    if wh is not None and (wh.shape != Xh.shape[:2] or wh.dtype.kind != "f"):
        return None
    return views


def batched_prepare(X: Array, *, xp: ModuleType) -> Array:
    """``X`` laid out for the batched passes: C-contiguous on the host route (one copy,
    made once per fit instead of once per pass), unchanged elsewhere."""
    v = _batched_host(X, X[:, :1, :], None)
    if v is None or v[0].flags.c_contiguous:
        return X
    return like_view(np.ascontiguousarray(v[0]), X)


def batched_lloyd_sums(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any = None
) -> tuple[Array, Array, Array, Array]:
    """``(labels, sums, weights, J)`` of every problem: :func:`arbf._math.core.batched.lloyd_sums`
    (host: :func:`arbf._math.kernels.batched.lloyd_sums`)."""
    v = _batched_host(X, C, w)
    if v is not None:
        return _back(_kbatched.lloyd_sums(*v, working_memory=working_memory), X)
    return _batched.lloyd_sums(
        X, C, w, xp=xp, working_memory=working_memory,
        segment_sum_native=_native_segment_sum(xp),
    )  # fmt: skip


def batched_assign_inertia(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any = None
) -> tuple[Array, Array]:
    """Labels ``(B, n)`` and inertia ``(B,)``: :func:`arbf._math.core.batched.assign_inertia`
    (host: :func:`arbf._math.kernels.batched.lloyd_sums` without the sums)."""
    v = _batched_host(X, C, w)
    if v is not None:
        out = _kbatched.lloyd_sums(*v, working_memory=working_memory, do_sums=False)
        return _back((out[0], out[3]), X)
    return _batched.assign_inertia(X, C, w, xp=xp, working_memory=working_memory)


def batched_soft_stats(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    xp: ModuleType,
    working_memory: Any = None,
    sigmas: Array | None = None,
    counts: np.ndarray | None = None,
) -> SoftStats:
    """The soft statistics of every problem: :func:`arbf._math.core.batched.soft_stats`
    (``sigmas``: per-problem temperatures ``(B,)``; host: the compiled kernels over
    (problem, chunk) tiles, :func:`arbf._math.kernels.batched.lloyd_sums` for the hard
    statistics and :func:`arbf._math.kernels.batched_soft.soft_stats` for the soft).
    ``counts`` (host ints ``(B,)``, soft only, with ``sigmas``): problem ``b`` uses its
    first ``counts[b]`` centers (:func:`arbf._math.core.batched_anneal.masked_soft_stats`)."""
    v = _batched_host(X, C, w)
    if counts is not None:
        assert sigmas is not None and sigma != 0 and kind != "hard"
        if v is not None:
            part = _kbatched_soft.soft_stats(
                *v, sigmas=to_host(sigmas), kind=kind, working_memory=working_memory,
                counts=counts,
            )  # fmt: skip
            return SoftStats(*_back(part, X))
        return _batched_anneal.masked_soft_stats(
            X, C, w, sigmas=sigmas, active=_active(counts, C, xp=xp), kind=kind, xp=xp,
            working_memory=working_memory,
        )  # fmt: skip
    if v is not None:
        if sigma == 0 or kind == "hard":
            _, sums, mass, J = _kbatched.lloyd_sums(*v, working_memory=working_memory)
            out: tuple[np.ndarray, ...] = (sums, mass, J, J.copy(), J.copy(), np.zeros_like(J))
        else:
            sig = np.full(X.shape[0], float(sigma)) if sigmas is None else to_host(sigmas)
            out = _kbatched_soft.soft_stats(
                *v, sigmas=sig, kind=kind, working_memory=working_memory
            )
        return SoftStats(*_back(out, X))
    return _batched.soft_stats(
        X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory,
        segment_sum_native=_native_segment_sum(xp), sigmas=sigmas,
    )  # fmt: skip


def batched_responsibilities(
    X: Array, C: Array, *, sigma: float, kind: str, xp: ModuleType, working_memory: Any = None
) -> Array:
    """``(B, n, k)``: :func:`arbf._math.core.batched.responsibilities`."""
    return _batched.responsibilities(
        X, C, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
    )


batched_mean_rows = _batched_anneal.mean_rows
batched_covariance = _batched_anneal.covariance
batched_min_margin = _batched_anneal.min_margin


def batched_principal_value(X: Array, w: Array | None, *, xp: ModuleType) -> np.ndarray:
    """:math:`\\lambda_{\\max}(\\mathrm{Cov}_{w_b} X_b)` of every problem, a host float64
    ``(B,)`` (:func:`principal_axis` per problem): up to
    :data:`arbf._math.core.spectral.EIGH_MAX_FEATURES` features one batched covariance
    and a stacked ``eigh`` on the host (one host sync); above, power iteration problem
    by problem."""
    B, _, d = X.shape
    if d <= _spectral.EIGH_MAX_FEATURES:
        cov = to_host(batched_covariance(X, w, xp=xp)).astype(np.float64)
        return np.maximum(np.linalg.eigvalsh(cov)[:, -1], 0.0)
    return np.asarray(
        [principal_axis(X[b, ...], None if w is None else w[b, ...], xp=xp)[0] for b in range(B)]
    )


def _active(counts: np.ndarray, C: Array, *, xp: ModuleType) -> Array:
    """``(B, k)`` mask of the first ``counts[b]`` centers of every problem."""
    k = C.shape[1]
    mask = np.arange(k)[None, :] < np.asarray(counts)[:, None]
    return from_host(mask, xp=xp, device=device_of(C))


def batched_principal_axis(
    X: Array, w: Array | None, *, xp: ModuleType, v0: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(λ_max (B,), v (B, d))`` of every problem's weighted covariance, host float64:
    :func:`principal_axis` per problem (up to ``EIGH_MAX_FEATURES`` features one batched
    covariance and a stacked ``eigh``; above, power iteration from ``v0[b]`` problem by
    problem)."""
    B, _, d = X.shape
    if d <= _spectral.EIGH_MAX_FEATURES:
        cov = to_host(batched_covariance(X, w, xp=xp)).astype(np.float64)
        vals, vecs = np.linalg.eigh(cov)
        return np.maximum(vals[:, -1], 0.0), vecs[:, :, -1]
    pairs = [
        principal_axis(X[b, ...], None if w is None else w[b, ...], xp=xp, v0=v0[b])
        for b in range(B)
    ]
    return np.asarray([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def batched_principal_axes_pass(
    X: Array,
    C: Array,
    V: Array,
    w: Array | None,
    *,
    sigmas: Array,
    counts: np.ndarray,
    kind: str,
    xp: ModuleType,
    working_memory: Any = None,
) -> tuple[Array, Array]:
    """``(A, N)`` of every problem's first ``counts[b]`` centers:
    :func:`arbf._math.core.batched_anneal.principal_axes_pass`."""
    return _batched_anneal.principal_axes_pass(
        X, C, V, w, sigmas=sigmas, active=_active(counts, C, xp=xp), kind=kind, xp=xp,
        working_memory=working_memory,
    )  # fmt: skip


def batched_utilities(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any = None
) -> Array:
    """``[U, E]`` per center of every problem (``(B, k, 2)``):
    :func:`arbf._math.core.batched_anneal.utilities`."""
    return _batched_anneal.utilities(
        X, C, w, xp=xp, working_memory=working_memory,
        segment_sum_native=_native_segment_sum(xp),
    )  # fmt: skip
