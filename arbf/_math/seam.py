"""The seam: the one module that decides which implementation of each operation runs.

Drivers, estimators and integrations call only this module for computation.  For every
operation it makes one decision through one capability check, :func:`route`:

- ``"host"`` — the arrays are NumPy arrays, or CPU torch tensors that need no gradient
  (zero-copy views), of float32/float64, the configuration allows fast paths
  (:func:`arbf.get_config`) and numba is there: the compiled kernels of
  :mod:`arbf._math.kernels` run, and results come back in the input's kind;
- ``"dask"`` — a Dask array of NumPy blocks (one column chunk): the same kernels run
  once per row block (:mod:`arbf._math.kernels.dask`);
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
    has_float64,
    host_view,
    host_views,
    is_dask,
    is_traced,
    itemsize,
    like_view,
    materialize,
    to_host,
)
from .._chunking import budget_mb
from .._config import get_config
from .core import distances as _d
from .core import entmax as _entmax
from .core import soft as _soft
from .core.distances import (
    dist_to_rows,
    labelled_sq_distances,
    min_margin,
    pairwise_distances,
    sq_distances,
    sq_norms,
    two_nearest,
)
from .core.entmax import entmax15_sqrt, entmax_bisect, sparsemax
from .core.matching import linear_assignment
from .core.responsibilities import (
    from_distances,
    onehot,
    responsibilities,
    score_sigma,
    soft_from_gaps,
)
from .core.schedules import geometric
from .core.segments import onehot_segment_sum
from .core.soft import SoftStats, free_energy_at, free_energy_base
from .core.spectral import covariance, principal_axes_pass, principal_axis
from .core.terms import OBJECTIVES, SampleTerms, reduce_terms, sample_terms, select_objective
from .core.updates import center_gradient, running_mean_step, safe_divide_centers, step
from .kernels import dask as _kdask
from .kernels import entmax as _kentmax
from .kernels import hard as _hard
from .kernels import runtime as _runtime
from .kernels import soft as _ksoft
from .kernels.segments import native_segment_sum

__all__ = [
    "OBJECTIVES",
    "SampleTerms",
    "SoftStats",
    "assign",
    "assign_inertia",
    "center_gradient",
    "covariance",
    "dist_to_rows",
    "entmax15",
    "entmax15_sqrt",
    "entmax_bisect",
    "extent",
    "free_energy_at",
    "free_energy_base",
    "from_distances",
    "geometric",
    "inertia",
    "labelled_inertia",
    "labelled_sq_distances",
    "linear_assignment",
    "lloyd_sums",
    "mean_rows",
    "min_margin",
    "nearest_labels",
    "onehot",
    "pairwise_distances",
    "principal_axes_pass",
    "principal_axis",
    "reduce_terms",
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
    "two_nearest",
    "utilities",
]

HOST, DASK, PURE = "host", "dask", "pure"
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
    ``"dask"`` or ``"pure"`` (``views`` is ``None``); see the module docstring.
    """
    if not (get_config().fast_paths and _runtime.HAVE_NUMBA):
        return PURE, None
    if type(X).__module__.startswith("dask"):
        return (DASK, None) if _dask_blocks_ok(X, C, w) else (PURE, None)
    views = host_views(X, C, w)
    if views is None or not _host_ok(views):
        return PURE, None
    return HOST, views


def _native_segment_sum(xp: ModuleType) -> Any:
    return native_segment_sum(xp) if get_config().fast_paths else None


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
    if r == HOST:
        return _back(_hard.assign(v[0], v[1], working_memory=working_memory), X)
    return _d.assign(X, C, xp=xp, working_memory=working_memory)


def assign_inertia(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any = None
) -> tuple[Array, Array]:
    """``(labels, J)``: :func:`arbf._math.core.distances.assign_inertia`."""
    r, v = route(X, C, w)
    if r == HOST:
        return _back(_hard.assign_inertia(*v, working_memory=working_memory), X)
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
) -> Array:
    """``Σ_i w_i ||x_i - c_{labels_i}||^2`` (0-d), equal to :func:`assign_inertia`'s
    inertia for the nearest-center labels: :func:`arbf._math.core.distances.labelled_inertia`."""
    r, v = route(X, C, w)
    if r == HOST:
        hl = host_view(labels, floats_only=False)
        if hl is not None:
            out = _hard.labelled_inertia(v[0], v[1], hl, v[2], working_memory=working_memory)
            return like_view(out, X)
    return _d.labelled_inertia(X, C, labels, w, xp=xp, working_memory=working_memory)


def lloyd_sums(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any = None
) -> tuple[Array, Array, Array, Array]:
    """``(labels, sums, weights, J)``: :func:`arbf._math.core.distances.lloyd_sums`."""
    r, v = route(X, C, w)
    if r == HOST:
        return _back(_hard.lloyd_sums(*v, working_memory=working_memory), X)
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
    if any(is_traced(a) for a in arrs):
        return float("nan")
    if not arrs:
        return 0.0
    parts = [xp.astype(p, xp.float64 if has_float64(xp) else p.dtype) for a in arrs
             for p in (xp.max(a), -xp.min(a))]  # fmt: skip
    (stacked,) = materialize(xp.stack(parts), xp=xp)
    return float(np.max(to_host(stacked).astype(np.float64)))


def mean_rows(X: Array, *, xp: ModuleType) -> Array:
    """Column means of ``X`` in its dtype: :func:`arbf._math.core.distances.mean_rows`."""
    r, v = route(X)
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
