r"""Sparse probability maps: entmax-1.5 (exact, sort-based), α-entmax by bisection, sparsemax.

α-entmax (Peters, Niculae & Martins 2019) maps a score vector :math:`z` to the
probability vector

.. math::

    p_j = \big[(\alpha - 1) z_j - \tau\big]_+^{1/(\alpha-1)},
    \qquad \tau \text{ such that } \textstyle\sum_j p_j = 1,

the maximiser of :math:`p\cdot z + H^T_\alpha(p)` over the simplex (Tsallis entropy).
``α → 1`` is softmax, ``α = 1.5`` is entmax-1.5 (:math:`p_j = [z_j/2 - \tau]_+^2`) and
``α = 2`` is sparsemax (Martins & Astudillo 2016), the Euclidean projection onto the
simplex.

Two layers: the ``*_impl`` functions take ``xp`` and a floating array and work along the
last axis with pure array operations (no host sync, no data-dependent shapes, no
in-place writes), so they are differentiable under torch autograd and ``jax.grad`` and
their autodiff Jacobian is the closed form.  The public functions validate, move ``axis``
last and back, compute half precision in float32, and pick the bisection path on backends
without ``take_along_axis``/``sort`` (Dask).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .._backend import (
    Array,
    array_namespace,
    device_of,
    has_take_along_axis,
    host_view,
    is_traced,
    like_view,
    map_rows,
    to_host,
    working_dtype,
)
from .._validation import as_array
from . import fast_soft_numpy

__all__ = [
    "entmax15",
    "entmax15_impl",
    "entmax15_sqrt_impl",
    "entmax_bisect",
    "entmax_bisect_impl",
    "sparsemax",
    "sparsemax_impl",
]

# After the max-shift, a coordinate with (α-1) z_j below -1 is never in the support
# (τ >= max - 1); clamping to this floor keeps the sort-based statistics finite for huge
# score ranges without changing the result (or its gradient, which is 0 there).
_FLOOR = -2.0


def _shifted(y: Array, *, xp: ModuleType) -> Array:
    """``y - max(y)`` along the last axis, clamped below at ``_FLOOR``."""
    y = y - xp.max(y, axis=-1, keepdims=True)
    return xp.clip(y, _FLOOR, None)


def _ranks(y: Array, *, xp: ModuleType) -> Array:
    k = y.shape[-1]
    return xp.arange(1, k + 1, dtype=y.dtype, device=device_of(y))


def _index_dtype(xp: ModuleType, x: Array) -> Any:
    """The namespace's default indexing dtype (int32 on JAX without x64)."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device_of(x))["indexing"]
    except Exception:  # pragma: no cover - namespace without the inspection API
        return xp.int64


def _entmax15_sqrt_sort(z: Array, *, xp: ModuleType) -> Array:
    """``u = [z/2 - τ]_+`` (so that entmax-1.5 is ``u**2``), exact sort-based algorithm."""
    y = _shifted(z / 2.0, xp=xp)
    ys = xp.sort(y, axis=-1, descending=True)
    rho = _ranks(y, xp=xp)
    mean = xp.cumulative_sum(ys, axis=-1) / rho
    mean_sq = xp.cumulative_sum(ys * ys, axis=-1) / rho
    delta = (1.0 - rho * (mean_sq - mean * mean)) / rho
    # τ for each candidate support size; the support is the set of sizes where τ <= ys
    tau = mean - xp.sqrt(xp.clip(delta, 0.0, None))
    support = xp.sum(xp.astype(tau <= ys, _index_dtype(xp, y)), axis=-1, keepdims=True)
    idx = support - 1
    # gather mean and delta (> 0 at the true support size) rather than τ, so that the
    # unselected sqrt(0) never enters the autodiff graph of the result
    mean_s = xp.take_along_axis(mean, idx, axis=-1)
    delta_s = xp.take_along_axis(delta, idx, axis=-1)
    tau_s = mean_s - xp.sqrt(delta_s)
    return xp.clip(y - tau_s, 0.0, None)


def _bisect_tau(y: Array, alpha: float, n_iter: int, *, xp: ModuleType) -> tuple[Array, Array]:
    """Bisection for τ on max-shifted ``y = (α-1) z``; returns ``(τ_lo, width)``."""
    k = y.shape[-1]
    inv = 1.0 / (alpha - 1.0)
    lo = xp.full_like(y[..., :1], -1.0)  # f(lo) >= 0: the max coordinate alone gives 1
    width = 1.0 - float(k) ** (1.0 - alpha)
    for _ in range(n_iter):
        width /= 2.0
        mid = lo + width
        u = xp.clip(y - mid, 0.0, None)
        p = u * u if inv == 2.0 else (u if inv == 1.0 else u**inv)
        lo = xp.where(xp.sum(p, axis=-1, keepdims=True) >= 1.0, mid, lo)
    return lo, width


