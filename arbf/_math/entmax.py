r"""Sparse probability maps, public: entmax-1.5, α-entmax by bisection, sparsemax.

The math is :mod:`arbf._math.core.entmax` (pure, differentiable, the reference; exact
sort-based entmax-1.5 and sparsemax, bisection for any α > 1 and for backends without
``take_along_axis``).  These functions validate, move ``axis`` last and back, compute half
precision in float32, and call the seam (which runs a compiled row kernel for entmax-1.5
on NumPy and grad-free CPU torch).
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import (
    Array,
    array_namespace,
    device_of,
    is_traced,
    map_rows,
    to_host,
    working_dtype,
)
from .._validation import Interval, as_array, check_param
from . import seam

__all__ = ["entmax15", "entmax_bisect", "sparsemax"]


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
    axis = check_param("axis", axis, Interval(numbers.Integral))
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
    # half precision is computed in float32 and returned in its own dtype; anything else
    # in the working dtype (a non-native '>f8' as native float64, longdouble as float64)
    half = xp.isdtype(dt, "real floating") and getattr(dt, "itemsize", 0) == 2
    out_dtype = dt if half else wdt
    if wdt != dt:
        z = xp.astype(z, wdt)
    if axis != z.ndim - 1:
        z = xp.moveaxis(z, axis, -1)
    if not is_traced(z):
        # one pass: a finite sum proves no NaN and no ±inf; a sum of -inf, no NaN and no
        # +inf (then every row must keep a finite score); otherwise (or when finite
        # scores overflow the sum) scan elementwise
        total = float(to_host(xp.sum(z)))
        if not math.isfinite(total):
            if total != float("-inf") and bool(to_host(xp.any(xp.isnan(z) | (z == float("inf"))))):
                raise ValueError(f"{name} contains NaN or +inf; scores must be finite (or -inf)")
            if bool(to_host(xp.any(xp.max(z, axis=-1) == float("-inf")))):
                raise ValueError(
                    f"{name} has a slice along axis {axis} whose scores are all -inf: it has "
                    "no probability distribution (every entry would get probability 0); at "
                    "least one score per slice must be finite"
                )
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
        Real scores, any Array API namespace.  ``-inf`` entries get probability 0; a
        slice whose scores are all ``-inf`` is a :class:`ValueError` (it has no
        distribution: every candidate has zero weight).
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
        If ``z`` contains NaN or ``+inf``, a slice along ``axis`` whose scores are all
        ``-inf``, or ``axis`` is out of range.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> arbf.entmax15(xp.asarray([0.0, -0.4, -6.0]))
    Array([0.64, 0.36, 0.  ], dtype=array_api_strict.float64)
    """
    zl, xp, out_dtype, axis = _prepare(z, axis)
    return _finish(seam.entmax15(zl, xp=xp), xp, out_dtype, axis)


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
    alpha = check_param("alpha", alpha, Interval(numbers.Real, 1, None, "neither"))
    n_iter = check_param("n_iter", n_iter, Interval(numbers.Integral, 1, 10_000))
    zl, xp, out_dtype, axis = _prepare(z, axis)
    steps = int(n_iter)
    p = map_rows(lambda b, xp: seam.entmax_bisect(b, alpha=alpha, n_iter=steps, xp=xp), zl, xp=xp)
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
    return _finish(seam.sparsemax(zl, xp=xp), xp, out_dtype, axis)
