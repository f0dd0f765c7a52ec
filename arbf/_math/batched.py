r"""Batched inputs for the public math functions: validation and the batched calls.

A data array with three dimensions, ``X`` of shape ``(B, n, d)``, holds B independent
problems; centers are then ``(B, k, d)`` and weights ``(B, n)`` (or ``(n,)``, shared by
every problem).  :func:`arbf.responsibilities`, :func:`arbf.lloyd_step`,
:func:`arbf.soft_lloyd_step`, :func:`arbf.gradient_step`, :func:`arbf.inertia`,
:func:`arbf.soft_distortion`, :func:`arbf.free_energy` and :func:`arbf.center_gradient`
hand such input here; the result of problem ``b`` is that of the same function on
``X[b]``, ``centers[b]`` (to rounding: batched matrix products instead of the compiled
kernels), computed without a Python loop over B, for both metrics (``metric="cosine"``:
every row of every problem normalised, the Euclidean pass on the unit rows at 2σ, its
objectives halved and its updated centers projected onto the sphere).  Objectives come
back as ``(B,)`` arrays.  Dask arrays are refused: a batch of problems is not split by rows.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._backend import Array, array_namespace, device_of, is_dask, is_sparse, to_host
from .._validation import (
    as_array,
    check_centers,
    check_data,
    check_sample_weight,
)
from . import seam
from .metric import prepare, project

__all__ = [
    "check_batched_centers",
    "check_batched_data",
    "check_batched_triple",
    "check_batched_weights",
    "is_batched",
]

_DASK_MESSAGE = (
    "batched input (a leading batch axis, X of shape (B, n, d)) is not supported for Dask "
    "arrays: run one problem per call (X[b] of shape (n, d)), or compute the batch first"
)


def is_batched(X: Any) -> bool:
    """Whether ``X`` is an array with three dimensions (B problems)."""
    return not is_sparse(X) and getattr(X, "ndim", None) == 3


def check_batched_data(X: Any, *, name: str = "X") -> tuple[Array, ModuleType]:
    """A ``(B, n, d)`` data array: every problem validated as :func:`check_data` (real,
    finite, promoted to a float dtype).  Dask is refused (``TypeError``)."""
    X = as_array(X, name)
    xp = array_namespace(X)
    if is_dask(xp):
        raise TypeError(_DASK_MESSAGE)
    if X.ndim != 3:
        raise ValueError(f"{name} must have shape (B, n, d); got shape {tuple(X.shape)}")
    B, n, d = (int(s) for s in X.shape)
    if B < 1 or n < 1 or d < 1:
        raise ValueError(f"{name} must have shape (B, n, d) with B, n, d >= 1; got {X.shape}")
    X2, xp = check_data(xp.reshape(X, (B * n, d)), name=name)
    return xp.reshape(X2, (B, n, d)), xp


def check_batched_centers(
    centers: Any, n_clusters: int | None, X: Array, *, xp: ModuleType, name: str = "centers"
) -> Array:
    """``(B, k, d)`` centers for ``X`` ``(B, n, d)`` (copied; ``X``'s namespace, device
    and dtype), every problem validated as :func:`arbf._validation.check_centers`."""
    B, _, d = X.shape
    C = as_array(centers, name)
    if C.ndim != 3 or C.shape[0] != B or C.shape[2] != d:
        raise ValueError(
            f"{name} must have shape (B, k, d) = ({B}, k, {d}) for X of shape "
            f"{tuple(X.shape)}; got shape {tuple(C.shape)}"
        )
    k = int(C.shape[1])
    if n_clusters is not None and k != n_clusters:
        raise ValueError(
            f"The shape of the initial centers {tuple(C.shape)} does not match the number "
            f"of clusters {n_clusters}."
        )
    if k < 1:
        raise ValueError(f"{name} must hold at least one center")
    cxp = array_namespace(C)
    flat = cxp.reshape(C, (B * k, d))
    C2 = check_centers(
        flat, None, d, xp=xp, dtype=X.dtype, device=device_of(X), like=X[0, ...], name=name
    )
    return xp.reshape(C2, (B, k, d))


def check_batched_weights(sample_weight: Any, X: Array, *, xp: ModuleType) -> Array | None:
    """Weights ``(B, n)`` (or ``(n,)``, shared by every problem; or ``None``): finite,
    non-negative, each problem's summing to a positive total."""
    if sample_weight is None:
        return None
    B, n, _ = X.shape
    dev = device_of(X)
    sw = as_array(sample_weight, "sample_weight")
    if getattr(sw, "ndim", 0) == 1:
        w1 = check_sample_weight(sw, n, xp=xp, dtype=X.dtype, device=dev, like=X[0, ...])
        assert w1 is not None
        return xp.broadcast_to(w1[None, :], (B, n))
    if getattr(sw, "ndim", 0) != 2 or tuple(sw.shape) != (B, n):
        raise ValueError(
            f"sample_weight must have shape (B, n) = ({B}, {n}) or (n,); got shape "
            f"{tuple(getattr(sw, 'shape', ()))}"
        )
    swxp = array_namespace(sw)
    w = check_sample_weight(
        swxp.reshape(sw, (B * n,)), B * n, xp=xp, dtype=X.dtype, device=dev, like=X[0, ...]
    )
    assert w is not None
    w = xp.reshape(w, (B, n))
    if not bool(to_host(xp.all(xp.sum(w, axis=1) > 0))):
        raise ValueError("sample_weight sums to zero for a problem; each needs a positive total")
    return w