def _support_tau(y: Array, support: Array, alpha: float, *, xp: ModuleType) -> Array:
    """τ from a known support (closed form for α = 1.5 and 2, else one Newton step).

    Computed with differentiable array operations on the fixed support mask, so its
    autodiff derivative is the implicit-function derivative of τ.
    """
    m = xp.astype(support, y.dtype)
    s = xp.sum(m, axis=-1, keepdims=True)
    ym = xp.where(support, y, xp.zeros_like(y))
    if alpha == 2.0:
        return (xp.sum(ym, axis=-1, keepdims=True) - 1.0) / s
    if alpha == 1.5:
        mean = xp.sum(ym, axis=-1, keepdims=True) / s
        dev = xp.where(support, y - mean, xp.zeros_like(y))
        ss = xp.sum(dev * dev, axis=-1, keepdims=True)
        return mean - xp.sqrt((1.0 - ss) / s)
    raise AssertionError("general α uses a Newton step")  # pragma: no cover


def _newton_tau(y: Array, tau: Array, alpha: float, *, xp: ModuleType) -> Array:
    """One Newton step on ``f(τ) = Σ [y - τ]_+^{1/(α-1)} - 1`` (exact derivative of τ)."""
    inv = 1.0 / (alpha - 1.0)
    u = xp.clip(y - tau, 0.0, None)
    pos = u > 0.0
    safe_u = xp.where(pos, u, xp.ones_like(u))
    f = xp.sum(u**inv, axis=-1, keepdims=True) - 1.0
    fprime = xp.sum(xp.where(pos, safe_u ** (inv - 1.0), xp.zeros_like(u)), axis=-1, keepdims=True)
    fprime = inv * fprime
    ok = fprime > 0.0
    return tau + xp.where(ok, f / xp.where(ok, fprime, xp.ones_like(fprime)), xp.zeros_like(f))


def entmax_bisect_impl(z: Array, *, alpha: float, n_iter: int = 50, xp: ModuleType) -> Array:
    """α-entmax along the last axis by bisection on τ (pure array operations).

    ``n_iter`` halvings bracket τ to ``2**-n_iter``; τ is then recomputed from the
    support found (closed form for α ∈ {1.5, 2}, one Newton step otherwise) and the
    result renormalised.
    """
    y = _shifted(z * (alpha - 1.0), xp=xp)
    lo, width = _bisect_tau(y, alpha, n_iter, xp=xp)
    if alpha in (1.5, 2.0):
        tau = _support_tau(y, y > lo + width / 2.0, alpha, xp=xp)
    else:
        tau = _newton_tau(y, lo + width / 2.0, alpha, xp=xp)
    p = xp.clip(y - tau, 0.0, None) ** (1.0 / (alpha - 1.0))
    return p / xp.sum(p, axis=-1, keepdims=True)


def entmax15_sqrt_impl(z: Array, *, xp: ModuleType) -> Array:
    """``u = sqrt(entmax15(z))`` along the last axis, so ``p = u**2`` and ``p**1.5 = u**3``.

    Working with ``u`` keeps the Tsallis entropy differentiable at ``p = 0`` (no
    ``sqrt(0)`` in the autodiff graph).  Sort-based where the backend has
    ``take_along_axis``, bisection otherwise.
    """
    if has_take_along_axis(xp) and hasattr(xp, "cumulative_sum"):
        return _entmax15_sqrt_sort(z, xp=xp)
    return map_rows(_entmax15_sqrt_bisect, z, xp=xp)


def _entmax15_sqrt_bisect(z: Array, *, xp: ModuleType) -> Array:
    """``u = sqrt(entmax15(z))`` by bisection (backends without ``take_along_axis``)."""
    y = _shifted(z / 2.0, xp=xp)
    # the bisection only has to find the support: an entry within 2**-32 of τ carries
    # p <= 2**-64, and τ is then exact from the support's closed form
    lo, width = _bisect_tau(y, 1.5, 32, xp=xp)
    tau = _support_tau(y, y > lo + width / 2.0, 1.5, xp=xp)
    u = xp.clip(y - tau, 0.0, None)
    return u / xp.sqrt(xp.sum(u * u, axis=-1, keepdims=True))


def entmax15_impl(z: Array, *, xp: ModuleType) -> Array:
    """Exact entmax-1.5 along the last axis (pure array operations)."""
    u = entmax15_sqrt_impl(z, xp=xp)
    return u * u


def _sparsemax_bisect(z: Array, *, xp: ModuleType) -> Array:
    return entmax_bisect_impl(z, alpha=2.0, xp=xp)