def check_batched_triple(
    X: Any, centers: Any, sample_weight: Any = None
) -> tuple[Array, Array, Array | None, ModuleType]:
    """``(X, centers, sample_weight, xp)`` of a batched math call."""
    X, xp = check_batched_data(X)
    C = check_batched_centers(centers, None, X, xp=xp)
    return X, C, check_batched_weights(sample_weight, X, xp=xp), xp


# the batched bodies of the public functions (validated arguments except X, C, w); with
# metric="cosine" every row of X and C is put on the sphere (:func:`metric.prepare`), σ is
# doubled, the Euclidean batched pass runs on the unit rows and its objectives are halved
# and its updated centers projected, exactly as for one problem


def _triple(
    X: Any, centers: Any, sample_weight: Any, metric: str, sigma: float = 0.0
) -> tuple[Array, Array, Array | None, ModuleType, float, float]:
    """``(X, C, w, xp, sigma, half)``: :func:`check_batched_triple`, then for the cosine
    metric the rows on the sphere, σ doubled and ``half = 0.5``."""
    X, C, w, xp = check_batched_triple(X, centers, sample_weight)
    X, C, sigma, half = prepare(X, C, metric, xp=xp, sigma=sigma)
    return X, C, w, xp, sigma, half


def responsibilities(
    X: Any, centers: Any, *, sigma: float, kind: str, working_memory: Any,
    metric: str = "sqeuclidean",
) -> Array:  # fmt: skip
    X, C, _, xp, sigma, _ = _triple(X, centers, None, metric, sigma)
    return seam.batched_responsibilities(
        X, C, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
    )


def soft_stats(
    X: Any, centers: Any, sample_weight: Any, *, sigma: float, kind: str, working_memory: Any,
    metric: str = "sqeuclidean",
) -> tuple[Array, seam.SoftStats, float]:  # fmt: skip
    """``(C, statistics, half)``: the statistics of the (for "cosine": unit) rows, whose
    objectives times ``half`` are the metric's."""
    X, C, w, xp, sigma, half = _triple(X, centers, sample_weight, metric, sigma)
    st = seam.batched_soft_stats(
        X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory
    )
    return C, st, half


def step(
    X: Any, centers: Any, sample_weight: Any, *, sigma: float, kind: str, lr: Any,
    working_memory: Any, metric: str = "sqeuclidean",
) -> Array:  # fmt: skip
    C, st, half = soft_stats(
        X, centers, sample_weight, sigma=sigma, kind=kind, working_memory=working_memory,
        metric=metric,
    )  # fmt: skip
    xp = array_namespace(C)
    if half == 1.0:
        return seam.batched_step(C, st.mass, st.sums, lr, xp=xp)
    # the cosine gradient is half the Euclidean one at 2σ: a step lr on it is a step lr/2
    # on the Euclidean form ("lloyd" lands on the soft centroid either way), then the
    # projection onto the sphere (a center whose sum is exactly 0 keeps its unit row)
    C_new = seam.batched_step(C, st.mass, st.sums, lr if isinstance(lr, str) else lr / 2, xp=xp)
    return project(C_new, C, xp=xp)


def inertia(
    X: Any, centers: Any, sample_weight: Any, *, working_memory: Any,
    metric: str = "sqeuclidean",
) -> Array:  # fmt: skip
    X, C, w, xp, _, half = _triple(X, centers, sample_weight, metric)
    J = seam.batched_assign_inertia(X, C, w, xp=xp, working_memory=working_memory)[1]
    return J * half if half != 1.0 else J


def center_gradient(C: Array, st: seam.SoftStats, half: float = 1.0) -> Array:
    G = seam.batched_center_gradient(C, st.mass, st.sums)
    return G * half if half != 1.0 else G