def sparsemax_impl(z: Array, *, xp: ModuleType) -> Array:
    """Exact sparsemax along the last axis (sort-based; bisection without ``take_along_axis``)."""
    if not (has_take_along_axis(xp) and hasattr(xp, "cumulative_sum")):
        return map_rows(_sparsemax_bisect, z, xp=xp)
    y = _shifted(z, xp=xp)
    ys = xp.sort(y, axis=-1, descending=True)
    rho = _ranks(y, xp=xp)
    cs = xp.cumulative_sum(ys, axis=-1)
    support = xp.sum(xp.astype(1.0 + rho * ys > cs, _index_dtype(xp, y)), axis=-1, keepdims=True)
    cs_s = xp.take_along_axis(cs, support - 1, axis=-1)
    tau = (cs_s - 1.0) / xp.astype(support, y.dtype)
    return xp.clip(y - tau, 0.0, None)


# --------------------------------------------------------------------------------------
# public layer
# --------------------------------------------------------------------------------------


def _prepare(z: Any, axis: Any, name: str = "z") -> tuple[Array, ModuleType, Any, int]:
    """Validate ``z`` and ``axis``; return ``(z_last, xp, out_dtype, axis)``.

    ``z_last`` has ``axis`` moved last and is in the working dtype (half precision ->
    float32; integers -> the default float).
    """
    z = as_array(z, name)
    if isinstance(z, np.ndarray) and z.dtype.kind not in "biuf":
        raise TypeError(f"{name} has unsupported dtype {z.dtype}; expected real numbers")
    xp = array_namespace(z)
    if z.ndim < 1:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d array")
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    axis = int(axis)
    if not -z.ndim <= axis < z.ndim:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {z.ndim}")
    axis %= z.ndim
    if z.shape[axis] == 0:
        raise ValueError(f"{name} has size 0 along axis {axis}")
    dt = z.dtype
    try:
        wdt = working_dtype(xp, dt, device_of(z))
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from exc
    out_dtype = dt if xp.isdtype(dt, "real floating") else wdt
    if wdt != dt:
        z = xp.astype(z, wdt)
    if not is_traced(z):
        # one pass: a sum that is finite or -inf proves no NaN and no +inf; otherwise (or
        # when finite scores overflow the sum) scan elementwise
        total = xp.sum(z)
        clean = bool(to_host(xp.isfinite(total) | (total == float("-inf"))))
        bad = not clean and bool(to_host(xp.any(xp.isnan(z) | (z == float("inf")))))
        if bad:
            raise ValueError(f"{name} contains NaN or +inf; scores must be finite (or -inf)")
    if axis != z.ndim - 1:
        z = xp.moveaxis(z, axis, -1)
    return z, xp, out_dtype, axis


def _finish(p: Array, xp: ModuleType, out_dtype: Any, axis: int) -> Array:
    if axis != p.ndim - 1:
        p = xp.moveaxis(p, -1, axis)
    if p.dtype != out_dtype:
        p = xp.astype(p, out_dtype)
    return p


def entmax15(z: Any, /, *, axis: int = -1) -> Array:
    r"""Exact entmax-1.5 along ``axis`` (Peters, Niculae & Martins 2019).

    .. math::

        \operatorname{entmax}_{1.5}(z)_j = \big[z_j/2 - \tau\big]_+^2,
        \qquad \tau \text{ such that } \textstyle\sum_j p_j = 1 .

    It is the maximiser over the simplex of :math:`p\cdot z + H(p)` with the Tsallis-1.5
    entropy :math:`H(p) = \tfrac43 \sum_j (p_j - p_j^{3/2})`: sparse (exact zeros), and
    invariant to adding a constant to ``z``.  Computed by the exact sort-based algorithm
    (sort, running mean and mean of squares, threshold, clamp) on the max-shifted scores;
    on backends without ``take_along_axis`` (Dask) by bisection on τ followed by the exact
    closed form on the support found.  The operations are differentiable under torch
    autograd and ``jax.grad``; the Jacobian-vector product is the closed form
    :math:`g = \sqrt p,\; dz = g\,dy - g\,\frac{\sum g\,dy}{\sum g}`.

    In the RBF network the scores are :math:`z_{ij} = -D_{ij}/\sigma` (σ divides the
    squared distance; a Gaussian of width :math:`s` is :math:`\sigma = 2s^2`).

    Parameters
    ----------
    z : array
        Real scores, any Array API namespace.  ``-inf`` entries get probability 0.
        Half-precision input is computed in float32 and returned in its own dtype;
        integer input is promoted to the default floating dtype.
    axis : int, default -1
        The axis along which the probabilities sum to one.

    Returns
    -------
    p : array
        Same shape, namespace and device as ``z``; non-negative, sums to 1 along ``axis``.

    Raises
    ------
    TypeError
        If ``z`` is not real numeric.
    ValueError
        If ``z`` contains NaN or ``+inf``, or ``axis`` is out of range.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> arbf.entmax15(xp.asarray([0.0, -0.4, -6.0]))
    Array([0.64, 0.36, 0.  ], dtype=array_api_strict.float64)
    """
    zl, xp, out_dtype, axis = _prepare(z, axis)
    zh = host_view(zl)
    if zh is not None and fast_soft_numpy.entmax15_applies(z2 := zh.reshape(-1, zh.shape[-1])):
        # NumPy (and CPU torch without autograd): the compiled row kernel, same threshold
        # found by Newton with an exact support check instead of a sort; entmax15_impl is
        # its tested reference
        p = like_view(fast_soft_numpy.entmax15_rows(z2).reshape(zh.shape), zl)
        return _finish(p, xp, out_dtype, axis)
    return _finish(entmax15_impl(zl, xp=xp), xp, out_dtype, axis)


def entmax_bisect(z: Any, /, *, alpha: float = 1.5, axis: int = -1, n_iter: int = 50) -> Array:
    r"""α-entmax along ``axis`` by bisection on the threshold τ, for any α > 1.

    .. math::

        \operatorname{entmax}_\alpha(z)_j = \big[(\alpha-1) z_j - \tau\big]_+^{1/(\alpha-1)},
        \qquad \textstyle\sum_j p_j = 1 .

    ``α = 1.5`` is :func:`entmax15`, ``α = 2`` is :func:`sparsemax`, ``α → 1`` tends to
    softmax.  τ is bracketed in :math:`[\max - 1,\ \max - k^{1-\alpha}]` (on
    :math:`(\alpha-1)z`) and halved ``n_iter`` times (50 brackets it to
    :math:`2^{-50}`, float64 accuracy); then τ is recomputed on the support found (closed
    form for α ∈ {1.5, 2}, one Newton step otherwise, which also makes the autodiff
    gradient the exact implicit one) and the result renormalised.

    Parameters
    ----------
    z : array
        Real scores (see :func:`entmax15` for dtypes).
    alpha : float, default 1.5
        The entmax exponent, ``alpha > 1``.
    axis : int, default -1
        The axis along which the probabilities sum to one.
    n_iter : int, default 50
        Number of bisection halvings (at least 1).

    Returns
    -------
    p : array
        Same shape, namespace and device as ``z``; non-negative, sums to 1 along ``axis``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> arbf.entmax_bisect(xp.asarray([0.0, -0.4, -6.0]), alpha=1.5)
    Array([0.64, 0.36, 0.  ], dtype=array_api_strict.float64)
    >>> arbf.entmax_bisect(xp.asarray([0.5, 0.0, -2.0]), alpha=2.0)
    Array([0.75, 0.25, 0.  ], dtype=array_api_strict.float64)
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.floating | np.integer):
        raise TypeError(f"alpha must be a real number > 1, got {alpha!r}")
    alpha = float(alpha)
    if not (np.isfinite(alpha) and alpha > 1.0):
        raise ValueError(f"alpha must be a finite number > 1, got {alpha}")
    if isinstance(n_iter, bool) or not isinstance(n_iter, int | np.integer) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    zl, xp, out_dtype, axis = _prepare(z, axis)
    steps = int(n_iter)
    p = map_rows(lambda b, xp: entmax_bisect_impl(b, alpha=alpha, n_iter=steps, xp=xp), zl, xp=xp)
    return _finish(p, xp, out_dtype, axis)


def sparsemax(z: Any, /, *, axis: int = -1) -> Array:
    r"""Sparsemax (α = 2) along ``axis`` (Martins & Astudillo 2016).

    .. math::

        \operatorname{sparsemax}(z) = \operatorname*{argmin}_{p \in \Delta}
        \lVert p - z \rVert^2, \qquad p_j = [z_j - \tau]_+ .

    Exact sort-based algorithm (sort descending, support
    :math:`\{\rho : 1 + \rho z_{(\rho)} > \sum_{r \le \rho} z_{(r)}\}`, threshold);
    bisection on backends without ``take_along_axis`` (Dask).

    Parameters
    ----------
    z : array
        Real scores (see :func:`entmax15` for dtypes).
    axis : int, default -1
        The axis along which the probabilities sum to one.

    Returns
    -------
    p : array
        Same shape, namespace and device as ``z``; non-negative, sums to 1 along ``axis``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> arbf.sparsemax(xp.asarray([0.5, 0.0, -2.0]))
    Array([0.75, 0.25, 0.  ], dtype=array_api_strict.float64)
    """
    zl, xp, out_dtype, axis = _prepare(z, axis)
    return _finish(sparsemax_impl(zl, xp=xp), xp, out_dtype, axis)
